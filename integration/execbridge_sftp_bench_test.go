package integration

import (
	"archive/tar"
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/dockssh/dockssh/integration/internal/harness"
	"github.com/moby/moby/client"
)

// BenchmarkExecbridgeSFTP measures SFTP through execbridge side by side,
// in one run, with the real OpenSSH clients and the local dockerd:
//
//	go test -run XXX -bench BenchmarkExecbridgeSFTP -benchtime 1x -timeout 60m ./integration/
//
// scp of 100 MB up and down through the bridge into a Debian container
// (served by its own sftp-server) and a busybox container (served by the
// helper), against docker cp into the same Debian container and scp to
// OpenSSH's sshd in a container; plain docker exec streams of the same
// file show what the exec API itself carries. Every transfer is checked by
// sha256. Medians of 3 interleaved rounds, in MB/s, with the ratios to
// docker cp, and the CPU seconds that the bridge (this process), the client
// and dockerd spent per transfer. Then sftp's "ls -1" of a 10,000-entry
// directory, a whole sftp session (median of 5), and the same session with
// only "pwd" for the cost of connecting.
func BenchmarkExecbridgeSFTP(b *testing.B) {
	helper := buildSFTPHelper(b)
	targets := startSFTPTargets(b, "sftp-bench")
	deb, bb := targets[0], targets[1]
	e := startBridge(b, []dockerBackendTarget{deb.dockerBackendTarget, bb.dockerBackendTarget}, sftpBridgeOpts(b, helper, ""))
	sshd := harness.StartSSHD(b, nil)
	sshdKnownHosts := sshd.WriteKnownHosts(b)
	sshdID := sshd.Container.GetContainerID()
	dir := b.TempDir()

	const size = 100 << 20
	blob := filepath.Join(dir, "blob")
	sum := randomFile(b, blob, size)
	check := func(what, p string) {
		if got := fileSum(b, p); got != sum {
			b.Fatalf("%s: sha256 %s, want %s", what, got, sum)
		}
		os.Remove(p)
	}
	checkIn := func(what string, d sftpTarget, p string) {
		if got := sumIn(b, d, p); got != sum {
			b.Fatalf("%s: sha256 %s, want %s", what, got, sum)
		}
	}
	sshdScp := func(args ...string) *exec.Cmd {
		opts := sshd.SSHArgs(sshdKnownHosts)
		opts = opts[:len(opts)-2] // without "--" and the host
		for i, o := range opts {
			if o == "-p" {
				opts[i] = "-P"
			}
			if o == "-l" { // scp has no -l for the user: it is in the operand
				opts = append(opts[:i], opts[i+2:]...)
				break
			}
		}
		c := exec.Command("scp", append(opts, args...)...)
		c.Env = cleanEnv(b)
		return c
	}
	sshdRemote := "root@127.0.0.1:/root/bench-blob"
	bridgeScp := func(cipher string, args ...string) *exec.Cmd {
		if cipher != "" {
			args = append([]string{"-c", cipher}, args...)
		}
		return e.clientCmd(b.Context(), b, "scp", args...)
	}
	dockerd := pidOf(b, "dockerd")
	debBlob, bbBlob := "/root/bench-blob", "/bench-blob"
	down := filepath.Join(dir, "down")

	type path struct {
		name     string
		up, down func() *exec.Cmd
		uploaded func() // checks the upload's sha256 where it landed
	}
	inDeb := func() { checkIn("upload into Debian", deb, debBlob) }
	inBB := func() { checkIn("upload into busybox", bb, bbBlob) }
	inSSHD := func() {
		if out, err := exec.Command("docker", "exec", sshdID, "sha256sum", "/root/bench-blob").Output(); err != nil || !strings.HasPrefix(string(out), sum) {
			b.Fatalf("upload to sshd: sha256sum %q, %v", out, err)
		}
	}
	paths := []path{
		{"bridge-sftp-server",
			func() *exec.Cmd { return bridgeScp("", blob, e.remote(deb, debBlob)) },
			func() *exec.Cmd { return bridgeScp("", e.remote(deb, debBlob), down) },
			inDeb},
		{"bridge-helper",
			func() *exec.Cmd { return bridgeScp("", blob, e.remote(bb, bbBlob)) },
			func() *exec.Cmd { return bridgeScp("", e.remote(bb, bbBlob), down) },
			inBB},
		{"bridge-sftp-server-aes128gcm",
			func() *exec.Cmd { return bridgeScp("aes128-gcm@openssh.com", blob, e.remote(deb, debBlob)) },
			func() *exec.Cmd { return bridgeScp("aes128-gcm@openssh.com", e.remote(deb, debBlob), down) },
			inDeb},
		{"bridge-helper-aes128gcm",
			func() *exec.Cmd { return bridgeScp("aes128-gcm@openssh.com", blob, e.remote(bb, bbBlob)) },
			func() *exec.Cmd { return bridgeScp("aes128-gcm@openssh.com", e.remote(bb, bbBlob), down) },
			inBB},
		{"docker-cp",
			func() *exec.Cmd { return exec.Command("docker", "cp", blob, deb.ID+":"+debBlob) },
			func() *exec.Cmd { return exec.Command("docker", "cp", deb.ID+":"+debBlob, down) },
			inDeb},
		{"docker-exec-stream",
			func() *exec.Cmd {
				c := exec.Command("docker", "exec", "-i", deb.ID, "sh", "-c", "cat >"+debBlob)
				f, err := os.Open(blob)
				if err != nil {
					b.Fatal(err)
				}
				b.Cleanup(func() { f.Close() })
				c.Stdin = f
				return c
			},
			func() *exec.Cmd {
				c := exec.Command("docker", "exec", deb.ID, "cat", debBlob)
				f, err := os.Create(down)
				if err != nil {
					b.Fatal(err)
				}
				b.Cleanup(func() { f.Close() })
				c.Stdout = f
				return c
			},
			inDeb},
		{"openssh-sshd",
			func() *exec.Cmd { return sshdScp(blob, sshdRemote) },
			func() *exec.Cmd { return sshdScp(sshdRemote, down) },
			inSSHD},
	}
	// Warm up every path once (the helper's copy, the caches).
	for _, c := range []*exec.Cmd{bridgeScp("", blob, e.remote(bb, bbBlob)), bridgeScp("", blob, e.remote(deb, debBlob)), sshdScp(blob, sshdRemote)} {
		if out, err := c.CombinedOutput(); err != nil {
			b.Fatalf("%v: %v: %s", c.Args, err, out)
		}
	}

	b.Run("scp-100MB", func(b *testing.B) {
		type sample struct{ wall, bridgeCPU, clientCPU, dockerdCPU time.Duration }
		up := make(map[string][]sample)
		dn := make(map[string][]sample)
		run := func(c *exec.Cmd) sample {
			b.Helper()
			var ru0 syscall.Rusage
			syscall.Getrusage(syscall.RUSAGE_SELF, &ru0)
			d0 := procCPU(b, dockerd)
			start := time.Now()
			var out bytes.Buffer
			if c.Stdout == nil {
				c.Stdout = &out
			}
			c.Stderr = &out
			if err := c.Run(); err != nil {
				b.Fatalf("%v: %v: %s", c.Args, err, out.Bytes())
			}
			s := sample{wall: time.Since(start)}
			var ru1 syscall.Rusage
			syscall.Getrusage(syscall.RUSAGE_SELF, &ru1)
			s.bridgeCPU = rusageCPU(ru1) - rusageCPU(ru0)
			s.clientCPU = c.ProcessState.UserTime() + c.ProcessState.SystemTime()
			s.dockerdCPU = procCPU(b, dockerd) - d0
			return s
		}
		for range b.N {
			for range 3 {
				// Interleaved, so load on the machine hits all alike.
				for _, p := range paths {
					up[p.name] = append(up[p.name], run(p.up()))
					p.uploaded()
					dn[p.name] = append(dn[p.name], run(p.down()))
					check(p.name+" down", down)
				}
			}
		}
		mb := float64(size) / (1 << 20)
		rate := func(ss []sample) float64 {
			ws := make([]time.Duration, len(ss))
			for i, s := range ss {
				ws[i] = s.wall
			}
			return mb / (median(ws) / 1000)
		}
		cpu := func(ss []sample, f func(sample) time.Duration) float64 {
			ds := make([]time.Duration, len(ss))
			for i, s := range ss {
				ds[i] = f(s)
			}
			return median(ds) / 1000
		}
		for _, dirn := range []struct {
			name string
			m    map[string][]sample
		}{{"up", up}, {"down", dn}} {
			base := rate(dirn.m["docker-cp"])
			for _, p := range paths {
				r := rate(dirn.m[p.name])
				b.ReportMetric(r, "MB/s-"+dirn.name+"-"+p.name)
				if p.name != "docker-cp" {
					b.ReportMetric(r/base, dirn.name+"-"+p.name+"/docker-cp")
				}
				b.Logf("%-4s %-30s %7.1f MB/s  %4.0f%% of docker cp  CPU s: bridge %.2f client %.2f dockerd %.2f",
					dirn.name, p.name, r, 100*r/base,
					cpu(dirn.m[p.name], func(s sample) time.Duration { return s.bridgeCPU }),
					cpu(dirn.m[p.name], func(s sample) time.Duration { return s.clientCPU }),
					cpu(dirn.m[p.name], func(s sample) time.Duration { return s.dockerdCPU }))
			}
		}
	})

	b.Run("sftp-ls-10000", func(b *testing.B) {
		for _, d := range []sftpTarget{deb, bb} {
			big := filepath.Join(d.home, "big")
			d.sh(b, "mkdir -p "+big+" && cd "+big+" && i=0; while [ $i -lt 10000 ]; do : >f$i; i=$((i+1)); done")
			var ls, pwd []time.Duration
			for range b.N {
				for range 5 {
					start := time.Now()
					out, status := e.batch(b, d, "ls -1 "+big)
					ls = append(ls, time.Since(start))
					if status != 0 || strings.Count(out, "\n") != 10001 {
						b.Fatalf("ls: status %d, %d lines", status, strings.Count(out, "\n"))
					}
					start = time.Now()
					if out, status := e.batch(b, d, "pwd"); status != 0 {
						b.Fatalf("pwd: %s", out)
					}
					pwd = append(pwd, time.Since(start))
				}
			}
			server := map[string]string{"debian": "sftp-server", "busybox": "helper"}[d.kind]
			b.ReportMetric(median(ls), "ms-session-ls-"+server)
			b.ReportMetric(median(pwd), "ms-session-pwd-"+server)
			b.Logf("sftp ls -1 of 10,000 entries (%s): whole session %.0f ms, a session with pwd only %.0f ms",
				server, median(ls), median(pwd))
			if d.kind == "busybox" {
				benchArchiveAPI(b, d, big)
			}
		}
	})
}

// benchArchiveAPI measures what an SFTP server in the bridge backed by the
// Engine's archive API (instead of a process in the container) would cost
// for a listing: one stat request per entry, or the whole directory as a
// tar archive, and reports both.
func benchArchiveAPI(b *testing.B, d sftpTarget, dir string) {
	docker := harness.Docker(b)
	var stats, tars []time.Duration
	for i := range 50 {
		start := time.Now()
		if _, err := docker.ContainerStatPath(b.Context(), d.ID, client.ContainerStatPathOptions{Path: fmt.Sprintf("%s/f%d", dir, i)}); err != nil {
			b.Fatal(err)
		}
		stats = append(stats, time.Since(start))
	}
	for range 3 {
		start := time.Now()
		r, err := docker.CopyFromContainer(b.Context(), d.ID, client.CopyFromContainerOptions{SourcePath: dir})
		if err != nil {
			b.Fatal(err)
		}
		n := 0
		tr := tar.NewReader(r.Content)
		for {
			if _, err := tr.Next(); err != nil {
				break
			}
			n++
		}
		r.Content.Close()
		tars = append(tars, time.Since(start))
		if n != 10001 {
			b.Fatalf("the archive of %s has %d entries", dir, n)
		}
	}
	b.ReportMetric(median(stats), "ms-archive-stat-one-path")
	b.ReportMetric(median(tars), "ms-archive-tar-of-10000-entries")
	b.Logf("archive API: one stat request %.1f ms (x 10,000 entries = %.1f s); the directory as a tar archive %.0f ms",
		median(stats), median(stats)*10, median(tars))
}

// pidOf returns the PID of the one process named name, or 0 when there is
// none (its CPU is then not reported).
func pidOf(tb testing.TB, name string) int {
	tb.Helper()
	out, err := exec.Command("pidof", name).Output()
	if err != nil {
		return 0
	}
	f := strings.Fields(string(out))
	if len(f) != 1 {
		return 0
	}
	pid, _ := strconv.Atoi(f[0])
	return pid
}

// procCPU returns the user and system CPU time of process pid so far, from
// /proc/PID/stat (clock ticks of 1/100 s); 0 for pid 0.
func procCPU(tb testing.TB, pid int) time.Duration {
	tb.Helper()
	if pid == 0 {
		return 0
	}
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	s := string(data)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(ut+st) * 10 * time.Millisecond
}

func rusageCPU(ru syscall.Rusage) time.Duration {
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
