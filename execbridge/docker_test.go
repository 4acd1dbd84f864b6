package execbridge

import (
	"bytes"
	"context"
	"io"
	"io/fs"
	"log/slog"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dockssh/dockssh/internal/procscript"
)

func quietBackend(f *fakeDocker) *DockerBackend {
	return NewDockerBackend(f, &DockerConfig{Logger: slog.New(slog.DiscardHandler)})
}

func testTarget() Target { return Target{ID: "c0ffee", Name: "web1"} }

// startFake starts a process on the fake engine and returns it with its
// exec.
func startFake(t *testing.T, f *fakeDocker, spec ProcessSpec) (*dockerProcess, *fakeExec) {
	t.Helper()
	b := quietBackend(f)
	if spec.Target.ID == "" {
		spec.Target = testTarget()
	}
	if spec.Argv == nil {
		spec.Argv = []string{"/bin/sh", "-c", "true"}
	}
	p, err := b.Start(t.Context(), spec)
	require.NoError(t, err)
	return p.(*dockerProcess), f.next(t)
}

func TestDockerBackendStartCreatesTheExec(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFakeDocker()
		p, e := startFake(t, f, ProcessSpec{
			Argv: []string{"ls", "-l"},
			Env:  []string{"A=1", MarkerEnv + "=forged", "B=2"},
			User: "alice", Dir: "/srv",
		})
		o := e.opts
		assert.Equal(t, "c0ffee", e.ref)
		assert.Equal(t, []string{"ls", "-l"}, o.Cmd)
		assert.Equal(t, "alice", o.User)
		assert.Equal(t, "/srv", o.WorkingDir)
		assert.True(t, o.AttachStdin && o.AttachStdout && o.AttachStderr)
		assert.False(t, o.TTY)
		require.Len(t, o.Env, 3)
		assert.Equal(t, []string{"A=1", "B=2"}, o.Env[:2], "a marker from the caller is dropped")
		assert.Equal(t, MarkerEnv+"="+p.marker, o.Env[2])
		assert.Len(t, p.marker, 32, "128 random bits in hex")
		e.exit(0)
		require.NoError(t, p.Close())
	})
}

func TestDockerBackendStartRefuses(t *testing.T) {
	f := newFakeDocker()
	b := quietBackend(f)
	for _, tt := range []struct {
		name string
		spec ProcessSpec
	}{
		{"no container", ProcessSpec{Argv: []string{"true"}}},
		{"no argv", ProcessSpec{Target: testTarget()}},
		{"rows out of range", ProcessSpec{Target: testTarget(), Argv: []string{"sh"}, TTY: true, Rows: 70000, Cols: 80}},
		{"negative cols", ProcessSpec{Target: testTarget(), Argv: []string{"sh"}, TTY: true, Rows: 24, Cols: -1}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			p, err := b.Start(t.Context(), tt.spec)
			assert.Error(t, err)
			assert.Nil(t, p)
		})
	}
	assert.Empty(t, f.callCount(), "nothing reaches the engine")
}

func TestDockerBackendTerminalSize(t *testing.T) {
	for _, tt := range []struct {
		name       string
		version    string
		tty        bool
		rows, cols int
		wantResize bool
	}{
		{"old engine resizes after start", "1.41", true, 33, 99, true},
		{"new engine takes it at create", "1.42", true, 33, 99, false},
		{"unknown version resizes", "", true, 33, 99, true},
		{"no size", "1.41", true, 0, 0, false},
		{"no terminal", "1.41", false, 0, 0, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				f := newFakeDocker()
				f.version = tt.version
				p, e := startFake(t, f, ProcessSpec{TTY: tt.tty, Rows: tt.rows, Cols: tt.cols})
				assert.Equal(t, tt.tty, e.opts.TTY)
				assert.Equal(t, uint(tt.rows), e.opts.ConsoleSize.Height)
				assert.Equal(t, uint(tt.cols), e.opts.ConsoleSize.Width)
				assert.Equal(t, tt.wantResize, strings.Contains(f.callCount(), "ExecResize=1"), f.callCount())
				e.exit(0)
				require.NoError(t, p.Close())
			})
		})
	}
}

func TestDockerProcessDemux(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFakeDocker()
		p, e := startFake(t, f, ProcessSpec{})
		go func() {
			e.frame(1, "out1 ")
			e.frame(2, "err1 ")
			e.frame(1, "\x00\xffbinary")
			e.frame(2, "err2")
			e.exit(3)
		}()
		var errOut []byte
		var wg sync.WaitGroup
		wg.Go(func() { errOut, _ = io.ReadAll(p.Stderr()) })
		out, err := io.ReadAll(p)
		wg.Wait()
		require.NoError(t, err)
		assert.Equal(t, "out1 \x00\xffbinary", string(out))
		assert.Equal(t, "err1 err2", string(errOut))

		var ee *ExitError
		require.ErrorAs(t, p.Wait(t.Context()), &ee)
		assert.Equal(t, 3, ee.Code)
		assert.Equal(t, "ExecAttach=1 ExecCreate=1 ExecInspect=1", f.callCount(), "round trips of a whole process")
		f.resetCalls()
		require.NoError(t, p.Close())
		assert.Empty(t, f.callCount(), "Close after the exit was seen costs nothing")
		require.ErrorAs(t, p.Wait(t.Context()), &ee, "Wait again returns the same")
		assert.Empty(t, f.callCount())
	})
}

func TestDockerProcessEngineErrorInStream(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFakeDocker()
		p, e := startFake(t, f, ProcessSpec{})
		go func() {
			e.frame(1, "partial")
			e.frame(3, "engine says no")
			e.exit(1)
		}()
		go io.Copy(io.Discard, p.Stderr())
		out, err := io.ReadAll(p)
		assert.Equal(t, "partial", string(out))
		require.Error(t, err)
		assert.Contains(t, err.Error(), "engine says no")
		require.NoError(t, p.Close())
	})
}

func TestDockerProcessBackpressure(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFakeDocker()
		p, e := startFake(t, f, ProcessSpec{})
		const frames, size = 64, 16 << 10 // 1 MiB in all
		var sent int
		var mu sync.Mutex
		writerDone := make(chan struct{})
		go func() {
			defer close(writerDone)
			for range frames {
				if e.frame(1, strings.Repeat("x", size)) != nil {
					return
				}
				mu.Lock()
				sent += size
				mu.Unlock()
			}
			e.exit(0)
		}()
		// Nobody reads: once every goroutine is blocked, the engine
		// must have got rid of no more than what the demultiplexer holds
		// (one read buffer of 32 KiB) plus a frame in the pipe.
		synctest.Wait()
		mu.Lock()
		stalled := sent
		mu.Unlock()
		assert.LessOrEqual(t, stalled, 64<<10, "bytes accepted with nobody reading")
		select {
		case <-writerDone:
			t.Fatal("the engine wrote everything with nobody reading")
		default:
		}

		go io.Copy(io.Discard, p.Stderr())
		n, err := io.Copy(io.Discard, p)
		require.NoError(t, err)
		assert.Equal(t, int64(frames*size), n)
		<-writerDone
		require.NoError(t, p.Wait(t.Context()))
		require.NoError(t, p.Close())
	})
}

// A stalled stderr reader holds stdout back (one connection carries
// both), but Close always frees both readers.
func TestDockerProcessStalledStderrClose(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFakeDocker()
		f.helper = func(*fakeExec) string { return "dockssh-reap 1 0 0\n" }
		p, e := startFake(t, f, ProcessSpec{})
		go func() {
			e.frame(2, "nobody reads this")
			e.frame(1, "stdout waits behind stderr")
		}()
		readErr := make(chan error, 1)
		go func() {
			_, err := p.Read(make([]byte, 100))
			readErr <- err
		}()
		synctest.Wait()
		select {
		case err := <-readErr:
			t.Fatalf("Read returned (%v) while stderr is unread", err)
		default:
		}
		require.NoError(t, p.Close())
		assert.ErrorIs(t, <-readErr, errProcessClosed)
		_, err := p.Stderr().Read(make([]byte, 10))
		assert.ErrorIs(t, err, errProcessClosed)
	})
}

func TestDockerProcessTerminal(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFakeDocker()
		p, e := startFake(t, f, ProcessSpec{TTY: true, Rows: 24, Cols: 80})
		go func() {
			// A terminal's output is raw: no frame headers.
			e.engine.Write([]byte("\x01\x00\x00\x00raw\r\n"))
			e.exit(0)
		}()
		out, err := io.ReadAll(p)
		require.NoError(t, err)
		assert.Equal(t, "\x01\x00\x00\x00raw\r\n", string(out))
		n, err := p.Stderr().Read(make([]byte, 4))
		assert.Equal(t, 0, n)
		assert.Equal(t, io.EOF, err)
		require.NoError(t, p.Wait(t.Context()))
		require.NoError(t, p.Close())
		_, err = p.Read(make([]byte, 4))
		assert.ErrorIs(t, err, errProcessClosed)
	})
}

// Read after Close fails even when output is still buffered.
func TestDockerProcessTerminalReadAfterClose(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFakeDocker()
		f.helper = func(*fakeExec) string { return "dockssh-reap 1 0 0\n" }
		p, e := startFake(t, f, ProcessSpec{TTY: true})
		go e.engine.Write([]byte("prompt$ "))
		b := make([]byte, 1)
		_, err := p.Read(b)
		require.NoError(t, err)
		require.NoError(t, p.Close())
		_, err = p.Read(b)
		assert.ErrorIs(t, err, errProcessClosed)
	})
}

func TestDockerProcessCloseWrite(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFakeDocker()
		p, e := startFake(t, f, ProcessSpec{})
		go func() {
			// cat: echo the input, then a line after its end.
			in, _ := io.ReadAll(e.engine)
			e.frame(1, string(in))
			e.frame(1, "after eof")
			e.exit(0)
		}()
		go io.Copy(io.Discard, p.Stderr())
		_, err := io.WriteString(p, "hello ")
		require.NoError(t, err)
		require.NoError(t, p.CloseWrite())
		out, err := io.ReadAll(p)
		require.NoError(t, err)
		assert.Equal(t, "hello after eof", string(out))
		require.NoError(t, p.Wait(t.Context()))
		require.NoError(t, p.Close())
	})
}

// With a terminal, CloseWrite leaves the connection open: Docker would
// end the output stream (see DockerBackend).
func TestDockerProcessCloseWriteTerminal(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFakeDocker()
		p, e := startFake(t, f, ProcessSpec{TTY: true})
		got := make(chan string, 1)
		go func() {
			b := make([]byte, 10)
			n, _ := e.engine.Read(b)
			got <- string(b[:n])
		}()
		require.NoError(t, p.CloseWrite())
		_, err := io.WriteString(p, "^D")
		require.NoError(t, err, "input still open after CloseWrite")
		assert.Equal(t, "^D", <-got)
		e.exit(0)
		require.NoError(t, p.Close())
	})
}

func TestDockerProcessWaitPollsUntilExitRecorded(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFakeDocker()
		f.stillRunning = 3
		p, e := startFake(t, f, ProcessSpec{})
		e.exit(0)
		go io.Copy(io.Discard, p.Stderr())
		io.Copy(io.Discard, p)
		t0 := time.Now()
		require.NoError(t, p.Wait(t.Context()))
		assert.Equal(t, 2*time.Millisecond+4*time.Millisecond+8*time.Millisecond, time.Since(t0), "backoff")
		assert.Contains(t, f.callCount(), "ExecInspect=4")
		require.NoError(t, p.Close())
	})
}

func TestDockerProcessWaitGivesUp(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFakeDocker()
		f.stillRunning = 1 << 30
		p, e := startFake(t, f, ProcessSpec{})
		e.exit(0)
		go io.Copy(io.Discard, p.Stderr())
		io.Copy(io.Discard, p)
		t0 := time.Now()
		err := p.Wait(t.Context())
		require.Error(t, err)
		assert.Contains(t, err.Error(), "still running")
		took := time.Since(t0)
		assert.GreaterOrEqual(t, took, exitTimeout)
		assert.Less(t, took, exitTimeout+time.Second)
		f.mu.Lock()
		inspects := strings.Count(strings.Join(f.calls, " "), "ExecInspect")
		f.mu.Unlock()
		assert.Less(t, inspects, 70, "polling has a growing delay, not a hot loop")
		f.stillRunning = 0
		require.NoError(t, p.Close())
	})
}

func TestDockerProcessWaitHonoursContext(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFakeDocker()
		p, e := startFake(t, f, ProcessSpec{})
		ctx, cancel := context.WithTimeout(t.Context(), time.Second)
		defer cancel()
		err := p.Wait(ctx) // the output has not ended
		assert.ErrorIs(t, err, context.DeadlineExceeded)
		assert.NotContains(t, f.callCount(), "ExecInspect", "no polling before the output ends")
		e.exit(0)
		require.NoError(t, p.Close())
	})
}

func TestExitSignalRule(t *testing.T) {
	for _, tt := range []struct {
		name      string
		signal    string // delivered by Signal before the exit; "" none
		code      int
		wantSig   string
		wantError bool
	}{
		{"status 0", "", 0, "", false},
		{"plain status", "", 3, "", true},
		{"128+N without our signal", "", 143, "", true},
		{"our TERM, status 143", "TERM", 143, "TERM", true},
		{"our TERM, status 130", "TERM", 130, "", true},
		{"our INT, status 130", "INT", 130, "INT", true},
		{"our TERM, trapped, status 0", "TERM", 0, "", false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				f := newFakeDocker()
				f.helper = func(e *fakeExec) string { return "dockssh-signal sent 7\n" }
				p, e := startFake(t, f, ProcessSpec{})
				if tt.signal != "" {
					require.NoError(t, p.Signal(t.Context(), tt.signal))
				}
				e.exit(tt.code)
				go io.Copy(io.Discard, p.Stderr())
				io.Copy(io.Discard, p)
				err := p.Wait(t.Context())
				if !tt.wantError {
					require.NoError(t, err)
				} else {
					var ee *ExitError
					require.ErrorAs(t, err, &ee)
					assert.Equal(t, tt.code, ee.Code)
					assert.Equal(t, tt.wantSig, ee.Signal)
				}
				require.NoError(t, p.Close())
			})
		})
	}
}

func TestDockerProcessSignal(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFakeDocker()
		var helper *fakeExec
		f.helper = func(e *fakeExec) string {
			helper = e
			return "dockssh-signal sent 7\n"
		}
		p, e := startFake(t, f, ProcessSpec{User: "1000:1000"})
		f.resetCalls()
		require.NoError(t, p.Signal(t.Context(), "HUP"))
		assert.Equal(t, "ExecAttach=1 ExecCreate=1 ExecInspect=1", f.callCount())
		require.NotNil(t, helper)
		assert.Equal(t, procscript.SignalArgv(MarkerEnv+"="+p.marker, "HUP", 4242), helper.opts.Cmd,
			"values go as arguments, the script is constant")
		assert.Equal(t, "1000:1000", helper.opts.User, "the helper runs as the process's user")
		assert.False(t, helper.opts.AttachStdin)
		assert.Empty(t, helper.opts.Env, "the helper carries no marker")

		f.helper = func(*fakeExec) string { return "dockssh-signal none\n" }
		assert.ErrorIs(t, p.Signal(t.Context(), "TERM"), errNotRunning)
		f.helper = func(*fakeExec) string { return "OCI runtime exec failed: no /bin/sh\n" }
		err := p.Signal(t.Context(), "TERM")
		require.Error(t, err)
		assert.Contains(t, err.Error(), "no /bin/sh", "the engine's words are kept")

		e.exit(143)
		go io.Copy(io.Discard, p.Stderr())
		io.Copy(io.Discard, p)
		var ee *ExitError
		require.ErrorAs(t, p.Wait(t.Context()), &ee)
		assert.Empty(t, ee.Signal, "TERM was never delivered")
		f.resetCalls()
		assert.ErrorIs(t, p.Signal(t.Context(), "TERM"), errNotRunning)
		assert.Empty(t, f.callCount(), "a signal after the exit costs nothing")
		require.NoError(t, p.Close())
	})
}

func TestSignalNames(t *testing.T) {
	allowed := []string{"ABRT", "ALRM", "FPE", "HUP", "ILL", "INT", "KILL", "PIPE", "QUIT", "SEGV", "TERM", "USR1", "USR2"}
	seen := map[int]bool{}
	for _, name := range allowed {
		n, ok := procscript.SignalNumber(name)
		assert.True(t, ok, "SignalNumber(%q)", name)
		assert.False(t, seen[n], "SignalNumber(%q) = %d twice", name, n)
		seen[n] = true
	}
	synctest.Test(t, func(t *testing.T) {
		f := newFakeDocker()
		p, e := startFake(t, f, ProcessSpec{})
		f.resetCalls()
		for _, name := range []string{"", "SIGTERM", "term", "TERM ", "TERM; reboot", "$(id)", "`id`", "WINCH", "CHLD", "9", "-9", strings.Repeat("A", 1000)} {
			err := p.Signal(t.Context(), name)
			assert.Error(t, err, "Signal(%q)", name)
			assert.LessOrEqual(t, len(err.Error()), 120, "the name is clipped in the error")
		}
		assert.Empty(t, f.callCount(), "a refused name reaches no engine")
		e.exit(0)
		require.NoError(t, p.Close())
	})
}

func TestDockerProcessCloseReaps(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFakeDocker()
		var helper *fakeExec
		f.helper = func(e *fakeExec) string {
			helper = e
			return "dockssh-reap 3 1 0\n"
		}
		b := NewDockerBackend(f, &DockerConfig{Logger: slog.New(slog.DiscardHandler), KillGrace: 1500 * time.Millisecond})
		sp, err := b.Start(t.Context(), ProcessSpec{Target: testTarget(), Argv: []string{"sleep", "1000"}, User: "bob"})
		require.NoError(t, err)
		p := sp.(*dockerProcess)
		e := f.next(t)
		f.resetCalls()
		require.NoError(t, p.Close())
		assert.Equal(t, "ExecAttach=1 ExecCreate=1 ExecInspect=1", f.callCount())
		require.NotNil(t, helper)
		assert.Equal(t, procscript.ReapArgv(MarkerEnv+"="+p.marker, 1500*time.Millisecond), helper.opts.Cmd)
		assert.Equal(t, "bob", helper.opts.User)
		require.NoError(t, p.Close(), "a second Close")

		e.exit(137)
		var ee *ExitError
		require.ErrorAs(t, p.Wait(t.Context()), &ee)
		assert.Equal(t, "KILL", ee.Signal, "the cleanup's SIGKILL")
	})
}

func TestDockerProcessCloseReapFails(t *testing.T) {
	for _, tt := range []struct {
		name, out, want string
	}{
		{"no shell", "OCI runtime exec failed: exec: \"/bin/sh\": no such file\n", "no such file"},
		{"survivors", "dockssh-reap 2 2 1\n", "1 of 2 still running"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				f := newFakeDocker()
				f.helper = func(*fakeExec) string { return tt.out }
				var logs bytes.Buffer
				b := NewDockerBackend(f, &DockerConfig{Logger: slog.New(slog.NewTextHandler(&logs, nil))})
				p, err := b.Start(t.Context(), ProcessSpec{Target: testTarget(), Argv: []string{"sleep", "1000"}})
				require.NoError(t, err)
				e := f.next(t)
				err = p.Close()
				require.Error(t, err)
				assert.Contains(t, err.Error(), tt.want)
				assert.Contains(t, logs.String(), "processes may be left running")
				e.exit(137)
			})
		})
	}
}

// The output ended but nobody called Wait: Close asks the engine once and
// runs no helper when the process is gone.
func TestDockerProcessCloseAfterOutputEnd(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFakeDocker()
		p, e := startFake(t, f, ProcessSpec{})
		e.exit(0)
		go io.Copy(io.Discard, p.Stderr())
		io.Copy(io.Discard, p)
		f.resetCalls()
		require.NoError(t, p.Close())
		assert.Equal(t, "ExecInspect=1", f.callCount())
	})
}

// Signal and Close wait for the engine to start the process: before, the
// helper would find nothing and the process would start after it.
func TestDockerProcessWaitsForTheStart(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFakeDocker()
		f.helper = func(h *fakeExec) string {
			if h.opts.Cmd[2] == procscript.ReapScript {
				return "dockssh-reap 0 0 0\n"
			}
			return "dockssh-signal sent 9\n"
		}
		p, e := startFake(t, f, ProcessSpec{})
		e.mu.Lock()
		e.pid = 0 // starting
		e.mu.Unlock()
		go func() {
			time.Sleep(50 * time.Millisecond)
			e.mu.Lock()
			e.pid = 99
			e.mu.Unlock()
		}()
		t0 := time.Now()
		require.NoError(t, p.Signal(t.Context(), "INT"))
		assert.GreaterOrEqual(t, time.Since(t0), 50*time.Millisecond)
		e.exit(0)
		require.NoError(t, p.Close())
	})
}

func TestDockerProcessResize(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFakeDocker()
		p, e := startFake(t, f, ProcessSpec{})
		assert.Error(t, p.Resize(t.Context(), 24, 80), "no terminal")
		e.exit(0)
		require.NoError(t, p.Close())

		q, e := startFake(t, f, ProcessSpec{TTY: true})
		f.resetCalls()
		require.NoError(t, q.Resize(t.Context(), 50, 132))
		assert.Equal(t, "ExecResize=1", f.callCount())
		for _, size := range [][2]int{{-1, 80}, {24, -1}, {70000, 80}, {24, 70000}} {
			assert.Error(t, q.Resize(t.Context(), size[0], size[1]), "Resize(%v)", size)
		}
		e.exit(0)
		require.NoError(t, q.Close())
	})
}

// Every goroutine the backend starts ends with Close, in every state a
// process can be closed in.
func TestDockerProcessGoroutinesReturnToBaseline(t *testing.T) {
	before := runtime.NumGoroutine()
	f := newFakeDocker()
	f.helper = func(*fakeExec) string { return "dockssh-reap 1 0 0\n" }
	b := quietBackend(f)
	var engines sync.WaitGroup
	for i := range 20 {
		tty := i%2 == 0
		p, err := b.Start(t.Context(), ProcessSpec{Target: testTarget(), Argv: []string{"x"}, TTY: tty})
		require.NoError(t, err)
		e := f.next(t)
		switch i % 4 {
		case 0, 1: // running, output unread
			engines.Go(func() {
				if tty {
					e.engine.Write([]byte("unread"))
				} else {
					e.frame(1, "unread")
				}
			})
		case 2: // exited and waited for
			e.exit(0)
			go io.Copy(io.Discard, p.Stderr())
			io.Copy(io.Discard, p)
			require.NoError(t, p.Wait(t.Context()))
		case 3: // a reader and a writer blocked
			engines.Go(func() { io.Copy(io.Discard, e.engine) })
			go p.Read(make([]byte, 1))
			go p.Write(make([]byte, 100))
		}
		require.NoError(t, p.Close())
		e.engine.Close()
	}
	engines.Wait()
	deadline := time.Now().Add(10 * time.Second)
	for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
		runtime.Gosched()
		time.Sleep(time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > before {
		buf := make([]byte, 1<<20)
		t.Fatalf("%d goroutines after Close, %d before:\n%s", n, before, buf[:runtime.Stack(buf, true)])
	}
}

func TestShellDetection(t *testing.T) {
	exe := func(name string) container.PathStat { return container.PathStat{Name: name, Mode: 0o755} }
	link := func(target string) container.PathStat {
		return container.PathStat{Mode: fs.ModeSymlink | 0o777, LinkTarget: target}
	}
	for _, tt := range []struct {
		name  string
		files map[string]container.PathStat
		want  string // "" for an error
	}{
		// Debian: the engine resolves /bin -> usr/bin itself.
		{"debian", map[string]container.PathStat{"/bin/bash": exe("bash"), "/bin/sh": link("/usr/bin/dash"), "/usr/bin/dash": exe("dash")}, "/bin/bash"},
		{"bash only in /usr/bin", map[string]container.PathStat{"/usr/bin/bash": exe("bash"), "/bin/sh": exe("sh")}, "/usr/bin/bash"},
		{"busybox", map[string]container.PathStat{"/bin/sh": link("/bin/busybox"), "/bin/busybox": exe("busybox")}, "/bin/sh"},
		{"relative link", map[string]container.PathStat{"/bin/sh": link("busybox"), "/bin/busybox": exe("busybox")}, "/bin/sh"},
		{"dangling bash link", map[string]container.PathStat{"/bin/bash": link("/opt/gone"), "/bin/sh": exe("sh")}, "/bin/sh"},
		{"bash not executable", map[string]container.PathStat{"/bin/bash": {Mode: 0o644}, "/bin/sh": exe("sh")}, "/bin/sh"},
		{"link loop", map[string]container.PathStat{"/bin/sh": link("/bin/sh")}, ""},
		{"a directory", map[string]container.PathStat{"/bin/sh": {Mode: fs.ModeDir | 0o755}}, ""},
		{"scratch", map[string]container.PathStat{}, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeDocker()
			f.stats = tt.files
			b := quietBackend(f)
			sh, err := b.Shell(t.Context(), testTarget())
			if tt.want == "" {
				require.Error(t, err)
				assert.Contains(t, err.Error(), "has no shell")
				assert.Empty(t, sh)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.want, sh)
			f.resetCalls()
			sh, err = b.Shell(t.Context(), testTarget())
			require.NoError(t, err)
			assert.Equal(t, tt.want, sh)
			assert.Empty(t, f.callCount(), "the second answer comes from the cache")
		})
	}
}

func TestShellCacheIsBounded(t *testing.T) {
	var c shellCache
	for i := range 3 * shellCacheMax {
		c.put("c"+strconv.Itoa(i), "/bin/sh")
		require.LessOrEqual(t, c.len(), shellCacheMax)
	}
	c.put("last", "/bin/bash")
	sh, ok := c.get("last")
	assert.True(t, ok)
	assert.Equal(t, "/bin/bash", sh)
	// Replacing an entry of a full cache evicts nothing.
	n := c.len()
	c.put("last", "/bin/sh")
	assert.Equal(t, n, c.len())
}

func TestBackoff(t *testing.T) {
	bo := newBackoff(2*time.Millisecond, 20*time.Millisecond)
	var got []time.Duration
	for range 6 {
		got = append(got, bo.delay())
	}
	want := []time.Duration{2, 4, 8, 16, 20, 20}
	for i := range want {
		want[i] *= time.Millisecond
	}
	assert.Equal(t, want, got)
}

func TestAPIAtLeast(t *testing.T) {
	for _, tt := range []struct {
		v    string
		want bool
	}{
		{"1.41", false}, {"1.42", true}, {"1.9", false}, {"1.100", true}, {"2.0", true},
		{"", false}, {"1", false}, {"x.42", false}, {"1.-3", false}, {"1.42.1", false},
	} {
		if got := apiAtLeast(tt.v, 1, 42); got != tt.want {
			t.Errorf("apiAtLeast(%q, 1, 42) = %v, want %v", tt.v, got, tt.want)
		}
	}
}

func FuzzAPIAtLeast(f *testing.F) {
	for _, s := range []string{"1.41", "1.42", "1.55", "", "1", "2.0", "01.042", "1.4a"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		got := apiAtLeast(v, 1, 42)
		// Reference: two non-negative decimal numbers around one dot.
		ms, ns, ok := strings.Cut(v, ".")
		m, err1 := strconv.Atoi(ms)
		n, err2 := strconv.Atoi(ns)
		want := ok && err1 == nil && err2 == nil && m >= 0 && n >= 0 && (m > 1 || m == 1 && n >= 42)
		if got != want {
			t.Errorf("apiAtLeast(%q, 1, 42) = %v, want %v", v, got, want)
		}
	})
}
