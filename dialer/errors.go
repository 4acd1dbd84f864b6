package dialer

import (
	"errors"
	"net"
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
	// ErrClosed is returned by DialContext after Close, and wrapped by Read
	// and Write on a closed conn together with net.ErrClosed.
	ErrClosed = errors.New("dialer: closed")

	// ErrSessionLimit means every allowed SSH connection refused a new
	// session (sshd's MaxSessions) and Config.MaxConnections allows no
	// more connections.
	ErrSessionLimit = errors.New("all SSH connections refuse new sessions (sshd MaxSessions)")

	// ErrConnectionLost means the SSH connection under a conn ended (the
	// server went away, the link died and keepalive noticed, or Close).
	ErrConnectionLost = errors.New("SSH connection lost")
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
	s := b.String()
	if e.scrub != nil {
		s = e.scrub(s)
	}
	return s
}

func (e *Error) Unwrap() error { return e.Err }

// Timeout reports whether the error is a timeout (a deadline on the conn,
// or a dial that ran out of time), so that Error satisfies net.Error.
func (e *Error) Timeout() bool {
	var t interface{ Timeout() bool }
	return errors.As(e.Err, &t) && t.Timeout()
}

// Temporary reports the same as Timeout; it exists for net.Error.
func (e *Error) Temporary() bool { return e.Timeout() }

var _ net.Error = (*Error)(nil)

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
