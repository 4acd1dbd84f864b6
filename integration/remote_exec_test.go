package integration

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/moby/moby/api/types/container"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dockssh/dockssh/integration/internal/harness"
)

// remoteExecBuilds holds one build of examples/remote-exec per set of
// build tags, made once per test process.
var remoteExecBuilds sync.Map // tags -> *remoteExecBuild

type remoteExecBuild struct {
	once sync.Once
	path string
	err  error
}

// remoteExecBinary builds examples/remote-exec with the build tags (""
// for none) once per test process.
func remoteExecBinary(tb testing.TB, tags string) string {
	tb.Helper()
	v, _ := remoteExecBuilds.LoadOrStore(tags, &remoteExecBuild{})
	b := v.(*remoteExecBuild)
	b.once.Do(func() {
		dir, err := os.MkdirTemp("", "remote-exec-test-")
		if err != nil {
			b.err = err
			return
		}
		atExit(func() { os.RemoveAll(dir) })
		bin := filepath.Join(dir, "remote-exec")
		args := []string{"build", "-tags", tags, "-o", bin}
		if raceEnabled() {
			// go test -race checks the example too.
			args = append(args, "-race")
		}
		cmd := exec.Command("go", append(args, "./examples/remote-exec")...)
		cmd.Dir = harness.RepoRoot()
		if out, err := cmd.CombinedOutput(); err != nil {
			b.err = fmt.Errorf("go build -tags %q ./examples/remote-exec: %v: %s", tags, err, out)
			return
		}
		b.path = bin
	})
	require.NoError(tb, b.err)
	return b.path
}

// raceEnabled reports whether this test binary was built with -race.
func raceEnabled() bool {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return false
	}
	for _, s := range bi.Settings {
		if s.Key == "-race" {
			return s.Value == "true"
		}
	}
	return false
}

// remoteExecEnv runs examples/remote-exec against one sshd: an ssh_config
// whose Host alias leads to it with the test's key and known_hosts, and a
// HOME of its own.
type remoteExecEnv struct {
	bin, config string
	env         []string
}

func newRemoteExecEnv(tb testing.TB, sshd *harness.SSHD) *remoteExecEnv {
	tb.Helper()
	config := writeFile(tb, "ssh_config", fmt.Sprintf(`Host remote-exec-test
    HostName %s
    Port %d
    User %s
    IdentityFile %s
    IdentitiesOnly yes
    IdentityAgent none
    UserKnownHostsFile %s
`, sshd.Host, sshd.Port, sshd.User, sshd.ClientKeyPath, sshd.WriteKnownHosts(tb)))
	return &remoteExecEnv{bin: remoteExecBinary(tb, ""), config: config, env: cleanEnv(tb)}
}

// argv is the command line of remote-exec with flags, then the container
// and its command.
func (e *remoteExecEnv) argv(flags []string, container string, cmd ...string) []string {
	args := append([]string{e.bin, "-F", e.config}, flags...)
	return append(append(args, "ssh://remote-exec-test", container), cmd...)
}

func (e *remoteExecEnv) cmd(tb testing.TB, flags []string, container string, cmd ...string) *exec.Cmd {
	argv := e.argv(flags, container, cmd...)
	c := exec.CommandContext(tb.Context(), argv[0], argv[1:]...)
	c.Env = e.env
	return c
}

// terminal runs remote-exec in tmux, between two `stty -a` of the
// terminal it runs in, written to the returned files.
func (e *remoteExecEnv) terminal(tb testing.TB, rows, cols int, flags []string, container string, cmd ...string) (term *tmuxTerm, before, after string) {
	tb.Helper()
	dir := tb.TempDir()
	before, after = filepath.Join(dir, "stty-before"), filepath.Join(dir, "stty-after")
	script := `b=$1 a=$2; shift 2; stty -a >"$b"; "$@"; s=$?; stty -a >"$a"; exit $s`
	argv := append([]string{"sh", "-c", script, "sh", before, after}, e.argv(flags, container, cmd...)...)
	return newTmux(tb, rows, cols, argv, e.env), before, after
}

// assertSameTerminal checks that the terminal's settings (stty -a,
// without its first line: speed and size) in the files before and after
// are the same.
func assertSameTerminal(tb testing.TB, before, after string) {
	tb.Helper()
	settings := func(path string) string {
		s := readFile(tb, path)
		require.Contains(tb, s, "\n", "stty -a in %s", path)
		_, rest, _ := strings.Cut(s, "\n")
		return rest
	}
	b := settings(before)
	assert.Contains(tb, b, " icanon ", "the terminal was cooked before")
	assert.Equal(tb, b, settings(after), "stty -a before and after remote-exec")
}

// remoteExecPID returns the process ID of remote-exec in the terminal:
// the pane runs sh -c 'sh -c SCRIPT ...; echo $? >STATUS; ...', whose
// child runs remote-exec as its own child.
func (t *tmuxTerm) remoteExecPID() int {
	t.tb.Helper()
	pid := strings.TrimSpace(t.tmux("display-message", "-p", "-t", "0", "#{pane_pid}"))
	for range 2 {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%s/task/%s/children", pid, pid))
		require.NoError(t.tb, err)
		children := strings.Fields(string(b))
		require.Len(t.tb, children, 1, "children of %s", pid)
		pid = children[0]
	}
	n, err := strconv.Atoi(pid)
	require.NoError(t.tb, err)
	return n
}

// TestRemoteExec drives examples/remote-exec against the harness's sshd
// and two targets (Debian with bash and procps, busybox alone): in a real
// terminal (tmux) and with pipes.
func TestRemoteExec(t *testing.T) {
	t.Parallel()
	var (
		wg      sync.WaitGroup
		sshd    *harness.SSHD
		targets []dockerBackendTarget
	)
	wg.Go(func() { sshd = harness.StartSSHD(t, nil) })
	wg.Go(func() { targets = startTargets(t) })
	wg.Wait()
	if sshd == nil || targets == nil {
		t.FailNow()
	}
	d, target := targets[0], targets[0].Target
	e := newRemoteExecEnv(t, sshd)
	name := func(d dockerBackendTarget) string { return map[bool]string{true: "debian", false: "busybox"}[d.debian] }

	t.Run("terminal", func(t *testing.T) {
		t.Parallel()
		for _, d := range targets {
			t.Run(name(d), func(t *testing.T) {
				t.Parallel()
				term, before, after := e.terminal(t, 40, 120, nil, d.Name, "sh")
				term.typeLine("stty size; echo $((6*7))")
				term.waitScreen("40 120")
				term.waitScreen("42")
				term.tmux("resize-window", "-t", "0", "-x", "100", "-y", "30")
				// The window change travels beside the typed keys, as an
				// Engine call of its own: ask until the new size shows.
				term.typeUntil("stty size", "30 100")
				term.typeLine("exit 3")
				if got := term.exitStatus(); got != "3" {
					t.Errorf("remote-exec exit status %s, want 3; screen:\n%s", got, term.screen())
				}
				assertSameTerminal(t, before, after)
			})
		}
	})

	t.Run("-T on a terminal", func(t *testing.T) {
		t.Parallel()
		term, before, after := e.terminal(t, 24, 80, []string{"-T"}, target.Name, "sh", "-c", "[ -t 0 ] || [ -t 1 ] && echo HAS-A-TTY || echo NO-TTY")
		assert.Equal(t, "0", term.exitStatus())
		term.waitScreen("NO-TTY")
		assertSameTerminal(t, before, after)
	})

	t.Run("signals end the command", func(t *testing.T) {
		t.Parallel()
		// SIGHUP is what closing the terminal sends.
		for _, tc := range []struct {
			d   dockerBackendTarget
			sig syscall.Signal
		}{
			{targets[0], syscall.SIGHUP}, {targets[0], syscall.SIGTERM}, {targets[0], syscall.SIGINT},
			{targets[1], syscall.SIGHUP},
		} {
			t.Run(name(tc.d)+"/"+tc.sig.String(), func(t *testing.T) {
				t.Parallel()
				sleep := uniqueSleep(t)
				term, before, after := e.terminal(t, 24, 80, nil, tc.d.Name, "sh")
				term.typeLine("sleep " + sleep)
				waitProcess(t, tc.d, "sleep "+sleep)
				require.NoError(t, syscall.Kill(term.remoteExecPID(), tc.sig))
				assert.Equal(t, strconv.Itoa(128+int(tc.sig)), term.exitStatus(), "exit status after %v", tc.sig)
				waitNoProcess(t, tc.d, "sleep "+sleep)
				assertSameTerminal(t, before, after)
			})
		}
	})

	t.Run("panic restores the terminal", func(t *testing.T) {
		t.Parallel()
		// Built with a writer that panics on PANIC-NOW in the
		// command's output, in the goroutine that copies it.
		pe := *e
		pe.bin = remoteExecBinary(t, "remoteexec_panic")
		term, before, after := pe.terminal(t, 24, 80, nil, target.Name, "sh")
		term.typeLine("printf 'PANIC-%s\\n' NOW")
		assert.Equal(t, "2", term.exitStatus(), "exit status of a Go panic; screen:\n%s", term.screen())
		term.waitScreen("panic: remote-exec: PANIC-NOW in the output")
		assertSameTerminal(t, before, after)
	})

	t.Run("detach keys", func(t *testing.T) {
		t.Parallel()
		for _, tc := range []struct {
			name  string
			flags []string
			keys  []string
		}{
			{"default", nil, []string{"C-p", "C-q"}},
			{"custom", []string{"-detach-keys", "ctrl-x,d"}, []string{"C-x", "d"}},
		} {
			t.Run(tc.name, func(t *testing.T) {
				sleep := uniqueSleep(t)
				term, before, after := e.terminal(t, 24, 80, tc.flags, target.Name, "sh")
				term.typeLine("sleep " + sleep)
				waitProcess(t, d, "sleep "+sleep)
				term.send(tc.keys...)
				assert.Equal(t, "0", term.exitStatus(), "exit status after detaching; screen:\n%s", term.screen())
				term.waitScreen("remote-exec: detached")
				// remote-exec returns once the watchdog has read the
				// detach: had it hung up, the sleep would be gone.
				assert.NotEmpty(t, d.processesWith(t, "sleep "+sleep), "the command runs on after a detach")
				assertSameTerminal(t, before, after)
				d.kill(t, "sleep "+sleep)
			})
		}
	})

	t.Run("pipes", func(t *testing.T) {
		t.Parallel()
		stopped := runTarget(t, harness.Docker(t), &container.Config{Cmd: []string{"true"}}) // created, never started
		for _, tc := range []struct {
			name           string
			flags          []string
			container      string
			cmd            []string
			stdin          string
			stdout, stderr string
			status         int
		}{
			{name: "cat", flags: []string{"-i"}, container: target.Name, cmd: []string{"cat"}, stdin: "hi\n", stdout: "hi\n"},
			{name: "stderr apart and the status", flags: []string{"-i"}, container: target.Name,
				cmd: []string{"sh", "-c", "cat; echo oops >&2; exit 4"}, stdin: "in\n", stdout: "in\n", stderr: "oops\n", status: 4},
			{name: "no stdin without -i", container: target.Name, cmd: []string{"sh", "-c", "cat; echo done"}, stdin: "unread\n", stdout: "done\n"},
			{name: "unknown container", container: "no-such-container-" + uniqueSleep(t), cmd: []string{"true"},
				stderr: "remote-exec: no container \"no-such-container-", status: 255},
			{name: "container not running", container: stopped, cmd: []string{"true"},
				stderr: fmt.Sprintf("remote-exec: container %q is not running", stopped), status: 255},
			{name: "bad detach keys", flags: []string{"-detach-keys", "ctrl-p,meta-q"}, container: target.Name, cmd: []string{"true"},
				stderr: `remote-exec: -detach-keys "ctrl-p,meta-q"`, status: 2},
			{name: "unknown command", container: target.Name, cmd: []string{"no-such-command"},
				stdout: "no-such-command", stderr: "remote-exec: no-such-command could not be started in " + target.Name, status: 126},
		} {
			t.Run(tc.name, func(t *testing.T) {
				t.Parallel()
				stdout, stderr, status := runCmd(t, e.cmd(t, tc.flags, tc.container, tc.cmd...), []byte(tc.stdin))
				assert.Equal(t, tc.status, status, "exit status; stdout %q, stderr %q", stdout, stderr)
				if tc.status == 126 {
					assert.Contains(t, stdout, tc.stdout, "the engine's reason")
				} else {
					assert.Equal(t, tc.stdout, stdout)
				}
				if tc.stderr == "" {
					assert.Empty(t, stderr)
				} else {
					assert.Contains(t, stderr, tc.stderr)
				}
			})
		}
	})
}

// TestRemoteExecLinkDies cuts the SSH connection under a running
// remote-exec (sshd's process for it is killed): the command in the
// container is ended and remote-exec says why it stopped.
func TestRemoteExecLinkDies(t *testing.T) {
	t.Parallel()
	var (
		wg     sync.WaitGroup
		sshd   *harness.SSHD
		target *harness.Target
	)
	wg.Go(func() { sshd = harness.StartSSHD(t, nil) })
	wg.Go(func() { target = harness.StartDebian(t, "remote-exec-link") })
	wg.Wait()
	if sshd == nil || target == nil {
		t.FailNow()
	}
	d := dockerBackendTarget{Target: target, debian: true}
	e := newRemoteExecEnv(t, sshd)
	sleep := uniqueSleep(t)
	term, before, after := e.terminal(t, 24, 80, nil, target.Name, "sh")
	term.typeLine("sleep " + sleep)
	waitProcess(t, d, "sleep "+sleep)
	sshd.Exec(t, "pkill", "-KILL", "-f", "^sshd: "+sshd.User+"@")
	assert.Equal(t, "255", term.exitStatus(), "exit status after the link died; screen:\n%s", term.screen())
	waitNoProcess(t, d, "sleep "+sleep)
	term.waitScreen("remote-exec: the connection to the command broke")
	assertSameTerminal(t, before, after)
}
