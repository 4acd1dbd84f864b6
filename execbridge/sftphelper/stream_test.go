package sftphelper

import (
	"bytes"
	"encoding/binary"
	"io"
	"math/rand/v2"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
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
	f := newReplyWriter(&out)
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

func TestReplyWriterStatus(t *testing.T) {
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

// FuzzReplyWriter: however the server's output is cut into writes, what
// leaves is the same, and differs from the input at most in status codes
// and in extensions appended to a version reply.
func FuzzReplyWriter(f *testing.F) {
	f.Add(status(1, fxFailure, "rename /a /b: permission denied"), uint16(3), uint16(20))
	f.Add(append(packet(103, u32(1), str("data")), status(2, fxFailure, "x: no such file or directory")...), uint16(0), uint16(1))
	f.Add([]byte{0, 0, 0, 0, 101, 0, 0, 0, 5}, uint16(2), uint16(4))
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 101}, uint16(1), uint16(2))
	f.Add(packet(fxpVersion, u32(3)), uint16(5), uint16(6))
	f.Fuzz(func(t *testing.T, stream []byte, a, b uint16) {
		whole := through(t, stream, nil)
		cut := through(t, stream, []int{int(a), int(b)})
		// A packet still incomplete at the end is held, not lost: the
		// outputs are prefixes of the input's length.
		if !bytes.Equal(whole, cut) {
			t.Fatalf("cut at %d, %d: %x, whole: %x", a, b, cut, whole)
		}
		if want := referenceReplies(stream); !bytes.Equal(whole, want) {
			t.Fatalf("streamed %x, reference %x", whole, want)
		}
	})
}

// referenceReplies is what replyWriter must make of stream, computed on
// the whole stream at once: packet by packet, status and version replies
// changed, a held packet that never ends dropped, anything else passed.
func referenceReplies(stream []byte) []byte {
	var out []byte
	for len(stream) > 0 {
		if len(stream) < 5 {
			return out // an unfinished header is held
		}
		length := binary.BigEndian.Uint32(stream)
		if length == 0 {
			out = append(out, stream[:4]...)
			stream = stream[4:]
			continue
		}
		typ := stream[4]
		held := (typ == fxpStatus || typ == fxpVersion) && length <= maxHeld
		if uint64(len(stream)) < 4+uint64(length) {
			if held {
				return out
			}
			return append(out, stream...)
		}
		pkt := append([]byte{}, stream[:4+length]...)
		stream = stream[4+length:]
		if held && typ == fxpStatus {
			fixStatus(pkt)
		}
		if held && typ == fxpVersion {
			pkt = addExtension(pkt, limitsExtension, "1")
		}
		out = append(out, pkt...)
	}
	return out
}

func TestReplyWriterVersion(t *testing.T) {
	in := packet(fxpVersion, u32(3), str("posix-rename@openssh.com"), str("1"))
	want := packet(fxpVersion, u32(3), str("posix-rename@openssh.com"), str("1"), str(limitsExtension), str("1"))
	data := packet(103, u32(9), str("after"))
	stream := append(append([]byte{}, in...), data...)
	for cut := range len(stream) {
		got := through(t, stream, []int{cut})
		if !bytes.Equal(got, append(append([]byte{}, want...), data...)) {
			t.Fatalf("cut at %d: %x", cut, got)
		}
	}
}

// TestReplyWriterInsert: a packet inserted while the server is between
// the two writes of one reply waits for the reply's end.
func TestReplyWriterInsert(t *testing.T) {
	var out bufCloser
	f := newReplyWriter(&out)
	reply := packet(103, u32(1), str("0123456789"))
	_, err := f.Write(reply[:7])
	require.NoError(t, err)
	inserted := make(chan error)
	go func() { inserted <- f.insert(limitsReply(42)) }()
	select {
	case err := <-inserted:
		t.Fatalf("insert in the middle of a reply returned %v", err)
	case <-time.After(20 * time.Millisecond):
	}
	_, err = f.Write(reply[7:])
	require.NoError(t, err)
	require.NoError(t, <-inserted)
	assert.Equal(t, append(append([]byte{}, reply...), limitsReply(42)...), out.Bytes())
}

// readThrough reads all of stream through a requestReader whose source
// returns at most chunk bytes a read, and returns what came through and
// what was answered.
func readThrough(t testing.TB, stream []byte, chunk int) (through, answered []byte, err error) {
	var out bufCloser
	q := &requestReader{r: &chunkReader{b: stream, n: max(chunk, 1)}, replies: newReplyWriter(&out)}
	through, err = io.ReadAll(q)
	return through, out.Bytes(), err
}

type chunkReader struct {
	b []byte
	n int
}

func (c *chunkReader) Read(p []byte) (int, error) {
	if len(c.b) == 0 {
		return 0, io.EOF
	}
	n := copy(p[:min(len(p), c.n)], c.b)
	c.b = c.b[n:]
	return n, nil
}

func TestRequestReader(t *testing.T) {
	limits := packet(fxpExtended, u32(7), str(limitsExtension))
	statvfs := packet(fxpExtended, u32(8), str("statvfs@openssh.com"), str("/"))
	write := packet(6, u32(9), str("handle"), make([]byte, 8), str(string(bytes.Repeat([]byte("w"), 100000)))) // SSH_FXP_WRITE
	stream := append(append(append(append([]byte{}, write...), limits...), statvfs...), write...)
	want := append(append(append([]byte{}, write...), statvfs...), write...)
	for _, chunk := range []int{1, 3, 5, 13, 4096, len(stream)} {
		got, answered, err := readThrough(t, stream, chunk)
		require.NoError(t, err)
		assert.Equal(t, want, got, "chunk %d: limits@openssh.com is answered, not passed on", chunk)
		assert.Equal(t, limitsReply(7), answered, "chunk %d", chunk)
	}
	// The reply: id 7, then packet, read and write lengths, handles.
	r := limitsReply(7)
	assert.Equal(t, byte(fxpExtendedReply), r[4])
	assert.Equal(t, uint32(7), binary.BigEndian.Uint32(r[5:]))
	assert.Equal(t, uint64(256<<10), binary.BigEndian.Uint64(r[9:]))
	assert.Equal(t, uint64(255<<10), binary.BigEndian.Uint64(r[17:]))
	assert.Equal(t, uint64(255<<10), binary.BigEndian.Uint64(r[25:]))
	assert.Equal(t, uint64(0), binary.BigEndian.Uint64(r[33:]))

	// A stream that ends inside a packet is an error, not a clean end.
	_, _, err := readThrough(t, write[:1000], 100)
	assert.ErrorIs(t, err, io.ErrUnexpectedEOF)
	_, _, err = readThrough(t, limits[:10], 3)
	assert.ErrorIs(t, err, io.ErrUnexpectedEOF)
}

// FuzzRequestReader: however the client's stream is cut, the same bytes
// come through and the same limits requests are answered, and what comes
// through is the stream without them.
func FuzzRequestReader(f *testing.F) {
	f.Add(packet(fxpExtended, u32(7), str(limitsExtension)), 3)
	f.Add(append(packet(6, u32(1), str("h")), packet(fxpExtended, u32(2), str(limitsExtension))...), 1)
	f.Add([]byte{0, 0, 0, 0, 0, 0, 0, 5, fxpExtended, 1, 2}, 2)
	f.Add([]byte{0, 0, 0, 9, fxpExtended, 0, 0, 0, 1, 0xff, 0xff, 0xff, 0xff}, 4)
	f.Fuzz(func(t *testing.T, stream []byte, chunk int) {
		if chunk < 0 {
			chunk = -chunk
		}
		whole, answeredWhole, errWhole := readThrough(t, stream, len(stream))
		cut, answeredCut, errCut := readThrough(t, stream, chunk%64+1)
		if !bytes.Equal(whole, cut) || !bytes.Equal(answeredWhole, answeredCut) || (errWhole == nil) != (errCut == nil) {
			t.Fatalf("chunk %d: %x/%x (%v), whole: %x/%x (%v)", chunk, cut, answeredCut, errCut, whole, answeredWhole, errWhole)
		}
		if len(whole) > len(stream) {
			t.Fatalf("more came through than went in")
		}
	})
}

// TestServeLimits speaks the protocol as OpenSSH's client does: the
// version reply offers limits@openssh.com, the request is answered, and a
// read of the announced length returns that much.
func TestServeLimits(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	data := make([]byte, 300<<10)
	for i := range data {
		data[i] = byte(i * 7)
	}
	require.NoError(t, os.WriteFile("f", data, 0o644))

	inR, inW := io.Pipe()
	outR, outW := io.Pipe()
	done := make(chan error, 1)
	go func() { done <- Serve(inR, outW, nil) }()
	send := func(p []byte) {
		t.Helper()
		_, err := inW.Write(p)
		require.NoError(t, err)
	}
	recv := func() []byte {
		t.Helper()
		var l [4]byte
		_, err := io.ReadFull(outR, l[:])
		require.NoError(t, err)
		p := make([]byte, binary.BigEndian.Uint32(l[:]))
		_, err = io.ReadFull(outR, p)
		require.NoError(t, err)
		return p // type first
	}

	send(packet(1, u32(3))) // SSH_FXP_INIT, version 3
	version := recv()
	assert.Equal(t, byte(fxpVersion), version[0])
	assert.True(t, bytes.Contains(version, append(str(limitsExtension), str("1")...)), "version %q", version)

	send(packet(fxpExtended, u32(1), str(limitsExtension)))
	assert.Equal(t, limitsReply(1)[4:], recv())

	send(packet(3, u32(2), str("f"), u32(1), u32(0))) // SSH_FXP_OPEN for reading
	handle := recv()
	require.Equal(t, byte(102), handle[0], "SSH_FXP_HANDLE: %q", handle)
	h := handle[5:]
	send(packet(5, u32(3), h, make([]byte, 8), u32(maxReadWrite))) // SSH_FXP_READ at 0
	d := recv()
	require.Equal(t, byte(103), d[0], "SSH_FXP_DATA")
	assert.Equal(t, uint32(maxReadWrite), binary.BigEndian.Uint32(d[5:]), "one read carries the announced length")
	assert.Equal(t, data[:maxReadWrite], d[9:])

	inW.Close()
	require.NoError(t, <-done)
}
