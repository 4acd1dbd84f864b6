package redact_test

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/url"
	"os"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dockssh/dockssh/redact"
)

type timeoutErr struct{ msg string }

func (e *timeoutErr) Error() string   { return e.msg }
func (e *timeoutErr) Timeout() bool   { return true }
func (e *timeoutErr) Temporary() bool { return true }

func TestError(t *testing.T) {
	r := newR(t, &redact.Config{Secrets: []string{secret}})
	sentinel := errors.New("sentinel")
	pathErr := &fs.PathError{Op: "open", Path: "/tmp/" + secret, Err: fs.ErrNotExist}

	tests := []struct {
		name string
		err  error
		want string
	}{
		{"literal", fmt.Errorf("auth with %s: %w", secret, sentinel), "auth with [REDACTED]: sentinel"},
		{"pattern", errors.New("bad line password=abc"), "bad line password=[REDACTED]"},
		{"path error", pathErr, "open /tmp/[REDACTED]: file does not exist"},
		{"net timeout", &net.OpError{Op: "dial", Net: "tcp", Err: &timeoutErr{"i/o timeout for token=abc"}}, "dial tcp: i/o timeout for token=[REDACTED]"},
		{"joined", errors.Join(sentinel, errors.New(secret)), "sentinel\n[REDACTED]"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := r.Error(tt.err)
			require.Error(t, got)
			if got.Error() != tt.want {
				t.Errorf("Error(%q) = %q, want %q", tt.err, got.Error(), tt.want)
			}
			assert.Same(t, tt.err, errors.Unwrap(got), "Unwrap returns the original")
			assert.ErrorIs(t, got, tt.err)
			assert.NotContains(t, fmt.Sprintf("%v %+v %s %#v", got, got, got, got), secret)
		})
	}

	assert.NoError(t, r.Error(nil))

	wrapped := r.Error(fmt.Errorf("ctx: %w", pathErr))
	assert.ErrorIs(t, wrapped, fs.ErrNotExist)
	var pe *fs.PathError
	require.ErrorAs(t, wrapped, &pe)
	assert.Same(t, pathErr, pe)

	again := r.Error(wrapped)
	assert.Same(t, wrapped, again, "wrapping twice is a no-op")
}

func TestErrorURL(t *testing.T) {
	r := newR(t, nil)
	//lint:ignore SA1007 the URL is invalid on purpose: the test needs net/url's error for it
	_, perr := url.Parse("ssh://bob:hunter2@host:bad")
	require.Error(t, perr)
	got := r.Error(perr)
	assert.NotContains(t, got.Error(), "hunter2")
	assert.Contains(t, got.Error(), "ssh://bob:[REDACTED]@host:bad")
	var ue *url.Error
	require.ErrorAs(t, got, &ue)
	assert.NotContains(t, ue.URL, "hunter2", "errors.As finds the redacted *url.Error")
	assert.Equal(t, "parse", ue.Op)

	// A bad escape in the password: net/url quotes it.
	//lint:ignore SA1007 the URL is invalid on purpose: the test needs net/url's error for it
	_, perr = url.Parse("ssh://bob:pa%zzss@host")
	require.Error(t, perr)
	assert.NotContains(t, r.Error(perr).Error(), "%zz")
	var esc url.EscapeError
	assert.ErrorAs(t, r.Error(perr), &esc)

	// A *url.Error from an HTTP client with a timeout below.
	uerr := &url.Error{Op: "Get", URL: "https://u:pw@h/?token=t", Err: &net.OpError{Op: "dial", Net: "tcp", Err: &timeoutErr{"timeout"}}}
	got = r.Error(uerr)
	assert.Equal(t, `Get "https://u:[REDACTED]@h/?token=[REDACTED]": dial tcp: timeout`, got.Error())
	var ne net.Error
	require.ErrorAs(t, got, &ne)
	assert.True(t, ne.Timeout())
	assert.True(t, os.IsTimeout(got))
	var oe *net.OpError
	assert.ErrorAs(t, got, &oe)
}

func TestErrorNetTimeout(t *testing.T) {
	r := newR(t, nil)
	ctx, cancel := context.WithTimeout(t.Context(), 1)
	defer cancel()
	<-ctx.Done()
	var d net.Dialer
	_, err := d.DialContext(ctx, "tcp", "127.0.0.1:1")
	require.Error(t, err)
	got := r.Error(err)
	var ne net.Error
	require.ErrorAs(t, got, &ne)
	assert.Equal(t, err.(net.Error).Timeout(), ne.Timeout())
	assert.ErrorIs(t, got, context.DeadlineExceeded)

	plain := r.Error(errors.New("x"))
	assert.False(t, errors.As(plain, &ne), "not a net.Error when the original is not")
}
