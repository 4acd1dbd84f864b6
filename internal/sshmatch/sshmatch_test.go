package sshmatch

import (
	"strings"
	"testing"
)

// reference is OpenSSH's recursive match_pattern, transcribed: exponential
// on hostile patterns, obviously right on small ones.
func reference(pattern, s string, fold bool) bool {
	for {
		if pattern == "" {
			return s == ""
		}
		if pattern[0] == '*' {
			for len(pattern) > 0 && pattern[0] == '*' {
				pattern = pattern[1:]
			}
			if pattern == "" {
				return true
			}
			for i := 0; i <= len(s); i++ {
				if reference(pattern, s[i:], fold) {
					return true
				}
			}
			return false
		}
		if s == "" {
			return false
		}
		if pattern[0] != '?' && !byteEqual(pattern[0], s[0], fold) {
			return false
		}
		pattern, s = pattern[1:], s[1:]
	}
}

func TestGlob(t *testing.T) {
	tests := []struct {
		pattern, s string
		want       bool
	}{
		{"", "", true},
		{"", "a", false},
		{"*", "", true},
		{"*", "anything", true},
		{"?", "", false},
		{"?", "a", true},
		{"a?c", "abc", true},
		{"LC_*", "LC_ALL", true},
		{"LC_*", "LC", false},
		{"*.example.com", "host.example.com", true},
		{"*.example.com", "example.com", false},
		{"[*.example.com]:*", "[a.example.com]:2222", true},
		{"*a*b", "aaab", true},
		{"*a*b", "aaa", false},
		{"a*b*c", "abbbc", true},
		{"a*b*c", "acb", false},
		{"**", "x", true},
		{"*?", "", false},
		{"*?", "x", true},
		{"exact", "exact", true},
		{"exact", "Exact", false},
	}
	for _, tt := range tests {
		if got := Glob(tt.pattern, tt.s); got != tt.want {
			t.Errorf("Glob(%q, %q) = %v, want %v", tt.pattern, tt.s, got, tt.want)
		}
		if got := reference(tt.pattern, tt.s, false); got != tt.want {
			t.Errorf("reference(%q, %q) = %v, want %v (the table is wrong)", tt.pattern, tt.s, got, tt.want)
		}
	}
}

func TestGlobFold(t *testing.T) {
	for _, tt := range []struct {
		pattern, s string
		want       bool
	}{
		{"LD_*", "ld_preload", true},
		{"*PRELOAD", "Ld_Preload", true},
		{"a?C", "ABc", true},
		{"abc", "abd", false},
	} {
		if got := GlobFold(tt.pattern, tt.s); got != tt.want {
			t.Errorf("GlobFold(%q, %q) = %v, want %v", tt.pattern, tt.s, got, tt.want)
		}
	}
}

// TestGlobHostile checks that a pattern which makes OpenSSH's matcher
// exponential stays cheap: it would not finish here if Glob recursed.
func TestGlobHostile(t *testing.T) {
	pattern := strings.Repeat("*a", 40) + "*b"
	s := strings.Repeat("a", 4000)
	if Glob(pattern, s) {
		t.Fatalf("Glob(%q, a*4000) = true, want false", pattern)
	}
}

func TestList(t *testing.T) {
	tests := []struct {
		list string
		fold bool
		name string
		want bool
	}{
		{"*.example.com,!bad.example.com", true, "good.example.com", true},
		{"*.example.com,!bad.example.com", true, "BAD.example.com", false},
		{"!bad.example.com", true, "good.example.com", false}, // only negations never match
		{"a,b,c", false, "b", true},
		{"a,b,c", false, "B", false},
		{"A,b", true, "a", true},
		{"", false, "", true}, // an empty pattern matches the empty name, as in OpenSSH
	}
	for _, tt := range tests {
		if got := SplitList(tt.list, tt.fold).Match(tt.name); got != tt.want {
			t.Errorf("SplitList(%q, %v).Match(%q) = %v, want %v", tt.list, tt.fold, tt.name, got, tt.want)
		}
	}
	var zero List
	if zero.Match("x") {
		t.Errorf("List{}.Match(%q) = true, want false", "x")
	}
}

func TestLiterals(t *testing.T) {
	if names, ok := SplitList("Host.Example,other", true).Literals(); !ok || strings.Join(names, " ") != "host.example other" {
		t.Errorf("Literals() = %q, %v, want [host.example other], true", names, ok)
	}
	for _, l := range []string{"a,*.b", "a,!b", "a?"} {
		if _, ok := SplitList(l, false).Literals(); ok {
			t.Errorf("SplitList(%q).Literals() ok = true, want false", l)
		}
	}
}

// FuzzGlob compares Glob and GlobFold with OpenSSH's recursive matcher.
func FuzzGlob(f *testing.F) {
	for _, seed := range [][2]string{
		{"*.example.com", "a.example.com"},
		{"[*.example.com]:*", "[a.example.com]:22"},
		{"LC_*", "LC_ALL"},
		{"*a*b?c*", "xxaxbyc"},
		{"BASH_FUNC_*%%", "BASH_FUNC_x%%"},
		{"192.168.?.*", "192.168.1.20"},
		{"", ""},
	} {
		f.Add(seed[0], seed[1])
	}
	f.Fuzz(func(t *testing.T, pattern, s string) {
		// Keep the exponential reference affordable.
		if len(pattern) > 24 || len(s) > 48 || strings.Count(pattern, "*") > 6 {
			return
		}
		if got, want := Glob(pattern, s), reference(pattern, s, false); got != want {
			t.Errorf("Glob(%q, %q) = %v, want %v", pattern, s, got, want)
		}
		if got, want := GlobFold(pattern, s), reference(pattern, s, true); got != want {
			t.Errorf("GlobFold(%q, %q) = %v, want %v", pattern, s, got, want)
		}
	})
}

func BenchmarkGlob(b *testing.B) {
	for _, c := range []struct{ name, pattern, s string }{
		{"literal", "LANG", "LANG"},
		{"prefix", "LC_*", "LC_MESSAGES"},
		{"infix", "*PASSWORD*", "DATABASE_PASSWORD_FILE"},
		{"host", "*.example.com", "build-42.eu.example.com"},
	} {
		b.Run(c.name, func(b *testing.B) {
			for b.Loop() {
				Glob(c.pattern, c.s)
			}
		})
	}
}
