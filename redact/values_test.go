package redact_test

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dockssh/dockssh/redact"
)

// renderings returns every way the tests expect secret to be printed when
// a program formats a value holding it: its text, fmt's %v of it as a
// []byte and as a []rune (without the brackets, which belong to the whole
// slice), %x and %X, and base64. fmt itself is the oracle here.
func renderings(secret string) []string {
	return []string{
		secret,
		strings.Trim(fmt.Sprint([]byte(secret)), "[]"),
		strings.Trim(fmt.Sprint([]rune(secret)), "[]"),
		fmt.Sprintf("%x", secret),
		fmt.Sprintf("%X", secret),
		base64.StdEncoding.EncodeToString([]byte(secret)),
	}
}

// hexKey prints itself as hex, as key types often do.
type hexKey []byte

func (k hexKey) String() string { return hex.EncodeToString(k) }

// keyConfig has the shape of a key's configuration: a passphrase held in
// a byte slice, as crypto APIs take it.
type keyConfig struct {
	Path       string
	Passphrase []byte
}

type blob struct {
	Name string
	Data []byte
}

// TestHandlerNestedBytes: a secret held in a byte or rune slice or array,
// anywhere in a value logged as an attribute of kind Any, is masked in
// each of its renderings; so is a credential under a sensitive field name
// even when nobody registered it.
func TestHandlerNestedBytes(t *testing.T) {
	const sec = "n3sted-s3cret-16"    // 16 bytes: fits [16]byte
	const uni = "pässwörd-ünïcode-日本" // runes differ from bytes
	r := newR(t, &redact.Config{Secrets: []string{sec, uni}})
	sb := []byte(sec)
	var arr [16]byte
	copy(arr[:], sec)
	tests := []struct {
		name string
		v    any
		want string // the attribute's text in the JSON output; "" to check only that no rendering leaks
	}{
		{"struct field", blob{"n", sb}, `{Name:n Data:[[REDACTED]]}`},
		{"inside a longer slice", blob{"n", append([]byte{1, 2}, append(sb, 3)...)}, `{Name:n Data:[1 2 [REDACTED] 3]}`},
		{"sensitive field, registered", keyConfig{"/k", sb}, `{Path:/k Passphrase:[REDACTED]}`},
		{"sensitive field, not registered", keyConfig{"/k", []byte("correct horse battery")}, `{Path:/k Passphrase:[REDACTED]}`},
		{"rune slice", struct{ R []rune }{[]rune(uni)}, `{R:[[REDACTED]]}`},
		{"map value", map[string][]byte{"k": sb}, `map[k:[[REDACTED]]]`},
		{"map key array", map[[16]byte]int{arr: 1}, `map[[[REDACTED]]:1]`},
		{"pointer", &blob{"n", sb}, `&{Name:n Data:[[REDACTED]]}`},
		{"slice of structs", []blob{{"a", nil}, {"b", sb}}, `[{Name:a Data:[]} {Name:b Data:[[REDACTED]]}]`},
		{"nested array", struct{ In struct{ A [16]byte } }{struct{ A [16]byte }{arr}}, `{In:{A:[[REDACTED]]}}`},
		{"hex Stringer", struct{ K hexKey }{hexKey(sb)}, `{K:[REDACTED]}`},
		{"interface field", struct{ X any }{sb}, `{X:[[REDACTED]]}`},
		{"plain bytes attribute", sb, `[REDACTED]`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			jsonLogger(r, &buf).Info("m", "v", tt.v)
			var rec map[string]any
			require.NoError(t, json.Unmarshal(buf.Bytes(), &rec), buf.String())
			if tt.want != "" {
				assert.Equal(t, tt.want, rec["v"])
			}
			for _, s := range []string{sec, uni, "correct horse battery"} {
				for _, f := range renderings(s) {
					assert.NotContains(t, buf.String(), f)
					assert.NotContains(t, fmt.Sprint(rec["v"]), f)
				}
			}
		})
	}
}

// TestErrorNestedBytes: an error message made with %v or %x of a byte
// slice holding a secret prints it masked.
func TestErrorNestedBytes(t *testing.T) {
	const sec = "n3sted-s3cret-16"
	r := newR(t, &redact.Config{Secrets: []string{sec}})
	for _, format := range []string{"bad key %v", "bad key %x", "bad key %X", "bad key %+v", "bad key %d"} {
		err := r.Error(fmt.Errorf(format, []byte(sec)))
		for _, f := range renderings(sec) {
			assert.NotContains(t, err.Error(), f, "Error(%s)", format)
		}
		var buf bytes.Buffer
		jsonLogger(r, &buf).Error("m", "err", fmt.Errorf(format, []byte(sec)))
		for _, f := range renderings(sec) {
			assert.NotContains(t, buf.String(), f, "slog err %s", format)
		}
	}
}

// TestStringLeavesRenderings documents the boundary: String, Bytes and the
// Writer look for the text and encodings of a secret, not for fmt's
// decimal and hex renderings of a byte slice, which would slow every
// stream down (see docs/redact.md).
func TestStringLeavesRenderings(t *testing.T) {
	const sec = "n3sted-s3cret-16"
	r := newR(t, &redact.Config{Secrets: []string{sec}})
	in := fmt.Sprint([]byte(sec))
	assert.Equal(t, in, r.String(in))
}

// TestPropertyHandlerNested: random secrets in random values built with
// reflect (structs, maps, slices, arrays, pointers and interfaces nested
// at random, the secret held as a string, []byte, []rune, [N]byte, [N]rune
// or a hex Stringer, between other bytes or alone) never show in any
// rendering in the handler's output, JSON or text, nor in an error that
// formats the value.
func TestPropertyHandlerNested(t *testing.T) {
	iters := 2000
	if testing.Short() {
		iters = 300
	}
	for it := range iters {
		rng := rand.New(rand.NewPCG(11, uint64(it)))
		secret := randPrintableSecret(rng)
		r := newR(t, &redact.Config{Secrets: []string{secret}})
		v := randNested(rng, secret, rng.IntN(5))
		if rng.IntN(4) == 0 {
			p := reflect.New(v.Type())
			p.Elem().Set(v)
			v = p // a pointer at the top prints as &{...}
		}
		val := v.Interface()

		var js, txt bytes.Buffer
		jsonLogger(r, &js).Info("m", "v", val, slog.Group("g", "w", val))
		slog.New(r.Handler(slog.NewTextHandler(&txt, nil))).Info("m", "v", val)
		errText := r.Error(fmt.Errorf("failed on %+v", val)).Error()
		var rec map[string]any
		require.NoError(t, json.Unmarshal(js.Bytes(), &rec), js.String())
		decoded := fmt.Sprint(rec)

		for _, f := range renderings(secret) {
			for name, out := range map[string]string{"json": js.String(), "decoded json": decoded, "text": txt.String(), "error": errText} {
				if strings.Contains(out, f) {
					t.Fatalf("iter %d: secret %q in %#v: %s output shows %q:\n%s", it, secret, val, name, f, out)
				}
			}
		}
	}
}

// randPrintableSecret returns 8 to 24 printable characters, sometimes
// with non-ASCII letters (whose []rune rendering differs from the bytes).
func randPrintableSecret(rng *rand.Rand) string {
	const ascii = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.:/+=@%!~"
	letters := []rune("éüß日本ø")
	var b strings.Builder
	for range 8 + rng.IntN(17) {
		if rng.IntN(8) == 0 {
			b.WriteRune(letters[rng.IntN(len(letters))])
			continue
		}
		b.WriteByte(ascii[rng.IntN(len(ascii))])
	}
	return b.String()
}

// neutralNames are field names no key pattern masks, so the property
// tests the renderings, not the key names.
var neutralNames = []string{"F0", "F1", "Data", "Blob", "Val", "Items", "Raw", "Body"}

// randNested returns a value of a random type that holds secret once, at
// the bottom of depth levels of containers.
func randNested(rng *rand.Rand, secret string, depth int) reflect.Value {
	if depth == 0 {
		return randLeaf(rng, secret)
	}
	child := randNested(rng, secret, depth-1)
	ct := child.Type()
	switch rng.IntN(6) {
	case 0, 1: // a struct with the child in one field of several
		n := 1 + rng.IntN(3)
		at := rng.IntN(n)
		names := rng.Perm(len(neutralNames))
		fields := make([]reflect.StructField, n)
		for i := range fields {
			fields[i] = reflect.StructField{Name: neutralNames[names[i]], Type: reflect.TypeFor[int]()}
			if i == at {
				fields[i].Type = ct
			}
		}
		s := reflect.New(reflect.StructOf(fields)).Elem()
		for i := range n {
			if i == at {
				s.Field(i).Set(child)
			} else {
				s.Field(i).SetInt(rng.Int64N(1000))
			}
		}
		return s
	case 2: // a map value
		m := reflect.MakeMap(reflect.MapOf(reflect.TypeFor[string](), ct))
		m.SetMapIndex(reflect.ValueOf("k"), child)
		m.SetMapIndex(reflect.ValueOf("z"), reflect.Zero(ct))
		return m
	case 3: // one element of a slice
		n := 1 + rng.IntN(3)
		s := reflect.MakeSlice(reflect.SliceOf(ct), n, n)
		s.Index(rng.IntN(n)).Set(child)
		return s
	case 4: // an interface field
		s := reflect.New(reflect.StructOf([]reflect.StructField{{Name: "X", Type: reflect.TypeFor[any]()}})).Elem()
		s.Field(0).Set(child)
		return s
	default: // a pointer (past the top, fmt prints only its address)
		p := reflect.New(ct)
		p.Elem().Set(child)
		return p
	}
}

// randLeaf holds secret, alone or between other bytes, in one of the
// types a program keeps a secret in.
func randLeaf(rng *rand.Rand, secret string) reflect.Value {
	pre, post := "", ""
	if rng.IntN(2) == 0 {
		pre, post = "\x01\x02", "\x03"
	}
	text := pre + secret + post
	switch rng.IntN(7) {
	case 0:
		return reflect.ValueOf(text)
	case 1:
		return reflect.ValueOf([]byte(text))
	case 2:
		return reflect.ValueOf([]rune(text))
	case 3:
		a := reflect.New(reflect.ArrayOf(len(text), reflect.TypeFor[byte]())).Elem()
		reflect.Copy(a, reflect.ValueOf([]byte(text)))
		return a
	case 4:
		rs := []rune(text)
		a := reflect.New(reflect.ArrayOf(len(rs), reflect.TypeFor[rune]())).Elem()
		reflect.Copy(a, reflect.ValueOf(rs))
		return a
	case 5:
		return reflect.ValueOf(hexKey(text))
	default:
		return reflect.ValueOf(json.RawMessage(text))
	}
}
