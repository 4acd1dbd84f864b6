package dialer

import (
	"sync"
	"sync/atomic"
)

// goroutines owns every goroutine a Dialer starts: Close waits for them,
// and tests count them.
//
// add must happen while the count cannot be waited on from zero: under
// Dialer.mu after checking that the Dialer is not closed, or in a goroutine
// that is itself counted (Close waits only once it has seen closed, and a
// WaitGroup must not grow from zero during Wait).
type goroutines struct {
	wg      sync.WaitGroup
	running atomic.Int64
	// parked counts goroutines left inside x/crypto after their SSH
	// connection ended: OpenChannel can block forever when it registers
	// a channel just after the connection's read loop dropped all of
	// them, because the first failed write on a dead transport reports
	// success (golang/go#57531). Such a goroutine can never be waited
	// for, so it leaves running (and Close's wait) for parked; it leaves
	// parked if x/crypto ever lets it return.
	parked atomic.Int64
}

func (g *goroutines) add() {
	g.running.Add(1)
	g.wg.Add(1)
}

func (g *goroutines) done() {
	g.running.Add(-1)
	g.wg.Done()
}

// start runs f in a counted goroutine; see add for when it may be called.
func (g *goroutines) start(f func()) {
	g.add()
	go func() {
		defer g.done()
		f()
	}()
}

// park moves a goroutine stuck in x/crypto from running to parked.
func (g *goroutines) park() {
	g.parked.Add(1)
	g.done()
}

// unpark is called by a parked goroutine that returned after all.
func (g *goroutines) unpark() { g.parked.Add(-1) }

func (g *goroutines) wait() { g.wg.Wait() }
