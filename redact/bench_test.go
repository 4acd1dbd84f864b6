package redact

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"io"
	"math/rand/v2"
	"strings"
	"testing"
)

// benchSize is the input of every benchmark in BenchmarkStream.
const benchSize = 64 << 20

// sink counts nothing and copies nothing; unlike io.Discard it has no
// ReadFrom, so io.Copy goes through Write like it does for a Writer.
type sink struct{}

func (sink) Write(p []byte) (int, error) { return len(p), nil }

// onlyReader hides bytes.Reader's WriteTo, so io.CopyBuffer calls Write
// with 32 KiB chunks, as when copying from a pipe or a socket.
type onlyReader struct{ r io.Reader }

func (o onlyReader) Read(p []byte) (int, error) { return o.r.Read(p) }

// benchSecrets returns n random 32-byte tokens, as API tokens look.
func benchSecrets(n int) []string {
	rng := rand.New(rand.NewPCG(1, 2))
	const alpha = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-"
	out := make([]string, n)
	for i := range out {
		b := make([]byte, 32)
		for j := range b {
			b[j] = alpha[rng.IntN(len(alpha))]
		}
		out[i] = string(b)
	}
	return out
}

// benchInput is log-like text: key=value lines with paths, ids, URLs and
// JSON, and every 64 KiB on average one of secrets in one of its forms.
func benchInput(secrets []string) []byte {
	rng := rand.New(rand.NewPCG(3, 4))
	words := strings.Fields("GET POST request served container exec started stopped user alice bob path /api/v1/items " +
		"status=200 dur=12ms level=info msg= host=db-1.internal:5432 id=7f3a9c21 bytes=1024 error retry https://registry.example.com/v2/")
	var b bytes.Buffer
	b.Grow(benchSize + 4096)
	next := 0
	for b.Len() < benchSize {
		fmt.Fprintf(&b, "2025-01-02T03:04:05.%06dZ ", rng.IntN(1000000))
		for range 6 + rng.IntN(8) {
			b.WriteString(words[rng.IntN(len(words))])
			b.WriteByte(' ')
		}
		fmt.Fprintf(&b, "req=%016x", rng.Uint64())
		if b.Len() >= next {
			s := secrets[rng.IntN(len(secrets))]
			switch rng.IntN(3) {
			case 0:
				b.WriteString(" auth=" + base64.StdEncoding.EncodeToString([]byte("u:"+s)))
			default:
				b.WriteString(" with " + s)
			}
			next = b.Len() + 32<<10 + rng.IntN(64<<10)
		}
		b.WriteByte('\n')
	}
	return b.Bytes()[:benchSize]
}

// BenchmarkStream compares, on the same 64 MiB, in one run: io.Copy (the
// limit), the Writer with 1, 10 and 100 secrets (and their encoded forms),
// with and without the built-in patterns, and strings.Replacer with the
// same literals given the whole input at once (it cannot handle a secret
// split across writes). x_io.Copy is ns/op divided by io.Copy's.
func BenchmarkStream(b *testing.B) {
	all := benchSecrets(100)
	data := benchInput(all)
	var copyNs float64
	ratio := func(b *testing.B) {
		if copyNs > 0 {
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/copyNs, "x_io.Copy")
		}
	}
	buf := make([]byte, 32<<10)

	b.Run("io.Copy", func(b *testing.B) {
		rd := bytes.NewReader(data)
		var src io.Reader = onlyReader{rd}
		b.SetBytes(benchSize)
		b.ReportAllocs()
		for b.Loop() {
			rd.Reset(data)
			if _, err := io.CopyBuffer(sink{}, src, buf); err != nil {
				b.Fatal(err)
			}
		}
		copyNs = float64(b.Elapsed().Nanoseconds()) / float64(b.N)
	})
	for _, n := range []int{1, 10, 100} {
		secrets := all[:n]
		for _, noPatterns := range []bool{false, true} {
			name := fmt.Sprintf("Writer/secrets=%d", n)
			if noPatterns {
				name = fmt.Sprintf("Writer-literals/secrets=%d", n)
			}
			b.Run(name, func(b *testing.B) {
				r, err := New(&Config{Secrets: secrets, NoPatterns: noPatterns})
				if err != nil {
					b.Fatal(err)
				}
				w := r.NewWriter(sink{})
				rd := bytes.NewReader(data)
				var src io.Reader = onlyReader{rd}
				// One pass to grow the Writer's buffers: the loop
				// measures the steady state.
				if _, err := io.CopyBuffer(w, src, buf); err != nil {
					b.Fatal(err)
				}
				b.SetBytes(benchSize)
				b.ReportAllocs()
				for b.Loop() {
					rd.Reset(data)
					if _, err := io.CopyBuffer(w, src, buf); err != nil {
						b.Fatal(err)
					}
					if err := w.Flush(); err != nil {
						b.Fatal(err)
					}
				}
				ratio(b)
			})
		}
		b.Run(fmt.Sprintf("Replacer/secrets=%d", n), func(b *testing.B) {
			forms := allForms(secrets)
			pairs := make([]string, 0, 2*len(forms))
			for _, f := range forms {
				pairs = append(pairs, f, DefaultMask)
			}
			rep := strings.NewReplacer(pairs...)
			s := string(data)
			b.SetBytes(benchSize)
			b.ReportAllocs()
			for b.Loop() {
				if _, err := rep.WriteString(sink{}, s); err != nil {
					b.Fatal(err)
				}
			}
			ratio(b)
			b.ReportMetric(float64(len(forms)), "literals")
		})
	}
}

// BenchmarkWriteSmall is the per-Write overhead for small writes (an
// interactive terminal).
func BenchmarkWriteSmall(b *testing.B) {
	r, err := New(&Config{Secrets: benchSecrets(10)})
	if err != nil {
		b.Fatal(err)
	}
	w := r.NewWriter(sink{})
	p := []byte("ls -la /var/run\r\n")
	b.SetBytes(int64(len(p)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := w.Write(p); err != nil {
			b.Fatal(err)
		}
	}
}
