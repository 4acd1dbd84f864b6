package integration

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/dockssh/dockssh/authn"
	"github.com/dockssh/dockssh/execbridge"
	"github.com/dockssh/dockssh/hostkeys"
	"github.com/dockssh/dockssh/integration/internal/harness"
	"github.com/dockssh/dockssh/redact"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/ssh"
)

// bridgeEnv is an SSH server built from authn, hostkeys, redact and
// execbridge in this process, serving the real OpenSSH client on
// 127.0.0.1 with sessions in real containers of the local dockerd.
type bridgeEnv struct {
	port       int
	knownHosts string
	key        string // the client's private key file
	signer     ssh.Signer
	hostKey    ssh.PublicKey
	logs       *lockedBuffer
	server     *execbridge.Server
	targets    []dockerBackendTarget
}

type bridgeOpts struct {
	keyOptions string // authorized_keys options for the client key
	config     func(*execbridge.Config)
	killGrace  time.Duration
}

func startBridge(t testing.TB, targets []dockerBackendTarget, o bridgeOpts) *bridgeEnv {
	t.Helper()
	dir := t.TempDir()
	e := &bridgeEnv{targets: targets, logs: &lockedBuffer{}}

	// The client's key, in OpenSSH's format for ssh -i.
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	require.NoError(t, err)
	block, err := ssh.MarshalPrivateKey(priv, "")
	require.NoError(t, err)
	e.key = filepath.Join(dir, "id_ed25519")
	require.NoError(t, os.WriteFile(e.key, pem.EncodeToMemory(block), 0o600))
	e.signer, err = ssh.NewSignerFromKey(priv)
	require.NoError(t, err)
	line := strings.TrimSpace(string(ssh.MarshalAuthorizedKey(e.signer.PublicKey())))
	if o.keyOptions != "" {
		line = o.keyOptions + " " + line
	}

	// Logs go through redact, as a deployment's should.
	rd, err := redact.New(nil)
	require.NoError(t, err)
	logger := slog.New(rd.Handler(slog.NewJSONHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug})))

	auth, err := authn.New(&authn.Config{
		AuthorizedKeys: &authn.AuthorizedKeysConfig{Content: line},
		Penalties:      &authn.PenaltyConfig{Disabled: true},
		AccountName:    func(u string) string { l, _ := execbridge.SplitUser(u); return l },
		Logger:         logger,
	})
	require.NoError(t, err)
	hk, err := hostkeys.LoadOrCreateHostKey(filepath.Join(dir, "host", "ssh_host_ed25519_key"), &hostkeys.KeyConfig{Logger: logger})
	require.NoError(t, err)
	e.hostKey = hk.PublicKey()
	sc := &ssh.ServerConfig{}
	auth.Apply(sc)
	sc.AddHostKey(hk)
	execbridge.SetAlgorithms(sc, false) // as docker-sshd does

	docker := harness.Docker(t)
	grace := o.killGrace
	if grace == 0 {
		grace = time.Second
	}
	cfg := &execbridge.Config{
		Backend: execbridge.NewDockerBackend(docker, &execbridge.DockerConfig{Logger: logger, KillGrace: grace}),
		Resolver: &execbridge.DockerResolver{
			Client:    docker,
			Filters:   map[string][]string{"label": {"dockssh.test=target"}},
			Container: targets[0].Name,
			Routing:   execbridge.RoutingAny,
		},
		Logger: logger,
	}
	if o.config != nil {
		o.config(cfg)
	}
	b, err := execbridge.New(cfg)
	require.NoError(t, err)
	e.server = &execbridge.Server{Bridge: b, SSHConfig: sc, Allow: auth.Allow}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	e.port = ln.Addr().(*net.TCPAddr).Port
	served := make(chan error, 1)
	go func() { served <- e.server.Serve(ln) }()
	t.Cleanup(func() {
		e.server.Close()
		assert.ErrorIs(t, <-served, execbridge.ErrServerClosed)
		if t.Failed() {
			t.Logf("bridge log:\n%s", e.logs.String())
		}
	})
	e.knownHosts = writeFile(t, "known_hosts", fmt.Sprintf("[127.0.0.1]:%d %s", e.port, ssh.MarshalAuthorizedKey(e.hostKey)))
	return e
}

// user is the SSH user name that routes to target d.
func (e *bridgeEnv) user(d dockerBackendTarget) string {
	return "alice" + execbridge.RouteSep + d.Name
}

// sshCmd returns the real ssh client, set up for this bridge: strict host
// keys, the test key only, no config, agent or home of the user's.
func (e *bridgeEnv) sshCmd(tb testing.TB, user string, opts []string, remote ...string) *exec.Cmd {
	tb.Helper()
	args := []string{
		"-F", "/dev/null",
		"-o", "IdentityAgent=none",
		"-o", "StrictHostKeyChecking=yes",
		"-o", "UserKnownHostsFile=" + e.knownHosts,
		"-o", "GlobalKnownHostsFile=/dev/null",
		"-o", "ConnectTimeout=20",
		"-o", "BatchMode=yes",
		"-i", e.key, "-o", "IdentitiesOnly=yes",
		"-p", strconv.Itoa(e.port),
		"-l", user,
	}
	args = append(append(append(args, opts...), "--", "127.0.0.1"), remote...)
	cmd := exec.Command("ssh", args...)
	cmd.Env = cleanEnv(tb)
	return cmd
}

// run runs ssh with stdin and returns stdout, stderr and the exit status.
func (e *bridgeEnv) run(tb testing.TB, user string, stdin []byte, opts []string, remote ...string) (stdout, stderr []byte, status int) {
	tb.Helper()
	cmd := e.sshCmd(tb, user, opts, remote...)
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	var o, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &errb
	done := make(chan error, 1)
	require.NoError(tb, cmd.Start())
	go func() { done <- cmd.Wait() }()
	var err error
	select {
	case err = <-done:
	case <-time.After(2 * time.Minute):
		cmd.Process.Kill()
		tb.Fatalf("ssh %q did not finish; stderr: %s", remote, errb.String())
	}
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		status = ee.ExitCode()
	default:
		tb.Fatalf("ssh: %v", err)
	}
	return o.Bytes(), errb.Bytes(), status
}

// dial connects with x/crypto's client, for what the OpenSSH client cannot
// send (signal requests) or do (a TCP reset).
func (e *bridgeEnv) dial(tb testing.TB, user string) *ssh.Client {
	tb.Helper()
	c, err := ssh.Dial("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(e.port)), &ssh.ClientConfig{
		User:            user,
		Auth:            []ssh.AuthMethod{ssh.PublicKeys(e.signer)},
		HostKeyCallback: ssh.FixedHostKey(e.hostKey),
		Timeout:         20 * time.Second,
	})
	require.NoError(tb, err)
	tb.Cleanup(func() { c.Close() })
	return c
}

// waitNoProcess waits until no live process in the container has word in
// its command line.
func waitNoProcess(tb testing.TB, d dockerBackendTarget, word string) {
	tb.Helper()
	waitNoProcessFor(tb, d, word, 30*time.Second)
}

// waitNoProcessFor is waitNoProcess with a bound of one's own, for many
// processes ended at once on a loaded machine.
func waitNoProcessFor(tb testing.TB, d dockerBackendTarget, word string, bound time.Duration) {
	tb.Helper()
	deadline := time.Now().Add(bound)
	for {
		left := d.processesWith(tb, word)
		if len(left) == 0 {
			return
		}
		if time.Now().After(deadline) {
			tb.Fatalf("processes left in %s: %q", d.Name, left)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// waitProcess waits until a live process in the container has word in its
// command line.
func waitProcess(tb testing.TB, d dockerBackendTarget, word string) {
	tb.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for len(d.processesWith(tb, word)) == 0 {
		if time.Now().After(deadline) {
			tb.Fatalf("no process %q started in %s", word, d.Name)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func startTargets(t testing.TB) []dockerBackendTarget {
	t.Helper()
	var wg sync.WaitGroup
	var bb, deb *harness.Target
	wg.Go(func() { deb = harness.StartDebian(t, "bridge-debian") })
	wg.Go(func() { bb = harness.StartTarget(t, "bridge-busybox") })
	wg.Wait()
	if bb == nil || deb == nil {
		t.FailNow()
	}
	return []dockerBackendTarget{{Target: deb, debian: true}, {Target: bb}}
}

// TestExecbridgeOpenSSH serves the real OpenSSH client with execbridge
// into a Debian target with bash and a busybox-only target.
func TestExecbridgeOpenSSH(t *testing.T) {
	t.Parallel()
	targets := startTargets(t)
	e := startBridge(t, targets, bridgeOpts{})
	each := func(name string, f func(t *testing.T, d dockerBackendTarget)) {
		t.Run(name, func(t *testing.T) {
			for _, d := range e.targets {
				t.Run(map[bool]string{true: "debian", false: "busybox"}[d.debian], func(t *testing.T) {
					t.Parallel() // the targets are containers of their own
					f(t, d)
				})
			}
		})
	}

	each("exec, output and exit status", func(t *testing.T, d dockerBackendTarget) {
		out, errOut, status := e.run(t, e.user(d), nil, nil, "echo out; echo err >&2; exit 3")
		assert.Equal(t, "out\n", string(out))
		assert.Equal(t, "err\n", string(errOut))
		assert.Equal(t, 3, status)
	})

	each("default shell", func(t *testing.T, d dockerBackendTarget) {
		out, _, status := e.run(t, e.user(d), nil, nil, `echo "$0"`)
		want := map[bool]string{true: "/bin/bash", false: "/bin/sh"}[d.debian]
		assert.Equal(t, want+"\n", string(out))
		assert.Zero(t, status)
	})

	each("ssh -T shell reads commands from stdin", func(t *testing.T, d dockerBackendTarget) {
		out, _, status := e.run(t, e.user(d), []byte("echo from-stdin\nexit 5\n"), []string{"-T"})
		assert.Equal(t, "from-stdin\n", string(out))
		assert.Equal(t, 5, status)
	})

	each("ssh -n gives the command end of file at once", func(t *testing.T, d dockerBackendTarget) {
		out, _, status := e.run(t, e.user(d), nil, []string{"-n"}, "cat; echo after-eof")
		assert.Equal(t, "after-eof\n", string(out))
		assert.Zero(t, status)
	})

	each("piped stdin, then end of file, output keeps flowing", func(t *testing.T, d dockerBackendTarget) {
		out, _, status := e.run(t, e.user(d), []byte("abc"), nil, "cat; echo; echo done")
		assert.Equal(t, "abc\ndone\n", string(out))
		assert.Zero(t, status)
	})

	each("10 MB of random bytes both ways, byte-exact", func(t *testing.T, d dockerBackendTarget) {
		blob := make([]byte, 10<<20)
		rand.Read(blob)
		sum := fmt.Sprintf("%x", sha256.Sum256(blob))
		path := "/tmp/blob-" + randomHex(t, 4)
		mkdir := "mkdir -p /tmp && "
		out, errOut, status := e.run(t, e.user(d), blob, nil, mkdir+"cat > "+path+" && sha256sum "+path)
		require.Zero(t, status, "upload: %s", errOut)
		assert.Equal(t, sum, strings.Fields(string(out))[0], "sha256 of the upload in the container")
		out, errOut, status = e.run(t, e.user(d), nil, nil, "cat "+path+" && rm "+path)
		require.Zero(t, status, "download: %s", errOut)
		assert.Equal(t, sum, fmt.Sprintf("%x", sha256.Sum256(out)), "sha256 of the download")
	})

	each("ssh -T output is byte-identical to docker exec", func(t *testing.T, d dockerBackendTarget) {
		script := `printf 'a\000b\377\r\n'; ls /; echo "$HOME"`
		shell := map[bool]string{true: "/bin/bash", false: "/bin/sh"}[d.debian]
		out, _, _ := e.run(t, e.user(d), nil, []string{"-T"}, script)
		direct, err := exec.Command("docker", "exec", d.ID, shell, "-c", script).Output()
		require.NoError(t, err)
		assert.Equal(t, direct, out)
	})

	each("SendEnv: LANG passes, LD_PRELOAD does not", func(t *testing.T, d dockerBackendTarget) {
		cmd := e.sshCmd(t, e.user(d), []string{"-o", "SendEnv=LANG LD_PRELOAD"}, `echo "lang=$LANG preload=$LD_PRELOAD"`)
		cmd.Env = append(cleanEnv(t)[:2], "LANG=C.UTF-8", "LD_PRELOAD=/tmp/evil.so")
		out, err := cmd.Output()
		require.NoError(t, err)
		assert.Equal(t, "lang=C.UTF-8 preload=\n", string(out))
	})

	each("unknown target: one line on stderr, status 1", func(t *testing.T, d dockerBackendTarget) {
		_, errOut, status := e.run(t, "alice"+execbridge.RouteSep+"no-such-container-"+d.Label, nil, nil, "true")
		assert.Equal(t, 1, status)
		assert.Equal(t, fmt.Sprintf("dockssh: no running container %q that you may use\n", "no-such-container-"+d.Label), string(errOut))
	})

	each("signal request reaches the process", func(t *testing.T, d dockerBackendTarget) {
		c := e.dial(t, e.user(d))
		s, err := c.NewSession()
		require.NoError(t, err)
		var out lockedBuffer
		s.Stdout = &out
		require.NoError(t, s.Start(`trap 'echo got-term; exit 7' TERM; echo ready; while :; do sleep 1; done`))
		deadline := time.Now().Add(30 * time.Second)
		for !strings.Contains(out.String(), "ready") {
			require.True(t, time.Now().Before(deadline), "no ready")
			time.Sleep(20 * time.Millisecond)
		}
		require.NoError(t, s.Signal(ssh.SIGTERM))
		err = s.Wait()
		var ee *ssh.ExitError
		require.ErrorAs(t, err, &ee)
		assert.Equal(t, 7, ee.ExitStatus())
		assert.Contains(t, out.String(), "got-term")
	})

	each("a killed process reports exit-signal", func(t *testing.T, d dockerBackendTarget) {
		c := e.dial(t, e.user(d))
		s, err := c.NewSession()
		require.NoError(t, err)
		sleep := uniqueSleep(t)
		require.NoError(t, s.Start("exec sleep "+sleep))
		waitProcess(t, d, "sleep "+sleep)
		require.NoError(t, s.Signal(ssh.SIGKILL))
		var ee *ssh.ExitError
		require.ErrorAs(t, s.Wait(), &ee)
		assert.Equal(t, "KILL", ee.Signal())
	})

	each("client gone: process and children ended", func(t *testing.T, d dockerBackendTarget) {
		for _, how := range []string{"kill -9 of ssh", "TCP reset", "channel closed", "HUP and TERM ignored"} {
			t.Run(how, func(t *testing.T) {
				sleep := uniqueSleep(t)
				command := "sleep " + sleep + " & sleep " + sleep + "; wait"
				if how == "HUP and TERM ignored" {
					command = "trap '' HUP TERM; " + command
				}
				switch how {
				case "kill -9 of ssh", "HUP and TERM ignored":
					cmd := e.sshCmd(t, e.user(d), nil, command)
					require.NoError(t, cmd.Start())
					waitProcess(t, d, "sleep "+sleep)
					cmd.Process.Kill()
					cmd.Wait()
				case "TCP reset":
					var tcp *net.TCPConn
					cfg := &ssh.ClientConfig{User: e.user(d), Auth: []ssh.AuthMethod{ssh.PublicKeys(e.signer)}, HostKeyCallback: ssh.FixedHostKey(e.hostKey)}
					nc, err := net.Dial("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(e.port)))
					require.NoError(t, err)
					tcp = nc.(*net.TCPConn)
					cc, chans, reqs, err := ssh.NewClientConn(nc, "127.0.0.1", cfg)
					require.NoError(t, err)
					c := ssh.NewClient(cc, chans, reqs)
					s, err := c.NewSession()
					require.NoError(t, err)
					require.NoError(t, s.Start(command))
					waitProcess(t, d, "sleep "+sleep)
					tcp.SetLinger(0) // Close sends a RST
					tcp.Close()
				case "channel closed":
					c := e.dial(t, e.user(d))
					s, err := c.NewSession()
					require.NoError(t, err)
					require.NoError(t, s.Start(command))
					waitProcess(t, d, "sleep "+sleep)
					s.Close()
				}
				waitNoProcess(t, d, "sleep "+sleep)
			})
		}
	})

	t.Run("100 concurrent sessions over 10 connections", func(t *testing.T) {
		d := e.targets[1] // busybox: the smaller target
		var wg sync.WaitGroup
		errs := make(chan error, 100)
		for i := range 10 {
			c := e.dial(t, e.user(d))
			for j := range 10 {
				wg.Go(func() {
					s, err := c.NewSession()
					if err != nil {
						errs <- err
						return
					}
					defer s.Close()
					want := fmt.Sprintf("%d-%d", i, j)
					out, err := s.Output("echo " + want)
					if err != nil || string(out) != want+"\n" {
						errs <- fmt.Errorf("session %s: %q, %v", want, out, err)
					}
				})
			}
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Error(err)
		}
	})

	t.Run("audit record and no key material in the log", func(t *testing.T) {
		d := e.targets[0]
		e.run(t, e.user(d), nil, nil, "echo audit-me")
		logs := e.logs.String()
		assert.Contains(t, logs, `"command":"/bin/bash -c echo audit-me"`)
		assert.Contains(t, logs, `"msg":"execbridge: session"`)
		assert.NotContains(t, logs, "PRIVATE KEY")
	})
}

// TestExecbridgeOpenSSHKeepalive: a client that stops answering (SIGSTOP)
// is dropped after the keepalives, and its process ended.
func TestExecbridgeOpenSSHKeepalive(t *testing.T) {
	t.Parallel()
	targets := startTargets(t)
	e := startBridge(t, targets[1:], bridgeOpts{config: func(c *execbridge.Config) {
		c.KeepAliveInterval = 300 * time.Millisecond
		c.KeepAliveCountMax = 2
	}})
	d := e.targets[0]
	sleep := uniqueSleep(t)
	cmd := e.sshCmd(t, e.user(d), nil, "sleep "+sleep)
	require.NoError(t, cmd.Start())
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGCONT)
		cmd.Process.Kill()
		cmd.Wait()
	})
	waitProcess(t, d, "sleep "+sleep)
	require.NoError(t, cmd.Process.Signal(syscall.SIGSTOP))
	waitNoProcess(t, d, "sleep "+sleep)
	assert.Contains(t, e.logs.String(), "client stopped answering keepalives")
}

// TestExecbridgeGrant enforces authn's restrictions of a login against the
// real client: a forced command with the original in
// SSH_ORIGINAL_COMMAND, and no terminal under restrict.
func TestExecbridgeGrant(t *testing.T) {
	t.Parallel()
	targets := startTargets(t)
	e := startBridge(t, targets[1:], bridgeOpts{keyOptions: `restrict,command="echo forced: $SSH_ORIGINAL_COMMAND",environment="FROM_KEY=1"`})
	d := e.targets[0]
	out, errOut, status := e.run(t, e.user(d), nil, nil, "rm -rf /")
	assert.Zero(t, status, "stderr: %s", errOut)
	assert.Equal(t, "forced: rm -rf /\n", string(out))
	// restrict refuses a terminal. ssh -tt, like with sshd, treats that
	// as fatal (OpenSSH's client_status_confirm closes the channel).
	_, errOut, status = e.run(t, e.user(d), nil, []string{"-tt"}, "true")
	assert.Equal(t, 255, status)
	assert.Contains(t, string(errOut), "PTY allocation request failed")
	// environment= options pass only through the session policy: FROM_KEY
	// is not on it.
	e2 := startBridge(t, targets[1:], bridgeOpts{keyOptions: `environment="LANG=C.UTF-8",environment="LD_PRELOAD=/x.so"`})
	out, _, _ = e2.run(t, e2.user(d), nil, nil, `echo "$LANG|$LD_PRELOAD"`)
	assert.Equal(t, "C.UTF-8|\n", string(out))
}
