// Package shquote quotes words for a POSIX shell, for commands run by a
// remote sshd ("sh -c") and for the fix-it commands printed in errors.
package shquote

import "strings"

// Quote returns s as one shell word. A word made only of bytes that no
// POSIX shell treats specially (letters, digits and "_-./:@%+=,") is
// returned as it is; anything else is put in single quotes, inside which
// nothing is special, and each single quote in s becomes '\”. A leading
// '~' is quoted, so it is never expanded to a home directory.
func Quote(s string) string {
	if s == "" {
		return "''"
	}
	for i := 0; i < len(s); i++ {
		if !safe(s[i]) {
			return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
		}
	}
	return s
}

// Join quotes each argument and joins them with spaces, so a shell splits
// the result back into exactly args.
func Join(args []string) string {
	quoted := make([]string, len(args))
	for i, a := range args {
		quoted[i] = Quote(a)
	}
	return strings.Join(quoted, " ")
}

func safe(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	}
	return strings.IndexByte("_-./:@%+=,", c) >= 0
}
