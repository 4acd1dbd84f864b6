package envsanitize

import (
	"strings"
	"testing"
)

// refMatch is the textbook dynamic program for '*' and '?' globbing: slow
// (len(p)*len(s)) but obviously right, the oracle for Match and matchFold
// (which are internal/sshmatch's, fuzzed there against OpenSSH's
// recursive matcher; this checks the AcceptEnv semantics they promise).
func refMatch(p, s string) bool {
	// prev[j]: p[:i] matches s[:j].
	prev := make([]bool, len(s)+1)
	cur := make([]bool, len(s)+1)
	prev[0] = true
	for i := 0; i < len(p); i++ {
		cur[0] = prev[0] && p[i] == '*'
		for j := 1; j <= len(s); j++ {
			switch p[i] {
			case '*':
				cur[j] = prev[j] || cur[j-1]
			case '?':
				cur[j] = prev[j-1]
			default:
				cur[j] = prev[j-1] && p[i] == s[j-1]
			}
		}
		prev, cur = cur, prev
	}
	return prev[len(s)]
}

func upperASCII(s string) string {
	b := []byte(s)
	for i := range b {
		b[i] = upper(b[i])
	}
	return string(b)
}

func TestMatch(t *testing.T) {
	tests := []struct {
		pattern, name string
		want          bool
	}{
		{"LANG", "LANG", true},
		{"LANG", "LANGUAGE", false},
		{"LANG", "lang", false},
		{"LC_*", "LC_ALL", true},
		{"LC_*", "LC_", true},
		{"LC_*", "LC", false},
		{"*", "", true},
		{"*", "ANY", true},
		{"", "", true},
		{"", "X", false},
		{"?", "", false},
		{"?", "X", true},
		{"LC_?", "LC_A", true},
		{"LC_?", "LC_AB", false},
		{"*_PROXY", "HTTPS_PROXY", true},
		{"*_PROXY", "HTTPS_PROXY_X", false},
		{"*PROXY*", "NO_PROXY_LIST", true},
		{"A*B*C", "AXXBYYC", true},
		{"A*B*C", "AXXCYYB", false},
		{"A**B", "AB", true},
		{"*?", "", false},
		{"*?", "X", true},
		{"?*?", "X", false},
		{"?*?", "XY", true},
		{"a*a*a*a*b", strings.Repeat("a", 40), false},
		{"a*a*a*a*b", strings.Repeat("a", 40) + "b", true},
	}
	for _, tt := range tests {
		if got := Match(tt.pattern, tt.name); got != tt.want {
			t.Errorf("Match(%q, %q) = %v, want %v", tt.pattern, tt.name, got, tt.want)
		}
		if ref := refMatch(tt.pattern, tt.name); ref != tt.want {
			t.Errorf("refMatch(%q, %q) = %v, want %v (broken oracle)", tt.pattern, tt.name, ref, tt.want)
		}
	}
}

func TestMatchFold(t *testing.T) {
	tests := []struct {
		pattern, name string
		want          bool
	}{
		{"LD_*", "ld_preload", true},
		{"ld_*", "LD_PRELOAD", true},
		{"Ld_PrEload", "LD_PRELOAD", true},
		{"*_preload", "LD_PRELOAD", true},
		{"L?_*", "lD_x", true},
		{"LD_*", "LX_", false},
		{"_", "_", true},
		{"[", "{", false}, // not letters: no folding
	}
	for _, tt := range tests {
		if got := matchFold(tt.pattern, tt.name); got != tt.want {
			t.Errorf("matchFold(%q, %q) = %v, want %v", tt.pattern, tt.name, got, tt.want)
		}
	}
}

func FuzzMatch(f *testing.F) {
	seeds := [][2]string{
		{"LANG", "LANG"},
		{"LC_*", "LC_ALL"},
		{"*", "PATH"},
		{"*_PROXY", "https_proxy"},
		{"?*?", "XY"},
		{"a*a*a*a*b", "aaaaaaaaaaaaaaaaaaaaaaab"},
		{"**?**", ""},
		{strings.Repeat("*a", 70) + "b", strings.Repeat("a", 300)},
		{"LD_*", "ld_preload"},
	}
	for _, s := range seeds {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, pattern, name string) {
		if len(pattern) > 2000 || len(name) > 2000 {
			return // keep the quadratic oracle cheap
		}
		if got, want := Match(pattern, name), refMatch(pattern, name); got != want {
			t.Fatalf("Match(%q, %q) = %v, want %v", pattern, name, got, want)
		}
		if got, want := matchFold(pattern, name), refMatch(upperASCII(pattern), upperASCII(name)); got != want {
			t.Fatalf("matchFold(%q, %q) = %v, want %v", pattern, name, got, want)
		}
	})
}
