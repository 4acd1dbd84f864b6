package hostkeys_test

import (
	"bytes"
	"crypto/ed25519"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/ssh"

	"github.com/dockssh/dockssh/hostkeys"
)

// genKey makes a private key file with a real tool: ssh-keygen for OpenSSH
// and PEM formats, openssl for PKCS#8.
func genKey(tb testing.TB, path string, tool string, args ...string) {
	tb.Helper()
	bin := requireTool(tb, tool)
	out, err := exec.Command(bin, args...).CombinedOutput()
	require.NoError(tb, err, "%s %v: %s", tool, args, out)
	require.NoError(tb, os.Chmod(path, 0o600))
}

func TestLoadHostKeyFormats(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	p := func(name string) string { return filepath.Join(dir, name) }
	tests := []struct {
		name       string
		file       string
		tool       string
		args       []string
		passphrase []byte
		wantType   string
		wantErr    error
		errText    string
	}{
		{name: "openssh ed25519", file: "ed", tool: "ssh-keygen", args: []string{"-q", "-t", "ed25519", "-N", "", "-f", p("ed")}, wantType: ssh.KeyAlgoED25519},
		{name: "openssh ecdsa", file: "ec", tool: "ssh-keygen", args: []string{"-q", "-t", "ecdsa", "-N", "", "-f", p("ec")}, wantType: ssh.KeyAlgoECDSA256},
		{name: "openssh rsa", file: "rsa", tool: "ssh-keygen", args: []string{"-q", "-t", "rsa", "-b", "2048", "-N", "", "-f", p("rsa")}, wantType: ssh.KeyAlgoRSA},
		{name: "PEM rsa (PKCS#1)", file: "rsa-pem", tool: "ssh-keygen", args: []string{"-q", "-t", "rsa", "-b", "2048", "-m", "PEM", "-N", "", "-f", p("rsa-pem")}, wantType: ssh.KeyAlgoRSA},
		{name: "PEM ecdsa (SEC 1)", file: "ec-pem", tool: "ssh-keygen", args: []string{"-q", "-t", "ecdsa", "-b", "384", "-m", "PEM", "-N", "", "-f", p("ec-pem")}, wantType: ssh.KeyAlgoECDSA384},
		{name: "PKCS#8 ed25519 from ssh-keygen", file: "ed-p8", tool: "ssh-keygen", args: []string{"-q", "-t", "ed25519", "-m", "PKCS8", "-N", "", "-f", p("ed-p8")}, wantType: ssh.KeyAlgoED25519},
		{name: "PKCS#8 ed25519 from openssl", file: "ossl-ed", tool: "openssl", args: []string{"genpkey", "-algorithm", "ed25519", "-out", p("ossl-ed")}, wantType: ssh.KeyAlgoED25519},
		{name: "PKCS#8 ecdsa from openssl", file: "ossl-ec", tool: "openssl", args: []string{"genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-521", "-out", p("ossl-ec")}, wantType: ssh.KeyAlgoECDSA521},

		{name: "encrypted openssh without passphrase", file: "ed-enc", tool: "ssh-keygen", args: []string{"-q", "-t", "ed25519", "-N", "s3cret-pass", "-f", p("ed-enc")}, wantErr: hostkeys.ErrPassphraseRequired},
		{name: "encrypted openssh with passphrase", file: "ed-enc2", tool: "ssh-keygen", args: []string{"-q", "-t", "ed25519", "-N", "s3cret-pass", "-f", p("ed-enc2")}, passphrase: []byte("s3cret-pass"), wantType: ssh.KeyAlgoED25519},
		{name: "encrypted openssh with wrong passphrase", file: "ed-enc3", tool: "ssh-keygen", args: []string{"-q", "-t", "ed25519", "-N", "s3cret-pass", "-f", p("ed-enc3")}, passphrase: []byte("Xq9-not-it"), wantErr: hostkeys.ErrWrongPassphrase},
		{name: "encrypted PEM rsa with passphrase", file: "rsa-pem-enc", tool: "ssh-keygen", args: []string{"-q", "-t", "rsa", "-b", "2048", "-m", "PEM", "-N", "s3cret-pass", "-f", p("rsa-pem-enc")}, passphrase: []byte("s3cret-pass"), wantType: ssh.KeyAlgoRSA},
		{name: "encrypted PEM rsa without passphrase", file: "rsa-pem-enc2", tool: "ssh-keygen", args: []string{"-q", "-t", "rsa", "-b", "2048", "-m", "PEM", "-N", "s3cret-pass", "-f", p("rsa-pem-enc2")}, wantErr: hostkeys.ErrPassphraseRequired},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			genKey(t, p(tc.file), tc.tool, tc.args...)
			signer, err := hostkeys.LoadHostKey(p(tc.file), &hostkeys.KeyConfig{Passphrase: tc.passphrase})
			switch {
			case tc.wantErr != nil:
				assert.ErrorIs(t, err, tc.wantErr)
				assert.Nil(t, signer)
				assert.Contains(t, err.Error(), p(tc.file), "the error names the file")
				if tc.passphrase != nil {
					assert.NotContains(t, err.Error(), string(tc.passphrase))
				}
				assert.NotContains(t, err.Error(), "s3cret-pass")
			case tc.errText != "":
				assert.ErrorContains(t, err, tc.errText)
			default:
				require.NoError(t, err)
				assert.Equal(t, tc.wantType, signer.PublicKey().Type())
			}
		})
	}
}

func TestLoadHostKeyRejectsPublicKeyAndGarbage(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	genKey(t, filepath.Join(dir, "k"), "ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", filepath.Join(dir, "k"))
	require.NoError(t, os.Chmod(filepath.Join(dir, "k.pub"), 0o600))
	_, err := hostkeys.LoadHostKey(filepath.Join(dir, "k.pub"), nil)
	assert.ErrorContains(t, err, "no PEM private key found")

	garbage := writeFile(t, dir, "garbage", "-----BEGIN PRIVATE KEY-----", "AAAA", "-----END PRIVATE KEY-----")
	_, err = hostkeys.LoadHostKey(garbage, nil)
	assert.Error(t, err)

	_, err = hostkeys.LoadHostKey(dir, nil)
	assert.ErrorContains(t, err, "not a regular file")
}

func TestLoadHostKeyPermissions(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := filepath.Join(dir, "ssh_host_ed25519_key")
	genKey(t, path, "ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", path)
	for _, mode := range []os.FileMode{0o640, 0o604, 0o644, 0o660, 0o610, 0o601} {
		require.NoError(t, os.Chmod(path, mode))
		_, err := hostkeys.LoadHostKey(path, nil)
		var permErr *hostkeys.KeyPermissionError
		if !errors.As(err, &permErr) {
			t.Errorf("LoadHostKey with mode %04o = %v, want *KeyPermissionError", mode, err)
			continue
		}
		assert.Equal(t, mode, permErr.Mode)
		assert.Equal(t, path, permErr.Path)
		assert.Contains(t, err.Error(), "too open")
		assert.Contains(t, err.Error(), "chmod 600 "+path)
		_, err = hostkeys.LoadOrCreateHostKey(path, nil)
		assert.ErrorAs(t, err, &permErr, "LoadOrCreateHostKey refuses it too and does not replace it")
	}
	for _, mode := range []os.FileMode{0o600, 0o400} {
		require.NoError(t, os.Chmod(path, mode))
		_, err := hostkeys.LoadHostKey(path, nil)
		assert.NoError(t, err, "mode %04o", mode)
	}
}

func TestLoadOrCreateHostKey(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "etc", "dockssh")
	path := filepath.Join(dir, "host_ed25519_key")
	logger, logs := newRecordLogger()
	signer, err := hostkeys.LoadOrCreateHostKey(path, &hostkeys.KeyConfig{Logger: logger})
	require.NoError(t, err)
	assert.Equal(t, ssh.KeyAlgoED25519, signer.PublicKey().Type())

	info, err := os.Stat(path)
	require.NoError(t, err)
	assert.Equal(t, fs.FileMode(0o600), info.Mode().Perm())
	info, err = os.Stat(dir)
	require.NoError(t, err)
	assert.Equal(t, fs.FileMode(0o700), info.Mode().Perm())
	msgs := logs.messages()
	require.Len(t, msgs, 1)
	assert.Contains(t, msgs[0], "fingerprint="+ssh.FingerprintSHA256(signer.PublicKey()))

	// The same key comes back, and the file is not rewritten.
	before, err := os.ReadFile(path)
	require.NoError(t, err)
	again, err := hostkeys.LoadOrCreateHostKey(path, &hostkeys.KeyConfig{Logger: logger})
	require.NoError(t, err)
	assert.Equal(t, signer.PublicKey().Marshal(), again.PublicKey().Marshal())
	after, err := os.ReadFile(path)
	require.NoError(t, err)
	assert.Equal(t, before, after)
	assert.Len(t, logs.messages(), 1, "no second creation")

	// OpenSSH reads the key we wrote.
	keygen := requireTool(t, "ssh-keygen")
	out, err := exec.Command(keygen, "-y", "-f", path).CombinedOutput()
	require.NoError(t, err, "%s", out)
	pub, _, _, _, err := ssh.ParseAuthorizedKey(out)
	require.NoError(t, err)
	assert.Equal(t, signer.PublicKey().Marshal(), pub.Marshal())

	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	assert.Len(t, entries, 1, "no temporary file left behind")
}

func TestLoadOrCreateHostKeyEncrypted(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "key")
	pass := []byte("correct horse")
	signer, err := hostkeys.LoadOrCreateHostKey(path, &hostkeys.KeyConfig{Passphrase: pass, Logger: discardLogger()})
	require.NoError(t, err)
	_, err = hostkeys.LoadHostKey(path, nil)
	assert.ErrorIs(t, err, hostkeys.ErrPassphraseRequired)
	again, err := hostkeys.LoadHostKey(path, &hostkeys.KeyConfig{Passphrase: pass})
	require.NoError(t, err)
	assert.Equal(t, signer.PublicKey().Marshal(), again.PublicKey().Marshal())

	keygen := requireTool(t, "ssh-keygen")
	out, err := exec.Command(keygen, "-y", "-P", string(pass), "-f", path).CombinedOutput()
	require.NoError(t, err, "ssh-keygen decrypts what we wrote: %s", out)
}

// TestLoadOrCreateHostKeyConcurrent: goroutines here and in other
// processes (this test binary, re-executed) race to create the same key;
// all end up with one and the same key.
func TestLoadOrCreateHostKeyConcurrent(t *testing.T) {
	t.Parallel()
	exe, err := os.Executable()
	require.NoError(t, err)
	path := filepath.Join(t.TempDir(), "keys", "host_key")
	const n, procs = 16, 3
	keys := make([]string, n+procs)
	errs := make([]error, n+procs)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s, err := hostkeys.LoadOrCreateHostKey(path, &hostkeys.KeyConfig{Logger: discardLogger()})
			errs[i] = err
			if err == nil {
				keys[i] = ssh.FingerprintSHA256(s.PublicKey())
			}
		}()
	}
	for i := n; i < n+procs; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cmd := exec.Command(exe, "-test.run=^$")
			cmd.Env = append(os.Environ(), "HOSTKEYS_TEST_CREATEKEY="+path)
			out, err := cmd.Output()
			errs[i] = err
			keys[i] = strings.TrimSpace(string(out))
		}()
	}
	wg.Wait()
	for i := range keys {
		require.NoError(t, errs[i], "creator %d", i)
		assert.Equal(t, keys[0], keys[i], "creator %d got another key", i)
	}
	entries, err := os.ReadDir(filepath.Dir(path))
	require.NoError(t, err)
	assert.Len(t, entries, 1, "one key file, no temporary file left")
}

// runCreateKeyChild is the child side of TestLoadOrCreateHostKeyConcurrent:
// it prints the fingerprint of the key it loaded or created.
func runCreateKeyChild(path string) int {
	s, err := hostkeys.LoadOrCreateHostKey(path, &hostkeys.KeyConfig{Logger: discardLogger()})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	fmt.Println(ssh.FingerprintSHA256(s.PublicKey()))
	return 0
}

func TestLoadOrCreateHostKeyNeverOverwrites(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := writeFile(t, dir, "key", "not a key at all")
	_, err := hostkeys.LoadOrCreateHostKey(path, nil)
	require.Error(t, err, "an unparsable key is an error, not a reason to replace it")
	data, err := os.ReadFile(path)
	require.NoError(t, err)
	assert.Equal(t, "not a key at all\n", string(data))
}

// TestHostKeyServesHandshake: a created key serves a real handshake, and the
// client sees the key that was created.
func TestHostKeyServesHandshake(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "key")
	signer, err := hostkeys.LoadOrCreateHostKey(path, &hostkeys.KeyConfig{Logger: discardLogger()})
	require.NoError(t, err)
	s := startServer(t, signer)
	c, err := net.Dial("tcp", s.addr)
	require.NoError(t, err)
	var got ssh.PublicKey
	sc, chans, reqs, err := ssh.NewClientConn(c, s.addr, &ssh.ClientConfig{
		HostKeyCallback: func(_ string, _ net.Addr, key ssh.PublicKey) error { got = key; return nil },
	})
	require.NoError(t, err)
	ssh.NewClient(sc, chans, reqs).Close()
	assert.True(t, bytes.Equal(signer.PublicKey().Marshal(), got.Marshal()))
	_, isEd := signer.PublicKey().(ssh.CryptoPublicKey).CryptoPublicKey().(ed25519.PublicKey)
	assert.True(t, isEd)
}

// TestLoadHostKeyRefusesEncryptedPKCS8: encrypted PKCS#8 is refused, with
// or without a passphrase, and the two conversions the error names produce
// a file that loads as the same key.
func TestLoadHostKeyRefusesEncryptedPKCS8(t *testing.T) {
	t.Parallel()
	keygen := requireTool(t, "ssh-keygen")
	openssl := requireTool(t, "openssl")
	sh := requireTool(t, "sh")
	tests := []struct {
		name    string
		genpkey []string
		convert string // the command of the hint that works for this key
	}{
		{"ecdsa, converted by ssh-keygen", []string{"-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"}, "ssh-keygen"},
		{"rsa, converted by ssh-keygen", []string{"-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"}, "ssh-keygen"},
		// OpenSSH 9.2 cannot read an ed25519 key in PKCS#8.
		{"ed25519, decrypted by openssl", []string{"-algorithm", "ed25519"}, "openssl"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			// A directory with a quote and a space: the hint's quoting must hold.
			dir := filepath.Join(t.TempDir(), "it's a dir")
			require.NoError(t, os.Mkdir(dir, 0o700))
			plain, enc := filepath.Join(dir, "plain"), filepath.Join(dir, "key")
			genKey(t, plain, "openssl", append(append([]string{"genpkey"}, tc.genpkey...), "-out", plain)...)
			genKey(t, enc, "openssl", "pkcs8", "-topk8", "-in", plain, "-out", enc, "-passout", "pass:s3cret-pass", "-v2", "aes-256-cbc")
			want, err := hostkeys.LoadHostKey(plain, nil)
			require.NoError(t, err)

			for _, pass := range [][]byte{nil, []byte("s3cret-pass"), []byte("Xq9-not-it")} {
				signer, err := hostkeys.LoadHostKey(enc, &hostkeys.KeyConfig{Passphrase: pass})
				require.Error(t, err)
				assert.Nil(t, signer)
				assert.NotErrorIs(t, err, hostkeys.ErrWrongPassphrase)
				assert.NotContains(t, err.Error(), "s3cret-pass")
				assert.Contains(t, err.Error(), "encrypted PKCS#8 keys are not supported")
			}
			_, err = hostkeys.LoadHostKey(enc, nil)
			quoted := "'" + strings.ReplaceAll(enc, "'", `'\''`) + "'"
			hint := map[string]string{
				"ssh-keygen": "ssh-keygen -p -f " + quoted,
				"openssl":    "openssl pkey -in " + quoted + " -out NEW_FILE",
			}[tc.convert]
			require.Contains(t, err.Error(), hint)

			// Run the hint through sh, as a user would paste it, with the
			// passphrases given on the command line rather than typed.
			var cmd string
			var pass []byte
			switch tc.convert {
			case "ssh-keygen":
				cmd = strings.Replace(hint, "ssh-keygen -p", shellWord(keygen)+" -p -P s3cret-pass -N s3cret-pass", 1)
				pass = []byte("s3cret-pass")
			case "openssl":
				cmd = strings.Replace(strings.Replace(hint, "openssl pkey", shellWord(openssl)+" pkey -passin pass:s3cret-pass", 1), "NEW_FILE", "new", 1)
			}
			c := exec.Command(sh, "-c", cmd)
			c.Dir = dir
			out, err := c.CombinedOutput()
			require.NoError(t, err, "%s: %s", cmd, out)
			converted := enc
			if tc.convert == "openssl" {
				converted = filepath.Join(dir, "new")
			}
			got, err := hostkeys.LoadHostKey(converted, &hostkeys.KeyConfig{Passphrase: pass})
			require.NoError(t, err)
			assert.Equal(t, want.PublicKey().Marshal(), got.PublicKey().Marshal())
		})
	}
}

// shellWord quotes a tool path for sh -c.
func shellWord(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }
