package sse

import (
	"cmp"
	"context"
	"errors"
	"io"
	"log/slog"
	"sync"
	"time"
)

// Reasons a session ended, sent in the exit event.
const (
	reasonExit     = "exit"     // the process ended by itself
	reasonIdle     = "idle"     // IdleTimeout passed without input or output
	reasonShutdown = "shutdown" // the handler was closed
	reasonError    = "error"    // the terminal could not be started
	reasonGone     = "gone"     // no stream came back within Grace
)

const (
	initialRead = 4 << 10  // first read buffer: idle sessions stay small
	maxRead     = 32 << 10 // largest read buffer, reached by reads that fill it
)

var (
	errGone        = errors.New("sse: session ended")
	errFutureEvent = errors.New("sse: Last-Event-ID beyond the output")
)

// exitInfo is how a session ended.
type exitInfo struct {
	code   int // exit status; -1 when unknown
	reason string
}

// stream identifies one attached event stream by its address. It must not
// be zero-sized: pointers to zero-sized values may be equal.
type stream struct{ _ byte }

// session is one terminal and what a client needs to use it over several
// HTTP requests. Its goroutines: supervise (the lifecycle, counted in the
// handler), which runs run (start and output) and writeInput, and waits for
// both before it removes the session.
type session struct {
	h         *Handler
	id        string
	principal string
	log       *slog.Logger

	startCtx    context.Context // given to Start and Wait; cancelled when the session ends
	cancelStart context.CancelFunc
	wg          sync.WaitGroup // run and writeInput

	// mu guards everything below. changed is closed and replaced after
	// every change, waking whoever waits for one (broadcastLocked).
	mu      sync.Mutex
	changed chan struct{}

	out     ring
	sent    int64     // output offset the attached stream has sent up to
	outDone bool      // the terminal's output ended: out.end is final
	exit    *exitInfo // set after outDone, once the process status is known
	// exitSent is set when a stream delivered the exit event.
	exitSent bool

	stream   *stream   // the attached stream; nil when none
	detached time.Time // when the last stream ended
	active   time.Time // last input or output, for IdleTimeout

	ending   string // why the handler ends the session; "" while it does not
	shutdown bool   // the handler is closing

	term     Terminal // nil until started
	started  bool     // the start finished (term is nil if it failed)
	rows     int      // the size asked for most recently
	cols     int
	resized  bool // rows, cols changed while the start was in progress
	input    [][]byte
	inBytes  int  // queued and being written
	inBroken bool // a write failed: the terminal takes no more input
}

func (s *session) broadcastLocked() {
	close(s.changed)
	s.changed = make(chan struct{})
}

// waitLocked waits for the next change: it unlocks mu, waits, and locks it
// again. done may be nil.
func (s *session) waitLocked(done <-chan struct{}) bool {
	ch := s.changed
	s.mu.Unlock()
	defer s.mu.Lock()
	select {
	case <-ch:
		return true
	case <-done:
		return false
	}
}

// room returns how many bytes of output the ring can take without
// discarding bytes the attached stream has not sent yet.
func (s *session) roomLocked() int {
	return max(0, s.out.max-int(s.out.end-s.sent))
}

// acceptsInputLocked reports whether the session still takes input.
func (s *session) acceptsInputLocked() bool {
	return s.exit == nil && s.ending == "" && !s.inBroken && !(s.started && s.term == nil)
}

// supervise runs the session and ends it: when the process exits and the
// exit was delivered (or nobody came back for it within Grace), when no
// stream comes back within Grace, after IdleTimeout, or when the handler
// closes. Then it closes the terminal, waits for the session's goroutines
// and removes the session.
func (s *session) supervise() {
	defer s.h.leave()
	s.wg.Add(2)
	go s.run()
	go s.writeInput()

	grace, idle := s.h.cfg.Grace, s.h.cfg.IdleTimeout
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	for {
		s.mu.Lock()
		now := time.Now()
		wait := time.Duration(-1)
		soonest := func(d time.Duration) {
			if wait < 0 || d < wait {
				wait = max(d, 0)
			}
		}
		if s.exit != nil {
			if s.exitSent || s.stream == nil && (s.shutdown || now.Sub(s.detached) >= grace) {
				s.mu.Unlock()
				break
			}
			if s.stream == nil {
				soonest(grace - now.Sub(s.detached))
			}
		} else if s.ending == "" {
			reason := ""
			switch {
			case s.shutdown:
				reason = reasonShutdown
			case s.stream == nil && now.Sub(s.detached) >= grace:
				reason = reasonGone
			case idle > 0 && now.Sub(s.active) >= idle:
				reason = reasonIdle
			}
			if reason != "" {
				s.ending = reason
				term := s.term
				s.broadcastLocked()
				s.mu.Unlock()
				s.log.Info("sse: ending session", "reason", reason)
				s.cancelStart()
				if term != nil {
					term.Close()
				}
				continue
			}
			if s.stream == nil {
				soonest(grace - now.Sub(s.detached))
			}
			if idle > 0 {
				soonest(idle - now.Sub(s.active))
			}
		}
		ch := s.changed
		s.mu.Unlock()
		if wait >= 0 {
			timer.Reset(wait)
		}
		select {
		case <-ch:
		case <-timer.C:
		}
		timer.Stop()
	}

	s.mu.Lock()
	s.ending = cmp.Or(s.ending, reasonExit)
	term, exit := s.term, s.exit
	s.broadcastLocked()
	s.mu.Unlock()
	s.cancelStart()
	if term != nil {
		term.Close()
	}
	s.wg.Wait()
	s.h.remove(s)
	s.log.Info("sse: session ended", "reason", exit.reason, "status", exit.code)
}

// run starts the terminal, copies its output into the ring and records the
// exit status.
func (s *session) run() {
	defer s.wg.Done()
	s.mu.Lock()
	rows, cols := s.rows, s.cols
	s.mu.Unlock()

	term, err := s.h.cfg.Start(s.startCtx, s.principal, rows, cols)
	if err == nil && term == nil {
		err = errors.New("sse: StartFunc returned no terminal")
	}
	s.mu.Lock()
	s.started = true
	if err != nil {
		s.outDone = true
		s.exit = &exitInfo{code: -1, reason: cmp.Or(s.ending, reasonError)}
		s.broadcastLocked()
		s.mu.Unlock()
		s.log.Error("sse: cannot start the terminal", "err", err)
		return
	}
	s.term = term
	ending := s.ending
	resize := s.resized && (s.rows != rows || s.cols != cols)
	rows, cols = s.rows, s.cols
	s.broadcastLocked()
	s.mu.Unlock()
	if ending != "" {
		// Ended while starting: supervise closed no terminal yet.
		term.Close()
	} else if resize {
		if err := term.Resize(s.startCtx, rows, cols); err != nil {
			s.log.Warn("sse: resize failed", "err", err)
		}
	}

	s.copyOutput(term)

	code := 0
	if err := term.Wait(s.startCtx); err != nil {
		code = -1
		var coder interface{ ExitCode() int }
		if errors.As(err, &coder) {
			code = coder.ExitCode()
		} else {
			s.log.Debug("sse: exit status unknown", "err", err)
		}
	}
	s.mu.Lock()
	s.exit = &exitInfo{code: code, reason: cmp.Or(s.ending, reasonExit)}
	s.broadcastLocked()
	s.mu.Unlock()
}

// copyOutput reads the terminal into the ring, never faster than the
// attached stream sends it: when the ring has no room, it does not read,
// and the process blocks on its terminal.
func (s *session) copyOutput(term Terminal) {
	buf := make([]byte, initialRead)
	for {
		s.mu.Lock()
		for s.roomLocked() == 0 && s.ending == "" {
			s.waitLocked(nil)
		}
		n := len(buf)
		if s.ending == "" {
			n = min(n, s.roomLocked())
		}
		s.mu.Unlock()

		k, err := term.Read(buf[:n])
		if k > 0 {
			s.mu.Lock()
			// The room can shrink during the read: a stream that resumed
			// from further back has more to send before these bytes. Wait
			// for it rather than drop them. Only while ending is output
			// beyond the room dropped, so that the terminal can finish.
			for s.roomLocked() < k && s.ending == "" {
				s.waitLocked(nil)
			}
			s.out.write(buf[:min(k, s.roomLocked())])
			s.active = time.Now()
			s.broadcastLocked()
			s.mu.Unlock()
		}
		if err != nil {
			if !errors.Is(err, io.EOF) {
				s.log.Debug("sse: terminal output ended", "err", err)
			}
			break
		}
		if k == len(buf) && len(buf) < maxRead {
			buf = make([]byte, 2*len(buf))
		}
	}
	s.mu.Lock()
	s.outDone = true
	s.broadcastLocked()
	s.mu.Unlock()
}

// writeInput writes queued input to the terminal once it has started, in
// the order it was sent.
func (s *session) writeInput() {
	defer s.wg.Done()
	var buf []byte
	for {
		s.mu.Lock()
		for s.acceptsInputLocked() && (!s.started || len(s.input) == 0) {
			s.waitLocked(nil)
		}
		if !s.acceptsInputLocked() {
			s.input = nil
			s.broadcastLocked()
			s.mu.Unlock()
			return
		}
		buf = buf[:0]
		for _, p := range s.input {
			buf = append(buf, p...)
		}
		clear(s.input)
		s.input = s.input[:0]
		term := s.term
		s.mu.Unlock()

		_, err := term.Write(buf)

		s.mu.Lock()
		s.inBytes -= len(buf)
		if err != nil {
			s.inBroken = true
		}
		s.broadcastLocked()
		s.mu.Unlock()
		if err != nil {
			s.log.Debug("sse: terminal input failed", "err", err)
		}
		if cap(buf) > maxRead {
			buf = nil // do not keep a large paste's buffer
		}
	}
}

// send queues p for the terminal, waiting while the queue is full. The
// queue holds at most maxQueue bytes, or one item of any size.
func (s *session) send(ctx context.Context, p []byte, maxQueue int) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for {
		if !s.acceptsInputLocked() {
			return errGone
		}
		if s.inBytes == 0 || s.inBytes+len(p) <= maxQueue {
			break
		}
		if !s.waitLocked(ctx.Done()) {
			return ctx.Err()
		}
	}
	if len(p) == 0 {
		return nil
	}
	s.input = append(s.input, p)
	s.inBytes += len(p)
	s.active = time.Now()
	s.broadcastLocked()
	return nil
}

// resize resizes the terminal, or remembers the size for when it has
// started.
func (s *session) resize(ctx context.Context, rows, cols int) error {
	s.mu.Lock()
	if !s.acceptsInputLocked() {
		s.mu.Unlock()
		return errGone
	}
	s.active = time.Now()
	s.rows, s.cols = rows, cols
	s.broadcastLocked()
	if !s.started {
		s.resized = true
		s.mu.Unlock()
		return nil
	}
	term := s.term
	s.mu.Unlock()
	return term.Resize(ctx, rows, cols)
}

// attach makes a new stream the session's only one, resuming after output
// offset off (off < 0: a new session's first stream, from the start). It
// returns where the stream starts and how many bytes are lost because the
// ring no longer holds them.
func (s *session) attach(off int64) (st *stream, pos, lost int64, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.exitSent {
		return nil, 0, 0, errGone
	}
	pos = max(off, 0)
	if pos > s.out.end {
		return nil, 0, 0, errFutureEvent
	}
	if pos < s.out.start {
		lost = s.out.start - pos
		pos = s.out.start
		var head [3]byte
		k := skipContinuation(head[:s.out.copyAt(head[:], pos)])
		pos += int64(k)
		lost += int64(k)
	}
	st = &stream{}
	s.stream = st // an older stream sees this and ends
	s.sent = pos
	s.broadcastLocked()
	return st, pos, lost, nil
}

// detach ends st's attachment, if it still is attached. exitSent reports
// that it delivered the exit event.
func (s *session) detach(st *stream, exitSent bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stream != st {
		return
	}
	s.stream = nil
	s.detached = time.Now()
	s.exitSent = s.exitSent || exitSent
	s.broadcastLocked()
}
