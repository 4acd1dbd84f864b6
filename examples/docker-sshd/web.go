package main

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/dockssh/dockssh/authn"
	"github.com/dockssh/dockssh/execbridge"
	"github.com/dockssh/dockssh/sse"
)

// web is the HTTP side: /healthz and the web terminal.
type web struct {
	handler  http.Handler
	term     *sse.Handler
	loginURL string // printed at start when logins use a token
}

// newWeb builds the web terminal on the same logins as SSH: HTTP Basic
// with the SSH passwords (through authn, penalties included), a token in a
// printed login URL when keys are the only way in, or no login at all with
// WEB_AUTH=none or AUTH_MECHANISM=noAuth, as docker-ssh had it.
func newWeb(o settings, auth *authn.Authenticator, sc *ssh.ServerConfig, bridge *execbridge.Bridge, publicURL string, log *slog.Logger) (*web, error) {
	cfg := &sse.Config{
		Start: func(ctx context.Context, principal string, rows, cols int) (sse.Terminal, error) {
			login, route := execbridge.SplitUser(principal)
			return bridge.StartShell(ctx, execbridge.ShellRequest{Login: login, Route: route, Rows: rows, Cols: cols})
		},
		// A dropped stream (a network blip, a laptop lid) keeps its
		// session for the page's automatic reconnect.
		Grace:        30 * time.Second,
		XtermBaseURL: o["WEB_XTERM_URL"],
		Logger:       log,
	}
	if origins := strings.TrimSpace(o["WEB_ALLOWED_ORIGINS"]); origins != "" {
		for _, s := range strings.Split(origins, ",") {
			cfg.AllowedOrigins = append(cfg.AllowedOrigins, strings.TrimSpace(s))
		}
	}
	w := &web{}
	switch webAuth := o["WEB_AUTH"]; {
	case webAuth == "none" || sc.NoClientAuth:
		cfg.Unauthenticated = true
	case webAuth != "ssh":
		return nil, fmt.Errorf("WEB_AUTH %q: want ssh or none", webAuth)
	default:
		basic := basicAuth(auth, sc)
		token := ""
		if sc.PublicKeyCallback != nil {
			// Keys cannot log in to a browser: a token printed at start
			// does, through the page's "#token=" login.
			b := make([]byte, 24)
			rand.Read(b)
			token = hex.EncodeToString(b)
			w.loginURL = publicURL + "/#token=" + token
		}
		bearer := sse.BearerAuth(sse.StaticTokens(map[string]string{token: "web"}))
		cfg.Authenticate = func(r *http.Request) (string, error) {
			if _, _, ok := r.BasicAuth(); ok || token == "" {
				return basic(r)
			}
			return bearer(r)
		}
		if sc.PasswordCallback == nil {
			cfg.Authenticate = bearer
		}
	}
	term, err := sse.New(cfg)
	if err != nil {
		return nil, err
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Write([]byte("ok\n"))
	})
	mux.Handle("/", term)
	w.handler, w.term = mux, term
	return w, nil
}

// basicAuth checks HTTP Basic credentials with the SSH server's own
// password callback (authn: the same users, hashes, penalties and log
// lines). Each keystroke of the page is a request with the credentials,
// so a success is remembered for a minute: argon2id on every key would
// cost 64 MiB and tens of milliseconds each.
func basicAuth(auth *authn.Authenticator, sc *ssh.ServerConfig) sse.AuthFunc {
	const challenge = `Basic realm="docker-sshd", charset="UTF-8"`
	var cache struct {
		sync.Mutex
		m map[[32]byte]time.Time
	}
	cache.m = map[[32]byte]time.Time{}
	key := make([]byte, 32)
	rand.Read(key)
	return func(r *http.Request) (string, error) {
		user, pw, ok := r.BasicAuth()
		if !ok {
			return "", &sse.AuthError{Challenge: challenge, Err: sse.ErrNoCredentials}
		}
		// The cache key is a keyed hash: the password is never kept.
		h := sha256.New()
		h.Write(key)
		h.Write([]byte(user + "\x00" + pw))
		var k [32]byte
		copy(k[:], h.Sum(nil))
		now := time.Now()
		cache.Lock()
		exp, hit := cache.m[k]
		cache.Unlock()
		if hit && now.Before(exp) {
			return user, nil
		}
		remote := requestAddr(r)
		if err := auth.Allow(remote); err != nil {
			return "", &sse.AuthError{Challenge: challenge, Err: err}
		}
		if sc.PasswordCallback == nil {
			return "", &sse.AuthError{Challenge: challenge, Err: errors.New("no password logins")}
		}
		if _, err := sc.PasswordCallback(webConn{user: user, remote: remote, local: requestLocalAddr(r)}, []byte(pw)); err != nil {
			return "", &sse.AuthError{Challenge: challenge, Err: err}
		}
		cache.Lock()
		if len(cache.m) > 1024 {
			for k, e := range cache.m {
				if now.After(e) {
					delete(cache.m, k)
				}
			}
		}
		cache.m[k] = now.Add(time.Minute)
		cache.Unlock()
		return user, nil
	}
}

// webConn is what authn's callbacks see of an HTTP request.
type webConn struct {
	user          string
	remote, local net.Addr
}

func (c webConn) User() string          { return c.user }
func (c webConn) SessionID() []byte     { return nil }
func (c webConn) ClientVersion() []byte { return []byte("HTTP") }
func (c webConn) ServerVersion() []byte { return []byte("docker-sshd") }
func (c webConn) RemoteAddr() net.Addr  { return c.remote }
func (c webConn) LocalAddr() net.Addr   { return c.local }

// requestAddr is the client's address of r; nil when it is not ip:port.
func requestAddr(r *http.Request) net.Addr {
	ap, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		return nil
	}
	return net.TCPAddrFromAddrPort(ap)
}

func requestLocalAddr(r *http.Request) net.Addr {
	a, _ := r.Context().Value(http.LocalAddrContextKey).(net.Addr)
	return a
}
