package authn_test

import (
	"errors"
	"io"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/ssh"

	"github.com/dockssh/dockssh/authn"
)

// TestChainOpenSSH requires a public key and then a password
// (AuthenticationMethods publickey,password), with the real ssh client.
func TestChainOpenSSH(t *testing.T) {
	requireTool(t, "ssh")
	dir := t.TempDir()
	k := keygen(t, dir, "k", "ed25519")
	other := keygen(t, dir, "other", "ed25519")
	log, logs := newLogger()
	a, err := authn.New(&authn.Config{
		Passwords:      &authn.PasswordConfig{Users: []authn.PasswordUser{{Name: "alice", Hash: mustArgon(t, "pw")}}},
		AuthorizedKeys: &authn.AuthorizedKeysConfig{Content: `restrict,pty,command="cmd" ` + k.line},
		Methods:        [][]authn.Method{{authn.MethodPublicKey, authn.MethodPassword}},
		Penalties:      &authn.PenaltyConfig{Disabled: true},
		Logger:         log,
	})
	require.NoError(t, err)
	s := startServer(t, a)
	tests := []struct {
		name     string
		identity string
		password string
		ok       bool
	}{
		{"key and password", k.priv, "pw", true},
		{"key only", k.priv, "", false},
		{"password only", "", "pw", false},
		{"key and wrong password", k.priv, "nope", false},
		{"wrong key and password", other.priv, "pw", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, errOut, err := s.ssh(t, sshRun{user: "alice", identity: tt.identity, password: tt.password})
			r := s.next(t)
			if !tt.ok {
				assert.Error(t, err, "ssh succeeded: %s", out)
				assert.Error(t, r.err)
				return
			}
			require.NoError(t, err, "ssh: %s\nlog: %s", errOut, logs.String())
			g := grantOut(t, out)
			assert.Equal(t, "alice", g.User)
			assert.Equal(t, []authn.Method{authn.MethodPublicKey, authn.MethodPassword}, g.Methods)
			require.Len(t, g.Keys, 1)
			assert.Equal(t, ssh.FingerprintSHA256(k.public), g.Keys[0].Fingerprint)
			// The key's restrictions survive the password step.
			assert.Equal(t, "cmd", g.ForceCommand)
			assert.True(t, g.PTY)
			assert.False(t, g.PortForwarding)
			assert.NotEmpty(t, logs.find(t, map[string]string{"result": "partial", "method": "publickey", "next": "password"}))
		})
	}
}

// TestChainAlternatives: {{password}, {publickey, publickey}} - either a
// password alone, or two different keys.
func TestChainAlternatives(t *testing.T) {
	dir := t.TempDir()
	k1 := keygen(t, dir, "k1", "ed25519")
	k2 := keygen(t, dir, "k2", "ecdsa")
	a, err := authn.New(&authn.Config{
		Passwords: &authn.PasswordConfig{Users: []authn.PasswordUser{{Name: "u", Password: "pw"}}},
		AuthorizedKeys: &authn.AuthorizedKeysConfig{Content: `environment="A=1",permitopen="a:1",permitopen="b:2" ` + k1.line + "\n" +
			`environment="B=2",permitopen="b:2",no-pty ` + k2.line + "\n"},
		Methods:   [][]authn.Method{{authn.MethodPassword}, {authn.MethodPublicKey, authn.MethodPublicKey}},
		Penalties: &authn.PenaltyConfig{Disabled: true},
		Logger:    discard(),
	})
	require.NoError(t, err)
	s := startServer(t, a)

	c, err := dial(t, s.addr, "u", ssh.Password("pw"))
	require.NoError(t, err)
	c.Close()
	r := s.next(t)
	require.NoError(t, r.err)
	assert.Equal(t, []authn.Method{authn.MethodPassword}, r.grant.Methods)

	// Two different keys.
	// x/crypto's client retries the same method after a partial success:
	// k1 succeeds partially, then k1 is refused as already used, then k2.
	c, err = dial(t, s.addr, "u", ssh.PublicKeys(k1.signer, k2.signer))
	require.NoError(t, err)
	c.Close()
	r = s.next(t)
	require.NoError(t, r.err)
	assert.Equal(t, []authn.Method{authn.MethodPublicKey, authn.MethodPublicKey}, r.grant.Methods)
	require.Len(t, r.grant.Keys, 2)
	assert.Equal(t, ssh.FingerprintSHA256(k1.public), r.grant.Keys[0].Fingerprint)
	assert.Equal(t, ssh.FingerprintSHA256(k2.public), r.grant.Keys[1].Fingerprint)
	// The limits of both keys apply: environments add up, permitopen
	// lists intersect, no-pty of the second key holds.
	assert.Equal(t, []string{"A=1", "B=2"}, r.grant.Environment)
	assert.Equal(t, []string{"b:2"}, r.grant.PermitOpen)
	assert.False(t, r.grant.PTY)
	assert.True(t, r.grant.PortForwarding)

	// The same key twice is not two keys.
	_, err = dial(t, s.addr, "u", ssh.PublicKeys(k1.signer))
	require.Error(t, err)
	r = s.next(t)
	require.Error(t, r.err)
}

func TestMethodsConfigErrors(t *testing.T) {
	pw := &authn.PasswordConfig{Users: []authn.PasswordUser{{Name: "u", Password: "p"}}}
	tests := []struct {
		name string
		cfg  *authn.Config
		want string
	}{
		{"nil", nil, "no authentication mechanism"},
		{"empty", &authn.Config{}, "no authentication mechanism"},
		{"unconfigured method", &authn.Config{Passwords: pw, Methods: [][]authn.Method{{authn.MethodPublicKey}}}, "not configured"},
		{"none in chain", &authn.Config{Passwords: pw, Methods: [][]authn.Method{{authn.MethodNone}}}, "not configured"},
		{"empty chain", &authn.Config{Passwords: pw, Methods: [][]authn.Method{{}}}, "is empty"},
		{"empty methods", &authn.Config{Passwords: pw, Methods: [][]authn.Method{}}, "is empty"},
		{"none with passwords", &authn.Config{InsecureNoAuthentication: true, Passwords: pw}, "cannot be combined"},
		{"bad penalty prefix", &authn.Config{Passwords: pw, Penalties: &authn.PenaltyConfig{IPv4Prefix: 33}}, "IPv4Prefix"},
		{"bad exempt", &authn.Config{Passwords: pw, Penalties: &authn.PenaltyConfig{Exempt: []string{"10.0.0.1/8"}}}, "Exempt"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.cfg != nil {
				tt.cfg.Logger = discard()
			}
			_, err := authn.New(tt.cfg)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tt.want)
		})
	}
}

// queryOnlySigner presents a public key it does not hold: the client can
// ask whether the key would be accepted, but cannot sign with it.
type queryOnlySigner struct{ pub ssh.PublicKey }

func (q queryOnlySigner) PublicKey() ssh.PublicKey { return q.pub }
func (q queryOnlySigner) Sign(io.Reader, []byte) (*ssh.Signature, error) {
	return nil, errors.New("no private key")
}

// TestQueryKeyAThenAuthenticateWithB is the CVE-2024-45337 pattern: the
// client asks about key A (which it does not hold, and which would grant
// more), then authenticates with key B. The login is B's, with B's
// restrictions.
func TestQueryKeyAThenAuthenticateWithB(t *testing.T) {
	dir := t.TempDir()
	keyA := keygen(t, dir, "a", "ed25519") // the victim's key: unrestricted
	keyB := keygen(t, dir, "b", "ed25519") // the attacker's key: restricted
	path := writeFile(t, filepath.Join(dir, "authorized_keys"),
		keyA.line+"\n"+`restrict,command="b-only" `+keyB.line+"\n")
	log, logs := newLogger()
	a, err := authn.New(&authn.Config{
		AuthorizedKeys: &authn.AuthorizedKeysConfig{Files: []string{path}},
		Penalties:      &authn.PenaltyConfig{Disabled: true},
		Logger:         log,
	})
	require.NoError(t, err)
	s := startServer(t, a)

	queried, usedB := false, false
	cfg := &ssh.ClientConfig{
		User: "victim",
		// First: a public key query for A. The server answers "A is
		// acceptable"; the client then fails to sign and moves on.
		Auth: []ssh.AuthMethod{ssh.PublicKeysCallback(func() ([]ssh.Signer, error) {
			queried = true
			return []ssh.Signer{queryOnlySigner{keyA.public}}, nil
		})},
		// Then: authenticate with B on the same connection.
		AuthCallback: func(ctx *ssh.ClientAuthContext) (ssh.AuthMethod, error) {
			if queried && !usedB {
				usedB = true
				return ssh.PublicKeys(keyB.signer), nil
			}
			return nil, nil
		},
	}
	c, err := dialFrom(t, "", s.addr, cfg)
	require.NoError(t, err)
	defer c.Close()
	require.True(t, queried)
	r := s.next(t)
	require.NoError(t, r.err)
	g := r.grant
	require.Len(t, g.Keys, 1)
	assert.Equal(t, ssh.FingerprintSHA256(keyB.public), g.Keys[0].Fingerprint, "identity must be the key that signed")
	assert.Equal(t, path+":2", g.Keys[0].Source)
	assert.Equal(t, "b-only", g.ForceCommand)
	assert.False(t, g.PTY || g.PortForwarding)

	// The server did consider A (the query happened) ...
	assert.NotEmpty(t, logs.find(t, map[string]string{"result": "acceptable", "fingerprint": ssh.FingerprintSHA256(keyA.public)}))
	// ... but the only success is B.
	succ := logs.find(t, map[string]string{"result": "success"})
	require.Len(t, succ, 1)
	assert.Equal(t, ssh.FingerprintSHA256(keyB.public), succ[0]["fingerprint"])

	// The same with the real session output.
	sess, err := c.NewSession()
	require.NoError(t, err)
	out, err := sess.Output("anything")
	require.NoError(t, err)
	assert.Equal(t, ssh.FingerprintSHA256(keyB.public), grantOut(t, string(out)).Keys[0].Fingerprint)
}

// TestChainTwoKeysOpenSSH: "publickey,publickey" with the real client
// offering two identities.
func TestChainTwoKeysOpenSSH(t *testing.T) {
	requireTool(t, "ssh")
	dir := t.TempDir()
	k1 := keygen(t, dir, "k1", "ed25519")
	k2 := keygen(t, dir, "k2", "ecdsa")
	a, err := authn.New(&authn.Config{
		AuthorizedKeys: &authn.AuthorizedKeysConfig{Content: k1.line + "\n" + k2.line + "\n"},
		Methods:        [][]authn.Method{{authn.MethodPublicKey, authn.MethodPublicKey}},
		Penalties:      &authn.PenaltyConfig{Disabled: true},
		Logger:         discard(),
	})
	require.NoError(t, err)
	s := startServer(t, a)
	out, errOut, err := s.ssh(t, sshRun{user: "u", identity: k1.priv, opts: []string{"-i", k2.priv}})
	require.NoError(t, err, errOut)
	require.NoError(t, s.next(t).err)
	g := grantOut(t, out)
	assert.Equal(t, []authn.Method{authn.MethodPublicKey, authn.MethodPublicKey}, g.Methods)
	require.Len(t, g.Keys, 2)
	assert.NotEqual(t, g.Keys[0].Fingerprint, g.Keys[1].Fingerprint)

	_, _, err = s.ssh(t, sshRun{user: "u", identity: k1.priv})
	assert.Error(t, err, "one key must not satisfy publickey,publickey")
	assert.Error(t, s.next(t).err)
}
