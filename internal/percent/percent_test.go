package percent

import (
	"net/url"
	"testing"
)

func TestAppendDecode(t *testing.T) {
	for _, tt := range []struct {
		in        string
		plusSpace bool
		want      string
	}{
		{"a%20b", false, "a b"},
		{"a+b", false, "a+b"},
		{"a+b", true, "a b"},
		{"%zz%4", false, "%zz%4"},
		{"%41%4a%4A", false, "AJJ"},
		{"%", false, "%"},
		{"100%", true, "100%"},
	} {
		if got := string(AppendDecode(nil, []byte(tt.in), tt.plusSpace)); got != tt.want {
			t.Errorf("AppendDecode(%q, %v) = %q, want %q", tt.in, tt.plusSpace, got, tt.want)
		}
	}
}

// FuzzAppendDecode checks against net/url wherever net/url accepts the
// input (it refuses malformed escapes, which this keeps).
func FuzzAppendDecode(f *testing.F) {
	for _, s := range []string{"a%20b", "a+b", "%zz", "%e2%82%ac", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if want, err := url.QueryUnescape(s); err == nil {
			if got := string(AppendDecode(nil, []byte(s), true)); got != want {
				t.Errorf("AppendDecode(%q, true) = %q, url.QueryUnescape = %q", s, got, want)
			}
		}
		if want, err := url.PathUnescape(s); err == nil {
			if got := string(AppendDecode(nil, []byte(s), false)); got != want {
				t.Errorf("AppendDecode(%q, false) = %q, url.PathUnescape = %q", s, got, want)
			}
		}
	})
}
