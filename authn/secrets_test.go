package authn_test

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/ssh"

	"github.com/dockssh/dockssh/authn"
)

func canary(tb testing.TB) string {
	tb.Helper()
	b := make([]byte, 12)
	_, err := rand.Read(b)
	require.NoError(tb, err)
	return "CANARY" + hex.EncodeToString(b)
}

// privateKeyLines returns the base64 lines of a private key file: none
// of them may ever show up in a log or an error.
func privateKeyLines(tb testing.TB, path string) []string {
	tb.Helper()
	data, err := os.ReadFile(path)
	require.NoError(tb, err)
	var out []string
	for _, l := range strings.Split(string(data), "\n") {
		if l != "" && !strings.HasPrefix(l, "-----") {
			out = append(out, l)
		}
	}
	require.NotEmpty(tb, out)
	return out
}

func assertNoSecret(tb testing.TB, where, text string, secrets ...string) {
	tb.Helper()
	for _, s := range secrets {
		if strings.Contains(text, s) {
			tb.Errorf("%s contains secret %q:\n%s", where, s, text)
		}
	}
}

// TestNoSecretsInLogsOrErrors drives every mechanism with canary
// passwords and keys through the real ssh client and x/crypto, with the
// logger at debug level, and checks that no canary reaches a log line or
// an error.
func TestNoSecretsInLogsOrErrors(t *testing.T) {
	requireTool(t, "ssh")
	dir := t.TempDir()
	k := keygen(t, dir, "k", "ed25519")
	unknownKey := keygen(t, dir, "unknown", "rsa")
	good, bad, clearPw := canary(t), canary(t), canary(t)
	secrets := []string{good, bad, clearPw}
	secrets = append(secrets, privateKeyLines(t, k.priv)...)
	secrets = append(secrets, privateKeyLines(t, unknownKey.priv)...)
	argon := mustArgon(t, good)
	bc := mustBcrypt(t, good)
	// Parts of the hashes are not secrets in the same sense, but they do
	// not belong in logs either.
	secrets = append(secrets, argon[strings.LastIndex(argon, "$")+1:], bc[7:])

	log, logs := newLogger()
	a, err := authn.New(&authn.Config{
		Passwords: &authn.PasswordConfig{Users: []authn.PasswordUser{
			{Name: "argon", Hash: argon}, {Name: "bcrypt", Hash: bc}, {Name: "clear", Password: clearPw},
		}},
		AuthorizedKeys: &authn.AuthorizedKeysConfig{Content: k.line},
		Penalties:      &authn.PenaltyConfig{Disabled: true},
		Logger:         log,
	})
	require.NoError(t, err)
	s := startServer(t, a)
	var serverErrs []string
	for _, user := range []string{"argon", "bcrypt", "clear", "nobody"} {
		for _, pw := range []string{good, bad, clearPw, bad + strings.Repeat("x", 80)} {
			_, stderr, _ := s.ssh(t, sshRun{user: user, password: pw})
			assertNoSecret(t, "ssh stderr", stderr, secrets...)
			if r := s.next(t); r.err != nil {
				serverErrs = append(serverErrs, r.err.Error())
			}
		}
	}
	for _, id := range []*key{k, unknownKey} {
		_, _, _ = s.ssh(t, sshRun{user: "u", identity: id.priv})
		if r := s.next(t); r.err != nil {
			serverErrs = append(serverErrs, r.err.Error())
		}
	}
	// x/crypto client, several passwords on one connection.
	_, err = dial(t, s.addr, "argon", ssh.RetryableAuthMethod(ssh.Password(bad), 3))
	require.Error(t, err)
	assertNoSecret(t, "client error", err.Error(), secrets...)
	serverErrs = append(serverErrs, s.next(t).err.Error())

	require.NotEmpty(t, logs.String())
	assertNoSecret(t, "log", logs.String(), secrets...)
	assertNoSecret(t, "server errors", strings.Join(serverErrs, "\n"), secrets...)
	// The log lines still say who, from where, how and with what result.
	for _, r := range logs.find(t, map[string]string{"method": "password"}) {
		for _, attr := range []string{"user", "remote", "method", "result"} {
			assert.Contains(t, r, attr)
		}
	}
	for _, r := range logs.find(t, map[string]string{"method": "publickey"}) {
		assert.Contains(t, r, "fingerprint")
	}
}

// TestNoSecretsInConfigErrors feeds canary passwords into configuration
// paths that fail.
func TestNoSecretsInConfigErrors(t *testing.T) {
	c := canary(t)
	log, logs := newLogger()
	var errs []error
	_, err := authn.New(&authn.Config{Passwords: &authn.PasswordConfig{Users: []authn.PasswordUser{{Name: "u", Password: c, Hash: "$2b$x"}}}, Logger: log})
	errs = append(errs, err)
	_, err = authn.New(&authn.Config{Passwords: &authn.PasswordConfig{Users: []authn.PasswordUser{{Name: "u", Password: strings.Repeat(c, 100)}}}, Logger: log})
	errs = append(errs, err)
	_, err = authn.New(&authn.Config{Passwords: &authn.PasswordConfig{Users: []authn.PasswordUser{{Name: "u", Hash: "$argon2id$v=19$m=1,t=1,p=1$" + c + "$" + c}}}, Logger: log})
	errs = append(errs, err)
	for _, tuples := range []string{"u:" + c + `\x`, "u:" + c + ";u:" + c, "u:" + c + ";" + c, "u:" + c + `\`, ":" + c} {
		_, err = authn.ParseAuthTuples(tuples)
		errs = append(errs, err)
		_, err = authn.ConfigFromEnv(env(map[string]string{"AUTH_MECHANISM": "multiUser", "AUTH_TUPLES": tuples}))
		errs = append(errs, err)
	}
	path := writeFile(t, t.TempDir()+"/users", "u:"+c+"\nv:$2b$"+c+"\nw:$argon2id$v=19$m=8,t=1,p=1$"+c+"\n")
	_, err = authn.New(&authn.Config{Passwords: &authn.PasswordConfig{File: path}, Logger: log})
	require.NoError(t, err) // bad lines are refused and logged, not fatal
	for i, err := range errs {
		require.Error(t, err, "case %d", i)
		assertNoSecret(t, fmt.Sprintf("error %d", i), err.Error(), c)
	}
	assertNoSecret(t, "log", logs.String(), c)

	u := authn.PasswordUser{Name: "u", Password: c}
	for _, s := range []string{fmt.Sprint(u), fmt.Sprintf("%v %+v %#v %s", u, u, u, u)} {
		assertNoSecret(t, "formatted PasswordUser", s, c)
	}
	log.Info("user", "u", u)
	assertNoSecret(t, "logged PasswordUser", logs.String(), c)
}

// TestNoSecretsProperty: random passwords, random users, every outcome;
// nothing of the passwords is logged or returned.
func TestNoSecretsProperty(t *testing.T) {
	log, logs := newLogger()
	known := canary(t)
	a, err := authn.New(&authn.Config{
		Passwords: &authn.PasswordConfig{Users: []authn.PasswordUser{{Name: "u", Password: known}, {Name: "h", Hash: mustBcrypt(t, known)}}},
		Logger:    log,
	})
	require.NoError(t, err)
	cb := callbacks(a)
	var all []string
	for i := range 200 {
		pw := canary(t)
		if i%10 == 0 {
			pw = known
		}
		all = append(all, pw)
		user := []string{"u", "h", "nobody", pw[:10]}[i%4]
		c := connFrom(user, fmt.Sprintf("192.0.2.%d:1", i%50))
		_, err := cb.PasswordCallback(c, []byte(pw))
		cb.AuthLogCallback(c, "password", err)
		if err != nil {
			assertNoSecret(t, "error", err.Error(), pw)
		}
	}
	text := logs.String()
	for _, pw := range all {
		// user names in this test start with pw[:10] = "CANARY" + 4 hex
		// digits; the rest of the password must not appear.
		if strings.Contains(text, pw[10:]) {
			t.Fatalf("log contains password tail %q", pw[10:])
		}
	}
}
