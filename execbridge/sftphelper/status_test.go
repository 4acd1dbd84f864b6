package sftphelper

import (
	"bytes"
	"encoding/binary"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/assert"
)

// packet returns an SFTP packet of type typ with body.
func packet(typ byte, body ...[]byte) []byte {
	b := []byte{0, 0, 0, 0, typ}
	for _, p := range body {
		b = append(b, p...)
	}
	binary.BigEndian.PutUint32(b, uint32(len(b)-4))
	return b
}

func u32(v uint32) []byte { return binary.BigEndian.AppendUint32(nil, v) }

func str(s string) []byte { return append(u32(uint32(len(s))), s...) }

func status(id, code uint32, msg string) []byte {
	return packet(fxpStatus, u32(id), u32(code), str(msg), str(""))
}

type bufCloser struct{ bytes.Buffer }

func (*bufCloser) Close() error { return nil }

// through writes stream to a statusFixer in pieces cut at cuts and
// returns what came out.
func through(t testing.TB, stream []byte, cuts []int) []byte {
	var out bufCloser
	f := &statusFixer{w: &out}
	prev := 0
	for _, c := range append(cuts, len(stream)) {
		c = min(max(c, prev), len(stream))
		n, err := f.Write(stream[prev:c])
		if err != nil || n != c-prev {
			t.Fatalf("Write(%d bytes) = %d, %v", c-prev, n, err)
		}
		prev = c
	}
	return out.Bytes()
}

func TestStatusFixer(t *testing.T) {
	data := packet(103, u32(7), str(string(bytes.Repeat([]byte("x"), 70000)))) // SSH_FXP_DATA
	for _, tt := range []struct {
		name     string
		in, want []byte
	}{
		{"rename refused", status(1, fxFailure, "rename /a /b: permission denied"), status(1, fxPermissionDenied, "rename /a /b: permission denied")},
		{"symlink not permitted", status(2, fxFailure, "symlink x /ro/l: operation not permitted"), status(2, fxPermissionDenied, "symlink x /ro/l: operation not permitted")},
		{"rename of a missing file", status(3, fxFailure, "rename /nope /b: no such file or directory"), status(3, fxNoSuchFile, "rename /nope /b: no such file or directory")},
		{"another failure stays", status(4, fxFailure, "rename /a /b: directory not empty"), status(4, fxFailure, "rename /a /b: directory not empty")},
		{"the text alone is not enough", status(4, fxFailure, "permission denied"), status(4, fxFailure, "permission denied")},
		{"other codes stay", status(5, 1, "EOF: permission denied"), status(5, 1, "EOF: permission denied")},
		{"data passes", data, data},
		{"a truncated status packet passes", packet(fxpStatus, u32(1), u32(fxFailure), u32(1000), []byte("short: permission denied")), packet(fxpStatus, u32(1), u32(fxFailure), u32(1000), []byte("short: permission denied"))},
		{"a packet too short for a code", packet(fxpStatus, u32(1)), packet(fxpStatus, u32(1))},
		{"an empty packet before", append(u32(0), status(6, fxFailure, "link a b: permission denied")...), append(u32(0), status(6, fxPermissionDenied, "link a b: permission denied")...)},
	} {
		t.Run(tt.name, func(t *testing.T) {
			stream := append(append(append([]byte{}, data[:100]...), data[100:]...), tt.in...)
			want := append(append([]byte{}, data...), tt.want...)
			assert.Equal(t, want, through(t, stream, nil), "one write")
			for i := range 50 {
				cuts := []int{rand.IntN(len(stream)), rand.IntN(len(stream)), rand.IntN(len(stream))}
				if i < len(stream) && i < 20 {
					cuts = []int{i, i + 1}
				}
				if got := through(t, stream, cuts); !bytes.Equal(got, want) {
					t.Fatalf("cut at %v: output differs", cuts)
				}
			}
		})
	}
}

// FuzzStatusFixer: however the server's output is cut into writes, the
// fixer's output is the same, as long as the input, and differs from it
// at most in status codes.
func FuzzStatusFixer(f *testing.F) {
	f.Add(status(1, fxFailure, "rename /a /b: permission denied"), uint16(3), uint16(20))
	f.Add(append(packet(103, u32(1), str("data")), status(2, fxFailure, "x: no such file or directory")...), uint16(0), uint16(1))
	f.Add([]byte{0, 0, 0, 0, 101, 0, 0, 0, 5}, uint16(2), uint16(4))
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 101}, uint16(1), uint16(2))
	f.Fuzz(func(t *testing.T, stream []byte, a, b uint16) {
		whole := through(t, stream, nil)
		cut := through(t, stream, []int{int(a), int(b)})
		// A packet still incomplete at the end is held, not lost: the
		// outputs are prefixes of the input's length.
		if !bytes.Equal(whole, cut) {
			t.Fatalf("cut at %d, %d: %x, whole: %x", a, b, cut, whole)
		}
		if len(whole) > len(stream) {
			t.Fatalf("output longer than input")
		}
		for i := range whole {
			if whole[i] != stream[i] && !(whole[i] == fxPermissionDenied || whole[i] == fxNoSuchFile) {
				t.Fatalf("byte %d changed from %d to %d", i, stream[i], whole[i])
			}
		}
	})
}
