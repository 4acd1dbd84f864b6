package redact

import (
	"net/url"
	"strings"
)

// URL returns raw with DefaultMask in place of its password, of a bare
// user info token ("https://TOKEN@host"; not for ssh-like schemes, where
// it is a user name) and of the values of sensitive query and fragment
// parameters (password, token, access_token, secret, key, signature, code,
// ...; see the package documentation). It works on the text itself, so it
// also handles strings that net/url refuses (a bad escape, a space, a bad
// port) and scheme-less forms such as "user:pass@host/path". Everything
// else is kept byte for byte.
//
// An unescaped '/', '?' or '#' in a password ends the authority early
// ("ssh://u:pa/ss@host" has the host "u:pa" to net/url, which refuses it).
// So when an '@' follows and what precedes that separator is no
// [user[:password]@]host[:port], the user info is everything between "://"
// and the last '@', and it is masked whole: "ssh://[REDACTED]@host". When
// it does read as one, that reading stands: in "ssh://u:12/34@host" the
// host is "u", the port 12 and "/34@host" the path, as for net/url, and
// "https://example.com/@alice" keeps its path.
func URL(raw string) string {
	return redactURL(raw, func(dst []byte, _ string) []byte { return append(dst, DefaultMask...) })
}

// URL is the package-level URL with this Redactor's mask (or fingerprint,
// taken of the unescaped value) and with its literal secrets masked too.
func (r *Redactor) URL(raw string) string {
	s := redactURL(raw, func(dst []byte, v string) []byte { return r.appendMask(dst, []byte(v)) })
	// The URL parts are done; the patterns would only redact the masks
	// again.
	return r.redactString(s, false)
}

// sensitiveQueryKeys are matched exactly (case-insensitively) in URL
// queries, in addition to sensitiveKeys, which match the end of a key.
// Short names are safe here because a query key is a whole name.
var sensitiveQueryKeys = [...]string{
	"key", "sig", "code", "pass", "pwd", "auth", "jwt", "otp",
	"session", "sessionid", "session_id", "sid",
}

func isSensitiveQueryKey(k string) bool {
	if u, err := url.QueryUnescape(k); err == nil {
		k = u
	}
	b := []byte(k)
	for _, s := range sensitiveQueryKeys {
		if len(b) == len(s) && hasSuffixFold(b, s) {
			return true
		}
	}
	return isSensitiveName(b)
}

// isSensitiveName reports whether a key or attribute name ends with one of
// sensitiveKeys.
func isSensitiveName(b []byte) bool {
	if len(b) == 0 {
		return false
	}
	for _, s := range keysByLast[lower(b[len(b)-1])] {
		if hasSuffixFold(b, s) {
			return true
		}
	}
	return false
}

// redactURL does the work of URL; mask appends the replacement for a value
// (given unescaped when possible).
func redactURL(raw string, mask func(dst []byte, v string) []byte) string {
	var out []byte
	changed := false
	rest := raw
	scheme := ""
	authority := ""
	if i := strings.Index(raw, "://"); i >= 0 {
		j := i
		for j > 0 && (schemeByte[raw[j-1]] || raw[j-1] == '+' || raw[j-1] == '.') {
			j--
		}
		scheme = raw[j:i]
		out = append(out, raw[:i+3]...)
		rest = raw[i+3:]
		end := looseAuthorityEnd(rest)
		authority, rest = rest[:end], rest[end:]
	} else if strings.HasPrefix(raw, "//") {
		// Network-path reference: "//user:pass@host/path".
		out = append(out, "//"...)
		end := looseAuthorityEnd(raw[2:]) + 2
		authority, rest = raw[2:end], raw[end:]
	} else if end := indexAuthorityEnd(raw); strings.Contains(raw[:end], "@") {
		// Scheme-less: "user:pass@host/path" or scp-like "git@host:repo".
		scheme = "ssh"
		authority, rest = raw[:end], raw[end:]
	}
	if at := strings.LastIndexByte(authority, '@'); at >= 0 {
		ui := authority[:at]
		if strings.ContainsAny(ui, "/?#") {
			// A password cut short by a separator (see
			// looseAuthorityEnd): where the user name ends is unknown.
			out = mask(out, unescape(ui, url.PathUnescape))
			changed = true
		} else if c := strings.IndexByte(ui, ':'); c >= 0 {
			out = append(out, ui[:c+1]...)
			if pw := ui[c+1:]; pw != "" {
				out = mask(out, unescape(pw, url.PathUnescape))
				changed = true
			}
		} else if ui != "" && !isUserScheme([]byte(scheme)) {
			out = mask(out, unescape(ui, url.PathUnescape))
			changed = true
		} else {
			out = append(out, ui...)
		}
		out = append(out, authority[at:]...)
	} else {
		out = append(out, authority...)
	}

	// Path, then query and fragment parameters.
	q := strings.IndexAny(rest, "?#")
	if q < 0 {
		out = append(out, rest...)
		if !changed {
			return raw
		}
		return string(out)
	}
	out = append(out, rest[:q]...)
	rest = rest[q:]
	for rest != "" {
		// rest starts with '?' or '#': one parameter list up to the
		// next '#'.
		out = append(out, rest[0])
		rest = rest[1:]
		end := strings.IndexByte(rest, '#')
		if end < 0 {
			end = len(rest)
		}
		var ch bool
		out, ch = redactParams(out, rest[:end], mask)
		changed = changed || ch
		rest = rest[end:]
	}
	if !changed {
		return raw
	}
	return string(out)
}

// looseAuthorityEnd returns where the authority at the start of s, the part
// of raw after "://" or "//", ends. Normally at the first '/', '?' or '#';
// but when an '@' comes later and what stands before that first separator
// is no [user[:password]@]host[:port], an unescaped '/', '?' or '#' in a
// password cut it short: then the authority runs to the last '@' and on to
// the end of the host, so that no part of the password is left outside
// the user info.
func looseAuthorityEnd(s string) int {
	end := indexAuthorityEnd(s)
	at := strings.LastIndexByte(s, '@')
	if at < end {
		return end
	}
	hostPort := s[:end]
	if i := strings.LastIndexByte(hostPort, '@'); i >= 0 {
		hostPort = hostPort[i+1:]
	}
	if isHostPort(hostPort) {
		return end
	}
	return at + indexAuthorityEnd(s[at:])
}

// isHostPort reports whether s reads as host[:port]: a registered name or
// an IPv4 address (letters, digits, "-._~%" and bytes above 0x7f), or an IP
// literal in brackets, then optionally ':' and 1 to 5 digits.
func isHostPort(s string) bool {
	host, port := s, ""
	if i := strings.LastIndexByte(s, ':'); i >= 0 && !strings.HasSuffix(s, "]") {
		host, port = s[:i], s[i+1:]
		if port == "" || len(port) > 5 || strings.Trim(port, "0123456789") != "" {
			return false
		}
	}
	if strings.HasPrefix(host, "[") {
		return strings.HasSuffix(host, "]") && !strings.ContainsAny(host[1:len(host)-1], "[]/?#@")
	}
	if host == "" {
		return false
	}
	for i := 0; i < len(host); i++ {
		c := host[i]
		if c < 0x80 && !isAlnum(c) && strings.IndexByte("-._~%", c) < 0 {
			return false
		}
	}
	return true
}

// indexAuthorityEnd returns where the authority at the start of s ends.
// URL gets one URL, so unlike the stream pattern it lets spaces, quotes
// and backslashes belong to a (malformed) password; like net/url, an
// unescaped '/', '?' or '#' ends it.
func indexAuthorityEnd(s string) int {
	if i := strings.IndexAny(s, "/?#"); i >= 0 {
		return i
	}
	return len(s)
}

// redactParams appends the "k=v&k=v" list q with sensitive values masked.
func redactParams(out []byte, q string, mask func([]byte, string) []byte) ([]byte, bool) {
	changed := false
	for q != "" {
		end := strings.IndexAny(q, "&;")
		if end < 0 {
			end = len(q)
		}
		kv := q[:end]
		if eq := strings.IndexByte(kv, '='); eq >= 0 && eq+1 < len(kv) && isSensitiveQueryKey(kv[:eq]) {
			out = append(out, kv[:eq+1]...)
			out = mask(out, unescape(kv[eq+1:], url.QueryUnescape))
			changed = true
		} else {
			out = append(out, kv...)
		}
		if end < len(q) {
			out = append(out, q[end])
			end++
		}
		q = q[end:]
	}
	return out, changed
}

func unescape(s string, f func(string) (string, error)) string {
	if u, err := f(s); err == nil {
		return u
	}
	return s
}
