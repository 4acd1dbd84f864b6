package envsanitize

import "strings"

// Match reports whether name matches pattern in the syntax of OpenSSH's
// AcceptEnv: '*' matches any run of bytes (also none), '?' exactly one byte,
// every other byte itself. There is no escaping and there are no character
// classes. Matching is case-sensitive, as in sshd.
//
// Match never backtracks. A pattern made only of literals, or of literals
// and one trailing '*', is a string comparison. Any other pattern runs as a
// bit-parallel automaton over the name: one pass, each byte of the name
// costing one word operation per 64 pattern bytes, whatever the pattern
// (sshd's own matcher and naive recursive globbers are exponential on
// patterns like "*a*a*a*a*b").
func Match(pattern, name string) bool {
	ok, _ := match(pattern, name, false)
	return ok
}

// matchFold is Match with ASCII letters compared without case, for the deny
// side, where matching too much is the safe error.
func matchFold(pattern, name string) bool {
	ok, _ := match(pattern, name, true)
	return ok
}

// match reports whether name matches pattern and how many steps it took. A
// step is one word operation of the automaton (or one byte compared on the
// fast paths); tests count steps to prove the cost stays linear in the name.
func match(pattern, name string, fold bool) (bool, int) {
	star := strings.IndexByte(pattern, '*')
	if strings.IndexByte(pattern, '?') < 0 {
		switch {
		case star < 0:
			// Plain literal.
			return equal(pattern, name, fold), len(pattern)
		case star == len(pattern)-1:
			// Literal prefix then '*': the shape of nearly every real
			// pattern ("LC_*", "*").
			prefix := pattern[:star]
			return len(name) >= len(prefix) && equal(prefix, name[:len(prefix)], fold), len(prefix)
		}
	}
	return matchNFA(pattern, name, fold)
}

// equal reports whether a and b are equal, ignoring ASCII case if fold.
func equal(a, b string, fold bool) bool {
	if !fold {
		return a == b
	}
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		if upper(a[i]) != upper(b[i]) {
			return false
		}
	}
	return true
}

func upper(c byte) byte {
	if 'a' <= c && c <= 'z' {
		return c - ('a' - 'A')
	}
	return c
}

func lower(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		return c + ('a' - 'A')
	}
	return c
}

// matchNFA simulates the pattern's nondeterministic automaton with one bit
// per state (shift-and). After runs of '*' are collapsed to one, the pattern
// is a sequence of tokens t[0..m-1]; state i means "t[:i] matched so far",
// state m accepts. A literal or '?' at i moves state i to i+1 on a matching
// byte; a '*' at i keeps state i on any byte and also stands for state i+1
// at once (an empty run). Because '*' never follows '*' after collapsing,
// one shift closes the empty runs.
func matchNFA(pattern, name string, fold bool) (bool, int) {
	steps := len(pattern) // compiling reads the pattern once

	// Collapse runs of '*'.
	tok := make([]byte, 0, len(pattern))
	for i := 0; i < len(pattern); i++ {
		if pattern[i] == '*' && len(tok) > 0 && tok[len(tok)-1] == '*' {
			continue
		}
		tok = append(tok, pattern[i])
	}
	m := len(tok)
	words := (m + 1 + 63) / 64 // states 0..m

	// Masks: stars, '?', and one mask per distinct literal byte. slot[c] is
	// 1 + the index of byte c's mask in lit, or 0 when c is no literal.
	var slot [256]uint16
	starM := make([]uint64, words)
	anyM := make([]uint64, words)
	var lit []uint64
	addLit := func(c byte, i int) {
		if slot[c] == 0 {
			lit = append(lit, make([]uint64, words)...)
			slot[c] = uint16(len(lit) / words)
		}
		lit[(int(slot[c])-1)*words+i/64] |= 1 << (i % 64)
	}
	for i, c := range tok {
		switch c {
		case '*':
			starM[i/64] |= 1 << (i % 64)
		case '?':
			anyM[i/64] |= 1 << (i % 64)
		default:
			if fold {
				addLit(upper(c), i)
				if lower(c) != upper(c) {
					addLit(lower(c), i)
				}
			} else {
				addLit(c, i)
			}
		}
	}

	cur := make([]uint64, words)
	next := make([]uint64, words)
	cur[0] = 1
	closeStars(cur, starM)

	for j := 0; j < len(name); j++ {
		var litM []uint64
		if s := slot[name[j]]; s != 0 {
			litM = lit[(int(s)-1)*words : int(s)*words]
		}
		var carry uint64
		alive := uint64(0)
		for w := 0; w < words; w++ {
			adv := anyM[w]
			if litM != nil {
				adv |= litM[w]
			}
			moved := cur[w] & adv
			next[w] = moved<<1 | carry | cur[w]&starM[w]
			carry = moved >> 63
			steps++
		}
		closeStars(next, starM)
		for w := 0; w < words; w++ {
			alive |= next[w]
		}
		if alive == 0 {
			return false, steps
		}
		cur, next = next, cur
	}
	return cur[m/64]&(1<<(m%64)) != 0, steps
}

// closeStars adds state i+1 for every active star state i: an empty run.
func closeStars(d, starM []uint64) {
	var carry uint64
	for w := range d {
		d[w] |= carry
		s := d[w] & starM[w]
		d[w] |= s << 1
		carry = s >> 63
	}
}
