package execbridge

import (
	"context"
	"fmt"
	"io"
)

// Target is one place to run processes: a container on an engine.
type Target struct {
	// Endpoint names the engine the container runs on; empty means the
	// backend's only (default) engine.
	Endpoint string
	// ID is the container's full ID.
	ID string
	// Name is the container's name, without Docker's leading '/'.
	Name string
	// Labels are the container's labels (nil when it has none).
	Labels map[string]string
}

// String returns the target's name, or a short ID when it has no name.
func (t Target) String() string {
	name := t.Name
	if name == "" {
		name = t.ID
		if len(name) > 12 {
			name = name[:12]
		}
	}
	if t.Endpoint != "" {
		return name + " on " + t.Endpoint
	}
	return name
}

// ProcessSpec describes a process to start in a target.
type ProcessSpec struct {
	// Target is where the process runs.
	Target Target
	// Argv is the program and its arguments; it must not be empty. It is
	// run as given, not through a shell.
	Argv []string
	// Env holds "NAME=value" entries added to the container's own
	// environment (they override it). The caller has already filtered
	// them; the backend passes them as they are.
	Env []string
	// User is the user (name, UID or "uid:gid") to run as; empty means
	// the image's USER.
	User string
	// Dir is the working directory; empty means the image's WorkingDir.
	Dir string
	// TTY gives the process a pseudo-terminal of size Rows x Cols. Its
	// output then arrives on Read, stdout and stderr merged, as with a
	// terminal; without it stdout and stderr stay apart.
	TTY        bool
	Rows, Cols int
}

// Backend starts processes in targets. The Docker implementation is
// NewDockerBackend; another engine (a Kubernetes pod exec, for example)
// implements the same two methods and the session code does not change.
type Backend interface {
	// Start starts a process. ctx bounds the start only: once Start has
	// returned, the process lives until it exits or is closed.
	Start(ctx context.Context, spec ProcessSpec) (Process, error)
	// Shell returns the absolute path of the shell to use in target when
	// none is configured: bash when the target has one, otherwise sh. An
	// implementation may cache the answer per target.
	Shell(ctx context.Context, target Target) (string, error)
}

// Process is a running process in a target, with its standard streams.
//
// Its method set is also what a web terminal needs (read, write, resize,
// close, exit status) in plain standard-library types, so the process can
// serve one without this package knowing about it.
//
// Read, Write and CloseWrite may be called concurrently with one another
// and with every other method; Close unblocks them.
type Process interface {
	// Read reads the process's standard output; with a TTY, everything
	// the terminal shows. It returns io.EOF once the process closed its
	// output and everything was read.
	io.Reader
	// Write writes to the process's standard input.
	io.Writer
	// Stderr returns the process's standard error. With a TTY it is
	// empty: stderr is part of the terminal's output.
	Stderr() io.Reader
	// CloseWrite closes standard input: the process reads end of file.
	// Output keeps flowing.
	CloseWrite() error
	// Resize changes the terminal size. It fails without a TTY.
	Resize(ctx context.Context, rows, cols int) error
	// Signal delivers a signal to the process, named as in RFC 4254
	// section 6.10 without "SIG" ("TERM", "INT", "HUP", "KILL", ...).
	Signal(ctx context.Context, name string) error
	// Wait waits until the process has exited and returns nil for exit
	// status 0, an *ExitError for any other status or a death by signal,
	// and another error when the status cannot be known. Call it after
	// Read and Stderr returned io.EOF: the output may not be complete
	// before that.
	Wait(ctx context.Context) error
	// Close ends the process and every process it started that is still
	// running (a hangup, then a termination signal, then, after a grace
	// period, a kill), and releases the streams. It is safe to call more
	// than once and after the process exited.
	Close() error
}

// ExitError reports a process that did not exit with status 0.
type ExitError struct {
	// Code is the exit status. For a death by signal it is 128 plus the
	// signal's number, which is what engines such as Docker report.
	Code int
	// Signal is the name of the signal that ended the process, without
	// "SIG", when the backend can tell; empty otherwise.
	Signal string
	// TargetStopped reports that the target itself stopped while the
	// process ran (a container stopped or killed, a Swarm task
	// rescheduled), which is what ended the process, when the backend
	// can tell.
	TargetStopped bool
}

// Error describes the exit like a shell would.
func (e *ExitError) Error() string {
	if e.Signal != "" {
		return fmt.Sprintf("execbridge: process killed by signal %s (exit status %d)", e.Signal, e.Code)
	}
	return fmt.Sprintf("execbridge: process exited with status %d", e.Code)
}

// ExitCode returns the exit status, as os/exec's ExitError does.
func (e *ExitError) ExitCode() int { return e.Code }

// SubsystemBackend is implemented by a Backend that can serve SSH
// subsystems (RFC 4254, section 6.5) in a target. The only subsystem
// execbridge asks for is "sftp"; without this interface, subsystem
// requests are refused.
type SubsystemBackend interface {
	// Subsystem returns the program and arguments that serve the named
	// subsystem on standard input and output in target, run as user
	// (empty: the image's USER). The error of a target that cannot
	// serve it should be a *TargetError, whose Reason the user sees.
	Subsystem(ctx context.Context, target Target, name, user string) (argv []string, err error)
}
