package dialer_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dockssh/dockssh/dialer"
)

// newDialer returns a Dialer for srv's URL with path, closed at cleanup.
func newDialer(tb testing.TB, srv *fakeServer, path string, cfg *dialer.Config) *dialer.Dialer {
	tb.Helper()
	if cfg == nil {
		cfg = srv.Config(tb)
	}
	d, err := dialer.New(srv.URL(path), cfg)
	require.NoError(tb, err)
	tb.Cleanup(func() { d.Close() })
	return d
}

// httpClient sends HTTP requests over d, as the Docker client does.
func httpClient(d *dialer.Dialer) *http.Client {
	return &http.Client{Transport: &http.Transport{DialContext: d.DialContext}}
}

func get(tb testing.TB, c *http.Client, path string) string {
	tb.Helper()
	resp, err := c.Get("http://docker" + path)
	require.NoError(tb, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(tb, err)
	require.Equal(tb, http.StatusOK, resp.StatusCode, "body %q", body)
	return string(body)
}

// countingDial counts TCP connections the dialer opens.
func countingDial(n *atomic.Int32) dialer.DialFunc {
	var nd net.Dialer
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		n.Add(1)
		return nd.DialContext(ctx, network, addr)
	}
}

func TestHTTPOverDialStdio(t *testing.T) {
	srv := newFakeServer(t)
	var dials atomic.Int32
	cfg := srv.Config(t)
	cfg.DialTCP = countingDial(&dials)
	d := newDialer(t, srv, "", cfg)
	c := httpClient(d)

	assert.Equal(t, "OK", get(t, c, "/_ping"))
	assert.Contains(t, get(t, c, "/version"), "fake-20.10")
	c.CloseIdleConnections()
	assert.Equal(t, "OK", get(t, c, "/_ping"))
	assert.Equal(t, int32(1), dials.Load(), "one SSH connection serves every dial")

	execs, envs, _ := srv.stats()
	assert.NotEmpty(t, execs)
	for _, e := range execs {
		assert.Equal(t, "docker system dial-stdio", e)
	}
	assert.Empty(t, envs, "no env requests, ever")
}

func TestSocketPathInURL(t *testing.T) {
	srv := newFakeServer(t)
	d := newDialer(t, srv, srv.dockerSock, nil)
	assert.Equal(t, "OK", get(t, httpClient(d), "/_ping"))
	execs, _, _ := srv.stats()
	require.Len(t, execs, 1)
	assert.Equal(t, "docker --host=unix://"+srv.dockerSock+" system dial-stdio", execs[0])
}

func TestLargeResponseIntact(t *testing.T) {
	srv := newFakeServer(t)
	d := newDialer(t, srv, "", nil)
	const n = 8 << 20
	body := get(t, httpClient(d), "/big?n=8388608")
	require.Len(t, body, n)
	for i := 0; i < n; i += 4093 {
		if body[i] != byte(i%(64<<10)) {
			t.Fatalf("byte %d = %d, want %d", i, body[i], byte(i%(64<<10)))
		}
	}
}

func TestCloseWriteKeepsReading(t *testing.T) {
	srv := newFakeServer(t)
	d := newDialer(t, srv, srv.echoSock, nil)
	c, err := d.DialContext(t.Context(), "tcp", "docker:2375")
	require.NoError(t, err)
	defer c.Close()
	_, err = io.WriteString(c, "hello ")
	require.NoError(t, err)
	_, err = io.WriteString(c, "world")
	require.NoError(t, err)
	require.NoError(t, c.(interface{ CloseWrite() error }).CloseWrite())
	got, err := io.ReadAll(c)
	require.NoError(t, err, "a clean end is io.EOF, which ReadAll hides")
	assert.Equal(t, "got:hello world", string(got))

	_, err = c.Write([]byte("x"))
	assert.Error(t, err, "write after CloseWrite")
}

func TestDeadlines(t *testing.T) {
	srv := newFakeServer(t)
	d := newDialer(t, srv, srv.silentSock, nil)
	c, err := d.DialContext(t.Context(), "tcp", "")
	require.NoError(t, err)
	defer c.Close()

	t.Run("read", func(t *testing.T) {
		require.NoError(t, c.SetReadDeadline(time.Now().Add(50*time.Millisecond)))
		start := time.Now()
		n, err := c.Read(make([]byte, 10))
		assert.Equal(t, 0, n)
		assertTimeout(t, err)
		assert.Less(t, time.Since(start), 10*time.Second)
		// Still expired: fails at once.
		_, err = c.Read(make([]byte, 10))
		assertTimeout(t, err)
		require.NoError(t, c.SetReadDeadline(time.Time{}))
	})
	t.Run("read deadline moved while blocked", func(t *testing.T) {
		errc := make(chan error, 1)
		go func() {
			_, err := c.Read(make([]byte, 10))
			errc <- err
		}()
		waitForBlocked(t, "dialer.(*conn).Read")
		require.NoError(t, c.SetReadDeadline(time.Now().Add(20*time.Millisecond)))
		select {
		case err := <-errc:
			assertTimeout(t, err)
		case <-time.After(5 * time.Second):
			t.Fatal("Read did not return after its deadline was set")
		}
		require.NoError(t, c.SetReadDeadline(time.Time{}))
	})
	t.Run("write", func(t *testing.T) {
		// The silent socket never reads: the SSH window fills and
		// Write blocks until its deadline.
		require.NoError(t, c.SetWriteDeadline(time.Now().Add(300*time.Millisecond)))
		big := make([]byte, 64<<20)
		start := time.Now()
		n, err := c.Write(big)
		assertTimeout(t, err)
		assert.Less(t, n, len(big))
		assert.Less(t, time.Since(start), 5*time.Second)
	})
}

func assertTimeout(tb testing.TB, err error) {
	tb.Helper()
	require.Error(tb, err)
	var ne net.Error
	require.ErrorAs(tb, err, &ne)
	assert.True(tb, ne.Timeout(), "Timeout() of %v", err)
	assert.ErrorIs(tb, err, os.ErrDeadlineExceeded)
	assert.True(tb, strings.HasPrefix(err.Error(), "dialer: "), "error %q", err)
}

func TestClosedConn(t *testing.T) {
	srv := newFakeServer(t)
	cfg := srv.Config(t)
	cfg.CloseGrace = 3 * time.Second
	d := newDialer(t, srv, srv.silentSock, cfg)
	c, err := d.DialContext(t.Context(), "tcp", "")
	require.NoError(t, err)

	readErr := make(chan error, 1)
	go func() {
		_, err := c.Read(make([]byte, 1))
		readErr <- err
	}()
	waitForBlocked(t, "dialer.(*conn).Read")
	require.NoError(t, c.Close())
	// The silent remote command only exits when signalled, after the grace:
	// a Close that waited for the remote would have seen the signal sent.
	_, _, signals := srv.stats()
	assert.Empty(t, signals, "Close returned before the grace period ran out")
	select {
	case err := <-readErr:
		assert.ErrorIs(t, err, net.ErrClosed)
	case <-time.After(2 * time.Second):
		t.Fatal("a blocked Read did not return on Close")
	}
	_, err = c.Write([]byte("x"))
	assert.ErrorIs(t, err, net.ErrClosed)
	assert.NoError(t, c.Close(), "second Close")

	// The fake dial-stdio waits for the silent daemon forever after EOF,
	// like the real one: Close must signal it.
	require.Eventually(t, func() bool {
		_, _, signals := srv.stats()
		return len(signals) > 0
	}, 15*time.Second, 10*time.Millisecond)
	_, _, signals = srv.stats()
	assert.Equal(t, "TERM", signals[0])
	require.Eventually(t, func() bool { return srv.count(func() int { return srv.sessions }) == 0 }, 5*time.Second, 10*time.Millisecond)
}

func TestCloseReadDiscards(t *testing.T) {
	srv := newFakeServer(t)
	d := newDialer(t, srv, "", nil)
	c, err := d.DialContext(t.Context(), "tcp", "")
	require.NoError(t, err)
	defer c.Close()
	require.NoError(t, c.(interface{ CloseRead() error }).CloseRead())
	_, err = c.Read(make([]byte, 1))
	assert.Error(t, err)
	_, err = io.WriteString(c, "GET /_ping HTTP/1.1\r\nHost: docker\r\n\r\n")
	assert.NoError(t, err, "the write side stays open")
}

func TestAddresses(t *testing.T) {
	srv := newFakeServer(t)
	d := newDialer(t, srv, "/var/run/docker.sock", nil)
	c, err := d.DialContext(t.Context(), "tcp", "")
	require.NoError(t, err)
	defer c.Close()
	assert.Equal(t, "ssh", c.RemoteAddr().Network())
	assert.Equal(t, srv.URL("/var/run/docker.sock"), c.RemoteAddr().String())
	la, ok := c.LocalAddr().(*net.TCPAddr)
	require.True(t, ok, "LocalAddr is the SSH connection's TCP address: %#v", c.LocalAddr())
	assert.Equal(t, "127.0.0.1", la.IP.String())
}

func TestConnOutlivesDialContext(t *testing.T) {
	srv := newFakeServer(t)
	d := newDialer(t, srv, srv.echoSock, nil)
	ctx, cancel := context.WithCancel(t.Context())
	c, err := d.DialContext(ctx, "tcp", "")
	require.NoError(t, err)
	defer c.Close()
	cancel()
	_, err = io.WriteString(c, "still here")
	require.NoError(t, err)
	require.NoError(t, c.(interface{ CloseWrite() error }).CloseWrite())
	got, err := io.ReadAll(c)
	require.NoError(t, err)
	assert.Equal(t, "got:still here", string(got))
}

func TestConcurrentFirstDialsShareOneHandshake(t *testing.T) {
	srv := newFakeServer(t)
	var dials atomic.Int32
	cfg := srv.Config(t)
	cfg.DialTCP = countingDial(&dials)
	d := newDialer(t, srv, srv.echoSock, cfg)
	var wg sync.WaitGroup
	for i := range 9 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := d.DialContext(t.Context(), "tcp", "")
			if err != nil {
				t.Errorf("dial %d: %v", i, err)
				return
			}
			defer c.Close()
			io.WriteString(c, "x")
			c.(interface{ CloseWrite() error }).CloseWrite()
			got, err := io.ReadAll(c)
			if err != nil || string(got) != "got:x" {
				t.Errorf("dial %d: read %q, %v", i, got, err)
			}
		}()
	}
	wg.Wait()
	assert.Equal(t, int32(1), dials.Load())
}

func TestDialAfterClose(t *testing.T) {
	srv := newFakeServer(t)
	d := newDialer(t, srv, "", nil)
	require.NoError(t, d.Close())
	_, err := d.DialContext(t.Context(), "tcp", "")
	assert.ErrorIs(t, err, dialer.ErrClosed)
	assert.NoError(t, d.Close())
}

// waitForBlocked waits until a goroutine is blocked (in a select or on a
// channel) in fn, a function named as in a stack trace, such as
// "dialer.(*conn).Read": the observable state a test about a blocked call
// needs before it acts.
func waitForBlocked(tb testing.TB, fn string) {
	tb.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		buf := make([]byte, 1<<20)
		buf = buf[:runtime.Stack(buf, true)]
		for _, g := range strings.Split(string(buf), "\n\n") {
			header, _, _ := strings.Cut(g, "\n")
			blocked := strings.Contains(header, "[select") || strings.Contains(header, "[chan receive")
			if blocked && strings.Contains(g, "/"+fn+"(") {
				return
			}
		}
		time.Sleep(time.Millisecond)
	}
	tb.Fatalf("no goroutine blocked in %s", fn)
}

// goroutinesSettle waits until the number of goroutines is at most want.
func goroutinesSettle(tb testing.TB, want int) {
	tb.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if runtime.NumGoroutine() <= want {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	buf := make([]byte, 1<<20)
	n := runtime.Stack(buf, true)
	tb.Fatalf("goroutines: %d, want at most %d\n%s", runtime.NumGoroutine(), want, buf[:n])
}

// dialerGoroutines returns the stacks of goroutines running code of the
// dialer package itself (not its tests).
func dialerGoroutines() []string {
	buf := make([]byte, 4<<20)
	buf = buf[:runtime.Stack(buf, true)]
	var out []string
	for _, g := range strings.Split(string(buf), "\n\n") {
		if strings.Contains(g, "dockssh/dialer.") {
			out = append(out, g)
		}
	}
	return out
}

func TestGoroutinesReturnToBaselineAfterClose(t *testing.T) {
	base := runtime.NumGoroutine()
	srv := newFakeServer(t)
	cfg := srv.Config(t)
	cfg.KeepAliveInterval = 20 * time.Millisecond
	d, err := dialer.New(srv.URL(""), cfg)
	require.NoError(t, err)
	c := httpClient(d)
	get(t, c, "/_ping")
	// Conns in every state: idle keep-alive (in c), closed, streaming,
	// blocked on a silent daemon, half-closed.
	resp, err := c.Get("http://docker/stream")
	require.NoError(t, err)
	buf := make([]byte, 10)
	_, err = io.ReadFull(resp.Body, buf)
	require.NoError(t, err)
	for _, path := range []string{srv.silentSock, srv.echoSock} {
		d2, err := dialer.New(srv.URL(path), cfg)
		require.NoError(t, err)
		conn, err := d2.DialContext(t.Context(), "tcp", "")
		require.NoError(t, err)
		conn.(interface{ CloseWrite() error }).CloseWrite()
		require.NoError(t, d2.Close())
	}
	require.Eventually(t, func() bool { return srv.count(func() int { return srv.keepalives }) >= 2 }, 10*time.Second, 5*time.Millisecond, "keepalives are sent")
	running, parked := dialer.Goroutines(d)
	assert.Positive(t, running)
	assert.Zero(t, parked)
	start := time.Now()
	require.NoError(t, d.Close())
	t.Logf("Close took %s", time.Since(start))
	assert.Less(t, time.Since(start), 5*time.Second)
	// Close waits for every goroutine the Dialer started: the conns'
	// loops, the openers, the watch and keepalive loops.
	running, parked = dialer.Goroutines(d)
	assert.Zero(t, running, "goroutines the Dialer counts after Close")
	assert.Zero(t, parked, "goroutines parked in x/crypto")
	assert.Eventually(t, func() bool { return len(dialerGoroutines()) == 0 }, 2*time.Second, 10*time.Millisecond, "%v", dialerGoroutines())
	_, err = io.ReadAll(resp.Body)
	assert.Error(t, err, "a stream in flight fails when the Dialer closes")
	resp.Body.Close()
	c.CloseIdleConnections()
	// And x/crypto's goroutines end with the connections: with the
	// server gone too, nothing is left.
	srv.Close()
	goroutinesSettle(t, base)
}

func TestLoggerNeverSeesBody(t *testing.T) {
	// Debug logging names each stage; a smoke test that it is wired.
	srv := newFakeServer(t)
	var buf bytes.Buffer
	var mu sync.Mutex
	cfg := srv.Config(t)
	cfg.Logger = newTestLogger(&buf, &mu)
	d := newDialer(t, srv, "", cfg)
	get(t, httpClient(d), "/_ping")
	mu.Lock()
	out := buf.String()
	mu.Unlock()
	for _, stage := range []string{"destination resolved", "TCP connected", "host key verified", "SSH authenticated", "conn opened"} {
		assert.Contains(t, out, stage)
	}
}

var _ = errors.New
