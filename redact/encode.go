package redact

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"net/url"
	"strconv"
	"strings"
)

// encodedForms returns the strings that stand for secret in output other
// than its own bytes, without duplicates and without the secret itself.
//
// Base64: a secret embedded in a longer value lands at byte offset 0, 1 or
// 2 of a 3-byte group, and each offset gives different characters. For
// each offset and alphabet three forms are listed:
//
//   - the characters that depend on the secret's bits only (what appears
//     whatever surrounds it),
//   - those plus the last, partly zero-filled character (the secret ends
//     the encoded value, unpadded),
//   - and that with its "=" padding.
//
// The first character at offsets 1 and 2 mixes in bits of the byte before
// the secret and cannot be known, so up to 4 bits of the secret's first
// byte stay visible in a base64 stream; the rest is masked.
func encodedForms(secret string) []string {
	var forms []string
	seen := map[string]bool{secret: true}
	add := func(f string) {
		if f != "" && !seen[f] {
			seen[f] = true
			forms = append(forms, f)
		}
	}
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.URLEncoding} {
		for off := range 3 {
			core, end, padded := base64Forms(enc, secret, off)
			add(core)
			add(end)
			add(padded)
		}
	}
	add(percentAll(secret, upperHex))
	add(percentAll(secret, lowerHex))
	add(url.QueryEscape(secret))
	add(url.PathEscape(secret))
	add(userinfoEscape(secret))
	add(jsonEscape(secret, true))
	add(jsonEscape(secret, false))
	return forms
}

// fmtForms returns how fmt prints secret held in a []byte, a [N]byte or a
// []rune: with %v (and so inside any struct, map or slice printed with %v
// or %+v) as decimal numbers between spaces, "[104 117 110 ...]", of which
// the numbers are listed (the brackets belong to the whole slice, which
// may hold more than the secret); with %x and %X as hex digits. The
// decimal code points are listed too when they differ from the bytes (a
// secret that is not ASCII).
func fmtForms(secret string) []string {
	b := []byte(secret)
	forms := []string{
		decimals(b),
		hex.EncodeToString(b),
		strings.ToUpper(hex.EncodeToString(b)),
	}
	if r := []rune(secret); len(r) != len(b) {
		forms = append(forms, decimals(r))
	}
	return forms
}

// decimals is fmt's %v of s without the brackets.
func decimals[T byte | rune](s []T) string {
	out := make([]byte, 0, 4*len(s))
	for i, c := range s {
		if i > 0 {
			out = append(out, ' ')
		}
		out = strconv.AppendInt(out, int64(c), 10)
	}
	return string(out)
}

// base64Forms encodes secret as if preceded by off bytes in the same
// base64 stream and returns the characters determined by the secret alone
// (core), those plus the final zero-filled character when the value ends
// with the secret (end), and end with its padding (padded).
func base64Forms(enc *base64.Encoding, secret string, off int) (core, end, padded string) {
	buf := make([]byte, off+len(secret))
	copy(buf[off:], secret)
	full := enc.EncodeToString(buf)
	// Character j covers bits [6j, 6j+6); the secret covers bits
	// [8*off, 8*(off+len)).
	lo := (8*off + 5) / 6
	hiBits := 8 * (off + len(secret))
	hi := hiBits / 6 // characters [lo, hi) lie wholly inside the secret
	if hi <= lo {
		return "", "", ""
	}
	core = full[lo:hi]
	unpadded := strings.TrimRight(full, "=")
	end = unpadded[lo:]
	padded = full[lo:]
	return core, end, padded
}

const (
	upperHex = "0123456789ABCDEF"
	lowerHex = "0123456789abcdef"
)

// percentAll escapes every byte outside RFC 3986's unreserved set.
func percentAll(s, hex string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if isUnreserved(c) {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('%')
		b.WriteByte(hex[c>>4])
		b.WriteByte(hex[c&15])
	}
	return b.String()
}

func isUnreserved(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
		c == '-' || c == '.' || c == '_' || c == '~'
}

// userinfoEscape is how net/url writes a password into a URL.
func userinfoEscape(s string) string {
	u := url.UserPassword("", s).String()
	return strings.TrimPrefix(u, ":")
}

// jsonEscape is secret as it appears inside a JSON string, with or without
// HTML escaping of <, > and &.
func jsonEscape(s string, html bool) string {
	var b bytes.Buffer
	e := json.NewEncoder(&b)
	e.SetEscapeHTML(html)
	if err := e.Encode(s); err != nil {
		return ""
	}
	out := bytes.TrimSuffix(b.Bytes(), []byte("\n"))
	if len(out) < 2 {
		return ""
	}
	return string(out[1 : len(out)-1])
}
