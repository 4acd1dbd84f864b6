// Package sshmatch implements OpenSSH's wildcard patterns and pattern
// lists (match_pattern and match_pattern_list in OpenSSH's match.c), as
// used by ssh_config Host lines, known_hosts host fields, from= options and
// AcceptEnv.
package sshmatch

import "strings"

// Glob reports whether s matches pattern, where '*' matches any run of
// bytes (also none), '?' exactly one byte and every other byte itself.
// There is no escaping and there are no character classes.
//
// It gives OpenSSH's answers, but where OpenSSH's recursive matcher is
// exponential on patterns like "*a*a*a*a*b", Glob backtracks only to the
// most recent '*': O(len(pattern)*len(s)) at worst, and a single pass for
// the shapes of nearly every real pattern (a literal, or a literal prefix
// and one trailing '*').
func Glob(pattern, s string) bool {
	return glob(pattern, s, false)
}

// GlobFold is Glob with ASCII letters compared without case.
func GlobFold(pattern, s string) bool {
	return glob(pattern, s, true)
}

func glob(pattern, s string, fold bool) bool {
	if !strings.Contains(pattern, "?") {
		switch star := strings.IndexByte(pattern, '*'); {
		case star < 0:
			return equal(pattern, s, fold)
		case star == len(pattern)-1:
			return len(s) >= star && equal(pattern[:star], s[:star], fold)
		}
	}
	p, i := 0, 0
	starP, starI := -1, 0
	for i < len(s) {
		switch {
		case p < len(pattern) && pattern[p] == '*':
			starP, starI = p, i
			p++
		case p < len(pattern) && (pattern[p] == '?' || byteEqual(pattern[p], s[i], fold)):
			p++
			i++
		case starP >= 0:
			// Let the last '*' swallow one more byte and retry. Earlier
			// stars never need to: whatever they could absorb, the last
			// one can as well.
			starI++
			i = starI
			p = starP + 1
		default:
			return false
		}
	}
	for p < len(pattern) && pattern[p] == '*' {
		p++
	}
	return p == len(pattern)
}

// EqualFold reports whether a and b are equal with ASCII letters compared
// without case (no Unicode folding: "ſ" is not "s"), as OpenSSH compares
// names.
func EqualFold(a, b string) bool { return equal(a, b, true) }

func equal(a, b string, fold bool) bool {
	if !fold {
		return a == b
	}
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		if lower(a[i]) != lower(b[i]) {
			return false
		}
	}
	return true
}

func byteEqual(a, b byte, fold bool) bool {
	return a == b || fold && lower(a) == lower(b)
}

func lower(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		return c + ('a' - 'A')
	}
	return c
}

// Pattern is one entry of a pattern list: a glob, negated by a leading '!'.
type Pattern struct {
	Negate bool
	Glob   string
}

// List is an OpenSSH pattern list (match_pattern_list): a name matches when
// at least one positive pattern matches it and no negated pattern does.
// The zero List matches nothing.
type List struct {
	patterns []Pattern
	fold     bool
}

// NewList compiles patterns, each of which may start with '!'. With fold,
// ASCII letters are compared without case, as OpenSSH does for host names
// (the compiled patterns are then lower case).
func NewList(patterns []string, fold bool) List {
	l := List{patterns: make([]Pattern, 0, len(patterns)), fold: fold}
	for _, p := range patterns {
		neg := strings.HasPrefix(p, "!")
		if neg {
			p = p[1:]
		}
		if fold {
			p = strings.ToLower(p)
		}
		l.patterns = append(l.patterns, Pattern{Negate: neg, Glob: p})
	}
	return l
}

// SplitList compiles a comma-separated pattern list, as written in
// known_hosts host fields, Match arguments and from= options.
func SplitList(list string, fold bool) List {
	return NewList(strings.Split(list, ","), fold)
}

// Patterns returns the compiled patterns, in order.
func (l List) Patterns() []Pattern { return l.patterns }

// Match reports whether name matches the list.
func (l List) Match(name string) bool {
	matched := false
	for _, p := range l.patterns {
		if !glob(p.Glob, name, l.fold) {
			continue
		}
		if p.Negate {
			return false
		}
		matched = true
	}
	return matched
}

// Literals returns the names the list matches when it is made only of
// positive patterns without wildcards (so a caller can index it in a map),
// and ok false otherwise.
func (l List) Literals() (names []string, ok bool) {
	for _, p := range l.patterns {
		if p.Negate || strings.ContainsAny(p.Glob, "*?") {
			return nil, false
		}
		names = append(names, p.Glob)
	}
	return names, len(names) > 0
}
