package dialer

import (
	"cmp"
	"context"
	"sync"
	"time"
)

// spareMaxAge bounds how long a conn opened ahead waits to be used: the
// daemon may drop a connection that never sent a request (dockerd's
// ReadHeaderTimeout), and one used soon after it was opened is known good.
const spareMaxAge = 30 * time.Second

// spares are dial-stdio conns opened ahead of need (Config.DialAhead), so
// that a DialContext finds the remote "docker system dial-stdio" already
// started instead of waiting for a docker process to start: about 90 ms
// per conn on a small server, paid by every request that needs a new
// connection, such as each exec attach (the Docker client's hijacked
// requests never reuse one).
type spares struct {
	mu      sync.Mutex // guards ready and opening
	ready   []spare
	opening int // opens in flight
}

type spare struct {
	c  *conn
	at time.Time
}

// takeSpare returns a conn opened ahead whose remote command still runs on
// a live SSH connection, or nil. Stale ones are closed.
func (d *Dialer) takeSpare() *conn {
	d.spares.mu.Lock()
	defer d.spares.mu.Unlock()
	for len(d.spares.ready) > 0 {
		s := d.spares.ready[0]
		d.spares.ready = d.spares.ready[1:]
		if d.spareUsable(s) {
			d.log.Debug("dialer: conn opened ahead taken", "url", d.url, "conn", s.c.sc.id, "waited", time.Since(s.at))
			return s.c
		}
		s.c.Close() // never blocks: the remote command ends in the background
	}
	return nil
}

func (d *Dialer) spareUsable(s spare) bool {
	select {
	case <-s.c.exited:
		return false
	case <-s.c.closed:
		return false
	default:
	}
	d.mu.Lock()
	dead := s.c.sc.dead
	d.mu.Unlock()
	return !dead && s.c.sc.lostErr() == nil && time.Since(s.at) < spareMaxAge
}

// refill opens conns in the background until Config.DialAhead are ready
// or opening. It is called after a dial-stdio DialContext succeeded, so
// the SSH connection is up and the spares follow the demand.
func (d *Dialer) refill() {
	d.spares.mu.Lock()
	n := d.cfg.DialAhead - len(d.spares.ready) - d.spares.opening
	if n > 0 {
		d.spares.opening += n
	}
	d.spares.mu.Unlock()
	if n <= 0 {
		return
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		d.spares.mu.Lock()
		d.spares.opening -= n
		d.spares.mu.Unlock()
		return
	}
	for range n {
		d.gor.start(d.openSpare) // under d.mu, not closed: see goroutines.add
	}
}

// openSpare opens one dial-stdio conn for spares. A failure is only
// logged: the next DialContext opens its own conn and says why it cannot.
func (d *Dialer) openSpare() {
	ctx, cancel := context.WithTimeout(d.ctx, cmp.Or(max(d.connectTimeout, 0), defaultConnectTimeout))
	defer cancel()
	var c *conn
	sc, err := d.pick(ctx, true)
	if err == nil {
		c, err = d.open(ctx, sc, false)
	}
	d.spares.mu.Lock()
	d.spares.opening--
	if err == nil {
		d.spares.ready = append(d.spares.ready, spare{c: c, at: time.Now()})
	}
	d.spares.mu.Unlock()
	if err != nil {
		d.log.Debug("dialer: cannot open a conn ahead of need", "url", d.url, "err", err)
		return
	}
	d.log.Debug("dialer: conn opened ahead of need", "url", d.url, "conn", sc.id)
}
