package authn_test

import (
	"log/slog"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dockssh/dockssh/authn"
)

func env(m map[string]string) authn.LookupFunc {
	return func(k string) (string, bool) {
		v, ok := m[k]
		return v, ok
	}
}

func TestParseAuthTuples(t *testing.T) {
	tests := []struct {
		in   string
		want []authn.PasswordUser
		err  string
	}{
		{in: "jeroen:thefather;luke:theforce", want: []authn.PasswordUser{{Name: "jeroen", Password: "thefather"}, {Name: "luke", Password: "theforce"}}},
		{in: "a:b;", want: []authn.PasswordUser{{Name: "a", Password: "b"}}},
		{in: ";;a:b;;", want: []authn.PasswordUser{{Name: "a", Password: "b"}}},
		{in: "a:pass:with:colons", want: []authn.PasswordUser{{Name: "a", Password: "pass:with:colons"}}},
		{in: `a:semi\;colon`, want: []authn.PasswordUser{{Name: "a", Password: "semi;colon"}}},
		{in: `a:back\\slash`, want: []authn.PasswordUser{{Name: "a", Password: `back\slash`}}},
		{in: `a:escaped\:colon`, want: []authn.PasswordUser{{Name: "a", Password: "escaped:colon"}}},
		{in: `dom\:user:pw`, want: []authn.PasswordUser{{Name: "dom:user", Password: "pw"}}},
		{in: `a: spaces kept `, want: []authn.PasswordUser{{Name: "a", Password: " spaces kept "}}},
		{in: "", err: "holds no user"},
		{in: ";", err: "holds no user"},
		{in: "nocolon", err: "tuple 1 has no ':'"},
		{in: "a:b;nocolon", err: "tuple 2 has no ':'"},
		{in: ":pw", err: "empty user"},
		{in: "a:", err: "empty password"},
		{in: "a:b;a:c", err: "repeats user"},
		{in: `a:b\n`, err: "backslash must be followed"},
		{in: `a:b\`, err: "lone backslash"},
		{in: "a\tb:c\x01", want: []authn.PasswordUser{{Name: "a\tb", Password: "c\x01"}}, err: "control character"},
	}
	for _, tt := range tests {
		got, err := authn.ParseAuthTuples(tt.in)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("ParseAuthTuples(%q) = %v, %v, want error containing %q", tt.in, got, err, tt.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("ParseAuthTuples(%q) error %v", tt.in, err)
			continue
		}
		assert.Equal(t, tt.want, got, "ParseAuthTuples(%q)", tt.in)
	}
}

func TestConfigFromEnv(t *testing.T) {
	dir := t.TempDir()
	k := keygen(t, dir, "k", "ed25519")
	keysPath := writeFile(t, dir+"/authorized_keys", k.line+"\n")
	tests := []struct {
		name string
		env  map[string]string
		err  string
		want func(t *testing.T, c *authn.Config)
	}{
		{name: "unset", env: map[string]string{}, err: "AUTH_MECHANISM is not set"},
		{name: "unknown", env: map[string]string{"AUTH_MECHANISM": "magic"}, err: `unknown AUTH_MECHANISM "magic"`},
		{name: "noAuth", env: map[string]string{"AUTH_MECHANISM": "noAuth"}, want: func(t *testing.T, c *authn.Config) {
			assert.True(t, c.InsecureNoAuthentication)
		}},
		{name: "simpleAuth", env: map[string]string{"AUTH_MECHANISM": "simpleAuth", "AUTH_USER": "jeroen", "AUTH_PASSWORD": "1234"}, want: func(t *testing.T, c *authn.Config) {
			assert.Equal(t, []authn.PasswordUser{{Name: "jeroen", Password: "1234"}}, c.Passwords.Users)
		}},
		{name: "simpleAuth without password", env: map[string]string{"AUTH_MECHANISM": "simpleAuth", "AUTH_USER": "jeroen"}, err: "AUTH_PASSWORD is required"},
		{name: "simpleAuth without user", env: map[string]string{"AUTH_MECHANISM": "simpleAuth", "AUTH_PASSWORD": "x"}, err: "AUTH_USER is required"},
		{name: "multiUser", env: map[string]string{"AUTH_MECHANISM": "multiUser", "AUTH_TUPLES": "jeroen:thefather;luke:theforce"}, want: func(t *testing.T, c *authn.Config) {
			assert.Len(t, c.Passwords.Users, 2)
		}},
		{name: "multiUser without tuples", env: map[string]string{"AUTH_MECHANISM": "multiUser"}, err: "AUTH_TUPLES is required"},
		{name: "publicKey path", env: map[string]string{"AUTH_MECHANISM": "publicKey", "AUTHORIZED_KEYS": keysPath}, want: func(t *testing.T, c *authn.Config) {
			assert.Equal(t, []string{keysPath}, c.AuthorizedKeys.Files)
		}},
		{name: "publicKey path that starts like a key type", env: map[string]string{"AUTH_MECHANISM": "publicKey", "AUTHORIZED_KEYS": "ssh-ed25519/keys"}, want: func(t *testing.T, c *authn.Config) {
			assert.Equal(t, []string{"ssh-ed25519/keys"}, c.AuthorizedKeys.Files)
		}},
		{name: "publicKey content", env: map[string]string{"AUTH_MECHANISM": "publicKey", "AUTHORIZED_KEYS": k.line}, want: func(t *testing.T, c *authn.Config) {
			assert.Equal(t, k.line, c.AuthorizedKeys.Content)
		}},
		{name: "publicKey multi-line content with options", env: map[string]string{"AUTH_MECHANISM": "publicKey", "AUTHORIZED_KEYS": "restrict " + k.line + "\n" + k.line}, want: func(t *testing.T, c *authn.Config) {
			assert.Empty(t, c.AuthorizedKeys.Files)
			assert.NotEmpty(t, c.AuthorizedKeys.Content)
		}},
		{name: "publicKey without keys", env: map[string]string{"AUTH_MECHANISM": "publicKey"}, err: "AUTHORIZED_KEYS is required"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := authn.ConfigFromEnv(env(tt.env))
			if tt.err != "" {
				require.Error(t, err)
				assert.Contains(t, err.Error(), tt.err)
				assert.Nil(t, c)
				return
			}
			require.NoError(t, err)
			tt.want(t, c)
		})
	}
}

// TestDockerSSHCompatOpenSSH configures from docker-ssh variables and
// logs in with the real client, for each mechanism.
func TestDockerSSHCompatOpenSSH(t *testing.T) {
	requireTool(t, "ssh")
	dir := t.TempDir()
	k := keygen(t, dir, "k", "ed25519")
	keysPath := writeFile(t, dir+"/authorized_keys", k.line+"\n")
	tests := []struct {
		name string
		env  map[string]string
		run  sshRun
	}{
		{"simpleAuth", map[string]string{"AUTH_MECHANISM": "simpleAuth", "AUTH_USER": "jeroen", "AUTH_PASSWORD": "1234"}, sshRun{user: "jeroen", password: "1234"}},
		{"multiUser", map[string]string{"AUTH_MECHANISM": "multiUser", "AUTH_TUPLES": `jeroen:thefather;luke:the\;force:x`}, sshRun{user: "luke", password: "the;force:x"}},
		{"publicKey file", map[string]string{"AUTH_MECHANISM": "publicKey", "AUTHORIZED_KEYS": keysPath}, sshRun{user: "any", identity: k.priv}},
		{"publicKey content", map[string]string{"AUTH_MECHANISM": "publicKey", "AUTHORIZED_KEYS": k.line}, sshRun{user: "any", identity: k.priv}},
		{"noAuth", map[string]string{"AUTH_MECHANISM": "noAuth"}, sshRun{user: "whoever"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := authn.ConfigFromEnv(env(tt.env))
			require.NoError(t, err)
			cfg.Logger = discard()
			a, err := authn.New(cfg)
			require.NoError(t, err)
			s := startServer(t, a)
			out, errOut, err := s.ssh(t, tt.run)
			require.NoError(t, err, errOut)
			require.NoError(t, s.next(t).err)
			assert.Equal(t, tt.run.user, grantOut(t, out).User)
			// docker-ssh accepted a wrong password with noAuth only.
			if tt.run.password != "" {
				tt.run.password += "-wrong"
				_, _, err := s.ssh(t, tt.run)
				assert.Error(t, err)
				assert.Error(t, s.next(t).err)
			}
		})
	}
}

// TestInsecureNoAuthentication: an error at start-up, a warning per login.
func TestInsecureNoAuthentication(t *testing.T) {
	requireTool(t, "ssh")
	log, logs := newLogger()
	a, err := authn.New(&authn.Config{InsecureNoAuthentication: true, Logger: log})
	require.NoError(t, err)
	start := logs.find(t, map[string]string{"level": "ERROR"})
	require.Len(t, start, 1)
	assert.Contains(t, start[0]["msg"], "DISABLED")
	s := startServer(t, a)
	for _, user := range []string{"root", "anyone"} {
		out, errOut, err := s.ssh(t, sshRun{user: user})
		require.NoError(t, err, errOut)
		g := grantOut(t, out)
		assert.Equal(t, user, g.User)
		assert.True(t, g.NoAuthentication)
		assert.Equal(t, []authn.Method{authn.MethodNone}, g.Methods)
		s.next(t)
	}
	assert.Len(t, logs.find(t, map[string]string{"level": "WARN", "method": "none", "result": "success"}), 2)
}

// FuzzParseAuthTuples: never panics, and whatever it accepts survives a
// round trip through the documented escaping.
func FuzzParseAuthTuples(f *testing.F) {
	for _, s := range []string{"jeroen:thefather;luke:theforce", `a\:b:c\;d\\e`, "a:b:c", ";;", `\`, "a:", ":b"} {
		f.Add(s)
	}
	esc := strings.NewReplacer(`\`, `\\`, `:`, `\:`, `;`, `\;`)
	f.Fuzz(func(t *testing.T, s string) {
		users, err := authn.ParseAuthTuples(s)
		if err != nil {
			return
		}
		var parts []string
		for _, u := range users {
			if u.Name == "" || u.Password == "" {
				t.Fatalf("ParseAuthTuples(%q) accepted an empty field", s)
			}
			parts = append(parts, esc.Replace(u.Name)+":"+esc.Replace(u.Password))
		}
		again, err := authn.ParseAuthTuples(strings.Join(parts, ";"))
		require.NoError(t, err)
		require.Equal(t, users, again)
	})
}

// TestNilLoggerMeansSlogDefault: a nil Config.Logger sends authn's lines
// to slog.Default(), as a nil logger does in every package of the module;
// slog.New(slog.DiscardHandler) is how to silence them.
func TestNilLoggerMeansSlogDefault(t *testing.T) {
	log, logs := newLogger()
	prev := slog.Default()
	slog.SetDefault(log)
	t.Cleanup(func() { slog.SetDefault(prev) })
	_, err := authn.New(&authn.Config{InsecureNoAuthentication: true})
	require.NoError(t, err)
	assert.Contains(t, logs.String(), "authentication is DISABLED")
}
