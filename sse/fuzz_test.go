package sse

import (
	"bytes"
	"encoding/json"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"unicode/utf16"
	"unicode/utf8"
)

func TestFormField(t *testing.T) {
	for _, tc := range []struct {
		body, want string
		err        error
	}{
		{"data=ls -al\n", "ls -al\n", nil}, // curl -d $'data=ls -al\n'
		{"data=a+b%20c", "a b c", nil},
		{"data=%zz%4", "%zz%4", nil}, // Node keeps a '%' without two hex digits
		{"data=a;b&x=1", "a;b", nil}, // url.ParseQuery refuses ';'
		{"x=1&&data=%e2%82%AC&", "€", nil},
		{"d%61ta=1", "1", nil}, // the name is decoded too
		{"data", "", nil},
		{"data=", "", nil},
		{"data==x", "=x", nil},
		{"data=%ff", "\xff", nil}, // bytes stay bytes (Node would write U+FFFD)
		{"date=x", "", errFieldMissing},
		{"data=a&data=b", "", errFieldRepeat},
		{strings.Repeat("a&", maxFormFields) + "data=x", "", errFormFields},
	} {
		got, err := formField([]byte(tc.body), "data")
		if err != tc.err || string(got) != tc.want {
			t.Errorf("formField(%q) = %q, %v, want %q, %v", tc.body, got, err, tc.want, tc.err)
		}
	}
}

// FuzzFormField: whatever a value holds, url.QueryEscape then formField
// give it back, next to fields of any content; and formField agrees with
// url.ParseQuery wherever the latter accepts the body.
func FuzzFormField(f *testing.F) {
	for _, s := range []string{"ls -al\n", "a+b%20c", "€\xff;&=", "", "%", "%%41"} {
		f.Add(s, "x=1&")
	}
	f.Fuzz(func(t *testing.T, value, other string) {
		if strings.Contains(other, "data") {
			return
		}
		body := other + "&data=" + url.QueryEscape(value) + "&" + other
		got, err := formField([]byte(body), "data")
		if err != nil && err != errFormFields {
			t.Fatalf("formField(%q) = %v", body, err)
		}
		if err == nil && string(got) != value {
			t.Fatalf("formField(%q) = %q, want %q", body, got, value)
		}
		raw := value
		if q, perr := url.ParseQuery(raw); perr == nil {
			got, err := formField([]byte(raw), "data")
			if vs := q["data"]; len(vs) == 1 && (err != nil || string(got) != vs[0]) {
				t.Fatalf("formField(%q) = %q, %v; url.ParseQuery: %q", raw, got, err, vs[0])
			}
		}
	})
}

// FuzzParseDimension: accepted exactly when the input is 1 to 4 decimal
// digits with a value from 1 to MaxDimension.
func FuzzParseDimension(f *testing.F) {
	for _, s := range []string{"24", "80", "0", "4096", "4097", "80px", "-1", " 1", "+1", "0010", "NaN", ""} {
		f.Add(s)
	}
	digits := regexp.MustCompile(`^[0-9]{1,4}$`)
	f.Fuzz(func(t *testing.T, s string) {
		n, err := parseDimension([]byte(s))
		want, aerr := strconv.Atoi(s)
		ok := digits.MatchString(s) && aerr == nil && want >= 1 && want <= MaxDimension
		if ok != (err == nil) || ok && n != want {
			t.Fatalf("parseDimension(%q) = %d, %v", s, n, err)
		}
	})
}

// FuzzParseEventID: what parses is exactly what appendDataEvent writes.
func FuzzParseEventID(f *testing.F) {
	id := strings.Repeat("0123456789abcdef", 2)
	for _, s := range []string{id + ".0", id + ".42", id + ".01", id + ".-1", id, "x.1", id + ".9223372036854775807", id + ".9223372036854775808"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		sid, off, err := parseEventID(s)
		if err != nil {
			return
		}
		ev := string(appendDataEvent(nil, nil, sid, off))
		if want := "event: data\ndata: \"\"\nid: " + s + "\n\n"; ev != want || off < 0 {
			t.Fatalf("parseEventID(%q) = %q, %d; written back as %q", s, sid, off, ev)
		}
	})
}

// FuzzAppendJSString: the output is a JSON string that decodes (lone
// surrogates U+DC80..U+DCFF as bytes) to the input, and for valid UTF-8
// without U+2028/U+2029 it is what encoding/json writes without HTML
// escaping, which follows the same rules as JSON.stringify there.
func FuzzAppendJSString(f *testing.F) {
	for _, s := range []string{"plain", "\x1b[1;31m\r\n", "\"\\/", "é€😀", "\xff\xfe", "\xe2\x82", "\u2028", "\x7f\x00"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, p []byte) {
		enc := appendJSString(nil, p)
		if bytes.ContainsAny(enc, "\r\n") {
			t.Fatalf("appendJSString(%q) = %q: a line break ends an SSE field", p, enc)
		}
		if got := decodeJSString(t, enc); !bytes.Equal(got, p) {
			t.Fatalf("appendJSString(%q) = %q, decodes to %q", p, enc, got)
		}
		if utf8.Valid(p) && !strings.ContainsAny(string(p), "\u2028\u2029") {
			var b bytes.Buffer
			e := json.NewEncoder(&b)
			e.SetEscapeHTML(false)
			e.Encode(string(p))
			if want := bytes.TrimSuffix(b.Bytes(), []byte("\n")); !bytes.Equal(enc, want) {
				t.Fatalf("appendJSString(%q) = %s, encoding/json: %s", p, enc, want)
			}
		}
	})
}

// decodeJSString decodes a JSON string, lone surrogates U+DC80..U+DCFF
// to single bytes.
func decodeJSString(t *testing.T, enc []byte) []byte {
	var s string
	// encoding/json replaces lone surrogates: decode the escapes here.
	var units []uint16
	in := string(enc[1 : len(enc)-1])
	for i := 0; i < len(in); {
		if in[i] != '\\' {
			r, size := utf8.DecodeRuneInString(in[i:])
			units = append(units, utf16.Encode([]rune{r})...)
			i += size
			continue
		}
		if in[i+1] == 'u' {
			v, err := strconv.ParseUint(in[i+2:i+6], 16, 16)
			if err != nil {
				t.Fatalf("bad escape in %s", enc)
			}
			units = append(units, uint16(v))
			i += 6
			continue
		}
		if err := json.Unmarshal([]byte(`"`+in[i:i+2]+`"`), &s); err != nil {
			t.Fatalf("bad escape in %s: %v", enc, err)
		}
		units = append(units, uint16(s[0]))
		i += 2
	}
	var out []byte
	for i := 0; i < len(units); i++ {
		u := rune(units[i])
		switch {
		case utf16.IsSurrogate(u) && u < 0xdc00 && i+1 < len(units):
			out = utf8.AppendRune(out, utf16.DecodeRune(u, rune(units[i+1])))
			i++
		case u >= 0xdc80 && u <= 0xdcff:
			out = append(out, byte(u-0xdc00))
		case utf16.IsSurrogate(u):
			t.Fatalf("surrogate %U outside the escape range in %s", u, enc)
		default:
			out = utf8.AppendRune(out, u)
		}
	}
	return out
}

// FuzzCompleteUTF8: the cut never splits a character, holds back at most
// three bytes, and only bytes that could still become a character.
func FuzzCompleteUTF8(f *testing.F) {
	for _, s := range []string{"abc", "a\xc3", "a\xe2\x82", "\xf0\x9f\x98", "\xff", "\xe0\x80", "\xed\xa0"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, p []byte) {
		n := completeUTF8(p)
		if n < len(p)-3 || n > len(p) {
			t.Fatalf("completeUTF8(%q) = %d", p, n)
		}
		if n < len(p) && (utf8.FullRune(p[n:]) || !utf8.RuneStart(p[n])) {
			t.Fatalf("completeUTF8(%q) = %d holds back %q, which is complete", p, n, p[n:])
		}
		i := 0
		for i < n {
			_, size := utf8.DecodeRune(p[i:])
			i += size
		}
		if i != n {
			t.Fatalf("completeUTF8(%q) = %d splits a character", p, n)
		}
		if k := skipContinuation(p); k > 3 || k > 0 && utf8.RuneStart(p[k-1]) {
			t.Fatalf("skipContinuation(%q) = %d", p, k)
		}
	})
}

// TestRing checks the ring against a plain slice under writes that grow
// it, fill it and wrap it.
func TestRing(t *testing.T) {
	r := ring{max: 10000}
	var all []byte
	for i := 0; i < 3000; i++ {
		p := bytes.Repeat([]byte{byte(i)}, i%37+1)
		r.write(p)
		all = append(all, p...)
		if r.end != int64(len(all)) || r.len() > r.max || r.len() != min(len(all), r.max) {
			t.Fatalf("after %d writes: start %d end %d, %d bytes written", i, r.start, r.end, len(all))
		}
		off := r.start + int64(i%(r.len()+1))
		got := make([]byte, int(r.end-off))
		if n := r.copyAt(got, off); n != len(got) || !bytes.Equal(got, all[off:]) {
			t.Fatalf("after %d writes: copyAt(%d) differs", i, off)
		}
	}
	if len(r.buf) != r.max {
		t.Errorf("storage %d, want it grown to %d", len(r.buf), r.max)
	}
}
