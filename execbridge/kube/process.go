package kube

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"

	"k8s.io/client-go/tools/remotecommand"
	utilexec "k8s.io/client-go/util/exec"
	"k8s.io/streaming/pkg/httpstream"

	"github.com/dockssh/dockssh/execbridge"
	"github.com/dockssh/dockssh/internal/logtext"
	"github.com/dockssh/dockssh/internal/procscript"
)

// process is a running pod exec. Its streams are synchronous pipes
// between the caller and client-go's executor, which runs in a goroutine
// the process owns until the exec ends.
type process struct {
	b      *Backend
	target execbridge.Target
	marker string
	tty    bool

	stdinR, stdoutR, stderrR *io.PipeReader
	stdinW, stdoutW, stderrW *io.PipeWriter
	sizes                    chan remotecommand.TerminalSize
	cancel                   context.CancelFunc
	done                     chan struct{} // closed when the exec ended; streamErr is then set
	streamErr                error

	closeOnce sync.Once
	closeErr  error

	mu      sync.Mutex // guards signals
	signals map[int]string
}

var _ execbridge.Process = (*process)(nil)

func startProcess(b *Backend, spec execbridge.ProcessSpec, marker string, ex remotecommand.Executor) *process {
	// The exec lives until it ends or Close: not bound to the start's
	// context.
	ctx, cancel := context.WithCancel(context.Background())
	p := &process{b: b, target: spec.Target, marker: marker, tty: spec.TTY, cancel: cancel, done: make(chan struct{})}
	p.stdinR, p.stdinW = io.Pipe()
	p.stdoutR, p.stdoutW = io.Pipe()
	p.stderrR, p.stderrW = io.Pipe()
	opts := remotecommand.StreamOptions{Stdin: p.stdinR, Stdout: p.stdoutW, Tty: spec.TTY}
	if spec.TTY {
		p.sizes = make(chan remotecommand.TerminalSize, 4)
		if spec.Rows > 0 && spec.Cols > 0 {
			p.sizes <- remotecommand.TerminalSize{Width: uint16(spec.Cols), Height: uint16(spec.Rows)}
		}
		opts.TerminalSizeQueue = sizeQueue{p}
		p.stderrW.Close() // a terminal has one stream
	} else {
		opts.Stderr = p.stderrW
	}
	go func() {
		defer close(p.done)
		err := ex.StreamWithContext(ctx, opts)
		p.streamErr = err
		p.stdoutW.Close()
		p.stderrW.Close()
		p.stdinR.CloseWithError(io.ErrClosedPipe)
	}()
	return p
}

// sizeQueue hands the executor the terminal sizes Resize asks for; Next
// returns nil once the exec ended, which stops client-go's resize loop.
type sizeQueue struct{ p *process }

func (q sizeQueue) Next() *remotecommand.TerminalSize {
	select {
	case s := <-q.p.sizes:
		return &s
	case <-q.p.done:
		return nil
	}
}

func (p *process) Read(b []byte) (int, error)  { return p.stdoutR.Read(b) }
func (p *process) Write(b []byte) (int, error) { return p.stdinW.Write(b) }
func (p *process) Stderr() io.Reader           { return p.stderrR }

// CloseWrite closes the process's standard input: stream protocol v5
// (WebSocket) sends its close signal, and SPDY closes the stdin stream.
func (p *process) CloseWrite() error {
	if p.tty {
		return nil // as sshd: a terminal has no end of file
	}
	return p.stdinW.Close()
}

// Resize queues a terminal size for the executor.
func (p *process) Resize(ctx context.Context, rows, cols int) error {
	if !p.tty {
		return errors.New("kube: resize a process without a terminal")
	}
	if rows <= 0 || cols <= 0 || rows > 1<<16-1 || cols > 1<<16-1 {
		return fmt.Errorf("kube: terminal size %dx%d out of range", rows, cols)
	}
	select {
	case p.sizes <- remotecommand.TerminalSize{Width: uint16(cols), Height: uint16(rows)}:
		return nil
	case <-p.done:
		return errors.New("kube: resize: the process ended")
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Signal delivers signal name to the process with a second exec of the
// same script the Docker backend uses (package procscript): the pod exec
// API cannot signal either.
func (p *process) Signal(ctx context.Context, name string) error {
	num, ok := procscript.SignalNumber(name)
	if !ok {
		return fmt.Errorf("kube: signal %q: not a signal name of RFC 4254", logtext.Clip(name, 32))
	}
	select {
	case <-p.done:
		return fmt.Errorf("kube: signal %s to the process in %s: it ended", name, p.target)
	default:
	}
	p.note(num, name)
	out, errOut, err := p.b.run(ctx, p.target, procscript.SignalArgv(execbridge.MarkerEnv+"="+p.marker, name, 0), nil)
	if err == nil {
		var found bool
		if _, found, err = procscript.ParseSignalReport(out); err == nil && !found {
			err = errors.New("no such process")
		}
	}
	if err != nil {
		return fmt.Errorf("kube: signal %s to the process in %s: %w (helper stderr: %q)", name, p.target, err, logtext.Clip(errOut, 200))
	}
	return nil
}

func (p *process) note(num int, name string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.signals == nil {
		p.signals = map[int]string{}
	}
	p.signals[num] = name
}

// Wait waits for the exec to end and returns its exit: nil, an
// *execbridge.ExitError (from the exit code the API server reports), or
// the error that ended the stream.
func (p *process) Wait(ctx context.Context) error {
	select {
	case <-p.done:
	case <-ctx.Done():
		return fmt.Errorf("kube: wait for the process in %s: %w", p.target, ctx.Err())
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return exitResult(p.streamErr, p.signals)
}

// exitResult turns the executor's result into Wait's.
func exitResult(err error, delivered map[int]string) error {
	if err == nil {
		return nil
	}
	var ce utilexec.CodeExitError
	if errors.As(err, &ce) {
		if ce.Code == 0 {
			return nil
		}
		ee := &execbridge.ExitError{Code: ce.Code}
		if ce.Code > 128 {
			ee.Signal = delivered[ce.Code-128]
		}
		return ee
	}
	// The exec could not run (no such executable, the container
	// stopped: the server's answer) or the connection to the API server
	// broke (unavailable).
	if unreachable(err) {
		err = fmt.Errorf("%w: %w", execbridge.ErrUnavailable, err)
	}
	return &execbridge.TargetError{Reason: "the pod exec failed: " + logtext.Clip(err.Error(), 200), Err: err}
}

// unreachable reports whether err says the API server could not be
// reached or did not answer, rather than refused.
func unreachable(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) || httpstream.IsUpgradeFailure(err) || errors.Is(err, context.DeadlineExceeded) || errors.Is(err, io.ErrUnexpectedEOF)
}

// Close ends the process and what it started, unless it ended already:
// the cleanup script (hangup, termination, then a kill after KillGrace)
// runs in a second exec; then the stream is cancelled.
func (p *process) Close() error {
	p.closeOnce.Do(func() {
		select {
		case <-p.done:
		default:
			ctx, cancel := context.WithTimeout(context.Background(), p.b.killGrace+5*time.Second)
			defer cancel()
			p.note(1, "HUP")
			p.note(15, "TERM")
			out, errOut, err := p.b.run(ctx, p.target, procscript.ReapArgv(execbridge.MarkerEnv+"="+p.marker, p.b.killGrace), nil)
			if err == nil {
				var r procscript.ReapReport
				if r, err = procscript.ParseReapReport(out); err == nil && r.Left > 0 {
					err = fmt.Errorf("%d of %d processes still running after SIGKILL", r.Left, r.Found)
				}
			}
			if err != nil {
				p.closeErr = fmt.Errorf("kube: end the processes in %s: %w (helper stderr: %q)", p.target, err, logtext.Clip(errOut, 200))
				p.b.logger.Warn("kube: cannot end a session's processes", "target", p.target.String(), "err", p.closeErr)
			}
		}
		p.cancel()
		p.stdinW.CloseWithError(io.ErrClosedPipe)
		p.stdoutR.CloseWithError(io.ErrClosedPipe)
		p.stderrR.CloseWithError(io.ErrClosedPipe)
		<-p.done
	})
	return p.closeErr
}
