package integration

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/dockssh/dockssh/integration/internal/harness"
)

// BenchmarkExecbridge measures execbridge, as the docker-sshd binary
// serves it (a process of its own, as users run it), against `docker exec`
// and against OpenSSH's own sshd in a container, side by side in one run,
// with the real OpenSSH client and the local dockerd:
//
//	go test -run XXX -bench BenchmarkExecbridge -benchtime 1x -timeout 30m ./integration/
//
// Each sub-benchmark does a fixed amount of work whatever b.N is (medians
// of 20 sessions, 50 MB transfers) and reports its figures as metrics.
func BenchmarkExecbridge(b *testing.B) {
	targets := startTargets(b)
	deb := targets[0]
	key := filepath.Join(b.TempDir(), "id")
	sshKeygen(b, "-q", "-t", "ed25519", "-N", "", "-f", key)
	gw := startDockerSSHD(b, map[string]string{
		"CONTAINER": deb.Name, "AUTH_MECHANISM": "publicKey", "AUTHORIZED_KEYS": readFile(b, key+".pub"), "HTTP_ENABLED": "false",
	})
	sshd := harness.StartSSHD(b, nil)
	sshdKnownHosts := sshd.WriteKnownHosts(b)
	sshdCmd := func(remote ...string) *exec.Cmd {
		args := append(sshd.SSHArgs(sshdKnownHosts), remote...)
		cmd := exec.Command("ssh", args...)
		cmd.Env = cleanEnv(b)
		return cmd
	}
	bridgeCmd := func(remote ...string) *exec.Cmd { return gw.ssh(b, "u", keyLogin(key), nil, remote...) }
	dockerCmd := func(remote ...string) *exec.Cmd {
		return exec.Command("docker", append([]string{"exec", "-i", deb.ID}, remote...)...)
	}
	// Warm up every path once (image caches, the bridge's shell cache).
	for _, c := range []*exec.Cmd{bridgeCmd("true"), dockerCmd("true"), sshdCmd("true")} {
		if out, err := c.CombinedOutput(); err != nil {
			b.Fatalf("%v: %v: %s", c.Args, err, out)
		}
	}

	b.Run("latency", func(b *testing.B) {
		const n = 20
		kinds := []struct {
			name string
			cmd  func(...string) *exec.Cmd
		}{{"bridge", bridgeCmd}, {"docker-exec", dockerCmd}, {"openssh-sshd", sshdCmd}}
		times := make([][]time.Duration, len(kinds))
		for range b.N {
			for i := 0; i < n; i++ {
				// Interleaved, so load on the machine hits all alike.
				for k, kind := range kinds {
					c := kind.cmd("true")
					start := time.Now()
					if out, err := c.CombinedOutput(); err != nil {
						b.Fatalf("%s: %v: %s", kind.name, err, out)
					}
					times[k] = append(times[k], time.Since(start))
				}
			}
		}
		med := make([]float64, len(kinds))
		for k, kind := range kinds {
			med[k] = median(times[k])
			b.ReportMetric(med[k], "ms-median-"+kind.name)
		}
		b.ReportMetric(med[0]/med[1], "bridge/docker-exec")
	})

	// A 50 MB file of random bytes in the container, read and written
	// whole through each path, sha256 checked.
	const size = 50 << 20
	blob := make([]byte, size)
	rand.Read(blob)
	sum := sha256.Sum256(blob)
	if out, err := withStdin(dockerCmd("sh", "-c", "cat > /tmp/bench-blob"), blob).CombinedOutput(); err != nil {
		b.Fatalf("writing the blob: %v: %s", err, out)
	}
	sshdID := sshd.Container.GetContainerID()
	if out, err := withStdin(exec.Command("docker", "exec", "-i", sshdID, "sh", "-c", "cat > /tmp/bench-blob"), blob).CombinedOutput(); err != nil {
		b.Fatalf("writing the blob into the sshd container: %v: %s", err, out)
	}

	b.Run("stdout-50MB", func(b *testing.B) {
		var bridge, docker, openssh []time.Duration
		for range b.N {
			for range 3 {
				bridge = append(bridge, timedRead(b, bridgeCmd("cat /tmp/bench-blob"), sum))
				docker = append(docker, timedRead(b, dockerCmd("cat", "/tmp/bench-blob"), sum))
				openssh = append(openssh, timedRead(b, sshdCmd("cat /tmp/bench-blob"), sum))
			}
		}
		mb := float64(size) / (1 << 20)
		b.ReportMetric(mb/(median(bridge)/1000), "MB/s-bridge")
		b.ReportMetric(mb/(median(docker)/1000), "MB/s-docker-exec")
		b.ReportMetric(mb/(median(openssh)/1000), "MB/s-openssh-sshd")
		b.ReportMetric(median(docker)/median(bridge), "bridge/docker-exec-throughput")
	})

	b.Run("stdin-50MB", func(b *testing.B) {
		var bridge, docker, openssh []time.Duration
		want := fmt.Sprintf("%x", sum)
		for range b.N {
			for range 3 {
				bridge = append(bridge, timedWrite(b, bridgeCmd("sha256sum"), blob, want))
				docker = append(docker, timedWrite(b, dockerCmd("sha256sum"), blob, want))
				openssh = append(openssh, timedWrite(b, sshdCmd("sha256sum"), blob, want))
			}
		}
		mb := float64(size) / (1 << 20)
		b.ReportMetric(mb/(median(bridge)/1000), "MB/s-bridge")
		b.ReportMetric(mb/(median(docker)/1000), "MB/s-docker-exec")
		b.ReportMetric(mb/(median(openssh)/1000), "MB/s-openssh-sshd")
		b.ReportMetric(median(docker)/median(bridge), "bridge/docker-exec-throughput")
	})

	b.Run("idle-sessions-100", func(b *testing.B) {
		// 10 OpenSSH connections (ControlMaster) with 10 idle sessions
		// each, measured in docker-sshd's resident memory.
		rssBefore := rssKBOf(b, gw.cmd.Process.Pid)
		var sessions []*exec.Cmd
		stopAll := func() {
			for _, c := range sessions {
				c.Process.Kill()
				c.Wait()
			}
		}
		defer stopAll()
		sleep := uniqueSleep(b)
		for i := range 10 {
			sock := fmt.Sprintf("%s/mux-%d", b.TempDir(), i)
			master := gw.ssh(b, "u", keyLogin(key), []string{"-M", "-S", sock, "-N", "-o", "ControlPersist=no"})
			if err := master.Start(); err != nil {
				b.Fatal(err)
			}
			sessions = append(sessions, master)
			waitFile(b, sock)
			for range 10 {
				c := gw.ssh(b, "u", nil, []string{"-S", sock, "-o", "ControlMaster=no"}, "sleep "+sleep)
				if err := c.Start(); err != nil {
					b.Fatal(err)
				}
				sessions = append(sessions, c)
			}
		}
		deadline := time.Now().Add(2 * time.Minute)
		for len(deb.processesWith(b, "sleep "+sleep)) < 100 {
			if time.Now().After(deadline) {
				b.Fatalf("only %d of 100 sessions running", len(deb.processesWith(b, "sleep "+sleep)))
			}
			time.Sleep(100 * time.Millisecond)
		}
		rssAfter := rssKBOf(b, gw.cmd.Process.Pid)
		b.ReportMetric(float64(rssAfter-rssBefore)/100, "KiB-RSS/session")
		stopAll()
		sessions = nil
		// 100 sessions ended at once: each is reaped by an exec of its own.
		waitNoProcessFor(b, deb, "sleep "+sleep, 3*time.Minute)
	})

	b.Run("backpressure-10s", func(b *testing.B) {
		// The client stops reading (SIGSTOP) for 10 s while the container
		// writes as fast as it can; the server must not buffer it.
		rssBefore := rssKBOf(b, gw.cmd.Process.Pid)
		c := bridgeCmd("cat /dev/zero")
		out, err := c.StdoutPipe()
		if err != nil {
			b.Fatal(err)
		}
		if err := c.Start(); err != nil {
			b.Fatal(err)
		}
		io.CopyN(io.Discard, out, 8<<20) // flowing
		c.Process.Signal(syscall.SIGSTOP)
		peak := rssBefore
		for end := time.Now().Add(10 * time.Second); time.Now().Before(end); time.Sleep(250 * time.Millisecond) {
			peak = max(peak, rssKBOf(b, gw.cmd.Process.Pid))
		}
		c.Process.Signal(syscall.SIGCONT)
		c.Process.Kill()
		c.Wait()
		b.ReportMetric(float64(peak-rssBefore)/1024, "MB-RSS-growth")
	})
}

func withStdin(c *exec.Cmd, data []byte) *exec.Cmd {
	c.Stdin = bytes.NewReader(data)
	return c
}

// timedRead runs c with its stdout in a file, checks the file's sha256 and
// returns the time it took. A file, not a pipe: OpenSSH's client writes to
// a pipe about three times slower than to a file (measured with
// `ssh host cat f | cat` against `ssh host cat f > out`, the same for
// OpenSSH's own sshd), which would measure the client, not the server.
func timedRead(tb testing.TB, c *exec.Cmd, want [32]byte) time.Duration {
	tb.Helper()
	f, err := os.CreateTemp(tb.TempDir(), "out")
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	c.Stdout = f
	start := time.Now()
	if err := c.Run(); err != nil {
		tb.Fatalf("%v: %v", c.Args, err)
	}
	d := time.Since(start)
	f.Seek(0, io.SeekStart)
	h := sha256.New()
	io.Copy(h, f)
	if got := h.Sum(nil); !bytes.Equal(got, want[:]) {
		tb.Fatalf("%v: sha256 %x, want %x", c.Args, got, want)
	}
	os.Remove(f.Name())
	return d
}

// timedWrite runs c with data on stdin, from a file as timedRead writes to
// one, and checks that it printed want (a sha256sum line).
func timedWrite(tb testing.TB, c *exec.Cmd, data []byte, want string) time.Duration {
	tb.Helper()
	path := filepath.Join(tb.TempDir(), "in")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		tb.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		tb.Fatal(err)
	}
	defer os.Remove(path)
	defer f.Close()
	c.Stdin = f
	start := time.Now()
	out, err := c.Output()
	d := time.Since(start)
	if err != nil || !strings.HasPrefix(string(out), want) {
		tb.Fatalf("%v: %q, %v; want %s", c.Args, out, err, want)
	}
	return d
}

func median(ds []time.Duration) float64 {
	s := slices.Clone(ds)
	slices.Sort(s)
	return float64(s[len(s)/2]) / float64(time.Millisecond)
}

func waitFile(tb testing.TB, path string) {
	tb.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		if _, err := os.Stat(path); err == nil {
			return
		}
		if time.Now().After(deadline) {
			tb.Fatalf("%s never appeared", path)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
