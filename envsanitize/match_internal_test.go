package envsanitize

import (
	"strings"
	"testing"
)

// refMatch is the textbook dynamic program for '*' and '?' globbing: slow
// (len(p)*len(s)) but obviously right, the oracle for match.
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

// naiveSteps counts the steps of a recursive backtracking matcher, the
// shape of sshd's match_pattern and of many Go ports, giving up after
// budget steps. It exists to show the blow-up match avoids.
func naiveSteps(p, s string, budget int) int {
	steps := 0
	var rec func(p, s string) bool
	rec = func(p, s string) bool {
		for {
			steps++
			if steps > budget {
				return false
			}
			if p == "" {
				return s == ""
			}
			if p[0] == '*' {
				for i := 0; i <= len(s); i++ {
					if rec(p[1:], s[i:]) {
						return true
					}
					if steps > budget {
						return false
					}
				}
				return false
			}
			if s == "" || (p[0] != '?' && p[0] != s[0]) {
				return false
			}
			p, s = p[1:], s[1:]
		}
	}
	rec(p, s)
	return steps
}

// stepBound is what match promises: one pass over the pattern, then per
// byte of the name one operation per 64 pattern bytes.
func stepBound(pattern, name string) int {
	return len(pattern) + len(name)*(len(pattern)/64+1)
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

// TestMatchSteps proves by counting, not timing, that patterns which make
// a backtracking matcher explode cost match one pass over the name.
func TestMatchSteps(t *testing.T) {
	longA := strings.Repeat("a", 10000)
	tests := []struct {
		name, pattern, subject string
	}{
		{"many stars", strings.Repeat("*", 10000) + "b", longA},
		{"many stars between literals", "a" + strings.Repeat("*", 5000) + "a" + strings.Repeat("*", 5000) + "b", longA},
		{"alternating stars", strings.Repeat("*a", 30) + "b", longA},
		{"alternating stars over 64 tokens", strings.Repeat("*a", 100) + "b", longA},
		{"stars and questions", strings.Repeat("*?", 40) + "b", longA},
		{"long literal after star", "*" + strings.Repeat("a", 200) + "b", longA},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, steps := match(tt.pattern, tt.subject, false)
			if got {
				t.Fatalf("match(%q..., %q...) = true, want false", tt.pattern[:10], tt.subject[:10])
			}
			if bound := stepBound(tt.pattern, tt.subject); steps > bound {
				t.Errorf("match took %d steps, want at most %d", steps, bound)
			}
			// The same pattern with a tail that matches must succeed,
			// within the same bound.
			ok, steps := match(tt.pattern, tt.subject+"b", false)
			if !ok {
				t.Errorf("match(pattern, subject+\"b\") = false, want true")
			}
			if bound := stepBound(tt.pattern, tt.subject+"b"); steps > bound {
				t.Errorf("match took %d steps, want at most %d", steps, bound)
			}
		})
	}

	// The contrast: a backtracking matcher on a 30-byte name and a short
	// pattern already needs millions of steps; match needs a few dozen.
	pattern, subject := "*a*a*a*a*a*a*b", strings.Repeat("a", 30)
	const budget = 1_000_000
	if n := naiveSteps(pattern, subject, budget); n <= budget {
		t.Errorf("backtracking matcher took %d steps, expected to exceed %d (test premise broken)", n, budget)
	}
	if _, steps := match(pattern, subject, false); steps > stepBound(pattern, subject) {
		t.Errorf("match took %d steps, want at most %d", steps, stepBound(pattern, subject))
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
		got, steps := match(pattern, name, false)
		if want := refMatch(pattern, name); got != want {
			t.Fatalf("match(%q, %q) = %v, want %v", pattern, name, got, want)
		}
		if bound := stepBound(pattern, name); steps > bound {
			t.Fatalf("match(%q, %q) took %d steps, want at most %d", pattern, name, steps, bound)
		}
		gotFold, steps := match(pattern, name, true)
		if want := refMatch(upperASCII(pattern), upperASCII(name)); gotFold != want {
			t.Fatalf("matchFold(%q, %q) = %v, want %v", pattern, name, gotFold, want)
		}
		if bound := stepBound(pattern, name); steps > bound {
			t.Fatalf("matchFold(%q, %q) took %d steps, want at most %d", pattern, name, steps, bound)
		}
	})
}
