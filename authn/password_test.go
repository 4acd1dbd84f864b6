package authn_test

import (
	"log/slog"
	"net"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/bcrypt"
	"golang.org/x/crypto/ssh"

	"github.com/dockssh/dockssh/authn"
)

var fastArgon = &authn.Argon2Params{Memory: 8 * 1024, Time: 1, Threads: 1}

func mustArgon(tb testing.TB, pw string) string {
	tb.Helper()
	h, err := authn.HashArgon2id([]byte(pw), fastArgon)
	require.NoError(tb, err)
	return h
}

func mustBcrypt(tb testing.TB, pw string) string {
	tb.Helper()
	h, err := bcrypt.GenerateFromPassword([]byte(pw), bcrypt.MinCost)
	require.NoError(tb, err)
	return string(h)
}

// TestPasswordOpenSSH logs in with the real ssh client through
// SSH_ASKPASS, for each kind of credential.
func TestPasswordOpenSSH(t *testing.T) {
	requireTool(t, "ssh")
	const pw = "s3cret: with; odd \\ chars"
	users := []authn.PasswordUser{
		{Name: "clear", Password: pw},
		{Name: "argon", Hash: mustArgon(t, pw)},
		{Name: "bcrypt", Hash: mustBcrypt(t, pw)},
	}
	log, _ := newLogger()
	a, err := authn.New(&authn.Config{
		Passwords: &authn.PasswordConfig{Users: users},
		Penalties: &authn.PenaltyConfig{Disabled: true},
		Logger:    log,
	})
	require.NoError(t, err)
	s := startServer(t, a)
	tests := []struct {
		user, password string
		ok             bool
	}{
		{"clear", pw, true},
		{"argon", pw, true},
		{"bcrypt", pw, true},
		{"clear", pw + "x", false},
		{"argon", "wrong", false},
		{"bcrypt", strings.ToUpper(pw), false},
		{"nobody", pw, false},
	}
	for _, tt := range tests {
		t.Run(tt.user+"/"+map[bool]string{true: "ok", false: "refused"}[tt.ok], func(t *testing.T) {
			out, errOut, err := s.ssh(t, sshRun{user: tt.user, password: tt.password})
			r := s.next(t)
			if tt.ok {
				require.NoError(t, err, "ssh stderr: %s", errOut)
				require.NoError(t, r.err)
				g := grantOut(t, out)
				assert.Equal(t, tt.user, g.User)
				assert.Equal(t, []authn.Method{authn.MethodPassword}, g.Methods)
				assert.True(t, g.PTY && g.PortForwarding && g.AgentForwarding)
				assert.Equal(t, tt.user, r.grant.User)
			} else {
				require.Error(t, err, "ssh succeeded: %s", out)
				assert.True(t, isAuthFailure(r.err), "server: %v", r.err)
			}
		})
	}
}

// fakeConn is the ConnMetadata of a connection for calling the callbacks
// directly.
type fakeConn struct {
	user   string
	remote string
}

func (f fakeConn) User() string          { return f.user }
func (f fakeConn) SessionID() []byte     { return []byte("session") }
func (f fakeConn) ClientVersion() []byte { return []byte("SSH-2.0-test") }
func (f fakeConn) ServerVersion() []byte { return []byte("SSH-2.0-authn") }
func (f fakeConn) RemoteAddr() net.Addr {
	return net.TCPAddrFromAddrPort(netip.MustParseAddrPort(f.remote))
}
func (f fakeConn) LocalAddr() net.Addr { return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 22} }

func conn(user string) fakeConn { return fakeConn{user: user, remote: "192.0.2.1:50000"} }

func connFrom(user, remote string) fakeConn { return fakeConn{user: user, remote: remote} }

// callbacks returns a ServerConfig filled by a, to call its callbacks
// directly.
func callbacks(a *authn.Authenticator) *ssh.ServerConfig {
	sc := &ssh.ServerConfig{}
	a.Apply(sc)
	return sc
}

func discard() *slog.Logger { return slog.New(slog.DiscardHandler) }

func TestBcryptLongPasswordRefused(t *testing.T) {
	long := strings.Repeat("a", 72)
	h := mustBcrypt(t, long) // bcrypt of exactly 72 bytes
	a, err := authn.New(&authn.Config{
		Passwords: &authn.PasswordConfig{Users: []authn.PasswordUser{{Name: "u", Hash: h}}},
		Penalties: &authn.PenaltyConfig{Disabled: true},
		Logger:    discard(),
	})
	require.NoError(t, err)
	cb := callbacks(a)
	_, err = cb.PasswordCallback(conn("u"), []byte(long))
	assert.NoError(t, err, "72 bytes must work")
	// bcrypt itself ignores everything after byte 72: this would pass.
	require.NoError(t, bcrypt.CompareHashAndPassword([]byte(h), []byte(long+"anything")))
	_, err = cb.PasswordCallback(conn("u"), []byte(long+"anything"))
	assert.Error(t, err, "a password longer than 72 bytes must be refused, not truncated")
}

func TestPasswordConfigErrors(t *testing.T) {
	tests := []struct {
		name  string
		users []authn.PasswordUser
		want  string
	}{
		{"empty", nil, "neither Users nor File"},
		{"both", []authn.PasswordUser{{Name: "u", Password: "p", Hash: mustBcrypt(t, "p")}}, "not both"},
		{"none", []authn.PasswordUser{{Name: "u"}}, "empty password"},
		{"dup", []authn.PasswordUser{{Name: "u", Password: "p"}, {Name: "u", Password: "q"}}, "twice"},
		{"badhash", []authn.PasswordUser{{Name: "u", Hash: "$1$md5crypt$xxxx"}}, "unsupported password hash"},
		{"argon2i", []authn.PasswordUser{{Name: "u", Hash: "$argon2i$v=19$m=8,t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA"}}, "argon2id"},
		{"hugemem", []authn.PasswordUser{{Name: "u", Hash: "$argon2id$v=19$m=4194304,t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA"}}, "above the limit"},
		{"emptyname", []authn.PasswordUser{{Name: "", Password: "p"}}, "empty user name"},
		{"ctrlname", []authn.PasswordUser{{Name: "a\nb", Password: "p"}}, "control character"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := authn.New(&authn.Config{Passwords: &authn.PasswordConfig{Users: tt.users}, Logger: discard()})
			require.Error(t, err)
			assert.Contains(t, err.Error(), tt.want)
			assert.True(t, strings.HasPrefix(err.Error(), "authn: "), "error %q lacks the package prefix", err)
		})
	}
}

func TestUsersFile(t *testing.T) {
	dir := t.TempDir()
	path := writeFile(t, dir+"/users", strings.Join([]string{
		"# users",
		"",
		"alice:" + mustArgon(t, "alice-pw"),
		"bob:" + mustBcrypt(t, "bob-pw"),
		"carol:clear-text-not-allowed",
		"dave",
		"eve:" + mustBcrypt(t, "e1"),
		"eve:" + mustBcrypt(t, "e2"),
	}, "\n")+"\n")
	log, logs := newLogger()
	a, err := authn.New(&authn.Config{
		Passwords: &authn.PasswordConfig{File: path},
		Penalties: &authn.PenaltyConfig{Disabled: true},
		Logger:    log,
	})
	require.NoError(t, err)
	cb := callbacks(a)
	check := func(user, pw string, want bool) {
		t.Helper()
		_, err := cb.PasswordCallback(conn(user), []byte(pw))
		assert.Equal(t, want, err == nil, "login %q: err %v", user, err)
	}
	check("alice", "alice-pw", true)
	check("bob", "bob-pw", true)
	check("carol", "clear-text-not-allowed", false)
	check("eve", "e1", false)
	check("eve", "e2", false)
	for _, line := range []string{":5", ":6", ":8"} {
		assert.NotEmpty(t, logs.find(t, map[string]string{"at": path + line}), "line %s should be logged as refused", line)
	}

	// Changed file: re-read on the next attempt, no restart.
	time.Sleep(10 * time.Millisecond)
	writeFile(t, path, "alice:"+mustBcrypt(t, "new-pw")+"\n")
	check("alice", "alice-pw", false)
	check("alice", "new-pw", true)
	check("bob", "bob-pw", false)

	// A file that is not text refuses its users until it is fixed.
	writeFile(t, path, "alice:\x00garbage\n")
	check("alice", "new-pw", false)
	assert.NotEmpty(t, logs.find(t, map[string]string{"msg": fileUnusableMsg, "file": path}))
	writeFile(t, path, "alice:"+mustBcrypt(t, "new-pw")+"\n")
	check("alice", "new-pw", true)
}

// TestUsersFileNameListedTwice: a name on two lines of a users file is
// refused on both, whichever of them parses; the other users are not
// affected.
func TestUsersFileNameListedTwice(t *testing.T) {
	good, other := mustBcrypt(t, "pw"), mustBcrypt(t, "other-pw")
	tests := []struct {
		name  string
		lines []string
	}{
		{"bad hash then good", []string{"alice:$2b$10$not-a-hash", "alice:" + good}},
		{"good then bad hash", []string{"alice:" + good, "alice:clear-text"}},
		{"good twice", []string{"alice:" + good, "alice:" + other}},
		{"name alone then good", []string{"alice", "alice:" + good}},
		{"three lines", []string{"alice:x", "alice:" + good, "alice:" + other}},
		{"apart", []string{"alice:" + good, "bob:" + good, "alice:" + other}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			lines := append([]string{"carol:" + good}, tt.lines...)
			path := writeFile(t, t.TempDir()+"/users", strings.Join(lines, "\n")+"\n")
			log, logs := newLogger()
			a, err := authn.New(&authn.Config{
				Passwords: &authn.PasswordConfig{File: path},
				Penalties: &authn.PenaltyConfig{Disabled: true},
				Logger:    log,
			})
			require.NoError(t, err)
			cb := callbacks(a)
			for _, pw := range []string{"pw", "other-pw"} {
				_, err := cb.PasswordCallback(conn("alice"), []byte(pw))
				assert.Error(t, err, "alice with %q must be refused", pw)
			}
			_, err = cb.PasswordCallback(conn("carol"), []byte("pw"))
			assert.NoError(t, err, "carol is listed once")
			assert.Contains(t, logs.String(), "user also listed on line 2", "the repeated line must be logged")
		})
	}
}

func TestMaxConcurrentHashes(t *testing.T) {
	// One slot, no waiting: while one verification runs, another fails
	// fast without computing anything.
	slow := &authn.Argon2Params{Memory: 64 * 1024, Time: 4, Threads: 1}
	h, err := authn.HashArgon2id([]byte("pw"), slow)
	require.NoError(t, err)
	a, err := authn.New(&authn.Config{
		Passwords: &authn.PasswordConfig{
			Users:               []authn.PasswordUser{{Name: "u", Hash: h}},
			MaxConcurrentHashes: 1,
			HashWait:            -1,
		},
		Penalties: &authn.PenaltyConfig{Disabled: true},
		Logger:    discard(),
	})
	require.NoError(t, err)
	cb := callbacks(a)
	errs := make(chan error, 8)
	for range 8 {
		go func() {
			_, err := cb.PasswordCallback(conn("u"), []byte("wrong"))
			errs <- err
		}()
	}
	busy := 0
	for range 8 {
		if err := <-errs; err != nil && strings.Contains(err.Error(), "too many password verifications") {
			busy++
		}
	}
	assert.Positive(t, busy, "with one slot and eight concurrent attempts some must fail fast")
	assert.Less(t, busy, 8, "at least one attempt must have been evaluated")
}

func TestHashArgon2idFormat(t *testing.T) {
	h, err := authn.HashArgon2id([]byte("pw"), nil)
	require.NoError(t, err)
	assert.True(t, strings.HasPrefix(h, "$argon2id$v=19$m=65536,t=3,p=4$"), "hash %q", h)
	parts := strings.Split(h, "$")
	require.Len(t, parts, 6)
	assert.Len(t, parts[4], 22) // 16 bytes unpadded base64
	assert.Len(t, parts[5], 43) // 32 bytes
	_, err = authn.HashArgon2id([]byte("pw"), &authn.Argon2Params{Memory: 1 << 30})
	assert.Error(t, err)
}

var _ ssh.ConnMetadata = fakeConn{}

func mustBcryptCost(tb testing.TB, pw string, cost int) string {
	tb.Helper()
	h, err := bcrypt.GenerateFromPassword([]byte(pw), cost)
	require.NoError(tb, err)
	return string(h)
}

// TestUsersAndFile: an account in both Users and File uses the Users
// entry; the others come from the file.
func TestUsersAndFile(t *testing.T) {
	path := writeFile(t, t.TempDir()+"/users", "alice:"+mustBcrypt(t, "file-pw")+"\nbob:"+mustBcrypt(t, "bob-pw")+"\n")
	a, err := authn.New(&authn.Config{
		Passwords: &authn.PasswordConfig{Users: []authn.PasswordUser{{Name: "alice", Password: "config-pw"}}, File: path},
		Penalties: &authn.PenaltyConfig{Disabled: true},
		Logger:    discard(),
	})
	require.NoError(t, err)
	cb := callbacks(a)
	for _, tt := range []struct {
		user, pw string
		ok       bool
	}{{"alice", "config-pw", true}, {"alice", "file-pw", false}, {"bob", "bob-pw", true}} {
		_, err := cb.PasswordCallback(conn(tt.user), []byte(tt.pw))
		if (err == nil) != tt.ok {
			t.Errorf("PasswordCallback(%q, %q) = %v, want ok=%v", tt.user, tt.pw, err, tt.ok)
		}
	}

	// While the file cannot be used, its users are refused; the file
	// does not govern the Users entries, which keep working.
	require.NoError(t, os.Chmod(path, 0))
	for _, tt := range []struct {
		user, pw string
		ok       bool
	}{{"alice", "config-pw", true}, {"alice", "file-pw", false}, {"bob", "bob-pw", false}} {
		_, err := cb.PasswordCallback(conn(tt.user), []byte(tt.pw))
		if (err == nil) != tt.ok {
			t.Errorf("users file mode 000: PasswordCallback(%q, %q) = %v, want ok=%v", tt.user, tt.pw, err, tt.ok)
		}
	}
}

// TestAccountName: with AccountName, the account behind a decorated user
// name ("alice+web1") authenticates, and the Grant names the account.
func TestAccountName(t *testing.T) {
	a, err := authn.New(&authn.Config{
		Passwords:   &authn.PasswordConfig{Users: []authn.PasswordUser{{Name: "alice", Password: "pw"}}},
		Penalties:   &authn.PenaltyConfig{Disabled: true},
		Logger:      discard(),
		AccountName: func(user string) string { account, _, _ := strings.Cut(user, "+"); return account },
	})
	require.NoError(t, err)
	cb := callbacks(a)
	perms, err := cb.PasswordCallback(conn("alice+web1"), []byte("pw"))
	require.NoError(t, err, "alice+web1 with alice's password")
	g, err := authn.GrantFrom(perms)
	require.NoError(t, err)
	assert.Equal(t, "alice", g.User)
	_, err = cb.PasswordCallback(conn("mallory+alice"), []byte("pw"))
	assert.Error(t, err, "mallory+alice must not use alice's password")
}
