// Package percent decodes percent-escapes (RFC 3986 section 2.1) the
// lenient way browsers and Node's querystring do: a well-formed %XX
// becomes its byte, anything else stays as it is, never an error.
package percent

// AppendDecode appends s to dst with every well-formed %XX decoded; with
// plusSpace, '+' becomes ' ' as in application/x-www-form-urlencoded.
func AppendDecode(dst, s []byte, plusSpace bool) []byte {
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '+' && plusSpace:
			dst = append(dst, ' ')
		case c == '%' && i+2 < len(s) && isHex(s[i+1]) && isHex(s[i+2]):
			dst = append(dst, unhex(s[i+1])<<4|unhex(s[i+2]))
			i += 2
		default:
			dst = append(dst, c)
		}
	}
	return dst
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func unhex(c byte) byte {
	switch {
	case c <= '9':
		return c - '0'
	case c <= 'F':
		return c - 'A' + 10
	}
	return c - 'a' + 10
}
