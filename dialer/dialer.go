package dialer

import (
	"cmp"
	"context"
	"errors"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

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
	spares            spares // conns opened ahead (Config.DialAhead)

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
	gor    goroutines // every goroutine the Dialer starts

	mu      sync.Mutex // guards the fields below and the pool fields of each sshConn
	closed  bool
	conns   []*sshConn // live SSH connections, oldest first
	pending *connectCall
	failed  *failure // the last attempt that got no answer, for failFastWindow
	nextID  int
	live    map[*conn]struct{}
}

// New returns a Dialer for sshURL, ssh://[user[:password]@]host[:port][/socket/path],
// configured by cfg (nil means the defaults described on Config). It reads
// ssh_config and checks the configuration, but does not connect: the first
// DialContext does.
func New(sshURL string, cfg *Config) (*Dialer, error) {
	cfg = cmp.Or(cfg, &Config{})
	t, err := parseURL(sshURL)
	if err != nil {
		// Built before any redactor exists: the URL is shown through
		// rejectedURL, and parseURL's errors never quote the input.
		d := &Dialer{url: rejectedURL(sshURL)}
		return nil, d.newError(Error{Op: OpParseURL, Err: err, Hint: urlHint(err)})
	}
	d := &Dialer{cfg: *cfg, url: t.redacted(), live: map[*conn]struct{}{}}
	steps := []func(*target) error{d.takePassword, d.setUpLogging, d.applyDefaults, d.resolveDestination}
	for _, step := range steps {
		if err := step(t); err != nil {
			return nil, err
		}
	}
	d.ctx, d.cancel = context.WithCancel(context.Background())
	d.logDestination()
	return d, nil
}

// takePassword keeps the URL's password as the PasswordPolicy allows.
func (d *Dialer) takePassword(t *target) error {
	if t.password == nil {
		return nil
	}
	if d.cfg.PasswordPolicy == PasswordRefuse {
		return d.newError(Error{Op: OpParseURL, Err: errors.New("the URL contains a password and Config.PasswordPolicy is PasswordRefuse"),
			Hint: "remove the password from the URL and authenticate with a key"})
	}
	d.password = t.password
	return nil
}

// setUpLogging builds the redactor that every message and log line goes
// through: it knows the password, and masks URL passwords and key
// material it does not know. A short password is masked anyway, with
// redact's warning.
func (d *Dialer) setUpLogging(*target) error {
	base := cmp.Or(d.cfg.Logger, slog.Default())
	rcfg := &redact.Config{ShortSecrets: redact.WarnShort, Logger: base}
	if d.password != nil {
		rcfg.Secrets = []string{string(d.password)}
	}
	red, err := redact.New(rcfg)
	if err != nil {
		return d.newError(Error{Op: OpParseURL, Err: err})
	}
	d.red = red
	d.log = slog.New(red.Handler(base.Handler()))
	if d.password != nil {
		d.log.Warn("dialer: the URL contains a password; prefer keys or an agent (the password is redacted from logs and errors)", "url", d.url, "policy", d.cfg.PasswordPolicy)
	}
	return nil
}

// applyDefaults fills in the zero fields of the Config.
func (d *Dialer) applyDefaults(*target) error {
	d.remoteDocker = cmp.Or(d.cfg.RemoteDocker, defaultRemoteDocker)
	if err := checkRemoteArg("Config.RemoteDocker", d.remoteDocker); err != nil {
		return d.newError(Error{Op: OpParseURL, Err: err})
	}
	d.maxConns = cmp.Or(max(d.cfg.MaxConnections, 0), defaultMaxConnections)
	d.connectTimeout = cmp.Or(d.cfg.ConnectTimeout, defaultConnectTimeout)
	d.keepAliveInterval = cmp.Or(d.cfg.KeepAliveInterval, defaultKeepAliveInterval)
	d.keepAliveCountMax = cmp.Or(max(d.cfg.KeepAliveCountMax, 0), defaultKeepAliveCountMax)
	d.closeGrace = cmp.Or(d.cfg.CloseGrace, defaultCloseGrace)
	d.dialTCP = d.cfg.DialTCP
	if d.dialTCP == nil {
		var nd net.Dialer
		d.dialTCP = nd.DialContext
	}
	d.hostKeys = d.cfg.HostKeyCheck
	if d.hostKeys == nil {
		d.hostKeys = d.defaultHostKeys
	}
	return nil
}

// resolveDestination applies ssh_config and the Config to the URL.
func (d *Dialer) resolveDestination(t *target) error {
	r, err := newResolver(&d.cfg)
	if err == nil {
		d.dest, err = r.resolve(t)
	}
	if err != nil {
		return d.newError(Error{Op: OpSSHConfig, Err: err})
	}
	d.dest.command = remoteCommand(d.remoteDocker, d.dest.socket)
	for _, n := range d.dest.notes {
		d.log.Debug("dialer: ssh_config", "note", n)
	}
	return nil
}

// logDestination logs what New resolved, with how conns will reach the
// daemon: the remote command, or the socket for streamlocal (whose
// fallback, when the server refuses the channel, is logged when it
// happens).
func (d *Dialer) logDestination() {
	attrs := []any{"url", d.url, "addr", d.dest.addr(), "user", d.dest.user, "user_from", d.dest.userFrom,
		"jumps", len(d.dest.jumps), "known_hosts", d.dest.knownHosts, "agent", d.dest.agentSocket != ""}
	if d.useStreamLocal() {
		attrs = append(attrs, "transport", TransportStreamLocal, "socket", d.dest.socket)
	} else {
		attrs = append(attrs, "transport", TransportDialStdio, "command", d.dest.command)
	}
	d.log.Debug("dialer: destination resolved", attrs...)
}

// useStreamLocal reports whether conns are to try streamlocal: asked for,
// a socket named in the URL, and no refusal in the last streamLocalBackoff.
func (d *Dialer) useStreamLocal() bool {
	return d.cfg.Transport == TransportStreamLocal && d.dest.socket != "" && time.Now().UnixNano() >= d.streamLocalRetry.Load()
}

// DialContext returns a new conn to the remote Docker daemon. network and
// addr are ignored (the destination is the Dialer's URL); they exist so
// that DialContext fits http.Transport.DialContext and the Docker client's
// WithDialContext.
//
// ctx bounds connecting, the handshake, authentication and opening the
// channel; once DialContext has returned, the conn does not depend on ctx.
// When ctx ends first, the error names the stage that got no answer and
// for how long, and wraps ctx's error. (net/http and so the Docker client
// do not pass the request's deadline to a dial: there Config.ConnectTimeout
// bounds it.)
func (d *Dialer) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	// Each refusal marks a connection full or dead, so a few rounds reach
	// a usable connection or the bound.
	attempts := d.maxConns + 3
	var lastErr error
	for range attempts {
		if err := ctx.Err(); err != nil {
			return nil, d.newError(Error{Op: OpSession, Err: err})
		}
		streamLocal := d.useStreamLocal()
		if !streamLocal && d.cfg.DialAhead > 0 {
			if c := d.takeSpare(); c != nil {
				d.refill()
				return c, nil
			}
		}
		sc, err := d.pick(ctx, !streamLocal)
		if err != nil {
			return nil, err
		}
		start := time.Now()
		c, err := d.open(ctx, sc, streamLocal)
		if err == nil {
			if c.session && d.cfg.DialAhead > 0 {
				d.refill()
			}
			return c, nil
		}
		var r *retryable
		if !errors.As(err, &r) {
			return nil, d.dialErr(ctx, err, time.Since(start))
		}
		lastErr = r.err
	}
	return nil, d.newError(Error{Op: OpSession, Err: lastErr,
		Hint: "every SSH connection refused the session or ended while it was opened; check the server's sshd log"})
}

// dialErr returns the error of a failed channel open as DialContext
// returns it: ErrClosed bare, an *Error as it is, the end of ctx as a stall
// of the open.
func (d *Dialer) dialErr(ctx context.Context, err error, waited time.Duration) error {
	var e *Error
	switch {
	case errors.Is(err, ErrClosed), errors.As(err, &e):
		return err
	case ctx.Err() != nil:
		stall := &stallError{op: OpSession, waited: waited, heard: true, bound: contextBound(ctx), cause: ctx.Err()}
		return d.newError(Error{Op: OpSession, Addr: d.dest.addr(), Err: stall, Hint: stall.hint()})
	}
	return d.newError(Error{Op: OpSession, Err: err})
}

// Close closes every conn and SSH connection and waits for the Dialer's
// goroutines. Conns get up to Config.CloseGrace plus 2.5 seconds (for
// SIGTERM, SIGKILL a second later and the channel close a second after
// that) to end their remote commands; then the SSH connections are closed
// under whatever is left. Later DialContext calls return ErrClosed.
//
// Close does not wait for a goroutine that x/crypto keeps blocked in
// OpenChannel after its SSH connection ended (golang/go#57531); such a
// goroutine holds no connection and returns if x/crypto ever lets it.
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
	d.awaitShutdowns(conns)
	d.mu.Lock()
	scs := append([]*sshConn(nil), d.conns...)
	d.mu.Unlock()
	for _, sc := range scs {
		sc.fail(ErrClosed)
		sc.client.Close()
	}
	d.gor.wait()
	d.pwMu.Lock()
	clear(d.password)
	d.password = nil
	d.pwMu.Unlock()
	return nil
}

// awaitShutdowns waits for the closed conns' shutdowns, at most
// CloseGrace plus closeSignalTime for all of them together.
func (d *Dialer) awaitShutdowns(conns []*conn) {
	// One bound for all conns: the timer fires once, so after it has,
	// the loop must stop waiting rather than select on it again.
	bound := time.NewTimer(d.closeGrace + closeSignalTime)
	defer bound.Stop()
	for _, c := range conns {
		select {
		case <-c.shutDone:
		case <-bound.C:
			return
		}
	}
}
