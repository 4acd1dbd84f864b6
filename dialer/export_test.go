package dialer

import "time"

// MarkConnectionsLost records a transport failure on every pooled SSH
// connection without closing it: the moment between keepalive giving up
// (or a read failing) and the connection's end being seen, which is too
// short to hit from outside.
func MarkConnectionsLost(d *Dialer, reason error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, sc := range d.conns {
		sc.fail(reason)
	}
}

// Goroutines returns how many goroutines the Dialer runs, and how many
// x/crypto keeps parked (see goroutines.parked).
func Goroutines(d *Dialer) (running, parked int64) {
	return d.gor.running.Load(), d.gor.parked.Load()
}

// FailedAttempt reports whether a connection attempt that got no answer
// is remembered for failing fast.
func FailedAttempt(d *Dialer) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.failed != nil
}

// AgeFailedAttempt makes the remembered failed attempt older by dt.
func AgeFailedAttempt(d *Dialer, dt time.Duration) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.failed != nil {
		d.failed.at = d.failed.at.Add(-dt)
	}
}

// FailFastWindow is failFastWindow.
const FailFastWindow = failFastWindow
