package redact

import (
	"io"
	"math"
)

// ival is a masked interval [s, e) of the input, in absolute byte
// positions, replaced by the mask of secret sec.
type ival struct {
	s, e int64
	sec  int32
}

// engine is the streaming core shared by Writer, String and Bytes: a
// literal stage (the automaton over registered secrets and their encoded
// forms) feeding a pattern stage (the built-in patterns), appending to out.
//
// Literal stage: every occurrence of every pattern is found, overlapping
// ones included; the bytes they cover are merged into runs of overlapping
// intervals and each run is replaced by one mask (the mask of the first
// match of the run). A byte is released once no future match can cover
// it: future matches start no earlier than pos-depth, where depth is the
// length of the automaton state's string, at most the longest pattern. So
// the stage holds back at most that many bytes, and fewer whenever the
// recent bytes are not the start of a pattern.
type engine struct {
	r    *Redactor
	snap *snapshot
	st   int32 // automaton state, premultiplied by stride
	pos  int64 // bytes consumed
	// outPos is the position up to which the literal stage has released
	// output; bytes in [outPos, pos) are held back (or lie inside a pending
	// masked interval).
	outPos int64
	// win holds the input bytes [pos-len(win), pos); its start is the
	// release boundary pos-depth of the last scan.
	win, win2, resc []byte
	// ivs are the masked intervals not released yet, sorted and disjoint.
	ivs []ival

	patterns bool
	pat      patStage
	out      []byte
}

func newEngine(r *Redactor, patterns bool) *engine {
	e := &engine{r: r, patterns: patterns}
	if patterns {
		e.pat.init(r, &e.out)
	}
	return e
}

// write consumes p. Output that is final is appended to e.out.
func (e *engine) write(p []byte) {
	if snap := e.r.snap.Load(); snap != e.snap {
		e.resync(snap)
	}
	e.scan(p)
}

// resync switches to a newer snapshot. The held-back window was matched
// against the old automaton only, so it is scanned again from the root of
// the new one: a new secret that starts inside the window is still caught.
// One that started before the window has already been released in part
// and is not (see the Writer documentation).
func (e *engine) resync(snap *snapshot) {
	old := e.snap
	e.snap = snap
	a := snap.auto
	if a == nil {
		return
	}
	if cap(e.win) < a.maxLen {
		nw := make([]byte, len(e.win), a.maxLen)
		copy(nw, e.win)
		e.win = nw
		e.win2 = make([]byte, 0, a.maxLen)
	}
	e.st = 0
	if old == nil || old.auto == nil || len(e.win) == 0 {
		return
	}
	e.resc = append(e.resc[:0], e.win...)
	e.pos -= int64(len(e.win))
	e.win = e.win[:0]
	e.scan(e.resc)
}

func (e *engine) scan(p []byte) {
	a := e.snap.auto
	if a == nil {
		e.emit(p)
		e.pos += int64(len(p))
		e.outPos = e.pos
		return
	}
	pos0 := e.pos
	st := e.st
	trans := a.trans
	cls := &a.cls
	for i := 0; i < len(p); {
		t := trans[st+int32(cls[p[i]])]
		i++
		if t < 0 {
			t &= math.MaxInt32
			e.match(a, pos0+int64(i), t)
		}
		st = t
		if a.skip == nil || i < 4 || a.depth[st/a.stride] > 3 {
			continue
		}
		// The state's string is at most 3 bytes long. Step over every
		// position whose 4-byte window starts no pattern: the state
		// there is still at most 3 bytes deep, and no match ends there.
		j := i
		skip := a.skip
		g := uint32(p[j-3])<<8 | uint32(p[j-2])<<16 | uint32(p[j-1])<<24
		for ; j < len(p); j++ {
			g = g>>8 | uint32(p[j])<<24 // p[j-3:j+1], little endian
			if h := skipHash(g); skip[h/64]&(1<<(h%64)) != 0 {
				break
			}
		}
		if j == i {
			continue
		}
		// Recompute the state from the root over the last 3 bytes:
		// with a depth of at most 3 it is determined by them, and no
		// pattern (4 bytes or more) ends inside them.
		st = 0
		for _, c := range p[j-3 : j] {
			st = trans[st+int32(cls[c])] & math.MaxInt32
		}
		i = j
	}
	e.st = st
	e.pos = pos0 + int64(len(p))
	b := e.pos - int64(a.depth[st/a.stride])
	e.release(b, p, pos0)
	e.keep(b, p, pos0)
}

// match records the longest pattern ending at end in state t, merging it
// with the pending intervals it overlaps.
func (e *engine) match(a *automaton, end int64, t int32) {
	si := t / a.stride
	s := end - int64(a.mlen[si])
	sec := a.msec[si]
	for n := len(e.ivs); n > 0 && s < e.ivs[n-1].e; n = len(e.ivs) {
		last := e.ivs[n-1]
		s = min(s, last.s)
		sec = last.sec // the run keeps the mask of its first match
		e.ivs = e.ivs[:n-1]
	}
	e.ivs = append(e.ivs, ival{s: s, e: end, sec: sec})
}

// release emits everything before b that is final: plain bytes and the
// masks of intervals that end at or before b. p is the chunk just scanned,
// starting at absolute position pos0; older bytes are in e.win.
func (e *engine) release(b int64, p []byte, pos0 int64) {
	cur := e.outPos
	k := 0
	for ; k < len(e.ivs); k++ {
		iv := e.ivs[k]
		if iv.e > b {
			break // a later match may still extend it
		}
		e.plain(cur, iv.s, p, pos0)
		e.emitMask(e.snap.masks[iv.sec])
		cur = iv.e
	}
	lim := b
	if k < len(e.ivs) && e.ivs[k].s < lim {
		lim = e.ivs[k].s
	}
	if cur < lim {
		e.plain(cur, lim, p, pos0)
		cur = lim
	}
	e.outPos = cur
	e.ivs = e.ivs[:copy(e.ivs, e.ivs[k:])]
}

// plain emits input bytes [from, to).
func (e *engine) plain(from, to int64, p []byte, pos0 int64) {
	if from >= to {
		return
	}
	winStart := pos0 - int64(len(e.win))
	if from < pos0 {
		e.emit(e.win[from-winStart : min(to, pos0)-winStart])
	}
	if to > pos0 {
		e.emit(p[max(from, pos0)-pos0 : to-pos0])
	}
}

// keep makes e.win hold the input bytes [b, pos).
func (e *engine) keep(b int64, p []byte, pos0 int64) {
	if b >= pos0 {
		e.win = append(e.win[:0], p[b-pos0:]...)
		return
	}
	winStart := pos0 - int64(len(e.win))
	nw := append(e.win2[:0], e.win[b-winStart:]...)
	nw = append(nw, p...)
	e.win, e.win2 = nw, e.win[:0]
}

// flush releases everything held back, as at the end of the input: the
// literal stage forgets its partial matches and the pattern stage ends
// what it was holding (see Writer.Flush).
func (e *engine) flush() {
	if e.snap != nil && e.snap.auto != nil {
		e.release(e.pos, nil, e.pos)
		e.win = e.win[:0]
		e.st = 0
	}
	if e.patterns {
		e.pat.flush()
	}
}

// finish ends the input.
func (e *engine) finish() { e.flush() }

func (e *engine) emit(b []byte) {
	if len(b) == 0 {
		return
	}
	if e.patterns {
		e.pat.feed(b)
		return
	}
	e.out = append(e.out, b...)
}

func (e *engine) emitMask(m []byte) {
	if e.patterns {
		e.pat.token(m)
		return
	}
	e.out = append(e.out, m...)
}

// Writer is an io.WriteCloser that writes to an underlying writer what is
// written to it, with secrets masked. It catches a registered secret (or
// an encoded form) split across any number of Writes: it holds back the
// bytes that may be the start of one, at most the length of the longest
// registered form minus one, and the bytes a pending built-in pattern
// needs (see the package documentation for the bounds). Everything else is
// written through in the same Write, in order, in one call to the
// underlying writer. It never reorders bytes and never drops any that are
// not masked.
//
// A secret added to the Redactor while a Writer streams is matched from
// the Writer's next Write on, including in the bytes it still holds back;
// an occurrence whose start was already written is not caught.
//
// A Writer is not safe for concurrent use; use one per stream.
type Writer struct {
	e      engine
	w      io.Writer
	err    error
	closed bool
}

// NewWriter returns a Writer that writes the redacted stream to w. Close
// it (or Flush it) to write what it holds back; Close does not close w.
func (r *Redactor) NewWriter(w io.Writer) *Writer {
	wr := &Writer{w: w}
	wr.e.r = r
	wr.e.patterns = !r.noPatterns
	if wr.e.patterns {
		wr.e.pat.init(r, &wr.e.out)
	}
	return wr
}

// Write redacts p and writes what is final to the underlying writer. It
// returns len(p) and a nil error, or 0 and the error of the underlying
// writer (which the Writer then keeps returning: once output is lost the
// stream cannot be resumed safely).
func (w *Writer) Write(p []byte) (int, error) {
	if w.closed {
		return 0, ErrClosed
	}
	if w.err != nil {
		return 0, w.err
	}
	w.e.write(p)
	if err := w.drain(); err != nil {
		return 0, err
	}
	return len(p), nil
}

// Flush writes out everything held back. It is a cut in the stream: a
// secret or a pattern split across a Flush is not recognized as a whole
// (its first part is already written), except that a value or private key
// block being masked stays masked until it ends. Call it where the stream
// pauses (an idle interactive session), not between arbitrary Writes.
func (w *Writer) Flush() error {
	if w.closed {
		return ErrClosed
	}
	if w.err != nil {
		return w.err
	}
	w.e.flush()
	return w.drain()
}

// Close flushes and makes later Writes fail with ErrClosed. It does not
// close the underlying writer. Closing twice returns nil.
func (w *Writer) Close() error {
	if w.closed {
		return nil
	}
	err := w.Flush()
	w.closed = true
	return err
}

func (w *Writer) drain() error {
	if len(w.e.out) == 0 {
		return nil
	}
	n, err := w.w.Write(w.e.out)
	if err == nil && n < len(w.e.out) {
		err = io.ErrShortWrite
	}
	w.e.out = w.e.out[:0]
	if err != nil {
		w.err = err
	}
	return err
}
