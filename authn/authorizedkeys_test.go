package authn_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/ssh"

	"github.com/dockssh/dockssh/authn"
)

// TestAuthorizedKeysOptionsOpenSSH logs in with the real ssh client and a
// key made by ssh-keygen, for each authorized_keys option, and checks the
// Grant the server handed to its session handler.
func TestAuthorizedKeysOptionsOpenSSH(t *testing.T) {
	requireTool(t, "ssh")
	dir := t.TempDir()
	k := keygen(t, dir, "user", "ed25519")
	fixed := time.Date(2030, 1, 1, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		name  string
		lines []string // %K is replaced by the key
		ok    bool
		why   string // for refusals: a text the log must hold
		check func(t *testing.T, g *authn.Grant)
	}{
		{name: "plain", lines: []string{"%K"}, ok: true, check: func(t *testing.T, g *authn.Grant) {
			assert.True(t, g.PTY && g.PortForwarding && g.AgentForwarding && g.X11Forwarding && g.UserRC)
			assert.Empty(t, g.ForceCommand)
			assert.Nil(t, g.PermitOpen)
		}},
		{name: "restrict", lines: []string{"restrict %K"}, ok: true, check: func(t *testing.T, g *authn.Grant) {
			assert.False(t, g.PTY || g.PortForwarding || g.AgentForwarding || g.X11Forwarding || g.UserRC)
		}},
		{name: "restrict,pty", lines: []string{"restrict,pty %K"}, ok: true, check: func(t *testing.T, g *authn.Grant) {
			assert.True(t, g.PTY)
			assert.False(t, g.PortForwarding || g.AgentForwarding || g.X11Forwarding || g.UserRC)
		}},
		{name: "restrict re-enablers", lines: []string{"restrict,port-forwarding,agent-forwarding,X11-forwarding,user-rc %K"}, ok: true, check: func(t *testing.T, g *authn.Grant) {
			assert.False(t, g.PTY)
			assert.True(t, g.PortForwarding && g.AgentForwarding && g.X11Forwarding && g.UserRC)
		}},
		{name: "no-*", lines: []string{"no-pty,no-port-forwarding,no-agent-forwarding,no-X11-forwarding,no-user-rc %K"}, ok: true, check: func(t *testing.T, g *authn.Grant) {
			assert.False(t, g.PTY || g.PortForwarding || g.AgentForwarding || g.X11Forwarding || g.UserRC)
		}},
		{name: "names are case-insensitive", lines: []string{"NO-PTY,Command=\"x\" %K"}, ok: true, check: func(t *testing.T, g *authn.Grant) {
			assert.False(t, g.PTY)
			assert.Equal(t, "x", g.ForceCommand)
		}},
		{name: "command", lines: []string{`command="echo \"hi\" there" %K`}, ok: true, check: func(t *testing.T, g *authn.Grant) {
			assert.Equal(t, `echo "hi" there`, g.ForceCommand)
		}},
		{name: "environment", lines: []string{`environment="FOO=bar baz",environment="X_1=" %K`}, ok: true, check: func(t *testing.T, g *authn.Grant) {
			assert.Equal(t, []string{"FOO=bar baz", "X_1="}, g.Environment)
		}},
		{name: "permitopen", lines: []string{`permitopen="localhost:80",permitopen="[::1]:*" %K`}, ok: true, check: func(t *testing.T, g *authn.Grant) {
			assert.Equal(t, []string{"localhost:80", "[::1]:*"}, g.PermitOpen)
			assert.True(t, g.MayOpen("localhost", 80))
			assert.True(t, g.MayOpen("::1", 5432))
			assert.False(t, g.MayOpen("localhost", 81))
			assert.False(t, g.MayOpen("example.com", 80))
		}},
		{name: "permitopen without port-forwarding", lines: []string{`restrict,permitopen="localhost:80" %K`}, ok: true, check: func(t *testing.T, g *authn.Grant) {
			assert.False(t, g.MayOpen("localhost", 80))
		}},
		{name: "permitlisten", lines: []string{`permitlisten="8080",permitlisten="0.0.0.0:9090" %K`}, ok: true, check: func(t *testing.T, g *authn.Grant) {
			assert.True(t, g.MayListen("localhost", 8080))
			assert.True(t, g.MayListen("0.0.0.0", 9090))
			assert.False(t, g.MayListen("0.0.0.0", 8080))
		}},
		{name: "tunnel", lines: []string{`tunnel="3" %K`}, ok: true, check: func(t *testing.T, g *authn.Grant) {
			assert.Equal(t, "3", g.Tunnel)
		}},
		{name: "from address", lines: []string{`from="127.0.0.1" %K`}, ok: true},
		{name: "from CIDR", lines: []string{`from="10.0.0.0/8,127.0.0.0/8" %K`}, ok: true},
		{name: "from wildcard", lines: []string{`from="127.0.0.?,192.168.*" %K`}, ok: true},
		{name: "from elsewhere", lines: []string{`from="10.0.0.0/8" %K`}, why: "not allowed by from="},
		{name: "from negated", lines: []string{`from="!127.0.0.1,*" %K`}, why: "not allowed by from="},
		{name: "from negated CIDR", lines: []string{`from="*,!127.0.0.0/8" %K`}, why: "not allowed by from="},
		{name: "from host name never matches", lines: []string{`from="localhost" %K`}, why: "not allowed by from="},
		{name: "from malformed CIDR refuses line", lines: []string{`from="127.0.0.1/8" %K`}, why: "host bits set"},
		{name: "expiry-time future", lines: []string{`expiry-time="20300102Z" %K`}, ok: true},
		{name: "expiry-time past", lines: []string{`expiry-time="203001011159Z" %K`}, why: "expired (expiry-time)"},
		{name: "expiry-time earliest wins", lines: []string{`expiry-time="20350101Z",expiry-time="20291231Z" %K`}, why: "expired (expiry-time)"},
		{name: "no-touch-required on a plain key", lines: []string{`no-touch-required %K`}, ok: true},
		{name: "verify-required is refused", lines: []string{`verify-required %K`}, why: "verify-required is not supported"},
		{name: "unknown option refuses line", lines: []string{`no-such-option %K`}, why: `unknown option \"no-such-option\"`},
		{name: "unknown option then good line", lines: []string{`no-such-option %K`, `command="second" %K`}, ok: true, check: func(t *testing.T, g *authn.Grant) {
			assert.Equal(t, "second", g.ForceCommand)
			assert.True(t, strings.HasSuffix(g.Keys[0].Source, "authorized_keys:2"), "source %q", g.Keys[0].Source)
		}},
		{name: "first allowing line wins", lines: []string{`from="10.0.0.1",command="first" %K`, `command="second" %K`}, ok: true, check: func(t *testing.T, g *authn.Grant) {
			assert.Equal(t, "second", g.ForceCommand)
		}},
		{name: "value without quotes", lines: []string{`command=ls %K`}, why: "double quotes"},
		{name: "command twice", lines: []string{`command="a",command="b" %K`}, why: "given twice"},
		{name: "principals without cert-authority", lines: []string{`principals="x" %K`}, why: "only valid with cert-authority"},
		{name: "cert-authority line does not allow the CA key itself", lines: []string{`cert-authority %K`}, why: "not in any authorized_keys file"},
		{name: "comment and blank", lines: []string{"# comment", "", "   ", "%K trailing comment"}, ok: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "authorized_keys")
			writeFile(t, path, strings.ReplaceAll(strings.Join(tt.lines, "\n"), "%K", k.line)+"\n")
			log, logs := newLogger()
			a, err := authn.New(&authn.Config{
				AuthorizedKeys: &authn.AuthorizedKeysConfig{Files: []string{path}},
				Penalties:      &authn.PenaltyConfig{Disabled: true},
				Logger:         log,
				Now:            func() time.Time { return fixed },
			})
			require.NoError(t, err)
			s := startServer(t, a)
			out, errOut, err := s.ssh(t, sshRun{user: "anyone", identity: k.priv})
			r := s.next(t)
			if !tt.ok {
				require.Error(t, err, "ssh succeeded: %s", out)
				assert.True(t, isAuthFailure(r.err), "server: %v", r.err)
				require.NotEmpty(t, tt.why)
				assert.Contains(t, logs.String(), tt.why)
				return
			}
			require.NoError(t, err, "ssh: %s\nlog: %s", errOut, logs.String())
			require.NoError(t, r.err)
			g := grantOut(t, out)
			assert.Equal(t, "anyone", g.User)
			assert.Equal(t, []authn.Method{authn.MethodPublicKey}, g.Methods)
			require.Len(t, g.Keys, 1)
			assert.Equal(t, ssh.FingerprintSHA256(k.public), g.Keys[0].Fingerprint)
			assert.Equal(t, r.grant, g, "grant printed by the session differs from the one decoded after the handshake")
			if tt.check != nil {
				tt.check(t, g)
			}
		})
	}
}

// TestAuthorizedKeysBadLineLogged checks that a refused line is logged with
// file:line and the reason.
func TestAuthorizedKeysBadLineLogged(t *testing.T) {
	dir := t.TempDir()
	k := keygen(t, dir, "user", "ed25519")
	path := writeFile(t, filepath.Join(dir, "authorized_keys"), k.line+"\nbogus-opt "+k.line+"\n")
	log, logs := newLogger()
	_, err := authn.New(&authn.Config{AuthorizedKeys: &authn.AuthorizedKeysConfig{Files: []string{path}}, Logger: log})
	require.NoError(t, err)
	recs := logs.find(t, map[string]string{"at": path + ":2"})
	require.Len(t, recs, 1, "logs: %s", logs.String())
	assert.Contains(t, recs[0]["err"], `unknown option "bogus-opt"`)
	assert.Equal(t, "ERROR", recs[0]["level"])
}

// TestAuthorizedKeysReload edits, breaks and removes the file between
// logins with the real client: no restart is needed.
func TestAuthorizedKeysReload(t *testing.T) {
	requireTool(t, "ssh")
	dir := t.TempDir()
	k1 := keygen(t, dir, "k1", "ed25519")
	k2 := keygen(t, dir, "k2", "ecdsa")
	path := writeFile(t, filepath.Join(dir, "authorized_keys"), k1.line+"\n")
	log, logs := newLogger()
	a, err := authn.New(&authn.Config{
		AuthorizedKeys: &authn.AuthorizedKeysConfig{Files: []string{path}},
		Penalties:      &authn.PenaltyConfig{Disabled: true},
		Logger:         log,
	})
	require.NoError(t, err)
	s := startServer(t, a)
	login := func(k *key) bool {
		t.Helper()
		_, _, err := s.ssh(t, sshRun{user: "u", identity: k.priv})
		r := s.next(t)
		assert.Equal(t, err == nil, r.err == nil, "client and server disagree: client %v, server %v", err, r.err)
		return err == nil
	}
	assert.True(t, login(k1))
	assert.False(t, login(k2))

	// Replace the file (new inode, as editors do): k2 in, k1 out.
	tmp := writeFile(t, path+".tmp", "restrict "+k2.line+"\n")
	require.NoError(t, os.Rename(tmp, path))
	assert.False(t, login(k1))
	assert.True(t, login(k2))

	// Edit in place, same size: the modification time tells.
	time.Sleep(20 * time.Millisecond)
	writeFile(t, path, "restrict "+k1.line+"\n")
	assert.True(t, login(k1))

	// Edit in place within one timestamp tick (same size, same inode, same
	// modification time, as on a file system with coarse timestamps): the
	// contents tell.
	k3 := keygen(t, dir, "k3", "ed25519")
	before, err := os.Stat(path)
	require.NoError(t, err)
	writeFile(t, path, "restrict "+k3.line+"\n")
	require.NoError(t, os.Chtimes(path, before.ModTime(), before.ModTime()))
	after, err := os.Stat(path)
	require.NoError(t, err)
	require.True(t, os.SameFile(before, after) && before.Size() == after.Size() && before.ModTime().Equal(after.ModTime()), "the edit keeps every stat field")
	assert.False(t, login(k1))
	assert.True(t, login(k3))
	writeFile(t, path, "restrict "+k1.line+"\n")
	require.NoError(t, os.Chtimes(path, before.ModTime(), before.ModTime()))
	assert.True(t, login(k1))

	// A whole-file error refuses every key until the file is fixed, and
	// is logged.
	writeFile(t, path, "\x00\x01 not a text file")
	assert.False(t, login(k1))
	assert.NotEmpty(t, logs.find(t, map[string]string{"msg": fileUnusableMsg, "file": path}))
	writeFile(t, path, "restrict "+k1.line+"\n")
	assert.True(t, login(k1))

	// A removed file grants nothing.
	require.NoError(t, os.Remove(path))
	assert.False(t, login(k1))
	writeFile(t, path, k2.line+"\n")
	assert.True(t, login(k2))
}

func TestUserFiles(t *testing.T) {
	requireTool(t, "ssh")
	dir := t.TempDir()
	alice := keygen(t, dir, "alice", "ed25519")
	bob := keygen(t, dir, "bob", "rsa")
	keysDir := filepath.Join(dir, "keys")
	require.NoError(t, os.Mkdir(keysDir, 0o700))
	writeFile(t, filepath.Join(keysDir, "alice"), alice.line+"\n")
	writeFile(t, filepath.Join(keysDir, "bob"), `command="bob-only" `+bob.line+"\n")
	a, err := authn.New(&authn.Config{
		AuthorizedKeys: &authn.AuthorizedKeysConfig{UserFile: authn.UserFilePattern(keysDir + "/%u")},
		Penalties:      &authn.PenaltyConfig{Disabled: true},
		Logger:         discard(),
	})
	require.NoError(t, err)
	s := startServer(t, a)
	tests := []struct {
		user string
		k    *key
		ok   bool
	}{
		{"alice", alice, true},
		{"bob", bob, true},
		{"alice", bob, false},
		{"bob", alice, false},
		{"carol", alice, false},
		{"../keys/alice", alice, false},
	}
	for _, tt := range tests {
		t.Run(tt.user+"/"+filepath.Base(tt.k.priv), func(t *testing.T) {
			out, errOut, err := s.ssh(t, sshRun{user: tt.user, identity: tt.k.priv})
			r := s.next(t)
			if !tt.ok {
				assert.Error(t, err)
				assert.Error(t, r.err)
				return
			}
			require.NoError(t, err, errOut)
			g := grantOut(t, out)
			assert.Equal(t, tt.user, g.User)
			assert.Equal(t, filepath.Join(keysDir, tt.user)+":1", g.Keys[0].Source)
			if tt.user == "bob" {
				assert.Equal(t, "bob-only", g.ForceCommand)
			}
		})
	}
}

func TestUserFilePattern(t *testing.T) {
	f := authn.UserFilePattern("/home/%u/.ssh/authorized_keys")
	tests := []struct {
		user, want string
		ok         bool
	}{
		{"alice", "/home/alice/.ssh/authorized_keys", true},
		{"a.b-c_d", "/home/a.b-c_d/.ssh/authorized_keys", true},
		{"..", "", false},
		{".hidden", "", false},
		{"-rf", "", false},
		{"a/b", "", false},
		{"a b", "", false},
		{"", "", false},
		{strings.Repeat("a", 65), "", false},
	}
	for _, tt := range tests {
		got, ok := f(tt.user)
		if got != tt.want || ok != tt.ok {
			t.Errorf("UserFilePattern(...)(%q) = %q, %v, want %q, %v", tt.user, got, ok, tt.want, tt.ok)
		}
	}
	got, _ := authn.UserFilePattern("/k/%%u-%u")("x")
	assert.Equal(t, "/k/%u-x", got)
}

func TestAuthorizedKeysFileMissingAtStart(t *testing.T) {
	_, err := authn.New(&authn.Config{AuthorizedKeys: &authn.AuthorizedKeysConfig{Files: []string{"/nonexistent/authorized_keys"}}, Logger: discard()})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "/nonexistent/authorized_keys")
}
