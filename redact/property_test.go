package redact

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/url"
	"sort"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// naiveRedact is the reference for the literal stage: every occurrence of
// every form (overlapping ones included) is found by brute force, and each
// run of overlapping occurrences is replaced by one mask.
func naiveRedact(in []byte, forms []string, mask string) []byte {
	type iv struct{ s, e int }
	var ivs []iv
	for _, f := range forms {
		for i := 0; i+len(f) <= len(in); i++ {
			if string(in[i:i+len(f)]) == f {
				ivs = append(ivs, iv{i, i + len(f)})
			}
		}
	}
	sort.Slice(ivs, func(a, b int) bool { return ivs[a].s < ivs[b].s })
	var out []byte
	cur := 0
	for k := 0; k < len(ivs); {
		s, e := ivs[k].s, ivs[k].e
		k++
		for k < len(ivs) && ivs[k].s < e {
			e = max(e, ivs[k].e)
			k++
		}
		out = append(out, in[cur:s]...)
		out = append(out, mask...)
		cur = e
	}
	return append(out, in[cur:]...)
}

// allForms lists what a Redactor registers for secrets.
func allForms(secrets []string) []string {
	var f []string
	for _, s := range secrets {
		f = append(f, s)
		f = append(f, encodedForms(s)...)
	}
	return f
}

const propAlphabet = "abcAB01+/=%_-.:\"\\ \n@"

func randSecret(rng *rand.Rand) string {
	n := 8 + rng.IntN(33)
	b := make([]byte, n)
	for i := range b {
		switch rng.IntN(10) {
		case 0:
			b[i] = byte(1 + rng.IntN(255)) // any byte but the test mask, invalid UTF-8 included
		case 1, 2:
			b[i] = propAlphabet[rng.IntN(len(propAlphabet))]
		default:
			b[i] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"[rng.IntN(62)]
		}
	}
	return string(b)
}

// embed is one way a secret may reach the output, and the bytes of the
// output that the secret alone determines (which must never appear).
type embedded struct {
	text     []byte
	mustHide []string
}

func randEmbed(rng *rand.Rand, secret string) embedded {
	switch rng.IntN(7) {
	case 0, 1:
		return embedded{[]byte(secret), []string{secret}}
	case 2:
		// Inside a longer base64 value: at a random offset, in a random
		// alphabet, padded or not.
		pre := make([]byte, rng.IntN(5))
		post := make([]byte, rng.IntN(3))
		for i := range pre {
			pre[i] = byte(rng.IntN(256))
		}
		for i := range post {
			post[i] = byte(rng.IntN(256))
		}
		raw := append(append(append([]byte{}, pre...), secret...), post...)
		enc := []*base64.Encoding{base64.StdEncoding, base64.URLEncoding, base64.RawStdEncoding, base64.RawURLEncoding}[rng.IntN(4)]
		t := enc.EncodeToString(raw)
		lo := (8*len(pre) + 5) / 6
		hi := 8 * (len(pre) + len(secret)) / 6
		return embedded{[]byte(t), []string{t[lo:hi]}}
	case 3:
		hex := upperHex
		if rng.IntN(2) == 0 {
			hex = lowerHex
		}
		t := percentAll(secret, hex)
		return embedded{[]byte(t), []string{t}}
	case 4:
		t := url.QueryEscape(secret)
		return embedded{[]byte(t), []string{t}}
	case 5:
		j, _ := json.Marshal(secret)
		return embedded{j, []string{string(j[1 : len(j)-1])}}
	default:
		t := url.PathEscape(secret)
		return embedded{[]byte(t), []string{t}}
	}
}

func randNoise(rng *rand.Rand, secrets []string) []byte {
	n := rng.IntN(40)
	var b []byte
	for len(b) < n {
		switch rng.IntN(8) {
		case 0:
			// A proper prefix of a secret: a partial match that must be
			// released unchanged.
			s := secrets[rng.IntN(len(secrets))]
			b = append(b, s[:rng.IntN(len(s))]...)
		case 1:
			b = append(b, byte(rng.IntN(256)))
		default:
			b = append(b, propAlphabet[rng.IntN(len(propAlphabet))])
		}
	}
	return b
}

// writeSplit writes in through a Writer of r in random pieces.
func writeSplit(t testing.TB, r *Redactor, in []byte, rng *rand.Rand) []byte {
	t.Helper()
	var out bytes.Buffer
	w := r.NewWriter(&out)
	for rest := in; len(rest) > 0; {
		n := 1 + rng.IntN(min(len(rest), 1+rng.IntN(64)))
		if rng.IntN(4) == 0 {
			n = 1
		}
		k, err := w.Write(rest[:n])
		require.NoError(t, err)
		require.Equal(t, n, k)
		rest = rest[n:]
	}
	require.NoError(t, w.Close())
	return out.Bytes()
}

// TestPropertyStream: random secrets, random encodings, random surrounding
// bytes, random splits into writes. The secret and each of its encoded
// forms never appear in the output, and the output equals the redaction of
// the whole input (computed by brute force for the literal stage, and by
// String with the patterns on).
func TestPropertyStream(t *testing.T) {
	iters := 800
	if testing.Short() {
		iters = 200
	}
	for it := range iters {
		rng := rand.New(rand.NewPCG(4, uint64(it)))
		secrets := make([]string, 1+rng.IntN(4))
		for i := range secrets {
			secrets[i] = randSecret(rng)
		}
		var in []byte
		var hide []string
		for range 1 + rng.IntN(6) {
			in = append(in, randNoise(rng, secrets)...)
			e := randEmbed(rng, secrets[rng.IntN(len(secrets))])
			in = append(in, e.text...)
			hide = append(hide, e.mustHide...)
		}
		in = append(in, randNoise(rng, secrets)...)
		name := fmt.Sprintf("iter%d", it)

		// Literal stage alone: exact reference.
		lit, err := New(&Config{Secrets: secrets, NoPatterns: true, Mask: "\x00"})
		require.NoError(t, err)
		got := writeSplit(t, lit, in, rng)
		want := naiveRedact(in, allForms(secrets), "\x00")
		if !bytes.Equal(got, want) {
			t.Fatalf("%s: stream(%q)\n got %q\nwant %q", name, in, got, want)
		}
		if s := lit.String(string(in)); s != string(want) {
			t.Fatalf("%s: String(%q)\n got %q\nwant %q", name, in, s, want)
		}

		// With the patterns: split-invariant, and nothing leaks.
		full, err := New(&Config{Secrets: secrets, Mask: "\x00"})
		require.NoError(t, err)
		got = writeSplit(t, full, in, rng)
		if want := full.String(string(in)); string(got) != want {
			t.Fatalf("%s: patterns: stream(%q)\n got %q\nwant %q", name, in, got, want)
		}
		for _, out := range [][]byte{want, got} {
			for _, h := range append(hide, secrets...) {
				if strings.Contains(string(out), h) {
					t.Fatalf("%s: output %q of %q contains %q", name, out, in, h)
				}
			}
		}
	}
}

// TestPropertyAddWhileStreaming: a secret added between two Writes is
// caught when it starts inside what the Writer still holds or later.
func TestPropertyAddWhileStreaming(t *testing.T) {
	for it := range 500 {
		rng := rand.New(rand.NewPCG(5, uint64(it)))
		first, second := randSecret(rng), randSecret(rng)
		r, err := New(&Config{Secrets: []string{first}, Mask: "\x00", NoPatterns: true})
		require.NoError(t, err)
		var out bytes.Buffer
		w := r.NewWriter(&out)
		a := append(randNoise(rng, []string{first}), first...)
		// Leave a partial match of the first secret open, so the Writer
		// holds it back, and make the second secret start inside it.
		part := first[:rng.IntN(len(first))]
		j := rng.IntN(len(part) + 1)
		second = part[j:] + second
		_, err = w.Write(append(a, part...))
		require.NoError(t, err)
		require.NoError(t, r.Add(second))
		b := append([]byte(second[len(part)-j:]), randNoise(rng, []string{first, second})...)
		_, err = w.Write(b)
		require.NoError(t, err)
		require.NoError(t, w.Close())
		assert.NotContains(t, out.String(), second, "iter %d", it)
		assert.NotContains(t, out.String(), first, "iter %d", it)
	}
}
