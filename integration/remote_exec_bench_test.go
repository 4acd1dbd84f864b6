package integration

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/dockssh/dockssh/integration/internal/harness"
	"github.com/dockssh/dockssh/internal/shquote"
)

// BenchmarkRemoteExec measures the keystroke echo round trip through
// examples/remote-exec beside `docker -H ssh://... exec -it` (the Docker
// CLI's ssh:// helper), both running `cat` on a terminal in the same
// container through the same sshd, with remote-exec's -streamlocal and a
// local `cat` (no network: the floor of the method) beside them:
//
//	go test -run XXX -bench BenchmarkRemoteExec -benchtime 1x -timeout 10m ./integration/
//
// "tmux": each client runs in a session of one tmux server; each key is
// typed with tmux send-keys and timed until its echo (from the pty in the
// container) comes out of the pane, read through tmux pipe-pane. "pty":
// each client runs on a pseudo-terminal of the test's own; a key is
// written to its master side and timed until the echo is read back there,
// without tmux's own latency. The clients are interleaved key by key,
// taking turns at going first, so load on the machine hits all alike.
// Whatever b.N is, each of them types 200 keys into each client and
// reports p50 and p99. "start" times whole sessions running `true`
// without a terminal (median of 10 each).
func BenchmarkRemoteExec(b *testing.B) {
	var sshd *harness.SSHD
	var target *harness.Target
	done := make(chan struct{})
	go func() {
		defer close(done)
		target = harness.StartDebian(b, "remote-exec-bench")
	}()
	sshd = harness.StartSSHD(b, nil)
	<-done
	if target == nil {
		b.FailNow()
	}
	e := newRemoteExecEnv(b, sshd)
	dockerEnv := dockerCLIEnv(b, sshd, sshd.WriteKnownHosts(b))
	clients := []echoClient{
		{name: "remote-exec", env: e.env, argv: e.argv(nil, target.Name, "cat"), raw: true},
		{name: "docker-cli", env: dockerEnv, argv: []string{"docker", "-H", fmt.Sprintf("ssh://%s@%s", sshd.User, sshd.Addr()), "exec", "-it", target.Name, "cat"}, raw: true},
		{name: "remote-exec-streamlocal", env: e.env, argv: streamlocal(e.argv([]string{"-streamlocal"}, target.Name, "cat")), raw: true},
		{name: "local-cat", env: e.env, argv: []string{"cat"}},
	}

	// A whole session: connect, start `true` (remote-exec's watchdog
	// included), exit status; no terminal. Medians of 10, interleaved.
	b.Run("start", func(b *testing.B) {
		runs := []echoClient{
			{name: "remote-exec", env: e.env, argv: e.argv(nil, target.Name, "true")},
			{name: "docker-cli", env: dockerEnv, argv: []string{"docker", "-H", fmt.Sprintf("ssh://%s@%s", sshd.User, sshd.Addr()), "exec", target.Name, "true"}},
			{name: "remote-exec-streamlocal", env: e.env, argv: streamlocal(e.argv([]string{"-streamlocal"}, target.Name, "true"))},
		}
		times := make([][]time.Duration, len(runs))
		for range b.N {
			for range 10 {
				for k, r := range runs {
					cmd := exec.Command(r.argv[0], r.argv[1:]...)
					cmd.Env = r.env
					start := time.Now()
					if out, err := cmd.CombinedOutput(); err != nil {
						b.Fatalf("%s: %v: %s", r.name, err, out)
					}
					times[k] = append(times[k], time.Since(start))
				}
			}
		}
		for k, r := range runs {
			b.ReportMetric(percentile(times[k], 50), "ms-p50-"+r.name)
		}
		b.ReportMetric(percentile(times[0], 50)/percentile(times[1], 50), "remote-exec/docker-cli-p50")
	})

	b.Run("tmux", func(b *testing.B) {
		term := newTmux(b, 24, 80, clients[0].argv, clients[0].env)
		keyers := []keyer{tmuxKeyer(b, term, "0:", clients[0].raw)}
		for i, c := range clients[1:] {
			// The tmux server runs panes in its own environment: a
			// client's is set with env -i.
			name := fmt.Sprintf("s%d", i+1)
			argv := append(append([]string{"env", "-i", "TERM=xterm-256color"}, c.env...), c.argv...)
			term.tmux("new-session", "-d", "-s", name, "-x", "80", "-y", "24", "sh", "-c", shquote.Join(argv)+"; sleep 600")
			keyers = append(keyers, tmuxKeyer(b, term, name+":", c.raw))
		}
		measureEcho(b, clients, keyers)
	})

	b.Run("pty", func(b *testing.B) {
		var keyers []keyer
		for _, c := range clients {
			keyers = append(keyers, ptyKeyer(b, c))
		}
		measureEcho(b, clients, keyers)
	})
}

// streamlocal names the Docker socket in the URL of a remote-exec
// command line: the streamlocal transport needs its path (without one,
// remote-exec falls back to dial-stdio).
func streamlocal(argv []string) []string {
	out := slices.Clone(argv)
	for i, a := range out {
		if a == "ssh://remote-exec-test" {
			out[i] = a + "/var/run/docker.sock"
		}
	}
	return out
}

// echoClient is a program that runs cat on a terminal.
type echoClient struct {
	name      string
	env, argv []string
	raw       bool // it puts its terminal in raw mode
}

// keyer types key and returns how long its echo took; bound bounds the
// wait.
type keyer func(key byte, bound time.Duration) time.Duration

func measureEcho(b *testing.B, clients []echoClient, keyers []keyer) {
	for _, k := range keyers {
		// Its terminal is in raw mode already (or never will be): the
		// first echo comes when the client is attached.
		k('!', time.Minute)
	}
	const keys = 200
	times := make([][]time.Duration, len(keyers))
	for range b.N {
		for i := range keys {
			key := byte('a' + i%26)
			for j := range keyers {
				k := (i + j) % len(keyers)
				times[k] = append(times[k], keyers[k](key, 10*time.Second))
			}
		}
	}
	for k, c := range clients {
		reportLatency(b, c.name, times[k])
	}
	b.ReportMetric(percentile(times[0], 50)/percentile(times[1], 50), "remote-exec/docker-cli-p50")
}

// tmuxKeyer types into pane with send-keys and reads the echo from
// everything the pane prints, copied into a FIFO by pipe-pane. With raw,
// it first waits until the client has put the pane's terminal in raw
// mode, so that no echo of the terminal itself is taken for the remote
// one.
func tmuxKeyer(tb testing.TB, term *tmuxTerm, pane string, raw bool) keyer {
	tb.Helper()
	if raw {
		tty, err := os.OpenFile(strings.TrimSpace(term.tmux("display-message", "-p", "-t", pane, "#{pane_tty}")), os.O_RDWR|unix.O_NOCTTY, 0)
		if err != nil {
			tb.Fatal(err)
		}
		if !waitRaw(tb, tty) {
			tb.Fatalf("%s never put its terminal in raw mode; screen:\n%s", pane, term.tmux("capture-pane", "-p", "-t", pane))
		}
		tty.Close()
	}
	fifo := filepath.Join(tb.TempDir(), "pane")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		tb.Fatal(err)
	}
	opened := make(chan *os.File, 1)
	go func() {
		f, err := os.Open(fifo) // blocks until pipe-pane's cat opens it
		if err != nil {
			tb.Errorf("open %s: %v", fifo, err)
		}
		opened <- f
	}()
	term.tmux("pipe-pane", "-O", "-t", pane, "cat > "+shquote.Quote(fifo))
	out := <-opened
	if out == nil {
		tb.FailNow()
	}
	tb.Cleanup(func() { out.Close() })
	return func(key byte, bound time.Duration) time.Duration {
		start := time.Now()
		term.tmux("send-keys", "-t", pane, "-l", string(key))
		if err := readEcho(out, key, start.Add(bound)); err != nil {
			tb.Fatalf("no echo of %q in %s: %v; screen:\n%s", key, pane, err, term.tmux("capture-pane", "-p", "-t", pane))
		}
		return time.Since(start)
	}
}

// ptyKeyer starts c on a new pseudo-terminal (24x80, its controlling
// terminal) and types into its master side.
func ptyKeyer(tb testing.TB, c echoClient) keyer {
	tb.Helper()
	master, slave := openPTY(tb)
	cmd := exec.Command(c.argv[0], c.argv[1:]...)
	cmd.Env = append(c.env, "TERM=xterm-256color")
	cmd.Stdin, cmd.Stdout, cmd.Stderr = slave, slave, slave
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 0}
	if err := cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	slave.Close()
	if c.raw && !waitRaw(tb, master) {
		tb.Fatalf("%s never put its terminal in raw mode", c.name)
	}
	tb.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		master.Close()
	})
	return func(key byte, bound time.Duration) time.Duration {
		start := time.Now()
		if _, err := master.Write([]byte{key}); err != nil {
			tb.Fatalf("%s: %v", c.name, err)
		}
		if err := readEcho(master, key, start.Add(bound)); err != nil {
			tb.Fatalf("no echo of %q from %s: %v", key, c.name, err)
		}
		return time.Since(start)
	}
}

// openPTY returns the master and slave sides of a new pseudo-terminal of
// 24 rows and 80 columns.
func openPTY(tb testing.TB) (master, slave *os.File) {
	tb.Helper()
	master, err := os.OpenFile("/dev/ptmx", os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		tb.Fatal(err)
	}
	var n int
	var ioErr error
	// Through the raw conn, so master stays non-blocking (deadlines work).
	rc, err := master.SyscallConn()
	if err != nil {
		tb.Fatal(err)
	}
	err = rc.Control(func(fd uintptr) {
		if ioErr = unix.IoctlSetPointerInt(int(fd), unix.TIOCSPTLCK, 0); ioErr != nil {
			return
		}
		if ioErr = unix.IoctlSetWinsize(int(fd), unix.TIOCSWINSZ, &unix.Winsize{Row: 24, Col: 80}); ioErr != nil {
			return
		}
		n, ioErr = unix.IoctlGetInt(int(fd), unix.TIOCGPTN)
	})
	if err != nil || ioErr != nil {
		tb.Fatalf("pty: %v %v", err, ioErr)
	}
	slave, err = os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		tb.Fatal(err)
	}
	return master, slave
}

// waitRaw waits until the terminal f (either side) no longer echoes and
// reports whether it did.
func waitRaw(tb testing.TB, f *os.File) bool {
	tb.Helper()
	rc, err := f.SyscallConn()
	if err != nil {
		tb.Fatal(err)
	}
	deadline := time.Now().Add(time.Minute)
	for {
		var t *unix.Termios
		var ioErr error
		if err := rc.Control(func(fd uintptr) { t, ioErr = unix.IoctlGetTermios(int(fd), unix.TCGETS) }); err != nil || ioErr != nil {
			tb.Fatalf("termios of %s: %v %v", f.Name(), err, ioErr)
		}
		if t.Lflag&unix.ECHO == 0 {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// readEcho reads from f until key shows or the deadline passes.
func readEcho(f *os.File, key byte, deadline time.Time) error {
	f.SetReadDeadline(deadline)
	buf := make([]byte, 256)
	for {
		n, err := f.Read(buf)
		for _, c := range buf[:n] {
			if c == key {
				return nil
			}
		}
		if err != nil {
			return err
		}
	}
}
