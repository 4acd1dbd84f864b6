package sse_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dockssh/dockssh/sse"
)

// TestOwnership: a session is reachable only by the principal that
// created it; another principal gets the same 404 as for an id that
// never existed, on every endpoint.
func TestOwnership(t *testing.T) {
	ts := newTestServer(t, sse.Config{Grace: time.Hour}, true)
	es := ts.newSession(t, t.Context(), "alice")
	term := ts.nextTerm(t)
	assert.Regexp(t, `^[0-9a-f]{32}$`, es.id)
	term.emit([]byte("hello"))
	_, last := es.readOutput(t, 5)

	unknown := strings.Repeat("0", 32)
	for _, tc := range []struct{ name, user, id string }{
		{"other principal", "mallory", es.id},
		{"unknown id", "alice", unknown},
		{"malformed id", "alice", "not-a-session-id"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, body := ts.post(t, "/api/v1/terminal/send/"+tc.id, tc.user, "data=id%0a", nil)
			assert.Equal(t, http.StatusNotFound, code)
			assert.Equal(t, "unknown session\n", body)
			code, body = ts.post(t, "/api/v1/terminal/resize-window/"+tc.id, tc.user, "rows=1&cols=1", nil)
			assert.Equal(t, http.StatusNotFound, code)
			assert.Equal(t, "unknown session\n", body)
		})
	}
	t.Run("resume by other principal", func(t *testing.T) {
		other := ts.openStream(t, t.Context(), "/api/v1/terminal/stream", "mallory", http.Header{"Last-Event-Id": {last}})
		assert.Equal(t, http.StatusNotFound, other.resp.StatusCode)
	})
	term.mu.Lock()
	defer term.mu.Unlock()
	assert.Empty(t, term.input, "input from another principal reached the terminal")
	assert.Empty(t, term.sizes)
}

// TestOriginChecks: browsers mark requests from other sites; those may
// neither type into a session nor start one, unless their origin is
// allowed. Requests without the headers (curl) pass.
func TestOriginChecks(t *testing.T) {
	ts := newTestServer(t, sse.Config{AllowedOrigins: []string{"https://ops.example"}}, true)
	es := ts.newSession(t, t.Context(), "alice")
	ts.nextTerm(t)
	self := strings.Replace(ts.URL, "http://", "http://", 1)

	for _, tc := range []struct {
		name string
		hdr  http.Header
		ok   bool
	}{
		{"no browser headers", nil, true},
		{"same-origin fetch", http.Header{"Sec-Fetch-Site": {"same-origin"}, "Origin": {self}}, true},
		{"cross-site fetch", http.Header{"Sec-Fetch-Site": {"cross-site"}, "Origin": {"https://evil.example"}}, false},
		{"same-site fetch", http.Header{"Sec-Fetch-Site": {"same-site"}, "Origin": {"https://sub.example"}}, false},
		{"foreign Origin only", http.Header{"Origin": {"https://evil.example"}}, false},
		{"own Origin only", http.Header{"Origin": {self}}, true},
		{"allowed origin", http.Header{"Sec-Fetch-Site": {"cross-site"}, "Origin": {"https://ops.example"}}, true},
		{"null Origin", http.Header{"Origin": {"null"}}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			want := http.StatusForbidden
			if tc.ok {
				want = http.StatusOK
			}
			code, _ := ts.post(t, "/api/v1/terminal/send/"+es.id, "alice", "data=", tc.hdr)
			assert.Equal(t, want, code, "send")
			code, _ = ts.post(t, "/api/v1/terminal/resize-window/"+es.id, "alice", "rows=5&cols=5", tc.hdr)
			assert.Equal(t, want, code, "resize")
			ctx, cancel := context.WithCancel(t.Context())
			defer cancel()
			s := ts.openStream(t, ctx, "/api/v1/terminal/stream", "alice", tc.hdr)
			assert.Equal(t, want, s.resp.StatusCode, "stream")
			if tc.ok {
				ts.nextTerm(t)
			}
		})
	}
}

// TestResume: a stream that drops and reconnects with Last-Event-ID gets
// exactly the output it has not seen, also what was written while it was
// away.
func TestResume(t *testing.T) {
	ts := newTestServer(t, sse.Config{Grace: time.Hour}, true)
	ctx, cut := context.WithCancel(t.Context())
	es := ts.newSession(t, ctx, "alice")
	term := ts.nextTerm(t)
	term.emit([]byte("one "))
	_, last := es.readOutput(t, 4)
	term.emit([]byte("two "))
	es.readOutput(t, 4) // seen, but the client does not get to record its id
	cut()
	// Output and input while no stream is attached.
	ts.send(t, es.id, "alice", "three ")

	es2 := ts.openStream(t, t.Context(), "/api/v1/terminal/stream/", "alice", http.Header{"Last-Event-Id": {last}})
	require.Equal(t, http.StatusOK, es2.resp.StatusCode)
	got, _ := es2.readOutput(t, len("two three "))
	assert.Equal(t, "two three ", string(got))

	t.Run("malformed Last-Event-ID", func(t *testing.T) {
		for _, id := range []string{"x", es.id, es.id + ".-1", es.id + ".01", es.id + ".999999"} {
			s := ts.openStream(t, t.Context(), "/api/v1/terminal/stream", "alice", http.Header{"Last-Event-Id": {id}})
			assert.Equal(t, http.StatusBadRequest, s.resp.StatusCode, "Last-Event-ID %q", id)
		}
	})
}

// TestResumeGap: a resume from further back than the buffer holds gets a
// "lost" event with the number of bytes lost, then the output from the
// next whole character on.
func TestResumeGap(t *testing.T) {
	ts := newTestServer(t, sse.Config{Grace: time.Hour, BufferSize: 4096}, false)
	es := ts.newSession(t, t.Context(), "alice")
	term := ts.nextTerm(t)
	term.emit([]byte("x"))
	_, first := es.readOutput(t, 1)
	// 5000 bytes of 2-byte characters: the buffer keeps the last 4096
	// bytes, which then start with a whole character.
	text := strings.Repeat("é", 2500)
	for i := 0; i < len(text); i += 1000 {
		term.emit([]byte(text[i : i+1000]))
		es.readOutput(t, 1000)
	}

	es2 := ts.openStream(t, t.Context(), "/api/v1/terminal/stream", "alice", http.Header{"Last-Event-Id": {first}})
	require.Equal(t, http.StatusOK, es2.resp.StatusCode)
	ev := es2.nextEvent(t)
	require.Equal(t, "lost", ev.name, "event %q", ev.raw)
	assert.Equal(t, `{"bytes":904}`, ev.data) // 5001 - 4096 = 905 minus the 'x' already seen
	got, _ := es2.readOutput(t, 4096)
	assert.Equal(t, text[len(text)-4096:], string(got))

	// An odd cut: the oldest byte kept is the second byte of a character.
	term.emit([]byte("a"))
	es2.readOutput(t, 1)
	es3 := ts.openStream(t, t.Context(), "/api/v1/terminal/stream", "alice", http.Header{"Last-Event-Id": {first}})
	ev = es3.nextEvent(t)
	require.Equal(t, "lost", ev.name)
	assert.Equal(t, `{"bytes":906}`, ev.data) // one more, and the orphaned byte
	got, _ = es3.readOutput(t, 4095)
	assert.Equal(t, text[len(text)-4094:]+"a", string(got))
	assert.True(t, utf8.Valid(got))
}

// TestUTF8NeverSplit: a character whose bytes arrive in separate reads
// is sent whole in one event, whatever the split.
func TestUTF8NeverSplit(t *testing.T) {
	ts := newTestServer(t, sse.Config{}, false)
	es := ts.newSession(t, t.Context(), "alice")
	term := ts.nextTerm(t)
	for _, s := range []string{"é", "€", "😀", "a€b😀c"} {
		for cut := 1; cut < len(s); cut++ {
			if utf8.RuneStart(s[cut]) {
				continue
			}
			// The stream sends the "A" at once and holds the first
			// bytes of the character until the rest arrives.
			k := cut // where the split character starts
			for !utf8.RuneStart(s[k]) {
				k--
			}
			term.emit([]byte("A" + s[:cut]))
			ev := es.nextEvent(t)
			require.Equal(t, `"A`+s[:k]+`"`, ev.data, "split at %d", cut)
			term.emit([]byte(s[cut:]))
			ev = es.nextEvent(t)
			assert.Equal(t, s[k:], string(decodeOutput(t, ev.data)), "split at %d", cut)
		}
	}
	// Every event on its own is valid UTF-8 with no escaped bytes.
	text := []byte(strings.Repeat("añ€😀", 300))
	for i := 0; i < len(text); {
		n := min(1+i%7, len(text)-i)
		term.emit(text[i : i+n])
		i += n
	}
	var all []byte
	for len(all) < len(text) {
		ev := es.nextEvent(t)
		assert.NotContains(t, ev.data, `\udc`)
		p := decodeOutput(t, ev.data)
		assert.True(t, utf8.Valid(p), "event %q", ev.data)
		all = append(all, p...)
	}
	assert.Equal(t, string(text), string(all))
}

// TestBinaryOutput: bytes that are not UTF-8 arrive intact as the lone
// surrogates U+DC80..U+DCFF, valid UTF-8 around them as characters,
// including an incomplete sequence at the very end of the output.
func TestBinaryOutput(t *testing.T) {
	ts := newTestServer(t, sse.Config{}, false)
	es := ts.newSession(t, t.Context(), "alice")
	term := ts.nextTerm(t)
	all := make([]byte, 256)
	for i := range all {
		all[i] = byte(i)
	}
	random := make([]byte, 64<<10)
	rand.Read(random)
	// The last two bytes begin a character that never completes: they
	// are held back until the output ends, then sent escaped.
	var want []byte
	for _, p := range [][]byte{all, []byte("ok \xff\xfe é \xc3\x28 \xed\xa0\x80 \xf4\x90\x80\x80"), random, []byte("\xe2\x82\xac\xe2\x82")} {
		term.emit(p)
		want = append(want, p...)
	}
	term.finish(nil)
	got, _ := es.readOutput(t, len(want))
	assert.True(t, bytes.Equal(want, got), "bytes changed")
	ev := es.nextEvent(t)
	assert.Equal(t, "exit", ev.name)

	t.Run("encoding", func(t *testing.T) {
		ts := newTestServer(t, sse.Config{}, false)
		es := ts.newSession(t, t.Context(), "alice")
		term := ts.nextTerm(t)
		term.emit([]byte("a\xffb\x80"))
		assert.Equal(t, `"a\udcffb\udc80"`, es.nextEvent(t).data)
	})
}

// TestExit: when the process ends, the stream gets the rest of the output,
// an exit event with the status, and ends; the session is gone and the
// handler serves new ones.
func TestExit(t *testing.T) {
	for _, tc := range []struct {
		name string
		err  error
		want string
	}{
		{"status 0", nil, `{"code":0,"reason":"exit"}`},
		{"status 3", &exitError{3}, `{"code":3,"reason":"exit"}`},
		{"wrapped status", fmt.Errorf("wrapped: %w", &exitError{130}), `{"code":130,"reason":"exit"}`},
		{"unknown status", errors.New("engine: connection reset"), `{"code":-1,"reason":"exit"}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ts := newTestServer(t, sse.Config{Grace: time.Hour}, false)
			es := ts.newSession(t, t.Context(), "alice")
			term := ts.nextTerm(t)
			term.emit([]byte("bye\r\n"))
			term.finish(tc.err)
			got, _ := es.readOutput(t, 5)
			assert.Equal(t, "bye\r\n", string(got))
			ev := es.nextEvent(t)
			assert.Equal(t, "exit", ev.name)
			assert.Equal(t, tc.want, ev.data)
			rest, err := io.ReadAll(es.br)
			assert.NoError(t, err, "the stream ends cleanly")
			assert.Empty(t, rest)
			waitSessions(t, ts.h, 0)
			assert.True(t, term.isClosed(), "the terminal is released")
			code, _ := ts.post(t, "/api/v1/terminal/send/"+es.id, "alice", "data=x", nil)
			assert.Equal(t, http.StatusNotFound, code)

			es2 := ts.newSession(t, t.Context(), "alice")
			ts.nextTerm(t).emit([]byte("again"))
			got, _ = es2.readOutput(t, 5)
			assert.Equal(t, "again", string(got))
		})
	}
}

// waitSessions waits until h has n sessions.
func waitSessions(tb testing.TB, h *sse.Handler, n int) {
	tb.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for h.Sessions() != n {
		if time.Now().After(deadline) {
			tb.Fatalf("Sessions() = %d, want %d", h.Sessions(), n)
		}
		time.Sleep(time.Millisecond) // polling an observable count
	}
}

// TestStartFailure: a terminal that cannot start ends the session with
// reason "error" and shows the client nothing of the cause.
func TestStartFailure(t *testing.T) {
	ts := newTestServer(t, sse.Config{Start: func(context.Context, string, int, int) (sse.Terminal, error) {
		return nil, errors.New("engine: container 3f2a secret-internal-detail not running")
	}}, false)
	es := ts.newSession(t, t.Context(), "alice")
	ev := es.nextEvent(t)
	assert.Equal(t, "exit", ev.name)
	assert.Equal(t, `{"code":-1,"reason":"error"}`, ev.data)
	rest, _ := io.ReadAll(es.br)
	assert.NotContains(t, ev.raw+string(rest), "secret-internal-detail")
	waitSessions(t, ts.h, 0)
}

// TestInputBeforeStart: input and a resize sent right after the
// connectionId event, while the terminal is still starting, reach it in
// order once it has started.
func TestInputBeforeStart(t *testing.T) {
	release := make(chan struct{})
	var started atomic.Pointer[fakeTerm]
	ts := newTestServer(t, sse.Config{Start: func(ctx context.Context, p string, rows, cols int) (sse.Terminal, error) {
		select {
		case <-release:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		f := newFakeTerm(p, rows, cols, false)
		started.Store(f)
		return f, nil
	}}, false)
	es := ts.newSession(t, t.Context(), "alice")
	ts.send(t, es.id, "alice", "echo one\n")
	code, body := ts.post(t, "/api/v1/terminal/resize-window/"+es.id, "alice", "rows=50&cols=132", nil)
	require.Equal(t, http.StatusOK, code, body)
	ts.send(t, es.id, "alice", "echo two\n")
	close(release)
	ts.send(t, es.id, "alice", "echo three\n")
	waitUntil(t, "the terminal started", func() bool { return started.Load() != nil })
	f := started.Load()
	f.waitFor(t, "all input", func(f *fakeTerm) bool { return len(f.input) == len("echo one\necho two\necho three\n") })
	assert.Equal(t, "echo one\necho two\necho three\n", string(f.input))
	// The resize was asked for while the start was pending: the terminal
	// either starts with the new size (the session's goroutine read the
	// size after the resize came) or starts at 24x80 and is resized once.
	f.mu.Lock()
	startedResized := f.rows == 50 && f.cols == 132
	f.mu.Unlock()
	if startedResized {
		assert.Empty(t, f.sizes, "no resize after a start with the new size")
		return
	}
	f.waitFor(t, "the resize", func(f *fakeTerm) bool { return len(f.sizes) == 1 })
	assert.Equal(t, []string{"50x132"}, f.sizes)
	assert.Equal(t, [2]int{24, 80}, [2]int{f.rows, f.cols}, "initial size")
}

func waitUntil(tb testing.TB, what string, cond func() bool) {
	tb.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond) // polling an observable state
	}
}
