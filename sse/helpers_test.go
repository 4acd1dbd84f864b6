package sse_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/stretchr/testify/require"

	"github.com/dockssh/dockssh/sse"
)

// exitError is an exit status as execbridge and os/exec report it.
type exitError struct{ code int }

func (e *exitError) Error() string { return "exit status " + strconv.Itoa(e.code) }
func (e *exitError) ExitCode() int { return e.code }

// fakeTerm is a Terminal whose output the test controls chunk by chunk:
// each Read returns (part of) one chunk. With echo, what is written comes
// back as output.
type fakeTerm struct {
	principal  string
	rows, cols int
	echo       bool

	mu      sync.Mutex
	changed chan struct{}
	chunks  [][]byte
	eof     bool  // no more output after chunks
	exit    error // what Wait returns
	closed  bool
	input   []byte
	sizes   []string // "RxC" per Resize
	handed  int      // output bytes handed to Read
}

func newFakeTerm(principal string, rows, cols int, echo bool) *fakeTerm {
	return &fakeTerm{principal: principal, rows: rows, cols: cols, echo: echo, changed: make(chan struct{})}
}

func (f *fakeTerm) broadcast() {
	close(f.changed)
	f.changed = make(chan struct{})
}

// emit queues one chunk of output.
func (f *fakeTerm) emit(p []byte) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.chunks = append(f.chunks, append([]byte(nil), p...))
	f.broadcast()
}

// finish ends the output after the queued chunks; Wait then returns exit.
func (f *fakeTerm) finish(exit error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.eof, f.exit = true, exit
	f.broadcast()
}

func (f *fakeTerm) Read(p []byte) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for {
		switch {
		case f.closed:
			return 0, io.EOF
		case len(f.chunks) > 0:
			n := copy(p, f.chunks[0])
			if n == len(f.chunks[0]) {
				f.chunks = f.chunks[1:]
			} else {
				f.chunks[0] = f.chunks[0][n:]
			}
			f.handed += n
			f.broadcast()
			return n, nil
		case f.eof:
			return 0, io.EOF
		}
		ch := f.changed
		f.mu.Unlock()
		<-ch
		f.mu.Lock()
	}
}

func (f *fakeTerm) Write(p []byte) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return 0, errors.New("fake: closed")
	}
	f.input = append(f.input, p...)
	if f.echo {
		f.chunks = append(f.chunks, append([]byte(nil), p...))
	}
	f.broadcast()
	return len(p), nil
}

func (f *fakeTerm) Resize(_ context.Context, rows, cols int) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.sizes = append(f.sizes, fmt.Sprintf("%dx%d", rows, cols))
	f.broadcast()
	return nil
}

func (f *fakeTerm) Wait(ctx context.Context) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	for !f.closed && !(f.eof && len(f.chunks) == 0) {
		ch := f.changed
		f.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			f.mu.Lock()
			return ctx.Err()
		}
		f.mu.Lock()
	}
	if f.closed && !f.eof {
		return &exitError{code: 129} // SIGHUP, as a closed pty gives
	}
	return f.exit
}

func (f *fakeTerm) Close() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.closed = true
	f.broadcast()
	return nil
}

// waitFor waits until cond, evaluated under f's lock, holds.
func (f *fakeTerm) waitFor(tb testing.TB, what string, cond func(f *fakeTerm) bool) {
	tb.Helper()
	deadline := time.After(10 * time.Second)
	f.mu.Lock()
	defer f.mu.Unlock()
	for !cond(f) {
		ch := f.changed
		f.mu.Unlock()
		select {
		case <-ch:
		case <-deadline:
			f.mu.Lock()
			tb.Fatalf("fake terminal: timed out waiting for %s", what)
		}
		f.mu.Lock()
	}
}

func (f *fakeTerm) isClosed() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.closed
}

// testServer is a Handler behind an httptest.Server whose terminals are
// fakeTerms, handed to the test in the order they start.
type testServer struct {
	*httptest.Server
	h     *sse.Handler
	terms chan *fakeTerm
	// streamsDone receives one value each time a stream request's
	// ServeHTTP returns: the session is then detached.
	streamsDone chan struct{}
}

// testLogger sends the handler's log to t.Log.
func testLogger(tb testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(logWriter{tb}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type logWriter struct{ tb testing.TB }

func (w logWriter) Write(p []byte) (int, error) {
	w.tb.Log(strings.TrimSuffix(string(p), "\n"))
	return len(p), nil
}

// principalHeader authenticates requests by the X-Test-User header: tests
// of ownership need several principals without passwords.
func principalHeader(r *http.Request) (string, error) {
	if u := r.Header.Get("X-Test-User"); u != "" {
		return u, nil
	}
	return "", &sse.AuthError{Challenge: "Test", Err: sse.ErrNoCredentials}
}

// newTestServer starts a handler with cfg (Start and, when nil,
// Authenticate filled in) and checks at cleanup that Close ends every
// goroutine it started.
func newTestServer(tb testing.TB, cfg sse.Config, echo bool) *testServer {
	tb.Helper()
	base := runtime.NumGoroutine()
	ts := &testServer{terms: make(chan *fakeTerm, 100), streamsDone: make(chan struct{}, 100)}
	if cfg.Start == nil {
		cfg.Start = func(ctx context.Context, principal string, rows, cols int) (sse.Terminal, error) {
			f := newFakeTerm(principal, rows, cols, echo)
			ts.terms <- f
			return f, nil
		}
	}
	if cfg.Authenticate == nil && !cfg.Unauthenticated {
		cfg.Authenticate = principalHeader
	}
	if cfg.Heartbeat == 0 {
		cfg.Heartbeat = -1
	}
	if cfg.Logger == nil {
		cfg.Logger = testLogger(tb)
	}
	h, err := sse.New(&cfg)
	require.NoError(tb, err)
	ts.h = h
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.ServeHTTP(w, r)
		if strings.Contains(r.URL.Path, "/stream") {
			ts.streamsDone <- struct{}{}
		}
	}))
	ts.Server = srv
	tb.Cleanup(func() {
		srv.CloseClientConnections()
		if err := h.Close(); err != nil {
			tb.Errorf("Close: %v", err)
		}
		srv.Close()
		checkGoroutines(tb, base)
	})
	return ts
}

// checkGoroutines waits for the number of goroutines to come back to base.
func checkGoroutines(tb testing.TB, base int) {
	tb.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for runtime.NumGoroutine() > base {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			tb.Errorf("goroutines: %d, want at most %d:\n%s", runtime.NumGoroutine(), base, buf[:runtime.Stack(buf, true)])
			return
		}
		runtime.Gosched()
		time.Sleep(5 * time.Millisecond) // polling an observable count, not synchronising
	}
}

// streamEnded waits for a stream request to end on the server.
func (ts *testServer) streamEnded(tb testing.TB) {
	tb.Helper()
	select {
	case <-ts.streamsDone:
	case <-time.After(10 * time.Second):
		tb.Fatal("no stream ended")
	}
}

// nextTerm returns the next terminal started.
func (ts *testServer) nextTerm(tb testing.TB) *fakeTerm {
	tb.Helper()
	select {
	case f := <-ts.terms:
		return f
	case <-time.After(10 * time.Second):
		tb.Fatal("no terminal started")
		return nil
	}
}

// event is one Server-Sent Event, or a comment block.
type event struct {
	name, data, id string
	comment        string
	raw            string
}

// eventStream reads events from a stream response.
type eventStream struct {
	resp *http.Response
	br   *bufio.Reader
	id   string // the connectionId
}

// openStream starts a stream request as user (with extra headers) and
// returns it once the response headers arrived; the caller checks the
// status. ctx ends the request.
func (ts *testServer) openStream(tb testing.TB, ctx context.Context, path, user string, hdr http.Header) *eventStream {
	tb.Helper()
	// A stream that stops sending fails the test instead of hanging it.
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	tb.Cleanup(cancel)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, ts.URL+path, nil)
	require.NoError(tb, err)
	for k, v := range hdr {
		req.Header[k] = v
	}
	if user != "" {
		req.Header.Set("X-Test-User", user)
	}
	resp, err := ts.Client().Do(req)
	require.NoError(tb, err)
	tb.Cleanup(func() { resp.Body.Close() })
	return &eventStream{resp: resp, br: bufio.NewReader(resp.Body)}
}

// newSession opens a stream for user and reads the connectionId event.
func (ts *testServer) newSession(tb testing.TB, ctx context.Context, user string) *eventStream {
	tb.Helper()
	es := ts.openStream(tb, ctx, "/api/v1/terminal/stream", user, nil)
	require.Equal(tb, http.StatusOK, es.resp.StatusCode)
	ev := es.next(tb)
	require.Equal(tb, "connectionId", ev.name, "first event")
	es.id = ev.data
	return es
}

// nextRaw reads one event block, with its blank line.
func (es *eventStream) nextRaw(tb testing.TB) (string, error) {
	tb.Helper()
	var b strings.Builder
	for {
		line, err := es.br.ReadString('\n')
		b.WriteString(line)
		if err != nil {
			return b.String(), err
		}
		if line == "\n" {
			return b.String(), nil
		}
	}
}

// next reads the next event (comments included).
func (es *eventStream) next(tb testing.TB) event {
	tb.Helper()
	raw, err := es.nextRaw(tb)
	if err != nil {
		tb.Fatalf("reading the stream: %v (read %q)", err, raw)
	}
	ev := event{raw: raw}
	for line := range strings.Lines(raw) {
		line = strings.TrimSuffix(line, "\n")
		k, v, _ := strings.Cut(line, ":")
		v = strings.TrimPrefix(v, " ")
		switch k {
		case "event":
			ev.name = v
		case "data":
			ev.data = v
		case "id":
			ev.id = v
		case "":
			if line != "" {
				ev.comment = v
			}
		}
	}
	return ev
}

// nextData skips comments and returns the next event.
func (es *eventStream) nextEvent(tb testing.TB) event {
	tb.Helper()
	for {
		if ev := es.next(tb); ev.comment == "" {
			return ev
		}
	}
}

// readOutput reads data events until their decoded bytes total n and
// returns them and the last event id.
func (es *eventStream) readOutput(tb testing.TB, n int) ([]byte, string) {
	tb.Helper()
	var out []byte
	last := ""
	for len(out) < n {
		ev := es.nextEvent(tb)
		if ev.name != "data" {
			tb.Fatalf("event %q (%q), want data after %d of %d bytes", ev.name, ev.data, len(out), n)
		}
		out = append(out, decodeOutput(tb, ev.data)...)
		last = ev.id
	}
	return out, last
}

// post posts form to path as user and returns the status and body.
func (ts *testServer) post(tb testing.TB, path, user string, form string, hdr http.Header) (int, string) {
	tb.Helper()
	req, err := http.NewRequest(http.MethodPost, ts.URL+path, strings.NewReader(form))
	require.NoError(tb, err)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	for k, v := range hdr {
		req.Header[k] = v
	}
	if user != "" {
		req.Header.Set("X-Test-User", user)
	}
	resp, err := ts.Client().Do(req)
	require.NoError(tb, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(tb, err)
	return resp.StatusCode, string(body)
}

// send types data into session id as user and requires 200.
func (ts *testServer) send(tb testing.TB, id, user, data string) {
	tb.Helper()
	code, body := ts.post(tb, "/api/v1/terminal/send/"+id, user, "data="+url.QueryEscape(data), nil)
	require.Equal(tb, http.StatusOK, code, "send: %s", body)
}

// decodeOutput decodes a data event's JSON string into the output bytes:
// UTF-8 for characters, one byte for each lone surrogate U+DC80..U+DCFF
// (encoding/json would turn those into U+FFFD).
func decodeOutput(tb testing.TB, s string) []byte {
	tb.Helper()
	if len(s) < 2 || s[0] != '"' || s[len(s)-1] != '"' {
		tb.Fatalf("data %q is not a JSON string", s)
	}
	s = s[1 : len(s)-1]
	var units []uint16
	for i := 0; i < len(s); {
		c := s[i]
		if c != '\\' {
			r, size := utf8.DecodeRuneInString(s[i:])
			if c < 0x20 || c == '"' {
				tb.Fatalf("unescaped %q in %q", c, s)
			}
			units = append(units, utf16.Encode([]rune{r})...)
			i += size
			continue
		}
		if i+1 >= len(s) {
			tb.Fatalf("dangling escape in %q", s)
		}
		switch e := s[i+1]; e {
		case '"', '\\', '/':
			units = append(units, uint16(e))
		case 'b':
			units = append(units, '\b')
		case 'f':
			units = append(units, '\f')
		case 'n':
			units = append(units, '\n')
		case 'r':
			units = append(units, '\r')
		case 't':
			units = append(units, '\t')
		case 'u':
			v, err := strconv.ParseUint(s[i+2:i+6], 16, 16)
			if err != nil {
				tb.Fatalf("bad \\u escape in %q", s)
			}
			units = append(units, uint16(v))
			i += 4
		default:
			tb.Fatalf("bad escape %q in %q", e, s)
		}
		i += 2
	}
	var out []byte
	for i := 0; i < len(units); i++ {
		u := units[i]
		switch {
		case utf16.IsSurrogate(rune(u)) && u < 0xdc00 && i+1 < len(units):
			out = append(out, string(utf16.DecodeRune(rune(u), rune(units[i+1])))...)
			i++
		case u >= 0xdc80 && u <= 0xdcff:
			out = append(out, byte(u-0xdc00))
		default:
			out = append(out, string(rune(u))...)
		}
	}
	return out
}

// nopStart fails every start; for handlers that start no session.
func nopStart(context.Context, string, int, int) (sse.Terminal, error) {
	return nil, errors.New("test: no terminals here")
}

// serve serves h on a new test server, closed in tb.Cleanup before the
// handler is (cleanups run last-in first-out).
func serve(tb testing.TB, h http.Handler) *httptest.Server {
	srv := httptest.NewServer(h)
	tb.Cleanup(func() {
		srv.CloseClientConnections()
		srv.Close()
	})
	return srv
}

var errBadPassword = errors.New("test: wrong password")
