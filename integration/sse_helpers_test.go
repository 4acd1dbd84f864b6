package integration

import (
	"archive/tar"
	"bufio"
	"compress/gzip"
	"context"
	"crypto/sha512"
	"encoding/base64"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/stretchr/testify/require"

	"github.com/dockssh/dockssh/execbridge"
	"github.com/dockssh/dockssh/integration/internal/harness"
	"github.com/dockssh/dockssh/sse"
)

// execbridge's Process is the terminal sse needs, without either package
// importing the other.
var _ sse.Terminal = execbridge.Process(nil)

// requireTool finds a program the test needs, or ends the test: a loud skip,
// or a failure under CI=true or DOCKSSH_REQUIRE_DOCKER=1.
func requireTool(tb testing.TB, name, install string) string {
	tb.Helper()
	p, err := exec.LookPath(name)
	if err == nil {
		return p
	}
	if harness.Required() {
		tb.Fatalf("%s is required here (CI=true or DOCKSSH_REQUIRE_DOCKER=1) but not found: %s", name, install)
	}
	msg := fmt.Sprintf("SKIPPING %s: %s not found (%s); set DOCKSSH_REQUIRE_DOCKER=1 to make this a failure", tb.Name(), name, install)
	fmt.Fprintln(os.Stderr, "!!! "+msg)
	tb.Skip(msg)
	return ""
}

// xtermPackages makes sure the npm packages of the xterm.js versions the
// page pins are unpacked in the user's cache (outside the repository),
// fetching them with `npm pack` when missing, and returns the directory
// that holds "@xterm/xterm@VERSION/..." and "@xterm/addon-fit@VERSION/..."
// as a CDN that mirrors npm lays them out. The files are checked against
// the page's integrity hashes by the browser itself.
func xtermPackages(tb testing.TB) string {
	tb.Helper()
	npmMu.Lock()
	defer npmMu.Unlock()
	cache := os.Getenv("XDG_CACHE_HOME")
	if cache == "" {
		home, err := os.UserHomeDir()
		require.NoError(tb, err)
		cache = filepath.Join(home, ".cache")
	}
	dir := filepath.Join(cache, "dockssh", "npm")
	pkgs := []struct{ name, version, tgz string }{
		{"@xterm/xterm", sse.XtermVersion, "xterm-xterm-" + sse.XtermVersion + ".tgz"},
		{"@xterm/addon-fit", sse.XtermFitVersion, "xterm-addon-fit-" + sse.XtermFitVersion + ".tgz"},
	}
	root := filepath.Join(dir, "cdn")
	for _, p := range pkgs {
		dest := filepath.Join(root, p.name+"@"+p.version)
		if _, err := os.Stat(filepath.Join(dest, "package.json")); err == nil {
			continue
		}
		tgz := filepath.Join(dir, p.tgz)
		if _, err := os.Stat(tgz); err != nil {
			npm := requireTool(tb, "npm", "apt-get install npm")
			require.NoError(tb, os.MkdirAll(dir, 0o755))
			cmd := exec.Command(npm, "pack", "--silent", p.name+"@"+p.version)
			cmd.Dir = dir
			if out, err := cmd.CombinedOutput(); err != nil {
				if harness.Required() {
					tb.Fatalf("npm pack %s@%s: %v: %s", p.name, p.version, err, out)
				}
				tb.Skipf("SKIPPING %s: npm pack %s@%s failed: %v: %s", tb.Name(), p.name, p.version, err, out)
			}
		}
		require.NoError(tb, untar(tgz, dest))
	}
	return root
}

var npmMu sync.Mutex

// untar unpacks an npm tarball's "package/" into dest.
func untar(tgz, dest string) error {
	f, err := os.Open(tgz)
	if err != nil {
		return err
	}
	defer f.Close()
	gz, err := gzip.NewReader(f)
	if err != nil {
		return err
	}
	tmp := dest + ".tmp"
	os.RemoveAll(tmp)
	tr := tar.NewReader(gz)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return err
		}
		name, ok := strings.CutPrefix(h.Name, "package/")
		if !ok || h.Typeflag != tar.TypeReg || !filepath.IsLocal(name) {
			continue
		}
		p := filepath.Join(tmp, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		b, err := io.ReadAll(tr)
		if err != nil {
			return err
		}
		if err := os.WriteFile(p, b, 0o644); err != nil {
			return err
		}
	}
	os.RemoveAll(dest)
	return os.Rename(tmp, dest)
}

// sriSHA384 returns a file's Subresource Integrity value.
func sriSHA384(tb testing.TB, path string) string {
	tb.Helper()
	b, err := os.ReadFile(path)
	require.NoError(tb, err)
	sum := sha512.Sum384(b)
	return "sha384-" + base64.StdEncoding.EncodeToString(sum[:])
}

// serveCDN serves dir on 127.0.0.1 like a CDN: readable from any origin.
func serveCDN(tb testing.TB, dir string) string {
	tb.Helper()
	fs := http.FileServer(http.Dir(dir))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Access-Control-Allow-Origin", "*")
		fs.ServeHTTP(w, r)
	}))
	tb.Cleanup(srv.Close)
	return srv.URL
}

// dockerTerminals returns a StartFunc that starts the target's shell
// under a terminal through execbridge's Docker backend.
func dockerTerminals(tb testing.TB, target *harness.Target) sse.StartFunc {
	tb.Helper()
	docker := harness.Docker(tb)
	backend := execbridge.NewDockerBackend(docker, &execbridge.DockerConfig{KillGrace: time.Second, Logger: slog.New(slog.DiscardHandler)})
	t := execbridge.Target{ID: target.ID, Name: target.Name}
	shell, err := backend.Shell(tb.Context(), t)
	require.NoError(tb, err)
	return func(ctx context.Context, principal string, rows, cols int) (sse.Terminal, error) {
		return backend.Start(ctx, execbridge.ProcessSpec{
			Target: t, Argv: []string{shell}, Env: []string{"TERM=xterm-256color"},
			TTY: true, Rows: rows, Cols: cols,
		})
	}
}

// sseEvent is one Server-Sent Event.
type sseEvent struct{ name, data, id string }

// sseClient drives one session over HTTP, as a script would.
type sseClient struct {
	base, user, password string
	client               *http.Client
	id                   string
	resp                 *http.Response
	br                   *bufio.Reader
	out                  []byte // decoded output so far
	lastID               string
	exit                 string // the exit event's data
}

// openSSE starts a session (Last-Event-ID empty) or resumes one.
func openSSE(tb testing.TB, ctx context.Context, c *sseClient, query, lastID string) {
	tb.Helper()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.base+"/api/v1/terminal/stream"+query, nil)
	require.NoError(tb, err)
	req.SetBasicAuth(c.user, c.password)
	if lastID != "" {
		req.Header.Set("Last-Event-ID", lastID)
	}
	resp, err := c.client.Do(req)
	require.NoError(tb, err)
	tb.Cleanup(func() { resp.Body.Close() })
	require.Equal(tb, http.StatusOK, resp.StatusCode)
	c.resp, c.br = resp, bufio.NewReaderSize(resp.Body, 64<<10)
	if lastID == "" {
		ev, err := c.next()
		require.NoError(tb, err)
		require.Equal(tb, "connectionId", ev.name)
		c.id = ev.data
	}
}

// next reads the next event, skipping comments.
func (c *sseClient) next() (sseEvent, error) {
	var ev sseEvent
	seen := false
	for {
		line, err := c.br.ReadSlice('\n')
		if err != nil {
			return ev, err
		}
		if len(line) == 1 {
			if seen {
				return ev, nil
			}
			continue
		}
		k, v, _ := strings.Cut(strings.TrimSuffix(string(line), "\n"), ":")
		v = strings.TrimPrefix(v, " ")
		switch k {
		case "event":
			ev.name, seen = v, true
		case "data":
			ev.data, seen = v, true
		case "id":
			ev.id, seen = v, true
		}
	}
}

// readUntil reads events until the output matches re (nil: never) or the
// exit event comes, and returns the output.
func (c *sseClient) readUntil(tb testing.TB, re *regexp.Regexp) string {
	tb.Helper()
	deadline := time.AfterFunc(30*time.Second, func() { c.resp.Body.Close() })
	defer deadline.Stop()
	for re == nil || !re.Match(c.out) {
		ev, err := c.next()
		if err != nil {
			tb.Fatalf("stream ended (%v) before %q; output so far:\n%q", err, re, c.out)
		}
		switch ev.name {
		case "data":
			c.out = append(c.out, decodeSSEData(tb, ev.data)...)
			c.lastID = ev.id
		case "exit":
			c.exit = ev.data
			return string(c.out)
		}
	}
	return string(c.out)
}

// post posts a form to an endpoint of the session and requires 200.
func (c *sseClient) post(tb testing.TB, endpoint string, form url.Values) string {
	tb.Helper()
	req, err := http.NewRequest(http.MethodPost, c.base+"/api/v1/terminal/"+endpoint+"/"+c.id, strings.NewReader(form.Encode()))
	require.NoError(tb, err)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(c.user, c.password)
	resp, err := c.client.Do(req)
	require.NoError(tb, err)
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	require.Equal(tb, http.StatusOK, resp.StatusCode, "%s: %s", endpoint, body)
	return string(body)
}

func (c *sseClient) send(tb testing.TB, data string) {
	tb.Helper()
	c.post(tb, "send", url.Values{"data": {data}})
}

// decodeSSEData decodes a data event: UTF-8 for characters, a byte for
// each lone surrogate U+DC80..U+DCFF.
func decodeSSEData(tb testing.TB, s string) []byte {
	tb.Helper()
	if !strings.Contains(s, `\`) && !strings.ContainsRune(s, 0xfffd) {
		if len(s) >= 2 && s[0] == '"' && s[len(s)-1] == '"' {
			return []byte(s[1 : len(s)-1])
		}
	}
	s = s[1 : len(s)-1]
	var units []uint16
	for i := 0; i < len(s); {
		if s[i] != '\\' {
			r, size := utf8.DecodeRuneInString(s[i:])
			units = append(units, utf16.Encode([]rune{r})...)
			i += size
			continue
		}
		switch e := s[i+1]; e {
		case 'u':
			v, err := strconv.ParseUint(s[i+2:i+6], 16, 16)
			require.NoError(tb, err)
			units = append(units, uint16(v))
			i += 6
			continue
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
		default:
			units = append(units, uint16(e))
		}
		i += 2
	}
	var out []byte
	for i := 0; i < len(units); i++ {
		u := rune(units[i])
		switch {
		case utf16.IsSurrogate(u) && u < 0xdc00 && i+1 < len(units):
			out = utf8.AppendRune(out, utf16.DecodeRune(u, rune(units[i+1])))
			i++
		case u >= 0xdc80 && u <= 0xdcff:
			out = append(out, byte(u-0xdc00))
		default:
			out = utf8.AppendRune(out, u)
		}
	}
	return out
}

// artifactDir returns where a test keeps files for after the run:
// $DOCKSSH_ARTIFACTS, else go test's -outputdir, else a directory under
// the system's temporary directory. t.TempDir is removed after the test.
func artifactDir(tb testing.TB) string {
	tb.Helper()
	dir := os.Getenv("DOCKSSH_ARTIFACTS")
	if dir == "" {
		if f := flag.Lookup("test.outputdir"); f != nil {
			dir = f.Value.String()
		}
	}
	if dir == "" {
		dir = filepath.Join(os.TempDir(), "dockssh-artifacts")
	}
	dir = filepath.Join(dir, strings.NewReplacer("/", "_", " ", "_").Replace(tb.Name()))
	require.NoError(tb, os.MkdirAll(dir, 0o755))
	return dir
}

// sseLogger sends a handler's log to tb.Log; the handler must be closed
// before the test ends (newSSEServer does).
func sseLogger(tb testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(sseLogWriter{tb}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type sseLogWriter struct{ tb testing.TB }

func (w sseLogWriter) Write(p []byte) (int, error) {
	w.tb.Log(strings.TrimSuffix(string(p), "\n"))
	return len(p), nil
}

// newSSEHandler returns an sse handler for cfg (Basic authentication as
// user:password unless cfg says otherwise), closed at cleanup.
func newSSEHandler(tb testing.TB, cfg sse.Config, user, password string) *sse.Handler {
	tb.Helper()
	if cfg.Authenticate == nil {
		cfg.Authenticate = sse.BasicAuth("dockssh test", func(_ context.Context, u, p string) (string, error) {
			if u == user && p == password {
				return u, nil
			}
			return "", errors.New("wrong user or password")
		})
	}
	if cfg.Logger == nil {
		cfg.Logger = sseLogger(tb)
	}
	h, err := sse.New(&cfg)
	require.NoError(tb, err)
	tb.Cleanup(func() {
		if err := h.Close(); err != nil {
			tb.Errorf("sse Close: %v", err)
		}
	})
	return h
}

// newSSEServer serves newSSEHandler's handler on 127.0.0.1. At cleanup the
// connections are cut first (streams detach), then the server and the
// handler close.
func newSSEServer(tb testing.TB, cfg sse.Config, user, password string) (*sse.Handler, *httptest.Server) {
	tb.Helper()
	h := newSSEHandler(tb, cfg, user, password)
	srv := httptest.NewServer(h)
	tb.Cleanup(func() {
		srv.CloseClientConnections()
		srv.Close()
	})
	return h, srv
}

// quietSSELogger discards a handler's log, for benchmarks.
func quietSSELogger() *slog.Logger { return slog.New(slog.DiscardHandler) }
