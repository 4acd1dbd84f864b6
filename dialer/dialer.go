package dialer

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/dockssh/dockssh/hostkeys"
	"github.com/dockssh/dockssh/redact"
)

// Dialer opens conns to the Docker daemon behind one ssh:// URL. It keeps
// its SSH connections open between dials; Close ends them. It is safe for
// concurrent use.
type Dialer struct {
	cfg               Config
	dest              *destination
	url               string // redacted
	log               *slog.Logger
	red               *redact.Redactor
	hostKeys          HostKeyFunc
	dialTCP           DialFunc
	remoteDocker      string
	maxConns          int
	connectTimeout    time.Duration
	keepAliveInterval time.Duration
	keepAliveCountMax int
	closeGrace        time.Duration
	keys              keyCache

	khMu       sync.Mutex // guards knownHosts
	knownHosts map[string]*hostkeys.KnownHosts

	pwMu         sync.Mutex // guards password and passwordUsed
	password     []byte
	passwordUsed bool

	// streamLocalRetry is when streamlocal may be tried again after the
	// server refused it (unix nanoseconds; 0: never refused).
	streamLocalRetry atomic.Int64

	ctx    context.Context // cancelled by Close; parent of connection attempts
	cancel context.CancelFunc
	wg     sync.WaitGroup // every goroutine the Dialer starts

	mu      sync.Mutex // guards the fields below and the pool fields of each sshConn
	closed  bool
	conns   []*sshConn // live SSH connections, oldest first
	pending *connectCall
	nextID  int
	live    map[*conn]struct{}
}

// connectCall is one connection attempt, shared by the dials waiting for it.
type connectCall struct {
	done    chan struct{}
	sc      *sshConn // set before done is closed, on success
	err     error    // set before done is closed, on failure
	waiters int      // guarded by Dialer.mu
	cancel  context.CancelFunc
	stage   stage
}

// New returns a Dialer for sshURL, ssh://[user[:password]@]host[:port][/socket/path],
// configured by cfg (nil means the defaults described on Config). It reads
// ssh_config and checks the configuration, but does not connect: the first
// DialContext does.
func New(sshURL string, cfg *Config) (*Dialer, error) {
	if cfg == nil {
		cfg = &Config{}
	}
	t, err := parseURL(sshURL)
	if err != nil {
		return nil, &Error{Op: OpParseURL, URL: rejectedURL(sshURL), Err: err,
			Hint: "want ssh://[user@]host[:port][/path/to/docker.sock]"}
	}
	d := &Dialer{cfg: *cfg, url: t.redacted(), live: map[*conn]struct{}{}}
	if t.password != nil {
		if cfg.PasswordPolicy == PasswordRefuse {
			return nil, &Error{Op: OpParseURL, URL: d.url, Err: errors.New("the URL contains a password and Config.PasswordPolicy is PasswordRefuse"),
				Hint: "remove the password from the URL and authenticate with a key"}
		}
		d.password = t.password
	}
	base := cmp.Or(cfg.Logger, slog.Default())
	// Every message and log line goes through the redactor, which knows
	// the password (and masks URL passwords and key material it does not
	// know). A short password is masked anyway, with redact's warning.
	rcfg := &redact.Config{ShortSecrets: redact.WarnShort, Logger: base}
	if d.password != nil {
		rcfg.Secrets = []string{string(d.password)}
	}
	if d.red, err = redact.New(rcfg); err != nil {
		return nil, &Error{Op: OpParseURL, URL: d.url, Err: err}
	}
	d.log = slog.New(d.red.Handler(base.Handler()))
	if d.password != nil {
		d.log.Warn("dialer: the URL contains a password; prefer keys or an agent (the password is redacted from logs and errors)", "url", d.url, "policy", cfg.PasswordPolicy)
	}

	d.remoteDocker = cfg.RemoteDocker
	if d.remoteDocker == "" {
		d.remoteDocker = defaultRemoteDocker
	}
	if err := checkRemoteArg("Config.RemoteDocker", d.remoteDocker); err != nil {
		return nil, &Error{Op: OpParseURL, URL: d.url, Err: err, scrub: d.scrub}
	}
	d.maxConns = orDefault(max(cfg.MaxConnections, 0), defaultMaxConnections)
	d.connectTimeout = orDefault(cfg.ConnectTimeout, defaultConnectTimeout)
	d.keepAliveInterval = orDefault(cfg.KeepAliveInterval, defaultKeepAliveInterval)
	d.keepAliveCountMax = orDefault(max(cfg.KeepAliveCountMax, 0), defaultKeepAliveCountMax)
	d.closeGrace = orDefault(cfg.CloseGrace, defaultCloseGrace)
	d.dialTCP = cfg.DialTCP
	if d.dialTCP == nil {
		var nd net.Dialer
		d.dialTCP = nd.DialContext
	}

	r, err := newResolver(cfg)
	if err != nil {
		return nil, &Error{Op: OpSSHConfig, URL: d.url, Err: err, scrub: d.scrub}
	}
	d.dest, err = r.resolve(t)
	if err != nil {
		e := &Error{Op: OpSSHConfig, URL: d.url, Err: err, scrub: d.scrub}
		if errors.Is(err, errSSHConfig) {
			e.Hint = "fix the file, point Config.SSHConfigPath elsewhere, or set Config.IgnoreSSHConfig"
		}
		return nil, e
	}
	d.dest.command = remoteCommand(d.remoteDocker, d.dest.socket)
	for _, n := range d.dest.notes {
		d.log.Debug("dialer: ssh_config", "note", n)
	}

	d.hostKeys = cfg.HostKeyCheck
	if d.hostKeys == nil {
		d.hostKeys = d.defaultHostKeys
	}
	d.ctx, d.cancel = context.WithCancel(context.Background())
	d.log.Debug("dialer: destination resolved", "url", d.url, "addr", d.dest.addr(), "user", d.dest.user,
		"jumps", len(d.dest.jumps), "known_hosts", d.dest.knownHosts, "agent", d.dest.agentSocket != "", "command", d.dest.command, "transport", cfg.Transport)
	return d, nil
}

// DialContext returns a new conn to the remote Docker daemon. network and
// addr are ignored (the destination is the Dialer's URL); they exist so
// that DialContext fits http.Transport.DialContext and the Docker client's
// WithDialContext.
//
// ctx bounds connecting, the handshake, authentication and opening the
// channel; once DialContext has returned, the conn does not depend on ctx.
func (d *Dialer) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	// Each refusal marks a connection full or dead, so a few rounds reach
	// a usable connection or the bound.
	attempts := d.maxConns + 3
	var lastErr error
	for range attempts {
		if err := ctx.Err(); err != nil {
			return nil, &Error{Op: OpSession, URL: d.url, Err: ctxErr(ctx), scrub: d.scrub}
		}
		useStreamLocal := d.cfg.Transport == TransportStreamLocal && d.dest.socket != "" && time.Now().UnixNano() >= d.streamLocalRetry.Load()
		sc, err := d.pick(ctx, !useStreamLocal)
		if err != nil {
			return nil, err
		}
		c, err := d.open(ctx, sc, useStreamLocal)
		if err == nil {
			return c, nil
		}
		if !errors.Is(err, errRetry) {
			return nil, err
		}
		lastErr = err
	}
	return nil, &Error{Op: OpSession, URL: d.url, Err: lastErr, scrub: d.scrub}
}

// streamLocalBackoff is how long a refused streamlocal is not tried again.
const streamLocalBackoff = time.Minute

// errRetry marks a session open that failed on one SSH connection in a way
// another attempt may not (refused by MaxSessions, or the connection died).
var errRetry = errors.New("retry")

// pick returns a live SSH connection, connecting when none has room. With
// session true it reserves a session slot on it.
func (d *Dialer) pick(ctx context.Context, session bool) (*sshConn, error) {
	for {
		d.mu.Lock()
		if d.closed {
			d.mu.Unlock()
			return nil, ErrClosed
		}
		for i := 0; i < len(d.conns); i++ {
			sc := d.conns[i]
			if !sc.dead && sc.lostErr() != nil {
				// Dying (keepalive gave up, or its transport failed):
				// out of the pool now, before watch sees it end, so
				// that no channel is opened on it and it does not
				// count against MaxConnections.
				d.evictLocked(sc)
				i--
				continue
			}
			if sc.dead || (session && sc.full) {
				continue
			}
			if session {
				sc.sessions++
			}
			d.mu.Unlock()
			return sc, nil
		}
		call := d.pending
		if call == nil {
			if len(d.conns) >= d.maxConns {
				n := len(d.conns)
				d.mu.Unlock()
				return nil, &Error{Op: OpSession, URL: d.url, Err: ErrSessionLimit, scrub: d.scrub,
					Hint: fmt.Sprintf("%d SSH connections are open and each is at the server's session limit; close unused conns, raise Config.MaxConnections, raise MaxSessions in the server's sshd_config, or use TransportStreamLocal (its channels are not sessions)", n)}
			}
			call = d.startConnectLocked()
		}
		call.waiters++
		d.mu.Unlock()

		select {
		case <-call.done:
		case <-ctx.Done():
			d.leave(call)
			op, addr := call.stage.get()
			return nil, &Error{Op: op, URL: d.url, Addr: addr, Err: ctxErr(ctx), scrub: d.scrub}
		}
		d.mu.Lock()
		call.waiters--
		d.mu.Unlock()
		if call.err != nil {
			return nil, call.err
		}
		// The new connection is in d.conns (unless it died already, or
		// others took its sessions): look again.
	}
}

// startConnectLocked starts a connection attempt. d.mu is held.
func (d *Dialer) startConnectLocked() *connectCall {
	ctx, cancel := context.WithCancel(d.ctx)
	call := &connectCall{done: make(chan struct{}), cancel: cancel}
	call.stage.set(OpConnect, "")
	d.pending = call
	d.wg.Add(1)
	go func() {
		defer d.wg.Done()
		defer cancel()
		sc, err := d.connect(ctx, &call.stage)
		d.mu.Lock()
		if d.pending == call {
			d.pending = nil
		}
		if err == nil && d.closed {
			err = ErrClosed
			sc.client.Close()
			for _, h := range sc.hops {
				h.Close()
			}
			sc = nil
		}
		if err == nil {
			d.nextID++
			sc.id = d.nextID
			d.conns = append(d.conns, sc)
			d.wg.Add(2)
			go d.watch(sc)
			go d.keepalive(sc)
			d.log.Debug("dialer: SSH connection ready", "url", d.url, "conn", sc.id, "open", len(d.conns))
		}
		call.sc, call.err = sc, err
		d.mu.Unlock()
		close(call.done)
	}()
	return call
}

// leave drops a waiter that gave up; the last one cancels the attempt.
func (d *Dialer) leave(call *connectCall) {
	d.mu.Lock()
	defer d.mu.Unlock()
	call.waiters--
	if call.waiters == 0 && !isClosed(call.done) {
		if d.pending == call {
			d.pending = nil
		}
		call.cancel()
	}
}

// evictLocked takes a lost connection out of the pool and closes it (its
// watch then ends). After Close it stays in the pool, where Close closes
// it. d.mu is held.
func (d *Dialer) evictLocked(sc *sshConn) {
	sc.dead = true
	if d.closed {
		return
	}
	d.removeConnLocked(sc)
	d.wg.Add(1) // under d.mu and not closed: Close is not waiting yet
	go func() {
		defer d.wg.Done()
		sc.client.Close()
	}()
}

func (d *Dialer) removeConnLocked(sc *sshConn) {
	for i, x := range d.conns {
		if x == sc {
			d.conns = append(d.conns[:i], d.conns[i+1:]...)
			return
		}
	}
}

// open opens a channel on sc: streamlocal when asked (falling back to a
// session), else a session running the remote command.
func (d *Dialer) open(ctx context.Context, sc *sshConn, streamLocal bool) (net.Conn, error) {
	if streamLocal {
		payload := ssh.Marshal(struct {
			Path      string
			Reserved0 string
			Reserved1 uint32
		}{Path: d.dest.socket})
		ch, reqs, err := d.openChannel(ctx, sc, "direct-streamlocal@openssh.com", payload, "")
		if err == nil {
			return d.register(sc, ch, reqs, false)
		}
		var oce *ssh.OpenChannelError
		if !errors.As(err, &oce) {
			return nil, d.openFailure(ctx, sc, err, false)
		}
		// OpenSSH refuses with the same "open failed" whether
		// AllowStreamLocalForwarding forbids it or the socket is
		// missing, so any refusal is remembered for a while rather
		// than paid for on every dial.
		d.streamLocalRetry.Store(time.Now().Add(streamLocalBackoff).UnixNano())
		d.log.Debug("dialer: streamlocal refused; falling back to dial-stdio", "url", d.url, "socket", d.dest.socket, "reason", oce.Reason.String(), "message", oce.Message, "retry_after", streamLocalBackoff)
		d.mu.Lock()
		if sc.dead || sc.full {
			d.mu.Unlock()
			return nil, errRetry
		}
		sc.sessions++
		d.mu.Unlock()
	}
	ch, reqs, err := d.openChannel(ctx, sc, "session", nil, d.dest.command)
	if err != nil {
		d.mu.Lock()
		sc.sessions--
		d.mu.Unlock()
		return nil, d.openFailure(ctx, sc, err, true)
	}
	return d.register(sc, ch, reqs, true)
}

// openFailure classifies a failed channel open.
func (d *Dialer) openFailure(ctx context.Context, sc *sshConn, err error, session bool) error {
	if ctx.Err() != nil {
		return &Error{Op: OpSession, URL: d.url, Err: ctxErr(ctx), scrub: d.scrub}
	}
	var oce *ssh.OpenChannelError
	if errors.As(err, &oce) {
		d.mu.Lock()
		others := sc.sessions // this attempt's reservation is already released
		if session && others > 0 {
			// OpenSSH refuses a session beyond MaxSessions with
			// "connect failed" ("open failed"); other servers say
			// "administratively prohibited" or "resource shortage".
			// With other sessions open on this connection it is a
			// limit: mark the connection full and try another.
			sc.full = true
			d.mu.Unlock()
			d.log.Debug("dialer: server refused a new session; using another SSH connection", "url", d.url, "conn", sc.id, "sessions", others, "reason", oce.Reason.String(), "message", oce.Message)
			return fmt.Errorf("%w: %v", errRetry, err)
		}
		d.mu.Unlock()
		return &Error{Op: OpSession, URL: d.url, Err: err, scrub: d.scrub,
			Hint: "the server refused a session on a connection that has none open; check sshd's log on the server (MaxSessions 0? a Match block denying sessions?)"}
	}
	if errors.Is(err, errExecRefused) {
		return &Error{Op: OpSession, URL: d.url, Err: err, scrub: d.scrub,
			Hint: "sshd refused to run " + d.dest.command + " for this user (ForceCommand, a restricted shell, or a restrict/command= option in authorized_keys?)"}
	}
	if sc.lostErr() != nil || isClosed(sc.done) {
		d.mu.Lock()
		if !sc.dead {
			d.evictLocked(sc)
		}
		d.mu.Unlock()
		return fmt.Errorf("%w: %v", errRetry, err)
	}
	return &Error{Op: OpSession, URL: d.url, Err: err, scrub: d.scrub}
}

var errExecRefused = errors.New("dialer: exec request refused")

type openResult struct {
	ch   ssh.Channel
	reqs <-chan *ssh.Request
	err  error
}

// openChannel opens a channel of kind and, when command is not empty, runs
// it with an exec request. x/crypto's calls cannot be cancelled, so they
// run in a goroutine; when ctx ends first, the goroutine closes what it
// got.
//
// The SSH connection ending also ends the wait. x/crypto's OpenChannel can
// otherwise wait forever: a channel registered just after the connection's
// read loop dropped every channel never gets an answer, because the first
// failed write on a dead transport reports success (golang/go#57531). Such
// a goroutine can never return, so once its connection is gone it no
// longer counts among the Dialer's goroutines that Close waits for.
func (d *Dialer) openChannel(ctx context.Context, sc *sshConn, kind string, payload []byte, command string) (ssh.Channel, <-chan *ssh.Request, error) {
	do := func() openResult {
		ch, reqs, err := sc.client.OpenChannel(kind, payload)
		if err != nil {
			return openResult{err: err}
		}
		if command != "" {
			ok, err := ch.SendRequest("exec", true, ssh.Marshal(struct{ Command string }{command}))
			if err == nil && !ok {
				err = errExecRefused
			}
			if err != nil {
				ch.Close()
				ssh.DiscardRequests(reqs)
				return openResult{err: err}
			}
		}
		return openResult{ch: ch, reqs: reqs}
	}
	res := make(chan openResult)
	abandoned := make(chan struct{})
	finished := make(chan struct{})
	var once sync.Once
	release := func() { once.Do(d.wg.Done) }
	d.mu.Lock()
	if d.closed {
		d.mu.Unlock()
		return nil, nil, ErrClosed
	}
	d.wg.Add(1) // under d.mu, as in register
	d.mu.Unlock()
	go func() {
		defer release()
		defer close(finished)
		r := do()
		select {
		case res <- r:
		case <-abandoned:
			if r.ch != nil {
				r.ch.Close()
				ssh.DiscardRequests(r.reqs)
			}
		}
	}()
	select {
	case r := <-res:
		return r.ch, r.reqs, r.err
	case <-ctx.Done():
		close(abandoned)
		// Released when it returns, or when its connection ends.
		go func() {
			select {
			case <-finished:
			case <-sc.done:
				release()
			}
		}()
		return nil, nil, ctxErr(ctx)
	case <-sc.done:
		close(abandoned)
		release()
		err := sc.lostErr()
		if err == nil {
			err = ErrConnectionLost
		}
		return nil, nil, err
	}
}

// register wraps a fresh channel in a conn and records it, unless the
// Dialer was closed meanwhile.
func (d *Dialer) register(sc *sshConn, ch ssh.Channel, reqs <-chan *ssh.Request, session bool) (net.Conn, error) {
	// Under d.mu: once Close has seen d.closed it waits for d.wg, and a
	// WaitGroup must not grow from zero while it is being waited for.
	d.mu.Lock()
	if d.closed {
		d.mu.Unlock()
		ch.Close()
		go ssh.DiscardRequests(reqs)
		return nil, ErrClosed
	}
	c := newConn(d, sc, ch, reqs, session)
	d.live[c] = struct{}{}
	d.mu.Unlock()
	d.log.Debug("dialer: conn opened", "url", d.url, "conn", sc.id, "transport", c.raddr.Transport)
	return c, nil
}

// release is called by a conn's shutdown once its channel is gone.
func (d *Dialer) release(c *conn) {
	d.mu.Lock()
	defer d.mu.Unlock()
	delete(d.live, c)
	if c.session {
		c.sc.sessions--
		c.sc.full = false
	}
}

// Close closes every conn and SSH connection and waits for the Dialer's
// goroutines. Conns get up to Config.CloseGrace (plus two seconds for
// signals) to end their remote commands before the SSH connections are
// closed under them. Later DialContext calls return ErrClosed.
func (d *Dialer) Close() error {
	d.mu.Lock()
	if d.closed {
		d.mu.Unlock()
		return nil
	}
	d.closed = true
	conns := make([]*conn, 0, len(d.live))
	for c := range d.live {
		conns = append(conns, c)
	}
	d.mu.Unlock()

	d.cancel() // connection attempts in flight
	for _, c := range conns {
		c.Close()
	}
	// One bound for all conns: the timer fires once, so after it has,
	// the loop must stop waiting rather than select on it again.
	bound := time.NewTimer(d.closeGrace + 2*time.Second + 500*time.Millisecond)
	defer bound.Stop()
wait:
	for _, c := range conns {
		select {
		case <-c.shutDone:
		case <-bound.C:
			break wait
		}
	}
	d.mu.Lock()
	scs := append([]*sshConn(nil), d.conns...)
	d.mu.Unlock()
	for _, sc := range scs {
		sc.fail(ErrClosed)
		sc.client.Close()
	}
	d.wg.Wait()
	d.pwMu.Lock()
	clear(d.password)
	d.password = nil
	d.pwMu.Unlock()
	return nil
}

// scrub redacts secrets from a message.
func (d *Dialer) scrub(s string) string {
	if d == nil || d.red == nil {
		return s
	}
	return d.red.String(s)
}

func orDefault[T int | time.Duration](v, def T) T {
	if v == 0 {
		return def
	}
	return v
}
