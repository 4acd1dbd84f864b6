package sse

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"strings"
	"sync"
	"time"
)

// Handler serves the web terminal: the page at its root and docker-ssh's
// API under /api/v1/terminal/. It may be mounted under any prefix with
// http.StripPrefix. Create it with New; Close or Shutdown it to end every
// session.
type Handler struct {
	cfg  settings
	log  *slog.Logger
	mux  *http.ServeMux
	cop  *http.CrossOriginProtection
	page []byte // the rendered index.html
	csp  string
	bufs sync.Pool // *eventBuf

	// mu guards the fields below.
	mu           sync.Mutex
	sessions     map[string]*session
	perPrincipal map[string]int
	closed       bool
	active       int           // requests in ServeHTTP plus session supervisors
	idle         chan struct{} // closed when closed is set and active is 0
}

// New returns a Handler for cfg. It fails when cfg is nil, has no Start, has
// neither Authenticate nor Unauthenticated, or lists a malformed origin.
func New(cfg *Config) (*Handler, error) {
	if cfg == nil || cfg.Start == nil {
		return nil, errors.New("sse: Config.Start is required")
	}
	if cfg.Authenticate == nil && !cfg.Unauthenticated {
		return nil, errors.New("sse: Config.Authenticate is required (or set Unauthenticated to serve everyone)")
	}
	s := cfg.settings()
	h := &Handler{
		cfg:          s,
		log:          s.Logger,
		cop:          http.NewCrossOriginProtection(),
		sessions:     make(map[string]*session),
		perPrincipal: make(map[string]int),
		idle:         make(chan struct{}),
	}
	for _, o := range s.AllowedOrigins {
		if err := h.cop.AddTrustedOrigin(o); err != nil {
			return nil, fmt.Errorf("sse: AllowedOrigins: %w", err)
		}
	}
	var err error
	if h.page, h.csp, err = renderPage(s.XtermBaseURL); err != nil {
		return nil, err
	}
	if s.Authenticate == nil {
		h.log.Error("sse: the web terminal is served WITHOUT AUTHENTICATION: anyone who reaches it gets a shell")
	}

	h.mux = http.NewServeMux()
	h.mux.HandleFunc("GET /{$}", h.servePage)
	h.mux.HandleFunc("GET /index.html", h.servePage)
	h.mux.HandleFunc("GET /term.js", serveStatic)
	h.mux.HandleFunc("GET /term.css", serveStatic)
	// Express, which docker-ssh uses, matches a path with and without a
	// trailing slash.
	for _, p := range []string{"", "/{$}"} {
		h.mux.HandleFunc("/api/v1/terminal/stream"+p, h.serveStream)
		h.mux.HandleFunc("POST /api/v1/terminal/send/{id}"+p, h.serveSend)
		h.mux.HandleFunc("POST /api/v1/terminal/resize-window/{id}"+p, h.serveResize)
	}
	return h, nil
}

// principalKey is the context key of a request's principal.
type principalKey struct{}

// ServeHTTP authenticates the request and serves it.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !h.enter() {
		http.Error(w, "shutting down", http.StatusServiceUnavailable)
		return
	}
	defer h.leave()
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("Referrer-Policy", "no-referrer")

	principal := ""
	if h.cfg.Authenticate != nil {
		p, err := h.cfg.Authenticate(r)
		if err != nil {
			challenge := ""
			if ae := (*AuthError)(nil); errors.As(err, &ae) {
				challenge = ae.Challenge
			}
			if !errors.Is(err, ErrNoCredentials) {
				h.log.Warn("sse: authentication failed", "remote", r.RemoteAddr, "err", err)
			}
			// The page holds no data. Under HTTP Basic, refusing it
			// makes the browser show its login dialog; under any other
			// scheme the page is the login (it reads #token=, also to
			// replace a stale token), so it is served all the same.
			if isPage(r) && !isBasic(challenge) {
				h.mux.ServeHTTP(w, r)
				return
			}
			if challenge != "" {
				w.Header().Set("WWW-Authenticate", challenge)
			}
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		principal = p
	}
	if r.URL.Path == "" {
		// Mounted with http.StripPrefix("/term", h) and asked for
		// "/term": the page's relative URLs need "/term/". A relative
		// redirect keeps whatever prefix the request came through.
		path, _, _ := strings.Cut(r.RequestURI, "?")
		target := path[strings.LastIndexByte(path, '/')+1:] + "/"
		if r.URL.RawQuery != "" {
			target += "?" + r.URL.RawQuery
		}
		// Not http.Redirect: it would make the URL absolute from the
		// stripped path.
		w.Header().Set("Location", "./"+target)
		w.WriteHeader(http.StatusMovedPermanently)
		return
	}
	h.mux.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), principalKey{}, principal)))
}

// isPage reports whether r asks for the page or its script or style.
func isPage(r *http.Request) bool {
	switch r.URL.Path {
	case "/", "/index.html", "/term.js", "/term.css":
		return r.Method == http.MethodGet || r.Method == http.MethodHead
	}
	return false
}

// isBasic reports whether challenge is an HTTP Basic one (RFC 7617).
func isBasic(challenge string) bool {
	scheme, _, _ := strings.Cut(challenge, " ")
	return strings.EqualFold(scheme, "Basic")
}

// enter counts a request or session in, unless the handler is closed.
func (h *Handler) enter() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return false
	}
	h.active++
	return true
}

func (h *Handler) leave() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.leaveLocked()
}

func (h *Handler) leaveLocked() {
	if h.active--; h.active == 0 && h.closed {
		close(h.idle)
	}
}

// Close ends every session (each attached stream gets the remaining output
// and an exit event with reason "shutdown"), refuses new requests with 503,
// and returns once every session and request in progress has finished.
// Writes to a stalled client give up after WriteTimeout, so Close returns
// in bounded time.
func (h *Handler) Close() error {
	return h.Shutdown(context.Background())
}

// Shutdown is Close that stops waiting when ctx is done, returning
// ctx.Err(); the sessions are ended all the same and finish in the
// background.
func (h *Handler) Shutdown(ctx context.Context) error {
	h.mu.Lock()
	if !h.closed {
		h.closed = true
		if h.active == 0 {
			close(h.idle)
		}
		if n := len(h.sessions); n > 0 {
			h.log.Info("sse: shutting down", "sessions", n)
		}
	}
	sessions := make([]*session, 0, len(h.sessions))
	for _, s := range h.sessions {
		sessions = append(sessions, s)
	}
	h.mu.Unlock()
	for _, s := range sessions {
		s.mu.Lock()
		s.shutdown = true
		s.broadcastLocked()
		s.mu.Unlock()
	}
	// A context that has already ended stops the waiting before it starts,
	// whatever the sessions do meanwhile.
	if err := ctx.Err(); err != nil {
		return err
	}
	select {
	case <-h.idle:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Sessions returns the number of sessions alive.
func (h *Handler) Sessions() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.sessions)
}

// newSession creates a session for principal, attached to a new stream,
// and starts its supervisor.
func (h *Handler) newSession(principal string, rows, cols int, log *slog.Logger) (*session, *stream, int, error) {
	var b [16]byte
	rand.Read(b[:]) // never fails (crypto/rand, Go 1.24)
	id := hex.EncodeToString(b[:])

	h.mu.Lock()
	defer h.mu.Unlock()
	switch {
	case h.closed:
		return nil, nil, http.StatusServiceUnavailable, errors.New("shutting down")
	case h.cfg.maxSessions > 0 && len(h.sessions) >= h.cfg.maxSessions:
		return nil, nil, http.StatusServiceUnavailable, errors.New("too many sessions")
	case h.cfg.maxPerPrincipal > 0 && h.perPrincipal[principal] >= h.cfg.maxPerPrincipal:
		return nil, nil, http.StatusTooManyRequests, errors.New("too many sessions for this user")
	}
	now := time.Now()
	s := &session{
		h:         h,
		id:        id,
		principal: principal,
		// The id is a capability of its owner: log only its first half.
		log:     log.With("session", id[:16]),
		changed: make(chan struct{}),
		out:     ring{max: h.cfg.BufferSize},
		active:  now,
		rows:    rows,
		cols:    cols,
		stream:  &stream{},
	}
	s.startCtx, s.cancelStart = context.WithCancel(context.Background())
	h.sessions[id] = s
	h.perPrincipal[principal]++
	h.active++
	go s.supervise()
	return s, s.stream, 0, nil
}

// remove forgets a session that has ended.
func (h *Handler) remove(s *session) {
	h.mu.Lock()
	defer h.mu.Unlock()
	delete(h.sessions, s.id)
	if h.perPrincipal[s.principal]--; h.perPrincipal[s.principal] <= 0 {
		delete(h.perPrincipal, s.principal)
	}
}

// lookup returns the session id of principal; another principal's session
// is not found, exactly like one that does not exist.
func (h *Handler) lookup(id, principal string) *session {
	h.mu.Lock()
	defer h.mu.Unlock()
	s := h.sessions[id]
	if s == nil || s.principal != principal {
		return nil
	}
	return s
}

func principalOf(r *http.Request) string {
	p, _ := r.Context().Value(principalKey{}).(string)
	return p
}

// crossOrigin reports whether a browser sent r from a page of another
// origin that AllowedOrigins does not list. A request without
// Sec-Fetch-Site and Origin (curl, scripts) is not cross-origin.
func (h *Handler) crossOrigin(r *http.Request) bool {
	if r.Method == http.MethodPost {
		return h.cop.Check(r) != nil
	}
	// CrossOriginProtection lets safe methods through. The stream's GET
	// starts a process, so it gets the checks of a POST: a page of
	// another site must not start shells with the user's credentials.
	post := *r
	post.Method = http.MethodPost
	return h.cop.Check(&post) != nil
}

// serveSend types the form field data into the terminal.
func (h *Handler) serveSend(w http.ResponseWriter, r *http.Request) {
	s, body, ok := h.postPrologue(w, r)
	if !ok {
		return
	}
	data, err := formField(body, "data")
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	switch err := s.send(r.Context(), data, h.cfg.MaxBodyBytes); {
	case errors.Is(err, errGone):
		http.Error(w, "unknown session", http.StatusNotFound)
	case err != nil: // the client went away
		http.Error(w, "request cancelled", http.StatusServiceUnavailable)
	default:
		// 200 with an empty body, as docker-ssh answers.
		w.Header().Set("Cache-Control", "no-store")
		w.WriteHeader(http.StatusOK)
	}
}

// serveResize resizes the terminal to the form fields rows and cols and
// answers {"rows":R,"cols":C} as docker-ssh does.
func (h *Handler) serveResize(w http.ResponseWriter, r *http.Request) {
	s, body, ok := h.postPrologue(w, r)
	if !ok {
		return
	}
	rows, cols, err := formSize(body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	switch err := s.resize(r.Context(), rows, cols); {
	case errors.Is(err, errGone):
		http.Error(w, "unknown session", http.StatusNotFound)
	case err != nil:
		s.log.Warn("sse: resize failed", "err", err)
		http.Error(w, "resize failed", http.StatusInternalServerError)
	default:
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		fmt.Fprintf(w, `{"rows":%d,"cols":%d}`, rows, cols)
	}
}

func formSize(body []byte) (rows, cols int, err error) {
	rv, err := formField(body, "rows")
	if err != nil {
		return 0, 0, err
	}
	cv, err := formField(body, "cols")
	if err != nil {
		return 0, 0, err
	}
	if rows, err = parseDimension(rv); err != nil {
		return 0, 0, err
	}
	if cols, err = parseDimension(cv); err != nil {
		return 0, 0, err
	}
	return rows, cols, nil
}

// postPrologue does what both POSTs need: the Origin check, the session
// lookup (404 for a missing or foreign session) and the bounded body.
func (h *Handler) postPrologue(w http.ResponseWriter, r *http.Request) (*session, []byte, bool) {
	if h.crossOrigin(r) {
		http.Error(w, "cross-origin request refused", http.StatusForbidden)
		return nil, nil, false
	}
	s := h.lookup(r.PathValue("id"), principalOf(r))
	if s == nil {
		http.Error(w, "unknown session", http.StatusNotFound)
		return nil, nil, false
	}
	if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt != "application/x-www-form-urlencoded" {
		http.Error(w, "the body must be application/x-www-form-urlencoded", http.StatusUnsupportedMediaType)
		return nil, nil, false
	}
	body, err := readBody(w, r, h.cfg.MaxBodyBytes)
	if err != nil {
		if mbe := (*http.MaxBytesError)(nil); errors.As(err, &mbe) {
			http.Error(w, "request body too large", http.StatusRequestEntityTooLarge)
		} else {
			http.Error(w, "cannot read the request body", http.StatusBadRequest)
		}
		return nil, nil, false
	}
	return s, body, true
}

func readBody(w http.ResponseWriter, r *http.Request, limit int) ([]byte, error) {
	return io.ReadAll(http.MaxBytesReader(w, r.Body, int64(limit)))
}
