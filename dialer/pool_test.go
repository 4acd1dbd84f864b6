package dialer_test

import (
	"context"
	"errors"
	"io"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dockssh/dockssh/dialer"
)

func TestMaxSessionsOpensMoreConnections(t *testing.T) {
	srv := newFakeServer(t)
	srv.set(func() { srv.maxSessions = 2 })
	var dials atomic.Int32
	cfg := srv.Config(t)
	cfg.DialTCP = countingDial(&dials)
	cfg.MaxConnections = 3
	d := newDialer(t, srv, srv.silentSock, cfg)

	// Six long-lived conns, opened concurrently: three SSH connections of
	// two sessions each, and no refusal reaches the caller.
	conns := make([]net.Conn, 6)
	var wg sync.WaitGroup
	for i := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := d.DialContext(t.Context(), "tcp", "")
			if err != nil {
				t.Errorf("dial %d: %v", i, err)
				return
			}
			conns[i] = c
		}()
	}
	wg.Wait()
	require.False(t, t.Failed())
	assert.Equal(t, int32(3), dials.Load())
	assert.Positive(t, srv.count(func() int { return srv.refusals }), "the server did refuse sessions")

	// The bound is reached: a typed error that says what to do, not
	// "administratively prohibited".
	_, err := d.DialContext(t.Context(), "tcp", "")
	require.ErrorIs(t, err, dialer.ErrSessionLimit)
	assert.Contains(t, err.Error(), "MaxConnections")
	assert.NotContains(t, err.Error(), "prohibited")

	// A closed conn frees its session for the next dial.
	conns[0].Close()
	require.Eventually(t, func() bool {
		c, err := d.DialContext(t.Context(), "tcp", "")
		if err != nil {
			return false
		}
		conns[0] = c
		return true
	}, 5*time.Second, 20*time.Millisecond)
	assert.Equal(t, int32(3), dials.Load())
	for _, c := range conns {
		c.Close()
	}
}

func TestSessionRefusedOnFreshConnectionIsAnError(t *testing.T) {
	// A server that refuses every session refuses by policy, not by
	// MaxSessions: one connection, one clear error, no reconnect storm.
	srv := newFakeServer(t)
	srv.set(func() { srv.maxSessions = -1 })
	var dials atomic.Int32
	cfg := srv.Config(t)
	cfg.DialTCP = countingDial(&dials)
	d := newDialer(t, srv, "", cfg)
	_, err := d.DialContext(t.Context(), "tcp", "")
	var e *dialer.Error
	require.ErrorAs(t, err, &e)
	assert.Equal(t, dialer.OpSession, e.Op)
	assert.Contains(t, err.Error(), "has none open")
	assert.Equal(t, int32(1), dials.Load())
}

func TestStreamLocal(t *testing.T) {
	t.Run("allowed: no session, not counted against MaxSessions", func(t *testing.T) {
		srv := newFakeServer(t)
		srv.set(func() { srv.allowStreamLocal = true })
		srv.set(func() { srv.maxSessions = 1 })
		var dials atomic.Int32
		cfg := srv.Config(t)
		cfg.Transport = dialer.TransportStreamLocal
		cfg.DialTCP = countingDial(&dials)
		d := newDialer(t, srv, srv.echoSock, cfg)
		var conns []net.Conn
		for range 5 {
			c, err := d.DialContext(t.Context(), "tcp", "")
			require.NoError(t, err)
			conns = append(conns, c)
			assert.Equal(t, dialer.TransportStreamLocal, c.RemoteAddr().(*dialer.Addr).Transport)
		}
		for i, c := range conns {
			io.WriteString(c, "n"+string(rune('0'+i)))
			require.NoError(t, c.(interface{ CloseWrite() error }).CloseWrite())
			got, err := io.ReadAll(c)
			require.NoError(t, err)
			assert.Equal(t, "got:n"+string(rune('0'+i)), string(got))
			c.Close()
		}
		execs, _, _ := srv.stats()
		assert.Empty(t, execs, "no remote process per conn")
		assert.Equal(t, int32(1), dials.Load())
		assert.Zero(t, srv.count(func() int { return srv.refusals }))
	})
	t.Run("refused: falls back to dial-stdio and remembers", func(t *testing.T) {
		srv := newFakeServer(t)
		cfg := srv.Config(t)
		cfg.Transport = dialer.TransportStreamLocal
		d := newDialer(t, srv, srv.dockerSock, cfg)
		c := httpClient(d)
		assert.Equal(t, "OK", get(t, c, "/_ping"))
		c.CloseIdleConnections()
		assert.Equal(t, "OK", get(t, c, "/_ping"))
		execs, _, _ := srv.stats()
		assert.Len(t, execs, 2)
		assert.Equal(t, 1, srv.count(func() int { return srv.streamLocal }), "asked once, then remembered")
	})
	t.Run("no socket in URL: dial-stdio", func(t *testing.T) {
		srv := newFakeServer(t)
		srv.set(func() { srv.allowStreamLocal = true })
		cfg := srv.Config(t)
		cfg.Transport = dialer.TransportStreamLocal
		d := newDialer(t, srv, "", cfg)
		assert.Equal(t, "OK", get(t, httpClient(d), "/_ping"))
		assert.Zero(t, srv.count(func() int { return srv.streamLocal }))
	})
	t.Run("socket missing: dial-stdio explains", func(t *testing.T) {
		srv := newFakeServer(t)
		srv.set(func() { srv.allowStreamLocal = true })
		cfg := srv.Config(t)
		cfg.Transport = dialer.TransportStreamLocal
		d := newDialer(t, srv, "/nonexistent/docker.sock", cfg)
		_, err := httpClient(d).Get("http://docker/_ping")
		require.Error(t, err)
		assert.Contains(t, err.Error(), "no Docker daemon answers at /nonexistent/docker.sock")
		assert.Contains(t, err.Error(), "dial-unix /nonexistent/docker.sock: connect: no such file or directory")
	})
}

// freezeProxy forwards TCP to a server until frozen; then it stops
// forwarding in both directions without closing anything, like a link
// that silently died.
type freezeProxy struct {
	ln     net.Listener
	target string
	mu     sync.Mutex
	frozen bool
	conns  []net.Conn
	wg     sync.WaitGroup
}

func newFreezeProxy(tb testing.TB, target string) *freezeProxy {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(tb, err)
	p := &freezeProxy{ln: ln, target: target}
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s, err := net.Dial("tcp", target)
			if err != nil {
				c.Close()
				continue
			}
			p.mu.Lock()
			p.conns = append(p.conns, c, s)
			p.mu.Unlock()
			p.wg.Add(2)
			go p.pipe(c, s)
			go p.pipe(s, c)
		}
	}()
	tb.Cleanup(p.Close)
	return p
}

func (p *freezeProxy) pipe(dst, src net.Conn) {
	defer p.wg.Done()
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		for {
			p.mu.Lock()
			frozen := p.frozen
			p.mu.Unlock()
			if !frozen {
				break
			}
			time.Sleep(5 * time.Millisecond)
			if isClosedConn(src) {
				return
			}
		}
		if n > 0 {
			if _, err := dst.Write(buf[:n]); err != nil {
				return
			}
		}
		if err != nil {
			dst.Close()
			return
		}
	}
}

func isClosedConn(c net.Conn) bool {
	return c.SetReadDeadline(time.Time{}) != nil
}

// Freeze stops forwarding on the connections open now; new ones work.
func (p *freezeProxy) Freeze() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.frozen = true
}

func (p *freezeProxy) Thaw() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.frozen = false
}

func (p *freezeProxy) Close() {
	p.ln.Close()
	p.mu.Lock()
	for _, c := range p.conns {
		c.Close()
	}
	p.frozen = false
	p.mu.Unlock()
	p.wg.Wait()
}

func TestKeepAliveDetectsDeadLinkAndReconnects(t *testing.T) {
	srv := newFakeServer(t)
	proxy := newFreezeProxy(t, srv.addr)
	cfg := srv.Config(t)
	cfg.KeepAliveInterval = 100 * time.Millisecond
	cfg.KeepAliveCountMax = 5
	var dials atomic.Int32
	var nd net.Dialer
	cfg.DialTCP = func(ctx context.Context, network, addr string) (net.Conn, error) {
		dials.Add(1)
		return nd.DialContext(ctx, network, proxy.ln.Addr().String())
	}
	d := newDialer(t, srv, srv.silentSock, cfg)
	c, err := d.DialContext(t.Context(), "tcp", "")
	require.NoError(t, err)
	defer c.Close()
	require.Eventually(t, func() bool { return srv.count(func() int { return srv.keepalives }) > 0 }, 5*time.Second, 20*time.Millisecond, "keepalives are sent")

	readErr := make(chan error, 1)
	go func() {
		_, err := c.Read(make([]byte, 1))
		readErr <- err
	}()
	proxy.Freeze()
	select {
	case err := <-readErr:
		require.ErrorIs(t, err, dialer.ErrConnectionLost)
		assert.Contains(t, err.Error(), "keepalive")
		assert.Contains(t, err.Error(), "reconnects")
	case <-time.After(5 * time.Second):
		t.Fatal("an in-flight read hung on a dead link")
	}
	_, err = c.Write([]byte("x"))
	assert.Error(t, err)

	// The next dial reconnects by itself (new TCP connections are not
	// frozen).
	proxy.Thaw()
	d2c, err := d.DialContext(t.Context(), "tcp", "")
	require.NoError(t, err)
	d2c.Close()
	assert.Equal(t, int32(2), dials.Load())
}

func TestServerRestartFailsInFlightAndReconnects(t *testing.T) {
	srv := newFakeServer(t)
	var dials atomic.Int32
	cfg := srv.Config(t)
	cfg.DialTCP = countingDial(&dials)
	d := newDialer(t, srv, "", cfg)
	c := httpClient(d)
	resp, err := c.Get("http://docker/stream")
	require.NoError(t, err)
	defer resp.Body.Close()
	_, err = io.ReadFull(resp.Body, make([]byte, 10))
	require.NoError(t, err)

	srv.DropConnections()
	_, err = io.ReadAll(resp.Body)
	require.Error(t, err, "the stream fails instead of ending cleanly")
	assert.ErrorIs(t, err, dialer.ErrConnectionLost)

	assert.Equal(t, "OK", get(t, c, "/_ping"))
	assert.Equal(t, int32(2), dials.Load())
}

func TestContextBoundsEachStage(t *testing.T) {
	// Each case blocks the dial at one stage; the context ends it there.
	cases := []struct {
		name  string
		op    dialer.Op
		setup func(t *testing.T, srv *fakeServer, cfg *dialer.Config)
	}{
		{"TCP connect", dialer.OpConnect, func(t *testing.T, srv *fakeServer, cfg *dialer.Config) {
			cfg.DialTCP = func(ctx context.Context, _, _ string) (net.Conn, error) {
				<-ctx.Done()
				return nil, ctx.Err()
			}
		}},
		{"handshake", dialer.OpHandshake, func(t *testing.T, srv *fakeServer, cfg *dialer.Config) {
			// A TCP server that never speaks SSH.
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			require.NoError(t, err)
			var mu sync.Mutex
			var held []net.Conn
			go func() {
				for {
					c, err := ln.Accept()
					if err != nil {
						return
					}
					mu.Lock()
					held = append(held, c)
					mu.Unlock()
				}
			}()
			t.Cleanup(func() {
				ln.Close()
				mu.Lock()
				for _, c := range held {
					c.Close()
				}
				mu.Unlock()
			})
			var nd net.Dialer
			cfg.DialTCP = func(ctx context.Context, network, _ string) (net.Conn, error) {
				return nd.DialContext(ctx, network, ln.Addr().String())
			}
		}},
		{"authentication", dialer.OpAuth, func(t *testing.T, srv *fakeServer, cfg *dialer.Config) {
			srv.set(func() { srv.authGate = make(chan struct{}) })
		}},
		{"session open", dialer.OpSession, func(t *testing.T, srv *fakeServer, cfg *dialer.Config) {
			srv.set(func() { srv.openGate = make(chan struct{}) })
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			srv := newFakeServer(t)
			cfg := srv.Config(t)
			tc.setup(t, srv, cfg)
			d, err := dialer.New(srv.URL(""), cfg)
			require.NoError(t, err)
			ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
			defer cancel()
			start := time.Now()
			_, err = d.DialContext(ctx, "tcp", "")
			took := time.Since(start)
			require.Error(t, err)
			assert.ErrorIs(t, err, context.DeadlineExceeded)
			var e *dialer.Error
			require.ErrorAs(t, err, &e)
			assert.Equal(t, tc.op, e.Op, "stage of %v", err)
			assert.Less(t, took, 10*time.Second, "the context bounds the stage")
			var ne net.Error
			require.ErrorAs(t, err, &ne)
			assert.True(t, ne.Timeout())

			closed := make(chan struct{})
			go func() { d.Close(); close(closed) }()
			select {
			case <-closed:
			case <-time.After(5 * time.Second):
				t.Fatal("Close hangs after a cancelled dial")
			}
			if o := srv.opts(); o.authGate != nil {
				close(o.authGate)
			} else if o.openGate != nil {
				close(o.openGate)
			}
			assert.Eventually(t, func() bool { return len(dialerGoroutines()) == 0 }, 2*time.Second, 10*time.Millisecond, "%v", dialerGoroutines())
		})
	}
}

func TestCloseDuringDial(t *testing.T) {
	srv := newFakeServer(t)
	gate := make(chan struct{})
	srv.set(func() { srv.authGate = gate })
	defer close(gate)
	d, err := dialer.New(srv.URL(""), srv.Config(t))
	require.NoError(t, err)
	errc := make(chan error, 1)
	go func() {
		_, err := d.DialContext(context.Background(), "tcp", "")
		errc <- err
	}()
	// The server holds the dial in authentication.
	require.Eventually(t, func() bool { return srv.count(func() int { return srv.authTries }) > 0 }, 10*time.Second, time.Millisecond)
	within(t, "Dialer.Close during a dial", func() { d.Close() })
	select {
	case err := <-errc:
		require.Error(t, err)
		assert.True(t, errors.Is(err, context.Canceled) || errors.Is(err, dialer.ErrClosed), "%v", err)
	case <-time.After(5 * time.Second):
		t.Fatal("DialContext hangs after Close")
	}
}

func TestConnectTimeout(t *testing.T) {
	srv := newFakeServer(t)
	gate := make(chan struct{})
	srv.set(func() { srv.authGate = gate })
	defer close(gate)
	cfg := srv.Config(t)
	cfg.ConnectTimeout = 100 * time.Millisecond
	d := newDialer(t, srv, "", cfg)
	_, err := d.DialContext(context.Background(), "tcp", "")
	require.ErrorIs(t, err, context.DeadlineExceeded)
	assert.True(t, strings.Contains(err.Error(), "ConnectTimeout"), "%v", err)
}
