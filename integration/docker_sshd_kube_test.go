package integration

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"

	"github.com/dockssh/dockssh/integration/internal/harness"
)

// TestDockerSSHDKubernetes drives docker-sshd (built with -tags kube) in
// front of the real single-node cluster with the real OpenSSH client: the
// cases of the Docker targets, into pods.
func TestDockerSSHDKubernetes(t *testing.T) {
	t.Parallel()
	k := harness.StartKube(t)
	k.Namespace(t, "team-a")
	web := k.StartPod(t, harness.PodOptions{Name: "web", Containers: []harness.PodContainer{{Name: "app", Env: map[string]string{"WHICH": "app"}}}})
	two := k.StartPod(t, harness.PodOptions{Name: "two", Containers: []harness.PodContainer{
		{Name: "a", Env: map[string]string{"WHICH": "a"}},
		{Name: "b", Env: map[string]string{"WHICH": "b"}},
	}})
	db := k.StartPod(t, harness.PodOptions{Name: "db", Namespace: "team-a"})
	notReady := k.CreatePod(t, harness.PodOptions{Name: "unready", Containers: []harness.PodContainer{{Name: "app", ReadinessExec: []string{"false"}}}})

	chromium := requireTool(t, "chromium", "apt-get install chromium")
	cdn := serveCDN(t, xtermPackages(t))
	const password = "kube-Pw-canary-0b7e"
	p := startDockerSSHDBinary(t, dockerSSHDBinaryTags(t, "kube"), map[string]string{
		"WEB_XTERM_URL":   cdn,
		"KUBECONFIG":      k.Kubeconfig,
		"KUBE_NAMESPACES": "default,team-a",
		"ROUTING":         "any",
		"AUTH_MECHANISM":  "simpleAuth",
		"AUTH_USER":       "u",
		"AUTH_PASSWORD":   password,
	})
	login := passwordLogin(t, password)
	run := func(user, cmd string, opts ...string) (string, string, int) {
		return runCmd(t, p.ssh(t, user, login, opts, cmd), nil)
	}
	user := "u+" + web.Name + ".pod"

	t.Run("exit status, stderr apart, binary exact", func(t *testing.T) {
		out, errOut, status := run(user, `printf 'a\000b\377'; echo err >&2; exit 3`)
		assert.Equal(t, "a\x00b\xff", out)
		assert.Equal(t, "err\n", errOut)
		assert.Equal(t, 3, status)
	})

	t.Run("piped input, stdin end of file, 1 MiB both ways", func(t *testing.T) {
		blob := make([]byte, 1<<20)
		rand.Read(blob)
		out, errOut, status := runCmd(t, p.ssh(t, user, login, nil, "sha256sum"), blob)
		require.Zero(t, status, errOut)
		assert.True(t, strings.HasPrefix(out, fmt.Sprintf("%x", sha256.Sum256(blob))), "sha256sum said %q", out)
		out, _, status = runCmd(t, p.ssh(t, user, login, nil, "cat"), blob)
		require.Zero(t, status)
		assert.True(t, bytes.Equal(blob, []byte(out)), "cat gave back %d bytes, not the 1 MiB sent", len(out))
	})

	t.Run("a terminal with ssh -tt", func(t *testing.T) {
		out, errOut, status := run(user, "[ -t 0 ] && echo has-a-tty; exit 4", "-tt")
		assert.Equal(t, 4, status, errOut)
		assert.Equal(t, "has-a-tty\r\n", out)
	})

	t.Run("ssh -tt in a real terminal: size at start and after a resize", func(t *testing.T) {
		ssh := p.ssh(t, user, login, []string{"-tt"})
		term := newTmux(t, 40, 120, ssh.Args, ssh.Env)
		term.typeLine("stty size; echo $((6*7))")
		term.waitScreen("40 120")
		term.waitScreen("42")
		term.tmux("resize-window", "-t", "0", "-x", "100", "-y", "30")
		term.typeUntil("stty size", "30 100")
		term.typeLine("exit 3")
		if got := term.exitStatus(); got != "3" {
			t.Errorf("ssh -tt exit status %s, want 3; screen:\n%s", got, term.screen())
		}
	})

	t.Run("the web terminal in a browser", func(t *testing.T) {
		ctx := newBrowser(t, chromium, user, password)
		b := &browserSteps{t: t, ctx: ctx}
		b.step("log in with the SSH password and run a command in the pod", func() error {
			if err := chromedp.Do(ctx, chromedp.Navigate(fmt.Sprintf("http://127.0.0.1:%d/", p.httpPort))); err != nil {
				return err
			}
			if err := b.waitJS(`window.dockssh && window.dockssh.id !== null`); err != nil {
				return err
			}
			if err := chromedp.Do(ctx, typeKeys("echo $WHICH-$((6*7))\r")); err != nil {
				return err
			}
			return b.waitJS(`/^app-42$/m.test(window.dockssh.text())`)
		})
		b.step("exit ends the session with its status", func() error {
			if err := chromedp.Do(ctx, typeKeys("exit 4\r")); err != nil {
				return err
			}
			return b.waitJS(`window.dockssh.ended.includes("exited with status 4")`)
		})
	})

	t.Run("a signal request reaches the process in the pod", func(t *testing.T) {
		hostKey, err := knownhosts.New(p.knownHosts)
		require.NoError(t, err)
		c, err := ssh.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", p.port), &ssh.ClientConfig{
			User: user, Auth: []ssh.AuthMethod{ssh.Password(password)}, HostKeyCallback: hostKey, Timeout: 20 * time.Second,
		})
		require.NoError(t, err)
		defer c.Close()
		s, err := c.NewSession()
		require.NoError(t, err)
		out, err := s.StdoutPipe()
		require.NoError(t, err)
		require.NoError(t, s.Start(`trap 'echo got-TERM; exit 7' TERM; echo ready; while :; do sleep 1; done`))
		br := bufio.NewReader(out)
		line, err := br.ReadString('\n')
		require.NoError(t, err)
		require.Equal(t, "ready\n", line)
		require.NoError(t, s.Signal(ssh.SIGTERM))
		// A signal that never arrives would leave the loop running.
		stop := time.AfterFunc(30*time.Second, func() { c.Close() })
		defer stop.Stop()
		line, err = br.ReadString('\n')
		require.NoError(t, err)
		assert.Equal(t, "got-TERM\n", line)
		var ee *ssh.ExitError
		require.ErrorAs(t, s.Wait(), &ee)
		assert.Equal(t, 7, ee.ExitStatus())
	})

	t.Run("containers, namespaces and the environment", func(t *testing.T) {
		for _, c := range []struct{ user, want string }{
			{"u+" + two.Name + ".pod", "a\n"},
			{"u+" + two.Name + ".b.pod", "b\n"},
			{"u+" + db.Name + ".pod.team-a", "\n"},
		} {
			out, errOut, status := run(c.user, `echo "$WHICH"`)
			assert.Zero(t, status, "%s: %s", c.user, errOut)
			assert.Equal(t, c.want, out, c.user)
		}
		out, _, status := runCmd(t, p.ssh(t, user, login, []string{"-o", "SendEnv=LANG", "env:LANG=C.UTF-8"}, `echo "$LANG"`), nil)
		assert.Zero(t, status)
		assert.Equal(t, "C.UTF-8\n", out, "SendEnv reaches the pod")
	})

	t.Run("unknown and unready pods: clear messages", func(t *testing.T) {
		_, errOut, status := run("u+nope-1.pod", "true")
		assert.Equal(t, 1, status)
		assert.Equal(t, "dockssh: no running pod \"nope-1\" that you may use\n", errOut)
		_, errOut, status = run("u+"+notReady.Name+".pod", "true")
		assert.Equal(t, 1, status)
		assert.Equal(t, fmt.Sprintf("dockssh: pod %s is not ready (phase Running)\n", notReady.Name), errOut)
		_, errOut, status = run("u+"+web.Name+".nope.pod", "true")
		assert.Equal(t, 1, status)
		assert.Equal(t, fmt.Sprintf("dockssh: pod %s has no container \"nope\" (containers: app)\n", web.Name), errOut)
	})

	t.Run("sftp put and get, byte exact", func(t *testing.T) {
		dir := t.TempDir()
		up := filepath.Join(dir, "up")
		blob := make([]byte, 3<<20)
		rand.Read(blob)
		require.NoError(t, os.WriteFile(up, blob, 0o600))
		down := filepath.Join(dir, "down")
		out, errOut, status := runCmd(t, sftpCmd(t, p, user, login), []byte("put "+up+" /sftp-up\nget /sftp-up "+down+"\n")) // the image has no /tmp
		require.Zero(t, status, errOut)
		require.FileExists(t, down, "sftp said:\n%s\n%s", out, errOut)
		got, err := os.ReadFile(down)
		require.NoError(t, err)
		assert.True(t, bytes.Equal(blob, got), "the file came back different")
	})

	t.Run("no process left after kill -9 of the client", func(t *testing.T) {
		c := p.ssh(t, user, login, nil, "sleep 300")
		require.NoError(t, c.Start())
		inPod := func() string {
			return k.Kubectl(t, nil, "exec", web.Name, "-c", "app", "--", "ps", "-o", "args")
		}
		waitUntil(t, "the command to run in the pod", func() bool { return strings.Contains(inPod(), "sleep 300") })
		require.NoError(t, c.Process.Signal(syscall.SIGKILL))
		c.Wait()
		waitUntil(t, "the command to be gone from the pod", func() bool { return !strings.Contains(inPod(), "sleep 300") })
	})

	t.Run("Docker containers beside pods", func(t *testing.T) {
		tgt := harness.StartTarget(t, "kube-side")
		out, errOut, status := run("u+"+tgt.Name, "cat /etc/hostname")
		require.Zero(t, status, errOut)
		assert.Equal(t, tgt.ID[:12]+"\n", out)
	})
	assert.NotContains(t, p.logs.String(), password)
}
