package dialer_test

import (
	"crypto/ed25519"
	"crypto/rand"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/agent"

	"github.com/dockssh/dockssh/dialer"
)

// signUserCert signs key as a user certificate for principals and writes it
// in authorized_keys format (as ssh-keygen -s does) to a new file.
func signUserCert(tb testing.TB, ca ssh.Signer, key ssh.PublicKey, id string, certType uint32, validBefore uint64, principals ...string) string {
	tb.Helper()
	cert := &ssh.Certificate{
		Key:             key,
		CertType:        certType,
		KeyId:           id,
		ValidPrincipals: principals,
		ValidBefore:     validBefore,
		Permissions:     ssh.Permissions{Extensions: map[string]string{"permit-pty": ""}},
	}
	require.NoError(tb, cert.SignCert(rand.Reader, ca))
	path := filepath.Join(tb.TempDir(), id+"-cert.pub")
	require.NoError(tb, os.WriteFile(path, ssh.MarshalAuthorizedKey(cert), 0o600))
	return path
}

func newCA(tb testing.TB) ssh.Signer {
	tb.Helper()
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	ca, err := ssh.NewSignerFromKey(priv)
	require.NoError(tb, err)
	return ca
}

// TestCertificateFile: a server that accepts only user certificates from its
// CA (x/crypto's CertChecker, as sshd's TrustedUserCAKeys) lets the dialer
// in with CertificateFile, whose certificate is paired with its private key
// from an identity file or from the agent, as ssh does.
func TestCertificateFile(t *testing.T) {
	srv := newFakeServer(t)
	ca := newCA(t)
	srv.set(func() { srv.userCA = ca.PublicKey() })
	cert := signUserCert(t, ca, srv.clientKey.PublicKey(), "tester-laptop", ssh.UserCert, ssh.CertTimeInfinity, "tester")
	agentKey := func(t *testing.T) (string, string) {
		_, priv, _ := ed25519.GenerateKey(rand.Reader)
		signer, _ := ssh.NewSignerFromKey(priv)
		sock, _ := startAgent(t, priv)
		return sock, signUserCert(t, ca, signer.PublicKey(), "agent-key", ssh.UserCert, ssh.CertTimeInfinity, "tester")
	}

	t.Run("without the certificate the key is refused", func(t *testing.T) {
		d := newDialer(t, srv, "", nil)
		_, err := d.DialContext(t.Context(), "tcp", "")
		var de *dialer.Error
		require.ErrorAs(t, err, &de)
		assert.Equal(t, dialer.OpAuth, de.Op)
	})
	t.Run("Config.CertificateFiles with an identity file", func(t *testing.T) {
		cfg := srv.Config(t)
		cfg.CertificateFiles = []string{cert}
		d := newDialer(t, srv, "", cfg)
		c, err := d.DialContext(t.Context(), "tcp", "")
		require.NoError(t, err)
		c.Close()
	})
	t.Run("ssh_config CertificateFile", func(t *testing.T) {
		home := t.TempDir()
		require.NoError(t, os.MkdirAll(filepath.Join(home, ".ssh"), 0o700))
		require.NoError(t, os.WriteFile(filepath.Join(home, ".ssh", "config"), []byte(fmt.Sprintf(
			"Host box\n  HostName 127.0.0.1\n  Port %d\n  User tester\n  IdentityFile %s\n  CertificateFile %s\n  IdentityAgent none\n",
			srv.port, srv.clientKeyPath, cert)), 0o600))
		d, err := dialer.New("ssh://box", &dialer.Config{HomeDir: home, KnownHostsFiles: []string{srv.knownHosts}})
		require.NoError(t, err)
		defer d.Close()
		c, err := d.DialContext(t.Context(), "tcp", "")
		require.NoError(t, err)
		c.Close()
	})
	t.Run("the key in the agent", func(t *testing.T) {
		sock, agentCert := agentKey(t)
		cfg := srv.Config(t)
		cfg.IdentityFiles = []string{filepath.Join(t.TempDir(), "none")}
		cfg.AgentSocket = sock
		cfg.CertificateFiles = []string{agentCert}
		d := newDialer(t, srv, "", cfg)
		c, err := d.DialContext(t.Context(), "tcp", "")
		require.NoError(t, err)
		c.Close()
	})
	t.Run("unusable certificates are reported", func(t *testing.T) {
		_, stranger := writeClientKey(t, t.TempDir(), nil)
		strangerPub, err := os.ReadFile(stranger + ".pub")
		require.NoError(t, err)
		pub, _, _, _, err := ssh.ParseAuthorizedKey(strangerPub)
		require.NoError(t, err)
		cfg := srv.Config(t)
		cfg.CertificateFiles = []string{
			signUserCert(t, ca, pub, "no-key-here", ssh.UserCert, ssh.CertTimeInfinity, "tester"),
			signUserCert(t, ca, srv.clientKey.PublicKey(), "a-host-cert", ssh.HostCert, ssh.CertTimeInfinity, "tester"),
			signUserCert(t, ca, srv.clientKey.PublicKey(), "expired", ssh.UserCert, uint64(time.Now().Add(-time.Hour).Unix()), "tester"),
			filepath.Join(t.TempDir(), "missing-cert.pub"),
		}
		d := newDialer(t, srv, "", cfg)
		_, err = d.DialContext(t.Context(), "tcp", "")
		var de *dialer.Error
		require.ErrorAs(t, err, &de)
		assert.Equal(t, dialer.OpAuth, de.Op)
		msg := err.Error()
		t.Logf("error: %v", msg)
		assert.Contains(t, msg, `(certificate "no-key-here"): its private key is neither in the identity files nor in the agent`)
		assert.Contains(t, msg, `(certificate "a-host-cert") is a host certificate`)
		assert.Contains(t, msg, `certificate "expired", principals ["tester"], valid until `)
		assert.Contains(t, msg, ", expired)")
		assert.Contains(t, msg, "missing-cert.pub: not found")
		assert.Contains(t, de.Hint, "add the key that")
	})
}

// startCertAgent serves an agent that holds priv with cert, as ssh-add
// loads a key with the id-cert.pub beside it.
func startCertAgent(tb testing.TB, priv ed25519.PrivateKey, cert *ssh.Certificate) string {
	tb.Helper()
	kr := agent.NewKeyring()
	require.NoError(tb, kr.Add(agent.AddedKey{PrivateKey: priv, Certificate: cert}))
	require.NoError(tb, kr.Add(agent.AddedKey{PrivateKey: priv}))
	return serveUnix(tb, func(c net.Conn) { agent.ServeAgent(kr, c) }, nil)
}

// A certificate held by the agent is offered, and under IdentitiesOnly it
// counts for its key: an IdentityFile naming the key (only its .pub is
// there, the private key is in the agent) lets the agent's certificate
// through, and a CertificateFile is paired with the agent's key though no
// IdentityFile names it, as ssh does (pubkey_prepare in sshconnect2.c
// matches agent keys against the certificate with sshkey_equal, which
// compares the certified key).
func TestCertificateFromAgentWithIdentitiesOnly(t *testing.T) {
	t.Parallel()
	srv := newFakeServer(t)
	ca := newCA(t)
	srv.set(func() { srv.userCA = ca.PublicKey() })
	pub, priv, _ := ed25519.GenerateKey(rand.Reader)
	sshPub, err := ssh.NewPublicKey(pub)
	require.NoError(t, err)
	certPath := signUserCert(t, ca, sshPub, "agent-held", ssh.UserCert, ssh.CertTimeInfinity, "tester")
	certKey, err := readCert(certPath)
	require.NoError(t, err)

	pubOnly := filepath.Join(t.TempDir(), "id_agent")
	require.NoError(t, os.WriteFile(pubOnly+".pub", ssh.MarshalAuthorizedKey(sshPub), 0o600))

	cases := []struct {
		name     string
		agent    string
		identity string
		certs    []string
	}{
		{"certificate in the agent", startCertAgent(t, priv, certKey), pubOnly, nil},
		{"CertificateFile with the key in the agent", startAgentKeys(t, priv), filepath.Join(t.TempDir(), "id_other"), []string{certPath}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			home := t.TempDir()
			cfgPath := filepath.Join(home, "ssh_config")
			require.NoError(t, os.WriteFile(cfgPath, []byte(fmt.Sprintf(
				"Host box\n  HostName 127.0.0.1\n  Port %d\n  User tester\n  IdentitiesOnly yes\n  IdentityFile %s\n", srv.port, tc.identity)), 0o600))
			d, err := dialer.New("ssh://box", &dialer.Config{HomeDir: home, SSHConfigPath: cfgPath,
				KnownHostsFiles: []string{srv.knownHosts}, AgentSocket: tc.agent, CertificateFiles: tc.certs})
			require.NoError(t, err)
			defer d.Close()
			c, err := d.DialContext(t.Context(), "tcp", "")
			require.NoError(t, err)
			c.Close()
		})
	}
}

// A certificate the server refuses (signed by a CA it does not trust) is
// named in the authentication error with its key ID, principals and
// validity, from a file and from the agent alike.
func TestRefusedCertificateDescribed(t *testing.T) {
	t.Parallel()
	srv := newFakeServer(t)
	srv.set(func() { srv.userCA = newCA(t).PublicKey() })
	other := newCA(t)
	before := time.Now().Add(24 * time.Hour).UTC().Truncate(time.Second)
	pub, priv, _ := ed25519.GenerateKey(rand.Reader)
	sshPub, err := ssh.NewPublicKey(pub)
	require.NoError(t, err)
	agentCert, err := readCert(signUserCert(t, other, sshPub, "agent-2026", ssh.UserCert, uint64(before.Unix()), "tester"))
	require.NoError(t, err)

	cases := []struct {
		name, id string
		cfg      func(*dialer.Config)
	}{
		{"file", "laptop-2026", func(cfg *dialer.Config) {
			cfg.CertificateFiles = []string{signUserCert(t, other, srv.clientKey.PublicKey(), "laptop-2026", ssh.UserCert, uint64(before.Unix()), "tester")}
		}},
		{"agent", "agent-2026", func(cfg *dialer.Config) {
			cfg.AgentSocket = startCertAgent(t, priv, agentCert)
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := srv.Config(t)
			tc.cfg(cfg)
			d := newDialer(t, srv, "", cfg)
			_, err := d.DialContext(t.Context(), "tcp", "")
			var de *dialer.Error
			require.ErrorAs(t, err, &de)
			assert.Equal(t, dialer.OpAuth, de.Op)
			assert.Contains(t, err.Error(), fmt.Sprintf(`(certificate %q, principals ["tester"], valid until %s)`, tc.id, before.Format(time.RFC3339)))
		})
	}
}

func readCert(path string) (*ssh.Certificate, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	k, _, _, _, err := ssh.ParseAuthorizedKey(b)
	if err != nil {
		return nil, err
	}
	return k.(*ssh.Certificate), nil
}

// startAgentKeys serves an agent that holds the plain keys.
func startAgentKeys(tb testing.TB, keys ...ed25519.PrivateKey) string {
	tb.Helper()
	sock, _ := startAgent(tb, keys...)
	return sock
}
