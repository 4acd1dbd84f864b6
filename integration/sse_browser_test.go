package integration

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/fetch"
	"github.com/chromedp/cdproto/input"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
	"github.com/stretchr/testify/require"

	"github.com/dockssh/dockssh/integration/internal/harness"
	"github.com/dockssh/dockssh/sse"
)

// TestSSEBrowser drives the web terminal's page in Debian's chromium,
// headless, against a shell in a real Debian container through
// execbridge's Docker backend: it logs in with HTTP Basic, types, resizes
// the window, survives a cut event stream, and sees the exit, then starts
// a second session. xterm.js comes from its npm packages, served on
// 127.0.0.1; the browser reaches nothing else. A failing step leaves a
// screenshot (see artifactDir).
func TestSSEBrowser(t *testing.T) {
	t.Parallel()
	chromium := requireTool(t, "chromium", "apt-get install chromium")
	cdn := serveCDN(t, xtermPackages(t))
	target := harness.StartDebian(t, "sse-browser")

	pw := make([]byte, 12)
	rand.Read(pw)
	password := hex.EncodeToString(pw)
	srv := newCuttableServer(t, sse.Config{
		Start:        dockerTerminals(t, target),
		Grace:        time.Minute,
		XtermBaseURL: cdn,
	}, "alice", password)

	ctx := newBrowser(t, chromium, "alice", password)
	b := &browserSteps{t: t, ctx: ctx}

	b.step("log in and connect", func() error {
		if err := chromedp.Do(ctx, chromedp.Navigate(srv.URL+"/")); err != nil {
			return err
		}
		return b.waitJS(`window.dockssh && window.dockssh.id !== null && window.dockssh.text().includes(":/#")`)
	})
	firstID := b.js(`window.dockssh.id`)

	b.step("type a command and read its output", func() error {
		if err := chromedp.Do(ctx, typeKeys("echo $((6*7))\r")); err != nil {
			return err
		}
		return b.waitJS(`/^42$/m.test(window.dockssh.text())`)
	})

	b.step("resize the window and see it in stty size", func() error {
		before := b.js(`window.dockssh.term.cols + "x" + window.dockssh.term.rows`)
		if err := chromedp.Do(ctx, chromedp.EmulateViewport(640, 360)); err != nil {
			return err
		}
		if err := b.waitJS(`window.dockssh.term.cols + "x" + window.dockssh.term.rows !== ` + jsString(before)); err != nil {
			return err
		}
		rows, cols := b.js(`String(window.dockssh.term.rows)`), b.js(`String(window.dockssh.term.cols)`)
		want := `{"rows":` + rows + `,"cols":` + cols + `}`
		if err := srv.waitResize(want); err != nil {
			return err
		}
		if err := chromedp.Do(ctx, typeKeys("stty size\r")); err != nil {
			return err
		}
		return b.waitJS(`new RegExp("^` + rows + ` ` + cols + `$", "m").test(window.dockssh.text())`)
	})

	b.step("cut the event stream; what is typed meanwhile shows after the reconnect", func() error {
		srv.holdResumes()
		if n := srv.cutStreams(); n != 1 {
			return fmt.Errorf("cut %d streams, want 1", n)
		}
		if err := b.waitJS(`document.getElementById("status").textContent.includes("reconnecting")`); err != nil {
			return err
		}
		if err := chromedp.Do(ctx, typeKeys("echo cut$((1+1))\r")); err != nil {
			return err
		}
		// The Enter went out while the stream was down.
		if err := srv.waitSend("\r"); err != nil {
			return err
		}
		srv.releaseResumes()
		if err := b.waitJS(`/^cut2$/m.test(window.dockssh.text())`); err != nil {
			return err
		}
		if srv.resumes() != 1 {
			return fmt.Errorf("%d resumed streams, want 1", srv.resumes())
		}
		if id := b.js(`window.dockssh.id`); id != firstID {
			return fmt.Errorf("session %s after the reconnect, want %s", id, firstID)
		}
		return nil
	})

	b.step("type exit and see the exit event", func() error {
		if err := chromedp.Do(ctx, typeKeys("exit\r")); err != nil {
			return err
		}
		return b.waitJS(`window.dockssh.ended.includes("exited with status 0")`)
	})

	b.step("the server serves a second session", func() error {
		if err := chromedp.Do(ctx, chromedp.Navigate(srv.URL+"/")); err != nil {
			return err
		}
		if err := b.waitJS(`window.dockssh.id !== null && window.dockssh.id !== ` + jsString(firstID) + ` && window.dockssh.text().includes(":/#")`); err != nil {
			return err
		}
		if err := chromedp.Do(ctx, typeKeys("echo second$((2+3))\r")); err != nil {
			return err
		}
		if err := b.waitJS(`/^second5$/m.test(window.dockssh.text())`); err != nil {
			return err
		}
		if n := srv.h.Sessions(); n != 1 {
			return fmt.Errorf("%d sessions, want 1 (the first one ended)", n)
		}
		return nil
	})
}

// typeKeys types s as a person would: a keydown carrying the text, then a
// keyup, so that the browser makes the keypress and input events itself
// and a page that handles the keydown (as xterm.js does, with
// preventDefault) gets each key once. chromedp.KeyEvent sends the
// character as a separate "char" event, which the browser delivers even
// after a prevented keydown: xterm.js then sees every key twice.
func typeKeys(s string) chromedp.Action[chromedp.Void] {
	return chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		for _, r := range s {
			events := kb.Encode(r)
			down, up := *events[0], *events[len(events)-1]
			if len(events) == 3 {
				down.Text, down.UnmodifiedText = events[1].Text, events[1].UnmodifiedText
			}
			for _, ev := range []input.DispatchKeyEventParams{down, up} {
				if _, err := cdp.Call(ctx, t, input.DispatchKeyEvent, ev); err != nil {
					return err
				}
			}
		}
		return nil
	})
}

// jsString quotes s for JavaScript (JSON is valid JavaScript).
func jsString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// browserSteps runs the named steps of a browser test; a failing step
// saves a screenshot and the terminal's text as artifacts.
type browserSteps struct {
	t   *testing.T
	ctx context.Context
}

func (b *browserSteps) step(name string, f func() error) {
	b.t.Helper()
	b.t.Logf("step: %s", name)
	if err := f(); err != nil {
		dir := artifactDir(b.t)
		base := strings.Map(func(r rune) rune {
			if r == ' ' || r == ';' || r == ',' {
				return '_'
			}
			return r
		}, name)
		ctx, cancel := context.WithTimeout(b.ctx, 10*time.Second)
		defer cancel()
		shot := filepath.Join(dir, base+".png")
		if png, serr := chromedp.Run(ctx, chromedp.FullScreenshot(100)); serr == nil {
			os.WriteFile(shot, png, 0o644)
		} else {
			shot = "none: " + serr.Error()
		}
		text, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`window.dockssh ? window.dockssh.text() : document.documentElement.outerHTML`))
		os.WriteFile(filepath.Join(dir, base+".txt"), []byte(text), 0o644)
		b.t.Fatalf("step %q: %v\nscreenshot: %s\nterminal text (%s):\n%s", name, err, shot,
			filepath.Join(dir, base+".txt"), strings.TrimRight(text, "\n"))
	}
}

// waitJS waits until expr is true in the page.
func (b *browserSteps) waitJS(expr string) error {
	deadline := time.Now().Add(45 * time.Second)
	for {
		ok, err := chromedp.Run(b.ctx, chromedp.Evaluate[bool](`!!(`+expr+`)`))
		if err == nil && ok {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("timed out waiting for %s (last error: %v)", expr, err)
		}
		time.Sleep(50 * time.Millisecond) // polling the page's state
	}
}

// js evaluates expr, a string, in the page.
func (b *browserSteps) js(expr string) string {
	b.t.Helper()
	v, err := chromedp.Run(b.ctx, chromedp.Evaluate[string](expr))
	require.NoError(b.t, err, expr)
	return v
}

// newBrowser starts Debian's chromium headless with a fresh profile and
// answers HTTP authentication challenges with user and password, as a
// person would in the login dialog. Requests to anything but 127.0.0.1
// fail the test.
func newBrowser(t *testing.T, chromium, user, password string) context.Context {
	t.Helper()
	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(),
		chromedp.ExecPath(chromium),
		chromedp.Flag("headless", true),
		chromedp.Flag("no-sandbox", true),
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("no-first-run", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1000, 700),
	)
	ctx, cancel := chromedp.NewContext(alloc)
	var wg sync.WaitGroup
	t.Cleanup(func() {
		cancel()
		cancelAlloc()
		wg.Wait()
	})
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	paused := chromedp.Events(ctx, fetch.RequestPaused)
	auth := chromedp.Events(ctx, fetch.AuthRequired)
	wg.Go(func() {
		for ev, err := range paused {
			if err != nil {
				return
			}
			if u, perr := url.Parse(ev.Request.URL); perr != nil || u.Hostname() != "127.0.0.1" {
				t.Errorf("the browser asked for %s: only 127.0.0.1 may be contacted", ev.Request.URL)
				chromedp.Call(ctx, fetch.FailRequest, fetch.FailRequestParams{RequestID: ev.RequestID, ErrorReason: network.ErrorReasonBlockedByClient})
				continue
			}
			chromedp.Call(ctx, fetch.ContinueRequest, fetch.ContinueRequestParams{RequestID: ev.RequestID})
		}
	})
	wg.Go(func() {
		for ev, err := range auth {
			if err != nil {
				return
			}
			chromedp.Call(ctx, fetch.ContinueWithAuth, fetch.ContinueWithAuthParams{
				RequestID: ev.RequestID,
				AuthChallengeResponse: &fetch.AuthChallengeResponse{
					Response: fetch.AuthChallengeResponseResponseProvideCredentials,
					Username: user, Password: password,
				},
			})
		}
	})
	handleAuth := true
	if _, err := chromedp.Call(ctx, fetch.Enable, fetch.EnableParams{HandleAuthRequests: &handleAuth}); err != nil {
		t.Fatalf("Fetch.enable: %v", err)
	}
	return ctx
}

// cuttableServer serves an sse handler and lets a test cut the TCP
// connections of its event streams, hold resumed streams back, and watch
// sends and resizes.
type cuttableServer struct {
	*httptest.Server
	h *sse.Handler

	mu       sync.Mutex
	changed  chan struct{}
	streams  map[net.Conn]bool // connections serving a stream now
	hold     chan struct{}     // resumed streams wait for it to close
	sends    []string          // data of every send, in order
	resized  string            // the last resize answer
	resumesN int
}

type connKey struct{}

func newCuttableServer(t *testing.T, cfg sse.Config, user, password string) *cuttableServer {
	t.Helper()
	h := newSSEHandler(t, cfg, user, password)
	s := &cuttableServer{h: h, changed: make(chan struct{}), streams: map[net.Conn]bool{}}
	s.Server = httptest.NewUnstartedServer(http.HandlerFunc(s.serve))
	s.Config.ConnContext = func(ctx context.Context, c net.Conn) context.Context {
		return context.WithValue(ctx, connKey{}, c)
	}
	s.Start()
	t.Cleanup(func() {
		s.releaseResumes()
		s.CloseClientConnections()
		s.Close()
	})
	return s
}

func (s *cuttableServer) broadcastLocked() {
	close(s.changed)
	s.changed = make(chan struct{})
}

func (s *cuttableServer) serve(w http.ResponseWriter, r *http.Request) {
	switch {
	case strings.Contains(r.URL.Path, "/stream"):
		c, _ := r.Context().Value(connKey{}).(net.Conn)
		s.mu.Lock()
		hold := s.hold
		if r.Header.Get("Last-Event-ID") != "" {
			s.resumesN++
		} else {
			hold = nil
		}
		s.mu.Unlock()
		if hold != nil {
			select {
			case <-hold:
			case <-r.Context().Done():
				return
			}
		}
		s.mu.Lock()
		s.streams[c] = true
		s.mu.Unlock()
		s.h.ServeHTTP(w, r)
		s.mu.Lock()
		delete(s.streams, c)
		s.mu.Unlock()
	case strings.Contains(r.URL.Path, "/send/"):
		body := new(bytes.Buffer)
		body.ReadFrom(r.Body)
		form, _ := url.ParseQuery(body.String())
		r.Body = ioNopCloser{bytes.NewReader(body.Bytes())}
		rec := httptest.NewRecorder()
		s.h.ServeHTTP(rec, r)
		copyResponse(w, rec)
		s.mu.Lock()
		s.sends = append(s.sends, form.Get("data"))
		s.broadcastLocked()
		s.mu.Unlock()
	case strings.Contains(r.URL.Path, "/resize-window/"):
		rec := httptest.NewRecorder()
		s.h.ServeHTTP(rec, r)
		copyResponse(w, rec)
		s.mu.Lock()
		s.resized = rec.Body.String()
		s.broadcastLocked()
		s.mu.Unlock()
	default:
		s.h.ServeHTTP(w, r)
	}
}

type ioNopCloser struct{ *bytes.Reader }

func (ioNopCloser) Close() error { return nil }

func copyResponse(w http.ResponseWriter, rec *httptest.ResponseRecorder) {
	for k, v := range rec.Header() {
		w.Header()[k] = v
	}
	w.WriteHeader(rec.Code)
	w.Write(rec.Body.Bytes())
}

// cutStreams closes the connections of the streams being served, as a
// network failure would, and returns how many it closed.
func (s *cuttableServer) cutStreams() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for c := range s.streams {
		c.Close()
		n++
	}
	return n
}

func (s *cuttableServer) holdResumes() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.hold = make(chan struct{})
}

func (s *cuttableServer) releaseResumes() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.hold != nil {
		close(s.hold)
		s.hold = nil
	}
}

func (s *cuttableServer) resumes() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.resumesN
}

// waitState waits until cond holds under s.mu.
func (s *cuttableServer) waitState(what string, cond func() bool) error {
	timeout := time.After(30 * time.Second)
	s.mu.Lock()
	defer s.mu.Unlock()
	for !cond() {
		ch := s.changed
		s.mu.Unlock()
		select {
		case <-ch:
		case <-timeout:
			s.mu.Lock()
			return errors.New("timed out waiting for " + what)
		}
		s.mu.Lock()
	}
	return nil
}

// waitSend waits for a send whose data ends with suffix.
func (s *cuttableServer) waitSend(suffix string) error {
	return s.waitState(fmt.Sprintf("a send ending in %q", suffix), func() bool {
		return len(s.sends) > 0 && strings.HasSuffix(s.sends[len(s.sends)-1], suffix)
	})
}

// waitResize waits until the last resize answered want.
func (s *cuttableServer) waitResize(want string) error {
	return s.waitState("resize "+want, func() bool { return s.resized == want })
}

// TestSSEXtermIntegrity checks the page's Subresource Integrity hashes
// against the files of the npm packages, so that a version bump without
// new hashes fails here with a clear message instead of as a blank page.
func TestSSEXtermIntegrity(t *testing.T) {
	t.Parallel()
	dir := xtermPackages(t)
	h := newSSEHandler(t, sse.Config{Start: dockerlessStart, XtermBaseURL: "/npm"}, "alice", "pw")
	req := httptest.NewRequest(http.MethodGet, "/", nil)
	req.SetBasicAuth("alice", "pw")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	require.Equal(t, http.StatusOK, rec.Code)
	page := rec.Body.String()
	for _, f := range []string{
		"@xterm/xterm@" + sse.XtermVersion + "/lib/xterm.js",
		"@xterm/xterm@" + sse.XtermVersion + "/css/xterm.css",
		"@xterm/addon-fit@" + sse.XtermFitVersion + "/lib/addon-fit.js",
	} {
		want := `"/npm/` + f + `" integrity="` + sriSHA384(t, filepath.Join(dir, f)) + `"`
		want = strings.ReplaceAll(want, "+", "&#43;") // html/template's escaping
		if !strings.Contains(page, want) {
			t.Errorf("the page does not load %s with its hash %s:\n%s", f, want, page)
		}
	}
}

// dockerlessStart fails: for handlers that start no session.
func dockerlessStart(context.Context, string, int, int) (sse.Terminal, error) {
	return nil, errors.New("test: no terminals here")
}

// TestSSEBrowserToken logs the page in with a bearer token in the URL's
// fragment: it becomes a cookie, leaves the address bar, and the session
// belongs to the token's principal.
func TestSSEBrowserToken(t *testing.T) {
	t.Parallel()
	chromium := requireTool(t, "chromium", "apt-get install chromium")
	cdn := serveCDN(t, xtermPackages(t))
	principals := make(chan string, 1)
	token := hex.EncodeToString([]byte(t.Name()))
	_, srv := newSSEServer(t, sse.Config{
		Authenticate: sse.BearerAuth(sse.StaticTokens(map[string]string{token: "bob"})),
		Start: func(_ context.Context, principal string, _, _ int) (sse.Terminal, error) {
			principals <- principal
			return newPipeTerminal(true), nil
		},
		XtermBaseURL: cdn,
	}, "", "")
	ctx := newBrowser(t, chromium, "nobody", "no password")
	b := &browserSteps{t: t, ctx: ctx}
	b.step("open the page with #token=", func() error {
		if err := chromedp.Do(ctx, chromedp.Navigate(srv.URL+"/#token="+token)); err != nil {
			return err
		}
		return b.waitJS(`window.dockssh && window.dockssh.id !== null`)
	})
	b.step("type and see the echo", func() error {
		if err := chromedp.Do(ctx, typeKeys("hello")); err != nil {
			return err
		}
		return b.waitJS(`window.dockssh.text().includes("hello")`)
	})
	if got := <-principals; got != "bob" {
		t.Errorf("principal %q, want bob", got)
	}
	if h := b.js(`location.hash`); h != "" {
		t.Errorf("location.hash = %q after the login, want it removed", h)
	}
}
