package logtext

import (
	"net"
	"strings"
	"testing"
)

func TestClip(t *testing.T) {
	for _, tt := range []struct {
		s    string
		n    int
		want string
	}{
		{"short", 10, "short"},
		{"exactly", 7, "exactly"},
		{"too long", 3, "too..."},
		{"x", -1, "..."},
	} {
		if got := Clip(tt.s, tt.n); got != tt.want {
			t.Errorf("Clip(%q, %d) = %q, want %q", tt.s, tt.n, got, tt.want)
		}
	}
}

func TestAddr(t *testing.T) {
	if got := Addr(nil); got != "" {
		t.Errorf("Addr(nil) = %q, want empty", got)
	}
	a := &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 22}
	if got := Addr(a); got != "127.0.0.1:22" {
		t.Errorf("Addr(%v) = %q, want 127.0.0.1:22", a, got)
	}
}

// FuzzClip checks the bound: never more than n bytes of s plus "...".
func FuzzClip(f *testing.F) {
	f.Add("hello", 3)
	f.Add(strings.Repeat("x", 100), 64)
	f.Fuzz(func(t *testing.T, s string, n int) {
		got := Clip(s, n)
		limit := max(n, 0) + len("...")
		if len(got) > limit || !strings.HasPrefix(s, strings.TrimSuffix(got, "...")) {
			t.Errorf("Clip(%q, %d) = %q", s, n, got)
		}
	})
}
