package integration

import (
	"crypto/rand"
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
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/ssh"

	"github.com/dockssh/dockssh/authn"
	"github.com/dockssh/dockssh/hostkeys"
	"github.com/dockssh/dockssh/integration/internal/harness"
	"github.com/dockssh/dockssh/redact"
)

// TestServerPackagesWithOpenSSH serves the real OpenSSH client from a small
// SSH server built here out of the server-side packages that exist: authn
// decides who logs in (an authorized_keys line and a password user), hostkeys
// gives the server its host key (LoadOrCreateHostKey; the client checks it
// through a known_hosts file), and every line the server logs passes through
// redact's slog handler. The session handler is a stand-in, so that these
// packages are tested without execbridge (which has its own tests): it
// answers exec requests by echoing the command, with an exit status.
func TestServerPackagesWithOpenSSH(t *testing.T) {
	t.Parallel()
	if _, err := exec.LookPath("ssh"); err != nil {
		if harness.Required() {
			t.Fatalf("the OpenSSH client is required here (CI=true or DOCKSSH_REQUIRE_DOCKER=1): %v; run scripts/ensure-docker.sh", err)
		}
		t.Skipf("SKIPPING: no OpenSSH client (%v); run scripts/ensure-docker.sh", err)
	}
	dir := t.TempDir()
	password := "canary-" + rand.Text()

	// The server's log: everything goes through redact, which knows the
	// password as a literal secret.
	logs := &lockedBuffer{}
	red, err := redact.New(&redact.Config{Secrets: []string{password}})
	require.NoError(t, err)
	logger := slog.New(red.Handler(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})))

	alice := filepath.Join(dir, "alice")
	sshKeygen(t, "-q", "-t", "ed25519", "-N", "", "-C", "alice@test", "-f", alice)
	mallory := filepath.Join(dir, "mallory")
	sshKeygen(t, "-q", "-t", "ed25519", "-N", "", "-C", "mallory@test", "-f", mallory)
	alicePub, err := os.ReadFile(alice + ".pub")
	require.NoError(t, err)
	auth, err := authn.New(&authn.Config{
		AuthorizedKeys: &authn.AuthorizedKeysConfig{Content: string(alicePub)},
		Passwords:      &authn.PasswordConfig{Users: []authn.PasswordUser{{Name: "bob", Password: password}}},
		Logger:         logger,
	})
	require.NoError(t, err)

	hostKeyPath := filepath.Join(dir, "server", "ssh_host_ed25519_key")
	hostKey, err := hostkeys.LoadOrCreateHostKey(hostKeyPath, &hostkeys.KeyConfig{Logger: logger})
	require.NoError(t, err)
	srv := startStandInServer(t, auth, hostKey, logger)

	// The client trusts the public key the real ssh-keygen derives from the
	// file hostkeys wrote, not the key this process holds.
	pub, err := exec.CommandContext(t.Context(), "ssh-keygen", "-y", "-f", hostKeyPath).Output()
	require.NoError(t, err, "ssh-keygen -y reads the host key file hostkeys wrote")
	knownHosts := func(tb testing.TB, port int, key string) string {
		return writeFile(tb, "known_hosts", fmt.Sprintf("[127.0.0.1]:%d %s\n", port, strings.TrimSpace(key)))
	}
	trusted := knownHosts(t, srv.port(), string(pub))

	t.Run("key login runs exec", func(t *testing.T) {
		res := runOpenSSH(t, srv.port(), trusted, keyLogin(alice), "alice", "echo", password)
		require.NoError(t, res.err, "stderr: %s", res.stderr)
		assert.Equal(t, "user=alice methods=publickey command=\"echo "+password+"\"\n", res.stdout)
	})
	t.Run("exit status reaches the client", func(t *testing.T) {
		res := runOpenSSH(t, srv.port(), trusted, keyLogin(alice), "alice", "exit", "7")
		var ee *exec.ExitError
		require.ErrorAs(t, res.err, &ee, "stderr: %s", res.stderr)
		assert.Equal(t, 7, ee.ExitCode())
	})
	t.Run("unknown key refused", func(t *testing.T) {
		res := runOpenSSH(t, srv.port(), trusted, keyLogin(mallory), "alice", "true")
		require.Error(t, res.err)
		assert.Contains(t, res.stderr, "Permission denied")
		assert.Empty(t, res.stdout)
	})
	t.Run("password login through SSH_ASKPASS", func(t *testing.T) {
		res := runOpenSSH(t, srv.port(), trusted, passwordLogin(t, password), "bob", "id")
		require.NoError(t, res.err, "stderr: %s", res.stderr)
		assert.Equal(t, "user=bob methods=password command=\"id\"\n", res.stdout)
	})
	t.Run("wrong password refused", func(t *testing.T) {
		res := runOpenSSH(t, srv.port(), trusted, passwordLogin(t, "wrong-"+password), "bob", "id")
		require.Error(t, res.err)
		assert.Contains(t, res.stderr, "Permission denied")
	})
	t.Run("password typed as the user name", func(t *testing.T) {
		// A common slip: authn logs the user name of every attempt, and here
		// it is the password.
		res := runOpenSSH(t, srv.port(), trusted, keyLogin(mallory), password, "true")
		require.Error(t, res.err)
		assert.Contains(t, res.stderr, "Permission denied")
	})
	t.Run("other host key refused", func(t *testing.T) {
		other := knownHosts(t, srv.port(), string(ssh.MarshalAuthorizedKey(otherKeyOfType(t, ssh.KeyAlgoED25519))))
		res := runOpenSSH(t, srv.port(), other, keyLogin(alice), "alice", "true")
		require.Error(t, res.err)
		assert.Contains(t, res.stderr, "REMOTE HOST IDENTIFICATION HAS CHANGED")
		assert.Empty(t, res.stdout)
	})
	t.Run("restarted server keeps its host key", func(t *testing.T) {
		again, err := hostkeys.LoadOrCreateHostKey(hostKeyPath, &hostkeys.KeyConfig{Logger: logger})
		require.NoError(t, err)
		srv2 := startStandInServer(t, auth, again, logger)
		res := runOpenSSH(t, srv2.port(), knownHosts(t, srv2.port(), string(pub)), keyLogin(alice), "alice", "true")
		require.NoError(t, res.err, "stderr: %s", res.stderr)
		srv2.close()
	})
	srv.close()

	out := logs.String()
	t.Logf("server log:\n%s", out)
	for _, c := range []struct{ what, text string }{
		{"the password", password},
		{"part of the password", strings.TrimPrefix(password, "canary-")},
	} {
		assert.False(t, strings.Contains(out, c.text), "%s reached the server's log (printed above)", c.what)
	}
	// The log did see the password, masked: in an exec command and as a
	// user name. authn's and hostkeys' lines went through the same handler.
	for _, want := range []string{
		`msg=exec user=alice command="echo [REDACTED]"`,
		`msg="authn: refused" user=[REDACTED]`,
		`msg="authn: success" user=bob`,
		"method=password",
		"method=publickey",
		`msg="hostkeys: created new host key"`,
	} {
		assert.True(t, strings.Contains(out, want), "the server's log (printed above) has no %q", want)
	}
}

// keyLogin returns the ssh options that log in with the key at path only.
func keyLogin(path string) []string {
	return []string{
		"-i", path,
		"-o", "IdentitiesOnly=yes",
		"-o", "BatchMode=yes",
		"-o", "PreferredAuthentications=publickey",
	}
}

// passwordLogin returns the ssh options (and environment) that log in with
// password only, the password coming from an SSH_ASKPASS program: ssh never
// reads a password from a pipe, and SSH_ASKPASS_REQUIRE=force (OpenSSH 8.4)
// makes it use the program without a terminal or $DISPLAY.
func passwordLogin(tb testing.TB, password string) []string {
	tb.Helper()
	pw := writeFile(tb, "password", password+"\n")
	askpass := filepath.Join(tb.TempDir(), "askpass")
	require.NoError(tb, os.WriteFile(askpass, []byte("#!/bin/sh\nexec cat "+pw+"\n"), 0o700))
	return []string{
		"env:SSH_ASKPASS=" + askpass,
		"env:SSH_ASKPASS_REQUIRE=force",
		"-o", "PreferredAuthentications=password",
		"-o", "PubkeyAuthentication=no",
		"-o", "NumberOfPasswordPrompts=1",
	}
}

type sshResult struct {
	stdout, stderr string
	err            error
}

// runOpenSSH runs the real ssh client against 127.0.0.1:port with the
// given login options, strict host key checking against knownHosts only,
// and no config file, agent or home of the user's. Options of the form
// "env:NAME=value" go to its environment.
func runOpenSSH(tb testing.TB, port int, knownHosts string, login []string, user string, remote ...string) sshResult {
	tb.Helper()
	env := cleanEnv(tb)
	args := []string{
		"-F", "/dev/null",
		"-o", "IdentityAgent=none",
		"-o", "StrictHostKeyChecking=yes",
		"-o", "UserKnownHostsFile=" + knownHosts,
		"-o", "GlobalKnownHostsFile=/dev/null",
		"-o", "ConnectTimeout=20",
		"-p", strconv.Itoa(port),
		"-l", user,
	}
	for _, o := range login {
		if kv, ok := strings.CutPrefix(o, "env:"); ok {
			env = append(env, kv)
		} else {
			args = append(args, o)
		}
	}
	args = append(append(args, "--", "127.0.0.1"), remote...)
	cmd := exec.CommandContext(tb.Context(), "ssh", args...)
	cmd.Env = env
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	return sshResult{stdout.String(), stderr.String(), err}
}

// standInServer is the smallest SSH server the existing server-side
// packages make: authn's callbacks and penalties, a host key from hostkeys,
// a logger that the caller wraps in redact. Its session handler only echoes
// exec commands; execbridge will replace it.
type standInServer struct {
	ln  net.Listener
	cfg *ssh.ServerConfig
	a   *authn.Authenticator
	log *slog.Logger
	wg  sync.WaitGroup // counts serve and every connection's goroutines

	mu    sync.Mutex // guards conns
	conns map[net.Conn]struct{}
}

// startStandInServer listens on 127.0.0.1 and serves until close (also
// called in tb.Cleanup).
func startStandInServer(tb testing.TB, a *authn.Authenticator, hostKey ssh.Signer, log *slog.Logger) *standInServer {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(tb, err)
	s := &standInServer{ln: ln, cfg: &ssh.ServerConfig{}, a: a, log: log, conns: map[net.Conn]struct{}{}}
	a.Apply(s.cfg)
	s.cfg.AddHostKey(hostKey)
	s.wg.Add(1)
	go s.serve()
	tb.Cleanup(s.close)
	return s
}

func (s *standInServer) port() int { return s.ln.Addr().(*net.TCPAddr).Port }

// close stops accepting, closes the open connections and waits for every
// goroutine of the server. It may be called more than once.
func (s *standInServer) close() {
	s.ln.Close()
	s.mu.Lock()
	for c := range s.conns {
		c.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
}

func (s *standInServer) serve() {
	defer s.wg.Done()
	for {
		nc, err := s.ln.Accept()
		if err != nil {
			if !errors.Is(err, net.ErrClosed) {
				s.log.Error("accept", "err", err)
			}
			return
		}
		if err := s.a.Allow(nc.RemoteAddr()); err != nil {
			nc.Close()
			continue
		}
		s.mu.Lock()
		s.conns[nc] = struct{}{}
		s.mu.Unlock()
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			s.handleConn(nc)
			s.mu.Lock()
			delete(s.conns, nc)
			s.mu.Unlock()
		}()
	}
}

func (s *standInServer) handleConn(nc net.Conn) {
	defer nc.Close()
	conn, chans, reqs, err := ssh.NewServerConn(nc, s.cfg)
	if err != nil {
		s.log.Info("handshake failed", "remote", nc.RemoteAddr().String(), "err", err)
		return
	}
	defer conn.Close()
	grant, err := authn.GrantFrom(conn.Permissions)
	if err != nil {
		s.log.Error("no grant", "err", err)
		return
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		ssh.DiscardRequests(reqs)
	}()
	for nch := range chans {
		if nch.ChannelType() != "session" {
			nch.Reject(ssh.UnknownChannelType, "only session channels")
			continue
		}
		ch, creqs, err := nch.Accept()
		if err != nil {
			return
		}
		s.handleSession(ch, creqs, grant)
	}
}

// handleSession answers the first exec request and refuses everything else
// (pty-req, env, shell).
func (s *standInServer) handleSession(ch ssh.Channel, reqs <-chan *ssh.Request, grant *authn.Grant) {
	defer ch.Close()
	for req := range reqs {
		if req.Type != "exec" {
			req.Reply(false, nil)
			continue
		}
		var payload struct{ Command string }
		if err := ssh.Unmarshal(req.Payload, &payload); err != nil {
			req.Reply(false, nil)
			continue
		}
		req.Reply(true, nil)
		s.log.Info("exec", "user", grant.User, "command", payload.Command)
		var status uint32
		if code, ok := strings.CutPrefix(payload.Command, "exit "); ok {
			n, _ := strconv.ParseUint(code, 10, 8)
			status = uint32(n)
		} else {
			methods := make([]string, len(grant.Methods))
			for i, m := range grant.Methods {
				methods[i] = string(m)
			}
			fmt.Fprintf(ch, "user=%s methods=%s command=%q\n", grant.User, strings.Join(methods, ","), payload.Command)
		}
		ch.SendRequest("exit-status", false, ssh.Marshal(struct{ Status uint32 }{status}))
		return
	}
}
