package dialer

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"
)

// finalReadErr turns the channel's read error into what Read returns: io.EOF
// for a clean end, an error quoting stderr for a failed remote command, or
// ErrConnectionLost when the SSH connection died (x/crypto reports a dead
// connection to a channel reader as a plain io.EOF).
func (c *conn) finalReadErr(err error) error {
	if err != io.EOF {
		return c.opErr(OpRead, err)
	}
	if lost := c.sc.lostErr(); lost != nil {
		return c.opErr(OpRead, lost)
	}
	if !c.session {
		return io.EOF
	}
	t := time.NewTimer(exitWait)
	defer t.Stop()
	select {
	case <-c.exited:
	case <-t.C:
	case <-c.closed:
	}
	if lost := c.sc.lostErr(); lost != nil && !c.gotExitNow() {
		return c.opErr(OpRead, lost)
	}
	if cmdErr := c.commandErr(); cmdErr != nil {
		return cmdErr
	}
	return io.EOF
}

func (c *conn) gotExitNow() bool {
	select {
	case <-c.exited:
		return c.gotExit
	default:
		return false
	}
}

// commandErr returns the error for a remote command that exited with a
// failure, or nil.
func (c *conn) commandErr() error {
	if !c.gotExitNow() || (c.exitStatus == 0 && c.exitSignal == "") {
		return nil
	}
	// The stderr bytes came before the exit status, but the goroutine that
	// copies them may lag; the channel's end-of-file follows the exit
	// status closely.
	t := time.NewTimer(time.Second)
	select {
	case <-c.errDone:
	case <-t.C:
	}
	t.Stop()
	stderr := c.stderr.String()
	var cause error
	if c.exitSignal != "" {
		cause = fmt.Errorf("%s was killed by signal %s", c.d.dest.command, c.exitSignal)
	} else {
		cause = fmt.Errorf("%s exited with status %d", c.d.dest.command, c.exitStatus)
	}
	return c.d.newError(Error{Op: OpCommand, Err: cause, ExitStatus: c.exitStatus, Stderr: stderr,
		Hint: commandHint(c.exitStatus, stderr, c.d.remoteDocker, c.d.dest.socket)})
}

// commandHint says what to do about a failed remote command.
func commandHint(status int, stderr, docker, socket string) string {
	low := strings.ToLower(stderr)
	switch {
	case status == 127 || strings.Contains(low, "command not found") || strings.Contains(low, "not found") && strings.Contains(low, docker):
		return fmt.Sprintf("the remote shell did not find %q on the PATH of a non-interactive SSH session (it often lacks what a login shell adds); set Config.RemoteDocker to its full path (e.g. /usr/bin/docker, see `command -v docker` on the server), or fix PATH for SSH sessions on the server", docker)
	case status == 126:
		return fmt.Sprintf("the remote shell found %q but may not execute it; check its permissions on the server", docker)
	case strings.Contains(low, "permission denied") && strings.Contains(low, "sock"):
		return "the SSH user may not use the Docker socket; on the server add the user to the docker group (and log in again), or use a user that may"
	case strings.Contains(low, "cannot connect to the docker daemon") || strings.Contains(low, "no such file or directory") && strings.Contains(low, "sock"):
		if socket != "" {
			return fmt.Sprintf("no Docker daemon answers at %s on the server: is dockerd running, and is the socket path in the URL right?", socket)
		}
		return "no Docker daemon answers at the remote CLI's default socket: is dockerd running? For rootless Docker or another socket, put its path in the URL: ssh://user@host/run/user/UID/docker.sock"
	case strings.Contains(low, "unknown command") || strings.Contains(low, "dial-stdio"):
		return "the remote docker CLI does not know `system dial-stdio` (it needs Docker 18.09 or later); upgrade it, or set Config.RemoteDocker to a newer one"
	}
	return "see the remote stderr"
}

func (c *conn) writeErr() error {
	c.werrMu.Lock()
	defer c.werrMu.Unlock()
	return c.werr
}

func (c *conn) setWriteErr(err error) {
	c.werrMu.Lock()
	defer c.werrMu.Unlock()
	if c.werr == nil {
		c.werr = err
	}
}

// writeFailure turns a failed channel write into the most useful error: the
// lost connection, the failed remote command, or the raw error.
func (c *conn) writeFailure(err error) error {
	if lost := c.sc.lostErr(); lost != nil {
		return c.opErr(OpWrite, lost)
	}
	if c.session {
		t := time.NewTimer(exitWait)
		select {
		case <-c.exited:
		case <-t.C:
		case <-c.closed:
		}
		t.Stop()
		if cmdErr := c.commandErr(); cmdErr != nil {
			return cmdErr
		}
	}
	return c.opErr(OpWrite, err)
}

func (c *conn) opErr(op Op, err error) error {
	var hint string
	if errors.Is(err, ErrConnectionLost) {
		hint = "in-flight streams on that connection failed; the next DialContext reconnects"
	}
	e := c.d.newError(Error{Op: op, Err: err, Hint: hint})
	if err == os.ErrDeadlineExceeded {
		return &TimeoutError{e}
	}
	return e
}
