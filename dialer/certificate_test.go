package dialer_test

import (
	"crypto/ed25519"
	"crypto/rand"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/ssh"

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
