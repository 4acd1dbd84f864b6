package dialer

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/crypto/ssh"
)

// clientVersion is sent in the SSH banner, so server logs name the client.
const clientVersion = "SSH-2.0-dockssh_dialer"

// sshConn is one SSH connection to the destination, through its ProxyJump
// hops, shared by many conns.
type sshConn struct {
	id     int
	client *ssh.Client
	hops   []*ssh.Client // ProxyJump clients, first hop first
	tr     *watchConn    // the transport under client
	laddr  net.Addr      // local TCP address of the first hop
	done   chan struct{} // closed when the connection has ended

	lostMu sync.Mutex // guards lost
	lost   error      // why it ended, once it did or its transport failed

	// Guarded by Dialer.mu.
	sessions int  // session channels open or being opened
	full     bool // the server refused a session at the current count
	dead     bool
}

// lostErr returns a non-nil error once the connection's transport failed or
// the connection was closed; conns use it to tell a dead link from a clean
// end-of-file.
func (sc *sshConn) lostErr() error {
	sc.lostMu.Lock()
	lost := sc.lost
	sc.lostMu.Unlock()
	if lost != nil {
		return lost
	}
	if err := sc.tr.failed(); err != nil {
		return fmt.Errorf("%w: %v", ErrConnectionLost, err)
	}
	return nil
}

// fail records why the connection ends (the first reason wins).
func (sc *sshConn) fail(reason error) {
	sc.lostMu.Lock()
	defer sc.lostMu.Unlock()
	if sc.lost == nil {
		sc.lost = fmt.Errorf("%w: %v", ErrConnectionLost, reason)
	}
}

// watchConn records the first read error of an SSH transport. x/crypto
// ends every channel with a plain io.EOF when its connection dies; the
// transport's read error, which always comes first, tells the two apart.
type watchConn struct {
	net.Conn
	err atomic.Pointer[error]
}

func (w *watchConn) Read(p []byte) (int, error) {
	n, err := w.Conn.Read(p)
	if err != nil {
		w.err.CompareAndSwap(nil, &err)
	}
	return n, err
}

func (w *watchConn) failed() error {
	if p := w.err.Load(); p != nil {
		return *p
	}
	return nil
}

// stage tracks how far a connection attempt got, for errors of attempts
// that a context cancelled.
type stage struct {
	mu   sync.Mutex // guards op and addr
	op   Op
	addr string
}

func (s *stage) set(op Op, addr string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.op, s.addr = op, addr
}

func (s *stage) get() (Op, string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.op, s.addr
}

// connect opens one SSH connection to the destination through its hops.
func (d *Dialer) connect(ctx context.Context, st *stage) (*sshConn, error) {
	if d.connectTimeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeoutCause(ctx, d.connectTimeout, fmt.Errorf("no answer within Config.ConnectTimeout (%s)", d.connectTimeout))
		defer cancel()
	}
	eps := append(append([]endpoint{}, d.dest.jumps...), d.dest.endpoint)
	var clients []*ssh.Client
	closeAll := func() {
		for i := len(clients) - 1; i >= 0; i-- {
			clients[i].Close()
		}
	}
	var laddr net.Addr
	var tr *watchConn
	for i := range eps {
		ep := &eps[i]
		final := i == len(eps)-1
		st.set(OpConnect, ep.addr())
		var raw net.Conn
		var err error
		start := time.Now()
		if len(clients) == 0 {
			raw, err = d.dialTCP(ctx, "tcp", ep.addr())
		} else {
			raw, err = clients[len(clients)-1].DialContext(ctx, "tcp", ep.addr())
		}
		if err != nil {
			closeAll()
			return nil, d.connectErr(ctx, ep, len(clients) > 0, err)
		}
		if laddr == nil {
			laddr = raw.LocalAddr()
		}
		d.log.Debug("dialer: TCP connected", "url", d.url, "addr", ep.addr(), "hop", !final, "took", time.Since(start))
		tr = &watchConn{Conn: raw}
		client, err := d.handshake(ctx, st, tr, ep, final)
		if err != nil {
			closeAll()
			return nil, err
		}
		clients = append(clients, client)
	}
	sc := &sshConn{
		client: clients[len(clients)-1],
		hops:   clients[:len(clients)-1],
		tr:     tr,
		laddr:  laddr,
		done:   make(chan struct{}),
	}
	return sc, nil
}

// connectErr explains a failed TCP connect (directly or through a hop).
func (d *Dialer) connectErr(ctx context.Context, ep *endpoint, viaHop bool, err error) error {
	e := &Error{Op: OpConnect, URL: d.url, Addr: ep.addr(), Err: hideNetError(err), scrub: d.scrub}
	if ctx.Err() != nil {
		e.Err = ctxErr(ctx)
		return e
	}
	var dnsErr *net.DNSError
	switch {
	case viaHop:
		e.Hint = "the ProxyJump host could not open a connection there; check the address from the jump host's side (and AllowTcpForwarding in its sshd_config)"
	case errors.Is(err, syscall.ECONNREFUSED):
		e.Hint = "nothing listens there: is sshd running, and is the port right (URL port, or Port in ssh_config)?"
	case errors.As(err, &dnsErr):
		e.Hint = "the host name does not resolve; check the URL, or HostName in ssh_config"
	case isTimeout(err):
		e.Hint = "no answer: a firewall drops the packets, or the address is wrong"
	default:
		e.Hint = "check the address and the network"
	}
	return e
}

// handshake runs the SSH handshake and authentication for ep over raw.
func (d *Dialer) handshake(ctx context.Context, st *stage, raw net.Conn, ep *endpoint, final bool) (*ssh.Client, error) {
	st.set(OpHandshake, ep.addr())
	check, algos, err := d.hostKeys(ep.addr(), ep.knownHosts)
	if err != nil {
		raw.Close()
		return nil, &Error{Op: OpHostKey, URL: d.url, Addr: ep.addr(), Err: err, scrub: d.scrub,
			Hint: "the known_hosts files could not be used; check Config.KnownHostsFiles or UserKnownHostsFile in ssh_config"}
	}
	var (
		hkMu  sync.Mutex
		hkErr error
		hkOK  bool
	)
	rec := &authRecord{}
	methods, cleanup := d.authMethods(ctx, ep, final, rec)
	defer cleanup()
	cc := &ssh.ClientConfig{
		User: ep.user,
		Auth: methods,
		HostKeyCallback: func(hostname string, remote net.Addr, key ssh.PublicKey) error {
			err := check(hostname, remote, key)
			hkMu.Lock()
			hkErr, hkOK = err, err == nil
			hkMu.Unlock()
			if err == nil {
				st.set(OpAuth, ep.addr())
				d.log.Debug("dialer: host key verified", "url", d.url, "addr", ep.addr(), "type", key.Type(), "fingerprint", ssh.FingerprintSHA256(key))
			}
			return err
		},
		HostKeyAlgorithms: algos,
		ClientVersion:     clientVersion,
		BannerCallback: func(msg string) error {
			d.log.Debug("dialer: server banner", "url", d.url, "addr", ep.addr(), "banner", msg)
			return nil
		},
	}
	start := time.Now()
	stop := context.AfterFunc(ctx, func() { raw.Close() })
	c, chans, reqs, err := ssh.NewClientConn(raw, ep.addr(), cc)
	cancelled := !stop()
	if cancelled && err == nil {
		c.Close()
		err = ctxErr(ctx)
	}
	if err != nil {
		hkMu.Lock()
		hostKeyErr, hostKeyOK := hkErr, hkOK
		hkMu.Unlock()
		e := &Error{URL: d.url, Addr: ep.addr(), Err: hideNetError(err), scrub: d.scrub}
		switch {
		case hostKeyErr != nil:
			// The typed hostkeys error, not x/crypto's wrapping of it:
			// its message already says how to fix it.
			e.Op, e.Err = OpHostKey, hostKeyErr
		case hostKeyOK:
			e.Op = OpAuth
			e.Hint = fmt.Sprintf("the server accepted none of the credentials for user %q (%s); authorize a key on the server (~/.ssh/authorized_keys of that user), load the right key into the agent (ssh-add), or set Config.IdentityFiles", ep.user, rec.summary())
		default:
			e.Op = OpHandshake
			e.Hint = "the server closed the connection or shares no algorithm with the client: is this an SSH server, and does it accept connections (sshd MaxStartups, fail2ban)?"
		}
		if cancelled || ctx.Err() != nil {
			e.Err, e.Hint = ctxErr(ctx), ""
		}
		return nil, e
	}
	if final {
		d.passwordAuthenticated()
	}
	d.log.Debug("dialer: SSH authenticated", "url", d.url, "addr", ep.addr(), "user", ep.user, "server", string(c.ServerVersion()), "took", time.Since(start))
	return ssh.NewClient(c, chans, reqs), nil
}

// ctxErr returns the context's error, with its cause when that says more.
func ctxErr(ctx context.Context) error {
	err := ctx.Err()
	if cause := context.Cause(ctx); cause != nil && cause != err {
		return fmt.Errorf("%w (%v)", err, cause)
	}
	return err
}

func isTimeout(err error) bool {
	var t interface{ Timeout() bool }
	return errors.As(err, &t) && t.Timeout()
}

// keepalive sends keepalive@openssh.com requests on sc and closes it when
// one goes unanswered for KeepAliveCountMax intervals, so that its conns
// fail instead of hanging and the next dial reconnects.
func (d *Dialer) keepalive(sc *sshConn) {
	defer d.wg.Done()
	if d.keepAliveInterval <= 0 {
		return
	}
	tick := time.NewTicker(d.keepAliveInterval)
	defer tick.Stop()
	limit := d.keepAliveInterval * time.Duration(d.keepAliveCountMax)
	for {
		select {
		case <-tick.C:
		case <-sc.done:
			return
		}
		reply := make(chan error, 1)
		d.wg.Add(1)
		go func() {
			defer d.wg.Done()
			_, _, err := sc.client.SendRequest("keepalive@openssh.com", true, nil)
			reply <- err
		}()
		t := time.NewTimer(limit)
		select {
		case err := <-reply:
			t.Stop()
			if err != nil {
				return // the connection is ending; watch handles it
			}
		case <-t.C:
			reason := fmt.Errorf("no reply to keepalive within %s (Config.KeepAliveInterval x KeepAliveCountMax)", limit)
			d.log.Warn("dialer: SSH connection is dead; closing it", "url", d.url, "reason", reason)
			sc.fail(reason)
			sc.client.Close()
			return
		case <-sc.done:
			t.Stop()
			return
		}
	}
}

// watch waits for sc to end, takes it out of the pool and closes its hops.
func (d *Dialer) watch(sc *sshConn) {
	defer d.wg.Done()
	err := sc.client.Wait()
	if err == nil {
		err = errors.New("closed")
	}
	sc.fail(err)
	d.mu.Lock()
	sc.dead = true
	d.removeConnLocked(sc)
	d.mu.Unlock()
	for i := len(sc.hops) - 1; i >= 0; i-- {
		sc.hops[i].Close()
	}
	close(sc.done)
	if !strings.Contains(err.Error(), "use of closed network connection") {
		d.log.Debug("dialer: SSH connection ended", "url", d.url, "conn", sc.id, "err", err)
	}
}
