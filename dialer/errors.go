package dialer

import (
	"errors"
	"net"
	"strings"
	"syscall"
)

// Op names the stage of a dial, or the conn operation, that failed.
type Op string

// The stages reported in [Error.Op], in the order a dial goes through them.
const (
	OpParseURL  Op = "parse URL"
	OpSSHConfig Op = "read ssh config"
	OpProxy     Op = "ProxyCommand"
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
// the redacted URL, the stage, what went wrong and, in Hint, what to do
// about it. It never contains the URL's password: every Error is built by
// one constructor that passes Err, Hint and Stderr through the Dialer's
// redactor.
//
// Error deliberately is no net.Error, and it keeps what the Docker client
// (github.com/moby/moby/client) would otherwise replace by its own "Cannot
// connect to the Docker daemon at http://docker" out of its chain and its
// text; see [Error.Err].
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
	// Error to it (a *hostkeys.HostKeyError, context.DeadlineExceeded,
	// syscall.ECONNREFUSED, ...). A network error from the local TCP
	// connect is reachable by errors.Is only: the Docker client's
	// request code (client.doRequest in moby/moby/client) replaces any
	// error in whose chain errors.As finds a *net.DNSError, and any
	// whose text says "connection refused" or "dial unix", with its own
	// message, so a refused connect reads "refused (ECONNREFUSED)" here.
	// Errors that wrap context.DeadlineExceeded or context.Canceled pass
	// through the Docker client unchanged; it wraps the others with %w
	// in its own connection-failed error (client.IsErrConnectionFailed
	// reports true), and errors.As finds this Error in both.
	Err error
	// Hint says what to do about it; empty when there is nothing to add.
	Hint string
	// ExitStatus is the remote command's exit status for OpCommand
	// errors, and the ProxyCommand's for OpProxy errors; -1 when it was
	// killed by a signal or is unknown.
	ExitStatus int
	// Stderr is the last 4 KiB of the remote command's standard error
	// for OpCommand errors, and of the ProxyCommand's for the errors of a
	// connection through one (OpProxy, and a handshake that got no
	// answer through it).
	Stderr string
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
		if e.Op == OpCommand {
			b.WriteString("; remote stderr (last 4 KiB): ")
		} else {
			b.WriteString("; ProxyCommand stderr (last 4 KiB): ")
		}
		b.WriteString(quoteStderr(e.Stderr))
	}
	return b.String()
}

func (e *Error) Unwrap() error { return e.Err }

// newError is the one constructor of *Error. It fills in the URL, takes
// the hint of a hinted cause when e has none, keeps local network errors
// where only errors.Is finds them (see Error.Err), and passes the cause,
// the hint and the remote's stderr through the redactor, so that no error
// of the package can show the password.
func (d *Dialer) newError(e Error) *Error {
	e.URL = d.url
	var h *hinted
	if e.Hint == "" && errors.As(e.Err, &h) {
		e.Hint = h.hint
	}
	e.Err = hideNetError(e.Err)
	if d.red != nil {
		if e.Err != nil {
			e.Err = d.red.Error(e.Err)
		}
		e.Hint = d.red.String(e.Hint)
		e.Stderr = d.red.String(e.Stderr)
	}
	return &e
}

// hinted is an error that comes with advice for Error.Hint, for the places
// that know what to say but do not build the Error themselves.
type hinted struct {
	err  error
	hint string
}

func (h *hinted) Error() string { return h.err.Error() }
func (h *hinted) Unwrap() error { return h.err }

func withHint(err error, hint string) error { return &hinted{err, hint} }

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

// quoteStderr renders the remote's stderr, untrusted text, for a one-line
// message: trailing newlines go, inner ones stay visible as " | ", control
// characters (a remote could send terminal escapes) are replaced, and the
// two phrases on which the Docker client drops a request error for its own
// "Cannot connect to the Docker daemon" (see Error.Err), which the remote
// CLI prints when it cannot reach its daemon, are hyphenated. The Stderr
// field keeps the remote's exact words.
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
	return strings.NewReplacer("connection refused", "connection-refused", "dial unix", "dial-unix").Replace(b.String())
}

// netCause is a local network error (the TCP connect, a read or write on
// the transport) that errors.Is sees through (syscall.ECONNREFUSED,
// os.ErrDeadlineExceeded, ...) and errors.As does not: the Docker client
// replaces any request error in which errors.As finds a *net.DNSError with
// that error alone, dropping the stage, the address and the hint. A
// refused connect is described in its own words, not the system's
// "connection refused", on which the Docker client does the same.
type netCause struct{ err error }

func (n *netCause) Error() string {
	if errors.Is(n.err, syscall.ECONNREFUSED) {
		return "refused (ECONNREFUSED)"
	}
	return n.err.Error()
}

func (n *netCause) Is(target error) bool { return errors.Is(n.err, target) }

// hideNetError puts err behind a netCause when its chain holds a *net.OpError
// or a *net.DNSError.
func hideNetError(err error) error {
	var op *net.OpError
	var dns *net.DNSError
	if err == nil || (!errors.As(err, &op) && !errors.As(err, &dns)) {
		return err
	}
	return &netCause{err}
}
