package dialer_test

import (
	"crypto/ed25519"
	"crypto/rand"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/agent"

	"github.com/dockssh/dockssh/dialer"
)

// startAgent serves an in-memory SSH agent holding keys on a unix socket
// and counts the signatures it makes.
func startAgent(tb testing.TB, keys ...ed25519.PrivateKey) (string, *atomic.Int32) {
	tb.Helper()
	kr := agent.NewKeyring()
	for _, k := range keys {
		require.NoError(tb, kr.Add(agent.AddedKey{PrivateKey: k}))
	}
	signs := &atomic.Int32{}
	sock := serveUnix(tb, func(c net.Conn) {
		agent.ServeAgent(countingAgent{kr.(agent.ExtendedAgent), signs}, c)
	}, nil)
	return sock, signs
}

// serveUnix listens on a fresh unix socket and runs serve for each
// connection (closing it afterwards). Cleanup closes the listener, calls
// stop (when not nil) to end serve calls that would not end by themselves,
// and waits for them.
func serveUnix(tb testing.TB, serve func(net.Conn), stop func()) string {
	tb.Helper()
	sock := filepath.Join(shortTempDir(tb), "agent.sock")
	ln, err := net.Listen("unix", sock)
	require.NoError(tb, err)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				serve(c)
			}()
		}
	}()
	tb.Cleanup(func() {
		ln.Close()
		if stop != nil {
			stop()
		}
		wg.Wait()
	})
	return sock
}

type countingAgent struct {
	agent.ExtendedAgent
	signs *atomic.Int32
}

func (a countingAgent) Sign(key ssh.PublicKey, data []byte) (*ssh.Signature, error) {
	a.signs.Add(1)
	return a.ExtendedAgent.Sign(key, data)
}

func (a countingAgent) SignWithFlags(key ssh.PublicKey, data []byte, flags agent.SignatureFlags) (*ssh.Signature, error) {
	a.signs.Add(1)
	return a.ExtendedAgent.SignWithFlags(key, data, flags)
}

func TestAgentComesFirst(t *testing.T) {
	srv := newFakeServer(t)
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	signer, _ := ssh.NewSignerFromKey(priv)
	srv.set(func() { srv.clientKey = signer })
	sock, signs := startAgent(t, priv)

	cfg := srv.Config(t)
	cfg.AgentSocket = sock
	cfg.IdentityFiles = nil // the agent alone
	d := newDialer(t, srv, "", cfg)
	c, err := d.DialContext(t.Context(), "tcp", "")
	require.NoError(t, err)
	c.Close()
	assert.Equal(t, int32(1), signs.Load())
}

func TestIdentitiesOnlyFiltersAgentKeys(t *testing.T) {
	srv := newFakeServer(t)
	// The agent holds an unrelated key and the key of the identity file;
	// with IdentitiesOnly only the latter is offered.
	_, unrelated, _ := ed25519.GenerateKey(rand.Reader)
	keyDir := t.TempDir()
	_, keyPath := writeClientKey(t, keyDir, []byte("agent has it"))
	data, err := os.ReadFile(keyPath)
	require.NoError(t, err)
	raw, err := ssh.ParseRawPrivateKeyWithPassphrase(data, []byte("agent has it"))
	require.NoError(t, err)
	priv := *raw.(*ed25519.PrivateKey)
	signer, _ := ssh.NewSignerFromKey(priv)
	srv.set(func() { srv.clientKey = signer })
	sock, _ := startAgent(t, unrelated, priv)

	home := t.TempDir()
	require.NoError(t, os.MkdirAll(filepath.Join(home, ".ssh"), 0o700))
	require.NoError(t, os.WriteFile(filepath.Join(home, ".ssh", "config"), []byte(fmt.Sprintf(
		"Host box\n  HostName 127.0.0.1\n  Port %d\n  User tester\n  IdentityFile %s\n  IdentitiesOnly yes\n  IdentityAgent %s\n",
		srv.port, keyPath, sock)), 0o600))
	cfg := &dialer.Config{HomeDir: home, KnownHostsFiles: []string{srv.knownHosts}}
	d, err := dialer.New("ssh://box", cfg)
	require.NoError(t, err)
	defer d.Close()
	c, err := d.DialContext(t.Context(), "tcp", "")
	require.NoError(t, err, "the encrypted file's key is used through the agent, no passphrase needed")
	c.Close()
	assert.Equal(t, 1, srv.count(func() int { return srv.authTries }), "only the identity's key was offered")
}

func TestProxyJump(t *testing.T) {
	jump := newFakeServer(t)
	jump.set(func() { jump.allowTCP = true })
	target := newFakeServer(t)
	// The same client key works on both.
	target.set(func() { target.clientKey = jump.clientKey })

	home := t.TempDir()
	require.NoError(t, os.MkdirAll(filepath.Join(home, ".ssh"), 0o700))
	kh := filepath.Join(home, ".ssh", "known_hosts")
	khData := ""
	for _, s := range []*fakeServer{jump, target} {
		data, err := os.ReadFile(s.knownHosts)
		require.NoError(t, err)
		khData += string(data)
	}
	require.NoError(t, os.WriteFile(kh, []byte(khData), 0o600))
	require.NoError(t, os.WriteFile(filepath.Join(home, ".ssh", "config"), []byte(fmt.Sprintf(`
Host target
  HostName 127.0.0.1
  Port %d
  ProxyJump hopper@jumphost
Host jumphost
  HostName 127.0.0.1
  Port %d
Host *
  User tester
  IdentityFile %s
`, target.port, jump.port, jump.clientKeyPath)), 0o600))

	var dialed []string
	var mu sync.Mutex
	var nd net.Dialer
	cfg := &dialer.Config{HomeDir: home, AgentSocket: "none", DialTCP: func(ctx contextT, network, addr string) (net.Conn, error) {
		mu.Lock()
		dialed = append(dialed, addr)
		mu.Unlock()
		return nd.DialContext(ctx, network, addr)
	}}
	d, err := dialer.New("ssh://target", cfg)
	require.NoError(t, err)
	defer d.Close()
	assert.Equal(t, "OK", get(t, httpClient(d), "/_ping"))
	mu.Lock()
	assert.Equal(t, []string{jump.addr}, dialed, "only the jump host is dialed directly")
	mu.Unlock()
	execs, _, _ := target.stats()
	assert.Len(t, execs, 1, "the command runs on the target")
	execs, _, _ = jump.stats()
	assert.Empty(t, execs)
}
