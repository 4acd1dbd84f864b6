package integration

import (
	"bytes"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/dockssh/dockssh/integration/internal/harness"
)

// BenchmarkDockerSSHDKubernetes compares, side by side and interleaved, a
// session into a pod through docker-sshd (-tags kube) with `kubectl exec`:
// the latency of `ssh gw true` against `kubectl exec POD -- true` (median
// of 20 each), and 50 MB of output written to a file (median of 3).
//
//	go test -run XXX -bench BenchmarkDockerSSHDKubernetes -benchtime 1x -timeout 30m ./integration/
func BenchmarkDockerSSHDKubernetes(b *testing.B) {
	k := harness.StartKube(b)
	pod := k.StartPod(b, harness.PodOptions{Name: "bench"})
	key := filepath.Join(b.TempDir(), "id")
	sshKeygen(b, "-q", "-t", "ed25519", "-N", "", "-f", key)
	p := startDockerSSHDBinary(b, dockerSSHDBinaryTags(b, "kube"), map[string]string{
		"KUBECONFIG": k.Kubeconfig, "ROUTING": "any", "HTTP_ENABLED": "false",
		"AUTH_MECHANISM": "publicKey", "AUTHORIZED_KEYS": readFile(b, key+".pub"),
	})
	user := "u+" + pod.Name + ".pod"
	kubectl := func(args ...string) *exec.Cmd {
		c := exec.Command("kubectl", append([]string{"--kubeconfig", k.Kubeconfig, "exec", "-i", pod.Name, "-c", pod.Containers[0], "--"}, args...)...)
		c.Env = cleanEnv(b)
		return c
	}
	timed := func(c *exec.Cmd, out string) time.Duration {
		if out != "" {
			f, err := os.Create(out)
			if err != nil {
				b.Fatal(err)
			}
			defer f.Close()
			c.Stdout = f
		}
		if c.Stdout == nil {
			c.Stdout = io.Discard
		}
		var stderr bytes.Buffer
		c.Stderr = &stderr
		start := time.Now()
		if err := c.Run(); err != nil {
			b.Fatalf("%v: %v %s", c.Args, err, stderr.Bytes())
		}
		return time.Since(start)
	}
	const size = 50 << 20
	for range b.N {
		var ssh, kc []time.Duration
		for range 20 {
			ssh = append(ssh, timed(p.ssh(b, user, keyLogin(key), nil, "true"), ""))
			kc = append(kc, timed(kubectl("true"), ""))
		}
		var sshOut, kcOut []time.Duration
		dir := b.TempDir()
		for range 3 {
			sshOut = append(sshOut, timed(p.ssh(b, user, keyLogin(key), nil, "head -c 52428800 /dev/zero"), filepath.Join(dir, "ssh")))
			kcOut = append(kcOut, timed(kubectl("head", "-c", "52428800", "/dev/zero"), filepath.Join(dir, "kubectl")))
		}
		for _, f := range []string{"ssh", "kubectl"} {
			if fi, err := os.Stat(filepath.Join(dir, f)); err != nil || fi.Size() != size {
				b.Fatalf("%s wrote %v bytes, want %d (%v)", f, fi.Size(), size, err)
			}
		}
		ls, lk := median(ssh), median(kc)
		ts, tk := float64(size)/1e6/(median(sshOut)/1000), float64(size)/1e6/(median(kcOut)/1000)
		b.ReportMetric(ls, "ssh-true-p50-ms")
		b.ReportMetric(lk, "kubectl-true-p50-ms")
		b.ReportMetric(ts, "ssh-50MB-MB/s")
		b.ReportMetric(tk, "kubectl-50MB-MB/s")
		b.Logf("session: ssh %.1f ms, kubectl exec %.1f ms (x%.2f); 50 MB: ssh %.1f MB/s, kubectl exec %.1f MB/s (%.0f%%)", ls, lk, ls/lk, ts, tk, 100*ts/tk)
	}
}
