package dialer_test

import (
	"context"
	"errors"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dockssh/dockssh/dialer"
)

// within fails the test when f does not return within a generous bound.
func within(tb testing.TB, what string, f func()) {
	tb.Helper()
	done := make(chan struct{})
	go func() {
		defer close(done)
		f()
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		tb.Fatalf("%s hangs", what)
	}
}

func TestSetDeadlineAfterCloseDoesNotHang(t *testing.T) {
	srv := newFakeServer(t)
	d := newDialer(t, srv, "", nil)
	c, err := d.DialContext(t.Context(), "tcp", "")
	require.NoError(t, err)
	// A pending deadline has a timer; Close's background shutdown stops it.
	require.NoError(t, c.SetDeadline(time.Now().Add(time.Hour)))
	require.NoError(t, c.Close())
	within(t, "Dialer.Close", func() { d.Close() }) // the shutdown has run
	within(t, "SetDeadline after Close", func() {
		c.SetDeadline(time.Now().Add(time.Minute))
		c.SetReadDeadline(time.Time{})
		c.SetWriteDeadline(time.Now().Add(time.Minute))
	})
}

// freezableConn is a TCP connection whose link can die silently, as when a
// network path goes away: after freeze, nothing arrives any more and what
// is written is lost, until Close.
type freezableConn struct {
	net.Conn
	frozen <-chan struct{}
	closed chan struct{}
	once   sync.Once
}

func (c *freezableConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	select {
	case <-c.frozen:
		<-c.closed
		return 0, net.ErrClosed
	default:
	}
	return n, err
}

func (c *freezableConn) Write(p []byte) (int, error) {
	select {
	case <-c.frozen:
		return len(p), nil
	default:
	}
	return c.Conn.Write(p)
}

func (c *freezableConn) Close() error {
	c.once.Do(func() { close(c.closed) })
	return c.Conn.Close()
}

// freezableDial returns a DialFunc whose connections all die silently when
// freeze is closed.
func freezableDial(freeze <-chan struct{}) dialer.DialFunc {
	var nd net.Dialer
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := nd.DialContext(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		return &freezableConn{Conn: c, frozen: freeze, closed: make(chan struct{})}, nil
	}
}

func TestDialerCloseBoundedWithSeveralConnsOnADeadLink(t *testing.T) {
	srv := newFakeServer(t)
	cfg := srv.Config(t)
	freeze := make(chan struct{})
	cfg.DialTCP = freezableDial(freeze)
	cfg.KeepAliveInterval = -1 // the dead link is not noticed
	d, err := dialer.New(srv.URL(srv.silentSock), cfg)
	require.NoError(t, err)
	for range 3 {
		c, err := d.DialContext(t.Context(), "tcp", "")
		require.NoError(t, err)
		defer c.Close()
	}
	close(freeze)
	// Close waits CloseGrace plus a few seconds for the conns, then
	// closes the SSH connection under them: all of them, not only the
	// first one it waited for.
	within(t, "Dialer.Close with several conns on a dead link", func() { d.Close() })
}

// silentAgent is an SSH agent socket that accepts and never answers, as an
// agent waiting for a confirmation (ssh-add -c) or a hung one does.
func silentAgent(tb testing.TB) string {
	tb.Helper()
	stop := make(chan struct{})
	return serveUnix(tb, func(net.Conn) { <-stop }, func() { close(stop) })
}

func TestContextBoundsAHungAgent(t *testing.T) {
	srv := newFakeServer(t)
	cfg := srv.Config(t)
	cfg.AgentSocket = silentAgent(t)
	cfg.ConnectTimeout = 500 * time.Millisecond
	d, err := dialer.New(srv.URL(""), cfg)
	require.NoError(t, err)
	within(t, "DialContext with a hung agent", func() {
		_, err = d.DialContext(context.Background(), "tcp", "")
	})
	var de *dialer.Error
	require.ErrorAs(t, err, &de)
	assert.Equal(t, dialer.OpAuth, de.Op)
	assert.ErrorIs(t, err, context.DeadlineExceeded)
	within(t, "Dialer.Close after a hung agent", func() { d.Close() })
}

// TestDyingConnectionIsNotPicked: a connection whose transport is known to
// have failed gets no new channels, even before its end is seen (x/crypto
// can leave a channel opened at that moment waiting forever,
// golang/go#57531), and it does not count against MaxConnections.
func TestDyingConnectionIsNotPicked(t *testing.T) {
	srv := newFakeServer(t)
	var dials atomic.Int32
	cfg := srv.Config(t)
	cfg.DialTCP = countingDial(&dials)
	cfg.MaxConnections = 1
	d := newDialer(t, srv, srv.echoSock, cfg)
	c, err := d.DialContext(t.Context(), "tcp", "")
	require.NoError(t, err)
	c.Close()
	require.Equal(t, int32(1), dials.Load())

	dialer.MarkConnectionsLost(d, errors.New("test: transport failed"))
	within(t, "a dial after the connection was lost", func() {
		c, err = d.DialContext(t.Context(), "tcp", "")
	})
	require.NoError(t, err)
	defer c.Close()
	assert.Equal(t, int32(2), dials.Load(), "a new SSH connection, not the dying one")
}
