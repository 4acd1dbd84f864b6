package envsanitize

import "github.com/dockssh/dockssh/internal/sshmatch"

// Match reports whether name matches pattern in the syntax of OpenSSH's
// AcceptEnv: '*' matches any run of bytes (also none), '?' exactly one byte,
// every other byte itself. There is no escaping and there are no character
// classes. Matching is case-sensitive, as in sshd.
//
// It is OpenSSH's match_pattern without its exponential worst case: a
// literal pattern, or a literal prefix and one trailing '*', is one string
// comparison; any other pattern backtracks only to its last '*', so a
// match costs at most about len(pattern)·len(name) byte comparisons. A
// Policy checks a name's length (MaxNameLen) before any pattern runs on it.
func Match(pattern, name string) bool {
	return sshmatch.Glob(pattern, name)
}

// matchFold is Match with ASCII letters compared without case, for the deny
// side, where matching too much is the safe error.
func matchFold(pattern, name string) bool {
	return sshmatch.GlobFold(pattern, name)
}

func upper(c byte) byte {
	if 'a' <= c && c <= 'z' {
		return c - ('a' - 'A')
	}
	return c
}
