package integration

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/ssh"

	"github.com/dockssh/dockssh/hostkeys"
	"github.com/dockssh/dockssh/integration/internal/harness"
)

// hostKeyTypes are the sshd container's host key types, with ssh-keyscan's
// name for each.
var hostKeyTypes = []struct{ keyType, scanType string }{
	{ssh.KeyAlgoED25519, "ed25519"},
	{ssh.KeyAlgoECDSA256, "ecdsa"},
	{ssh.KeyAlgoRSA, "rsa"},
}

// TestHostKeysKeyscan checks hostkeys against known_hosts files written by the
// real ssh-keyscan, plain and hashed (-H), one key type at a time. A file with
// only the ecdsa or rsa key is the golang/go#29286 case: the server prefers
// ed25519, so the client must offer the known type first to connect at all.
func TestHostKeysKeyscan(t *testing.T) {
	t.Parallel()
	sshd := harness.StartSSHD(t, nil)
	for _, kt := range hostKeyTypes {
		for _, hashed := range []bool{false, true} {
			name := kt.scanType
			if hashed {
				name += "/hashed"
			}
			t.Run(name, func(t *testing.T) {
				args := []string{"-t", kt.scanType, "-p", fmt.Sprint(sshd.Port)}
				if hashed {
					args = append(args, "-H")
				}
				out := keyscan(t, append(args, sshd.Host)...)
				if hashed {
					require.True(t, strings.HasPrefix(out, "|1|"), "ssh-keyscan -H wrote %q", out)
				} else {
					require.True(t, strings.HasPrefix(out, fmt.Sprintf("[%s]:%d ", sshd.Host, sshd.Port)), "ssh-keyscan wrote %q", out)
				}
				knownHosts := writeFile(t, "known_hosts", out)

				got := dialHostKeys(t, sshd, &hostkeys.Config{Files: []string{knownHosts}})
				require.NoError(t, got.err)
				assert.Equal(t, kt.keyType, got.key.Type(), "the negotiated host key is the known one")
				assert.Equal(t, ssh.FingerprintSHA256(sshd.HostKey(t, kt.keyType)), ssh.FingerprintSHA256(got.key))
			})
		}
	}
}

// TestHostKeysCertAuthority trusts the server only through a
// @cert-authority line: its ed25519 host key is certified by a CA made with
// the real ssh-keygen (-s), and no host key is in known_hosts.
func TestHostKeysCertAuthority(t *testing.T) {
	t.Parallel()
	sshd := harness.StartSSHD(t, &harness.SSHDOptions{
		ExtraConfig: "HostCertificate /etc/ssh/ssh_host_ed25519_key-cert.pub",
	})
	dir := t.TempDir()
	ca := filepath.Join(dir, "host_ca")
	sshKeygen(t, "-q", "-t", "ed25519", "-N", "", "-C", "dockssh test host CA", "-f", ca)
	hostPub := writeFile(t, "ssh_host_ed25519_key.pub", string(ssh.MarshalAuthorizedKey(sshd.HostKey(t, ssh.KeyAlgoED25519))))
	sshKeygen(t, "-q", "-s", ca, "-I", "dockssh-test-host", "-h", "-n", sshd.Host, "-V", "-5m:+1h", hostPub)
	cert, err := os.ReadFile(strings.TrimSuffix(hostPub, ".pub") + "-cert.pub")
	require.NoError(t, err)
	sshd.Exec(t, "sh", "-c", `printf '%s\n' "$1" >/etc/ssh/ssh_host_ed25519_key-cert.pub`, "sh", strings.TrimSpace(string(cert)))
	sshd.Restart(t) // sshd reads host certificates at start

	caPub, err := os.ReadFile(ca + ".pub")
	require.NoError(t, err)
	knownHosts := writeFile(t, "known_hosts", fmt.Sprintf("@cert-authority [%s]:%d %s", sshd.Host, sshd.Port, caPub))

	kh, err := hostkeys.New(&hostkeys.Config{Files: []string{knownHosts}})
	require.NoError(t, err)
	algos := kh.HostKeyAlgorithms(sshd.Addr())
	require.NotEmpty(t, algos)
	assert.Equal(t, ssh.CertAlgoED25519v01, algos[0], "certificate algorithms first for a CA-covered host: %v", algos)

	got := dialHostKeys(t, sshd, &hostkeys.Config{Files: []string{knownHosts}})
	require.NoError(t, got.err)
	require.Equal(t, ssh.CertAlgoED25519v01, got.key.Type())
	c, ok := got.key.(*ssh.Certificate)
	require.True(t, ok)
	assert.Equal(t, "dockssh-test-host", c.KeyId)

	// The real OpenSSH client agrees with the same file.
	assert.Equal(t, "ok\n", runSSH(t, sshd, knownHosts, "echo", "ok"))

	// A CA nobody trusts: the certificate does not establish trust, and the
	// typed error says why.
	other := filepath.Join(dir, "other_ca")
	sshKeygen(t, "-q", "-t", "ed25519", "-N", "", "-f", other)
	otherPub, err := os.ReadFile(other + ".pub")
	require.NoError(t, err)
	untrusted := writeFile(t, "known_hosts_other", fmt.Sprintf("@cert-authority [%s]:%d %s", sshd.Host, sshd.Port, otherPub))
	got = dialHostKeys(t, sshd, &hostkeys.Config{Files: []string{untrusted}})
	var hkErr *hostkeys.HostKeyError
	require.ErrorAs(t, got.err, &hkErr)
	assert.Equal(t, ssh.CertAlgoED25519v01, hkErr.KeyType)
	assert.Error(t, hkErr.CertErr, "the error says why the certificate was not trusted")
	assert.Nil(t, got.key, "the callback must not accept the key")
}

// TestHostKeysStrictRejectsNewHostKeys restarts the server with new host keys:
// in strict mode the client refuses with a typed error that names the host,
// the offered key, its fingerprint and the known_hosts lines to fix, before
// any authentication happens.
func TestHostKeysStrictRejectsNewHostKeys(t *testing.T) {
	t.Parallel()
	sshd := harness.StartSSHD(t, &harness.SSHDOptions{RegenerateHostKeys: true})
	knownHosts := sshd.WriteKnownHosts(t)
	cfg := &hostkeys.Config{Files: []string{knownHosts}}
	require.NoError(t, dialHostKeys(t, sshd, cfg).err)

	old := sshd.HostKeys()
	sshd.Restart(t)
	require.NotEqual(t, old, sshd.HostKeys())

	got := dialHostKeys(t, sshd, cfg)
	require.Error(t, got.err)
	assert.False(t, got.authTried, "no authentication attempt after a host key mismatch")
	assert.True(t, errors.Is(got.err, hostkeys.ErrHostKeyChanged), "errors.Is(%v, ErrHostKeyChanged)", got.err)
	var hkErr *hostkeys.HostKeyError
	require.ErrorAs(t, got.err, &hkErr)
	assert.Equal(t, fmt.Sprintf("[%s]:%d", sshd.Host, sshd.Port), hkErr.Host)
	assert.Equal(t, sshd.Addr(), hkErr.Address)
	offered := sshd.HostKey(t, hkErr.KeyType)
	assert.Equal(t, ssh.FingerprintSHA256(offered), hkErr.Fingerprint)
	require.Len(t, hkErr.Known, 3, "every old key is listed")
	for i, k := range hkErr.Known {
		assert.Equal(t, knownHosts, k.File)
		assert.Equal(t, i+1, k.Line)
	}
	msg := got.err.Error()
	t.Logf("the error a user sees:\n%s", msg)
	assert.Contains(t, msg, hkErr.Fingerprint)
	assert.Contains(t, strings.ToUpper(msg), "MAN-IN-THE-MIDDLE")
	assert.Contains(t, msg, knownHosts)

	// Accept-new does not make a changed key acceptable either.
	got = dialHostKeys(t, sshd, &hostkeys.Config{Files: []string{knownHosts}, Policy: hostkeys.AcceptNew})
	assert.True(t, errors.Is(got.err, hostkeys.ErrHostKeyChanged), "accept-new with a changed key: %v", got.err)
}

// TestHostKeysAcceptNewAgainstOpenSSH writes the unknown host with accept-new
// and checks that the real OpenSSH client then trusts the written file.
func TestHostKeysAcceptNewAgainstOpenSSH(t *testing.T) {
	t.Parallel()
	sshd := harness.StartSSHD(t, nil)
	for _, hashed := range []bool{false, true} {
		t.Run(fmt.Sprintf("hashed=%v", hashed), func(t *testing.T) {
			knownHosts := filepath.Join(t.TempDir(), "known_hosts")
			cfg := &hostkeys.Config{Files: []string{knownHosts}, Policy: hostkeys.AcceptNew, HashNewHosts: hashed}
			require.NoError(t, dialHostKeys(t, sshd, cfg).err)
			written, err := os.ReadFile(knownHosts)
			require.NoError(t, err)
			assert.Equal(t, hashed, strings.HasPrefix(string(written), "|1|"), "written: %q", written)

			assert.Equal(t, "ok\n", runSSH(t, sshd, knownHosts, "echo", "ok"))
			// And strict mode now accepts the host from that file.
			require.NoError(t, dialHostKeys(t, sshd, &hostkeys.Config{Files: []string{knownHosts}}).err)
		})
	}
}

type dialResult struct {
	key       ssh.PublicKey // the host key the callback accepted, or nil
	authTried bool          // whether the client got as far as authentication
	err       error
}

// dialHostKeys connects to sshd with x/crypto's client, hostkeys' callback
// and its host key algorithms, and logs in with the harness's client key.
func dialHostKeys(tb testing.TB, sshd *harness.SSHD, cfg *hostkeys.Config) dialResult {
	tb.Helper()
	kh, err := hostkeys.New(cfg)
	require.NoError(tb, err)
	var res dialResult
	check := kh.HostKeyCallback()
	conf := &ssh.ClientConfig{
		User: sshd.User,
		Auth: []ssh.AuthMethod{ssh.PublicKeysCallback(func() ([]ssh.Signer, error) {
			res.authTried = true
			return []ssh.Signer{sshd.ClientKey}, nil
		})},
		HostKeyCallback: func(hostname string, remote net.Addr, key ssh.PublicKey) error {
			if err := check(hostname, remote, key); err != nil {
				return err
			}
			res.key = key
			return nil
		},
		HostKeyAlgorithms: kh.HostKeyAlgorithms(sshd.Addr()),
		Timeout:           20 * time.Second,
	}
	c, err := ssh.Dial("tcp", sshd.Addr(), conf)
	if err != nil {
		res.err = err
		return res
	}
	defer c.Close()
	out, err := runSession(c, "echo connected")
	if err == nil && out != "connected\n" {
		err = fmt.Errorf("remote echo: %q", out)
	}
	res.err = err
	return res
}

func runSession(c *ssh.Client, cmd string) (string, error) {
	s, err := c.NewSession()
	if err != nil {
		return "", err
	}
	defer s.Close()
	out, err := s.CombinedOutput(cmd)
	return string(out), err
}

func keyscan(tb testing.TB, args ...string) string {
	tb.Helper()
	cmd := exec.CommandContext(tb.Context(), "ssh-keyscan", append([]string{"-T", "20"}, args...)...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	require.NoError(tb, err, "ssh-keyscan %v: %s", args, stderr.String())
	require.NotEmpty(tb, strings.TrimSpace(string(out)), "ssh-keyscan %v printed no key: %s", args, stderr.String())
	return string(out)
}

func sshKeygen(tb testing.TB, args ...string) {
	tb.Helper()
	out, err := exec.CommandContext(tb.Context(), "ssh-keygen", args...).CombinedOutput()
	require.NoError(tb, err, "ssh-keygen %v: %s", args, out)
}

func writeFile(tb testing.TB, name, content string) string {
	tb.Helper()
	path := filepath.Join(tb.TempDir(), name)
	require.NoError(tb, os.WriteFile(path, []byte(content), 0o600))
	return path
}
