package dialer

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestParseURL(t *testing.T) {
	cases := []struct {
		in      string
		want    target
		display string
	}{
		{"ssh://host", target{host: "host"}, "ssh://host"},
		{"ssh://me@host:2222", target{user: "me", host: "host", port: 2222}, "ssh://me@host:2222"},
		{"ssh://me:s3cret@host", target{user: "me", password: []byte("s3cret"), host: "host"}, "ssh://me:xxxxx@host"},
		{"ssh://me:p%40ss@host", target{user: "me", password: []byte("p@ss"), host: "host"}, "ssh://me:xxxxx@host"},
		{"ssh://[::1]:22", target{host: "::1", port: 22}, "ssh://[::1]:22"},
		{"ssh://[fe80::1]", target{host: "fe80::1"}, "ssh://[fe80::1]"},
		{"ssh://host/", target{host: "host"}, "ssh://host"},
		{"ssh://host/run/user/1000/docker.sock", target{host: "host", socket: "/run/user/1000/docker.sock"}, "ssh://host/run/user/1000/docker.sock"},
		{"ssh://host/with%20space.sock", target{host: "host", socket: "/with space.sock"}, "ssh://host/with space.sock"},
		{"SSH://host", target{host: "host"}, "ssh://host"},
	}
	for _, tc := range cases {
		got, err := parseURL(tc.in)
		if !assert.NoError(t, err, tc.in) {
			continue
		}
		assert.Equal(t, tc.want, *got, "parseURL(%q)", tc.in)
		assert.Equal(t, tc.display, got.redacted(), "redacted(%q)", tc.in)
	}
}

func TestParseURLErrors(t *testing.T) {
	cases := map[string]string{
		"":                               "scheme",
		"host":                           "scheme",
		"tcp://host:2375":                "scheme",
		"ssh:host":                       "ssh://host",
		"ssh://":                         "host is empty",
		"ssh://user@":                    "host is empty",
		"ssh://host:":                    "port is empty",
		"ssh://host:0":                   "port",
		"ssh://host:65536":               "port",
		"ssh://host:ssh":                 "port",
		"ssh://host?socket=/x":           "query",
		"ssh://host?":                    "query",
		"ssh://host#x":                   "fragment",
		"ssh://host/#":                   "fragment",
		"ssh://-oProxyCommand=evil":      "host",
		"ssh://[::1":                     "URL",
		"ssh://host/a\\b":                "backslash",
		"ssh://host/a%0Ab":               "control",
		"ssh://us%0Aer@host":             "control",
		"ssh://user:pa ss@host":          "URL",
		"ssh://host%2Fpath":              "URL",
		"ssh://user:secret@host:bad":     "port",
		"ssh://user:secret@host:9999999": "port",
		"ssh://user:12/secret@host":      "'@' after the host",
		"ssh://user:se?cret@host":        "'@' after the host",
		"ssh://user:se#cret@host":        "'@' after the host",
	}
	for in, want := range cases {
		_, err := parseURL(in)
		if assert.Error(t, err, in) {
			assert.Contains(t, err.Error(), want, "parseURL(%q)", in)
			assert.NotContains(t, err.Error(), "secret", "parseURL(%q) leaks", in)
		}
	}
}

func TestRejectedURL(t *testing.T) {
	for in, want := range map[string]string{
		"ssh://user:Sup3r/S3cret@host":          "ssh://[REDACTED]@host",
		"ssh://user:Sup3r?S3cret@host:22/x":     "ssh://[REDACTED]@host:22/x",
		"ssh://user:Sup3r#S3cret@host":          "ssh://[REDACTED]@host",
		"ssh://admin:hunter2@host:22?socket=/x": "ssh://[REDACTED]@host:22?socket=/x",
		"ssh://host:0":                          "ssh://host:0",
		"user:pw/x@host":                        "[REDACTED]@host",
		"ssh://u:p@h/a\nb?token=t":              "ssh://[REDACTED]@h/a?b?token=[REDACTED]",
		"ssh://u:p@h/\x1b[31m":                  "ssh://[REDACTED]@h/?[31m",
		"ssh://h/" + strings.Repeat("a", 300):   "ssh://h/" + strings.Repeat("a", maxShownURL-len("ssh://h/")) + "...",
	} {
		assert.Equal(t, want, rejectedURL(in), "rejectedURL(%q)", in)
	}
}

// FuzzParseURL checks that parsing never panics, that a parsed URL prints
// without its password, and that errors never quote the input's password.
func FuzzParseURL(f *testing.F) {
	for _, s := range []string{
		"ssh://host", "ssh://u:p@h:22/s", "ssh://[::1]:2222/var/run/docker.sock",
		"ssh://u:p%40@h", "ssh://h?x#y", "ssh://u:p@[fe80::1%25eth0]:22",
	} {
		f.Add(s, "PASSWORD1")
	}
	f.Fuzz(func(t *testing.T, raw, pw string) {
		if len(pw) < 6 || strings.ContainsAny(pw, "@/?#[]:%") {
			return
		}
		in := strings.Replace(raw, "://", "://u:"+pw+"@", 1)
		got, err := parseURL(in)
		if err != nil {
			if strings.Contains(err.Error(), pw) {
				t.Fatalf("parseURL(%q) error %q quotes the password", in, err)
			}
			return
		}
		if strings.Contains(got.host+got.socket+got.user, pw) {
			return // the password is also a legitimate part of the URL
		}
		if strings.Contains(got.redacted(), pw) {
			t.Fatalf("redacted(%q) = %q shows the password", in, got.redacted())
		}
		if got.host == "" || got.port < 0 || got.port > 65535 {
			t.Fatalf("parseURL(%q) = %+v", in, got)
		}
	})
}
