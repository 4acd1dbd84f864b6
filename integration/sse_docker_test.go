package integration

import (
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dockssh/dockssh/integration/internal/harness"
	"github.com/dockssh/dockssh/sse"
)

// TestSSEDocker drives the web terminal's API over HTTP, as docker-ssh's
// README does with curl, into a shell in a real container through
// execbridge's Docker backend: a busybox target and a Debian one with bash.
func TestSSEDocker(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		start func(testing.TB, string) *harness.Target
	}{
		{"busybox", harness.StartTarget},
		{"debian", harness.StartDebian},
	} {
		t.Run(tc.name, func(t *testing.T) {
			target := tc.start(t, "sse-"+tc.name)
			h, srv := newSSEServer(t, sse.Config{Start: dockerTerminals(t, target), Grace: time.Minute}, "alice", "pw")
			c := &sseClient{base: srv.URL, user: "alice", password: "pw", client: srv.Client()}
			openSSE(t, t.Context(), c, "?rows=24&cols=80", "")

			// Typed right after connectionId, while docker exec starts.
			c.send(t, "echo $((6*7))\n")
			c.readUntil(t, outputLine("42"))

			assert.Equal(t, `{"rows":33,"cols":101}`, c.post(t, "resize-window", url.Values{"rows": {"33"}, "cols": {"101"}}))
			c.send(t, "stty size\n")
			c.readUntil(t, outputLine("33 101"))

			// Bytes that are not UTF-8 arrive as they were written.
			c.out = nil
			c.send(t, `printf 'bin:\377\376\000\303\251:end\n'`+"\n")
			out := c.readUntil(t, regexp.MustCompile(`bin:[^\n]*:end\r\n`))
			assert.Contains(t, out, "bin:\xff\xfe\x00é:end\r\n")

			// A dropped stream resumes where it was, output typed
			// meanwhile included.
			c.resp.Body.Close()
			c.send(t, "echo while$((1+1))away\n")
			openSSE(t, t.Context(), c, "?rows=24&cols=80", c.lastID)
			c.readUntil(t, outputLine("while2away"))

			c.send(t, "exit 3\n")
			c.readUntil(t, nil)
			assert.Equal(t, `{"code":3,"reason":"exit"}`, c.exit)
			waitFor(t, "the session to end", func() bool { return h.Sessions() == 0 })

			// The server still serves: a second session.
			c2 := &sseClient{base: srv.URL, user: "alice", password: "pw", client: srv.Client()}
			openSSE(t, t.Context(), c2, "", "")
			c2.send(t, "echo second $((2+3))\n")
			c2.readUntil(t, outputLine("second 5"))

			// The first session's id is gone.
			req, _ := http.NewRequest(http.MethodPost, srv.URL+"/api/v1/terminal/send/"+c.id, strings.NewReader("data=x"))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			req.SetBasicAuth("alice", "pw")
			resp, err := srv.Client().Do(req)
			require.NoError(t, err)
			resp.Body.Close()
			assert.Equal(t, http.StatusNotFound, resp.StatusCode)
		})
	}
}

// waitFor polls cond, an observable state, until it holds.
func waitFor(tb testing.TB, what string, cond func() bool) {
	tb.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// outputLine matches s as a whole line of terminal output (bash ends
// bracketed paste mode before a command's output: ESC [?2004l CR).
func outputLine(s string) *regexp.Regexp {
	return regexp.MustCompile(`\n(?:\x1b\[\?2004l)?\r?` + regexp.QuoteMeta(s) + `\r\n`)
}
