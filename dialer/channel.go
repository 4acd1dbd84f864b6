package dialer

import (
	"cmp"
	"context"
	"errors"
	"sync"
	"time"

	"golang.org/x/crypto/ssh"
)

// streamLocalBackoff is how long a refused streamlocal is not tried again.
const streamLocalBackoff = time.Minute

// retryable marks a channel open that failed on one SSH connection in a
// way another attempt may not (refused by MaxSessions, or the connection
// died). DialContext unwraps it: it never reaches a caller.
type retryable struct{ err error }

func (r *retryable) Error() string { return r.err.Error() }
func (r *retryable) Unwrap() error { return r.err }

var errExecRefused = errors.New("dialer: exec request refused")

// open opens a conn on sc: a streamlocal channel when asked (falling back
// to a session), else a session running the remote command.
func (d *Dialer) open(ctx context.Context, sc *sshConn, streamLocal bool) (*conn, error) {
	if streamLocal {
		c, err, fallBack := d.openStreamLocal(ctx, sc)
		if !fallBack {
			return c, err
		}
	}
	c, err := d.openChannel(ctx, sc, "session", nil, d.dest.command, true)
	if err != nil {
		d.mu.Lock()
		sc.sessions--
		d.mu.Unlock()
		return nil, d.openFailure(ctx, sc, err, true)
	}
	return c, nil
}

// openStreamLocal opens a direct-streamlocal@openssh.com channel to the
// URL's socket. fallBack reports that the server refused it and a session
// slot on sc is now reserved for dial-stdio.
func (d *Dialer) openStreamLocal(ctx context.Context, sc *sshConn) (c *conn, err error, fallBack bool) {
	payload := ssh.Marshal(struct {
		Path      string
		Reserved0 string
		Reserved1 uint32
	}{Path: d.dest.socket})
	c, err = d.openChannel(ctx, sc, "direct-streamlocal@openssh.com", payload, "", false)
	if err == nil {
		return c, nil, false
	}
	var oce *ssh.OpenChannelError
	if !errors.As(err, &oce) {
		return nil, d.openFailure(ctx, sc, err, false), false
	}
	// OpenSSH refuses with the same "open failed" whether
	// AllowStreamLocalForwarding forbids it or the socket is missing, so
	// any refusal is remembered for a while rather than paid for on
	// every dial.
	d.streamLocalRetry.Store(time.Now().Add(streamLocalBackoff).UnixNano())
	d.log.Debug("dialer: streamlocal refused; falling back to dial-stdio", "url", d.url, "socket", d.dest.socket, "reason", oce.Reason.String(), "message", oce.Message, "retry_after", streamLocalBackoff)
	d.mu.Lock()
	defer d.mu.Unlock()
	if sc.dead || sc.full {
		return nil, &retryable{err}, false
	}
	sc.sessions++
	return nil, nil, true
}

// openFailure classifies a failed channel open.
func (d *Dialer) openFailure(ctx context.Context, sc *sshConn, err error, session bool) error {
	if ctx.Err() != nil || errors.Is(err, ErrClosed) {
		return err
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
			return &retryable{err}
		}
		d.mu.Unlock()
		return d.newError(Error{Op: OpSession, Err: err,
			Hint: "the server refused a session on a connection that has none open; check sshd's log on the server (MaxSessions 0? a Match block denying sessions?)"})
	}
	if errors.Is(err, errExecRefused) {
		return d.newError(Error{Op: OpSession, Err: err,
			Hint: "sshd refused to run " + d.dest.command + " for this user (ForceCommand, a restricted shell, or a restrict/command= option in authorized_keys?)"})
	}
	if lost := sc.lostErr(); lost != nil || isClosed(sc.done) {
		d.mu.Lock()
		if !sc.dead {
			d.evictLocked(sc)
		}
		d.mu.Unlock()
		// x/crypto's own error says little ("unexpected packet in
		// response to channel open: <nil>"); why the connection ended
		// says more.
		return &retryable{cmp.Or(lost, err)}
	}
	return d.newError(Error{Op: OpSession, Err: err})
}

// opener is a channel open in progress, run in a goroutine of its own
// because x/crypto's calls cannot be cancelled.
type opener struct {
	mu        sync.Mutex // guards the fields below
	abandoned bool       // the dial stopped waiting for it
	parked    bool       // its SSH connection ended while it was in x/crypto
	finished  bool
}

type openResult struct {
	c   *conn
	err error
}

// openChannel opens a channel of kind on sc, runs command in it with an
// exec request when command is not empty, and returns it as a conn.
//
// The SSH connection ending also ends the wait. x/crypto's OpenChannel can
// otherwise wait forever: a channel registered just after the connection's
// read loop dropped every channel never gets an answer, because the first
// failed write on a dead transport reports success (golang/go#57531). The
// goroutine is then parked (see goroutines.parked) when the connection
// ends, so that Close does not wait for it.
func (d *Dialer) openChannel(ctx context.Context, sc *sshConn, kind string, payload []byte, command string, session bool) (*conn, error) {
	op := &opener{}
	res := make(chan openResult, 1)
	d.mu.Lock()
	switch {
	case d.closed:
		d.mu.Unlock()
		return nil, ErrClosed
	case sc.dead:
		// watch has parked the openers already: this one would not be.
		d.mu.Unlock()
		return nil, sc.lostErr()
	}
	sc.openers[op] = struct{}{}
	d.gor.add() // under d.mu, not closed: see goroutines.add
	d.mu.Unlock()
	go func() {
		ch, reqs, err := openAndExec(sc, kind, payload, command)
		d.finishOpen(sc, op, res, ch, reqs, err, session)
	}()

	select {
	case r := <-res:
		if r.c != nil {
			d.log.Debug("dialer: conn opened", "url", d.url, "conn", sc.id, "transport", transportOf(session), "target", d.target(session))
		}
		return r.c, r.err
	case <-ctx.Done():
		op.abandon(res)
		return nil, ctx.Err()
	case <-sc.done:
		op.abandon(res)
		if err := sc.lostErr(); err != nil {
			return nil, err
		}
		return nil, ErrConnectionLost
	}
}

// openAndExec opens the channel and sends the exec request.
func openAndExec(sc *sshConn, kind string, payload []byte, command string) (ssh.Channel, <-chan *ssh.Request, error) {
	ch, reqs, err := sc.client.OpenChannel(kind, payload)
	if err != nil || command == "" {
		return ch, reqs, err
	}
	ok, err := ch.SendRequest("exec", true, ssh.Marshal(struct{ Command string }{command}))
	if err == nil && !ok {
		err = errExecRefused
	}
	if err != nil {
		ch.Close()
		ssh.DiscardRequests(reqs)
		return nil, nil, err
	}
	return ch, reqs, nil
}

// finishOpen hands the opened channel, as a registered conn, to the dial
// waiting for it; when nobody takes it (the dial gave up, or the Dialer
// was closed) it closes the channel instead. It runs in the opener's
// goroutine and ends its count.
func (d *Dialer) finishOpen(sc *sshConn, op *opener, res chan<- openResult, ch ssh.Channel, reqs <-chan *ssh.Request, err error, session bool) {
	d.mu.Lock()
	delete(sc.openers, op)
	op.mu.Lock()
	op.finished = true
	parked := op.parked
	handed := false
	if !op.abandoned {
		r := openResult{err: err}
		switch {
		case err != nil:
		case d.closed:
			r.err = ErrClosed
		default:
			r.c = newConn(d, sc, ch, reqs, session) // under d.mu, not closed
			d.live[r.c] = struct{}{}
		}
		res <- r // buffered: never blocks
		handed = r.c != nil
	}
	op.mu.Unlock()
	d.mu.Unlock()
	if err == nil && !handed {
		ch.Close()
		ssh.DiscardRequests(reqs) // until the server confirms the close
	}
	if parked {
		d.gor.unpark()
	} else {
		d.gor.done()
	}
}

// abandon marks the open as given up; a conn handed over in the meantime
// is closed.
func (op *opener) abandon(res <-chan openResult) {
	op.mu.Lock()
	defer op.mu.Unlock()
	op.abandoned = true
	select {
	case r := <-res:
		if r.c != nil {
			r.c.Close()
		}
	default:
	}
}

// parkOpeners moves the goroutines of channel opens still inside x/crypto
// on sc, which has ended, from running to parked.
func (d *Dialer) parkOpeners(sc *sshConn) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for op := range sc.openers {
		op.mu.Lock()
		if !op.finished && !op.parked {
			op.parked = true
			d.gor.park()
		}
		op.mu.Unlock()
	}
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

func transportOf(session bool) Transport {
	if session {
		return TransportDialStdio
	}
	return TransportStreamLocal
}

// target is what a conn of that kind reaches, for log lines: the remote
// command of a session, or the socket of a streamlocal channel.
func (d *Dialer) target(session bool) string {
	if session {
		return d.dest.command
	}
	return d.dest.socket
}
