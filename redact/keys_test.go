package redact_test

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
)

// keyVariants returns every way the key names of a credential are
// written: each family of two words with each separator (none, '_', '-',
// '.'), in lower, upper, camel and title case, alone and after a prefix.
func keyVariants() []string {
	var names []string
	cases := func(words [2]string, sep string) []string {
		title := func(w string) string { return strings.ToUpper(w[:1]) + w[1:] }
		return []string{
			words[0] + sep + words[1],
			strings.ToUpper(words[0] + sep + words[1]),
			words[0] + sep + title(words[1]),
			title(words[0]) + sep + title(words[1]),
		}
	}
	for _, w := range [][2]string{
		{"private", "key"}, {"secret", "key"}, {"api", "key"}, {"access", "key"},
		{"access", "token"}, {"auth", "token"}, {"refresh", "token"}, {"client", "secret"},
		{"db", "password"}, {"ssh", "passphrase"}, {"aws", "credentials"},
	} {
		for _, sep := range []string{"", "_", "-", "."} {
			for _, n := range cases(w, sep) {
				for _, prefix := range []string{"", "AWS_", "x-", "my."} {
					names = append(names, prefix+n)
				}
			}
		}
	}
	// Single words at the end of any name.
	names = append(names,
		"password", "PGPASSWORD", "DOCKER_PASSWORD", "spring.datasource.password",
		"passwd", "HTPASSWD", "secret", "token", "GITHUB_TOKEN", "credential",
		"signature", "X-Amz-Signature",
	)
	// Short words, only as a word of their own.
	for _, w := range []string{"pwd", "pass", "auth"} {
		for _, prefix := range []string{"MYSQL_", "db-", "redis.", "DB_"} {
			names = append(names, prefix+w, prefix+strings.ToUpper(w))
		}
		names = append(names, "db"+strings.ToUpper(w[:1])+w[1:]) // dbPwd, dbPass, dbAuth
	}
	return append(names, "auth", "AUTH")
}

// TestKeyVariants: the value after every variant of a credential's key
// name is masked, in the shapes of an environment line, a header or YAML
// line, JSON and a Go struct printed with %+v.
func TestKeyVariants(t *testing.T) {
	r := newR(t, nil)
	const value = "v4lue-0f-the-key"
	for _, key := range keyVariants() {
		for _, format := range []string{"%s=%s\n", "%s: %s\n", `{"%s": "%s"}`, "{User:bob %s:%s Host:h}"} {
			in := fmt.Sprintf(format, key, value)
			got := r.String(in)
			if strings.Contains(got, value) || !strings.Contains(got, key) {
				t.Errorf("String(%q) = %q, want the value masked and the key kept", in, got)
			}
		}
	}
}

// TestKeyNotSensitive: names that only look like a credential's keep their
// value: the working directory, counts, words that contain a short key
// word, and keys that merely start with one.
func TestKeyNotSensitive(t *testing.T) {
	r := newR(t, nil)
	for _, in := range []string{
		"PWD=/home/ada", "OLDPWD=/tmp", "pass=3", "bypass=1", "compass=north",
		"passes=2", "sort_key=name", "monkey=1", "keys=3", "tokens=3",
		"passwordless=true", "author=bob", "oauth=v2", "authority=ca",
		"secretary=ann", "key=v", "private=no", "api=v2",
	} {
		if got := r.String(in); got != in {
			t.Errorf("String(%q) = %q, want it unchanged", in, got)
		}
	}
}

// TestHandlerKeyVariants: an attribute named like a credential is masked
// whatever its kind; the working directory is not.
func TestHandlerKeyVariants(t *testing.T) {
	r := newR(t, nil)
	for _, key := range keyVariants() {
		var buf bytes.Buffer
		l := jsonLogger(r, &buf)
		l.Info("m", key, 12345678)
		if strings.Contains(buf.String(), "12345678") {
			t.Errorf("attribute %q: %s, want the value masked", key, buf.String())
		}
	}
	var buf bytes.Buffer
	jsonLogger(r, &buf).Info("m", "PWD", "/home/ada")
	if !strings.Contains(buf.String(), `"PWD":"/home/ada"`) {
		t.Errorf("PWD: %s, want the working directory kept", buf.String())
	}
}
