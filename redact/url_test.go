package redact_test

import (
	"math/rand/v2"
	"net/url"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/dockssh/dockssh/redact"
)

func TestURL(t *testing.T) {
	tests := []struct{ name, in, want string }{
		{"plain", "https://example.com/a?b=c#d", "https://example.com/a?b=c#d"},
		{"password", "ssh://bob:hunter2@host:22/var/run/docker.sock", "ssh://bob:[REDACTED]@host:22/var/run/docker.sock"},
		{"escaped password", "ssh://bob:p%40ss@host", "ssh://bob:[REDACTED]@host"},
		{"at in password", "ssh://bob:p@ss@host", "ssh://bob:[REDACTED]@host"},
		{"empty password", "ssh://bob:@host", "ssh://bob:@host"},
		{"ssh user only", "ssh://git@github.com/x", "ssh://git@github.com/x"},
		{"https token", "https://ghp_abc123@github.com/o/r.git", "https://[REDACTED]@github.com/o/r.git"},
		{"x-access-token", "https://x-access-token:ghs_abc@github.com/o/r", "https://x-access-token:[REDACTED]@github.com/o/r"},
		{"query", "https://h/p?access_token=abc&x=1&Signature=s&KEY=k&sig=z&code=c&page=2",
			"https://h/p?access_token=[REDACTED]&x=1&Signature=[REDACTED]&KEY=[REDACTED]&sig=[REDACTED]&code=[REDACTED]&page=2"},
		{"aws presigned", "https://b.s3.amazonaws.com/o?X-Amz-Credential=AKIA%2F1&X-Amz-Signature=ab&X-Amz-Security-Token=t",
			"https://b.s3.amazonaws.com/o?X-Amz-Credential=[REDACTED]&X-Amz-Signature=[REDACTED]&X-Amz-Security-Token=[REDACTED]"},
		{"semicolon", "http://h/?a=1;password=p", "http://h/?a=1;password=[REDACTED]"},
		{"empty value", "http://h/?token=&a=1", "http://h/?token=&a=1"},
		{"key without value", "http://h/?token&a=1", "http://h/?token&a=1"},
		{"fragment", "https://app/cb#access_token=abc&token_type=bearer", "https://app/cb#access_token=[REDACTED]&token_type=bearer"},
		{"escaped key", "http://h/?pass%77ord=x", "http://h/?pass%77ord=[REDACTED]"},
		{"bad escape", "ssh://u:p%zz@host/%zz", "ssh://u:[REDACTED]@host/%zz"},
		{"space", "postgres://u:p w@db:5432/x", "postgres://u:[REDACTED]@db:5432/x"},
		{"bad port", "redis://:secretpw@cache:port/0", "redis://:[REDACTED]@cache:port/0"},
		{"scheme-less", "bob:pw@host/path", "bob:[REDACTED]@host/path"},
		{"scp-like", "git@github.com:org/repo.git", "git@github.com:org/repo.git"},
		{"network path", "//u:p@host/x", "//u:[REDACTED]@host/x"},
		{"ipv6", "http://u:p@[::1]:80/?key=v", "http://u:[REDACTED]@[::1]:80/?key=[REDACTED]"},
		{"not a url", "hello world", "hello world"},
		{"empty", "", ""},
		{"idempotent", "ssh://bob:[REDACTED]@host?token=[REDACTED]", "ssh://bob:[REDACTED]@host?token=[REDACTED]"},
		// net/url refuses these: an unescaped '/', '?' or '#' in the
		// password cut the authority short, so everything up to the last
		// '@' is masked.
		{"slash in password", "ssh://user:Sup3r/S3cret@host", "ssh://[REDACTED]@host"},
		{"question mark in password", "ssh://user:Sup3r?S3cret@host:22/x", "ssh://[REDACTED]@host:22/x"},
		{"hash in password", "ssh://user:Sup3r#S3cret@host/var/run/docker.sock", "ssh://[REDACTED]@host/var/run/docker.sock"},
		{"several separators", "https://u:a/b?c#d@h/p?token=t", "https://[REDACTED]@h/p?token=[REDACTED]"},
		{"network path, slash in password", "//u:p/w@host/x", "//[REDACTED]@host/x"},
		// net/url accepts these as they are; they are read its way.
		{"at in path", "https://example.com:8443/users/@alice", "https://example.com:8443/users/@alice"},
		{"at in query", "https://h/p?email=a@b.example", "https://h/p?email=a@b.example"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := redact.URL(tt.in); got != tt.want {
				t.Errorf("URL(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

func TestRedactorURL(t *testing.T) {
	r := newR(t, &redact.Config{Mask: "xxxxx", Secrets: []string{"registered-path-secret"}})
	assert.Equal(t, "https://u:xxxxx@h/xxxxx?token=xxxxx",
		r.URL("https://u:pw@h/registered-path-secret?token=abc"))

	fp := newR(t, &redact.Config{Fingerprint: true, FingerprintKey: []byte("k"), Secrets: []string{"p@ssword1"}})
	// The fingerprint of the escaped password is that of the secret.
	assert.Equal(t, "ssh://u:"+fp.String("p@ssword1")+"@h", fp.URL("ssh://u:p%40ssword1@h"))
}

// TestURLNeverShowsPassword: whatever bytes a password holds, typed into a
// URL as they are or percent-encoded, URL does not show it. The documented
// exception is a password whose text before its first '/', '?' or '#'
// makes "user:password" read as user:port or user:pass@host (then the URL
// means something else, for net/url too), so the generator starts every
// password with a letter and puts no '@' before such a separator.
func TestURLNeverShowsPassword(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range 5000 {
		pw := randomPassword(rng)
		for _, form := range []string{pw, url.PathEscape(pw), url.QueryEscape(pw)} {
			for _, raw := range []string{
				"ssh://bob:" + form + "@host.example:22/var/run/docker.sock",
				"https://bob:" + form + "@host.example/p?x=1",
				"//bob:" + form + "@host.example/p",
			} {
				got := redact.URL(raw)
				if strings.Contains(got, pw) || (len(form) >= 8 && strings.Contains(got, form)) {
					t.Fatalf("#%d: URL(%q) = %q shows the password %q", i, raw, got, pw)
				}
			}
		}
	}
}

// randomPassword returns 8 to 24 bytes: a letter, then printable ASCII,
// with now and then a control byte, DEL or a byte above 0x7f, and no '@'
// before the first '/', '?' or '#'.
func randomPassword(rng *rand.Rand) string {
	b := []byte{byte('a' + rng.IntN(26))}
	separated := false
	for n := 7 + rng.IntN(17); n > 0; n-- {
		var c byte
		switch rng.IntN(20) {
		case 0:
			c = byte(rng.IntN(0x20))
		case 1:
			c = 0x7f + byte(rng.IntN(0x81))
		default:
			c = byte(0x20 + rng.IntN(0x5f))
		}
		if c == '@' && !separated {
			c = '!'
		}
		separated = separated || strings.IndexByte("/?#", c) >= 0
		b = append(b, c)
	}
	return string(b)
}
