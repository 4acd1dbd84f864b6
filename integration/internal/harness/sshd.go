package harness

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"
	"github.com/testcontainers/testcontainers-go"
	tcexec "github.com/testcontainers/testcontainers-go/exec"
	"github.com/testcontainers/testcontainers-go/wait"
	"golang.org/x/crypto/ssh"
)

// SSHDOptions configures [StartSSHD]. The zero value is OpenSSH's defaults.
type SSHDOptions struct {
	// MaxSessions sets sshd's MaxSessions; 0 keeps OpenSSH's default (10).
	MaxSessions int
	// AllowStreamLocalForwarding sets sshd's AllowStreamLocalForwarding
	// ("yes", "no", "all", "local", "remote"); "" keeps OpenSSH's default
	// (yes).
	AllowStreamLocalForwarding string
	// AuthorizedKeys are authorized for the user besides the generated
	// client key, as authorized_keys lines (options allowed).
	AuthorizedKeys []string
	// RegenerateHostKeys makes sshd create new host keys on every start, so
	// a Restart changes them.
	RegenerateHostKeys bool
	// ExtraConfig is appended to sshd_config verbatim.
	ExtraConfig string
	// NoDockerSocket leaves the host's Docker socket out of the container.
	NoDockerSocket bool
}

// SSHD is a running OpenSSH server in a container, published on 127.0.0.1.
type SSHD struct {
	Host string // always "127.0.0.1"
	Port int    // the published port; stays the same across Stop/Start
	User string // the user the client key logs in as ("root")

	// ClientKey is a freshly generated ed25519 key, authorized for User.
	ClientKey ssh.Signer
	// ClientKeyPath is ClientKey in OpenSSH format, mode 0600, for the
	// real ssh client's -i.
	ClientKeyPath string

	// Container is the running container.
	Container *testcontainers.DockerContainer

	hostKeys []ssh.PublicKey
}

// StartSSHD starts an OpenSSH server container with the host's Docker socket
// mounted in and returns it once it answers with an SSH banner. The container
// is removed in tb.Cleanup.
func StartSSHD(tb testing.TB, opts *SSHDOptions) *SSHD {
	tb.Helper()
	im := Require(tb)
	if opts == nil {
		opts = &SSHDOptions{}
	}
	dir := tb.TempDir()
	signer, keyPath := newClientKey(tb, dir)

	authorized := append([]string{strings.TrimSpace(string(ssh.MarshalAuthorizedKey(signer.PublicKey())))}, opts.AuthorizedKeys...)
	env := map[string]string{"AUTHORIZED_KEYS": strings.Join(authorized, "\n")}
	if opts.MaxSessions > 0 {
		env["SSHD_MAX_SESSIONS"] = strconv.Itoa(opts.MaxSessions)
	}
	if opts.AllowStreamLocalForwarding != "" {
		env["SSHD_ALLOW_STREAMLOCAL_FORWARDING"] = opts.AllowStreamLocalForwarding
	}
	if opts.RegenerateHostKeys {
		env["SSHD_REGENERATE_HOST_KEYS"] = "1"
	}
	if opts.ExtraConfig != "" {
		env["SSHD_EXTRA_CONFIG"] = opts.ExtraConfig
	}

	s := &SSHD{Host: "127.0.0.1", User: "root", ClientKey: signer, ClientKeyPath: keyPath}
	var lastErr error
	// A port picked from the kernel may be taken before Docker binds it;
	// try a few times.
	for range 3 {
		s.Port = freePort(tb)
		ctr, err := runContainer(tb, im.SSHD, "sshd", env, s.Port, !opts.NoDockerSocket)
		if err != nil {
			lastErr = err
			if strings.Contains(err.Error(), "already allocated") || strings.Contains(err.Error(), "address already in use") {
				continue
			}
			break
		}
		s.Container = ctr
		lastErr = nil
		break
	}
	if lastErr != nil {
		tb.Fatalf("harness: start sshd: %v", lastErr)
	}
	s.waitReady(tb)
	return s
}

// runContainer starts image with a fixed 127.0.0.1:hostPort -> 22/tcp
// binding, so the address survives Stop and Start.
func runContainer(tb testing.TB, image, role string, env map[string]string, hostPort int, dockerSocket bool) (*testcontainers.DockerContainer, error) {
	tb.Helper()
	port := network.MustParsePort("22/tcp")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	ctr, err := testcontainers.Run(ctx, image,
		testcontainers.WithEnv(env),
		testcontainers.WithExposedPorts("22/tcp"),
		testcontainers.WithLabels(map[string]string{"dockssh.test": role}),
		testcontainers.WithHostConfigModifier(func(hc *container.HostConfig) {
			hc.PortBindings = network.PortMap{port: {{HostIP: netip.MustParseAddr("127.0.0.1"), HostPort: strconv.Itoa(hostPort)}}}
			if dockerSocket {
				hc.Binds = append(hc.Binds, "/var/run/docker.sock:/var/run/docker.sock")
			}
		}),
		// A first sign of life; StartSSHD then waits for an SSH banner on
		// the published port, which also works after Stop and Start.
		testcontainers.WithWaitStrategy(wait.ForLog("Server listening on").WithStartupTimeout(time.Minute)),
	)
	// Registered before the error check: a container that was created but
	// failed to start is removed too.
	testcontainers.CleanupContainer(tb, ctr)
	if ctr != nil {
		tb.Cleanup(func() { dumpLogsOnFailure(tb, ctr) })
	}
	return ctr, err
}

// Addr returns "127.0.0.1:PORT".
func (s *SSHD) Addr() string { return net.JoinHostPort(s.Host, strconv.Itoa(s.Port)) }

// HostKeys returns the server's current host public keys (ed25519, ecdsa,
// rsa), as read from the container after its last start.
func (s *SSHD) HostKeys() []ssh.PublicKey { return s.hostKeys }

// HostKey returns the current host key of the given type (e.g.
// ssh.KeyAlgoED25519), or fails the test.
func (s *SSHD) HostKey(tb testing.TB, keyType string) ssh.PublicKey {
	tb.Helper()
	for _, k := range s.hostKeys {
		if k.Type() == keyType {
			return k
		}
	}
	tb.Fatalf("harness: sshd has no %s host key", keyType)
	return nil
}

// KnownHosts returns known_hosts lines for the server's current host keys,
// in OpenSSH's "[127.0.0.1]:PORT TYPE BASE64" form.
func (s *SSHD) KnownHosts() string {
	var b strings.Builder
	for _, k := range s.hostKeys {
		fmt.Fprintf(&b, "[%s]:%d %s", s.Host, s.Port, ssh.MarshalAuthorizedKey(k))
	}
	return b.String()
}

// WriteKnownHosts writes [SSHD.KnownHosts] to a new file in a temporary
// directory and returns its path.
func (s *SSHD) WriteKnownHosts(tb testing.TB) string {
	tb.Helper()
	path := filepath.Join(tb.TempDir(), "known_hosts")
	if err := os.WriteFile(path, []byte(s.KnownHosts()), 0o600); err != nil {
		tb.Fatalf("harness: %v", err)
	}
	return path
}

// SSHArgs returns arguments for the real OpenSSH client that log in as User
// with ClientKeyPath and check the host key strictly against knownHosts,
// ignoring every user and system configuration and any agent. Append the
// remote command.
func (s *SSHD) SSHArgs(knownHosts string) []string {
	return []string{
		"-F", "/dev/null",
		"-i", s.ClientKeyPath,
		"-o", "IdentitiesOnly=yes",
		"-o", "IdentityAgent=none",
		"-o", "BatchMode=yes",
		"-o", "StrictHostKeyChecking=yes",
		"-o", "UserKnownHostsFile=" + knownHosts,
		"-o", "GlobalKnownHostsFile=/dev/null",
		"-o", "ConnectTimeout=20",
		"-p", strconv.Itoa(s.Port),
		"-l", s.User,
		"--", s.Host,
	}
}

// Exec runs cmd in the container and returns its combined output; a non-zero
// exit fails the test.
func (s *SSHD) Exec(tb testing.TB, cmd ...string) string {
	tb.Helper()
	return execIn(tb, s.Container, cmd...)
}

// Stop stops the container (sshd goes away; in-flight connections break).
func (s *SSHD) Stop(tb testing.TB) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	timeout := 5 * time.Second
	if err := s.Container.Stop(ctx, &timeout); err != nil {
		tb.Fatalf("harness: stop sshd: %v", err)
	}
}

// Start starts a stopped container again on the same port and waits until
// sshd answers. With RegenerateHostKeys the host keys are new.
func (s *SSHD) Start(tb testing.TB) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := s.Container.Start(ctx); err != nil {
		tb.Fatalf("harness: start sshd: %v", err)
	}
	s.waitReady(tb)
}

// Restart is Stop then Start.
func (s *SSHD) Restart(tb testing.TB) {
	tb.Helper()
	s.Stop(tb)
	s.Start(tb)
}

// waitReady waits until sshd sends its banner on the published port (the
// Docker proxy accepts TCP before sshd listens, so a connect is not enough)
// and then reads the host keys.
func (s *SSHD) waitReady(tb testing.TB) {
	tb.Helper()
	deadline := time.Now().Add(60 * time.Second)
	var lastErr error
	for time.Now().Before(deadline) {
		if lastErr = readBanner(s.Addr()); lastErr == nil {
			s.hostKeys = s.readHostKeys(tb)
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	tb.Fatalf("harness: sshd on %s not ready after 60s: %v", s.Addr(), lastErr)
}

func readBanner(addr string) error {
	c, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetReadDeadline(time.Now().Add(2 * time.Second))
	buf := make([]byte, 8)
	if _, err := io.ReadFull(c, buf); err != nil {
		return fmt.Errorf("no banner: %w", err)
	}
	if !bytes.Equal(buf, []byte("SSH-2.0-")) {
		return fmt.Errorf("unexpected banner %q", buf)
	}
	return nil
}

func (s *SSHD) readHostKeys(tb testing.TB) []ssh.PublicKey {
	tb.Helper()
	out := s.Exec(tb, "sh", "-c", "cat /etc/ssh/ssh_host_ed25519_key.pub /etc/ssh/ssh_host_ecdsa_key.pub /etc/ssh/ssh_host_rsa_key.pub")
	var keys []ssh.PublicKey
	rest := []byte(out)
	for len(bytes.TrimSpace(rest)) > 0 {
		k, _, _, r, err := ssh.ParseAuthorizedKey(rest)
		if err != nil {
			tb.Fatalf("harness: parse host keys %q: %v", out, err)
		}
		keys = append(keys, k)
		rest = r
	}
	if len(keys) != 3 {
		tb.Fatalf("harness: want 3 host keys, got %d", len(keys))
	}
	return keys
}

func execIn(tb testing.TB, ctr *testcontainers.DockerContainer, cmd ...string) string {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	code, r, err := ctr.Exec(ctx, cmd, tcexec.Multiplexed())
	if err != nil {
		tb.Fatalf("harness: exec %q: %v", cmd, err)
	}
	out, err := io.ReadAll(r)
	if err != nil {
		tb.Fatalf("harness: exec %q: read: %v", cmd, err)
	}
	if code != 0 {
		tb.Fatalf("harness: exec %q: exit %d: %s", cmd, code, out)
	}
	return string(out)
}

// newClientKey makes an ed25519 key and writes it in OpenSSH format with mode
// 0600, as ssh -i wants it.
func newClientKey(tb testing.TB, dir string) (ssh.Signer, string) {
	tb.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		tb.Fatalf("harness: %v", err)
	}
	signer, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		tb.Fatalf("harness: %v", err)
	}
	block, err := ssh.MarshalPrivateKey(priv, "dockssh test client")
	if err != nil {
		tb.Fatalf("harness: %v", err)
	}
	path := filepath.Join(dir, "id_ed25519")
	if err := os.WriteFile(path, pem.EncodeToMemory(block), 0o600); err != nil {
		tb.Fatalf("harness: %v", err)
	}
	return signer, path
}

// freePort asks the kernel for a free port on 127.0.0.1.
func freePort(tb testing.TB) int {
	tb.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatalf("harness: %v", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// dumpLogsOnFailure prints the container's last log lines when the test
// failed, which is usually all one needs to see why sshd refused something.
func dumpLogsOnFailure(tb testing.TB, ctr *testcontainers.DockerContainer) {
	if !tb.Failed() {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	rc, err := ctr.Logs(ctx)
	if err != nil {
		return
	}
	defer rc.Close()
	b, _ := io.ReadAll(io.LimitReader(rc, 1<<20))
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) > 40 {
		lines = lines[len(lines)-40:]
	}
	tb.Logf("container %s logs (last %d lines):\n%s", ctr.GetContainerID()[:12], len(lines), strings.Join(lines, "\n"))
}
