package main

import (
	"bytes"
	"strings"
	"testing"
)

func envOf(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

func TestOptionsPrecedence(t *testing.T) {
	var stderr bytes.Buffer
	o, given, err := parseOptions([]string{"-port", "2200", "-container", "fromflag"},
		envOf(map[string]string{"PORT": "2300", "CONTAINER": "fromenv", "AUTH_USER": "u"}), &stderr)
	if err != nil {
		t.Fatal(err)
	}
	for k, want := range map[string]string{"PORT": "2200", "CONTAINER": "fromflag", "AUTH_USER": "u", "HTTP_PORT": "8022", "HTTP_ENABLED": "true", "IP": "0.0.0.0"} {
		if o[k] != want {
			t.Errorf("%s = %q, want %q", k, o[k], want)
		}
	}
	if !given["AUTH_USER"] || given["AUTH_PASSWORD"] {
		t.Errorf("given = %v: AUTH_USER set by the environment, AUTH_PASSWORD not at all", given)
	}
	if v, ok := o.lookup(given)("AUTH_PASSWORD"); ok || v != "" {
		t.Errorf("lookup(AUTH_PASSWORD) = %q, %v; want unset", v, ok)
	}
}

func TestUsageListsFlagsAndVariables(t *testing.T) {
	var stderr bytes.Buffer
	if code := run([]string{"-h"}, envOf(nil), &stderr); code != 0 {
		t.Errorf("-h exit status %d, want 0", code)
	}
	for _, o := range optionTable() {
		if !strings.Contains(stderr.String(), "-"+o.flag) || !strings.Contains(stderr.String(), o.env) {
			t.Errorf("-h does not list -%s / %s", o.flag, o.env)
		}
	}
}

func TestBadFlag(t *testing.T) {
	var stderr bytes.Buffer
	if code := run([]string{"-no-such-flag"}, envOf(nil), &stderr); code != exitUsage {
		t.Errorf("exit status %d, want %d", code, exitUsage)
	}
	if code := run([]string{"stray"}, envOf(nil), &stderr); code != exitUsage {
		t.Errorf("stray argument: exit status %d, want %d", code, exitUsage)
	}
}

func TestParseFilters(t *testing.T) {
	for in, want := range map[string]string{
		`{"name":["^/web1$"]}`:       "name=^/web1$",
		`{"label":{"env=dev":true}}`: "label=env=dev",
		``:                           "",
		`{"label":["a=1","b=2"]}`:    "label=a=1,b=2",
	} {
		f, err := parseFilters(in)
		if err != nil {
			t.Errorf("parseFilters(%q) = %v", in, err)
			continue
		}
		var got []string
		for k, vs := range f {
			got = append(got, k+"="+strings.Join(vs, ","))
		}
		if strings.Join(got, " ") != want {
			t.Errorf("parseFilters(%q) = %q, want %q", in, got, want)
		}
	}
	for _, bad := range []string{`{"name":`, `["web1"]`, `{"name":"web1"}`} {
		if _, err := parseFilters(bad); err == nil {
			t.Errorf("parseFilters(%q) = nil error", bad)
		}
	}
}

func TestHashPassword(t *testing.T) {
	var out, stderr bytes.Buffer
	if code := hashPassword(strings.NewReader("hunter2\n"), &out, &stderr); code != 0 {
		t.Fatalf("hash-password: %d, %s", code, stderr.String())
	}
	if !strings.HasPrefix(out.String(), "$argon2id$") || strings.Contains(out.String(), "hunter2") {
		t.Errorf("hash-password printed %q", out.String())
	}
	if code := hashPassword(strings.NewReader(""), &out, &stderr); code == 0 {
		t.Errorf("an empty password was hashed")
	}
}
