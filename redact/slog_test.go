package redact_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"testing"
	"testing/slogtest"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dockssh/dockssh/redact"
)

type creds struct{ User, Pass string }

// LogValue shows the password, as careless code might.
func (c creds) LogValue() slog.Value {
	return slog.GroupValue(slog.String("user", c.User), slog.String("pw", c.Pass))
}

type opaque struct{ Note string }

func jsonLogger(r *redact.Redactor, buf *bytes.Buffer) *slog.Logger {
	h := slog.NewJSONHandler(buf, &slog.HandlerOptions{ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
		if a.Key == slog.TimeKey {
			return slog.Attr{}
		}
		return a
	}})
	return slog.New(r.Handler(h))
}

func TestHandlerAttrs(t *testing.T) {
	r := newR(t, &redact.Config{Secrets: []string{secret}})
	tests := []struct {
		name string
		log  func(*slog.Logger)
		want string
	}{
		{"message", func(l *slog.Logger) { l.Info("using " + secret) },
			`{"level":"INFO","msg":"using [REDACTED]"}`},
		{"string attr", func(l *slog.Logger) { l.Info("m", "k", "x "+secret) },
			`{"level":"INFO","msg":"m","k":"x [REDACTED]"}`},
		{"sensitive key", func(l *slog.Logger) { l.Info("m", "db_password", "pw", "api_token", 1234, "empty_token", "") },
			`{"level":"INFO","msg":"m","db_password":"[REDACTED]","api_token":"[REDACTED]","empty_token":""}`},
		{"group", func(l *slog.Logger) { l.Info("m", slog.Group("g", "a", secret, slog.Group("h", "token", "t"))) },
			`{"level":"INFO","msg":"m","g":{"a":"[REDACTED]","h":{"token":"[REDACTED]"}}}`},
		{"error", func(l *slog.Logger) { l.Error("m", "err", fmt.Errorf("dial ssh://u:pw@h: %w", errors.New(secret))) },
			`{"level":"ERROR","msg":"m","err":"dial ssh://u:[REDACTED]@h: [REDACTED]"}`},
		{"log valuer", func(l *slog.Logger) { l.Info("m", "c", creds{"bob", secret}) },
			`{"level":"INFO","msg":"m","c":{"user":"bob","pw":"[REDACTED]"}}`},
		{"url", func(l *slog.Logger) {
			u, _ := url.Parse("https://tok@h/?key=k")
			l.Info("m", "u", u, "v", *u)
		}, `{"level":"INFO","msg":"m","u":"https://[REDACTED]@h/?key=[REDACTED]","v":"https://[REDACTED]@h/?key=[REDACTED]"}`},
		{"bytes", func(l *slog.Logger) { l.Info("m", "b", []byte("a "+secret)) },
			`{"level":"INFO","msg":"m","b":"a [REDACTED]"}`},
		{"any", func(l *slog.Logger) { l.Info("m", "o", opaque{secret}, "n", 3, "ok", true) },
			`{"level":"INFO","msg":"m","o":"{Note:[REDACTED]}","n":3,"ok":true}`},
		{"key", func(l *slog.Logger) { l.Info("m", secret, 1) },
			`{"level":"INFO","msg":"m","[REDACTED]":1}`},
		{"with attrs and group", func(l *slog.Logger) {
			l.With("a", secret).WithGroup("g").With("password", "p").Info("m", "b", secret)
		}, `{"level":"INFO","msg":"m","a":"[REDACTED]","g":{"password":"[REDACTED]","b":"[REDACTED]"}}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			tt.log(jsonLogger(r, &buf))
			assert.JSONEq(t, tt.want, buf.String())
		})
	}
}

func TestHandlerSecretAddedAfterWith(t *testing.T) {
	r := newR(t, nil)
	var buf bytes.Buffer
	l := jsonLogger(r, &buf).With("late", "late-secret-1")
	l.Info("m")
	assert.Contains(t, buf.String(), "late-secret-1")
	buf.Reset()
	require.NoError(t, r.Add("late-secret-1"))
	l.Info("m")
	assert.NotContains(t, buf.String(), "late-secret-1", "WithAttrs follows the current secrets")
}

func TestHandlerEnabled(t *testing.T) {
	r := newR(t, nil)
	var buf bytes.Buffer
	h := r.Handler(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelWarn}))
	l := slog.New(h)
	l.Info("hidden")
	l.With("a", 1).WithGroup("g").Warn("shown")
	assert.NotContains(t, buf.String(), "hidden")
	assert.Contains(t, buf.String(), "level=WARN msg=shown a=1")
	assert.False(t, h.Enabled(t.Context(), slog.LevelInfo))
}

// TestHandlerSlogtest runs the standard library's handler conformance
// tests through the wrapper.
func TestHandlerSlogtest(t *testing.T) {
	r := newR(t, nil)
	var buf bytes.Buffer
	h := r.Handler(slog.NewJSONHandler(&buf, nil))
	results := func() []map[string]any {
		var ms []map[string]any
		for _, line := range bytes.Split(buf.Bytes(), []byte{'\n'}) {
			if len(line) == 0 {
				continue
			}
			var m map[string]any
			require.NoError(t, json.Unmarshal(line, &m))
			ms = append(ms, m)
		}
		return ms
	}
	require.NoError(t, slogtest.TestHandler(h, results))
}

// TestCanary sends one secret, in every form this package promises to
// catch, through slog and error wrapping, and checks it never comes out.
func TestCanary(t *testing.T) {
	const canary = "CANARY-7f3a9c21-do-not-print"
	r := newR(t, &redact.Config{Secrets: []string{canary}})
	forms := []string{
		canary,
		url.QueryEscape(canary),
		"Q0FOQVJZLTdmM2E5YzIxLWRvLW5vdC1wcmludA==", // base64
	}
	var buf bytes.Buffer
	for _, format := range []string{"json", "text"} {
		var h slog.Handler = slog.NewJSONHandler(&buf, nil)
		if format == "text" {
			h = slog.NewTextHandler(&buf, nil)
		}
		l := slog.New(r.Handler(h)).With("conn", "ssh://bob:"+canary+"@host")
		for _, f := range forms {
			err := r.Error(fmt.Errorf("connect: %w", &url.Error{Op: "Get", URL: "https://h/?x=" + f, Err: errors.New("refused " + f)}))
			l.Error("failed with "+f, "err", err, "raw", errors.New(f), "grp", slog.Group("g", "v", f), "b64", []byte(f))
			l.WithGroup("w").Info("m", slog.Any("any", struct{ S string }{f}))
		}
	}
	out := buf.String()
	require.NotEmpty(t, out)
	for _, f := range forms {
		assert.NotContains(t, out, f)
	}
	assert.NotContains(t, out, "CANARY")
	assert.Equal(t, 2*2*len(forms), strings.Count(out, "\n"), "every record was written")
	assert.Contains(t, out, "[REDACTED]")
}
