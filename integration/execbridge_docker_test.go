package integration

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/moby/moby/client"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dockssh/dockssh/execbridge"
	"github.com/dockssh/dockssh/integration/internal/harness"
)

// dockerBackendKillGrace is the tests' KillGrace: short, so the
// SIGKILL path is quick, long enough to tell it from the TERM path.
const dockerBackendKillGrace = time.Second

// countingDocker counts the Engine API calls of a DockerBackend.
type countingDocker struct {
	execbridge.DockerClient
	create, attach, inspect, resize, stat atomic.Int64
}

func (c *countingDocker) ExecCreate(ctx context.Context, id string, o client.ExecCreateOptions) (client.ExecCreateResult, error) {
	c.create.Add(1)
	return c.DockerClient.ExecCreate(ctx, id, o)
}

func (c *countingDocker) ExecAttach(ctx context.Context, id string, o client.ExecAttachOptions) (client.ExecAttachResult, error) {
	c.attach.Add(1)
	return c.DockerClient.ExecAttach(ctx, id, o)
}

func (c *countingDocker) ExecInspect(ctx context.Context, id string, o client.ExecInspectOptions) (client.ExecInspectResult, error) {
	c.inspect.Add(1)
	return c.DockerClient.ExecInspect(ctx, id, o)
}

func (c *countingDocker) ExecResize(ctx context.Context, id string, o client.ExecResizeOptions) (client.ExecResizeResult, error) {
	c.resize.Add(1)
	return c.DockerClient.ExecResize(ctx, id, o)
}

func (c *countingDocker) ContainerStatPath(ctx context.Context, id string, o client.ContainerStatPathOptions) (client.ContainerStatPathResult, error) {
	c.stat.Add(1)
	return c.DockerClient.ContainerStatPath(ctx, id, o)
}

func (c *countingDocker) counts() string {
	return fmt.Sprintf("create=%d attach=%d inspect=%d resize=%d stat=%d",
		c.create.Load(), c.attach.Load(), c.inspect.Load(), c.resize.Load(), c.stat.Load())
}

func (c *countingDocker) reset() {
	for _, n := range []*atomic.Int64{&c.create, &c.attach, &c.inspect, &c.resize, &c.stat} {
		n.Store(0)
	}
}

// testLogWriter sends log lines to t.Log.
type testLogWriter struct{ tb testing.TB }

func (w testLogWriter) Write(p []byte) (int, error) {
	w.tb.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// dockerBackendTarget is a running container to test the backend in.
type dockerBackendTarget struct {
	*harness.Target
	debian bool
}

func (d dockerBackendTarget) target() execbridge.Target {
	return execbridge.Target{ID: d.ID, Name: d.Name}
}

// liveProcesses lists the processes in the container that are not
// zombies, as "STAT ARGS" lines: with ps in Debian, from /proc in the
// busybox target.
func (d dockerBackendTarget) liveProcesses(tb testing.TB) []string {
	tb.Helper()
	var out string
	if d.debian {
		out = d.Exec(tb, "ps", "-eo", "stat=,args=")
	} else {
		out = d.Exec(tb, "/bin/sh", "-c", `for d in /proc/[0-9]*; do
			{ read -r s <"$d/stat"; } 2>/dev/null || continue
			s=${s##*") "}; set -- $s
			printf '%s %s\n' "$1" "$(tr '\0' ' ' <"$d/cmdline" 2>/dev/null)"
		done`)
	}
	var live []string
	for line := range strings.Lines(out) {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "Z") {
			continue
		}
		live = append(live, line)
	}
	return live
}

// kill kills the processes whose command line is cmdline (busybox has no
// pkill).
func (d dockerBackendTarget) kill(tb testing.TB, cmdline string) {
	tb.Helper()
	d.Exec(tb, "/bin/sh", "-c", `for d in /proc/[0-9]*; do
		[ "$(tr '\0' ' ' <"$d/cmdline" 2>/dev/null)" = "$1 " ] && kill -9 "${d#/proc/}"
	done; true`, "kill", cmdline)
}

// processesWith returns the live processes whose line holds word.
func (d dockerBackendTarget) processesWith(tb testing.TB, word string) []string {
	tb.Helper()
	var found []string
	for _, l := range d.liveProcesses(tb) {
		if strings.Contains(l, word) && !strings.Contains(l, "ps -eo") && !strings.Contains(l, "/proc/[0-9]") {
			found = append(found, l)
		}
	}
	return found
}

// uniqueSleep returns a sleep duration in seconds that no other test
// uses, so its processes can be found by their command line.
func uniqueSleep(tb testing.TB) string {
	tb.Helper()
	n, err := rand.Int(rand.Reader, big.NewInt(800000))
	require.NoError(tb, err)
	return strconv.FormatInt(100000+n.Int64(), 10)
}

// dockerBackendEnv is a backend on the local engine, with its call
// counter, and the two kinds of targets.
type dockerBackendEnv struct {
	docker  *countingDocker
	backend *execbridge.DockerBackend
	targets []dockerBackendTarget
}

func newDockerBackendEnv(t *testing.T) *dockerBackendEnv {
	t.Helper()
	cli := harness.Docker(t)
	cd := &countingDocker{DockerClient: cli}
	logger := slog.New(slog.NewTextHandler(testLogWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	e := &dockerBackendEnv{
		docker:  cd,
		backend: execbridge.NewDockerBackend(cd, &execbridge.DockerConfig{Logger: logger, KillGrace: dockerBackendKillGrace}),
	}
	var wg sync.WaitGroup
	var bb, deb *harness.Target
	wg.Go(func() { bb = harness.StartTarget(t, "backend-busybox") })
	wg.Go(func() { deb = harness.StartDebian(t, "backend-debian") })
	wg.Wait()
	if bb == nil || deb == nil {
		t.FailNow()
	}
	e.targets = []dockerBackendTarget{{Target: bb}, {Target: deb, debian: true}}
	return e
}

// run runs subtest f once per target.
// The targets run at the same time, unless the subtest counts the
// backend's API calls (runSerial): each is a container of its own.
func (e *dockerBackendEnv) run(t *testing.T, name string, f func(t *testing.T, d dockerBackendTarget)) {
	e.runTargets(t, name, true, f)
}

// runSerial is run for subtests that count API calls, which the other
// target's calls would disturb.
func (e *dockerBackendEnv) runSerial(t *testing.T, name string, f func(t *testing.T, d dockerBackendTarget)) {
	e.runTargets(t, name, false, f)
}

func (e *dockerBackendEnv) runTargets(t *testing.T, name string, parallel bool, f func(t *testing.T, d dockerBackendTarget)) {
	t.Run(name, func(t *testing.T) {
		for _, d := range e.targets {
			kind := "busybox"
			if d.debian {
				kind = "debian"
			}
			t.Run(kind, func(t *testing.T) {
				if parallel {
					t.Parallel()
				}
				f(t, d)
			})
		}
	})
}

func (e *dockerBackendEnv) start(tb testing.TB, spec execbridge.ProcessSpec) execbridge.Process {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	p, err := e.backend.Start(ctx, spec)
	require.NoError(tb, err, "Start(%q)", spec.Argv)
	tb.Cleanup(func() { p.Close() })
	return p
}

// readAll reads the process's stdout and stderr to their ends, at the same
// time, as the rule of the backend asks.
func readAll(tb testing.TB, p execbridge.Process) (stdout, stderr []byte) {
	tb.Helper()
	var wg sync.WaitGroup
	var errOut []byte
	var errErr error
	wg.Go(func() { errOut, errErr = io.ReadAll(p.Stderr()) })
	out, err := io.ReadAll(p)
	wg.Wait()
	require.NoError(tb, err, "read stdout")
	require.NoError(tb, errErr, "read stderr")
	return out, errOut
}

func waitExit(tb testing.TB, p execbridge.Process) error {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return p.Wait(ctx)
}

// TestDockerBackend runs the Docker implementation of the execbridge
// process interface against the real dockerd, in a busybox-only target
// and a Debian target.
func TestDockerBackend(t *testing.T) {
	t.Parallel()
	e := newDockerBackendEnv(t)

	e.run(t, "StdoutStderrApart", func(t *testing.T, d dockerBackendTarget) {
		p := e.start(t, execbridge.ProcessSpec{Target: d.target(), Argv: []string{"/bin/sh", "-c", "echo out; echo err >&2; echo out2"}})
		out, errOut := readAll(t, p)
		assert.Equal(t, "out\nout2\n", string(out))
		assert.Equal(t, "err\n", string(errOut))
		assert.NoError(t, waitExit(t, p))
	})

	e.run(t, "Binary10MBBothWays", func(t *testing.T, d dockerBackendTarget) {
		for _, stream := range []string{"stdout", "stderr"} {
			t.Run(stream, func(t *testing.T) {
				data := make([]byte, 10<<20)
				rand.Read(data)
				want := sha256.Sum256(data)
				cmd := "cat"
				if stream == "stderr" {
					cmd = "cat >&2"
				}
				p := e.start(t, execbridge.ProcessSpec{Target: d.target(), Argv: []string{"/bin/sh", "-c", cmd}})
				var wg sync.WaitGroup
				wg.Go(func() {
					if _, err := io.Copy(p, bytes.NewReader(data)); err != nil {
						t.Errorf("write stdin: %v", err)
					}
					if err := p.CloseWrite(); err != nil {
						t.Errorf("CloseWrite: %v", err)
					}
				})
				out, errOut := readAll(t, p)
				wg.Wait()
				got, other := out, errOut
				if stream == "stderr" {
					got, other = errOut, out
				}
				assert.Equal(t, len(data), len(got), "bytes back on %s", stream)
				assert.Equal(t, want, sha256.Sum256(got), "sha256 of %s", stream)
				assert.Empty(t, other, "the other stream")
				assert.NoError(t, waitExit(t, p))
			})
		}
	})

	e.run(t, "TTYRawStream", func(t *testing.T, d dockerBackendTarget) {
		p := e.start(t, execbridge.ProcessSpec{Target: d.target(), TTY: true, Rows: 24, Cols: 80,
			Argv: []string{"/bin/sh", "-c", "echo out; echo err >&2"}})
		out, err := io.ReadAll(p)
		require.NoError(t, err)
		assert.Equal(t, "out\r\nerr\r\n", string(out), "a terminal merges the streams and maps newlines")
		n, err := p.Stderr().Read(make([]byte, 10))
		assert.Equal(t, 0, n)
		assert.Equal(t, io.EOF, err, "Stderr with a terminal is empty")
		assert.NoError(t, waitExit(t, p))
	})

	e.run(t, "CloseWriteThenOutputFlows", func(t *testing.T, d dockerBackendTarget) {
		p := e.start(t, execbridge.ProcessSpec{Target: d.target(), Argv: []string{"/bin/sh", "-c", "cat; echo after-eof; exit 4"}})
		_, err := io.WriteString(p, "hello\n")
		require.NoError(t, err)
		buf := make([]byte, 6)
		_, err = io.ReadFull(p, buf)
		require.NoError(t, err)
		assert.Equal(t, "hello\n", string(buf), "cat echoes before end of input")
		require.NoError(t, p.CloseWrite())
		out, _ := readAll(t, p)
		assert.Equal(t, "after-eof\n", string(out), "output after end of input")
		var ee *execbridge.ExitError
		require.ErrorAs(t, waitExit(t, p), &ee)
		assert.Equal(t, 4, ee.Code)
	})

	e.run(t, "ExitStatus", func(t *testing.T, d dockerBackendTarget) {
		for _, tt := range []struct {
			script string
			code   int
		}{
			{"exit 0", 0},
			{"exit 3", 3},
			// A status of 128+N that is no signal of ours stays a status.
			{"exit 130", 130},
			{"kill -TERM $$", 143},
		} {
			t.Run(tt.script, func(t *testing.T) {
				p := e.start(t, execbridge.ProcessSpec{Target: d.target(), Argv: []string{"/bin/sh", "-c", tt.script}})
				readAll(t, p)
				err := waitExit(t, p)
				if tt.code == 0 {
					assert.NoError(t, err)
					return
				}
				var ee *execbridge.ExitError
				require.ErrorAs(t, err, &ee)
				assert.Equal(t, tt.code, ee.Code)
				assert.Empty(t, ee.Signal, "the backend did not signal the process; it cannot tell a signal from exit(%d)", tt.code)
			})
		}
	})

	e.run(t, "Signal", func(t *testing.T, d dockerBackendTarget) {
		for _, user := range []string{"", "65534"} {
			for _, tty := range []bool{false, true} {
				t.Run(fmt.Sprintf("user=%q/tty=%v", user, tty), func(t *testing.T) {
					secs := uniqueSleep(t)
					p := e.start(t, execbridge.ProcessSpec{Target: d.target(), User: user, TTY: tty, Rows: 24, Cols: 80, Argv: []string{"sleep", secs}})
					require.NoError(t, p.Signal(t.Context(), "TERM"))
					readAll(t, p)
					var ee *execbridge.ExitError
					require.ErrorAs(t, waitExit(t, p), &ee)
					assert.Equal(t, 143, ee.Code)
					assert.Equal(t, "TERM", ee.Signal)
					assert.Empty(t, d.processesWith(t, secs))
					assert.Error(t, p.Signal(t.Context(), "TERM"), "signal after the exit")
				})
			}
		}
	})

	e.runSerial(t, "SignalReachesTheMainProcessOnly", func(t *testing.T, d dockerBackendTarget) {
		secs := uniqueSleep(t)
		p := e.start(t, execbridge.ProcessSpec{Target: d.target(),
			Argv: []string{"/bin/sh", "-c", `trap 'echo got-usr1; exit 7' USR1; echo ready; sleep ` + secs + ` & wait`}})
		buf := make([]byte, 6)
		_, err := io.ReadFull(p, buf)
		require.NoError(t, err)
		require.Equal(t, "ready\n", string(buf))
		require.NoError(t, p.Signal(t.Context(), "USR1"))
		out, _ := readAll(t, p)
		assert.Equal(t, "got-usr1\n", string(out))
		var ee *execbridge.ExitError
		require.ErrorAs(t, waitExit(t, p), &ee)
		assert.Equal(t, 7, ee.Code)
		assert.Empty(t, ee.Signal, "exit 7 is no death by signal")
		assert.Len(t, d.processesWith(t, secs), 1, "the child of the shell got no signal")
		// The exit was seen: Close leaves the background child alone,
		// as sshd does, and runs no exec.
		e.docker.reset()
		require.NoError(t, p.Close())
		assert.Equal(t, "create=0 attach=0 inspect=0 resize=0 stat=0", e.docker.counts())
		assert.Len(t, d.processesWith(t, secs), 1)
		d.kill(t, "sleep "+secs)
	})

	e.runSerial(t, "SignalNamesAreChecked", func(t *testing.T, d dockerBackendTarget) {
		p := e.start(t, execbridge.ProcessSpec{Target: d.target(), Argv: []string{"sleep", uniqueSleep(t)}})
		e.docker.reset()
		for _, name := range []string{"", "SIGTERM", "term", "TERM; id", "$(id)", "WINCH", "9"} {
			assert.Error(t, p.Signal(t.Context(), name), "Signal(%q)", name)
		}
		assert.Equal(t, "create=0 attach=0 inspect=0 resize=0 stat=0", e.docker.counts(), "a refused name costs no API call")
	})

	e.run(t, "CloseLeavesNoProcess", func(t *testing.T, d dockerBackendTarget) {
		for _, tt := range []struct {
			name, script string
			ignoresTERM  bool
		}{
			{"sleep", "exec sleep SECS", false},
			{"shell-with-children", "sleep SECS & sleep SECS & sleep SECS; wait", false},
			{"ignores-HUP-and-TERM", "trap '' HUP TERM; sleep SECS", true},
			{"setsid-and-env-cleared", "setsid sleep SECS & env -i sleep SECS & wait", false},
		} {
			for _, tty := range []bool{false, true} {
				t.Run(fmt.Sprintf("%s/tty=%v", tt.name, tty), func(t *testing.T) {
					secs := uniqueSleep(t)
					p := e.start(t, execbridge.ProcessSpec{Target: d.target(), TTY: tty, Rows: 24, Cols: 80,
						Argv: []string{"/bin/sh", "-c", "echo started; " + strings.ReplaceAll(tt.script, "SECS", secs)}})
					buf := make([]byte, 7)
					_, err := io.ReadFull(p, buf)
					require.NoError(t, err)
					require.Eventually(t, func() bool { return len(d.processesWith(t, "sleep "+secs)) > 0 }, 10*time.Second, 20*time.Millisecond)
					t0 := time.Now()
					require.NoError(t, p.Close())
					took := time.Since(t0)
					assert.Empty(t, d.processesWith(t, secs), "processes left after Close")
					if tt.ignoresTERM {
						assert.GreaterOrEqual(t, took, dockerBackendKillGrace, "killed before the grace period")
					}
					assert.Less(t, took, dockerBackendKillGrace+5*time.Second, "Close took too long")
					_, err = p.Read(buf)
					assert.Error(t, err, "Read after Close")
				})
			}
		}
	})

	e.run(t, "CloseUnblocksReadAndWrite", func(t *testing.T, d dockerBackendTarget) {
		p := e.start(t, execbridge.ProcessSpec{Target: d.target(), Argv: []string{"sleep", uniqueSleep(t)}})
		errs := make(chan error, 3)
		go func() { _, err := p.Read(make([]byte, 10)); errs <- err }()
		go func() { _, err := p.Stderr().Read(make([]byte, 10)); errs <- err }()
		go func() {
			// sleep reads no input: the write blocks once the buffers
			// between here and the process are full.
			_, err := io.Copy(p, zeroReader{})
			errs <- err
		}()
		require.NoError(t, p.Close())
		for range 3 {
			select {
			case err := <-errs:
				assert.Error(t, err)
			case <-time.After(10 * time.Second):
				t.Fatal("a Read or Write still blocked after Close")
			}
		}
	})

	e.run(t, "BackgroundChildDoesNotHoldTheOutput", func(t *testing.T, d dockerBackendTarget) {
		for _, tty := range []bool{false, true} {
			t.Run(fmt.Sprintf("tty=%v", tty), func(t *testing.T) {
				secs := uniqueSleep(t)
				p := e.start(t, execbridge.ProcessSpec{Target: d.target(), TTY: tty, Rows: 24, Cols: 80,
					Argv: []string{"/bin/sh", "-c", "trap '' HUP; sleep " + secs + " & echo bye; exit 0"}})
				t0 := time.Now()
				out, _ := readAll(t, p)
				took := time.Since(t0)
				assert.Contains(t, string(out), "bye")
				assert.Less(t, took, 5*time.Second, "the output must end soon after the main process exits")
				t.Logf("output ended %v after the start (tty=%v)", took, tty)
				assert.NoError(t, waitExit(t, p))
				assert.Len(t, d.processesWith(t, secs), 1, "the background child runs on")
				d.kill(t, "sleep "+secs)
			})
		}
	})

	e.runSerial(t, "Shell", func(t *testing.T, d dockerBackendTarget) {
		want := "/bin/sh"
		if d.debian {
			want = "/bin/bash"
		}
		e.docker.reset()
		sh, err := e.backend.Shell(t.Context(), d.target())
		require.NoError(t, err)
		assert.Equal(t, want, sh)
		t.Logf("Shell: %s", e.docker.counts())
		e.docker.reset()
		sh, err = e.backend.Shell(t.Context(), d.target())
		require.NoError(t, err)
		assert.Equal(t, want, sh)
		assert.Equal(t, int64(0), e.docker.stat.Load(), "the second call is answered from the cache")
	})

	t.Run("NoGrepNoShell", func(t *testing.T) {
		// busybox's sh runs its own grep even without /bin/grep: take
		// Debian's away.
		deb := harness.StartDebian(t, "backend-nogrep")
		p := e.start(t, execbridge.ProcessSpec{Target: execbridge.Target{ID: deb.ID}, Argv: []string{"sleep", uniqueSleep(t)}})
		deb.Exec(t, "rm", "/usr/bin/grep")
		err := p.Close()
		require.Error(t, err, "without grep Close cannot find the processes, and says so")
		assert.Contains(t, err.Error(), "no grep")

		bare := harness.StartTarget(t, "backend-noshell")
		p = e.start(t, execbridge.ProcessSpec{Target: execbridge.Target{ID: bare.ID}, Argv: []string{"sleep", uniqueSleep(t)}})
		bare.Exec(t, "/bin/busybox", "rm", "/bin/sh")
		_, err = e.backend.Shell(t.Context(), execbridge.Target{ID: bare.ID, Name: bare.Name})
		require.Error(t, err)
		assert.Contains(t, err.Error(), "has no shell")
		assert.Error(t, p.Close(), "without /bin/sh Close cannot end the process, and says so")
	})

	t.Run("Resize", func(t *testing.T) {
		d := e.targets[1]
		p := e.start(t, execbridge.ProcessSpec{Target: d.target(), TTY: true, Rows: 33, Cols: 99,
			Argv: []string{"/bin/sh", "-c", "read x; stty size; read x; stty size"}})
		var out bytes.Buffer
		readUntil := func(want string) {
			t.Helper()
			buf := make([]byte, 256)
			for !strings.Contains(out.String(), want) {
				n, err := p.Read(buf)
				out.Write(buf[:n])
				require.NoError(t, err, "reading for %q, got %q", want, out.String())
			}
		}
		_, err := io.WriteString(p, "\n")
		require.NoError(t, err)
		readUntil("33 99")
		require.NoError(t, p.Resize(t.Context(), 50, 120))
		_, err = io.WriteString(p, "\n")
		require.NoError(t, err)
		readUntil("50 120")

		q := e.start(t, execbridge.ProcessSpec{Target: d.target(), Argv: []string{"true"}})
		assert.Error(t, q.Resize(t.Context(), 10, 10), "resize without a terminal")
		assert.Error(t, p.Resize(t.Context(), -1, 10), "a negative size")
	})

	e.runSerial(t, "RoundTrips", func(t *testing.T, d dockerBackendTarget) {
		e.docker.reset()
		p, err := e.backend.Start(t.Context(), execbridge.ProcessSpec{Target: d.target(), Argv: []string{"true"}})
		require.NoError(t, err)
		readAll(t, p)
		require.NoError(t, waitExit(t, p))
		require.NoError(t, p.Close())
		t.Logf("Start+Wait+Close of true: %s", e.docker.counts())
		assert.Equal(t, int64(1), e.docker.create.Load())
		assert.Equal(t, int64(1), e.docker.attach.Load())
		assert.LessOrEqual(t, e.docker.inspect.Load(), int64(3))
		assert.Equal(t, int64(0), e.docker.resize.Load()+e.docker.stat.Load())
	})

	e.run(t, "EnvUserDir", func(t *testing.T, d dockerBackendTarget) {
		p := e.start(t, execbridge.ProcessSpec{Target: d.target(), User: "65534", Dir: "/proc",
			Env:  []string{"FOO=bar baz", execbridge.MarkerEnv + "=forged"},
			Argv: []string{"/bin/sh", "-c", `echo "$FOO|$(id -u)|$(pwd)|${` + execbridge.MarkerEnv + `}"`}})
		out, _ := readAll(t, p)
		f := strings.Split(strings.TrimSpace(string(out)), "|")
		require.Len(t, f, 4, "%q", out)
		assert.Equal(t, []string{"bar baz", "65534", "/proc"}, f[:3])
		assert.Len(t, f[3], 32, "the marker is the backend's, not the forged one")
		assert.NoError(t, waitExit(t, p))
	})
}

type zeroReader struct{}

func (zeroReader) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}

// TestDockerBackendBackpressure checks that a process whose output nobody
// reads is blocked, not buffered: it writes 64 KiB blocks and counts them
// in a file; the count must stop growing well below what it tries to
// write, and resume once the output is read.
func TestDockerBackendBackpressure(t *testing.T) {
	t.Parallel()
	e := &dockerBackendEnv{}
	cli := harness.Docker(t)
	e.backend = execbridge.NewDockerBackend(cli, nil)
	d := dockerBackendTarget{Target: harness.StartDebian(t, "backend-pressure"), debian: true}
	const blocks = 2048 // 128 MiB
	p := e.start(t, execbridge.ProcessSpec{Target: d.target(), Argv: []string{"/bin/sh", "-c",
		`i=0; while [ $i -lt ` + strconv.Itoa(blocks) + ` ]; do head -c 65536 /dev/zero; i=$((i+1)); echo $i >/tmp/progress; done`}})
	progress := func() int {
		out := strings.TrimSpace(d.Exec(t, "/bin/sh", "-c", "cat /tmp/progress 2>/dev/null || echo 0"))
		n, _ := strconv.Atoi(out)
		return n
	}
	// Wait until the count stands still: the writer is blocked.
	last, still := -1, 0
	require.Eventually(t, func() bool {
		n := progress()
		if n == last {
			still++
		} else {
			last, still = n, 0
		}
		return still >= 3
	}, time.Minute, 300*time.Millisecond)
	t.Logf("writer stalled after %d blocks of 64 KiB (%d KiB) with nobody reading", last, last*64)
	assert.Less(t, last, 256, "more than 16 MiB went out with nobody reading")

	go io.Copy(io.Discard, p.Stderr())
	n, err := io.Copy(io.Discard, p)
	require.NoError(t, err)
	assert.Equal(t, int64(blocks)*65536, n)
	assert.NoError(t, waitExit(t, p))
}

// BenchmarkDockerBackendStart measures a whole short process through the
// backend (Start, read to the end, Wait, Close of `true`) beside
// `docker exec CONTAINER true` run by the Docker CLI, in one run:
//
//	go test -run XXX -bench BenchmarkDockerBackendStart -benchtime 20x ./integration/
func BenchmarkDockerBackendStart(b *testing.B) {
	cli := harness.Docker(b)
	d := harness.StartTarget(b, "backend-bench")
	backend := execbridge.NewDockerBackend(cli, nil)
	target := execbridge.Target{ID: d.ID, Name: d.Name}
	ctx := context.Background()

	b.Run("backend", func(b *testing.B) {
		for b.Loop() {
			p, err := backend.Start(ctx, execbridge.ProcessSpec{Target: target, Argv: []string{"true"}})
			if err != nil {
				b.Fatal(err)
			}
			go io.Copy(io.Discard, p.Stderr())
			io.Copy(io.Discard, p)
			if err := p.Wait(ctx); err != nil {
				b.Fatal(err)
			}
			p.Close()
		}
	})
	b.Run("docker-exec-cli", func(b *testing.B) {
		for b.Loop() {
			if out, err := exec.Command("docker", "exec", d.Name, "true").CombinedOutput(); err != nil {
				b.Fatalf("docker exec: %v: %s", err, out)
			}
		}
	})
}
