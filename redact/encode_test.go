package redact

import (
	"encoding/base64"
	"encoding/json"
	"net/url"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestEncodedForms(t *testing.T) {
	tests := []struct {
		secret string
		want   []string // forms that must be present
	}{
		{"abcdefgh", []string{"YWJjZGVmZ2g=", "YWJjZGVmZ2g", "YWJjZGVmZ2", "FiY2RlZmdo", "hYmNkZWZna", "hYmNkZWZnaA", "hYmNkZWZnaA=="}},
		{"p@ss w/rd+x", []string{"p%40ss%20w%2Frd%2Bx", "p%40ss%20w%2frd%2bx", "p%40ss+w%2Frd%2Bx", "p@ss%20w%2Frd+x"}},
		{`q"uo<te>`, []string{`q\"uo\u003cte\u003e`, `q\"uo<te>`}},
	}
	for _, tt := range tests {
		t.Run(tt.secret, func(t *testing.T) {
			forms := encodedForms(tt.secret)
			for _, w := range tt.want {
				assert.Contains(t, forms, w, "encodedForms(%q)", tt.secret)
			}
			assert.NotContains(t, forms, tt.secret, "the literal is not an encoded form")
			seen := map[string]bool{}
			for _, f := range forms {
				assert.False(t, seen[f], "duplicate form %q", f)
				seen[f] = true
			}
		})
	}
}

// TestBase64FormsDecode checks every base64 form against the encoder: for
// each offset, alphabet and padding, the form is what the encoder writes
// for the secret inside a longer value.
func TestBase64FormsDecode(t *testing.T) {
	s := "\xffsecret\x00value\xfe"
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.URLEncoding} {
		for off := range 3 {
			core, end, padded := base64Forms(enc, s, off)
			for _, pre := range []string{"", "x", "xy", "xyz", "wxyz"} {
				if len(pre)%3 != off {
					continue
				}
				mid := enc.EncodeToString([]byte(pre + s + "tail"))
				assert.Contains(t, mid, core, "off %d pre %q", off, pre)
				last := enc.EncodeToString([]byte(pre + s))
				assert.True(t, strings.HasSuffix(last, padded), "%q has suffix %q", last, padded)
				raw := strings.TrimRight(last, "=")
				assert.True(t, strings.HasSuffix(raw, end), "%q has suffix %q", raw, end)
			}
		}
	}
}

func TestPercentAndJSONRoundTrip(t *testing.T) {
	s := "a b/c?d=e&f%g\"h\\i<j>\u00e9"
	for _, f := range []string{percentAll(s, upperHex), percentAll(s, lowerHex), url.QueryEscape(s), url.PathEscape(s), userinfoEscape(s)} {
		u, err := url.PathUnescape(strings.ReplaceAll(f, "+", "%2B"))
		if f == url.QueryEscape(s) {
			u, err = url.QueryUnescape(f)
		}
		assert.NoError(t, err)
		assert.Equal(t, s, u, "unescape(%q)", f)
	}
	for _, html := range []bool{true, false} {
		var back string
		assert.NoError(t, json.Unmarshal([]byte(`"`+jsonEscape(s, html)+`"`), &back))
		assert.Equal(t, s, back)
	}
}
