package sse

import (
	"errors"
	"net/http"
	"strconv"
	"time"
)

// maxEvent is the most output bytes one data event carries.
const maxEvent = 32 << 10

// eventBuf is a sending stream's memory, kept in Handler.bufs while the
// stream waits: an idle stream holds none.
type eventBuf struct {
	chunk []byte // raw output
	out   []byte // the encoded event
}

// serveStream serves GET /api/v1/terminal/stream: a new session, or, with
// a Last-Event-ID header (sent by EventSource when it reconnects), the
// resumption of one.
func (h *Handler) serveStream(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet {
		w.Header().Set("Allow", http.MethodGet)
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	if h.crossOrigin(r) {
		http.Error(w, "cross-origin request refused", http.StatusForbidden)
		return
	}
	principal := principalOf(r)
	log := h.log.With("principal", principal, "remote", r.RemoteAddr)

	if last := r.Header.Get("Last-Event-ID"); last != "" {
		id, off, err := parseEventID(last)
		if err != nil {
			http.Error(w, "malformed Last-Event-ID", http.StatusBadRequest)
			return
		}
		s := h.lookup(id, principal)
		if s == nil {
			http.Error(w, "unknown session", http.StatusNotFound)
			return
		}
		st, pos, lost, err := s.attach(off)
		switch {
		case errors.Is(err, errGone):
			http.Error(w, "unknown session", http.StatusNotFound)
			return
		case err != nil:
			http.Error(w, "malformed Last-Event-ID", http.StatusBadRequest)
			return
		}
		if lost > 0 {
			s.log.Warn("sse: resumed stream lost output", "bytes", lost)
		}
		h.stream(w, r, s, st, pos, lost, false)
		return
	}

	rows, cols := 24, 80
	if q := r.URL.Query(); q.Has("rows") || q.Has("cols") {
		var err error
		if rows, err = parseDimension([]byte(q.Get("rows"))); err == nil {
			cols, err = parseDimension([]byte(q.Get("cols")))
		}
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
	}
	s, st, status, err := h.newSession(principal, rows, cols, log)
	if err != nil {
		if status == http.StatusServiceUnavailable {
			w.Header().Set("Retry-After", "10")
		}
		http.Error(w, err.Error(), status)
		return
	}
	if h.cfg.Authenticate == nil {
		s.log.Warn("sse: unauthenticated session")
	} else {
		s.log.Info("sse: session started")
	}
	h.stream(w, r, s, st, 0, 0, true)
}

// stream sends a session's output from offset pos as events until the
// exit event, the client going away, or another stream taking over.
func (h *Handler) stream(w http.ResponseWriter, r *http.Request, s *session, st *stream, pos, lost int64, first bool) {
	exitSent := false
	defer func() { s.detach(st, exitSent) }()

	hd := w.Header()
	hd.Set("Content-Type", "text/event-stream; charset=utf-8")
	hd.Set("Cache-Control", "no-store")
	// nginx buffers responses unless told not to.
	hd.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)

	rc := http.NewResponseController(w)
	// net/http keeps a connection's write deadline for its next request
	// unless http.Server.WriteTimeout is set.
	defer rc.SetWriteDeadline(time.Time{})
	send := func(b []byte) bool {
		rc.SetWriteDeadline(time.Now().Add(h.cfg.WriteTimeout)) // not all writers support it
		if _, err := w.Write(b); err != nil {
			return false
		}
		return rc.Flush() == nil
	}

	var head []byte
	if first {
		head = append(head, "event: connectionId\ndata: "+s.id+"\n\n"...)
	}
	if lost > 0 {
		head = append(head, "event: lost\ndata: {\"bytes\":"...)
		head = strconv.AppendInt(head, lost, 10)
		head = append(head, "}\n\n"...)
	}
	if !send(head) { // flushes the headers too
		return
	}

	var beat <-chan time.Time
	var beatTimer *time.Timer
	if h.cfg.Heartbeat > 0 {
		beatTimer = time.NewTimer(h.cfg.Heartbeat)
		defer beatTimer.Stop()
		beat = beatTimer.C
	}
	done := r.Context().Done()
	for {
		s.mu.Lock()
		if s.stream != st {
			s.mu.Unlock()
			return // another stream took over
		}
		if pos < s.out.end {
			eb, _ := h.bufs.Get().(*eventBuf)
			if eb == nil {
				eb = &eventBuf{chunk: make([]byte, maxEvent)}
			}
			n := s.out.copyAt(eb.chunk, pos)
			if !s.outDone || pos+int64(n) < s.out.end {
				n = completeUTF8(eb.chunk[:n])
			}
			if n > 0 {
				s.mu.Unlock()
				pos += int64(n)
				eb.out = appendDataEvent(eb.out[:0], eb.chunk[:n], s.id, pos)
				ok := send(eb.out)
				if cap(eb.out) <= 2*maxEvent {
					h.bufs.Put(eb)
				}
				if !ok {
					return
				}
				s.mu.Lock()
				if s.stream == st {
					s.sent = pos
					s.broadcastLocked()
				}
				s.mu.Unlock()
				if beatTimer != nil {
					beatTimer.Reset(h.cfg.Heartbeat)
				}
				continue
			}
			h.bufs.Put(eb)
		}
		if s.outDone && s.exit != nil && pos == s.out.end {
			ex := *s.exit
			s.mu.Unlock()
			ev := "event: exit\ndata: {\"code\":" + strconv.Itoa(ex.code) + ",\"reason\":\"" + ex.reason + "\"}\n\n"
			exitSent = send([]byte(ev))
			return
		}
		ch := s.changed
		s.mu.Unlock()
		select {
		case <-ch:
		case <-done:
			return
		case <-beat:
			if !send([]byte(": ping\n\n")) {
				return
			}
			beatTimer.Reset(h.cfg.Heartbeat)
		}
	}
}

// appendDataEvent appends a data event: docker-ssh's two lines, then the
// id of the output offset the event ends at.
func appendDataEvent(dst, p []byte, sessionID string, end int64) []byte {
	dst = append(dst, "event: data\ndata: "...)
	dst = appendJSString(dst, p)
	dst = append(dst, "\nid: "...)
	dst = append(dst, sessionID...)
	dst = append(dst, '.')
	dst = strconv.AppendInt(dst, end, 10)
	return append(dst, "\n\n"...)
}
