package sse_test

import (
	"bytes"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dockssh/dockssh/sse"
)

// The chunks testdata/dockerssh/fake.coffee makes docker-ssh's web server
// send; stream.golden holds what docker-ssh put on the wire for them,
// recorded by testdata/dockerssh/capture.sh.
var dockerSSHChunks = []string{
	"plain text\r\n",
	"quote \" backslash \\ slash / tab \t bell \x07 esc \x1b[1;31m nul \x00 del \x7f\r\n",
	"ctl \x01\x02\x08\x0b\x0c\x0e\x1f\r\n",
	"utf8 h\u00e9llo \u20ac \u4e16\u754c \U0001F600 \u2028 \u2029 \ufeff end",
	"<script>&amp;</script> \u0085 \u00a0",
}

// The form bodies capture.sh posts to send/:id, in its order.
var dockerSSHSends = []string{
	"data=ls -al\n",              // curl -d $'data=ls -al\n', as in docker-ssh's README
	"data=caf%25C3%25A9%2Bx%3By", // curl --data-urlencode 'data=caf%C3%A9+x;y'
	"data=a+b%20c%zz;d",          // raw '+', ';' and a '%' without hex digits
}

// TestWireFormatMatchesDockerSSH replays what docker-ssh's capture
// recorded and requires the same bytes: the connectionId event, each data
// event (docker-ssh's two lines, then our id line), input decoded from the
// form as body-parser decodes it, and the resize answer.
func TestWireFormatMatchesDockerSSH(t *testing.T) {
	golden, err := os.ReadFile(filepath.Join("testdata", "dockerssh", "stream.golden"))
	require.NoError(t, err)
	resizeGolden, err := os.ReadFile(filepath.Join("testdata", "dockerssh", "resize.golden"))
	require.NoError(t, err)

	ts := newTestServer(t, sse.Config{}, true)
	es := ts.newSession(t, t.Context(), "alice")
	term := ts.nextTerm(t)
	assert.Equal(t, "text/event-stream; charset=utf-8", es.resp.Header.Get("Content-Type"))

	var got strings.Builder
	got.WriteString("event: connectionId\ndata: {{ID}}\n\n")
	idLine := regexp.MustCompile(`^id: ` + es.id + `\.[1-9][0-9]*\n$`)
	readData := func() {
		t.Helper()
		ev := es.nextEvent(t)
		require.Equal(t, "data", ev.name, "event %q", ev.raw)
		// Our event is docker-ssh's plus an id line before the blank line.
		lines := strings.SplitAfter(ev.raw, "\n")
		require.Len(t, lines, 5, "event %q", ev.raw)
		assert.Regexp(t, idLine, lines[2])
		got.WriteString(lines[0] + lines[1] + lines[3])
	}
	for _, c := range dockerSSHChunks {
		term.emit([]byte(c))
		readData()
	}
	for _, form := range dockerSSHSends {
		code, body := ts.post(t, "/api/v1/terminal/send/"+es.id, "alice", form, nil)
		require.Equal(t, http.StatusOK, code)
		require.Empty(t, body)
		readData() // the fake terminal echoes
	}
	assert.Equal(t, string(golden), got.String())

	code, body := ts.post(t, "/api/v1/terminal/resize-window/"+es.id, "alice", "rows=10&cols=20", nil)
	assert.Equal(t, http.StatusOK, code)
	assert.Equal(t, string(resizeGolden), body)
	term.waitFor(t, "the resize", func(f *fakeTerm) bool { return len(f.sizes) == 1 })
	assert.Equal(t, []string{"10x20"}, term.sizes)
}

// TestPaths checks the paths docker-ssh's Express router matched (with and
// without a trailing slash) and mounting under a prefix.
func TestPaths(t *testing.T) {
	ts := newTestServer(t, sse.Config{}, true)
	mux := http.NewServeMux()
	mux.Handle("/term/", http.StripPrefix("/term", ts.h))
	ts.Server = serve(t, mux)

	for _, path := range []string{"/term/api/v1/terminal/stream", "/term/api/v1/terminal/stream/"} {
		t.Run(path, func(t *testing.T) {
			es := ts.openStream(t, t.Context(), path, "alice", nil)
			require.Equal(t, http.StatusOK, es.resp.StatusCode)
			ev := es.next(t)
			require.Equal(t, "connectionId", ev.name)
			term := ts.nextTerm(t)
			for _, p := range []string{"/term/api/v1/terminal/send/" + ev.data, "/term/api/v1/terminal/send/" + ev.data + "/"} {
				code, _ := ts.post(t, p, "alice", "data=x", nil)
				assert.Equal(t, http.StatusOK, code, p)
			}
			for _, p := range []string{"/term/api/v1/terminal/resize-window/" + ev.data, "/term/api/v1/terminal/resize-window/" + ev.data + "/"} {
				code, body := ts.post(t, p, "alice", "rows=3&cols=4", nil)
				assert.Equal(t, http.StatusOK, code, p)
				assert.Equal(t, `{"rows":3,"cols":4}`, body)
			}
			out, _ := es.readOutput(t, 2)
			assert.Equal(t, "xx", string(out))
			term.waitFor(t, "both resizes", func(f *fakeTerm) bool { return len(f.sizes) == 2 })
		})
	}

	get := func(path string) *http.Response {
		req, _ := http.NewRequest(http.MethodGet, ts.URL+path, nil)
		req.Header.Set("X-Test-User", "alice")
		resp, err := (&http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}).Do(req)
		require.NoError(t, err)
		resp.Body.Close()
		return resp
	}
	t.Run("prefix without slash redirects", func(t *testing.T) {
		srv := serve(t, http.StripPrefix("/term", ts.h))
		req, _ := http.NewRequest(http.MethodGet, srv.URL+"/term", nil)
		req.Header.Set("X-Test-User", "alice")
		resp, err := srv.Client().Transport.RoundTrip(req)
		require.NoError(t, err)
		resp.Body.Close()
		assert.Equal(t, http.StatusMovedPermanently, resp.StatusCode)
		assert.Equal(t, "./term/", resp.Header.Get("Location"))
	})
	t.Run("page", func(t *testing.T) {
		for _, p := range []string{"/term/", "/term/index.html", "/term/term.js", "/term/term.css"} {
			resp := get(p)
			assert.Equal(t, http.StatusOK, resp.StatusCode, p)
		}
		resp := get("/term/")
		assert.Contains(t, resp.Header.Get("Content-Security-Policy"), "frame-ancestors 'none'")
		assert.Contains(t, resp.Header.Get("Content-Type"), "text/html")
	})
	t.Run("unknown path", func(t *testing.T) {
		assert.Equal(t, http.StatusNotFound, get("/term/api/v1/terminal/nope").StatusCode)
	})
}

// TestPageLoadsPinnedXterm checks that the page loads xterm.js from the
// configured base URL with integrity hashes, and that the CSP allows that
// origin.
func TestPageLoadsPinnedXterm(t *testing.T) {
	ts := newTestServer(t, sse.Config{XtermBaseURL: "http://127.0.0.1:9/npm/"}, false)
	req, _ := http.NewRequest(http.MethodGet, ts.URL+"/", nil)
	req.Header.Set("X-Test-User", "alice")
	resp, err := ts.Client().Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	var b bytes.Buffer
	b.ReadFrom(resp.Body)
	page := b.String()
	for _, want := range []string{
		`src="http://127.0.0.1:9/npm/@xterm/xterm@` + sse.XtermVersion + `/lib/xterm.js" integrity="sha384-`,
		`src="http://127.0.0.1:9/npm/@xterm/addon-fit@` + sse.XtermFitVersion + `/lib/addon-fit.js" integrity="sha384-`,
		`href="http://127.0.0.1:9/npm/@xterm/xterm@` + sse.XtermVersion + `/css/xterm.css" integrity="sha384-`,
	} {
		assert.Contains(t, page, want)
	}
	assert.Contains(t, resp.Header.Get("Content-Security-Policy"), "script-src 'self' http://127.0.0.1:9;")

	for _, bad := range []string{"javascript:alert(1)", "ftp://x/y", "http://h/?q=1", "//host/npm"} {
		_, err := sse.New(&sse.Config{Start: nopStart, Unauthenticated: true, XtermBaseURL: bad, Logger: testLogger(t)})
		assert.Error(t, err, "XtermBaseURL %q", bad)
	}
}
