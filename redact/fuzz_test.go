package redact_test

import (
	"bytes"
	"net/url"
	"strings"
	"testing"

	"github.com/dockssh/dockssh/redact"
)

// FuzzWriter: no panic; the output never contains the registered secret;
// splitting the input into writes changes nothing.
func FuzzWriter(f *testing.F) {
	f.Add([]byte("token hunter2hunter2 and aHVudGVyMmh1bnRlcjI= end"), "hunter2hunter2", []byte{3, 1, 7})
	f.Add([]byte("ssh://bob:hunter2hunter2@host/x?password=abc&q=1"), "hunter2hunter2", []byte{5})
	f.Add([]byte("Authorization: Basic Ym9iOmh1bnRlcjJodW50ZXIy\r\n"), "hunter2hunter2", []byte{1, 1, 1, 1})
	f.Add([]byte("-----BEGIN RSA PRIVATE KEY-----\nMIIE\n-----END RSA PRIVATE KEY-----\n"), "MIIEMIIE", []byte{2})
	f.Add([]byte(`{"password":"a\"b","x":"hunter2%40hunter2"}`), "hunter2@hunter2", []byte{9, 2})
	f.Add([]byte(`\"token\":\"abc\\\"def\"`), "abcdefgh", []byte{0})
	f.Fuzz(func(t *testing.T, in []byte, secret string, splits []byte) {
		// The mask is a byte the secret does not contain, so that the
		// secret cannot be made of a mask and the bytes next to it.
		if len(secret) < redact.DefaultMinSecretLen || strings.IndexByte(secret, 0) >= 0 {
			secret = ""
		}
		cfg := &redact.Config{Mask: "\x00"}
		if secret != "" {
			cfg.Secrets = []string{secret}
		}
		r, err := redact.New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		var out bytes.Buffer
		w := r.NewWriter(&out)
		rest := in
		for i := 0; len(rest) > 0; i++ {
			n := len(rest)
			if len(splits) > 0 {
				n = min(n, 1+int(splits[i%len(splits)]))
			}
			if _, err := w.Write(rest[:n]); err != nil {
				t.Fatal(err)
			}
			rest = rest[n:]
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		if secret != "" && bytes.Contains(out.Bytes(), []byte(secret)) {
			t.Fatalf("output %q of %q contains the secret %q", out.Bytes(), in, secret)
		}
		if want := r.String(string(in)); out.String() != want {
			t.Fatalf("stream(%q) = %q, String = %q", in, out.Bytes(), want)
		}
	})
}

// FuzzURL: no panic; URL is idempotent; a password net/url finds is gone.
func FuzzURL(f *testing.F) {
	for _, s := range []string{
		"ssh://user:pass@host:22/var/run/docker.sock",
		"https://TOKEN@github.com/org/repo.git",
		"https://h/p?access_token=abc&x=1&signature=zz#frag",
		"ssh://u:p%zz@host",
		"postgres://u:p w@db:bad/x",
		"user:pass@host/path",
		"git@github.com:org/repo.git",
		"http://[::1]:80/?key=v;sig=w",
		"",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		out := redact.URL(raw)
		if again := redact.URL(out); again != out {
			t.Fatalf("URL(URL(%q)) = %q, want %q", raw, again, out)
		}
		u, err := url.Parse(raw)
		if err != nil || u.User == nil {
			return
		}
		pw, ok := u.User.Password()
		if !ok || pw == "" {
			return
		}
		if ui := u.User.String() + "@"; strings.Contains(raw, ui) && strings.Contains(out, ui) {
			t.Fatalf("URL(%q) = %q still contains the user info %q", raw, out, ui)
		}
	})
}
