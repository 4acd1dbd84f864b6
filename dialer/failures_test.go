package dialer_test

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/ssh"

	"github.com/dockssh/dockssh/dialer"
	"github.com/dockssh/dockssh/hostkeys"
)

func TestHostKeyChangedIsTypedAndSendsNothing(t *testing.T) {
	srv := newFakeServer(t)
	_, other, _ := ed25519.GenerateKey(rand.Reader)
	otherSigner, _ := ssh.NewSignerFromKey(other)
	kh := filepath.Join(t.TempDir(), "known_hosts")
	require.NoError(t, os.WriteFile(kh, []byte(fmt.Sprintf("[127.0.0.1]:%d %s", srv.port, ssh.MarshalAuthorizedKey(otherSigner.PublicKey()))), 0o600))
	cfg := srv.Config(t)
	cfg.KnownHostsFiles = []string{kh}
	d := newDialer(t, srv, "", cfg)

	_, err := d.DialContext(t.Context(), "tcp", "")
	require.Error(t, err)
	var e *dialer.Error
	require.ErrorAs(t, err, &e)
	assert.Equal(t, dialer.OpHostKey, e.Op)
	var hk *hostkeys.HostKeyError
	require.ErrorAs(t, err, &hk)
	assert.ErrorIs(t, err, hostkeys.ErrHostKeyChanged)
	assert.Equal(t, ssh.FingerprintSHA256(srv.hostKey.PublicKey()), hk.Fingerprint)
	assert.True(t, strings.HasPrefix(err.Error(), "dialer: ssh://tester@127.0.0.1:"), "%v", err)
	assert.Zero(t, srv.count(func() int { return srv.authTries }), "nothing is sent to a server with the wrong key")
	execs, _, _ := srv.stats()
	assert.Empty(t, execs)
}

func TestUnknownHost(t *testing.T) {
	srv := newFakeServer(t)
	kh := filepath.Join(t.TempDir(), "known_hosts")
	cfg := srv.Config(t)
	cfg.KnownHostsFiles = []string{kh}

	d := newDialer(t, srv, "", cfg)
	_, err := d.DialContext(t.Context(), "tcp", "")
	require.ErrorIs(t, err, hostkeys.ErrUnknownHost)

	cfg.HostKeyPolicy = hostkeys.AcceptNew
	d = newDialer(t, srv, "", cfg)
	c, err := d.DialContext(t.Context(), "tcp", "")
	require.NoError(t, err)
	c.Close()
	data, err := os.ReadFile(kh)
	require.NoError(t, err)
	assert.Contains(t, string(data), strings.TrimSpace(string(ssh.MarshalAuthorizedKey(srv.hostKey.PublicKey()))))
}

func TestHostKeyCheckHook(t *testing.T) {
	srv := newFakeServer(t)
	cfg := srv.Config(t)
	var got string
	cfg.HostKeyCheck = func(hostport string, files []string) (ssh.HostKeyCallback, []string, error) {
		got = hostport
		return ssh.FixedHostKey(srv.hostKey.PublicKey()), []string{ssh.KeyAlgoED25519}, nil
	}
	cfg.KnownHostsFiles = []string{"/nonexistent"}
	d := newDialer(t, srv, "", cfg)
	c, err := d.DialContext(t.Context(), "tcp", "")
	require.NoError(t, err)
	c.Close()
	assert.Equal(t, srv.addr, got)
}

func TestAuthFailureSaysWhatWasTried(t *testing.T) {
	srv := newFakeServer(t)
	cfg := srv.Config(t)
	wrong, wrongPath := writeClientKey(t, t.TempDir(), nil)
	cfg.IdentityFiles = []string{wrongPath, filepath.Join(t.TempDir(), "missing_key")}
	d := newDialer(t, srv, "", cfg)
	_, err := d.DialContext(t.Context(), "tcp", "")
	var e *dialer.Error
	require.ErrorAs(t, err, &e)
	assert.Equal(t, dialer.OpAuth, e.Op)
	msg := err.Error()
	assert.Contains(t, msg, ssh.FingerprintSHA256(wrong.PublicKey()))
	assert.Contains(t, msg, "missing_key: not found")
	assert.Contains(t, msg, `user "tester"`)
	assert.Contains(t, msg, "authorized_keys")
}

func TestEncryptedIdentityFile(t *testing.T) {
	srv := newFakeServer(t)
	dir := t.TempDir()
	signer, path := writeClientKey(t, dir, []byte("correct horse"))
	srv.set(func() { srv.clientKey = signer })
	cfg := srv.Config(t)
	cfg.IdentityFiles = []string{path}

	d := newDialer(t, srv, "", cfg)
	_, err := d.DialContext(t.Context(), "tcp", "")
	require.Error(t, err)
	assert.Contains(t, err.Error(), "is encrypted and Config.Passphrase is nil")

	var asked atomic.Int32
	cfg.Passphrase = func(p string) ([]byte, error) {
		asked.Add(1)
		assert.Equal(t, path, p)
		return []byte("correct horse"), nil
	}
	cfg.MaxConnections = 2
	srv.set(func() { srv.maxSessions = 1 })
	d = newDialer(t, srv, "", cfg)
	c1, err := d.DialContext(t.Context(), "tcp", "")
	require.NoError(t, err)
	defer c1.Close()
	c2, err := d.DialContext(t.Context(), "tcp", "") // a second SSH connection
	require.NoError(t, err)
	defer c2.Close()
	assert.Equal(t, int32(1), asked.Load(), "the passphrase is asked once per file")

	// A wrong passphrase is not asked again on the next SSH connection.
	asked.Store(0)
	cfg.Passphrase = func(string) ([]byte, error) {
		asked.Add(1)
		return []byte("wrong"), nil
	}
	d = newDialer(t, srv, "", cfg)
	for range 2 {
		_, err := d.DialContext(t.Context(), "tcp", "")
		require.Error(t, err)
		assert.Contains(t, err.Error(), "wrong passphrase or damaged key")
		assert.NotContains(t, err.Error(), "correct horse")
	}
	assert.Equal(t, int32(1), asked.Load(), "a failed passphrase is asked once per file, not once per connection attempt")
}

func TestPasswordNeverShown(t *testing.T) {
	const canary = "Canary-pw-7f3a9c!"
	srv := newFakeServer(t)
	srv.set(func() { srv.password = canary })
	srv.set(func() { srv.keyAuth = false })
	var logs bytes.Buffer
	var mu sync.Mutex
	cfg := srv.Config(t)
	cfg.Logger = newTestLogger(&logs, &mu)
	cfg.MaxConnections = 2
	srv.set(func() { srv.maxSessions = 1 })
	url := fmt.Sprintf("ssh://tester:%s@127.0.0.1:%d", strings.ReplaceAll(canary, "!", "%21"), srv.port)

	var errs []string
	t.Run("PasswordOnce", func(t *testing.T) {
		d, err := dialer.New(url, cfg)
		require.NoError(t, err)
		defer d.Close()
		c1, err := d.DialContext(t.Context(), "tcp", "")
		require.NoError(t, err)
		defer c1.Close()
		// A second connection (MaxSessions 1) has no password any more.
		_, err = d.DialContext(t.Context(), "tcp", "")
		require.Error(t, err)
		assert.Contains(t, err.Error(), "wiped")
		errs = append(errs, err.Error())
	})
	t.Run("PasswordKeep", func(t *testing.T) {
		cfg := *cfg
		cfg.PasswordPolicy = dialer.PasswordKeep
		d, err := dialer.New(url, &cfg)
		require.NoError(t, err)
		defer d.Close()
		c1, err := d.DialContext(t.Context(), "tcp", "")
		require.NoError(t, err)
		defer c1.Close()
		c2, err := d.DialContext(t.Context(), "tcp", "")
		require.NoError(t, err)
		c2.Close()
	})
	t.Run("PasswordRefuse", func(t *testing.T) {
		cfg := *cfg
		cfg.PasswordPolicy = dialer.PasswordRefuse
		for _, u := range []string{url, fmt.Sprintf("ssh://tester:12/%s@127.0.0.1:%d", canary, srv.port)} {
			_, err := dialer.New(u, &cfg)
			require.Error(t, err, u)
			errs = append(errs, err.Error())
		}
	})
	t.Run("wrong password", func(t *testing.T) {
		srv.setPassword(canary + "-other")
		defer srv.setPassword(canary)
		d, err := dialer.New(url, cfg)
		require.NoError(t, err)
		defer d.Close()
		_, err = d.DialContext(t.Context(), "tcp", "")
		require.Error(t, err)
		assert.Contains(t, err.Error(), "the password was tried")
		errs = append(errs, err.Error(), fmt.Sprintf("%+v", err), fmt.Sprintf("%#v", err))
	})
	t.Run("bad URL", func(t *testing.T) {
		for _, u := range []string{
			"ssh://tester:" + canary + "@127.0.0.1:99999",
			"ssh://tester:" + canary + "@127.0.0.1/x?y=1",
			"ssh://tester:" + canary + "@[::1",
			"ssh://tester:" + canary + " @host",
			// A '/', '?' or '#' in the password cuts the authority
			// short: net/url refuses some of these and reads others as
			// a port and a path.
			"ssh://tester:Sup3r/" + canary + "@127.0.0.1",
			"ssh://tester:Sup3r?" + canary + "@127.0.0.1",
			"ssh://tester:Sup3r#" + canary + "@127.0.0.1",
			"ssh://tester:12/" + canary + "@127.0.0.1",
		} {
			_, err := dialer.New(u, cfg)
			require.Error(t, err, u)
			errs = append(errs, err.Error())
		}
	})
	mu.Lock()
	out := logs.String()
	mu.Unlock()
	assert.Contains(t, out, "URL contains a password", "the warning is logged")
	for _, s := range append(errs, out) {
		assert.NotContains(t, s, canary)
		assert.NotContains(t, s, strings.ReplaceAll(canary, "!", "%21"))
	}
}

func TestRemoteCommandFailures(t *testing.T) {
	srv := newFakeServer(t)
	t.Run("docker not on PATH", func(t *testing.T) {
		cfg := srv.Config(t)
		cfg.RemoteDocker = "nodocker"
		d := newDialer(t, srv, "", cfg)
		_, err := httpClient(d).Get("http://docker/_ping")
		require.Error(t, err)
		var e *dialer.Error
		require.ErrorAs(t, err, &e)
		assert.Equal(t, dialer.OpCommand, e.Op)
		assert.Equal(t, 127, e.ExitStatus)
		assert.Contains(t, e.Stderr, "nodocker: command not found")
		assert.Contains(t, err.Error(), "PATH")
		assert.Contains(t, err.Error(), "Config.RemoteDocker")
	})
	t.Run("stderr tail", func(t *testing.T) {
		cfg := srv.Config(t)
		cfg.RemoteDocker = "noisy-fail"
		d := newDialer(t, srv, "", cfg)
		c, err := d.DialContext(t.Context(), "tcp", "")
		require.NoError(t, err)
		defer c.Close()
		_, err = c.Read(make([]byte, 10))
		var e *dialer.Error
		require.ErrorAs(t, err, &e)
		assert.Equal(t, 1, e.ExitStatus)
		assert.LessOrEqual(t, len(e.Stderr), 4096)
		assert.Contains(t, e.Stderr, "LAST-LINE")
		assert.NotContains(t, e.Stderr, "FIRST-LINE")
		assert.Contains(t, err.Error(), "LAST-LINE")
	})
	t.Run("daemon not running", func(t *testing.T) {
		d := newDialer(t, srv, "/run/user/1000/docker.sock", nil)
		_, err := httpClient(d).Get("http://docker/_ping")
		require.Error(t, err)
		assert.Contains(t, err.Error(), "no Docker daemon answers at /run/user/1000/docker.sock")
	})
}

func TestNewErrors(t *testing.T) {
	for _, tc := range []struct {
		url, want string
	}{
		{"http://host", `scheme must be "ssh"`},
		{"ssh://", "host is empty"},
		{"ssh://host?x=1", "query"},
		{"ssh://host#frag", "fragment"},
		{"ssh://host:0", "port"},
		{"ssh://-oProxyCommand=x", "host"},
		{"ssh://host/sock\\et", "backslash"},
	} {
		_, err := dialer.New(tc.url, &dialer.Config{IgnoreSSHConfig: true, HomeDir: t.TempDir()})
		require.Error(t, err, tc.url)
		var e *dialer.Error
		require.True(t, errors.As(err, &e))
		assert.Equal(t, dialer.OpParseURL, e.Op)
		assert.Contains(t, err.Error(), tc.want, tc.url)
		assert.True(t, strings.HasPrefix(err.Error(), "dialer: "), err.Error())
	}
	_, err := dialer.New("ssh://host", &dialer.Config{IgnoreSSHConfig: true, HomeDir: t.TempDir(), RemoteDocker: "docker\nrm -rf /"})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "control character")
}

// The Docker client replaces a request error that holds a net.Error or says
// "connection refused" with its own vague message; a refused TCP connect
// must still be recognisable with errors.Is.
func TestConnectRefusedError(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().(*net.TCPAddr)
	ln.Close()
	d, err := dialer.New(fmt.Sprintf("ssh://u@127.0.0.1:%d", addr.Port), &dialer.Config{IgnoreSSHConfig: true, HomeDir: t.TempDir(), AgentSocket: "none"})
	require.NoError(t, err)
	defer d.Close()
	_, err = d.DialContext(t.Context(), "tcp", "")
	require.Error(t, err)
	assert.ErrorIs(t, err, syscall.ECONNREFUSED)
	var ne net.Error
	assert.False(t, errors.As(err, &ne), "a dial error is not a net.Error: %T in %v", ne, err)
	assert.NotContains(t, err.Error(), "connection refused")
	var e *dialer.Error
	require.ErrorAs(t, err, &e)
	assert.Equal(t, dialer.OpConnect, e.Op)
	assert.Contains(t, e.Hint, "is sshd running")
}
