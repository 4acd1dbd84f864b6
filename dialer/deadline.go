package dialer

import (
	"sync"
	"time"
)

// deadline is a settable point in time whose passing closes a channel,
// the way net.Pipe implements deadlines: Read and Write select on wait()
// next to their data channels.
type deadline struct {
	mu     sync.Mutex // guards timer and cancel
	timer  *time.Timer
	cancel chan struct{} // closed when the deadline passes
}

func newDeadline() deadline { return deadline{cancel: make(chan struct{})} }

// set sets the deadline; the zero time clears it. A time in the past makes
// wait() closed at once.
func (d *deadline) set(t time.Time) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.stopTimerLocked()

	closed := isClosed(d.cancel)
	if t.IsZero() {
		if closed {
			d.cancel = make(chan struct{})
		}
		return
	}
	if dur := time.Until(t); dur > 0 {
		if closed {
			d.cancel = make(chan struct{})
		}
		cancel := d.cancel
		d.timer = time.AfterFunc(dur, func() { close(cancel) })
		return
	}
	if !closed {
		close(d.cancel)
	}
}

// wait returns a channel that is closed when the deadline passes.
func (d *deadline) wait() chan struct{} {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.cancel
}

// stop releases the timer. A later set still works: the timer is
// forgotten, as set itself does, so set never waits for a stopped timer
// to close cancel (it would wait forever).
func (d *deadline) stop() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.stopTimerLocked()
}

// stopTimerLocked stops and forgets the timer; if it already fired, it
// waits for it to close cancel. d.mu is held.
func (d *deadline) stopTimerLocked() {
	if d.timer != nil && !d.timer.Stop() {
		<-d.cancel
	}
	d.timer = nil
}

func isClosed(c <-chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}
