package authn_test

import (
	"crypto/rand"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/ssh"

	"github.com/dockssh/dockssh/authn"
)

// TestCertificatesOpenSSH signs user keys with ssh-keygen -s and logs in
// with the real ssh client presenting the certificate.
func TestCertificatesOpenSSH(t *testing.T) {
	requireTool(t, "ssh")
	base := t.TempDir()
	ca := keygen(t, base, "ca", "ed25519")
	otherCA := keygen(t, base, "otherca", "ed25519")
	// The injected clock: certificates below are valid around it.
	now := time.Now()
	tests := []struct {
		name   string
		user   string
		signBy *key
		args   []string
		cfg    func(c *authn.Config, ca, user *key)
		ok     bool
		why    string
		check  func(t *testing.T, g *authn.Grant)
	}{
		{name: "principal matches", user: "alice", args: []string{"-n", "alice,admin"}, ok: true, check: func(t *testing.T, g *authn.Grant) {
			assert.Equal(t, "alice", g.Keys[0].Principal)
			assert.Equal(t, "id-principal matches", g.Keys[0].CertKeyID)
			assert.Equal(t, uint64(42), g.Keys[0].CertSerial)
			assert.Equal(t, ssh.FingerprintSHA256(ca.public), g.Keys[0].CAFingerprint)
			assert.True(t, g.PTY && g.PortForwarding && g.AgentForwarding && g.X11Forwarding && g.UserRC, "ssh-keygen grants all permit-* by default")
		}},
		{name: "principal missing", user: "bob", args: []string{"-n", "alice"}, why: "not in certificate"},
		{name: "no principals", user: "alice", args: nil, why: "certificate has no principals"},
		{name: "untrusted CA", user: "alice", signBy: otherCA, args: []string{"-n", "alice"}, why: "untrusted CA"},
		{name: "expired", user: "alice", args: []string{"-n", "alice", "-V", "20000101:20000102"}, why: "expired"},
		{name: "not yet valid", user: "alice", args: []string{"-n", "alice", "-V", "+52w:+104w"}, why: "not yet valid"},
		{name: "force-command", user: "alice", args: []string{"-n", "alice", "-O", "force-command=/bin/date"}, ok: true, check: func(t *testing.T, g *authn.Grant) {
			assert.Equal(t, "/bin/date", g.ForceCommand)
		}},
		{name: "source-address allows", user: "alice", args: []string{"-n", "alice", "-O", "source-address=10.0.0.0/8,127.0.0.1/32"}, ok: true, check: func(t *testing.T, g *authn.Grant) {
			assert.Equal(t, "10.0.0.0/8,127.0.0.1/32", g.SourceAddress)
		}},
		{name: "source-address refuses", user: "alice", args: []string{"-n", "alice", "-O", "source-address=10.0.0.0/8"}, why: "source-address"},
		{name: "clear then permit-pty", user: "alice", args: []string{"-n", "alice", "-O", "clear", "-O", "permit-pty"}, ok: true, check: func(t *testing.T, g *authn.Grant) {
			assert.True(t, g.PTY)
			assert.False(t, g.PortForwarding || g.AgentForwarding || g.X11Forwarding || g.UserRC)
		}},
		{name: "extensions cannot spoof the identity", user: "alice", args: []string{"-n", "alice", "-O", "extension:user@dockssh=root", "-O", "extension:methods@dockssh=none", "-O", "extension:permitopen@dockssh=[]"}, ok: true, check: func(t *testing.T, g *authn.Grant) {
			assert.Equal(t, "alice", g.User)
			assert.Equal(t, []authn.Method{authn.MethodPublicKey}, g.Methods)
			assert.Nil(t, g.PermitOpen)
		}},
		{name: "unknown critical option", user: "alice", args: []string{"-n", "alice", "-O", "critical:made-up@example.com=x"}, why: "unsupported critical option"},
		{name: "verify-required critical option", user: "alice", args: []string{"-n", "alice", "-O", "verify-required"}, why: "unsupported critical option"},
		{name: "revoked key", user: "alice", args: []string{"-n", "alice"}, cfg: func(c *authn.Config, ca, user *key) {
			c.RevokedKeys = []string{ssh.FingerprintSHA256(user.public)}
		}, why: "is revoked"},
		{name: "revoked CA", user: "alice", args: []string{"-n", "alice"}, cfg: func(c *authn.Config, ca, user *key) {
			c.RevokedKeys = []string{ca.line}
		}, why: "is revoked"},
		{name: "revocation file", user: "alice", args: []string{"-n", "alice"}, cfg: func(c *authn.Config, ca, user *key) {
			c.RevokedKeysFile = writeFile(t, filepath.Join(filepath.Dir(user.priv), "revoked"), "# revoked\n"+ssh.FingerprintSHA256(user.public)+"\n")
		}, why: "is revoked"},
		{name: "trusted CA file", user: "alice", args: []string{"-n", "alice"}, cfg: func(c *authn.Config, ca, user *key) {
			c.Certificates = &authn.CertificateConfig{TrustedCAKeysFile: writeFile(t, filepath.Join(filepath.Dir(user.priv), "cas"), "# CAs\n"+ca.line+"\n")}
		}, ok: true},
		{name: "cert-authority line", user: "alice", args: []string{"-n", "alice"}, cfg: func(c *authn.Config, ca, user *key) {
			c.Certificates = nil
			c.AuthorizedKeys = &authn.AuthorizedKeysConfig{Content: `cert-authority,restrict,pty ` + ca.line + "\n"}
		}, ok: true, check: func(t *testing.T, g *authn.Grant) {
			assert.True(t, g.PTY)
			assert.False(t, g.PortForwarding, "restrict on the cert-authority line applies")
			assert.Equal(t, "AuthorizedKeys.Content:1", g.Keys[0].Source)
		}},
		{name: "cert-authority principals=", user: "alice", args: []string{"-n", "ops"}, cfg: func(c *authn.Config, ca, user *key) {
			c.Certificates = nil
			c.AuthorizedKeys = &authn.AuthorizedKeysConfig{Content: `cert-authority,principals="ops,dev" ` + ca.line + "\n"}
		}, ok: true, check: func(t *testing.T, g *authn.Grant) {
			assert.Equal(t, "alice", g.User)
			assert.Equal(t, "ops", g.Keys[0].Principal)
		}},
		{name: "cert-authority principals= mismatch", user: "alice", args: []string{"-n", "alice"}, cfg: func(c *authn.Config, ca, user *key) {
			c.Certificates = nil
			c.AuthorizedKeys = &authn.AuthorizedKeysConfig{Content: `cert-authority,principals="ops" ` + ca.line + "\n"}
		}, why: "principals="},
		{name: "forced commands must agree", user: "alice", args: []string{"-n", "alice", "-O", "force-command=a"}, cfg: func(c *authn.Config, ca, user *key) {
			c.Certificates = nil
			c.AuthorizedKeys = &authn.AuthorizedKeysConfig{Content: `cert-authority,command="b" ` + ca.line + "\n"}
		}, why: "forced commands differ"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			user := keygen(t, dir, "user", "ed25519")
			signer := ca
			if tt.signBy != nil {
				signer = tt.signBy
			}
			certify(t, signer, user, "id-"+tt.name, append([]string{"-z", "42"}, tt.args...)...)
			log, logs := newLogger()
			cfg := &authn.Config{
				Certificates: &authn.CertificateConfig{TrustedCAKeys: []ssh.PublicKey{ca.public}},
				Penalties:    &authn.PenaltyConfig{Disabled: true},
				Logger:       log,
				Now:          func() time.Time { return now },
			}
			if tt.cfg != nil {
				tt.cfg(cfg, ca, user)
			}
			a, err := authn.New(cfg)
			require.NoError(t, err)
			s := startServer(t, a)
			out, errOut, err := s.ssh(t, sshRun{user: tt.user, identity: user.priv})
			r := s.next(t)
			if !tt.ok {
				require.Error(t, err, "ssh succeeded: %s", out)
				assert.True(t, isAuthFailure(r.err), "server: %v", r.err)
				require.NotEmpty(t, tt.why)
				assert.Contains(t, logs.String(), tt.why)
				return
			}
			require.NoError(t, err, "ssh: %s\nlog: %s", errOut, logs.String())
			g := grantOut(t, out)
			assert.Equal(t, tt.user, g.User)
			require.Len(t, g.Keys, 1)
			assert.Equal(t, ssh.FingerprintSHA256(user.public), g.Keys[0].Fingerprint)
			assert.Equal(t, ssh.CertAlgoED25519v01, g.Keys[0].Type)
			assert.Equal(t, "id-"+tt.name, g.Keys[0].CertKeyID)
			// The log line names the certificate.
			assert.NotEmpty(t, logs.find(t, map[string]string{"result": "success", "cert_key_id": "id-" + tt.name, "fingerprint": ssh.FingerprintSHA256(user.public)}))
			if tt.check != nil {
				tt.check(t, g)
			}
		})
	}
}

// TestCertificateValidityUsesInjectedClock moves the injected clock
// across a certificate's validity window.
func TestCertificateValidityUsesInjectedClock(t *testing.T) {
	dir := t.TempDir()
	ca := keygen(t, dir, "ca", "ed25519")
	user := keygen(t, dir, "user", "ed25519")
	cert := certify(t, ca, user, "window", "-n", "alice", "-V", "20300101000000:20300102000000")
	var now time.Time
	a, err := authn.New(&authn.Config{
		Certificates: &authn.CertificateConfig{TrustedCAKeys: []ssh.PublicKey{ca.public}},
		Penalties:    &authn.PenaltyConfig{Disabled: true},
		Logger:       discard(),
		Now:          func() time.Time { return now },
	})
	require.NoError(t, err)
	cb := callbacks(a)
	for _, tt := range []struct {
		at time.Time
		ok bool
	}{
		{time.Date(2029, 12, 31, 23, 59, 59, 0, time.Local), false},
		{time.Date(2030, 1, 1, 0, 0, 0, 0, time.Local), true},
		{time.Date(2030, 1, 1, 23, 59, 59, 0, time.Local), true},
		{time.Date(2030, 1, 2, 0, 0, 0, 0, time.Local), false},
	} {
		now = tt.at
		_, err := cb.PublicKeyCallback(conn("alice"), cert)
		if (err == nil) != tt.ok {
			t.Errorf("PublicKeyCallback at %v = %v, want ok=%v", tt.at, err, tt.ok)
		}
	}
}

// TestCertificateCallbackRefusals covers certificates the OpenSSH client
// would not even offer as user certificates.
func TestCertificateCallbackRefusals(t *testing.T) {
	dir := t.TempDir()
	ca := keygen(t, dir, "ca", "ed25519")
	user := keygen(t, dir, "user", "ed25519")
	hostCert := certify(t, ca, user, "host", "-h", "-n", "alice")
	require.NoError(t, os.Rename(filepath.Join(dir, "user-cert.pub"), filepath.Join(dir, "host-cert.pub")))
	userCert := certify(t, ca, user, "user", "-n", "alice")
	a, err := authn.New(&authn.Config{
		Certificates:   &authn.CertificateConfig{TrustedCAKeys: []ssh.PublicKey{ca.public}},
		AuthorizedKeys: &authn.AuthorizedKeysConfig{Content: user.line + "\n"},
		Penalties:      &authn.PenaltyConfig{Disabled: true},
		Logger:         discard(),
	})
	require.NoError(t, err)
	cb := callbacks(a)
	_, err = cb.PublicKeyCallback(conn("alice"), hostCert)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "not a user certificate")

	// A plain key line admits the key, not certificates of it.
	b, err := authn.New(&authn.Config{
		AuthorizedKeys: &authn.AuthorizedKeysConfig{Content: user.line + "\n"},
		Penalties:      &authn.PenaltyConfig{Disabled: true},
		Logger:         discard(),
	})
	require.NoError(t, err)
	cb = callbacks(b)
	_, err = cb.PublicKeyCallback(conn("alice"), userCert)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "untrusted CA")
	_, err = cb.PublicKeyCallback(conn("alice"), user.public)
	assert.NoError(t, err)
}

// TestCertificateSHA1Refused: a certificate signed with ssh-rsa (SHA-1)
// is refused, as by sshd's default CASignatureAlgorithms.
func TestCertificateSHA1Refused(t *testing.T) {
	dir := t.TempDir()
	ca := keygen(t, dir, "ca", "rsa")
	user := keygen(t, dir, "user", "ed25519")
	a, err := authn.New(&authn.Config{
		Certificates: &authn.CertificateConfig{TrustedCAKeys: []ssh.PublicKey{ca.public}},
		Penalties:    &authn.PenaltyConfig{Disabled: true},
		Logger:       discard(),
	})
	require.NoError(t, err)
	cb := callbacks(a)
	for _, tt := range []struct {
		alg string
		ok  bool
	}{{ssh.KeyAlgoRSA, false}, {ssh.KeyAlgoRSASHA256, true}, {ssh.KeyAlgoRSASHA512, true}} {
		signer, err := ssh.NewSignerWithAlgorithms(ca.signer.(ssh.AlgorithmSigner), []string{tt.alg})
		require.NoError(t, err)
		cert := &ssh.Certificate{Key: user.public, CertType: ssh.UserCert, ValidPrincipals: []string{"alice"}, ValidBefore: ssh.CertTimeInfinity}
		require.NoError(t, cert.SignCert(rand.Reader, signer))
		_, err = cb.PublicKeyCallback(conn("alice"), cert)
		if (err == nil) != tt.ok {
			t.Errorf("certificate signed with %s: PublicKeyCallback = %v, want ok=%v", tt.alg, err, tt.ok)
		}
	}
}

// TestRevocationFileFailsClosed: a revocation list that does not parse
// refuses every key until it is fixed.
func TestRevocationFileFailsClosed(t *testing.T) {
	dir := t.TempDir()
	k := keygen(t, dir, "k", "ed25519")
	rev := writeFile(t, filepath.Join(dir, "revoked"), "")
	a, err := authn.New(&authn.Config{
		AuthorizedKeys:  &authn.AuthorizedKeysConfig{Content: k.line},
		RevokedKeysFile: rev,
		Penalties:       &authn.PenaltyConfig{Disabled: true},
		Logger:          discard(),
	})
	require.NoError(t, err)
	cb := callbacks(a)
	_, err = cb.PublicKeyCallback(conn("u"), k.public)
	require.NoError(t, err)
	writeFile(t, rev, "SHA256:not-a-fingerprint\n")
	_, err = cb.PublicKeyCallback(conn("u"), k.public)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "revocation list unavailable")
	time.Sleep(10 * time.Millisecond)
	writeFile(t, rev, "# fixed\n")
	_, err = cb.PublicKeyCallback(conn("u"), k.public)
	require.NoError(t, err)
	// A removed list fails closed too, as in sshd (a revocation we
	// cannot read must not be skipped).
	require.NoError(t, os.Remove(rev))
	_, err = cb.PublicKeyCallback(conn("u"), k.public)
	require.Error(t, err)
	writeFile(t, rev, "")
	_, err = cb.PublicKeyCallback(conn("u"), k.public)
	require.NoError(t, err)

	_, err = authn.New(&authn.Config{AuthorizedKeys: &authn.AuthorizedKeysConfig{Content: k.line}, RevokedKeys: []string{"garbage"}})
	assert.Error(t, err, "a bad RevokedKeys entry must fail New")
}
