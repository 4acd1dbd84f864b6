package integration

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/moby/moby/client"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dockssh/dockssh/dialer"
	"github.com/dockssh/dockssh/integration/internal/harness"
)

// newKey makes an ed25519 key pair with ssh-keygen and returns its path.
func newKey(tb testing.TB, dir, name string) string {
	tb.Helper()
	path := filepath.Join(dir, name)
	sshKeygen(tb, "-q", "-t", "ed25519", "-N", "", "-C", name, "-f", path)
	return path
}

// signCert signs key.pub with ca for principal, as ID id, valid from five
// minutes ago for an hour; the certificate is written to key-cert.pub.
func signCert(tb testing.TB, ca, key, id, principal string) string {
	tb.Helper()
	sshKeygen(tb, "-q", "-s", ca, "-I", id, "-n", principal, "-V", "-5m:+1h", key+".pub")
	return key + "-cert.pub"
}

// startSSHAgent runs a real ssh-agent on a socket of its own, ended at
// cleanup, and adds keys to it with ssh-add (which loads each key's
// -cert.pub with it).
func startSSHAgent(tb testing.TB, keys ...string) string {
	tb.Helper()
	sock := filepath.Join(tb.TempDir(), "agent.sock")
	agent := exec.Command("ssh-agent", "-D", "-a", sock)
	require.NoError(tb, agent.Start())
	tb.Cleanup(func() {
		agent.Process.Kill()
		agent.Wait()
	})
	require.Eventually(tb, func() bool {
		_, err := os.Stat(sock)
		return err == nil
	}, 10*time.Second, 10*time.Millisecond, "ssh-agent socket %s", sock)
	for _, k := range keys {
		add := exec.Command("ssh-add", k)
		add.Env = append(os.Environ(), "SSH_AUTH_SOCK="+sock)
		out, err := add.CombinedOutput()
		require.NoError(tb, err, "ssh-add %s: %s", k, out)
	}
	return sock
}

// User certificates from a CA that sshd trusts (TrustedUserCAKeys), for
// keys sshd does not otherwise authorize: offered from a CertificateFile
// and from a real ssh-agent, and seen by sshd as certificate
// authentication. A certificate from another CA is refused, and the error
// names it with its key ID and validity.
func TestDialerUserCertificates(t *testing.T) {
	t.Parallel()
	const caPath = "/etc/ssh/dockssh_user_ca.pub"
	sshd := harness.StartSSHD(t, &harness.SSHDOptions{ExtraConfig: "TrustedUserCAKeys " + caPath})
	dir := t.TempDir()
	ca, untrusted := newKey(t, dir, "ca"), newKey(t, dir, "untrusted_ca")
	caPub, err := os.ReadFile(ca + ".pub")
	require.NoError(t, err)
	sshd.Exec(t, "sh", "-c", "cat > "+caPath+" <<'EOF'\n"+string(caPub)+"EOF\n")

	fileKey, agentKey, strangerKey := newKey(t, dir, "id_file"), newKey(t, dir, "id_agent"), newKey(t, dir, "id_stranger")
	fileCert := signCert(t, ca, fileKey, "dockssh-file", sshd.User)
	// A CertificateFile elsewhere than beside its key, so that only the
	// CertificateFile entry can offer it.
	certFile := filepath.Join(dir, "laptop-cert.pub")
	require.NoError(t, os.Rename(fileCert, certFile))
	signCert(t, ca, agentKey, "dockssh-agent", sshd.User)
	signCert(t, untrusted, strangerKey, "dockssh-untrusted", sshd.User)
	sock := startSSHAgent(t, agentKey)

	ping := func(t *testing.T, cfg *dialer.Config) error {
		d, err := dialer.New(sshURL(sshd, ""), cfg)
		require.NoError(t, err)
		defer d.Close()
		cli, err := client.New(client.WithHost("http://docker"), client.WithDialContext(d.DialContext))
		require.NoError(t, err)
		defer cli.Close()
		_, err = cli.Ping(t.Context(), client.PingOptions{})
		return err
	}
	t.Run("CertificateFile", func(t *testing.T) {
		cfg := dialerConfig(t, sshd)
		cfg.IdentityFiles = []string{fileKey}
		cfg.CertificateFiles = []string{certFile}
		require.NoError(t, ping(t, cfg))
	})
	t.Run("agent", func(t *testing.T) {
		cfg := dialerConfig(t, sshd)
		cfg.IdentityFiles = []string{filepath.Join(dir, "none")}
		cfg.AgentSocket = sock
		require.NoError(t, ping(t, cfg))
	})
	t.Run("refused", func(t *testing.T) {
		cfg := dialerConfig(t, sshd)
		cfg.IdentityFiles = []string{strangerKey}
		err := ping(t, cfg)
		var de *dialer.Error
		require.ErrorAs(t, err, &de)
		assert.Equal(t, dialer.OpAuth, de.Op)
		assert.Contains(t, err.Error(), `(certificate "dockssh-untrusted", principals ["root"], valid from `)
	})

	logs := sshdLogs(t, sshd)
	for _, id := range []string{"dockssh-file", "dockssh-agent"} {
		assert.Regexp(t, `Accepted publickey for root from .* ED25519-CERT SHA256:\S+ ID `+id+` `, logs)
	}
}
