package dialer

import (
	"errors"
	"strings"
)

// Op names the stage of a dial, or the conn operation, that failed.
type Op string

// The stages reported in [Error.Op], in the order a dial goes through them.
const (
	OpParseURL  Op = "parse URL"
	OpSSHConfig Op = "read ssh config"
	OpConnect   Op = "TCP connect"
	OpHandshake Op = "SSH handshake"
	OpHostKey   Op = "verify host key"
	OpAuth      Op = "authenticate"
	OpSession   Op = "open session"
	OpCommand   Op = "remote command"
	OpRead      Op = "read"
	OpWrite     Op = "write"
)

var (
	// ErrClosed is returned by DialContext after Close. (Read and Write
	// on a closed conn, or on one whose Dialer was closed, return an
	// error that wraps net.ErrClosed or ErrConnectionLost.)
	ErrClosed = errors.New("dialer: closed")

	// ErrSessionLimit means every allowed SSH connection refused a new
	// session (sshd's MaxSessions) and Config.MaxConnections allows no
	// more connections.
	ErrSessionLimit = errors.New("dialer: all SSH connections refuse new sessions (sshd MaxSessions)")

	// ErrConnectionLost means the SSH connection under a conn ended (the
	// server went away, the link died and keepalive noticed, or Close).
	ErrConnectionLost = errors.New("dialer: SSH connection lost")
)

// Error is the error of a failed dial or conn operation. Its message names
// the redacted URL, the stage, what went wrong and what to do about it.
// It never contains the URL's password.
type Error struct {
	// Op is the stage that failed.
	Op Op
	// URL is the destination, redacted (no password).
	URL string
	// Addr is the SSH server address ("host:port") the stage talked to:
	// the destination, or a ProxyJump hop when a hop failed. Empty when
	// no address was involved.
	Addr string
	// Err is the underlying error; errors.Is and errors.As see through
	// Error to it (a *hostkeys error, context.Canceled, ...).
	Err error
	// Hint says what to do about it; may be empty.
	Hint string
	// ExitStatus is the remote command's exit status for OpCommand
	// errors, -1 when it was killed by a signal or is unknown.
	ExitStatus int
	// Stderr is the last 4 KiB of the remote command's standard error
	// for OpCommand errors.
	Stderr string

	// scrub removes registered secrets from the message; nil means none.
	scrub func(string) string
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("dialer: ")
	if e.URL != "" {
		b.WriteString(e.URL)
		b.WriteString(": ")
	}
	b.WriteString(string(e.Op))
	if e.Addr != "" {
		b.WriteString(" ")
		b.WriteString(e.Addr)
	}
	if e.Err != nil {
		b.WriteString(": ")
		b.WriteString(strings.TrimPrefix(e.Err.Error(), "dialer: "))
	}
	if e.Hint != "" {
		b.WriteString("; ")
		b.WriteString(e.Hint)
	}
	if e.Stderr != "" {
		b.WriteString("; remote stderr (last 4 KiB): ")
		b.WriteString(quoteStderr(e.Stderr))
	}
	s := dockerClientSafe.Replace(b.String())
	if e.scrub != nil {
		s = e.scrub(s)
	}
	return s
}

// dockerClientSafe rewords what the Docker client matches in the text of a
// request error (a *url.Error, itself a net.Error, whose text includes
// ours): "connection refused" or "dial unix" anywhere makes it replace the
// whole error with "Cannot connect to the Docker daemon at http://docker".
// The remote CLI prints "dial unix" when it cannot reach the daemon; the
// Stderr field keeps its exact words.
var dockerClientSafe = strings.NewReplacer("connection refused", "refused (ECONNREFUSED)", "dial unix", "unix socket dial")

func (e *Error) Unwrap() error { return e.Err }

// Error deliberately does not implement net.Error: the Docker client
// replaces any net.Error that looks like a refused connection or a timeout
// with its own "Cannot connect to the Docker daemon at http://docker",
// which would hide everything said here. A timeout is still found with
// errors.As(err, &netErr): context.DeadlineExceeded and
// os.ErrDeadlineExceeded are net.Errors, and a conn's deadline errors are
// a TimeoutError.

// TimeoutError is the error of a conn operation that hit its deadline. Its
// Timeout method reports true (os.IsTimeout(err) is true), it wraps
// os.ErrDeadlineExceeded (errors.Is), and errors.As finds the *Error inside
// it. It does not implement net.Error's deprecated Temporary method, so it
// is no net.Error itself; errors.As(err, &netErr) finds
// os.ErrDeadlineExceeded, a net.Error whose Timeout reports true.
type TimeoutError struct {
	// Err is the conn's error, whose Err is os.ErrDeadlineExceeded.
	Err *Error
}

func (e *TimeoutError) Error() string { return e.Err.Error() }

// Timeout reports true.
func (e *TimeoutError) Timeout() bool { return true }

// Unwrap returns the *Error.
func (e *TimeoutError) Unwrap() error { return e.Err }

// quoteStderr keeps the remote's stderr readable on one line: trailing
// newlines go, inner ones stay visible as " | ", and control characters
// (a remote could send terminal escapes) are replaced.
func quoteStderr(s string) string {
	s = strings.TrimRight(s, "\r\n")
	var b strings.Builder
	for _, r := range s {
		switch {
		case r == '\n':
			b.WriteString(" | ")
		case r == '\t':
			b.WriteByte(' ')
		case r < 0x20 || r == 0x7f || r == 0xfffd:
			b.WriteByte('?')
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

// netCause hides a network error from errors.As while keeping errors.Is
// (syscall.ECONNREFUSED, os.ErrDeadlineExceeded) working. The Docker
// client looks for a net.Error anywhere in the chain of a request error
// and, when it finds a refused connection or a timeout, replaces the whole
// error with "Cannot connect to the Docker daemon at http://docker",
// dropping the SSH address, the stage and the hint.
type netCause struct{ err error }

func (n *netCause) Error() string        { return n.err.Error() }
func (n *netCause) Is(target error) bool { return errors.Is(n.err, target) }

func hideNetError(err error) error {
	if err == nil {
		return nil
	}
	return &netCause{err}
}
