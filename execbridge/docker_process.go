package execbridge

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"

	"github.com/moby/moby/client"
)

// errProcessClosed is what Read, Write and Stderr's Read return once
// Close was called.
var errProcessClosed = fmt.Errorf("execbridge: process closed: %w", net.ErrClosed)

// dockerProcess is a process started by DockerBackend: an attached exec.
type dockerProcess struct {
	b      *DockerBackend
	target Target
	user   string
	tty    bool
	execID string
	marker string

	conn net.Conn      // the hijacked connection: stdin, and output
	r    *bufio.Reader // reads conn, holding what the client read ahead

	// Without a terminal: the pump splits r into these pipes.
	stdoutR, stderrR *io.PipeReader
	stdoutW, stderrW *io.PipeWriter
	pumpDone         chan struct{} // closed when the pump returned

	outputDone     chan struct{} // closed when the output ended or Close was called
	outputDoneOnce sync.Once
	closeOnce      sync.Once
	closeErr       error

	mu sync.Mutex // guards the fields below
	// closed is set by Close.
	closed bool
	// exited is set once Wait saw the exit; waitErr is its result.
	exited  bool
	waitErr error
	// signals are the signal numbers this backend delivered (or was
	// delivering) to the process, for ExitError.Signal.
	signals map[int]string
}

func newDockerProcess(b *DockerBackend, spec ProcessSpec, execID, marker string, conn net.Conn, r *bufio.Reader) *dockerProcess {
	p := &dockerProcess{
		b:          b,
		target:     spec.Target,
		user:       spec.User,
		tty:        spec.TTY,
		execID:     execID,
		marker:     marker,
		conn:       conn,
		r:          r,
		outputDone: make(chan struct{}),
	}
	if !p.tty {
		p.stdoutR, p.stdoutW = io.Pipe()
		p.stderrR, p.stderrW = io.Pipe()
		p.pumpDone = make(chan struct{})
		go p.pump()
	}
	return p
}

var _ Process = (*dockerProcess)(nil)

// pump splits the multiplexed output into the stdout and stderr pipes
// until the stream ends, an engine error arrives or Close closes the
// pipes. It is owned by the process: Close waits for it.
func (p *dockerProcess) pump() {
	defer close(p.pumpDone)
	_, err := copyMultiplexed(p.stdoutW, p.stderrW, p.r)
	if err != nil {
		err = fmt.Errorf("execbridge: output of the process in %s: %w", p.target, err)
	}
	// nil: the readers get io.EOF once they took everything.
	p.stdoutW.CloseWithError(err)
	p.stderrW.CloseWithError(err)
	p.endOutput()
}

func (p *dockerProcess) endOutput() { p.outputDoneOnce.Do(func() { close(p.outputDone) }) }

func (p *dockerProcess) isClosed() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.closed
}

// Read reads the process's stdout, or with a terminal everything it shows.
func (p *dockerProcess) Read(b []byte) (int, error) {
	if !p.tty {
		return p.readPipe(p.stdoutR, b)
	}
	if p.isClosed() {
		return 0, errProcessClosed
	}
	n, err := p.r.Read(b)
	if err != nil {
		p.endOutput()
		if p.isClosed() {
			return n, errProcessClosed
		}
		if err != io.EOF {
			err = fmt.Errorf("execbridge: output of the process in %s: %w", p.target, err)
		}
	}
	return n, err
}

// readPipe reads one of the pipes the pump fills.
func (p *dockerProcess) readPipe(r *io.PipeReader, b []byte) (int, error) {
	n, err := r.Read(b)
	if err != nil && err != io.EOF && p.isClosed() {
		err = errProcessClosed
	}
	return n, err
}

// Stderr returns the process's stderr; with a terminal, an empty reader.
func (p *dockerProcess) Stderr() io.Reader {
	if p.tty {
		return emptyReader{}
	}
	return stderrReader{p}
}

type stderrReader struct{ p *dockerProcess }

func (s stderrReader) Read(b []byte) (int, error) { return s.p.readPipe(s.p.stderrR, b) }

// Write writes to the process's stdin.
func (p *dockerProcess) Write(b []byte) (int, error) {
	n, err := p.conn.Write(b)
	if err != nil {
		if p.isClosed() {
			return n, errProcessClosed
		}
		return n, fmt.Errorf("execbridge: input of the process in %s: %w", p.target, err)
	}
	return n, nil
}

// CloseWrite half-closes the connection, which the engine passes on as
// end of file on stdin. With a terminal it does nothing (see
// DockerBackend).
func (p *dockerProcess) CloseWrite() error {
	if p.tty {
		return nil
	}
	cw, ok := p.conn.(interface{ CloseWrite() error })
	if !ok {
		return fmt.Errorf("execbridge: close the input of the process in %s: the engine connection (%T) cannot be half-closed", p.target, p.conn)
	}
	if err := cw.CloseWrite(); err != nil {
		if p.isClosed() {
			return errProcessClosed
		}
		return fmt.Errorf("execbridge: close the input of the process in %s: %w", p.target, err)
	}
	return nil
}

// Resize changes the terminal size, retrying for a short while when the
// engine refuses because the exec is still starting.
func (p *dockerProcess) Resize(ctx context.Context, rows, cols int) error {
	if !p.tty {
		return fmt.Errorf("execbridge: resize the process in %s: it has no terminal", p.target)
	}
	if rows < 0 || cols < 0 || rows > maxTermSize || cols > maxTermSize {
		return fmt.Errorf("execbridge: resize the process in %s: size %dx%d out of range", p.target, rows, cols)
	}
	return p.resize(ctx, rows, cols)
}

// resizeAttempts bounds the retries of a resize: Docker 20.10 makes a
// resize wait until the exec runs, but other engines refuse one that
// comes before.
const resizeAttempts = 5

func (p *dockerProcess) resize(ctx context.Context, rows, cols int) error {
	var err error
	bo := newBackoff(10*time.Millisecond, 100*time.Millisecond)
	for range resizeAttempts {
		_, err = p.b.c.ExecResize(ctx, p.execID, client.ExecResizeOptions{Height: uint(rows), Width: uint(cols)})
		if err == nil || ctx.Err() != nil || p.isClosed() {
			break
		}
		// Retry only while the process has not started: a resize of
		// one that started, or ended, fails for good.
		in, ierr := p.b.c.ExecInspect(ctx, p.execID, client.ExecInspectOptions{})
		if ierr != nil || in.PID != 0 || !in.Running && in.ExitCode != 0 {
			break
		}
		if !bo.sleep(ctx) {
			break
		}
	}
	if err != nil {
		return fmt.Errorf("execbridge: resize the terminal of the process in %s to %dx%d: %w", p.target, rows, cols, err)
	}
	return nil
}

// Wait waits for the end of the output (Read and Stderr returned io.EOF,
// or Close was called), then asks the engine for the exit status,
// polling with a growing delay for up to 10 seconds while the engine
// still reports the exec running (the end of the stream can come before
// the engine recorded the exit).
//
// It returns nil for status 0, and an *ExitError otherwise. Docker
// reports a death by signal N as status 128+N, the same as a process that
// called exit(128+N), so ExitError.Signal is set only when this backend
// itself delivered signal N to the process (Signal, or the signals of
// Close) and the status is 128+N; otherwise the status stays a plain
// status, which is all that can honestly be said.
//
// Once a result is known, later calls return it without asking again.
func (p *dockerProcess) Wait(ctx context.Context) error {
	p.mu.Lock()
	if p.exited {
		defer p.mu.Unlock()
		return p.waitErr
	}
	p.mu.Unlock()

	select {
	case <-p.outputDone:
	case <-ctx.Done():
		return fmt.Errorf("execbridge: wait for the process in %s: %w", p.target, ctx.Err())
	}
	deadline := time.Now().Add(exitTimeout)
	bo := newBackoff(2*time.Millisecond, 200*time.Millisecond)
	for {
		in, err := p.b.c.ExecInspect(ctx, p.execID, client.ExecInspectOptions{})
		if err != nil {
			return fmt.Errorf("execbridge: exit status of the process in %s: %w", p.target, engineError(err))
		}
		if !in.Running {
			return p.setExit(in.ExitCode, p.targetStopped(ctx, in.ExitCode))
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("execbridge: exit status of the process in %s: still running %v after its output ended", p.target, exitTimeout)
		}
		if !bo.sleep(ctx) {
			return fmt.Errorf("execbridge: wait for the process in %s: %w", p.target, ctx.Err())
		}
	}
}

// setExit records the exit status and returns Wait's result for it.
func (p *dockerProcess) setExit(code int, targetStopped bool) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.exited {
		p.exited = true
		p.waitErr = exitResult(code, p.signals)
		var ee *ExitError
		if errors.As(p.waitErr, &ee) {
			ee.TargetStopped = targetStopped
		}
	}
	return p.waitErr
}

// targetStopped reports whether a death by a signal this backend did not
// deliver (status code) came with the end of the container (docker stop or
// kill, a Swarm task rescheduled): one inspect, only then. An inspect
// error says nothing sure, so it counts as no.
func (p *dockerProcess) targetStopped(ctx context.Context, code int) bool {
	p.mu.Lock()
	_, delivered := p.signals[code-128]
	p.mu.Unlock()
	if code <= 128 || delivered {
		return false
	}
	ci, ok := p.b.c.(interface {
		ContainerInspect(ctx context.Context, containerID string, options client.ContainerInspectOptions) (client.ContainerInspectResult, error)
	})
	if !ok {
		return false
	}
	// The engine records the exec's end before the container's (both
	// come from containerd's events): a container that still runs is
	// asked again for a short while.
	deadline := time.Now().Add(targetStopWait)
	bo := newBackoff(20*time.Millisecond, 200*time.Millisecond)
	for {
		in, err := ci.ContainerInspect(ctx, containerRef(p.target), client.ContainerInspectOptions{})
		if err != nil || in.Container.State == nil {
			return false
		}
		if !in.Container.State.Running {
			return true
		}
		if time.Now().After(deadline) || !bo.sleep(ctx) {
			return false
		}
	}
}

// targetStopWait bounds how long targetStopped waits for the engine to
// record that a container stopped.
const targetStopWait = time.Second

// exitResult is Wait's result for status code, given the signals the
// backend delivered (by number).
func exitResult(code int, delivered map[int]string) error {
	if code == 0 {
		return nil
	}
	ee := &ExitError{Code: code}
	if code > 128 {
		ee.Signal = delivered[code-128]
	}
	return ee
}

// noteSignal records that signal num (name) is being delivered, and
// reports whether it was not recorded before.
func (p *dockerProcess) noteSignal(num int, name string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if _, ok := p.signals[num]; ok {
		return false
	}
	if p.signals == nil {
		p.signals = make(map[int]string)
	}
	p.signals[num] = name
	return true
}

// forgetSignal undoes noteSignal for a signal that was not delivered.
func (p *dockerProcess) forgetSignal(num int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.signals, num)
}

// Close ends the process and its descendants if its exit was not seen,
// and releases the connection. See DockerBackend for how. It returns
// within KillGrace plus a few seconds, whatever the engine does; a
// failure to end the processes is logged and returned.
func (p *dockerProcess) Close() error {
	p.closeOnce.Do(func() { p.closeErr = p.close() })
	return p.closeErr
}

func (p *dockerProcess) close() error {
	p.mu.Lock()
	p.closed = true
	exited := p.exited
	p.mu.Unlock()
	outputEnded := false
	select {
	case <-p.outputDone:
		outputEnded = true
	default:
	}

	// Unblock readers and writers first, then the pump.
	if !p.tty {
		p.stdoutR.CloseWithError(errProcessClosed)
		p.stderrR.CloseWithError(errProcessClosed)
	}
	p.conn.Close()
	if p.pumpDone != nil {
		<-p.pumpDone
	}
	p.endOutput()
	if exited {
		// A normal end: no API call at all. Background processes it
		// left behind stay, as with sshd.
		return nil
	}

	// Close has no context; the bound is its own, so a stuck engine
	// cannot hold the caller.
	ctx, cancel := context.WithTimeout(context.Background(), p.b.killGrace+closeSlack)
	defer cancel()
	// Wait until the engine started the process: the helper would find
	// nothing before, and the process would start after it.
	in, err := p.waitStarted(ctx)
	if err == nil && !in.Running && outputEnded {
		// The output ended, nobody asked for the exit, and the process
		// is gone: a normal end after all, without a helper exec.
		p.setExit(in.ExitCode, false)
		return nil
	}
	if err != nil {
		err = fmt.Errorf("execbridge: end the process of %s in %s: %w", p.execID, p.target, err)
	} else {
		err = p.reap(ctx)
	}
	if err != nil {
		p.b.logger.Warn("execbridge: processes may be left running", "target", p.target.String(), "exec", p.execID, "err", err)
		return err
	}
	return nil
}

// startWait bounds how long Signal and Close wait for the engine to start
// a process (exec start returns before the process runs).
const startWait = 10 * time.Second

// waitStarted polls the exec until the engine has started its process (it
// reports a PID) or failed to, and returns the last inspection.
func (p *dockerProcess) waitStarted(ctx context.Context) (client.ExecInspectResult, error) {
	ctx, cancel := context.WithTimeout(ctx, startWait)
	defer cancel()
	bo := newBackoff(2*time.Millisecond, 100*time.Millisecond)
	for {
		in, err := p.b.c.ExecInspect(ctx, p.execID, client.ExecInspectOptions{})
		if err != nil {
			return in, fmt.Errorf("inspect exec: %w", err)
		}
		// Docker sets Running before it starts the process and the PID
		// after; a start that failed leaves a non-zero exit code.
		if in.PID != 0 || !in.Running && in.ExitCode != 0 {
			return in, nil
		}
		if !bo.sleep(ctx) {
			return in, fmt.Errorf("the engine has not started the process: %w", ctx.Err())
		}
	}
}

// backoff is a sleep that doubles from start up to limit.
type backoff struct{ next, limit time.Duration }

func newBackoff(start, limit time.Duration) *backoff { return &backoff{next: start, limit: limit} }

// delay returns the next delay and doubles the one after, up to limit.
func (b *backoff) delay() time.Duration {
	d := b.next
	b.next = min(b.next*2, b.limit)
	return d
}

// sleep waits for the next delay; it reports false if ctx ended first.
func (b *backoff) sleep(ctx context.Context) bool {
	t := time.NewTimer(b.delay())
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// errNotRunning tells that the process to signal is gone.
var errNotRunning = errors.New("execbridge: the process is not running")
