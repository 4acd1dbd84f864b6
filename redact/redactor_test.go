package redact_test

import (
	"bytes"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dockssh/dockssh/redact"
)

const secret = "s3cr3t-T0ken+/x" // has base64 and percent-relevant bytes

func newR(tb testing.TB, cfg *redact.Config) *redact.Redactor {
	tb.Helper()
	r, err := redact.New(cfg)
	require.NoError(tb, err)
	return r
}

func TestStringLiteral(t *testing.T) {
	r := newR(t, &redact.Config{Secrets: []string{secret, "another-secret-value"}})
	tests := []struct{ name, in, want string }{
		{"none", "nothing to see", "nothing to see"},
		{"empty", "", ""},
		{"literal", "a " + secret + " b", "a [REDACTED] b"},
		{"twice", secret + secret, "[REDACTED][REDACTED]"},
		{"two secrets", secret + " another-secret-value", "[REDACTED] [REDACTED]"},
		{"prefix only", secret[:10], secret[:10]},
		{"base64 std", "x=czNjcjN0LVQwa2VuKy94 y", "x=[REDACTED] y"},
		{"base64 padded", "czNjcjN0LVQwa2VuKy94", "[REDACTED]"},
		{"base64 offset 1", "QXMzY3IzdC1UMGtlbisveA==", "QX[REDACTED]"},
		{"base64 offset 2", "QUJzM2NyM3QtVDBrZW4rL3g=", "QUJ[REDACTED]"},
		{"percent upper", "s3cr3t-T0ken%2B%2Fx", "[REDACTED]"},
		{"percent lower", "s3cr3t-T0ken%2b%2fx", "[REDACTED]"},
		{"query escape", "q=s3cr3t-T0ken%2B%2Fx&", "q=[REDACTED]&"},
		{"json", `{"a":"s3cr3t-T0ken+\/x"}`, `{"a":"s3cr3t-T0ken+\/x"}`}, // \/ is not Go's JSON form
		{"overlap merges", "another-secret-values3cr3t-T0ken+/x", "[REDACTED][REDACTED]"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := r.String(tt.in); got != tt.want {
				t.Errorf("String(%q) = %q, want %q", tt.in, got, tt.want)
			}
			if got := string(r.Bytes([]byte(tt.in))); got != tt.want {
				t.Errorf("Bytes(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

func TestStringJSONEscaped(t *testing.T) {
	s := `pa"ss<wo>rd\x`
	r := newR(t, &redact.Config{Secrets: []string{s}})
	for _, in := range []string{
		`{"p":"pa\"ss\u003cwo\u003erd\\x"}`, // encoding/json default
		`{"p":"pa\"ss<wo>rd\\x"}`,           // SetEscapeHTML(false)
	} {
		assert.Equal(t, `{"p":"[REDACTED]"}`, r.String(in), "String(%q)", in)
	}
}

func TestStringPatterns(t *testing.T) {
	r := newR(t, nil)
	tests := []struct{ name, in, want string }{
		{"password=", "login password=hunter2 ok", "login password=[REDACTED] ok"},
		{"env", "DOCKER_PASSWORD=abc\nHOME=/root", "DOCKER_PASSWORD=[REDACTED]\nHOME=/root"},
		{"yaml", "token: abc.def\n", "token: [REDACTED]\n"},
		{"json", `{"user":"bob","password":"a\"b c"}`, `{"user":"bob","password":"[REDACTED]"}`},
		{"json spaced", `{"client_secret" : "xyz"}`, `{"client_secret" : "[REDACTED]"}`},
		{"escaped json", `{\"api_key\":\"k1\"}`, `{\"api_key\":\"[REDACTED]\"}`},
		{"go struct", "{User:bob Password:pw1 Host:h}", "{User:bob Password:[REDACTED] Host:h}"},
		{"go map", "map[password:pw1]", "map[password:[REDACTED]]"},
		{"header", "X-Auth-Token: t0k\r\nAccept: */*", "X-Auth-Token: [REDACTED]\r\nAccept: */*"},
		{"empty value", "password=&x=1 token=\"\" ok", "password=&x=1 token=\"\" ok"},
		{"space after separator", "password= next", "password= [REDACTED]"},
		{"not a key", "passwordless=true tokens=3 monkey=1 sort_key=x", "passwordless=true tokens=3 monkey=1 sort_key=x"},
		{"already masked", "password=[REDACTED] x", "password=[REDACTED] x"},
		{"go assign", `password := "abc"`, `password := "[REDACTED]"`},
		{"bearer", "Authorization: Bearer eyJh.eyJz.sig\r\nHost: x", "Authorization: Bearer [REDACTED]\r\nHost: x"},
		{"basic lower", "authorization: basic dXNlcjpwYXNz", "authorization: basic [REDACTED]"},
		{"auth json", `{"Authorization":"Bearer abc"}`, `{"Authorization":"Bearer [REDACTED]"}`},
		{"auth no scheme", "Authorization: abc123.x\n", "Authorization: [REDACTED]\n"},
		{"auth digest", "Authorization: Digest username=\"u\", response=\"r\"\nX: y", "Authorization: Digest [REDACTED]\nX: y"},
		{"proxy auth", "Proxy-Authorization: Basic Zm9v", "Proxy-Authorization: Basic [REDACTED]"},
		{"ssh url", "dial ssh://bob:pa55@host:22 failed", "dial ssh://bob:[REDACTED]@host:22 failed"},
		{"ssh user only", "ssh://git@github.com/x", "ssh://git@github.com/x"},
		{"https token", "clone https://ghp_abc@github.com/o/r.git", "clone https://[REDACTED]@github.com/o/r.git"},
		{"at in password", "ssh://u:p@ss@host/", "ssh://u:[REDACTED]@host/"},
		{"no userinfo", "see https://example.com:8443/a?b=c.", "see https://example.com:8443/a?b=c."},
		{"query token", "GET /cb?code=1&access_token=abc&x=1", "GET /cb?code=1&access_token=[REDACTED]&x=1"},
		{"pem", "k: -----BEGIN RSA PRIVATE KEY-----\nMIIEow\nAbC+/=\n-----END RSA PRIVATE KEY-----\nnext",
			"k: -----BEGIN RSA PRIVATE KEY-----[REDACTED]-----END RSA PRIVATE KEY-----\nnext"},
		{"pem escaped", `"-----BEGIN OPENSSH PRIVATE KEY-----\nb3Bl\nAAAA\n-----END OPENSSH PRIVATE KEY-----\n"`,
			`"-----BEGIN OPENSSH PRIVATE KEY-----[REDACTED]-----END OPENSSH PRIVATE KEY-----\n"`},
		{"pem encrypted", "-----BEGIN ENCRYPTED PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\nDEK-Info: AES-128-CBC,00FF\n\nabc\n-----END ENCRYPTED PRIVATE KEY-----",
			"-----BEGIN ENCRYPTED PRIVATE KEY-----[REDACTED]-----END ENCRYPTED PRIVATE KEY-----"},
		{"pem truncated", "-----BEGIN PRIVATE KEY-----\nMIIE\nAA\" more", "-----BEGIN PRIVATE KEY-----[REDACTED]\" more"},
		{"pgp", "-----BEGIN PGP PRIVATE KEY BLOCK-----\n\nlQdGBF\n=abcd\n-----END PGP PRIVATE KEY BLOCK-----\n",
			"-----BEGIN PGP PRIVATE KEY BLOCK-----[REDACTED]-----END PGP PRIVATE KEY BLOCK-----\n"},
		{"pem public", "-----BEGIN PUBLIC KEY-----\nMIIB\n-----END PUBLIC KEY-----", "-----BEGIN PUBLIC KEY-----\nMIIB\n-----END PUBLIC KEY-----"},
		{"certificate", "-----BEGIN CERTIFICATE-----\nMIIB\n", "-----BEGIN CERTIFICATE-----\nMIIB\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := r.String(tt.in); got != tt.want {
				t.Errorf("String(%q)\n got %q\nwant %q", tt.in, got, tt.want)
			}
		})
	}
}

func TestNoPatterns(t *testing.T) {
	r := newR(t, &redact.Config{NoPatterns: true, Secrets: []string{secret}})
	in := "password=abc " + secret
	assert.Equal(t, "password=abc [REDACTED]", r.String(in))
}

func TestLiteralOnly(t *testing.T) {
	r := newR(t, &redact.Config{LiteralOnly: true, Secrets: []string{secret}})
	assert.Equal(t, "[REDACTED] czNjcjN0LVQwa2VuKy94", r.String(secret+" czNjcjN0LVQwa2VuKy94"))
}

func TestMaskAndFingerprint(t *testing.T) {
	key := []byte("test key")
	tests := []struct {
		name string
		cfg  redact.Config
		in   string
		want string
	}{
		{"custom mask", redact.Config{Mask: "***"}, "x " + secret, "x ***"},
		// HMAC-SHA256("test key", secret), first 4 bytes, computed
		// independently.
		{"fingerprint", redact.Config{Fingerprint: true, FingerprintKey: key}, secret, "[REDACTED:11ab815b]"},
		{"fingerprint of base64 is the secret's", redact.Config{Fingerprint: true, FingerprintKey: key}, "czNjcjN0LVQwa2VuKy94", "[REDACTED:11ab815b]"},
		{"fingerprint custom mask", redact.Config{Fingerprint: true, FingerprintKey: key, Mask: "<hidden>"}, secret, "<hidden>:11ab815b"},
		{"fingerprint pattern value", redact.Config{Fingerprint: true, FingerprintKey: key}, "password=" + secret[:0] + "zzz", "password=[REDACTED:b8e8c750]"},
		{"fingerprint not redone", redact.Config{Fingerprint: true, FingerprintKey: key}, "password=[REDACTED:11ab815b] ssh://u:[REDACTED:11ab815b]@h", "password=[REDACTED:11ab815b] ssh://u:[REDACTED:11ab815b]@h"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := tt.cfg
			cfg.Secrets = []string{secret}
			r := newR(t, &cfg)
			if got := r.String(tt.in); got != tt.want {
				t.Errorf("String(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}

	// The same value in a URL, a pair and as a literal: one fingerprint.
	r := newR(t, &redact.Config{Fingerprint: true, FingerprintKey: key, Secrets: []string{"p@ss/word-1"}})
	a := r.String("token=p@ss/word-1-not")
	b := r.URL("ssh://u:p%40ss%2Fword-1@h")
	c := r.String("p@ss/word-1")
	assert.Contains(t, b, c)
	assert.NotEqual(t, a, "token="+c, "a different value has a different fingerprint")

	// Random keys: two Redactors disagree.
	r1 := newR(t, &redact.Config{Fingerprint: true, Secrets: []string{secret}})
	r2 := newR(t, &redact.Config{Fingerprint: true, Secrets: []string{secret}})
	assert.NotEqual(t, r1.String(secret), r2.String(secret))
	assert.Equal(t, r1.String(secret), r1.String(secret))
}

func TestAddPolicy(t *testing.T) {
	t.Run("refuse short", func(t *testing.T) {
		r := newR(t, nil)
		err := r.Add("long-enough-1", "short")
		var se *redact.ShortSecretError
		require.ErrorAs(t, err, &se)
		assert.Equal(t, redact.ShortSecretError{Index: 1, Len: 5, Min: 8}, *se)
		assert.NotContains(t, err.Error(), "short\"")
		assert.Equal(t, 0, r.Len(), "all or nothing")
		assert.Equal(t, "long-enough-1", r.String("long-enough-1"))
	})
	t.Run("refuse empty", func(t *testing.T) {
		r := newR(t, &redact.Config{ShortSecrets: redact.WarnShort})
		require.ErrorIs(t, r.Add(""), redact.ErrEmptySecret)
	})
	t.Run("new refuses", func(t *testing.T) {
		_, err := redact.New(&redact.Config{Secrets: []string{"abc"}})
		var se *redact.ShortSecretError
		require.ErrorAs(t, err, &se)
	})
	t.Run("warn short", func(t *testing.T) {
		var logs bytes.Buffer
		r := newR(t, &redact.Config{
			ShortSecrets: redact.WarnShort,
			Logger:       slog.New(slog.NewTextHandler(&logs, nil)),
		})
		require.NoError(t, r.Add("pw1"))
		assert.Equal(t, "x [REDACTED] y", r.String("x pw1 y"))
		assert.Contains(t, logs.String(), "level=WARN")
		assert.Contains(t, logs.String(), "len=3")
		assert.NotContains(t, logs.String(), "pw1")
		// Its 4-character base64 form is registered, the 2- and
		// 3-character ones are not.
		assert.Equal(t, "[REDACTED]", r.String("cHcx"))
	})
	t.Run("nil logger is slog.Default", func(t *testing.T) {
		// Not parallel: it swaps the process's default logger.
		var logs bytes.Buffer
		prev := slog.Default()
		slog.SetDefault(slog.New(slog.NewTextHandler(&logs, nil)))
		t.Cleanup(func() { slog.SetDefault(prev) })
		r := newR(t, &redact.Config{ShortSecrets: redact.WarnShort})
		require.NoError(t, r.Add("pw1"))
		assert.Contains(t, logs.String(), "level=WARN", "the warning reaches slog.Default()")
		assert.NotContains(t, logs.String(), "pw1")
	})
	t.Run("min len", func(t *testing.T) {
		r := newR(t, &redact.Config{MinSecretLen: 3})
		require.NoError(t, r.Add("pw1"))
	})
	t.Run("bad policy", func(t *testing.T) {
		_, err := redact.New(&redact.Config{ShortSecrets: 7})
		require.Error(t, err)
		assert.True(t, strings.HasPrefix(err.Error(), "redact: "))
	})
	t.Run("duplicate", func(t *testing.T) {
		r := newR(t, nil)
		require.NoError(t, r.Add(secret, secret))
		require.NoError(t, r.Add(secret))
		assert.Equal(t, 1, r.Len())
	})
}

func TestConcurrentAdd(t *testing.T) {
	r := newR(t, nil)
	var wg sync.WaitGroup
	secrets := make([]string, 32)
	for i := range secrets {
		secrets[i] = strings.Repeat(string(rune('a'+i%26)), 9) + string(rune('A'+i))
	}
	for _, s := range secrets {
		wg.Add(2)
		go func() {
			defer wg.Done()
			if err := r.Add(s); err != nil {
				t.Errorf("Add: %v", err)
			}
		}()
		go func() {
			defer wg.Done()
			_ = r.String("x " + s) // concurrent reads see one snapshot or the next
		}()
	}
	wg.Wait()
	assert.Equal(t, len(secrets), r.Len())
	for _, s := range secrets {
		assert.Equal(t, "x [REDACTED]", r.String("x "+s))
	}
}

func TestErrorsArePrefixed(t *testing.T) {
	for _, err := range []error{redact.ErrEmptySecret, redact.ErrClosed, &redact.ShortSecretError{}} {
		assert.True(t, strings.HasPrefix(err.Error(), "redact: "), err.Error())
	}
	assert.False(t, errors.Is(redact.ErrClosed, redact.ErrEmptySecret))
	assert.Equal(t, "WarnShort", redact.WarnShort.String())
	assert.Equal(t, "RefuseShort", redact.RefuseShort.String())
}

func discardLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }
