package sse

import "unicode/utf8"

// appendJSString appends p as a JSON string literal exactly as JavaScript's
// JSON.stringify writes the string docker-ssh decoded from the same bytes
// (ECMA-262 QuoteJSONString): '"' and '\' escaped, \b \t \n \f \r, other
// controls below U+0020 as \u00xx with lowercase hex, everything else,
// DEL and U+2028/U+2029 included, as is. Go's encoding/json differs (it
// escapes <, >, &, U+2028 and U+2029 and replaces invalid UTF-8), so it is
// not used.
//
// Bytes that are not part of valid UTF-8 cannot be characters; each is
// written as the lone surrogate \udcXX (U+DC80..U+DCFF for bytes
// 0x80..0xFF), the "surrogateescape" mapping of PEP 383. No valid UTF-8
// input produces a surrogate, so the mapping can be undone exactly:
// a client turns U+DC80..U+DCFF back into single bytes and encodes every
// other character as UTF-8. JSON.stringify writes lone surrogates the same
// way since ES2019 ("well-formed JSON.stringify").
func appendJSString(dst, p []byte) []byte {
	const hex = "0123456789abcdef"
	dst = append(dst, '"')
	start := 0 // p[start:i] is pending literal output
	for i := 0; i < len(p); {
		b := p[i]
		if b >= 0x20 && b < utf8.RuneSelf && b != '"' && b != '\\' {
			i++
			continue
		}
		if b >= utf8.RuneSelf {
			r, size := utf8.DecodeRune(p[i:])
			if r != utf8.RuneError || size != 1 {
				i += size
				continue
			}
		}
		dst = append(dst, p[start:i]...)
		switch b {
		case '"', '\\':
			dst = append(dst, '\\', b)
		case '\b':
			dst = append(dst, '\\', 'b')
		case '\t':
			dst = append(dst, '\\', 't')
		case '\n':
			dst = append(dst, '\\', 'n')
		case '\f':
			dst = append(dst, '\\', 'f')
		case '\r':
			dst = append(dst, '\\', 'r')
		default:
			if b < 0x20 {
				dst = append(dst, '\\', 'u', '0', '0', hex[b>>4], hex[b&0xf])
			} else { // a byte that is not part of valid UTF-8
				dst = append(dst, '\\', 'u', 'd', 'c', hex[b>>4], hex[b&0xf])
			}
		}
		i++
		start = i
	}
	dst = append(dst, p[start:]...)
	return append(dst, '"')
}

// completeUTF8 returns the length of the longest prefix of p that does not
// end inside a UTF-8 sequence that more bytes could still complete, so a
// character is never split across two events. Invalid bytes are complete:
// they are sent at once (escaped). At most the last three bytes are held.
func completeUTF8(p []byte) int {
	for i := len(p) - 1; i >= 0 && i >= len(p)-utf8.UTFMax+1; i-- {
		if utf8.RuneStart(p[i]) {
			if utf8.FullRune(p[i:]) {
				return len(p)
			}
			return i
		}
	}
	return len(p)
}

// skipContinuation returns how many leading bytes of p (at most three) are
// UTF-8 continuation bytes: after lost output, the replay starts at the
// next character instead of with the orphaned tail of one.
func skipContinuation(p []byte) int {
	n := 0
	for n < len(p) && n < utf8.UTFMax-1 && !utf8.RuneStart(p[n]) {
		n++
	}
	return n
}
