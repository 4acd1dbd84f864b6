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
	hc, err := newSSHConfigReader(home, "alice").read(cfg, "build", "", false)
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
	hc, err := r.read("/cfg", "target", "", false)
	require.NoError(t, err)
	assert.Equal(t, "bastion", hc.ProxyJump)
	assert.Equal(t, "", hc.ProxyCommand)

	hc, err = r.read("/cfg", "legacy", "", false)
	require.NoError(t, err)
	assert.Equal(t, "", hc.ProxyJump)
	assert.NotEmpty(t, hc.ProxyCommand)
}

// A ProxyJump host's own ProxyJump is followed, and its ProxyCommand is
// run to reach it rather than silently skipped. Checked with
// ssh -v (OpenSSH 9.2): t goes outer -> hopA -> t; t2 goes outer -> hopA ->
// hopB -> t2 (hopB's own ProxyJump is overridden by the -J before it).
func TestResolveJumpHostsOwnProxySettings(t *testing.T) {
	home := t.TempDir()
	require.NoError(t, os.MkdirAll(filepath.Join(home, ".ssh"), 0o700))
	cfgPath := filepath.Join(home, ".ssh", "config")
	require.NoError(t, os.WriteFile(cfgPath, []byte(`
Host hopA
  ProxyJump outer
Host hopB
  ProxyJump elsewhere
Host outer
  HostName 192.0.2.1
Host t
  ProxyJump hopA
Host t2
  ProxyJump hopA,hopB
Host viacmd
  ProxyJump cmdhop
Host cmdhop
  ProxyCommand nc %h %p
Host loop1
  ProxyJump loop2
Host loop2
  ProxyJump loop1
`), 0o600))
	r, err := newResolver(&Config{HomeDir: home, SystemSSHConfigPath: "none"})
	require.NoError(t, err)
	addrs := func(d *destination) []string {
		var out []string
		for _, j := range d.jumps {
			out = append(out, j.addr())
		}
		return out
	}

	d, err := r.resolve(&target{host: "t"})
	require.NoError(t, err)
	assert.Equal(t, []string{"192.0.2.1:22", "hopa:22"}, addrs(d))

	d, err = r.resolve(&target{host: "t2"})
	require.NoError(t, err)
	assert.Equal(t, []string{"192.0.2.1:22", "hopa:22", "hopb:22"}, addrs(d))

	// The first hop's own ProxyCommand reaches it, as ssh -J runs
	// "ssh -W ... cmdhop", which applies cmdhop's ProxyCommand.
	d, err = r.resolve(&target{host: "viacmd"})
	require.NoError(t, err)
	require.Len(t, d.jumps, 1)
	assert.Equal(t, "exec nc cmdhop 22", d.jumps[0].proxyCommand)
	assert.Empty(t, d.proxyCommand)

	_, err = r.resolve(&target{host: "loop1"})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "nested")
}

// ProxyCommand keeps the rest of its line, quotes included, for
// /bin/sh -c (readconf.c parse_command), and its tokens are expanded as
// ssh's expand_proxy_command does, with "exec " in front.
func TestProxyCommandValueAndTokens(t *testing.T) {
	r := memReader("/home/alice", map[string]string{"/cfg": `
Host quoted
  ProxyCommand=  ssh -W "[%h]:%p" 'bastion one'   
Host tokens
  HostName 127.0.0.1
  Port 2200
  User deploy
  HostKeyAlias Box
  ProxyCommand printf '%%s %h %p %r %n %k'
Host unknown
  ProxyCommand nc %h %p %C
Host trailing
  ProxyCommand nc %h %
Host none
  ProxyCommand none
  ProxyJump 127.0.0.1
`})
	hc, err := r.read("/cfg", "quoted", "", false)
	require.NoError(t, err)
	assert.Equal(t, `ssh -W "[%h]:%p" 'bastion one'`, hc.ProxyCommand)

	hc, err = r.read("/cfg", "none", "", false)
	require.NoError(t, err)
	assert.Equal(t, "none", hc.ProxyCommand)
	assert.Equal(t, "", hc.ProxyJump, "ProxyCommand none set first hides the later ProxyJump")

	home := t.TempDir()
	res := &resolver{cfg: &Config{}, home: home, localUser: "alice", reader: r, files: []configFile{{path: "/cfg"}}, getenv: func(string) string { return "" }}
	d, err := res.resolve(&target{host: "tokens"})
	require.NoError(t, err)
	assert.Equal(t, "exec printf '%s 127.0.0.1 2200 deploy tokens box'", d.proxyCommand)
	assert.Equal(t, "box", d.hostKeyAlias)

	d, err = res.resolve(&target{host: "none"})
	require.NoError(t, err)
	assert.Equal(t, "", d.proxyCommand)
	assert.Empty(t, d.jumps)

	for _, host := range []string{"unknown", "trailing"} {
		_, err = res.resolve(&target{host: host})
		require.Error(t, err, host)
		assert.Contains(t, err.Error(), "ProxyCommand for "+host)
	}
}

// The system-wide file is read after the user's, the first value in either
// winning, and its relative Include paths are under /etc/ssh (ssh_config(5)).
// ssh -F skips it, and so does SSHConfigPath unless SystemSSHConfigPath
// names it.
func TestSystemSSHConfig(t *testing.T) {
	r := memReader("/home/alice", map[string]string{
		"/home/alice/.ssh/config":              "Host box\n  User fromuser\n",
		"/etc/ssh/ssh_config":                  "Include ssh_config.d/*.conf\nHost *\n  User fromsystem\n  Port 2200\n",
		"/etc/ssh/ssh_config.d/a.conf":         "Host box\n  HostName 127.0.0.1\n",
		"/home/alice/.ssh/ssh_config.d/a.conf": "Host box\n  HostName wrong\n",
	})
	cases := []struct {
		name           string
		cfg            Config
		user, hostname string
		port           string
	}{
		{"default: both files", Config{}, "fromuser", "127.0.0.1", "2200"},
		{"none", Config{SystemSSHConfigPath: "none"}, "fromuser", "", ""},
		{"SSHConfigPath skips it", Config{SSHConfigPath: "/home/alice/.ssh/config"}, "fromuser", "", ""},
		{"SSHConfigPath and SystemSSHConfigPath", Config{SSHConfigPath: "/home/alice/.ssh/config", SystemSSHConfigPath: "/etc/ssh/ssh_config"}, "fromuser", "127.0.0.1", "2200"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			hc, err := r.readAll(configFiles(&tc.cfg, "/home/alice"), "box", "")
			require.NoError(t, err)
			assert.Equal(t, []string{tc.user, tc.hostname, tc.port}, []string{hc.User, hc.HostName, hc.Port})
		})
	}
	_, err := r.readAll(configFiles(&Config{SystemSSHConfigPath: "/etc/ssh/missing"}, "/home/alice"), "box", "")
	assert.Error(t, err, "a system file the program names must exist")
}
