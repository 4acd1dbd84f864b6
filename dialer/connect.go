package dialer

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
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
	openers  map[*opener]struct{} // channel opens in progress on it
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
		return fmt.Errorf("%w: %w", ErrConnectionLost, err)
	}
	return nil
}

// fail records why the connection ends (the first reason wins).
func (sc *sshConn) fail(reason error) {
	sc.lostMu.Lock()
	defer sc.lostMu.Unlock()
	if sc.lost == nil {
		sc.lost = fmt.Errorf("%w: %w", ErrConnectionLost, reason)
	}
}

// watchConn counts what an SSH transport receives and records its first
// read error. x/crypto ends every channel with a plain io.EOF when its
// connection dies; the transport's read error, which always comes first,
// tells the two apart. The count tells a silent server from one that
// stalls later in the handshake.
type watchConn struct {
	net.Conn
	received atomic.Int64
	err      atomic.Pointer[error]
}

func (w *watchConn) Read(p []byte) (int, error) {
	n, err := w.Conn.Read(p)
	w.received.Add(int64(n))
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

// progress is how far a connection attempt got: the stage it waits in,
// since when, and the transport of the hop it talks to. A dial that stops
// waiting (its context ended) and an attempt that runs out of time both
// say from it which stage got no answer, and for how long.
type progress struct {
	mu    sync.Mutex // guards the fields below
	op    Op
	addr  string
	since time.Time
	tr    *watchConn // nil before the TCP connect of the stage's hop
}

func (p *progress) set(op Op, addr string, tr *watchConn) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.op, p.addr, p.since, p.tr = op, addr, time.Now(), tr
}

// stall returns the error of a wait for this attempt that ended with
// cause (a context error) because of bound.
func (p *progress) stall(bound string, cause error) (Op, string, *stallError) {
	p.mu.Lock()
	defer p.mu.Unlock()
	heard := p.tr != nil && p.tr.received.Load() > 0
	var proxy string
	if p.tr != nil {
		if pc, ok := p.tr.Conn.(*proxyConn); ok {
			proxy = pc.name
		}
	}
	return p.op, p.addr, &stallError{op: p.op, waited: time.Since(p.since), heard: heard, proxy: proxy, bound: bound, cause: cause}
}

// proxyStderr is what the ProxyCommand of the stage's hop wrote to its
// stderr, "" without one.
func (p *progress) proxyStderr() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.tr != nil {
		if pc, ok := p.tr.Conn.(*proxyConn); ok {
			return pc.stderr.String()
		}
	}
	return ""
}

// stallError says which stage got no answer, for how long, and what ended
// the wait. It wraps the context's error, so errors.Is(err,
// context.DeadlineExceeded) holds for a timeout.
type stallError struct {
	op     Op
	waited time.Duration
	heard  bool   // the server had sent something on this hop (at least its version line)
	proxy  string // the ProxyCommand's program when the hop is reached through one
	bound  string // what ended the wait
	cause  error
}

func (e *stallError) Error() string {
	return fmt.Sprintf("%s: waited %s (%s): %v", e.what(), roundWait(e.waited), e.bound, e.cause)
}

// roundWait rounds a wait to what a reader compares with the timeouts
// that end it: hundredths of a second below a second, tenths above.
func roundWait(d time.Duration) time.Duration {
	if d < time.Second {
		return d.Round(10 * time.Millisecond)
	}
	return d.Round(100 * time.Millisecond)
}

func (e *stallError) Unwrap() error { return e.cause }

func (e *stallError) what() string {
	switch {
	case e.op == OpConnect:
		return "no answer to the TCP connect"
	case e.op == OpHandshake && !e.heard && e.proxy != "":
		return fmt.Sprintf("the ProxyCommand (%s) runs but sent no SSH version line", e.proxy)
	case e.op == OpHandshake && !e.heard:
		return "the server accepted the TCP connection but sent no SSH version line"
	case e.op == OpHandshake:
		return "the server sent its SSH version line, then stalled in the key exchange"
	case e.op == OpAuth:
		return "no answer during authentication (from the server or the SSH agent)"
	case e.op == OpSession:
		return "the server did not answer the request for a channel"
	}
	return "no answer"
}

func (e *stallError) hint() string {
	switch {
	case e.op == OpConnect:
		return "no answer: a firewall drops the packets, or the address is wrong"
	case e.op == OpHandshake && !e.heard && e.proxy != "":
		return "the ProxyCommand did not connect, or waits for something (a prompt it cannot show, a hung bastion); run it by hand and see its stderr"
	case e.op == OpHandshake && !e.heard:
		return "something accepts TCP connections there but does not speak SSH: a wrong port, a port forward to a host that is down, a tarpit; or sshd is overloaded (MaxStartups); compare with ssh -v to the same address"
	case e.op == OpHandshake:
		return "an overloaded sshd, or a network path that drops large packets (an MTU problem)"
	case e.op == OpAuth:
		return "an SSH agent waiting for a confirmation (ssh-add -c) or hung, or a server stuck while checking the credentials (PAM, LDAP)"
	}
	return "a heavily loaded sshd, or a dead network path"
}

// Bounds that end a wait, for stallError.
const (
	boundContext   = "the context's deadline"
	boundCancelled = "the context was cancelled"
)

func (d *Dialer) boundConnectTimeout() string {
	return fmt.Sprintf("Config.ConnectTimeout %s", d.connectTimeout)
}

// contextBound names what ended ctx.
func contextBound(ctx context.Context) string {
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return boundContext
	}
	return boundCancelled
}

// connect opens one SSH connection to the destination through its hops.
// ctx is the attempt's context: Close and the last waiter leaving cancel
// it; Config.ConnectTimeout bounds it here.
func (d *Dialer) connect(ctx context.Context, pr *progress) (*sshConn, error) {
	attempt := ctx
	if d.connectTimeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, d.connectTimeout)
		defer cancel()
	}
	sc, err := d.connectHops(ctx, pr)
	if err != nil && ctx.Err() != nil {
		bound := d.boundConnectTimeout()
		switch {
		case d.ctx.Err() != nil:
			bound = "Dialer.Close"
		case attempt.Err() != nil:
			bound = contextBound(attempt) // the last waiter left
		}
		op, addr, stall := pr.stall(bound, ctx.Err())
		return nil, d.newError(Error{Op: op, Addr: addr, Err: stall, Hint: stall.hint(), Stderr: pr.proxyStderr()})
	}
	return sc, err
}

// connectHops connects to each ProxyJump hop in turn, each through the one
// before, and then to the destination.
func (d *Dialer) connectHops(ctx context.Context, pr *progress) (*sshConn, error) {
	eps := append(append([]endpoint{}, d.dest.jumps...), d.dest.endpoint)
	var clients []*ssh.Client
	var laddr net.Addr
	var tr *watchConn
	for i := range eps {
		ep := &eps[i]
		var err error
		final := i == len(eps)-1
		tr, err = d.dialHop(ctx, pr, ep, clients, final)
		if err == nil {
			laddr = cmpAddr(laddr, tr.LocalAddr())
			var client *ssh.Client
			client, err = d.handshake(ctx, pr, tr, ep, final)
			clients = append(clients, client)
		}
		if err != nil {
			closeClients(clients)
			return nil, err
		}
	}
	return &sshConn{
		client:  clients[len(clients)-1],
		hops:    clients[:len(clients)-1],
		tr:      tr,
		laddr:   laddr,
		done:    make(chan struct{}),
		openers: map[*opener]struct{}{},
	}, nil
}

// cmpAddr keeps the first local address: the TCP connection of the first
// hop is the only local one.
func cmpAddr(first, next net.Addr) net.Addr {
	if first != nil {
		return first
	}
	return next
}

// closeClients closes the SSH clients of a failed attempt, last hop first;
// nil entries (a failed handshake) are skipped.
func closeClients(clients []*ssh.Client) {
	for i := len(clients) - 1; i >= 0; i-- {
		if clients[i] != nil {
			clients[i].Close()
		}
	}
}

// dialHop opens the TCP connection to ep: directly for the first hop,
// through the previous hop's SSH connection (direct-tcpip) after that.
func (d *Dialer) dialHop(ctx context.Context, pr *progress, ep *endpoint, via []*ssh.Client, final bool) (*watchConn, error) {
	pr.set(OpConnect, ep.addr(), nil)
	start := time.Now()
	var raw net.Conn
	var err error
	switch {
	case len(via) == 0 && ep.proxyCommand != "":
		pc, err := d.startProxy(ctx, ep)
		if err != nil {
			return nil, d.newError(Error{Op: OpProxy, Addr: ep.addr(), Err: err,
				Hint: "the ProxyCommand could not be started: is " + proxyShell + " there?"})
		}
		return &watchConn{Conn: pc}, nil
	case len(via) == 0:
		raw, err = d.dialTCP(ctx, "tcp", ep.addr())
	default:
		raw, err = via[len(via)-1].DialContext(ctx, "tcp", ep.addr())
	}
	if err != nil {
		return nil, d.connectErr(ep, len(via) > 0, err)
	}
	d.log.Debug("dialer: TCP connected", "url", d.url, "addr", ep.addr(), "hop", !final, "took", time.Since(start))
	return &watchConn{Conn: raw}, nil
}

// connectErr explains a failed TCP connect (directly or through a hop).
func (d *Dialer) connectErr(ep *endpoint, viaHop bool, err error) error {
	var dnsErr *net.DNSError
	var hint string
	switch {
	case viaHop:
		hint = "the ProxyJump host could not open a connection there; check the address from the jump host's side (and AllowTcpForwarding in its sshd_config)"
	case errors.Is(err, syscall.ECONNREFUSED):
		hint = "nothing listens there: is sshd running, and is the port right (URL port, or Port in ssh_config)?"
	case errors.As(err, &dnsErr):
		hint = "the host name does not resolve; check the URL, or HostName in ssh_config"
	case isTimeout(err):
		hint = "no answer: a firewall drops the packets, or the address is wrong"
	default:
		hint = "check the address and the network"
	}
	return d.newError(Error{Op: OpConnect, Addr: ep.addr(), Err: err, Hint: hint})
}

// hostKeyOutcome records what the host key callback decided, which x/crypto
// reports only as an opaque handshake failure.
type hostKeyOutcome struct {
	mu  sync.Mutex // guards err and ok; x/crypto calls back from its own goroutine
	err error
	ok  bool
}

func (h *hostKeyOutcome) set(err error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.err, h.ok = err, err == nil
}

func (h *hostKeyOutcome) get() (error, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.err, h.ok
}

// handshake runs the SSH handshake and authentication for ep over tr.
func (d *Dialer) handshake(ctx context.Context, pr *progress, tr *watchConn, ep *endpoint, final bool) (*ssh.Client, error) {
	pr.set(OpHandshake, ep.addr(), tr)
	khAddr := ep.hostKeyAddr()
	check, algos, err := d.hostKeys(khAddr, ep.knownHosts)
	if err != nil {
		tr.Close()
		return nil, d.newError(Error{Op: OpHostKey, Addr: ep.addr(), Err: err,
			Hint: "the known_hosts files could not be used; check Config.KnownHostsFiles or UserKnownHostsFile in ssh_config"})
	}
	var hk hostKeyOutcome
	rec := &authRecord{}
	methods, cleanup := d.authMethods(ctx, ep, final, rec)
	defer cleanup()
	cc := &ssh.ClientConfig{
		User: ep.user,
		Auth: methods,
		HostKeyCallback: func(hostname string, remote net.Addr, key ssh.PublicKey) error {
			// hostname is ep.addr(); the key is known under the
			// HostKeyAlias when there is one.
			err := check(khAddr, remote, key)
			hk.set(err)
			if err == nil {
				pr.set(OpAuth, ep.addr(), tr)
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
	stop := context.AfterFunc(ctx, func() { tr.Close() })
	c, chans, reqs, err := ssh.NewClientConn(tr, ep.addr(), cc)
	if !stop() && err == nil {
		c.Close()
		err = ctx.Err()
	}
	if err != nil {
		return nil, d.handshakeErr(ctx, ep, tr, &hk, rec, err)
	}
	if final {
		d.passwordAuthenticated()
	}
	d.log.Debug("dialer: SSH authenticated", "url", d.url, "addr", ep.addr(), "user", ep.user, "user_from", ep.userFrom, "server", string(c.ServerVersion()), "took", time.Since(start))
	return ssh.NewClient(c, chans, reqs), nil
}

// handshakeErr classifies a failed handshake: the host key check, the
// authentication, or the handshake itself. A context that ended returns
// the context's error, which connect turns into a stall error.
func (d *Dialer) handshakeErr(ctx context.Context, ep *endpoint, tr *watchConn, hk *hostKeyOutcome, rec *authRecord, err error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	hostKeyErr, hostKeyOK := hk.get()
	// A ProxyCommand that closed its output before the host key was
	// checked ended the handshake: its exit status and stderr say why.
	// (x/crypto closed the conn, which waits until the command is reaped.)
	pc, viaProxy := tr.Conn.(*proxyConn)
	if viaProxy && hostKeyErr == nil && !hostKeyOK && errors.Is(tr.failed(), io.EOF) {
		if status, ok := pc.exitStatus(); ok {
			return d.proxyErr(ep, pc, status, err)
		}
	}
	switch {
	case hostKeyErr != nil:
		// The typed hostkeys error, not x/crypto's wrapping of it: its
		// message already says how to fix it.
		return d.newError(Error{Op: OpHostKey, Addr: ep.addr(), Err: hostKeyErr, Hint: hostKeyHint(hostKeyErr)})
	case hostKeyOK:
		return d.newError(Error{Op: OpAuth, Addr: ep.addr(), Err: rec.refused(ep, err), Hint: rec.hint(ep)})
	}
	return d.newError(Error{Op: OpHandshake, Addr: ep.addr(), Err: err,
		Hint: "the server closed the connection or shares no algorithm with the client: is this an SSH server, and does it accept connections (sshd MaxStartups, fail2ban)?"})
}

func isTimeout(err error) bool {
	var t interface{ Timeout() bool }
	return errors.As(err, &t) && t.Timeout()
}

// keepalive sends keepalive@openssh.com requests on sc and closes it when
// one goes unanswered for KeepAliveCountMax intervals, so that its conns
// fail instead of hanging and the next dial reconnects.
func (d *Dialer) keepalive(sc *sshConn) {
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
		// Counted from this counted goroutine. It returns when the
		// server answers or the connection closes.
		d.gor.start(func() {
			_, _, err := sc.client.SendRequest("keepalive@openssh.com", true, nil)
			reply <- err
		})
		t := time.NewTimer(limit)
		select {
		case err := <-reply:
			t.Stop()
			if err != nil {
				return // the connection is ending; watch handles it
			}
		case <-t.C:
			reason := fmt.Errorf("no reply to keepalive within %s (Config.KeepAliveInterval x KeepAliveCountMax)", limit)
			d.log.Warn("dialer: SSH connection is dead; closing it", "url", d.url, "conn", sc.id, "reason", reason)
			sc.fail(reason)
			sc.client.Close()
			return
		case <-sc.done:
			t.Stop()
			return
		}
	}
}

// watch waits for sc to end, takes it out of the pool, closes its hops and
// parks the channel opens that x/crypto leaves waiting on it.
func (d *Dialer) watch(sc *sshConn) {
	err := sc.client.Wait()
	if err == nil {
		err = net.ErrClosed
	}
	sc.fail(err)
	d.mu.Lock()
	sc.dead = true
	d.removeConnLocked(sc)
	d.mu.Unlock()
	closeClients(sc.hops)
	close(sc.done)
	d.parkOpeners(sc)
	if !errors.Is(err, net.ErrClosed) {
		d.log.Debug("dialer: SSH connection ended", "url", d.url, "conn", sc.id, "err", err)
	}
}
