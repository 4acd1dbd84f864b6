package shquote

import (
	"os/exec"
	"strings"
	"testing"
)

// unquote splits a string made by Join back into words, the way a POSIX
// shell does for the subset Quote produces (bare safe bytes, single-quoted
// runs, backslash-escaped quotes, spaces between words).
func unquote(tb testing.TB, s string) []string {
	tb.Helper()
	var words []string
	var cur strings.Builder
	inWord := false
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == ' ':
			if inWord {
				words = append(words, cur.String())
				cur.Reset()
				inWord = false
			}
		case c == '\'':
			j := strings.IndexByte(s[i+1:], '\'')
			if j < 0 {
				tb.Fatalf("unterminated quote in %q", s)
			}
			cur.WriteString(s[i+1 : i+1+j])
			i += j + 1
			inWord = true
		case c == '\\':
			if i+1 >= len(s) {
				tb.Fatalf("trailing backslash in %q", s)
			}
			cur.WriteByte(s[i+1])
			i++
			inWord = true
		case safe(c):
			cur.WriteByte(c)
			inWord = true
		default:
			tb.Fatalf("unquoted special byte %q in %q", c, s)
		}
	}
	if inWord {
		words = append(words, cur.String())
	}
	return words
}

func TestQuote(t *testing.T) {
	for _, tt := range []struct{ in, want string }{
		{"", "''"},
		{"docker", "docker"},
		{"unix:///run/docker.sock", "unix:///run/docker.sock"},
		{"a b", "'a b'"},
		{"it's", `'it'\''s'`},
		{"~/.ssh/known_hosts", "'~/.ssh/known_hosts'"},
		{"$(reboot)", "'$(reboot)'"},
		{"[::1]:22", "'[::1]:22'"},
	} {
		if got := Quote(tt.in); got != tt.want {
			t.Errorf("Quote(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// TestJoinWithRealShell runs the quoted words through /bin/sh.
func TestJoinWithRealShell(t *testing.T) {
	sh, err := exec.LookPath("sh")
	if err != nil {
		t.Skip("no sh on this machine")
	}
	args := []string{"plain", "", "two words", "it's", "$HOME", "`id`", "~", "a\nb", "*", "\\", "\"q\""}
	out, err := exec.Command(sh, "-c", `for a in `+Join(args)+`; do printf '%s\0' "$a"; done`).Output()
	if err != nil {
		t.Fatal(err)
	}
	got := strings.Split(strings.TrimSuffix(string(out), "\x00"), "\x00")
	if strings.Join(got, "|") != strings.Join(args, "|") {
		t.Errorf("sh split Join(%q) into %q", args, got)
	}
}

// FuzzQuote checks that every string survives Quote as one word.
func FuzzQuote(f *testing.F) {
	for _, s := range []string{"", "docker", "it's", "a b", "'", "''", "\\'", "\x00\xff", "~user"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		words := unquote(t, Join([]string{s, "x"}))
		if len(words) != 2 || words[0] != s || words[1] != "x" {
			t.Errorf("Join(%q, x) splits into %q", s, words)
		}
	})
}
