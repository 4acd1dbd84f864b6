package dialer_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/ssh"

	"github.com/dockssh/dockssh/dialer"
	"github.com/dockssh/dockssh/hostkeys"
)

// aliasConfig returns a Config for srv whose ssh_config gives the alias
// "box" (HostName 127.0.0.1) HostKeyAlias alias, with known_hosts holding
// knownHosts.
func aliasConfig(tb testing.TB, srv *fakeServer, alias, knownHosts string) *dialer.Config {
	tb.Helper()
	cfg := srv.Config(tb)
	dir := tb.TempDir()
	path := filepath.Join(dir, "ssh_config")
	require.NoError(tb, os.WriteFile(path, []byte(fmt.Sprintf(
		"Host box\n  HostName 127.0.0.1\n  Port %d\n  User tester\n  HostKeyAlias %s\n", srv.port, alias)), 0o600))
	kh := filepath.Join(dir, "known_hosts")
	require.NoError(tb, os.WriteFile(kh, []byte(knownHosts), 0o600))
	cfg.IgnoreSSHConfig, cfg.SSHConfigPath, cfg.KnownHostsFiles = false, path, []string{kh}
	return cfg
}

// HostKeyAlias names the known_hosts entry: a key known only under the
// alias is accepted, one known only under the address is not, and
// accept-new records the alias, without a port, as ssh does.
func TestHostKeyAlias(t *testing.T) {
	t.Parallel()
	srv := newFakeServer(t)
	key := string(ssh.MarshalAuthorizedKey(srv.hostKey.PublicKey()))

	t.Run("known under the alias", func(t *testing.T) {
		d, err := dialer.New("ssh://box", aliasConfig(t, srv, "Build-Box.Example", "build-box.example "+key))
		require.NoError(t, err)
		defer d.Close()
		c, err := d.DialContext(t.Context(), "tcp", "")
		require.NoError(t, err)
		c.Close()
	})
	t.Run("known under the address only", func(t *testing.T) {
		d, err := dialer.New("ssh://box", aliasConfig(t, srv, "build-box", fmt.Sprintf("[127.0.0.1]:%d %s", srv.port, key)))
		require.NoError(t, err)
		defer d.Close()
		_, err = d.DialContext(t.Context(), "tcp", "")
		require.ErrorIs(t, err, hostkeys.ErrUnknownHost)
		assert.Contains(t, err.Error(), "build-box")
	})
	t.Run("accept-new writes the alias", func(t *testing.T) {
		cfg := aliasConfig(t, srv, "build-box", "")
		cfg.HostKeyPolicy = hostkeys.AcceptNew
		d, err := dialer.New("ssh://box", cfg)
		require.NoError(t, err)
		defer d.Close()
		c, err := d.DialContext(t.Context(), "tcp", "")
		require.NoError(t, err)
		c.Close()
		b, err := os.ReadFile(cfg.KnownHostsFiles[0])
		require.NoError(t, err)
		fields := strings.Fields(string(b))
		require.NotEmpty(t, fields)
		assert.Equal(t, "build-box", fields[0], "known_hosts: %s", b)
	})
}
