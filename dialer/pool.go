package dialer

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// connectCall is one connection attempt, shared by the dials waiting for it.
type connectCall struct {
	done     chan struct{}
	sc       *sshConn // set before done is closed, on success
	err      error    // set before done is closed, on failure
	waiters  int      // guarded by Dialer.mu
	cancel   context.CancelFunc
	progress progress
}

// failFastWindow is how long after a connection attempt got no answer
// within Config.ConnectTimeout new dials fail at once, with the same error,
// instead of waiting out the timeout again. One call of the Docker client
// that cannot connect dials three times (its API version negotiation
// swallows the failures of HEAD and GET /_ping, then the call dials for
// itself), and retry loops dial again at once.
const failFastWindow = 5 * time.Second

// failure is the last connection attempt that got no answer.
type failure struct {
	err *Error
	at  time.Time
}

// pick returns a live SSH connection, connecting when none has room. With
// session true it reserves a session slot on it.
func (d *Dialer) pick(ctx context.Context, session bool) (*sshConn, error) {
	for {
		d.mu.Lock()
		if d.closed {
			d.mu.Unlock()
			return nil, ErrClosed
		}
		if sc := d.pooledLocked(session); sc != nil {
			d.mu.Unlock()
			return sc, nil
		}
		call := d.pending
		if call == nil {
			if err := d.mayConnectLocked(); err != nil {
				d.mu.Unlock()
				return nil, err
			}
			call = d.startConnectLocked()
		}
		call.waiters++
		d.mu.Unlock()

		select {
		case <-call.done:
		case <-ctx.Done():
			d.leave(call)
			op, addr, stall := call.progress.stall(contextBound(ctx), ctx.Err())
			return nil, d.newError(Error{Op: op, Addr: addr, Err: stall, Hint: stall.hint()})
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

// pooledLocked returns a pooled connection with room, or nil. A connection
// whose transport is known to have failed is evicted on the way, before
// watch sees it end, so that no channel is opened on it and it does not
// count against MaxConnections. d.mu is held.
func (d *Dialer) pooledLocked(session bool) *sshConn {
	for i := 0; i < len(d.conns); i++ {
		sc := d.conns[i]
		if !sc.dead && sc.lostErr() != nil {
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
		return sc
	}
	return nil
}

// mayConnectLocked says why no new connection attempt may start: the
// connection bound is reached, or the last attempt got no answer a moment
// ago. d.mu is held.
func (d *Dialer) mayConnectLocked() error {
	if n := len(d.conns); n >= d.maxConns {
		return d.newError(Error{Op: OpSession, Err: ErrSessionLimit,
			Hint: fmt.Sprintf("%d SSH connections are open and each is at the server's session limit; close unused conns, raise Config.MaxConnections, raise MaxSessions in the server's sshd_config, or use TransportStreamLocal (its channels are not sessions)", n)})
	}
	f := d.failed
	if f == nil {
		return nil
	}
	ago := time.Since(f.at)
	if ago >= failFastWindow {
		d.failed = nil
		return nil
	}
	return d.newError(Error{Op: f.err.Op, Addr: f.err.Addr, Err: f.err.Err,
		Hint: fmt.Sprintf("%s (failing fast: a connection attempt got no answer %s ago; the next one starts %s after that)", f.err.Hint, ago.Round(time.Millisecond), failFastWindow)})
}

// startConnectLocked starts a connection attempt. d.mu is held and the
// Dialer is not closed.
func (d *Dialer) startConnectLocked() *connectCall {
	ctx, cancel := context.WithCancel(d.ctx)
	call := &connectCall{done: make(chan struct{}), cancel: cancel}
	call.progress.set(OpConnect, d.dest.addr(), nil)
	d.pending = call
	d.gor.start(func() {
		defer cancel()
		sc, err := d.connect(ctx, &call.progress)
		d.connected(call, sc, err)
		close(call.done)
	})
	return call
}

// connected puts the outcome of a connection attempt in place: the new
// connection in the pool, with its watch and keepalive goroutines, or the
// error (remembered when the server did not answer in time).
func (d *Dialer) connected(call *connectCall, sc *sshConn, err error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.pending == call {
		d.pending = nil
	}
	if err == nil && d.closed {
		err = ErrClosed
		sc.client.Close()
		closeClients(sc.hops)
		sc = nil
	}
	call.sc, call.err = sc, err
	if err != nil {
		d.attemptFailedLocked(err)
		return
	}
	d.failed = nil
	d.nextID++
	sc.id = d.nextID
	d.conns = append(d.conns, sc)
	d.gor.start(func() { d.watch(sc) })
	d.gor.start(func() { d.keepalive(sc) })
	d.log.Debug("dialer: SSH connection ready", "url", d.url, "conn", sc.id, "open", len(d.conns))
}

// attemptFailedLocked remembers an attempt that Config.ConnectTimeout
// ended, for failFastWindow, and says so at level Warn: the Docker client
// and net/http drop a dial's error when their own context ended first, so
// the log can be the only place that names the stage. d.mu is held.
func (d *Dialer) attemptFailedLocked(err error) {
	var e *Error
	var stall *stallError
	if !errors.As(err, &e) || !errors.As(err, &stall) || stall.bound != d.boundConnectTimeout() {
		d.log.Debug("dialer: connection attempt failed", "url", d.url, "err", err)
		return
	}
	d.failed = &failure{err: e, at: time.Now()}
	d.log.Warn("dialer: connection attempt got no answer; dials fail fast for a while", "url", d.url, "err", err, "fail_fast", failFastWindow)
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
	d.gor.start(func() { sc.client.Close() }) // under d.mu, not closed: see goroutines.add
}

func (d *Dialer) removeConnLocked(sc *sshConn) {
	for i, x := range d.conns {
		if x == sc {
			d.conns = append(d.conns[:i], d.conns[i+1:]...)
			return
		}
	}
}
