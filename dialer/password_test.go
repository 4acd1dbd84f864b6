package dialer_test

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/dockssh/dockssh/dialer"
)

// recordHandler is a slog.Handler that keeps the text of every record: the
// message and each attribute's value as its String method renders it (no
// quoting or escaping that could hide a secret from a substring search).
type recordHandler struct {
	mu    *sync.Mutex
	lines *[]string
	attrs []slog.Attr
}

func newRecordHandler() *recordHandler {
	return &recordHandler{mu: &sync.Mutex{}, lines: new([]string)}
}

func (h *recordHandler) Enabled(context.Context, slog.Level) bool { return true }

func (h *recordHandler) Handle(_ context.Context, r slog.Record) error {
	var b strings.Builder
	b.WriteString(r.Message)
	add := func(a slog.Attr) bool {
		fmt.Fprintf(&b, " %s=%s", a.Key, a.Value.Resolve().String())
		return true
	}
	for _, a := range h.attrs {
		add(a)
	}
	r.Attrs(add)
	h.mu.Lock()
	defer h.mu.Unlock()
	*h.lines = append(*h.lines, b.String())
	return nil
}

func (h *recordHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return &recordHandler{mu: h.mu, lines: h.lines, attrs: append(append([]slog.Attr{}, h.attrs...), as...)}
}

func (h *recordHandler) WithGroup(string) slog.Handler { return h }

func (h *recordHandler) text() string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return strings.Join(*h.lines, "\n")
}

// randomPassword returns 8 to 24 bytes of printable ASCII, with now and
// then a control byte, DEL or a byte above 0x7f.
func randomPassword(rng *rand.Rand) string {
	b := make([]byte, 8+rng.IntN(17))
	for i := range b {
		switch rng.IntN(16) {
		case 0:
			b[i] = byte(rng.IntN(0x20))
		case 1:
			b[i] = 0x7f + byte(rng.IntN(0x81))
		default:
			b[i] = byte(0x20 + rng.IntN(0x5f))
		}
	}
	// A separator now and then, wherever it falls.
	if rng.IntN(2) == 0 {
		b[rng.IntN(len(b))] = "/?#@:%"[rng.IntN(6)]
	}
	return string(b)
}

// TestPasswordNeverInErrorsOrLogs: for random passwords over all printable
// bytes (and some that are not), typed into the URL as they are or
// percent-encoded, under every PasswordPolicy, no error of New or
// DialContext and no log line contains the password.
func TestPasswordNeverInErrorsOrLogs(t *testing.T) {
	srv := newFakeServer(t)
	srv.set(func() {
		srv.password = "the-server-wants-another-one"
		srv.keyAuth = false
	})
	rng := rand.New(rand.NewPCG(7, 11))
	policies := []dialer.PasswordPolicy{dialer.PasswordOnce, dialer.PasswordKeep, dialer.PasswordRefuse}
	dials := 0
	for i := range 300 {
		pw := randomPassword(rng)
		policy := policies[i%len(policies)]
		form := pw
		if i%2 == 1 {
			form = url.PathEscape(pw)
		}
		raw := fmt.Sprintf("ssh://tester:%s@127.0.0.1:%d/var/run/docker.sock", form, srv.port)
		logs := newRecordHandler()
		cfg := srv.Config(t)
		cfg.Logger = slog.New(logs)
		cfg.PasswordPolicy = policy
		var shown []string
		d, err := dialer.New(raw, cfg)
		if err == nil && i%5 == 0 && dials < 40 {
			dials++
			_, err = d.DialContext(t.Context(), "tcp", "")
			require.Error(t, err, "the server refuses the password")
		}
		if d != nil {
			d.Close()
		}
		if err != nil {
			shown = append(shown, err.Error(), fmt.Sprintf("%+v", err), fmt.Sprintf("%#v", err))
		}
		shown = append(shown, logs.text())
		for _, s := range shown {
			for _, secret := range []string{pw, form} {
				if strings.Contains(s, secret) {
					t.Fatalf("#%d (%v): the password %q (in the URL as %q) shows in:\n%s", i, policy, pw, form, s)
				}
			}
		}
	}
	require.Positive(t, dials)
}
