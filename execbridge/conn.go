package execbridge

import (
	"context"
	"encoding/hex"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dockssh/dockssh/authn"
	"github.com/dockssh/dockssh/internal/logtext"
	"golang.org/x/crypto/ssh"
)

// ServeConn serves one authenticated connection: its session channels
// become processes in containers; every other channel type and global
// request is refused (port, agent and X11 forwarding, for example). It
// returns when the connection ends or ctx is canceled, after it has ended
// every session of the connection and their processes, and closed sc.
//
// The login's authn.Grant (from sc.Permissions) is enforced for every
// session. A connection authenticated without authn has no restrictions.
func (b *Bridge) ServeConn(ctx context.Context, sc *ssh.ServerConn, chans <-chan ssh.NewChannel, reqs <-chan *ssh.Request) {
	b.serveConn(ctx, nil, sc, chans, reqs)
}

// connState is what the sessions of one connection share.
type connState struct {
	b      *Bridge
	sc     *ssh.ServerConn
	grant  *authn.Grant
	login  string
	route  string
	logger *slog.Logger

	ctx      context.Context // canceled when the connection ends
	sessions sync.WaitGroup  // session goroutines

	mu        sync.Mutex // guards the fields below
	open      int        // open channels
	noMore    bool       // no-more-sessions@openssh.com received
	idleTimer *time.Timer
	drainWake chan struct{} // closed when the last channel closes while draining
}

// serveConn is ServeConn; drain, when it is closed, refuses new sessions
// and closes the connection once its last session has ended (graceful
// shutdown).
func (b *Bridge) serveConn(ctx context.Context, drain <-chan struct{}, sc *ssh.ServerConn, chans <-chan ssh.NewChannel, reqs <-chan *ssh.Request) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	c := &connState{b: b, sc: sc, ctx: ctx}
	c.login, c.route = SplitUser(sc.User())
	c.logger = b.logger.With("user", c.login, "remote", logtext.Addr(sc.RemoteAddr()), "session_id", sessionIDString(sc.SessionID()))

	grant, err := authn.GrantFrom(sc.Permissions)
	switch {
	case errors.Is(err, authn.ErrNoGrant):
		// Authenticated by the caller's own callbacks: nothing to enforce.
		grant = unrestricted(sc.User())
	case err != nil:
		c.logger.Error("execbridge: cannot read the login's grant; closing the connection", "err", err)
		sc.Close()
		go ssh.DiscardRequests(reqs)
		for range chans {
		}
		return
	}
	c.grant = grant

	var bg sync.WaitGroup // connection-level goroutines
	bg.Go(func() { c.globalRequests(reqs) })
	if b.cfg.KeepAliveInterval > 0 {
		bg.Go(func() { c.keepAlive() })
	}
	if b.cfg.IdleTimeout > 0 {
		c.mu.Lock()
		c.idleTimer = time.AfterFunc(b.cfg.IdleTimeout, c.idleExpired)
		c.mu.Unlock()
	}
	// Close the connection when ctx ends (shutdown) or, once draining,
	// when no channel is open.
	bg.Go(func() {
		select {
		case <-ctx.Done():
		case <-drain:
			c.closeWhenIdle()
		}
		sc.Close()
	})

	for nc := range chans {
		c.newChannel(nc, drain)
	}
	// The connection is gone: end the sessions, then wait for everything.
	cancel()
	c.sessions.Wait()
	c.mu.Lock()
	if c.idleTimer != nil {
		c.idleTimer.Stop()
	}
	c.mu.Unlock()
	sc.Close()
	bg.Wait()
}

func (c *connState) newChannel(nc ssh.NewChannel, drain <-chan struct{}) {
	switch nc.ChannelType() {
	case "session":
	case "direct-tcpip", "direct-streamlocal@openssh.com", "forwarded-tcpip", "x11", "auth-agent@openssh.com":
		c.logger.Info("execbridge: refused channel", "type", nc.ChannelType())
		nc.Reject(ssh.Prohibited, "forwarding is not supported by this server")
		return
	default:
		nc.Reject(ssh.UnknownChannelType, "unknown channel type")
		return
	}
	select {
	case <-drain:
		nc.Reject(ssh.Prohibited, "the server is shutting down")
		return
	default:
	}
	c.mu.Lock()
	switch {
	case c.noMore:
		c.mu.Unlock()
		nc.Reject(ssh.Prohibited, "no more sessions on this connection")
		return
	case c.open >= c.b.cfg.MaxSessions:
		c.mu.Unlock()
		c.logger.Warn("execbridge: session refused: too many sessions on this connection", "max", c.b.cfg.MaxSessions)
		nc.Reject(ssh.ResourceShortage, "too many sessions on this connection")
		return
	}
	c.open++
	if c.idleTimer != nil {
		c.idleTimer.Stop()
	}
	c.mu.Unlock()

	ch, reqs, err := nc.Accept()
	if err != nil {
		c.channelClosed()
		return
	}
	s := newSession(c, ch)
	c.sessions.Go(func() {
		defer c.channelClosed()
		s.serve(reqs)
	})
}

func (c *connState) channelClosed() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.open--
	if c.open == 0 && c.idleTimer != nil {
		c.idleTimer.Reset(c.b.cfg.IdleTimeout)
	}
	if c.open == 0 && c.drainWake != nil {
		close(c.drainWake)
		c.drainWake = nil
	}
}

// closeWhenIdle waits until the connection has no open channel (or ends).
func (c *connState) closeWhenIdle() {
	c.mu.Lock()
	if c.open == 0 {
		c.mu.Unlock()
		return
	}
	wake := make(chan struct{})
	c.drainWake = wake
	c.mu.Unlock()
	select {
	case <-wake:
	case <-c.ctx.Done():
	}
}

func (c *connState) idleExpired() {
	c.mu.Lock()
	idle := c.open == 0
	c.mu.Unlock()
	if idle {
		c.logger.Info("execbridge: closing idle connection", "idle_timeout", c.b.cfg.IdleTimeout)
		c.sc.Close()
	}
}

// globalRequests answers every global request: this server offers none
// (RFC 4254, section 4: unknown requests get a failure reply).
func (c *connState) globalRequests(reqs <-chan *ssh.Request) {
	for req := range reqs {
		switch req.Type {
		case "no-more-sessions@openssh.com":
			// OpenSSH's client sends it after its sessions are open
			// (ssh -N, ControlMaster slaves excepted) to stop a hijacked
			// connection from opening more.
			c.mu.Lock()
			c.noMore = true
			c.mu.Unlock()
		case "tcpip-forward", "cancel-tcpip-forward", "streamlocal-forward@openssh.com", "cancel-streamlocal-forward@openssh.com":
			c.logger.Info("execbridge: refused global request", "type", req.Type)
		}
		req.Reply(false, nil)
	}
}

// keepAlive asks the client for a sign of life every KeepAliveInterval and
// closes the connection after KeepAliveCountMax requests went unanswered,
// so that a vanished client (a dead link, a suspended laptop) does not
// keep its processes running.
func (c *connState) keepAlive() {
	var outstanding atomic.Int32
	var probes sync.WaitGroup
	defer probes.Wait()
	t := time.NewTicker(c.b.cfg.KeepAliveInterval)
	defer t.Stop()
	for {
		select {
		case <-c.ctx.Done():
			return
		case <-t.C:
		}
		if int(outstanding.Load()) >= c.b.cfg.KeepAliveCountMax {
			c.logger.Warn("execbridge: client stopped answering keepalives; closing the connection",
				"interval", c.b.cfg.KeepAliveInterval, "count", c.b.cfg.KeepAliveCountMax)
			c.sc.Close()
			return
		}
		outstanding.Add(1)
		// SendRequest blocks until the reply or the end of the
		// connection; each probe ends with one of them.
		probes.Go(func() {
			if _, _, err := c.sc.SendRequest("keepalive@openssh.com", true, nil); err == nil {
				outstanding.Store(0)
			}
		})
	}
}

// sessionIDString shortens the SSH session identifier (the exchange hash)
// to a log-friendly handle that ties a connection's records together.
func sessionIDString(id []byte) string {
	return hex.EncodeToString(id[:min(len(id), 8)])
}
