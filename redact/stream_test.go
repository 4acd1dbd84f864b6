package redact_test

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dockssh/dockssh/redact"
)

// steps writes each piece and records what the underlying writer has
// received after each Write.
func steps(t *testing.T, w *redact.Writer, out *bytes.Buffer, pieces ...string) []string {
	t.Helper()
	var seen []string
	for _, p := range pieces {
		n, err := w.Write([]byte(p))
		require.NoError(t, err)
		require.Equal(t, len(p), n)
		seen = append(seen, out.String())
	}
	return seen
}

func TestWriterHoldBack(t *testing.T) {
	const s = "Qsecret-value-1" // 'Q' starts no other pattern in these inputs
	tests := []struct {
		name   string
		pieces []string
		after  []string // output after each Write
		final  string   // after Close
	}{
		{
			name:   "nothing held without a partial match",
			pieces: []string{"hello world\n", "more text"},
			after:  []string{"hello world\n", "hello world\nmore text"},
			final:  "hello world\nmore text",
		},
		{
			name:   "partial secret held, then released",
			pieces: []string{"ab Qsecret", "-nope"},
			after:  []string{"ab ", "ab Qsecret-nope"},
			final:  "ab Qsecret-nope",
		},
		{
			name:   "split secret masked",
			pieces: []string{"ab Qsec", "ret-val", "ue-1 cd"},
			after:  []string{"ab ", "ab ", "ab [REDACTED] cd"},
			final:  "ab [REDACTED] cd",
		},
		{
			name:   "one byte at a time",
			pieces: strings.Split("x Qsecret-value-1 y", ""),
			final:  "x [REDACTED] y",
		},
		{
			name:   "partial at the end is flushed by Close",
			pieces: []string{"tail Qsecret-val"},
			after:  []string{"tail "},
			final:  "tail Qsecret-val",
		},
		{
			name:   "pattern value split",
			pieces: []string{"pass", "word=hun", "ter2 ", "next"},
			after:  []string{"pass", "password=", "password=[REDACTED] ", "password=[REDACTED] next"},
			final:  "password=[REDACTED] next",
		},
		{
			name:   "url authority held until it ends",
			pieces: []string{"ssh://bob:pw", "@host", "/x"},
			after:  []string{"ssh://", "ssh://", "ssh://bob:[REDACTED]@host/x"},
			final:  "ssh://bob:[REDACTED]@host/x",
		},
		{
			name:   "pem body dropped as it comes",
			pieces: []string{"-----BEGIN EC PRIVATE KEY-----\nMHcC", "AQEE\n-----END EC PRI", "VATE KEY-----\n"},
			after: []string{"-----BEGIN EC PRIVATE KEY-----", "-----BEGIN EC PRIVATE KEY-----",
				"-----BEGIN EC PRIVATE KEY-----[REDACTED]-----END EC PRIVATE KEY-----\n"},
			final: "-----BEGIN EC PRIVATE KEY-----[REDACTED]-----END EC PRIVATE KEY-----\n",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newR(t, &redact.Config{Secrets: []string{s}})
			var out bytes.Buffer
			w := r.NewWriter(&out)
			seen := steps(t, w, &out, tt.pieces...)
			if tt.after != nil {
				assert.Equal(t, tt.after, seen)
			}
			require.NoError(t, w.Close())
			assert.Equal(t, tt.final, out.String())
		})
	}
}

func TestWriterFlush(t *testing.T) {
	r := newR(t, &redact.Config{Secrets: []string{"Qsecret-value-1"}})
	var out bytes.Buffer
	w := r.NewWriter(&out)
	_, err := w.Write([]byte("prompt> Qsec"))
	require.NoError(t, err)
	assert.Equal(t, "prompt> ", out.String())
	require.NoError(t, w.Flush())
	assert.Equal(t, "prompt> Qsec", out.String(), "Flush writes what was held")

	// A value being masked stays masked across a Flush.
	out.Reset()
	_, err = w.Write([]byte(" token=abc"))
	require.NoError(t, err)
	require.NoError(t, w.Flush())
	_, err = w.Write([]byte("def ok"))
	require.NoError(t, err)
	require.NoError(t, w.Close())
	assert.Equal(t, " token=[REDACTED][REDACTED] ok", out.String())
}

func TestWriterClose(t *testing.T) {
	r := newR(t, nil)
	var out bytes.Buffer
	w := r.NewWriter(&out)
	require.NoError(t, w.Close())
	require.NoError(t, w.Close(), "second Close")
	_, err := w.Write([]byte("x"))
	require.ErrorIs(t, err, redact.ErrClosed)
	require.ErrorIs(t, w.Flush(), redact.ErrClosed)
	var _ io.WriteCloser = w
}

type failWriter struct {
	n   int // accept this many writes
	err error
}

func (f *failWriter) Write(p []byte) (int, error) {
	if f.n == 0 {
		return 0, f.err
	}
	f.n--
	return len(p), nil
}

type shortWriter struct{}

func (shortWriter) Write(p []byte) (int, error) { return len(p) / 2, nil }

func TestWriterUnderlyingError(t *testing.T) {
	boom := errors.New("boom")
	r := newR(t, nil)
	w := r.NewWriter(&failWriter{n: 1, err: boom})
	_, err := w.Write([]byte("first"))
	require.NoError(t, err)
	n, err := w.Write([]byte("second"))
	require.ErrorIs(t, err, boom)
	assert.Equal(t, 0, n)
	_, err = w.Write([]byte("third"))
	require.ErrorIs(t, err, boom, "the error sticks")
	require.ErrorIs(t, w.Close(), boom)

	w = r.NewWriter(shortWriter{})
	_, err = w.Write([]byte("abcd"))
	require.ErrorIs(t, err, io.ErrShortWrite)
}

func TestWriterAddMidStream(t *testing.T) {
	r := newR(t, &redact.Config{Secrets: []string{"first-secret-1"}})
	var out bytes.Buffer
	w := r.NewWriter(&out)
	// "first-sec" is held back as a possible start of the first secret;
	// the new secret starts inside it.
	_, err := w.Write([]byte("a first-sec"))
	require.NoError(t, err)
	require.NoError(t, r.Add("sec-added-later"))
	_, err = w.Write([]byte("-added-later b"))
	require.NoError(t, err)
	require.NoError(t, w.Close())
	assert.Equal(t, "a first-[REDACTED] b", out.String())
}

func TestWriterZeroAllocs(t *testing.T) {
	secrets := []string{"Qsecret-value-1", "another-secret-2"}
	for _, cfg := range []redact.Config{
		{Secrets: secrets},
		{Secrets: secrets, NoPatterns: true},
		{Secrets: secrets, Fingerprint: true},
	} {
		r := newR(t, &cfg)
		w := r.NewWriter(io.Discard)
		chunk := []byte(strings.Repeat("log line with a Qsecret-value-1 and password=x1 and ssh://u:p@h/ and Authorization: Bearer abc\n", 300))
		for range 3 {
			_, _ = w.Write(chunk) // warm up the buffers
		}
		allocs := testing.AllocsPerRun(50, func() {
			if _, err := w.Write(chunk); err != nil {
				t.Fatal(err)
			}
		})
		assert.Zero(t, allocs, "allocations per Write with %+v", cfg)
	}
}

// TestWriterMatchesString: the stream of any split equals String.
func TestWriterMatchesString(t *testing.T) {
	r := newR(t, &redact.Config{Secrets: []string{secret}})
	in := "a " + secret + " password=zz https://tok@h/?key=v -----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n" +
		"Authorization: Basic Zm9vOmJhcg==\r\n czNjcjN0LVQwa2VuKy94 end"
	want := r.String(in)
	for size := 1; size <= len(in); size++ {
		var out bytes.Buffer
		w := r.NewWriter(&out)
		for i := 0; i < len(in); i += size {
			_, err := w.Write([]byte(in[i:min(i+size, len(in))]))
			require.NoError(t, err)
		}
		require.NoError(t, w.Close())
		if out.String() != want {
			t.Fatalf("writes of %d: got %q, want %q", size, out.String(), want)
		}
	}
	assert.NotContains(t, want, secret)
}

// TestWriterShortSecret covers the scan without its 4-byte prefilter,
// which a form shorter than 4 bytes turns off.
func TestWriterShortSecret(t *testing.T) {
	r := newR(t, &redact.Config{ShortSecrets: redact.WarnShort, Logger: discardLogger()})
	require.NoError(t, r.Add("pw1", "a-longer-secret"))
	in := "x pw1 y a-longer-secret z pw pw1pw1"
	want := "x [REDACTED] y [REDACTED] z pw [REDACTED][REDACTED]"
	for size := 1; size <= len(in); size++ {
		var out bytes.Buffer
		w := r.NewWriter(&out)
		for i := 0; i < len(in); i += size {
			_, err := w.Write([]byte(in[i:min(i+size, len(in))]))
			require.NoError(t, err)
		}
		require.NoError(t, w.Close())
		require.Equal(t, want, out.String(), "writes of %d", size)
	}
}
