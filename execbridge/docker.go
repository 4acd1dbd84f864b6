package execbridge

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/moby/moby/client"
)

// DockerClient is the subset of the Docker Engine API client
// (*client.Client from github.com/moby/moby/client) that DockerBackend
// uses.
type DockerClient interface {
	ExecCreate(ctx context.Context, containerID string, options client.ExecCreateOptions) (client.ExecCreateResult, error)
	ExecAttach(ctx context.Context, execID string, options client.ExecAttachOptions) (client.ExecAttachResult, error)
	ExecInspect(ctx context.Context, execID string, options client.ExecInspectOptions) (client.ExecInspectResult, error)
	ExecResize(ctx context.Context, execID string, options client.ExecResizeOptions) (client.ExecResizeResult, error)
	ContainerStatPath(ctx context.Context, containerID string, options client.ContainerStatPathOptions) (client.ContainerStatPathResult, error)
	// ClientVersion returns the API version the client speaks (after
	// negotiation, the engine's); it tells whether the engine applies a
	// terminal size given at exec creation.
	ClientVersion() string
}

// DockerConfig configures a DockerBackend. A nil *DockerConfig means every
// default.
type DockerConfig struct {
	// Logger receives what cannot be reported to a caller: a process
	// that could not be ended by Close, a terminal size that could not
	// be applied at start. nil means slog.Default().
	Logger *slog.Logger

	// KillGrace is how long Close lets a process and its descendants
	// exit after the hangup and termination signals before it kills
	// them. Zero (or negative) means 2 seconds.
	KillGrace time.Duration

	// SFTPHelper is the path of a static Linux executable whose main
	// calls sftphelper.Main (package execbridge/sftphelper), for
	// Subsystem to copy into a container that has no sftp-server of its
	// own. It is read and checked (static ELF, the container's
	// architecture) when first needed and again whenever it changes. The
	// copy stays in the container, at "/" + SFTPHelperPrefix + a hash of
	// its contents, and serves every later session there. Empty means no
	// helper: such containers get no SFTP. The DockerClient must also
	// implement DockerCopyClient.
	SFTPHelper string
}

// DefaultKillGrace is the KillGrace of a zero DockerConfig.
const DefaultKillGrace = 2 * time.Second

// MarkerEnv is the environment variable DockerBackend gives every process
// it starts, with a random 128-bit value per process. Descendants inherit
// it, which is how Signal and Close find the process and everything it
// started inside the container, where the Engine API cannot reach them. A
// value for it in ProcessSpec.Env is dropped.
const MarkerEnv = "DOCKSSH_SESSION"

const (
	// exitTimeout bounds how long Wait polls for the exit status once
	// the output ended. The engine records it before it ends the stream,
	// or within its own 2-second stream-drain timeout.
	exitTimeout = 10 * time.Second
	// closeSlack is added to KillGrace to bound Close: the time to start
	// the helper that signals, and for it to report.
	closeSlack = 5 * time.Second
	// helperOutputMax bounds what is kept of a helper's output.
	helperOutputMax = 4 << 10
	// shellCacheMax bounds the per-container cache of Shell.
	shellCacheMax = 1024
	// maxTermSize is the largest terminal dimension the kernel can
	// represent (struct winsize holds unsigned shorts).
	maxTermSize = 1<<16 - 1
)

// DockerBackend starts processes in containers with the Docker Engine's
// exec API. It is safe for concurrent use.
//
// # Engine round trips
//
// A process without a terminal costs two API calls to start (exec create,
// then exec start with the connection hijacked), one to learn its exit
// status (exec inspect; a few more only when the engine has not recorded
// it yet) and none to close once its exit was seen. A process with a
// terminal adds one resize on engines older than API 1.42, which ignore
// the size given at creation. Signal, and Close of a process whose exit
// was not seen, cost one inspect and one short exec each (create and
// attach; see below).
//
// # Streams
//
// Without a terminal, stdout and stderr arrive multiplexed on one
// connection and are split into two synchronous pipes: a chunk of output
// waits in the pipe until its reader takes it, and until then the engine
// stops reading the process's output, which blocks the process's writes.
// Memory stays bounded, but Read and Stderr must be drained concurrently:
// a stderr nobody reads stalls stdout too, as it would with any single
// connection carrying both. Close unblocks both.
//
// With a terminal, Read reads the connection itself and Stderr is empty.
// CloseWrite does nothing then, as with sshd: a terminal has no end of
// file (the process sees one when ^D is written), and Docker ends the
// output stream at once when the input of a terminal exec is half-closed,
// losing what the process writes afterwards (measured on Engine 20.10).
//
// The engine ends the output stream when the process exits, even when a
// background child still holds the terminal or the output (with a
// terminal at once, without one after the engine's 2-second drain
// timeout; measured on Engine 20.10.24 with containerd 1.6), so Read never
// hangs on such a child.
//
// # Exit status
//
// Wait waits for the end of the output, then asks the engine for the exit
// status, with a growing delay for up to 10 seconds while the engine still
// reports the exec running (the stream can end before the exit is
// recorded). Docker reports a death by signal N as status 128+N, the same
// as exit(128+N), so ExitError.Signal is set only when this backend itself
// delivered signal N (Signal, or the signals of Close) and the status is
// 128+N; any other status stays a plain status, which is all that can
// honestly be said.
//
// # Signals and cleanup
//
// The Engine API cannot signal an exec'd process. Every process gets a
// random MarkerEnv value instead (the process sees it in its
// environment). Signal runs a second short exec, a constant /bin/sh
// script as the same user as the process, that finds the process by the
// marker in /proc/PID/environ and a parent PID of 0 (an exec'd process's
// parent is outside the container's PID namespace), and signals it, and
// it alone, as sshd signals the session's process only.
//
// Close, unless Wait has seen the process exit, ends every process that
// carries the marker, and every process in the same session (setsid) as
// one that does, which catches a descendant that cleared its
// environment: SIGHUP, SIGTERM and SIGCONT, then after KillGrace SIGKILL.
// Zombies are not counted: they are dead already, and only their parent
// can remove them. After a normal exit, Close leaves what the process
// started in the background alone, as sshd does, and makes no API call.
// Signal and Close first wait until the engine reports the process
// started: exec start returns before it runs.
//
// The helper runs as the process's user, not as root, because Docker's
// default capabilities leave out CAP_SYS_PTRACE, without which root cannot
// read another user's /proc/PID/environ; the same user can, and may signal
// its own processes. So a descendant that switched to another user (su,
// sudo) escapes Close. A target without /bin/sh (or grep) cannot be
// cleaned up: Close returns and logs the error, and the process runs on
// until it exits. With the host's PID namespace (docker run --pid=host) the parent
// PID rule fails, and Signal falls back to the PID the engine reports.
//
// A DockerBackend talks to one engine and ignores Target.Endpoint, which
// lets a caller with several engines route between backends.
type DockerBackend struct {
	c         DockerClient
	logger    *slog.Logger
	killGrace time.Duration
	shells    shellCache
	sftp      dockerSFTP
}

// NewDockerBackend returns a Backend that runs processes through c, with
// cfg (nil means defaults).
func NewDockerBackend(c DockerClient, cfg *DockerConfig) *DockerBackend {
	if cfg == nil {
		cfg = &DockerConfig{}
	}
	return &DockerBackend{
		c:         c,
		logger:    cmp.Or(cfg.Logger, slog.Default()),
		killGrace: cmp.Or(max(cfg.KillGrace, 0), DefaultKillGrace),
		sftp:      newDockerSFTP(cfg.SFTPHelper),
	}
}

var _ Backend = (*DockerBackend)(nil)

// containerRef is what the Engine API takes to name t's container.
func containerRef(t Target) string { return cmp.Or(t.ID, t.Name) }

// Start creates an exec in spec.Target's container and starts it with its
// standard streams attached. ctx bounds the two API calls (and the resize
// of a terminal on an older engine); the process is not tied to it.
func (b *DockerBackend) Start(ctx context.Context, spec ProcessSpec) (Process, error) {
	ref := containerRef(spec.Target)
	if ref == "" {
		return nil, errors.New("execbridge: start: the target names no container")
	}
	if len(spec.Argv) == 0 {
		return nil, fmt.Errorf("execbridge: start in %s: empty Argv", spec.Target)
	}
	if spec.TTY && (spec.Rows < 0 || spec.Cols < 0 || spec.Rows > maxTermSize || spec.Cols > maxTermSize) {
		return nil, fmt.Errorf("execbridge: start in %s: terminal size %dx%d out of range", spec.Target, spec.Rows, spec.Cols)
	}
	marker := newMarker()
	env := make([]string, 0, len(spec.Env)+1)
	for _, kv := range spec.Env {
		if name, _, _ := strings.Cut(kv, "="); name != MarkerEnv {
			env = append(env, kv)
		}
	}
	env = append(env, MarkerEnv+"="+marker)

	var size client.ConsoleSize
	sized := spec.TTY && spec.Rows > 0 && spec.Cols > 0
	if sized {
		size = client.ConsoleSize{Height: uint(spec.Rows), Width: uint(spec.Cols)}
	}
	cr, err := b.c.ExecCreate(ctx, ref, client.ExecCreateOptions{
		User:         spec.User,
		TTY:          spec.TTY,
		ConsoleSize:  size,
		AttachStdin:  true,
		AttachStdout: true,
		AttachStderr: true,
		Env:          env,
		WorkingDir:   spec.Dir,
		Cmd:          spec.Argv,
	})
	if err != nil {
		return nil, fmt.Errorf("execbridge: create exec in %s: %w", spec.Target, engineError(err))
	}
	at, err := b.c.ExecAttach(ctx, cr.ID, client.ExecAttachOptions{TTY: spec.TTY, ConsoleSize: size})
	if err != nil {
		// The engine answered the create a moment ago: a failure to
		// attach is the transport's (a hijack that cannot dial or
		// upgrade), so the endpoint counts as unavailable.
		return nil, fmt.Errorf("execbridge: start exec in %s: %w: %w", spec.Target, ErrUnavailable, err)
	}
	p := newDockerProcess(b, spec, cr.ID, marker, at.Conn, at.Reader)
	if sized && !apiAtLeast(b.c.ClientVersion(), 1, 42) {
		// The engine ignored the size given at creation (it arrived in
		// API 1.42); set it now. Docker's resize waits until the exec
		// runs, so the size is in place once Start returns, though a
		// process that reads it at once may still see 0x0 and get a
		// SIGWINCH right after.
		if err := p.resize(ctx, spec.Rows, spec.Cols); err != nil {
			// Debug: a short command may be gone already.
			b.logger.Debug("execbridge: cannot set the terminal size", "target", spec.Target.String(), "rows", spec.Rows, "cols", spec.Cols, "err", err)
		}
	}
	return p, nil
}

// engineError wraps err with ErrUnavailable when it says that the engine
// could not be reached or did not answer in time, rather than refused.
func engineError(err error) error {
	if client.IsErrConnectionFailed(err) || errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	return err
}

// newMarker returns a random 128-bit value, in hex, for MarkerEnv.
func newMarker() string {
	var b [16]byte
	rand.Read(b[:]) // never fails (crypto/rand, Go 1.24)
	return hex.EncodeToString(b[:])
}

// apiAtLeast reports whether the API version v ("1.41") is at least
// major.minor. An unparsable v is not.
func apiAtLeast(v string, major, minor int) bool {
	ms, ns, ok := strings.Cut(v, ".")
	if !ok {
		return false
	}
	m, err1 := strconv.Atoi(ms)
	n, err2 := strconv.Atoi(ns)
	if err1 != nil || err2 != nil || m < 0 || n < 0 {
		return false
	}
	return m > major || m == major && n >= minor
}

// runHelper runs argv in ref's container as user, without a terminal or
// input, and returns the start of its stdout and stderr once its output
// ended. ctx bounds all of it.
func (b *DockerBackend) runHelper(ctx context.Context, ref, user string, argv []string) (stdout, stderr string, err error) {
	cr, err := b.c.ExecCreate(ctx, ref, client.ExecCreateOptions{
		User:         user,
		AttachStdout: true,
		AttachStderr: true,
		WorkingDir:   "/",
		Cmd:          argv,
	})
	if err != nil {
		return "", "", fmt.Errorf("create exec: %w", err)
	}
	at, err := b.c.ExecAttach(ctx, cr.ID, client.ExecAttachOptions{})
	if err != nil {
		return "", "", fmt.Errorf("start exec: %w", err)
	}
	// Closing the connection when ctx ends unblocks the read below.
	done := make(chan struct{})
	stop := context.AfterFunc(ctx, func() {
		defer close(done)
		at.Conn.Close()
	})
	var out, errOut limitedBuffer
	_, err = copyMultiplexed(&out, &errOut, at.Reader)
	if !stop() {
		<-done
	}
	at.Conn.Close()
	if ctx.Err() != nil {
		err = ctx.Err()
	}
	if err != nil {
		return out.String(), errOut.String(), fmt.Errorf("read output: %w", err)
	}
	return out.String(), errOut.String(), nil
}

// limitedBuffer keeps the first helperOutputMax bytes written to it and
// discards the rest, without failing the writer.
type limitedBuffer struct{ b []byte }

func (l *limitedBuffer) Write(p []byte) (int, error) {
	if room := helperOutputMax - len(l.b); room > 0 {
		l.b = append(l.b, p[:min(room, len(p))]...)
	}
	return len(p), nil
}

func (l *limitedBuffer) String() string { return string(l.b) }
