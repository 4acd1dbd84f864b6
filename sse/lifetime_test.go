package sse_test

import (
	"context"
	"crypto/tls"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dockssh/dockssh/sse"
)

// TestLimits: sessions in total and per principal, body size, and the
// validation of every form field.
func TestLimits(t *testing.T) {
	t.Run("sessions", func(t *testing.T) {
		ts := newTestServer(t, sse.Config{MaxSessions: 3, MaxSessionsPerPrincipal: 2}, false)
		ts.newSession(t, t.Context(), "alice")
		ts.newSession(t, t.Context(), "alice")
		es := ts.openStream(t, t.Context(), "/api/v1/terminal/stream", "alice", nil)
		assert.Equal(t, http.StatusTooManyRequests, es.resp.StatusCode)
		ts.newSession(t, t.Context(), "bob")
		es = ts.openStream(t, t.Context(), "/api/v1/terminal/stream", "carol", nil)
		assert.Equal(t, http.StatusServiceUnavailable, es.resp.StatusCode)
		assert.Equal(t, 3, ts.h.Sessions())
	})

	ts := newTestServer(t, sse.Config{MaxBodyBytes: 1024, Grace: time.Hour}, false)
	es := ts.newSession(t, t.Context(), "alice")
	term := ts.nextTerm(t)
	send, resize := "/api/v1/terminal/send/"+es.id, "/api/v1/terminal/resize-window/"+es.id
	for _, tc := range []struct {
		name, path, form string
		hdr              http.Header
		want             int
	}{
		{"body too large", send, "data=" + strings.Repeat("a", 1100), nil, http.StatusRequestEntityTooLarge},
		{"body at the limit", send, "data=" + strings.Repeat("a", 1019), nil, http.StatusOK},
		{"no data", send, "date=x", nil, http.StatusBadRequest},
		{"data twice", send, "data=a&data=b", nil, http.StatusBadRequest},
		{"not a form", send, `{"data":"x"}`, http.Header{"Content-Type": {"application/json"}}, http.StatusUnsupportedMediaType},
		{"form with charset", send, "data=x", http.Header{"Content-Type": {"application/x-www-form-urlencoded; charset=UTF-8"}}, http.StatusOK},
		{"rows missing", resize, "cols=80", nil, http.StatusBadRequest},
		{"rows zero", resize, "rows=0&cols=80", nil, http.StatusBadRequest},
		{"rows negative", resize, "rows=-1&cols=80", nil, http.StatusBadRequest},
		{"rows with unit", resize, "rows=24px&cols=80", nil, http.StatusBadRequest},
		{"cols too large", resize, "rows=24&cols=4097", nil, http.StatusBadRequest},
		{"cols NaN", resize, "rows=24&cols=NaN", nil, http.StatusBadRequest},
		{"largest", resize, "rows=4096&cols=4096", nil, http.StatusOK},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, body := ts.post(t, tc.path, "alice", tc.form, tc.hdr)
			assert.Equal(t, tc.want, code, "body %q", body)
			assert.NotContains(t, body, "goroutine")
		})
	}
	term.waitFor(t, "the input at the limit", func(f *fakeTerm) bool { return len(f.input) == 1020 })
	assert.Equal(t, []string{"4096x4096"}, term.sizes)

	t.Run("initial size", func(t *testing.T) {
		for q, want := range map[string]int{
			"?rows=30&cols=100": http.StatusOK, "?rows=30": http.StatusBadRequest, "?rows=0&cols=1": http.StatusBadRequest,
		} {
			s := ts.openStream(t, t.Context(), "/api/v1/terminal/stream"+q, "alice", nil)
			assert.Equal(t, want, s.resp.StatusCode, q)
		}
		f := ts.nextTerm(t)
		assert.Equal(t, [2]int{30, 100}, [2]int{f.rows, f.cols})
	})
}

// TestGrace: with Grace 0 (docker-ssh's behaviour) a dropped stream ends
// the session; with a grace period, the session waits that long for a
// reconnect, then ends.
func TestGrace(t *testing.T) {
	t.Run("zero", func(t *testing.T) {
		ts := newTestServer(t, sse.Config{}, false)
		ctx, cut := context.WithCancel(t.Context())
		es := ts.newSession(t, ctx, "alice")
		term := ts.nextTerm(t)
		cut()
		term.waitFor(t, "the terminal closed", func(f *fakeTerm) bool { return f.closed })
		waitSessions(t, ts.h, 0)
		code, _ := ts.post(t, "/api/v1/terminal/send/"+es.id, "alice", "data=x", nil)
		assert.Equal(t, http.StatusNotFound, code)
	})
	t.Run("expires", func(t *testing.T) {
		ts := newTestServer(t, sse.Config{Grace: 50 * time.Millisecond}, false)
		ctx, cut := context.WithCancel(t.Context())
		ts.newSession(t, ctx, "alice")
		term := ts.nextTerm(t)
		start := time.Now()
		cut()
		term.waitFor(t, "the terminal closed", func(f *fakeTerm) bool { return f.closed })
		assert.GreaterOrEqual(t, time.Since(start), 50*time.Millisecond)
		waitSessions(t, ts.h, 0)
	})
	t.Run("exit while away", func(t *testing.T) {
		// The process ends while no stream is attached: a reconnect within
		// the grace period still gets the last output and the exit.
		ts := newTestServer(t, sse.Config{Grace: time.Hour}, false)
		ctx, cut := context.WithCancel(t.Context())
		es := ts.newSession(t, ctx, "alice")
		term := ts.nextTerm(t)
		term.emit([]byte("a"))
		_, last := es.readOutput(t, 1)
		cut()
		ts.streamEnded(t)
		term.emit([]byte("b"))
		term.finish(&exitError{7})
		term.waitFor(t, "the output read", func(f *fakeTerm) bool { return len(f.chunks) == 0 })
		es2 := ts.openStream(t, t.Context(), "/api/v1/terminal/stream", "alice", http.Header{"Last-Event-Id": {last}})
		got, _ := es2.readOutput(t, 1)
		assert.Equal(t, "b", string(got))
		ev := es2.nextEvent(t)
		assert.Equal(t, `{"code":7,"reason":"exit"}`, ev.data)
		waitSessions(t, ts.h, 0)
	})
}

// TestHeartbeat: an idle stream gets comment lines at the interval.
func TestHeartbeat(t *testing.T) {
	ts := newTestServer(t, sse.Config{Heartbeat: 20 * time.Millisecond}, false)
	es := ts.newSession(t, t.Context(), "alice")
	ts.nextTerm(t)
	start := time.Now()
	for range 3 {
		ev := es.next(t)
		assert.Equal(t, ": ping\n\n", ev.raw)
	}
	assert.GreaterOrEqual(t, time.Since(start), 40*time.Millisecond)
}

// TestIdleTimeout: a session without input or output ends after
// IdleTimeout with reason "idle".
func TestIdleTimeout(t *testing.T) {
	ts := newTestServer(t, sse.Config{IdleTimeout: 80 * time.Millisecond}, true)
	es := ts.newSession(t, t.Context(), "alice")
	term := ts.nextTerm(t)
	start := time.Now()
	ts.send(t, es.id, "alice", "x")
	es.readOutput(t, 1)
	ev := es.nextEvent(t)
	assert.Equal(t, "exit", ev.name)
	assert.Contains(t, ev.data, `"reason":"idle"`)
	assert.GreaterOrEqual(t, time.Since(start), 80*time.Millisecond)
	assert.True(t, term.isClosed())
}

// TestBackpressure: with nobody reading, the terminal is read only until
// the session's buffer is full; nothing is dropped, and it all arrives
// once a client resumes.
func TestBackpressure(t *testing.T) {
	const size = 8 << 10
	ts := newTestServer(t, sse.Config{BufferSize: size, Grace: time.Hour}, false)
	ctx, cut := context.WithCancel(t.Context())
	es := ts.newSession(t, ctx, "alice")
	term := ts.nextTerm(t)
	term.emit([]byte("a"))
	_, last := es.readOutput(t, 1)
	cut()
	ts.streamEnded(t)
	out := make([]byte, 1<<20)
	for i := range out {
		out[i] = 'a' + byte(i%26)
	}
	for i := 0; i < len(out); i += 4096 {
		term.emit(out[i : i+4096])
	}
	// Reads stop when the buffer holds size unsent bytes: the first
	// byte was sent, so size+1 bytes in all.
	term.waitFor(t, "the buffer full", func(f *fakeTerm) bool { return f.handed == size+1 })
	term.mu.Lock()
	handed := term.handed
	term.mu.Unlock()
	assert.Equal(t, size+1, handed, "read beyond the buffer")

	es2 := ts.openStream(t, t.Context(), "/api/v1/terminal/stream", "alice", http.Header{"Last-Event-Id": {last}})
	got, _ := es2.readOutput(t, len(out))
	assert.Equal(t, string(out), string(got))
}

// TestTakeover: a second stream resuming the same session replaces the
// first, which ends.
func TestTakeover(t *testing.T) {
	ts := newTestServer(t, sse.Config{Grace: time.Hour}, false)
	es := ts.newSession(t, t.Context(), "alice")
	term := ts.nextTerm(t)
	term.emit([]byte("a"))
	_, last := es.readOutput(t, 1)
	es2 := ts.openStream(t, t.Context(), "/api/v1/terminal/stream", "alice", http.Header{"Last-Event-Id": {last}})
	require.Equal(t, http.StatusOK, es2.resp.StatusCode)
	rest, err := io.ReadAll(es.br)
	assert.NoError(t, err)
	assert.Empty(t, rest, "the first stream ends")
	term.emit([]byte("b"))
	got, _ := es2.readOutput(t, 1)
	assert.Equal(t, "b", string(got))
}

// TestCloseEndsSessions: Close ends every session, gives attached streams
// an exit event with reason "shutdown", refuses new requests, and returns
// after every goroutine it started (newTestServer checks the count).
func TestCloseEndsSessions(t *testing.T) {
	ts := newTestServer(t, sse.Config{Grace: time.Hour}, false)
	var streams []*eventStream
	var terms []*fakeTerm
	for _, u := range []string{"alice", "bob", "alice"} {
		streams = append(streams, ts.newSession(t, t.Context(), u))
		terms = append(terms, ts.nextTerm(t))
	}
	// One session has no stream attached.
	ctx, cut := context.WithCancel(t.Context())
	ts.newSession(t, ctx, "carol")
	carol := ts.nextTerm(t)
	cut()

	require.NoError(t, ts.h.Close())
	for i, es := range streams {
		ev := es.nextEvent(t)
		assert.Equal(t, "exit", ev.name)
		assert.Contains(t, ev.data, `"reason":"shutdown"`)
		assert.True(t, terms[i].isClosed())
	}
	assert.True(t, carol.isClosed())
	assert.Equal(t, 0, ts.h.Sessions())
	es := ts.openStream(t, t.Context(), "/api/v1/terminal/stream", "alice", nil)
	assert.Equal(t, http.StatusServiceUnavailable, es.resp.StatusCode)

	t.Run("shutdown deadline", func(t *testing.T) {
		ts := newTestServer(t, sse.Config{}, false)
		ts.newSession(t, t.Context(), "alice")
		ts.nextTerm(t)
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		// The session ends in the background; cleanup's Close waits.
		assert.ErrorIs(t, ts.h.Shutdown(ctx), context.Canceled)
	})
}

// TestHTTP2: the stream works over HTTP/2, an event at a time, with input
// sent on the same connection.
func TestHTTP2(t *testing.T) {
	ts := newTestServer(t, sse.Config{}, true)
	srv := httptest.NewUnstartedServer(ts.h)
	srv.EnableHTTP2 = true
	srv.StartTLS()
	t.Cleanup(func() {
		srv.CloseClientConnections()
		srv.Close()
	})
	ts.Server = srv
	es := ts.newSession(t, t.Context(), "alice")
	ts.nextTerm(t)
	require.Equal(t, 2, es.resp.ProtoMajor, "protocol %s", es.resp.Proto)
	for _, s := range []string{"a", "bc", "€"} {
		ts.send(t, es.id, "alice", s)
		got, _ := es.readOutput(t, len(s))
		assert.Equal(t, s, string(got))
	}
	_ = tls.VersionTLS13
}

// TestServerTimeouts: a stream outlives http.Server's ReadTimeout and
// WriteTimeout: each write moves the write deadline, and the read deadline
// is lifted (a stream reads no body).
func TestServerTimeouts(t *testing.T) {
	ts := newTestServer(t, sse.Config{Heartbeat: 20 * time.Millisecond}, true)
	srv := httptest.NewUnstartedServer(ts.h)
	srv.Config.ReadTimeout = 100 * time.Millisecond
	srv.Config.WriteTimeout = 100 * time.Millisecond
	srv.Start()
	t.Cleanup(func() {
		srv.CloseClientConnections()
		srv.Close()
	})
	ts.Server = srv
	es := ts.newSession(t, t.Context(), "alice")
	ts.nextTerm(t)
	start := time.Now()
	for time.Since(start) < 400*time.Millisecond {
		require.Equal(t, ": ping\n\n", es.next(t).raw)
	}
	ts.send(t, es.id, "alice", "still here")
	got, _ := es.readOutput(t, len("still here"))
	assert.Equal(t, "still here", string(got))
}

// TestAuthentication: every endpoint requires the configured
// authentication; Basic and bearer helpers; no handler without a choice.
func TestAuthentication(t *testing.T) {
	users := map[string]string{"alice": "wonderland"}
	basic := sse.BasicAuth("web terminal", func(_ context.Context, user, password string) (string, error) {
		if p, ok := users[user]; ok && p == password {
			return user, nil
		}
		return "", errBadPassword
	})
	bearer := sse.BearerAuth(sse.StaticTokens(map[string]string{"tok-123": "bob"}))

	for _, tc := range []struct {
		name      string
		auth      sse.AuthFunc
		set       func(*http.Request)
		principal string // "" means refused
		challenge string
	}{
		{"basic ok", basic, func(r *http.Request) { r.SetBasicAuth("alice", "wonderland") }, "alice", ""},
		{"basic wrong", basic, func(r *http.Request) { r.SetBasicAuth("alice", "x") }, "", `Basic realm="web terminal", charset="UTF-8"`},
		{"basic none", basic, func(*http.Request) {}, "", `Basic realm="web terminal", charset="UTF-8"`},
		{"bearer header", bearer, func(r *http.Request) { r.Header.Set("Authorization", "Bearer tok-123") }, "bob", ""},
		{"bearer cookie", bearer, func(r *http.Request) { r.AddCookie(&http.Cookie{Name: sse.TokenCookie, Value: "tok-123"}) }, "bob", ""},
		{"bearer wrong", bearer, func(r *http.Request) { r.Header.Set("Authorization", "Bearer tok-124") }, "", `Bearer error="invalid_token"`},
		{"bearer none", bearer, func(*http.Request) {}, "", "Bearer"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got string
			ts := newTestServer(t, sse.Config{Authenticate: tc.auth, Start: func(_ context.Context, p string, r, c int) (sse.Terminal, error) {
				got = p
				f := newFakeTerm(p, r, c, false)
				f.finish(nil)
				return f, nil
			}}, false)
			for _, path := range []string{"/", "/term.js", "/api/v1/terminal/stream", "/api/v1/terminal/send/" + strings.Repeat("a", 32)} {
				// Without Basic, the page is the login: it is served
				// to a request without credentials.
				pageLogin := strings.HasPrefix(tc.challenge, "Bearer") && (path == "/" || path == "/term.js")
				method := http.MethodGet
				if strings.Contains(path, "send") {
					method = http.MethodPost
				}
				req, _ := http.NewRequest(method, ts.URL+path, strings.NewReader("data=x"))
				req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
				tc.set(req)
				resp, err := ts.Client().Do(req)
				require.NoError(t, err)
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if pageLogin {
					assert.Equal(t, http.StatusOK, resp.StatusCode, path)
				} else if tc.principal == "" {
					assert.Equal(t, http.StatusUnauthorized, resp.StatusCode, path)
					assert.Equal(t, tc.challenge, resp.Header.Get("WWW-Authenticate"))
					assert.NotContains(t, string(body), "wonderland")
				} else if strings.Contains(path, "send") {
					assert.Equal(t, http.StatusNotFound, resp.StatusCode, path)
				} else {
					assert.Equal(t, http.StatusOK, resp.StatusCode, path)
				}
			}
			if tc.principal != "" {
				waitSessions(t, ts.h, 0)
				assert.Equal(t, tc.principal, got)
			}
		})
	}

	t.Run("a choice is required", func(t *testing.T) {
		_, err := sse.New(&sse.Config{Start: nopStart})
		assert.Error(t, err)
		_, err = sse.New(nil)
		assert.Error(t, err)
		_, err = sse.New(&sse.Config{Start: nopStart, Unauthenticated: true, AllowedOrigins: []string{"not an origin"}, Logger: testLogger(t)})
		assert.Error(t, err)
	})
}
