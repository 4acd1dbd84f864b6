package integration

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// BenchmarkDockerSSHD measures the docker-sshd binary as a user runs it:
// the time from starting the process to the first session that ran a
// command, and its resident memory idle and with 100 idle sessions over 10
// OpenSSH ControlMaster connections.
//
//	go test -run XXX -bench BenchmarkDockerSSHD -benchtime 1x -timeout 30m ./integration/
func BenchmarkDockerSSHD(b *testing.B) {
	targets := startTargets(b)
	deb := targets[0]
	key := filepath.Join(b.TempDir(), "id")
	sshKeygen(b, "-q", "-t", "ed25519", "-N", "", "-f", key)
	pub := readFile(b, key+".pub")
	env := map[string]string{"CONTAINER": deb.Name, "AUTH_MECHANISM": "publicKey", "AUTHORIZED_KEYS": pub, "HTTP_ENABLED": "false"}
	dockerSSHDBinary(b) // built before the clock starts

	b.Run("startup-to-first-session", func(b *testing.B) {
		var total time.Duration
		for range b.N {
			for range 5 {
				start := time.Now()
				p := startDockerSSHD(b, env)
				out, errOut, status := runCmd(b, p.ssh(b, "u", keyLogin(key), nil, "true"), nil)
				if status != 0 {
					b.Fatalf("first session: %d %s %s", status, out, errOut)
				}
				total += time.Since(start)
				p.cmd.Process.Kill()
				<-p.exited
			}
		}
		b.ReportMetric(float64(total.Milliseconds())/float64(5*b.N), "ms/startup")
	})

	b.Run("rss-idle-and-100-sessions", func(b *testing.B) {
		p := startDockerSSHD(b, env)
		runCmd(b, p.ssh(b, "u", keyLogin(key), nil, "true"), nil) // warm: shell detected, caches filled
		idle := rssKBOf(b, p.cmd.Process.Pid)
		sleep := uniqueSleep(b)
		var cmds []*exec.Cmd
		defer func() {
			for _, c := range cmds {
				c.Process.Kill()
				c.Wait()
			}
		}()
		for i := range 10 {
			sock := filepath.Join(b.TempDir(), fmt.Sprintf("mux%d", i))
			m := p.ssh(b, "u", keyLogin(key), []string{"-M", "-S", sock, "-N", "-o", "ControlPersist=no"})
			if err := m.Start(); err != nil {
				b.Fatal(err)
			}
			cmds = append(cmds, m)
			waitFile(b, sock)
			for range 10 {
				c := p.ssh(b, "u", nil, []string{"-S", sock, "-o", "ControlMaster=no"}, "sleep "+sleep)
				if err := c.Start(); err != nil {
					b.Fatal(err)
				}
				cmds = append(cmds, c)
			}
		}
		deadline := time.Now().Add(2 * time.Minute)
		for len(deb.processesWith(b, "sleep "+sleep)) < 100 {
			if time.Now().After(deadline) {
				b.Fatalf("only %d of 100 sessions running", len(deb.processesWith(b, "sleep "+sleep)))
			}
			time.Sleep(100 * time.Millisecond)
		}
		busy := rssKBOf(b, p.cmd.Process.Pid)
		b.ReportMetric(float64(idle)/1024, "MB-RSS-idle")
		b.ReportMetric(float64(busy)/1024, "MB-RSS-100-sessions")
		b.ReportMetric(float64(busy-idle)/100, "KiB-RSS/session")
	})
}

func readFile(tb testing.TB, path string) string {
	tb.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		tb.Fatal(err)
	}
	return string(b)
}
