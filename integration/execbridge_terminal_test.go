package integration

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/dockssh/dockssh/execbridge"
	"github.com/dockssh/dockssh/integration/internal/harness"
	"github.com/dockssh/dockssh/internal/shquote"
	"github.com/stretchr/testify/require"
)

// tmuxTerm is a terminal run by tmux on a socket of its own: send-keys to
// type, capture-pane to read the screen, resize-window to resize.
type tmuxTerm struct {
	tb     testing.TB
	socket string
	status string // file the pane's command writes its exit status to
}

func newTmux(tb testing.TB, rows, cols int, argv []string, env []string) *tmuxTerm {
	tb.Helper()
	if _, err := exec.LookPath("tmux"); err != nil {
		if harness.Required() {
			tb.Fatalf("tmux is not installed (scripts/ensure-docker.sh installs it)")
		}
		tb.Skip("SKIPPING: tmux is not installed")
	}
	dir := tb.TempDir()
	t := &tmuxTerm{tb: tb, socket: filepath.Join(dir, "tmux.sock"), status: filepath.Join(dir, "status")}
	// The pane runs the command, then records its status and stays open
	// so the screen can still be read.
	script := shquote.Join(argv) + "; echo $? > " + shquote.Quote(t.status) + "; sleep 600"
	args := []string{"-S", t.socket, "-f", "/dev/null", "new-session", "-d", "-x", strconv.Itoa(cols), "-y", strconv.Itoa(rows), "sh", "-c", script}
	cmd := exec.Command("tmux", args...)
	cmd.Env = append(env, "TERM=xterm-256color")
	out, err := cmd.CombinedOutput()
	require.NoError(tb, err, "tmux: %s", out)
	tb.Cleanup(func() { exec.Command("tmux", "-S", t.socket, "kill-server").Run() })
	return t
}

func (t *tmuxTerm) tmux(args ...string) string {
	t.tb.Helper()
	out, err := exec.Command("tmux", append([]string{"-S", t.socket}, args...)...).CombinedOutput()
	require.NoError(t.tb, err, "tmux %q: %s", args, out)
	return string(out)
}

// send types keys (tmux key names, "Enter" for the return key).
func (t *tmuxTerm) send(keys ...string) { t.tmux(append([]string{"send-keys", "-t", "0"}, keys...)...) }

// typeLine types text literally, then Enter.
func (t *tmuxTerm) typeLine(text string) {
	t.tmux("send-keys", "-t", "0", "-l", text)
	t.send("Enter")
}

func (t *tmuxTerm) screen() string { return t.tmux("capture-pane", "-p", "-t", "0", "-S", "-200") }

// waitScreen waits until the screen holds want.
func (t *tmuxTerm) waitScreen(want string) {
	t.tb.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !strings.Contains(t.screen(), want) {
		if time.Now().After(deadline) {
			t.tb.Fatalf("screen never showed %q; screen:\n%s", want, t.screen())
		}
		time.Sleep(30 * time.Millisecond)
	}
}

// typeUntil types line, again every half second, until the screen holds
// want.
func (t *tmuxTerm) typeUntil(line, want string) {
	t.tb.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		t.typeLine(line)
		for end := time.Now().Add(500 * time.Millisecond); time.Now().Before(end); time.Sleep(30 * time.Millisecond) {
			if strings.Contains(t.screen(), want) {
				return
			}
		}
		if time.Now().After(deadline) {
			t.tb.Fatalf("screen never showed %q; screen:\n%s", want, t.screen())
		}
	}
}

// exitStatus waits for the pane's command to end and returns its status.
func (t *tmuxTerm) exitStatus() string {
	t.tb.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		b, err := os.ReadFile(t.status)
		if err == nil && len(b) > 0 {
			return strings.TrimSpace(string(b))
		}
		if time.Now().After(deadline) {
			t.tb.Fatalf("the command in tmux did not end; screen:\n%s", t.screen())
		}
		time.Sleep(30 * time.Millisecond)
	}
}

// TestExecbridgeOpenSSHTerminal drives `ssh -tt` in a real terminal
// (tmux): the size at start and after a resize as stty sees it, the
// banner, exit status, and the ~. escape leaving nothing behind.
func TestExecbridgeOpenSSHTerminal(t *testing.T) {
	t.Parallel()
	targets := startTargets(t)
	e := startBridge(t, targets, bridgeOpts{config: func(c *execbridge.Config) { c.Banner = "Welcome to dockssh\n" }})
	for _, d := range e.targets {
		t.Run(map[bool]string{true: "debian", false: "busybox"}[d.debian], func(t *testing.T) {
			ssh := e.sshCmd(t, e.user(d), []string{"-tt", "-o", "EscapeChar=~"})
			term := newTmux(t, 40, 120, ssh.Args, ssh.Env)
			term.waitScreen("Welcome to dockssh")
			term.typeLine("stty size; echo $((6*7))")
			term.waitScreen("40 120")
			term.waitScreen("42")
			term.tmux("resize-window", "-t", "0", "-x", "100", "-y", "30")
			// The window change travels beside the typed keys, not in
			// order with them (it is an Engine call made off the
			// channel's request loop), so a line typed at once may still
			// see the old size: ask until the new one shows.
			term.typeUntil("stty size", "30 100")
			term.typeLine("exit 3")
			if got := term.exitStatus(); got != "3" {
				t.Errorf("ssh -tt exit status %s, want 3; screen:\n%s", got, term.screen())
			}

			// ~. ends the client; the command in the container is ended.
			sleep := uniqueSleep(t)
			term2 := newTmux(t, 24, 80, e.sshCmd(t, e.user(d), []string{"-tt"}).Args, ssh.Env)
			term2.waitScreen("Welcome to dockssh")
			term2.typeLine("sleep " + sleep)
			waitProcess(t, d, "sleep "+sleep)
			term2.send("Enter", "~", ".")
			term2.exitStatus()
			waitNoProcess(t, d, "sleep "+sleep)
		})
	}
}
