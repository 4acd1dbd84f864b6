package redact_test

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"os"
	"strings"

	"github.com/dockssh/dockssh/redact"
)

func ExampleNew() {
	r, err := redact.New(&redact.Config{Secrets: []string{"hunter2hunter2"}})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(r.String("login with hunter2hunter2"))
	// Output: login with [REDACTED]
}

func ExampleRedactor_Add() {
	r, _ := redact.New(nil)
	if err := r.Add("tok-4f2a91c0e8"); err != nil {
		fmt.Println(err)
	}
	fmt.Println(r.Add("short"))
	fmt.Println(r.String("token tok-4f2a91c0e8, base64 dG9rLTRmMmE5MWMwZTg="))
	fmt.Println(r.Len(), "secret registered")
	// Output:
	// redact: secret #0 is 5 bytes, shorter than the minimum of 8 (set Config.ShortSecrets to WarnShort to accept it)
	// token [REDACTED], base64 [REDACTED]
	// 1 secret registered
}

func ExampleRedactor_String() {
	r, _ := redact.New(nil)
	fmt.Println(r.String(`{"user":"bob","password":"s3cret"} Authorization: Bearer eyJhbGciOi.x.y`))
	// Output: {"user":"bob","password":"[REDACTED]"} Authorization: Bearer [REDACTED]
}

func ExampleRedactor_Bytes() {
	r, _ := redact.New(&redact.Config{Secrets: []string{"hunter2hunter2"}})
	fmt.Printf("%s\n", r.Bytes([]byte("pw=hunter2hunter2")))
	// Output: pw=[REDACTED]
}

func ExampleConfig_fingerprint() {
	r, _ := redact.New(&redact.Config{
		Secrets:        []string{"hunter2hunter2"},
		Fingerprint:    true,
		FingerprintKey: []byte("example only: leave nil for a random key"),
	})
	// The same secret, raw and base64: the same fingerprint.
	fmt.Println(r.String("a=hunter2hunter2 b=aHVudGVyMmh1bnRlcjI="))
	// Output: a=[REDACTED:a5d48f30] b=[REDACTED:a5d48f30]
}

func ExampleConfig_shortSecrets() {
	logger := slog.New(slog.NewTextHandler(os.Stdout, &slog.HandlerOptions{ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
		if a.Key == slog.TimeKey {
			return slog.Attr{}
		}
		return a
	}}))
	r, _ := redact.New(&redact.Config{ShortSecrets: redact.WarnShort, Logger: logger})
	_ = r.Add("1234")
	fmt.Println(r.String("pin 1234"))
	// Output:
	// level=WARN msg="redact: accepted a short secret; it may also mask unrelated text, and its encoded forms shorter than 4 bytes are not masked" index=0 len=4 min=8
	// pin [REDACTED]
}

func ExampleURL() {
	fmt.Println(redact.URL("ssh://bob:hunter2@host:22/var/run/docker.sock"))
	fmt.Println(redact.URL("https://ghp_abc123@github.com/org/repo.git"))
	fmt.Println(redact.URL("https://api.example.com/v1?access_token=abc&page=2"))
	fmt.Println(redact.URL("postgres://u:p%zz w@db:bad/x")) // net/url refuses this one
	// Output:
	// ssh://bob:[REDACTED]@host:22/var/run/docker.sock
	// https://[REDACTED]@github.com/org/repo.git
	// https://api.example.com/v1?access_token=[REDACTED]&page=2
	// postgres://u:[REDACTED]@db:bad/x
}

func ExampleRedactor_URL() {
	r, _ := redact.New(&redact.Config{Mask: "xxxxx", Secrets: []string{"bucket-secret-name"}})
	fmt.Println(r.URL("https://u:pw@s3.example.com/bucket-secret-name?X-Amz-Signature=ab12"))
	// Output: https://u:xxxxx@s3.example.com/xxxxx?X-Amz-Signature=xxxxx
}

func ExampleRedactor_Error() {
	r, _ := redact.New(nil)
	//lint:ignore SA1007 the URL is invalid on purpose: the example shows net/url's error redacted
	_, err := url.Parse("ssh://bob:hunter2@host:bad")
	err = r.Error(fmt.Errorf("dialer: %w", err))
	fmt.Println(err)

	var ue *url.Error
	fmt.Println(errors.As(err, &ue))
	// Output:
	// dialer: parse "ssh://bob:[REDACTED]@host:bad": invalid port ":bad" after host
	// true
}

func ExampleRedactor_NewWriter() {
	r, _ := redact.New(&redact.Config{Secrets: []string{"hunter2hunter2"}})
	w := r.NewWriter(os.Stdout)
	// The secret arrives split across writes.
	for _, chunk := range []string{"password is hun", "ter2hun", "ter2\n", "token=abc\n"} {
		_, _ = io.WriteString(w, chunk)
	}
	_ = w.Close()
	// Output:
	// password is [REDACTED]
	// token=[REDACTED]
}

func ExampleWriter_Flush() {
	r, _ := redact.New(&redact.Config{Secrets: []string{"hunter2hunter2"}})
	var out strings.Builder
	w := r.NewWriter(&out)
	_, _ = io.WriteString(w, "$ echo hunt")
	fmt.Printf("%q\n", out.String()) // "hunt" may be the start of the secret
	_ = w.Flush()
	fmt.Printf("%q\n", out.String())
	// Output:
	// "$ echo "
	// "$ echo hunt"
}

func ExampleRedactor_Handler() {
	r, _ := redact.New(&redact.Config{Secrets: []string{"hunter2hunter2"}})
	h := slog.NewTextHandler(os.Stdout, &slog.HandlerOptions{ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
		if a.Key == slog.TimeKey {
			return slog.Attr{}
		}
		return a
	}})
	log := slog.New(r.Handler(h))
	log.Info("connecting", "url", "ssh://bob:pw@host", "password", "pw", "err", errors.New("auth hunter2hunter2"))
	// Output: level=INFO msg=connecting url=ssh://bob:[REDACTED]@host password=[REDACTED] err="auth [REDACTED]"
}
