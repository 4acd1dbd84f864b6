package dialer

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// An Include glob that also matches a directory (conf.d/old/ next to the
// files) works with ssh, which skips what it cannot read as lines.
func TestSSHConfigIncludeGlobMatchingADirectory(t *testing.T) {
	home := t.TempDir()
	dir := filepath.Join(home, ".ssh", "conf.d")
	require.NoError(t, os.MkdirAll(filepath.Join(dir, "old"), 0o700))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "work"), []byte("Host build\n  User deploy\n"), 0o600))
	cfg := filepath.Join(home, ".ssh", "config")
	require.NoError(t, os.WriteFile(cfg, []byte("Include conf.d/*\n"), 0o600))
	hc, err := newSSHConfigReader(home, "alice").read(cfg, "build", "")
	require.NoError(t, err)
	assert.Equal(t, "deploy", hc.User)
}

// ProxyJump and ProxyCommand exclude each other and the first one set wins,
// as in OpenSSH (readconf.c: parse_jump and oProxyCommand): a ProxyJump for
// one host followed by a ProxyCommand under "Host *" is a ProxyJump.
func TestSSHConfigProxyJumpAndProxyCommandFirstWins(t *testing.T) {
	r := memReader("/home/alice", map[string]string{"/cfg": `
Host target
    ProxyJump bastion
Host legacy
    ProxyCommand nc %h %p
    ProxyJump bastion
Host *
    ProxyCommand nc %h %p
`})
	hc, err := r.read("/cfg", "target", "")
	require.NoError(t, err)
	assert.Equal(t, "bastion", hc.ProxyJump)
	assert.Equal(t, "", hc.ProxyCommand)

	hc, err = r.read("/cfg", "legacy", "")
	require.NoError(t, err)
	assert.Equal(t, "", hc.ProxyJump)
	assert.NotEmpty(t, hc.ProxyCommand)
}
