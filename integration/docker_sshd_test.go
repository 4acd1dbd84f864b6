package integration

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/dockssh/dockssh/integration/internal/harness"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

type binaryBuild struct {
	once sync.Once
	path string
	err  error
}

// dockerSSHDBuilds are the docker-sshd binaries of this test process, by
// build tags.
var dockerSSHDBuilds struct {
	mu     sync.Mutex
	byTags map[string]*binaryBuild
}

// dockerSSHDBinary builds examples/docker-sshd once per test process,
// static (CGO_ENABLED=0), as its docs say to build it.
func dockerSSHDBinary(tb testing.TB) string { return dockerSSHDBinaryTags(tb, "") }

// dockerSSHDBinaryTags builds examples/docker-sshd with build tags (such
// as "kube") once per test process.
func dockerSSHDBinaryTags(tb testing.TB, tags string) string {
	tb.Helper()
	dockerSSHDBuilds.mu.Lock()
	if dockerSSHDBuilds.byTags == nil {
		dockerSSHDBuilds.byTags = map[string]*binaryBuild{}
	}
	b := dockerSSHDBuilds.byTags[tags]
	if b == nil {
		b = &binaryBuild{}
		dockerSSHDBuilds.byTags[tags] = b
	}
	dockerSSHDBuilds.mu.Unlock()
	b.once.Do(func() {
		dir, err := os.MkdirTemp("", "docker-sshd-test-")
		if err != nil {
			b.err = err
			return
		}
		atExit(func() { os.RemoveAll(dir) })
		bin := filepath.Join(dir, "docker-sshd")
		cmd := exec.Command("go", "build", "-tags", tags, "-o", bin, "./examples/docker-sshd")
		cmd.Dir = harness.RepoRoot()
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			b.err = fmt.Errorf("go build -tags %q ./examples/docker-sshd: %v: %s", tags, err, out)
			return
		}
		b.path = bin
	})
	require.NoError(tb, b.err)
	return b.path
}

// sshdProc is a running docker-sshd.
type sshdProc struct {
	cmd        *exec.Cmd
	port       int
	httpPort   int
	knownHosts string
	logs       *lockedBuffer
	exited     chan struct{}
	exitErr    error
}

func freeTCPPort(tb testing.TB) int {
	tb.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(tb, err)
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// startDockerSSHD runs the binary with env (on top of a minimal
// environment) on free ports of 127.0.0.1 and waits until it listens.
func startDockerSSHD(tb testing.TB, env map[string]string) *sshdProc {
	tb.Helper()
	return startDockerSSHDBinary(tb, dockerSSHDBinary(tb), env)
}

// startDockerSSHDBinary is startDockerSSHD with the binary bin.
func startDockerSSHDBinary(tb testing.TB, bin string, env map[string]string) *sshdProc {
	tb.Helper()
	p := &sshdProc{port: freeTCPPort(tb), httpPort: freeTCPPort(tb), logs: &lockedBuffer{}, exited: make(chan struct{})}
	keyPath := filepath.Join(tb.TempDir(), "hostkey")
	base := map[string]string{
		"IP": "127.0.0.1", "PORT": strconv.Itoa(p.port), "HTTP_PORT": strconv.Itoa(p.httpPort),
		"KEYPATH": keyPath, "LOG_FORMAT": "text", "KEEPALIVE_INTERVAL": "2s", "SHUTDOWN_GRACE": "3s",
	}
	for k, v := range env {
		base[k] = v
	}
	p.cmd = exec.Command(bin)
	p.cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + tb.TempDir()}
	for k, v := range base {
		p.cmd.Env = append(p.cmd.Env, k+"="+v)
	}
	p.cmd.Stdout, p.cmd.Stderr = p.logs, p.logs
	require.NoError(tb, p.cmd.Start())
	go func() {
		p.exitErr = p.cmd.Wait()
		close(p.exited)
	}()
	tb.Cleanup(func() {
		p.cmd.Process.Kill()
		<-p.exited
		if tb.Failed() {
			tb.Logf("docker-sshd log:\n%s", p.logs.String())
		}
	})
	deadline := time.Now().Add(60 * time.Second)
	for !strings.Contains(p.logs.String(), "docker-sshd: listening") {
		select {
		case <-p.exited:
			tb.Fatalf("docker-sshd exited: %v\n%s", p.exitErr, p.logs.String())
		default:
		}
		if time.Now().After(deadline) {
			tb.Fatalf("docker-sshd did not start:\n%s", p.logs.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	// The host key the server created, for strict checking.
	pub, err := exec.Command("ssh-keygen", "-y", "-f", keyPath).Output()
	require.NoError(tb, err)
	p.knownHosts = writeFile(tb, "known_hosts", fmt.Sprintf("[127.0.0.1]:%d %s", p.port, pub))
	return p
}

// ssh returns the real ssh client for this server with the given login
// options (keyLogin, passwordLogin).
func (p *sshdProc) ssh(tb testing.TB, user string, login []string, opts []string, remote ...string) *exec.Cmd {
	tb.Helper()
	env := cleanEnv(tb)
	args := []string{
		"-F", "/dev/null",
		"-o", "IdentityAgent=none",
		"-o", "StrictHostKeyChecking=yes",
		"-o", "UserKnownHostsFile=" + p.knownHosts,
		"-o", "GlobalKnownHostsFile=/dev/null",
		"-o", "ConnectTimeout=20",
		"-p", strconv.Itoa(p.port),
		"-l", user,
	}
	for _, o := range append(login, opts...) {
		if kv, ok := strings.CutPrefix(o, "env:"); ok {
			env = append(env, kv)
		} else {
			args = append(args, o)
		}
	}
	cmd := exec.Command("ssh", append(append(args, "--", "127.0.0.1"), remote...)...)
	cmd.Env = env
	return cmd
}

func runCmd(tb testing.TB, cmd *exec.Cmd, stdin []byte) (stdout, stderr string, status int) {
	tb.Helper()
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err := cmd.Run()
	if ee, ok := err.(*exec.ExitError); ok {
		status = ee.ExitCode()
	} else if err != nil {
		tb.Fatalf("%v: %v", cmd.Args, err)
	}
	return o.String(), e.String(), status
}

// rssKBOf is the resident set size of process pid.
func rssKBOf(tb testing.TB, pid int) int64 {
	tb.Helper()
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	require.NoError(tb, err)
	for line := range strings.Lines(string(data)) {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			n, _ := strconv.ParseInt(strings.Fields(v)[0], 10, 64)
			return n
		}
	}
	tb.Fatal("no VmRSS")
	return 0
}

// TestDockerSSHDStartupErrors: each bad setting ends the start with exit
// status 1 (2 for flag syntax) and one line that says what is wrong;
// nothing listens.
func TestDockerSSHDStartupErrors(t *testing.T) {
	t.Parallel()
	harness.Require(t)
	bin := dockerSSHDBinary(t)
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer busy.Close()
	busyPort := strconv.Itoa(busy.Addr().(*net.TCPAddr).Port)
	notAKey := writeFile(t, "hostkey", "this is not a key\n")
	ok := map[string]string{"CONTAINER": "x", "AUTH_MECHANISM": "simpleAuth", "AUTH_USER": "u", "AUTH_PASSWORD": "pw-canary-8d3f", "IP": "127.0.0.1", "HTTP_ENABLED": "false"}
	tests := []struct {
		name string
		env  map[string]string
		want string
	}{
		{"bad FILTERS JSON", map[string]string{"FILTERS": `{"name":`}, `FILTERS is not filter JSON`},
		{"unknown AUTH_MECHANISM", map[string]string{"AUTH_MECHANISM": "magic"}, `magic`},
		{"simpleAuth without AUTH_USER", map[string]string{"AUTH_USER": ""}, `AUTH_USER`},
		{"no authentication", map[string]string{"AUTH_MECHANISM": ""}, `no authentication`},
		{"no target", map[string]string{"CONTAINER": ""}, `no target: set FILTERS or CONTAINER`},
		{"unreadable host key", map[string]string{"KEYPATH": notAKey}, `host key`},
		{"port in use", map[string]string{"PORT": busyPort}, `cannot listen for SSH on 127.0.0.1:` + busyPort + `: address already in use`},
		{"Docker unreachable", map[string]string{"DOCKER_HOST": "unix:///nonexistent/docker.sock"}, `cannot reach the Docker Engine at unix:///nonexistent/docker.sock`},
		{"bad duration", map[string]string{"SHUTDOWN_GRACE": "soon"}, `SHUTDOWN_GRACE "soon"`},
		{"no endpoint answers", map[string]string{"ENDPOINTS": "a=unix:///nonexistent/docker.sock,b=unix:///nonexistent/2.sock"}, `no endpoint answers: a (unix:///nonexistent/docker.sock): `},
		{"endpoint without a scheme we know", map[string]string{"ENDPOINTS": "a=http://127.0.0.1:2375"}, `endpoint a: url "http://127.0.0.1:2375": want local, unix://, tcp:// or ssh://`},
		{"SWARM without routing", map[string]string{"SWARM": "true"}, `SWARM=true needs ROUTING=labeled or any`},
		{"SWARM on an engine that is no manager", map[string]string{"SWARM": "true", "ROUTING": "any"}, `SWARM_MANAGER local is not a Swarm manager (its swarm state: inactive)`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := map[string]string{"PORT": strconv.Itoa(freeTCPPort(t)), "KEYPATH": filepath.Join(t.TempDir(), "k")}
			for k, v := range ok {
				env[k] = v
			}
			for k, v := range tt.env {
				env[k] = v
			}
			cmd := exec.Command(bin)
			cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir()}
			for k, v := range env {
				if v != "" {
					cmd.Env = append(cmd.Env, k+"="+v)
				}
			}
			out, err := cmd.CombinedOutput()
			require.Error(t, err, "docker-sshd started: %s", out)
			var errLines []string
			for line := range strings.Lines(string(out)) {
				if strings.HasPrefix(line, "docker-sshd: ") {
					errLines = append(errLines, strings.TrimSpace(line))
				}
			}
			require.Len(t, errLines, 1, "output:\n%s", out)
			assert.Contains(t, errLines[0], tt.want)
			assert.NotContains(t, string(out), "pw-canary-8d3f")
			assert.NotContains(t, string(out), "docker-sshd: listening")
		})
	}
}

// TestDockerSSHD runs the binary in front of real containers and drives it
// with the real OpenSSH client.
func TestDockerSSHD(t *testing.T) {
	t.Parallel()
	targets := startTargets(t)
	deb, bb := targets[0], targets[1]
	const password = "s3cret-Pw-canary-71c2"
	p := startDockerSSHD(t, map[string]string{
		"CONTAINER":      deb.Name,
		"FILTERS":        `{"label":["dockssh.test=target"]}`,
		"ROUTING":        "any",
		"AUTH_MECHANISM": "simpleAuth",
		"AUTH_USER":      "u",
		"AUTH_PASSWORD":  password,
		"BANNER":         "Welcome to docker-sshd",
	})
	login := passwordLogin(t, password)

	t.Run("exit status, stderr apart, binary exact", func(t *testing.T) {
		out, errOut, status := runCmd(t, p.ssh(t, "u", login, nil, `printf 'a\000b\377'; echo err >&2; exit 3`), nil)
		assert.Equal(t, "a\x00b\xff", out)
		assert.Equal(t, "err\n", errOut)
		assert.Equal(t, 3, status)
	})

	t.Run("piped input and stdin end of file", func(t *testing.T) {
		blob := make([]byte, 1<<20)
		rand.Read(blob)
		out, _, status := runCmd(t, p.ssh(t, "u", login, nil, "sha256sum"), blob)
		assert.Zero(t, status)
		assert.True(t, strings.HasPrefix(out, fmt.Sprintf("%x", sha256.Sum256(blob))), "sha256sum said %q", out)
	})

	t.Run("ssh -tt host cmd gets a terminal, ssh -T no banner", func(t *testing.T) {
		out, _, status := runCmd(t, p.ssh(t, "u", login, []string{"-tt"}, "[ -t 0 ] && echo has-a-tty"), nil)
		assert.Zero(t, status)
		assert.Equal(t, "has-a-tty\r\n", out)
		out, _, status = runCmd(t, p.ssh(t, "u", login, []string{"-T"}), []byte("echo no-banner\n"))
		assert.Zero(t, status)
		assert.Equal(t, "no-banner\n", out)
	})

	t.Run("missing target: message and non-zero status", func(t *testing.T) {
		_, errOut, status := runCmd(t, p.ssh(t, "u+no-such-ctr", login, nil, "true"), nil)
		assert.Equal(t, 1, status)
		assert.Equal(t, "dockssh: no running container \"no-such-ctr\" that you may use\n", errOut)
		out, _, status := runCmd(t, p.ssh(t, "u+"+bb.Name, login, nil, "echo routed"), nil)
		assert.Zero(t, status)
		assert.Equal(t, "routed\n", out)
	})

	t.Run("failed login never logs the password", func(t *testing.T) {
		_, _, status := runCmd(t, p.ssh(t, "u", passwordLogin(t, "wrong-"+password), nil, "true"), nil)
		assert.Equal(t, 255, status)
		_, _, status = runCmd(t, p.ssh(t, password, login, nil, "true"), nil) // the password typed as the user name
		assert.Equal(t, 255, status)
		assert.NotContains(t, p.logs.String(), password)
	})

	t.Run("ControlMaster: several channels on one connection, independently", func(t *testing.T) {
		sock := filepath.Join(t.TempDir(), "mux")
		master := p.ssh(t, "u", login, []string{"-M", "-S", sock, "-N", "-o", "ControlPersist=no"})
		require.NoError(t, master.Start())
		t.Cleanup(func() { master.Process.Kill(); master.Wait() })
		waitFile(t, sock)
		slow := p.ssh(t, "u", nil, []string{"-S", sock, "-o", "ControlMaster=no"}, "sleep 30")
		require.NoError(t, slow.Start())
		t.Cleanup(func() { slow.Process.Kill(); slow.Wait() })
		var wg sync.WaitGroup
		for i := range 5 {
			wg.Go(func() {
				out, errOut, status := runCmd(t, p.ssh(t, "u", nil, []string{"-S", sock, "-o", "ControlMaster=no"}, fmt.Sprintf("echo chan-%d", i)), nil)
				assert.Zero(t, status, "stderr: %s", errOut)
				assert.Equal(t, fmt.Sprintf("chan-%d\n", i), out)
			})
		}
		wg.Wait()
		// Many short commands, five at a time: every one reports its
		// status through the master (the order of exit-status and end of
		// file decides that, see execbridge's finish).
		failed := make(chan string, 120)
		for range 24 {
			var round sync.WaitGroup
			for range 5 {
				round.Go(func() {
					_, errOut, status := runCmd(t, p.ssh(t, "u", nil, []string{"-S", sock, "-o", "ControlMaster=no"}, "true"), nil)
					if status != 0 {
						failed <- fmt.Sprintf("status %d, stderr %q", status, errOut)
					}
				})
			}
			round.Wait()
		}
		close(failed)
		for f := range failed {
			t.Errorf("a multiplexed ssh true: %s", f)
		}
	})

	t.Run("nothing keeps running after a disconnect", func(t *testing.T) {
		sleep := uniqueSleep(t)
		c := p.ssh(t, "u", login, nil, "sleep "+sleep+" & sleep "+sleep)
		require.NoError(t, c.Start())
		waitProcess(t, deb, "sleep "+sleep)
		c.Process.Kill()
		c.Wait()
		waitNoProcess(t, deb, "sleep "+sleep)
	})

	t.Run("only modern algorithms by default", func(t *testing.T) {
		for _, opt := range [][]string{
			{"-o", "KexAlgorithms=diffie-hellman-group14-sha1"},
			{"-o", "Ciphers=aes128-cbc"},
			{"-o", "MACs=hmac-sha1", "-o", "Ciphers=aes128-ctr"},
		} {
			_, errOut, status := runCmd(t, p.ssh(t, "u", login, opt, "true"), nil)
			assert.Equal(t, 255, status, "%v: %s", opt, errOut)
			assert.Contains(t, errOut, "no matching", "%v", opt)
		}
	})

	t.Run("bad clients do not stall others", func(t *testing.T) {
		addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(p.port))
		var stuck []net.Conn
		defer func() {
			for _, c := range stuck {
				c.Close()
			}
		}()
		for i := range 10 {
			c, err := net.Dial("tcp", addr)
			require.NoError(t, err)
			switch i % 3 {
			case 0: // stalls in the handshake: says nothing
			case 1:
				c.Write(bytes.Repeat([]byte{0xff}, 4096))
			case 2: // banner, then a reset
				bufio.NewReader(c).ReadString('\n')
				c.(*net.TCPConn).SetLinger(0)
				c.Close()
				continue
			}
			stuck = append(stuck, c)
		}
		out, _, status := runCmd(t, p.ssh(t, "u", login, nil, "echo still-serving"), nil)
		assert.Zero(t, status)
		assert.Equal(t, "still-serving\n", out)
	})

	t.Run("a slow reader bounds the server's memory", func(t *testing.T) {
		before := rssKBOf(t, p.cmd.Process.Pid)
		c := p.ssh(t, "u", login, nil, "cat /dev/zero")
		out, err := c.StdoutPipe()
		require.NoError(t, err)
		require.NoError(t, c.Start())
		io.CopyN(io.Discard, out, 4<<20)
		c.Process.Signal(syscall.SIGSTOP)
		// However long the client stalls, the window it stopped granting
		// bounds what the server holds: sample for a few seconds.
		peak := before
		for end := time.Now().Add(3 * time.Second); time.Now().Before(end); time.Sleep(200 * time.Millisecond) {
			peak = max(peak, rssKBOf(t, p.cmd.Process.Pid))
		}
		c.Process.Signal(syscall.SIGCONT)
		c.Process.Kill()
		c.Wait()
		assert.Less(t, peak-before, int64(32<<10), "RSS grew by %d KiB while the client did not read", peak-before)
	})

	t.Run("a second instance on the same port fails; the first keeps serving", func(t *testing.T) {
		cmd := exec.Command(dockerSSHDBinary(t))
		cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir(), "IP=127.0.0.1", "PORT=" + strconv.Itoa(p.port),
			"HTTP_ENABLED=false", "CONTAINER=x", "AUTH_MECHANISM=noAuth", "KEYPATH=" + filepath.Join(t.TempDir(), "k")}
		out, err := cmd.CombinedOutput()
		require.Error(t, err)
		assert.Contains(t, string(out), "address already in use")
		o, _, status := runCmd(t, p.ssh(t, "u", login, nil, "echo first-still-serving"), nil)
		assert.Zero(t, status)
		assert.Equal(t, "first-still-serving\n", o)
	})

	t.Run("web terminal: the SSH login, exit ends only that session, 404 without internals", func(t *testing.T) {
		base := fmt.Sprintf("http://127.0.0.1:%d", p.httpPort)
		resp, err := http.Get(base + "/api/v1/terminal/stream")
		require.NoError(t, err)
		resp.Body.Close()
		assert.Equal(t, http.StatusUnauthorized, resp.StatusCode, "a stream without a login")

		c1 := &sseClient{base: base, user: "u", password: password, client: &http.Client{}}
		openSSE(t, t.Context(), c1, "", "")
		c2 := &sseClient{base: base, user: "u", password: password, client: &http.Client{}}
		openSSE(t, t.Context(), c2, "", "")
		c1.send(t, "echo web-$((6*7))\n")
		c1.readUntil(t, regexp.MustCompile(`web-42`))
		c1.send(t, "exit 5\n")
		c1.readUntil(t, nil)
		assert.Contains(t, c1.exit, `"code":5`)
		// The other session is untouched, and a new one starts.
		c2.send(t, "echo still-$((1+1))\n")
		c2.readUntil(t, regexp.MustCompile(`still-2`))
		c3 := &sseClient{base: base, user: "u", password: password, client: &http.Client{}}
		openSSE(t, t.Context(), c3, "", "")
		c3.send(t, "echo third\n")
		c3.readUntil(t, regexp.MustCompile(`third`))

		req, _ := http.NewRequest(http.MethodPost, base+"/api/v1/terminal/send/0123456789abcdef0123456789abcdef", strings.NewReader("data=ls"))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.SetBasicAuth("u", password)
		resp, err = http.DefaultClient.Do(req)
		require.NoError(t, err)
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		assert.Equal(t, http.StatusNotFound, resp.StatusCode)
		assert.Less(t, len(body), 64, "a short body: %q", body)
		assert.NotContains(t, p.logs.String(), password)
	})

	t.Run("/healthz", func(t *testing.T) {
		out, err := exec.Command("curl", "-sf", fmt.Sprintf("http://127.0.0.1:%d/healthz", p.httpPort)).Output()
		require.NoError(t, err)
		assert.Equal(t, "ok\n", string(out))
	})
}

// TestDockerSSHDGracefulShutdown: SIGTERM lets a running session finish
// within the grace period, refuses new ones, then ends what is left and
// its processes in the container.
func TestDockerSSHDGracefulShutdown(t *testing.T) {
	t.Parallel()
	targets := startTargets(t)
	bb := targets[1]
	p := startDockerSSHD(t, map[string]string{
		"CONTAINER": bb.Name, "AUTH_MECHANISM": "simpleAuth", "AUTH_USER": "u", "AUTH_PASSWORD": "pw-graceful", "SHUTDOWN_GRACE": "2s",
	})
	login := passwordLogin(t, "pw-graceful")
	sleep := uniqueSleep(t)
	c := p.ssh(t, "u", login, nil, "sleep "+sleep)
	require.NoError(t, c.Start())
	waitProcess(t, bb, "sleep "+sleep)
	require.NoError(t, p.cmd.Process.Signal(syscall.SIGTERM))
	select {
	case <-p.exited:
	case <-time.After(30 * time.Second):
		t.Fatal("docker-sshd did not stop after SIGTERM and its grace period")
	}
	assert.NoError(t, p.exitErr, "exit status after SIGTERM")
	c.Wait()
	waitNoProcess(t, bb, "sleep "+sleep)
	assert.Contains(t, p.logs.String(), "grace period over")
}

// TestDockerSSHDLegacyAlgorithms: old algorithms only by option.
func TestDockerSSHDLegacyAlgorithms(t *testing.T) {
	t.Parallel()
	targets := startTargets(t)
	p := startDockerSSHD(t, map[string]string{
		"CONTAINER": targets[1].Name, "AUTH_MECHANISM": "simpleAuth", "AUTH_USER": "u", "AUTH_PASSWORD": "pw-legacy", "LEGACY_ALGORITHMS": "true",
	})
	out, errOut, status := runCmd(t, p.ssh(t, "u", passwordLogin(t, "pw-legacy"), []string{"-o", "KexAlgorithms=diffie-hellman-group14-sha1", "-o", "Ciphers=aes128-cbc", "-o", "MACs=hmac-sha1"}, "echo legacy-ok"), nil)
	assert.Zero(t, status, errOut)
	assert.Equal(t, "legacy-ok\n", out)
}

// TestDockerSSHDImage runs the image with docker-ssh's own `docker run`
// line (FILTERS, simpleAuth, the Docker socket) and logs in as docker-ssh's
// README shows.
func TestDockerSSHDImage(t *testing.T) {
	t.Parallel()
	targets := startTargets(t)
	bb := targets[1]
	out, err := exec.Command("bash", filepath.Join(harness.RepoRoot(), "scripts", "build-docker-sshd.sh")).Output()
	require.NoError(t, err, "scripts/build-docker-sshd.sh")
	image := strings.TrimSpace(string(out))
	port := freeTCPPort(t)
	name := "docker-sshd-test-" + randomHex(t, 4)
	run := exec.Command("docker", "run", "-d", "--name", name,
		"-p", fmt.Sprintf("127.0.0.1:%d:22", port),
		"-v", "/var/run/docker.sock:/var/run/docker.sock",
		"-e", fmt.Sprintf(`FILTERS={"name":["^/%s$"]}`, bb.Name),
		"-e", "AUTH_MECHANISM=simpleAuth", "-e", "AUTH_USER=u", "-e", "AUTH_PASSWORD=p",
		"-e", "HTTP_ENABLED=false",
		image)
	out, err = run.CombinedOutput()
	require.NoError(t, err, "docker run: %s", out)
	t.Cleanup(func() {
		if t.Failed() {
			logs, _ := exec.Command("docker", "logs", name).CombinedOutput()
			t.Logf("docker-sshd container log:\n%s", logs)
		}
		exec.Command("docker", "rm", "-f", name).Run()
	})
	// Wait for the banner, then learn the host key the container created.
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	deadline := time.Now().Add(60 * time.Second)
	for readBannerOK(addr) != nil {
		require.True(t, time.Now().Before(deadline), "docker-sshd in the container never answered")
		time.Sleep(100 * time.Millisecond)
	}
	keys, err := exec.Command("ssh-keyscan", "-p", strconv.Itoa(port), "127.0.0.1").Output()
	require.NoError(t, err)
	p := &sshdProc{port: port, knownHosts: writeFile(t, "known_hosts", string(keys))}
	o, errOut, status := runCmd(t, p.ssh(t, "u", passwordLogin(t, "p"), nil, "echo hello from $(hostname); exit 7"), nil)
	assert.Equal(t, 7, status, errOut)
	assert.Equal(t, "hello from "+bb.ID[:12]+"\n", o)
}

// readBannerOK reports whether an SSH server answers at addr.
func readBannerOK(addr string) error {
	c, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(2 * time.Second))
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return err
	}
	if !strings.HasPrefix(line, "SSH-2.0-") {
		return fmt.Errorf("not an SSH banner: %q", line)
	}
	return nil
}

// TestDockerSSHDWebToken: with keys as the only login, the web terminal's
// login is a token URL printed at start.
func TestDockerSSHDWebToken(t *testing.T) {
	t.Parallel()
	targets := startTargets(t)
	key := filepath.Join(t.TempDir(), "id")
	sshKeygen(t, "-q", "-t", "ed25519", "-N", "", "-f", key)
	pub, err := os.ReadFile(key + ".pub")
	require.NoError(t, err)
	p := startDockerSSHD(t, map[string]string{
		"CONTAINER": targets[1].Name, "AUTH_MECHANISM": "publicKey", "AUTHORIZED_KEYS": string(pub),
	})
	m := regexp.MustCompile(`web terminal login \(keep it secret; valid until restart\): (http://\S+/#token=([0-9a-f]+))`).FindStringSubmatch(p.logs.String())
	require.NotNil(t, m, "no login URL printed:\n%s", p.logs.String())
	assert.Equal(t, fmt.Sprintf("http://127.0.0.1:%d/#token=%s", p.httpPort, m[2]), m[1])
	base := fmt.Sprintf("http://127.0.0.1:%d", p.httpPort)
	for _, tc := range []struct {
		token string
		want  int
	}{{"", http.StatusUnauthorized}, {"wrong", http.StatusUnauthorized}, {m[2], http.StatusOK}} {
		req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, base+"/api/v1/terminal/stream", nil)
		if tc.token != "" {
			req.Header.Set("Authorization", "Bearer "+tc.token)
		}
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		resp.Body.Close()
		assert.Equal(t, tc.want, resp.StatusCode, "token %q", tc.token)
	}
	// SSH with the key works as before.
	out, _, status := runCmd(t, p.ssh(t, "anyone", keyLogin(key), nil, "echo key-ok"), nil)
	assert.Zero(t, status)
	assert.Equal(t, "key-ok\n", out)
}

// TestDockerSSHDBrowser drives docker-sshd's own web terminal in Debian's
// headless chromium, logged in with the SSH user's password (HTTP Basic):
// a command, `exit`, and a second session; the SSH side keeps serving.
// xterm.js comes from its npm packages on 127.0.0.1 (WEB_XTERM_URL).
func TestDockerSSHDBrowser(t *testing.T) {
	t.Parallel()
	chromium := requireTool(t, "chromium", "apt-get install chromium")
	cdn := serveCDN(t, xtermPackages(t))
	targets := startTargets(t)
	const password = "browser-pw-3f81"
	p := startDockerSSHD(t, map[string]string{
		"CONTAINER": targets[0].Name, "AUTH_MECHANISM": "simpleAuth", "AUTH_USER": "u", "AUTH_PASSWORD": password,
		"WEB_XTERM_URL": cdn,
	})
	base := fmt.Sprintf("http://127.0.0.1:%d", p.httpPort)
	ctx := newBrowser(t, chromium, "u", password)
	b := &browserSteps{t: t, ctx: ctx}
	var firstID string
	b.step("log in with the SSH password and run a command", func() error {
		if err := chromedp.Do(ctx, chromedp.Navigate(base+"/")); err != nil {
			return err
		}
		if err := b.waitJS(`window.dockssh && window.dockssh.id !== null && window.dockssh.text().includes(":/#")`); err != nil {
			return err
		}
		firstID = b.js(`window.dockssh.id`)
		if err := chromedp.Do(ctx, typeKeys("echo $((6*7))\r")); err != nil {
			return err
		}
		return b.waitJS(`/^42$/m.test(window.dockssh.text())`)
	})
	b.step("exit ends the session with its status", func() error {
		if err := chromedp.Do(ctx, typeKeys("exit 4\r")); err != nil {
			return err
		}
		return b.waitJS(`window.dockssh.ended.includes("exited with status 4")`)
	})
	b.step("a second session, and SSH still serves", func() error {
		if err := chromedp.Do(ctx, chromedp.Navigate(base+"/")); err != nil {
			return err
		}
		if err := b.waitJS(`window.dockssh.id !== null && window.dockssh.id !== ` + jsString(firstID) + ` && window.dockssh.text().includes(":/#")`); err != nil {
			return err
		}
		out, _, status := runCmd(t, p.ssh(t, "u", passwordLogin(t, password), nil, "echo ssh-too"), nil)
		if status != 0 || out != "ssh-too\n" {
			return fmt.Errorf("ssh after the web sessions: %q, status %d", out, status)
		}
		return nil
	})
	assert.NotContains(t, p.logs.String(), password)
}

// TestDockerSSHDNoAuth: AUTH_MECHANISM=noAuth works as in docker-ssh (any
// user, any password), says so at error level, and opens the web terminal
// without a login too.
func TestDockerSSHDNoAuth(t *testing.T) {
	t.Parallel()
	targets := startTargets(t)
	p := startDockerSSHD(t, map[string]string{"CONTAINER": targets[1].Name, "AUTH_MECHANISM": "noAuth"})
	assert.Contains(t, p.logs.String(), "level=ERROR")
	assert.Contains(t, p.logs.String(), "AUTH_MECHANISM=noAuth")
	cmd := p.ssh(t, "anyone", []string{"-o", "PreferredAuthentications=none,password", "-o", "BatchMode=yes"}, nil, "echo open")
	out, errOut, status := runCmd(t, cmd, nil)
	assert.Zero(t, status, errOut)
	assert.Equal(t, "open\n", out)
	resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/api/v1/terminal/stream", p.httpPort))
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusOK, resp.StatusCode, "the web terminal follows noAuth")
}
