package execbridge

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"

	"github.com/dockssh/dockssh/internal/procscript"
)

// halfPipeConn is one end of a synchronous in-memory connection that,
// unlike net.Pipe, can be half-closed (CloseWrite), as the hijacked
// connection to the engine can.
type halfPipeConn struct {
	r *io.PipeReader
	w *io.PipeWriter
}

// halfPipe returns the two ends of a connection: what one writes, the
// other reads, with no buffer in between.
func halfPipe() (a, b *halfPipeConn) {
	ar, bw := io.Pipe()
	br, aw := io.Pipe()
	return &halfPipeConn{r: ar, w: aw}, &halfPipeConn{r: br, w: bw}
}

func (c *halfPipeConn) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	if errors.Is(err, io.ErrClosedPipe) {
		err = net.ErrClosed
	}
	return n, err
}

func (c *halfPipeConn) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	if errors.Is(err, io.ErrClosedPipe) {
		err = net.ErrClosed
	}
	return n, err
}

func (c *halfPipeConn) CloseWrite() error { return c.w.Close() }

// Close closes both directions: the peer reads end of file, and its
// writes fail, as with a closed socket.
func (c *halfPipeConn) Close() error {
	c.r.CloseWithError(net.ErrClosed)
	c.w.Close()
	return nil
}

func (c *halfPipeConn) LocalAddr() net.Addr              { return pipeAddr{} }
func (c *halfPipeConn) RemoteAddr() net.Addr             { return pipeAddr{} }
func (c *halfPipeConn) SetDeadline(time.Time) error      { return errors.New("no deadlines") }
func (c *halfPipeConn) SetReadDeadline(time.Time) error  { return errors.New("no deadlines") }
func (c *halfPipeConn) SetWriteDeadline(time.Time) error { return errors.New("no deadlines") }

type pipeAddr struct{}

func (pipeAddr) Network() string { return "pipe" }
func (pipeAddr) String() string  { return "pipe" }

// fakeExec is an exec of the fake engine.
type fakeExec struct {
	id     string
	ref    string
	opts   client.ExecCreateOptions
	engine *halfPipeConn // the engine's end of the attached connection

	mu       sync.Mutex // guards the fields below
	started  bool
	running  bool
	exitCode int
	pid      int
}

// frame writes one multiplexed frame (stream 1 stdout, 2 stderr), as the
// engine does without a terminal.
func (e *fakeExec) frame(stream byte, data string) error {
	hdr := make([]byte, 8, 8+len(data))
	hdr[0] = stream
	binary.BigEndian.PutUint32(hdr[4:], uint32(len(data)))
	_, err := e.engine.Write(append(hdr, data...))
	return err
}

// exit records the exit status and ends the output stream.
func (e *fakeExec) exit(code int) {
	e.mu.Lock()
	e.running, e.exitCode = false, code
	e.mu.Unlock()
	e.engine.Close()
}

func (e *fakeExec) isHelper() bool {
	return len(e.opts.Cmd) > 2 && (e.opts.Cmd[2] == procscript.SignalScript || e.opts.Cmd[2] == procscript.ReapScript)
}

// fakeDocker is an Engine API client with an in-memory engine: execs
// start at attach, and the test (or helper, for the signal and cleanup
// helpers) plays the process on the engine's end of the connection.
type fakeDocker struct {
	version string
	// helper plays a helper exec: it gets the exec and returns what the
	// script would print on stdout; nil answers for "no process".
	helper func(e *fakeExec) string
	// stats are the files of every container, by path.
	stats map[string]container.PathStat
	// stillRunning is how many inspections after the exit still report
	// the exec running, as an engine that records the exit late.
	stillRunning int

	mu    sync.Mutex // guards the fields below
	calls []string
	execs []*fakeExec
	// attached receives every exec that is not a helper, once attached.
	attached chan *fakeExec
}

func newFakeDocker() *fakeDocker {
	return &fakeDocker{version: "1.41", attached: make(chan *fakeExec, 16)}
}

func (f *fakeDocker) call(name string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, name)
}

// callCount returns how many calls of each kind were made, as
// "ExecCreate=1 ExecAttach=1".
func (f *fakeDocker) callCount() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	counts := map[string]int{}
	for _, c := range f.calls {
		counts[c]++
	}
	var parts []string
	for _, k := range slices.Sorted(func(yield func(string) bool) {
		for k := range counts {
			if !yield(k) {
				return
			}
		}
	}) {
		parts = append(parts, k+"="+strconv.Itoa(counts[k]))
	}
	return strings.Join(parts, " ")
}

func (f *fakeDocker) resetCalls() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = nil
}

func (f *fakeDocker) exec(id string) (*fakeExec, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, e := range f.execs {
		if e.id == id {
			return e, nil
		}
	}
	return nil, fmt.Errorf("no such exec: %s", id)
}

func (f *fakeDocker) ExecCreate(ctx context.Context, ref string, o client.ExecCreateOptions) (client.ExecCreateResult, error) {
	f.call("ExecCreate")
	if err := ctx.Err(); err != nil {
		return client.ExecCreateResult{}, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	e := &fakeExec{id: "exec" + strconv.Itoa(len(f.execs)+1), ref: ref, opts: o}
	f.execs = append(f.execs, e)
	return client.ExecCreateResult{ID: e.id}, nil
}

func (f *fakeDocker) ExecAttach(ctx context.Context, id string, o client.ExecAttachOptions) (client.ExecAttachResult, error) {
	f.call("ExecAttach")
	e, err := f.exec(id)
	if err != nil {
		return client.ExecAttachResult{}, err
	}
	ours, engine := halfPipe()
	e.mu.Lock()
	e.engine, e.started, e.running, e.pid = engine, true, true, 4242
	e.mu.Unlock()
	if e.isHelper() {
		go func() {
			out := "dockssh-signal none\n"
			if e.opts.Cmd[2] == procscript.ReapScript {
				out = "dockssh-reap 0 0 0\n"
			}
			if f.helper != nil {
				out = f.helper(e)
			}
			// The helper reads no input: drain it so Close never blocks.
			go io.Copy(io.Discard, engine)
			e.frame(1, out)
			e.exit(0)
		}()
	} else {
		f.attached <- e
	}
	return client.ExecAttachResult{HijackedResponse: client.NewHijackedResponse(ours, "")}, nil
}

func (f *fakeDocker) ExecInspect(ctx context.Context, id string, o client.ExecInspectOptions) (client.ExecInspectResult, error) {
	f.call("ExecInspect")
	e, err := f.exec(id)
	if err != nil {
		return client.ExecInspectResult{}, err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	running := e.running
	if !running && e.started {
		f.mu.Lock()
		if f.stillRunning > 0 {
			f.stillRunning--
			running = true
		}
		f.mu.Unlock()
	}
	return client.ExecInspectResult{ID: id, Running: running, ExitCode: e.exitCode, PID: e.pid}, nil
}

func (f *fakeDocker) ExecResize(ctx context.Context, id string, o client.ExecResizeOptions) (client.ExecResizeResult, error) {
	f.call("ExecResize")
	if _, err := f.exec(id); err != nil {
		return client.ExecResizeResult{}, err
	}
	return client.ExecResizeResult{}, nil
}

func (f *fakeDocker) ContainerStatPath(ctx context.Context, ref string, o client.ContainerStatPathOptions) (client.ContainerStatPathResult, error) {
	f.call("ContainerStatPath")
	st, ok := f.stats[o.Path]
	if !ok {
		return client.ContainerStatPathResult{}, fmt.Errorf("request returned 404 Not Found for %s", o.Path)
	}
	return client.ContainerStatPathResult{Stat: st}, nil
}

func (f *fakeDocker) ClientVersion() string { return f.version }

// next returns the next attached (non-helper) exec.
func (f *fakeDocker) next(tb testing.TB) *fakeExec {
	tb.Helper()
	select {
	case e := <-f.attached:
		return e
	case <-time.After(10 * time.Second):
		tb.Fatal("no exec attached")
		return nil
	}
}

var _ DockerClient = (*fakeDocker)(nil)
