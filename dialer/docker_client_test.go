package dialer_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/moby/moby/client"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dockssh/dockssh/dialer"
)

// dockerClient returns the moby Docker client over d, closed at cleanup.
func dockerClient(tb testing.TB, d *dialer.Dialer) *client.Client {
	tb.Helper()
	cli, err := client.New(client.WithHost("http://docker"), client.WithDialContext(d.DialContext))
	require.NoError(tb, err)
	tb.Cleanup(func() { cli.Close() })
	return cli
}

// closedPort returns a 127.0.0.1 port nothing listens on.
func closedPort(tb testing.TB) int {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(tb, err)
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	return port
}

// TestDockerClientShowsDialerErrors: what the Docker client's user sees is
// the dialer's message, and errors.As still finds the *dialer.Error. The
// client replaces request errors that hold a *net.DNSError or whose text
// says "connection refused" or "dial unix" with "Cannot connect to the
// Docker daemon at http://docker" (moby/moby/client request.go).
func TestDockerClientShowsDialerErrors(t *testing.T) {
	srv := newFakeServer(t)
	cases := []struct {
		name  string
		url   string
		setup func(cfg *dialer.Config)
		op    dialer.Op
		want  []string
		is    error
	}{
		{name: "refused TCP connect", url: fmt.Sprintf("ssh://tester@127.0.0.1:%d", closedPort(t)), op: dialer.OpConnect,
			want: []string{"TCP connect 127.0.0.1:", "refused (ECONNREFUSED)", "is sshd running"}, is: syscall.ECONNREFUSED},
		{name: "remote CLI cannot reach its daemon", url: srv.URL("/nonexistent/docker.sock"), op: dialer.OpCommand,
			want: []string{"no Docker daemon answers at /nonexistent/docker.sock", "dial-unix /nonexistent/docker.sock"}},
		{name: "credentials refused", url: srv.URL(""), op: dialer.OpAuth,
			setup: func(cfg *dialer.Config) { cfg.IdentityFiles = nil },
			want:  []string{`user "tester" (from the URL)`, "authorized_keys"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := srv.Config(t)
			if tc.setup != nil {
				tc.setup(cfg)
			}
			d, err := dialer.New(tc.url, cfg)
			require.NoError(t, err)
			defer d.Close()
			_, err = dockerClient(t, d).Ping(t.Context(), client.PingOptions{})
			require.Error(t, err)
			msg := err.Error()
			t.Logf("the user sees: %s", msg)
			assert.NotContains(t, msg, "Cannot connect to the Docker daemon at http://docker")
			for _, w := range tc.want {
				assert.Contains(t, msg, w)
			}
			var de *dialer.Error
			require.ErrorAs(t, err, &de)
			assert.Equal(t, tc.op, de.Op)
			assert.True(t, client.IsErrConnectionFailed(err), "the Docker client classifies it as a connection failure")
			if tc.is != nil {
				assert.ErrorIs(t, err, tc.is)
			}
		})
	}
}

// silentListener accepts TCP connections on 127.0.0.1 and never sends a
// byte, as a port forward to a dead host or a tarpit does. It counts the
// connections and reports when the client closes one.
type silentListener struct {
	ln       net.Listener
	accepted atomic.Int32
	closed   chan struct{} // one value per connection the client closed
	wg       sync.WaitGroup
}

func newSilentListener(tb testing.TB) *silentListener {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(tb, err)
	s := &silentListener{ln: ln, closed: make(chan struct{}, 100)}
	var mu sync.Mutex
	var conns []net.Conn
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s.accepted.Add(1)
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			s.wg.Add(1)
			go func() {
				defer s.wg.Done()
				c.Read(make([]byte, 4096)) // the client's version line, then EOF
				c.Read(make([]byte, 4096))
				s.closed <- struct{}{}
			}()
		}
	}()
	tb.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		s.wg.Wait()
	})
	return s
}

func (s *silentListener) url() string {
	return fmt.Sprintf("ssh://tester@127.0.0.1:%d", s.ln.Addr().(*net.TCPAddr).Port)
}

// TestSilentServerThroughDockerClient: a server that accepts TCP and says
// nothing. The Docker client's user sees which stage got no answer and for
// how long, errors.Is finds context.DeadlineExceeded, and the client's API
// version negotiation, which dials again after a failed ping, does not wait
// out the timeout a second and a third time.
func TestSilentServerThroughDockerClient(t *testing.T) {
	silent := newSilentListener(t)
	cfg := &dialer.Config{HomeDir: t.TempDir(), IgnoreSSHConfig: true, AgentSocket: "none", ConnectTimeout: 2 * time.Second}
	d, err := dialer.New(silent.url(), cfg)
	require.NoError(t, err)
	defer d.Close()
	cli := dockerClient(t, d)

	start := time.Now()
	_, err = cli.ServerVersion(t.Context(), client.ServerVersionOptions{})
	took := time.Since(start)
	require.Error(t, err)
	msg := err.Error()
	t.Logf("after %s the user sees: %s", took, msg)
	assert.ErrorIs(t, err, context.DeadlineExceeded)
	var de *dialer.Error
	require.ErrorAs(t, err, &de)
	assert.Equal(t, dialer.OpHandshake, de.Op)
	addr := silent.ln.Addr().String()
	for _, want := range []string{
		"SSH handshake " + addr,
		"the server accepted the TCP connection but sent no SSH version line",
		"context deadline exceeded",
		"does not speak SSH",
	} {
		assert.Contains(t, msg, want)
	}
	assert.Regexp(t, `: waited 2(\.[0-9])?s \(Config\.ConnectTimeout 2s\): context deadline exceeded`, msg)
	assert.Contains(t, de.Hint, "does not speak SSH", "the advice is in Hint")
	assert.Equal(t, int32(1), silent.accepted.Load(), "the ping and the call that followed it failed fast")
	assert.Less(t, took, 4*time.Second+500*time.Millisecond, "one ConnectTimeout, not three")

	// The next call within the window fails at once, with the same error.
	start = time.Now()
	_, err = cli.Ping(t.Context(), client.PingOptions{})
	require.Error(t, err)
	assert.Less(t, time.Since(start), 500*time.Millisecond)
	assert.Contains(t, err.Error(), "the server accepted the TCP connection but sent no SSH version line")
	assert.Contains(t, err.Error(), "failing fast")
	assert.ErrorIs(t, err, context.DeadlineExceeded)
	assert.Equal(t, int32(1), silent.accepted.Load())

	// After the window, the dialer tries the server again.
	dialer.AgeFailedAttempt(d, dialer.FailFastWindow)
	_, err = d.DialContext(t.Context(), "tcp", "")
	require.Error(t, err)
	assert.NotContains(t, err.Error(), "failing fast")
	assert.Equal(t, int32(2), silent.accepted.Load())
}

// TestSilentServerCallerContextEndsFirst: when the caller's context ends
// before Config.ConnectTimeout, DialContext's error still names the stage
// and how long it waited. net/http (and so the Docker client) does not pass
// a request's deadline to its dial and reports only the context's error
// when the request ends first; the dial goes on until ConnectTimeout, and
// the calls that follow fail fast with the stage.
func TestSilentServerCallerContextEndsFirst(t *testing.T) {
	silent := newSilentListener(t)
	t.Run("DialContext", func(t *testing.T) {
		d, err := dialer.New(silent.url(), &dialer.Config{HomeDir: t.TempDir(), IgnoreSSHConfig: true, AgentSocket: "none"})
		require.NoError(t, err)
		defer d.Close()
		ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
		defer cancel()
		_, err = d.DialContext(ctx, "tcp", "")
		require.Error(t, err)
		t.Logf("the caller sees: %v", err)
		assert.ErrorIs(t, err, context.DeadlineExceeded)
		var de *dialer.Error
		require.ErrorAs(t, err, &de)
		assert.Equal(t, dialer.OpHandshake, de.Op)
		assert.Contains(t, err.Error(), "the server accepted the TCP connection but sent no SSH version line: waited ")
		assert.Contains(t, err.Error(), "(the context's deadline)")
		assert.False(t, dialer.FailedAttempt(d), "a server that had less than ConnectTimeout is not failed fast")
	})
	t.Run("Docker client", func(t *testing.T) {
		d, err := dialer.New(silent.url(), &dialer.Config{HomeDir: t.TempDir(), IgnoreSSHConfig: true, AgentSocket: "none", ConnectTimeout: 700 * time.Millisecond})
		require.NoError(t, err)
		defer d.Close()
		cli := dockerClient(t, d)
		ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
		defer cancel()
		_, err = cli.Ping(ctx, client.PingOptions{})
		require.ErrorIs(t, err, context.DeadlineExceeded)
		t.Logf("net/http reports only: %v", err)
		require.Eventually(t, func() bool { return dialer.FailedAttempt(d) }, 10*time.Second, 10*time.Millisecond,
			"the dial net/http left behind runs into ConnectTimeout")
		_, err = cli.Ping(t.Context(), client.PingOptions{})
		require.Error(t, err)
		t.Logf("the next call: %v", err)
		assert.ErrorIs(t, err, context.DeadlineExceeded)
		assert.Regexp(t, `sent no SSH version line: waited [0-9.]+m?s \(Config\.ConnectTimeout 700ms\)`, err.Error())
		assert.True(t, strings.Contains(err.Error(), "failing fast"), "%v", err)
	})
}

// TestRetriesNeverShowTheRetryMarker: every SSH connection dies when a
// channel is opened; the error after the last attempt is the cause, a
// lost connection, not an internal marker.
func TestRetriesNeverShowTheRetryMarker(t *testing.T) {
	srv := newFakeServer(t)
	srv.set(func() { srv.dropOnOpen = true })
	var dials atomic.Int32
	cfg := srv.Config(t)
	cfg.DialTCP = countingDial(&dials)
	cfg.MaxConnections = 2
	d := newDialer(t, srv, "", cfg)
	_, err := d.DialContext(t.Context(), "tcp", "")
	require.Error(t, err)
	t.Logf("error: %v", err)
	assert.ErrorIs(t, err, dialer.ErrConnectionLost)
	var de *dialer.Error
	require.ErrorAs(t, err, &de)
	assert.Equal(t, dialer.OpSession, de.Op)
	assert.NotContains(t, err.Error(), "retry")
	assert.Greater(t, dials.Load(), int32(1), "it did retry")
	assert.True(t, errors.Is(err, dialer.ErrConnectionLost))
}
