package authn_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dockssh/dockssh/authn"
)

// fileUnusableMsg is the error record written once for each problem that
// makes a configured file unusable.
const fileUnusableMsg = "authn: file cannot be used; refusing the logins it governs until it is fixed"

// governedFile is one kind of file authn re-reads, set up so that its
// good version lets one login in.
type governedFile struct {
	name string
	// setup writes the good version under dir and returns the Config, the
	// file's path and contents, and the login the file governs.
	setup func(t *testing.T, dir string) (cfg *authn.Config, path, good string, login func(*authn.Authenticator) error)
}

func governedFiles(t *testing.T) []governedFile {
	keys := t.TempDir()
	k := keygen(t, keys, "alice", "ed25519")
	ca := keygen(t, keys, "ca", "ed25519")
	cert := certify(t, ca, k, "alice-cert", "-n", "alice")
	pwHash := mustBcrypt(t, "pw")
	keyLogin := func(a *authn.Authenticator) error {
		_, err := callbacks(a).PublicKeyCallback(conn("alice"), k.public)
		return err
	}
	return []governedFile{
		{"authorized_keys Files", func(t *testing.T, dir string) (*authn.Config, string, string, func(*authn.Authenticator) error) {
			path := writeFile(t, filepath.Join(dir, "authorized_keys"), k.line+"\n")
			return &authn.Config{AuthorizedKeys: &authn.AuthorizedKeysConfig{Files: []string{path}}}, path, k.line + "\n", keyLogin
		}},
		{"authorized_keys UserFile", func(t *testing.T, dir string) (*authn.Config, string, string, func(*authn.Authenticator) error) {
			require.NoError(t, os.Mkdir(filepath.Join(dir, "keys"), 0o700))
			path := writeFile(t, filepath.Join(dir, "keys", "alice"), k.line+"\n")
			cfg := &authn.Config{AuthorizedKeys: &authn.AuthorizedKeysConfig{UserFile: authn.UserFilePattern(filepath.Join(dir, "keys", "%u"))}}
			return cfg, path, k.line + "\n", keyLogin
		}},
		{"users file", func(t *testing.T, dir string) (*authn.Config, string, string, func(*authn.Authenticator) error) {
			good := "alice:" + pwHash + "\n"
			path := writeFile(t, filepath.Join(dir, "users"), good)
			return &authn.Config{Passwords: &authn.PasswordConfig{File: path}}, path, good, func(a *authn.Authenticator) error {
				_, err := callbacks(a).PasswordCallback(conn("alice"), []byte("pw"))
				return err
			}
		}},
		{"trusted CA keys file", func(t *testing.T, dir string) (*authn.Config, string, string, func(*authn.Authenticator) error) {
			path := writeFile(t, filepath.Join(dir, "ca_keys"), ca.line+"\n")
			return &authn.Config{Certificates: &authn.CertificateConfig{TrustedCAKeysFile: path}}, path, ca.line + "\n", func(a *authn.Authenticator) error {
				_, err := callbacks(a).PublicKeyCallback(conn("alice"), cert)
				return err
			}
		}},
		{"revoked keys file", func(t *testing.T, dir string) (*authn.Config, string, string, func(*authn.Authenticator) error) {
			good := "# nothing revoked\n"
			path := writeFile(t, filepath.Join(dir, "revoked"), good)
			return &authn.Config{AuthorizedKeys: &authn.AuthorizedKeysConfig{Content: k.line}, RevokedKeysFile: path}, path, good, keyLogin
		}},
	}
}

// breakage makes a file unusable after start and repairs it.
type breakage struct {
	name   string
	damage func(t *testing.T, path, good string)
	fix    func(t *testing.T, path, good string)
	// logged: the problem is worth an error record (a removed file is
	// simply empty, except for the revocation list).
	logged func(file string) bool
}

func replaceWithGood(t *testing.T, path, good string) {
	t.Helper()
	require.NoError(t, os.RemoveAll(path))
	writeFile(t, path, good)
}

func always(string) bool { return true }

func breakages() []breakage {
	return []breakage{
		{
			// Root reads a mode-000 file all the same; authn must not. The
			// chmod keeps inode, size and modification time: only the
			// mode and change time tell the version apart.
			name:   "chmod 000",
			damage: func(t *testing.T, path, _ string) { require.NoError(t, os.Chmod(path, 0)) },
			fix:    func(t *testing.T, path, _ string) { require.NoError(t, os.Chmod(path, 0o600)) },
			logged: always,
		},
		{
			name:   "chmod a-r",
			damage: func(t *testing.T, path, _ string) { require.NoError(t, os.Chmod(path, 0o200)) },
			fix:    func(t *testing.T, path, _ string) { require.NoError(t, os.Chmod(path, 0o644)) },
			logged: always,
		},
		{
			name: "replaced by a directory",
			damage: func(t *testing.T, path, _ string) {
				require.NoError(t, os.Remove(path))
				require.NoError(t, os.Mkdir(path, 0o700))
			},
			fix:    replaceWithGood,
			logged: always,
		},
		{
			name:   "not a text file",
			damage: func(t *testing.T, path, good string) { writeFile(t, path, "\x00"+good) },
			fix:    func(t *testing.T, path, good string) { writeFile(t, path, good) },
			logged: always,
		},
		{
			name: "cannot be stat'ed (symlink loop)",
			damage: func(t *testing.T, path, _ string) {
				require.NoError(t, os.Remove(path))
				require.NoError(t, os.Symlink(filepath.Base(path), path))
			},
			fix:    replaceWithGood,
			logged: always,
		},
		{
			name:   "removed",
			damage: func(t *testing.T, path, _ string) { require.NoError(t, os.Remove(path)) },
			fix:    replaceWithGood,
			logged: func(file string) bool { return file == "revoked keys file" },
		},
	}
}

// TestFileGoesBadFailsClosed: when a file named in the configuration
// becomes unusable after start, the logins it governs are refused until
// it is fixed (sshd and hostkeys fail closed the same way; keeping the
// last good version would keep alive what the administrator took away),
// and the problem is logged once, not on every attempt.
func TestFileGoesBadFailsClosed(t *testing.T) {
	for _, file := range governedFiles(t) {
		for _, b := range breakages() {
			t.Run(file.name+"/"+b.name, func(t *testing.T) {
				cfg, path, good, login := file.setup(t, t.TempDir())
				log, logs := newLogger()
				cfg.Logger = log
				cfg.Penalties = &authn.PenaltyConfig{Disabled: true}
				a, err := authn.New(cfg)
				require.NoError(t, err)
				require.NoError(t, login(a), "the good version must let the login in")

				b.damage(t, path, good)
				for i := range 3 {
					assert.Error(t, login(a), "attempt %d with the file broken must be refused", i+1)
				}
				want := 0
				if b.logged(file.name) {
					want = 1
				}
				assert.Len(t, logs.find(t, map[string]string{"msg": fileUnusableMsg, "file": path}), want,
					"error records for three attempts; logs:\n%s", logs.String())

				b.fix(t, path, good)
				assert.NoError(t, login(a), "the login must work again once the file is fixed")
			})
		}
	}
}

// TestFileProblemLoggedOncePerChange: a broken file is logged again when
// it changes into another broken version or breaks another way, never
// because it is used again.
func TestFileProblemLoggedOncePerChange(t *testing.T) {
	dir := t.TempDir()
	k := keygen(t, dir, "k", "ed25519")
	path := writeFile(t, filepath.Join(dir, "authorized_keys"), k.line+"\n")
	log, logs := newLogger()
	a, err := authn.New(&authn.Config{
		AuthorizedKeys: &authn.AuthorizedKeysConfig{Files: []string{path}},
		Penalties:      &authn.PenaltyConfig{Disabled: true},
		Logger:         log,
	})
	require.NoError(t, err)
	login := func() error {
		_, err := callbacks(a).PublicKeyCallback(conn("u"), k.public)
		return err
	}
	records := func() int {
		return len(logs.find(t, map[string]string{"msg": fileUnusableMsg, "file": path}))
	}
	steps := []struct {
		name   string
		change func()
		want   int // error records so far
	}{
		{"NUL byte", func() { writeFile(t, path, "\x00one") }, 1},
		{"another version with a NUL byte", func() { writeFile(t, path, "\x00two, longer") }, 2},
		{"mode 000 as well", func() { require.NoError(t, os.Chmod(path, 0)) }, 3},
		{"symlink loop", func() {
			require.NoError(t, os.Remove(path))
			require.NoError(t, os.Symlink("authorized_keys", path))
		}, 4},
	}
	for _, st := range steps {
		st.change()
		for range 3 {
			require.Error(t, login(), st.name)
		}
		assert.Equal(t, st.want, records(), "after %s; logs:\n%s", st.name, logs.String())
	}
	replaceWithGood(t, path, k.line+"\n")
	require.NoError(t, login())
	assert.Len(t, logs.find(t, map[string]string{"msg": "authn: file is usable again; reloaded", "file": path}), 1)
	assert.Equal(t, 4, records())
}
