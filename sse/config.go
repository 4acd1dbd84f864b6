package sse

import (
	"cmp"
	"context"
	"io"
	"log/slog"
	"net/http"
	"time"
)

// Terminal is the terminal of one web session: what the handler needs of a
// process running under a pseudo-terminal. execbridge's Process satisfies
// it.
//
// Read, Write and Resize may be called concurrently with one another; Close
// may be called at any time, also concurrently, and must unblock Read and
// Write.
type Terminal interface {
	// Read reads what the terminal shows. It returns io.EOF (or another
	// error) once the terminal has no more output.
	io.Reader
	// Write types into the terminal.
	io.Writer
	// Resize changes the terminal size.
	Resize(ctx context.Context, rows, cols int) error
	// Wait waits for the process to end, after Read returned an error. It
	// returns nil for exit status 0; for another status, an error with a
	// method ExitCode() int (as os/exec's and execbridge's ExitError
	// have) found by errors.As; any other error means the status is
	// unknown.
	Wait(ctx context.Context) error
	// Close ends the process (and what it started) and releases the
	// terminal. It may be called more than once.
	Close() error
}

// StartFunc starts the terminal of a new session for principal (as
// returned by Config.Authenticate) with the initial size rows x cols.
// ctx is cancelled when the session ends while the start is still in
// progress; once StartFunc has returned, the terminal lives until the
// handler closes it or it ends by itself.
type StartFunc func(ctx context.Context, principal string, rows, cols int) (Terminal, error)

// AuthFunc authenticates a request and returns its principal: the name
// sessions are bound to. Any error answers 401 Unauthorized; an *AuthError
// adds its challenge to the response. It is called for every request,
// each keystroke's POST included.
type AuthFunc func(r *http.Request) (principal string, err error)

// Config configures a Handler. Every field's zero value is usable except
// Start and the choice between Authenticate and Unauthenticated.
type Config struct {
	// Start starts a new session's terminal. It must not be nil.
	Start StartFunc

	// Authenticate authenticates every request; see BasicAuth and
	// BearerAuth. nil is an error unless Unauthenticated is set. The
	// page itself (it holds no data) is served without credentials
	// unless the challenge is HTTP Basic, whose 401 on the page makes the
	// browser show its login dialog: under other schemes the page is
	// where the user logs in (BearerAuth's "#token=").
	Authenticate AuthFunc
	// Unauthenticated serves everyone who reaches the handler, as
	// principal "" (so MaxSessionsPerPrincipal bounds them all together).
	// It is what docker-ssh does: whoever reaches the port gets a shell.
	// New logs an error-level warning when it is set, and every new
	// session logs a warning.
	Unauthenticated bool

	// AllowedOrigins lists origins ("https://ops.example.com") besides the
	// handler's own whose pages may create sessions and type into them.
	// Requests from browsers carry Sec-Fetch-Site or Origin, and one from
	// another origin is refused with 403 unless listed; requests without
	// either header (curl, scripts) pass. nil allows the same origin only.
	AllowedOrigins []string

	// Heartbeat is how often an idle stream gets an SSE comment line, so
	// proxies and browsers keep it open and a dead client is noticed.
	// Zero means 15 seconds; negative turns heartbeats off.
	Heartbeat time.Duration
	// Grace is how long a session outlives its dropped stream, waiting
	// for the client to reconnect and resume. Zero ends the session as
	// soon as its stream ends, as docker-ssh does: then an automatic
	// reconnect finds no session. 30 seconds covers network blips.
	// Negative means zero.
	Grace time.Duration
	// IdleTimeout ends a session that has had no input and no output for
	// that long. Zero (or negative) means no idle timeout.
	IdleTimeout time.Duration
	// WriteTimeout bounds each write to a stream; a client that takes
	// longer is treated as gone (its session waits Grace for a
	// reconnect). Zero (or negative) means 30 seconds. Each write moves
	// the connection's write deadline, so http.Server.WriteTimeout does
	// not end a stream as long as Heartbeat is shorter than it.
	WriteTimeout time.Duration

	// MaxSessions bounds the sessions alive at once (503 beyond it).
	// Zero means 256; negative means no limit.
	MaxSessions int
	// MaxSessionsPerPrincipal bounds the sessions of one principal (429
	// beyond it). Zero means 16; negative means no limit.
	MaxSessionsPerPrincipal int

	// BufferSize is each session's output buffer in bytes: output not yet
	// sent plus recent output kept for a resume. When the client does not
	// keep up, the terminal is read no faster than the buffer drains; a
	// resume from further back than the buffer holds gets a "lost" event.
	// It grows on demand up to this size. Zero means 1 MiB; the minimum
	// is 4 KiB.
	BufferSize int
	// MaxBodyBytes bounds a POST body, and so the input of one send; the
	// input waiting for the terminal is bounded by the same amount. Zero
	// (or negative) means 128 KiB (docker-ssh's body-parser took 100 kB).
	MaxBodyBytes int

	// XtermBaseURL is where the page loads xterm.js from: the files are
	// BASE/@xterm/xterm@VERSION/lib/xterm.js, .../css/xterm.css and
	// BASE/@xterm/addon-fit@VERSION/lib/addon-fit.js, checked against
	// Subresource Integrity hashes of the pinned versions (XtermVersion,
	// XtermFitVersion). It may be a path on the same server. Empty means
	// DefaultXtermBaseURL, a public CDN that mirrors npm.
	XtermBaseURL string

	// Logger receives the handler's log. nil means slog.Default().
	Logger *slog.Logger
}

// Defaults for the zero values of Config.
const (
	DefaultHeartbeat       = 15 * time.Second
	DefaultWriteTimeout    = 30 * time.Second
	DefaultMaxSessions     = 256
	DefaultMaxPerPrincipal = 16
	DefaultBufferSize      = 1 << 20
	DefaultMaxBodyBytes    = 128 << 10
	// DefaultXtermBaseURL serves npm packages by name and version.
	DefaultXtermBaseURL = "https://cdn.jsdelivr.net/npm"

	minBufferSize = 4 << 10
)

// settings is a Config with the defaults applied.
type settings struct {
	Config
	maxSessions, maxPerPrincipal int // <0: no limit
}

func (c *Config) settings() settings {
	s := settings{Config: *c}
	s.Heartbeat = cmp.Or(s.Heartbeat, DefaultHeartbeat)
	if s.WriteTimeout <= 0 {
		s.WriteTimeout = DefaultWriteTimeout
	}
	s.Grace = max(s.Grace, 0)
	s.maxSessions = cmp.Or(s.MaxSessions, DefaultMaxSessions)
	s.maxPerPrincipal = cmp.Or(s.MaxSessionsPerPrincipal, DefaultMaxPerPrincipal)
	s.BufferSize = max(cmp.Or(s.BufferSize, DefaultBufferSize), minBufferSize)
	if s.MaxBodyBytes <= 0 {
		s.MaxBodyBytes = DefaultMaxBodyBytes
	}
	s.XtermBaseURL = cmp.Or(s.XtermBaseURL, DefaultXtermBaseURL)
	if s.Logger == nil {
		s.Logger = slog.Default()
	}
	return s
}
