package dialer

import (
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// memReader is an sshConfigReader over an in-memory file system.
func memReader(home string, files map[string]string) *sshConfigReader {
	return &sshConfigReader{
		home:      home,
		localUser: "alice",
		readFile: func(p string) ([]byte, error) {
			if s, ok := files[p]; ok {
				return []byte(s), nil
			}
			return nil, fs.ErrNotExist
		},
		glob: func(p string) ([]string, error) {
			var out []string
			for name := range files {
				if ok, _ := filepath.Match(p, name); ok {
					out = append(out, name)
				}
			}
			sortStrings(out)
			return out, nil
		},
	}
}

func sortStrings(s []string) {
	for i := range s {
		for j := i + 1; j < len(s); j++ {
			if s[j] < s[i] {
				s[i], s[j] = s[j], s[i]
			}
		}
	}
}

func TestSSHConfigFirstValueWins(t *testing.T) {
	r := memReader("/home/alice", map[string]string{"/cfg": `
# comment
Host build build-*
    HostName 10.0.0.5
    User deploy
    Port 2222
    IdentityFile ~/.ssh/build_key
    IdentityFile "/keys/with space"
    IdentitiesOnly yes

Host *
    User nobody
    Port 22
    IdentityFile ~/.ssh/id_default
    UserKnownHostsFile ~/.ssh/kh1 ~/.ssh/kh2
`})
	hc, err := r.read("/cfg", "build", "", false)
	require.NoError(t, err)
	assert.Equal(t, "10.0.0.5", hc.HostName)
	assert.Equal(t, "deploy", hc.User)
	assert.Equal(t, "2222", hc.Port)
	assert.Equal(t, []string{"~/.ssh/build_key", "/keys/with space", "~/.ssh/id_default"}, hc.IdentityFiles)
	assert.Equal(t, "yes", hc.IdentitiesOnly)
	assert.Equal(t, []string{"~/.ssh/kh1", "~/.ssh/kh2"}, hc.UserKnownHostsFiles)

	hc, err = r.read("/cfg", "other", "", false)
	require.NoError(t, err)
	assert.Equal(t, "nobody", hc.User)
	assert.Equal(t, "", hc.HostName)
}

func TestSSHConfigMatchNeverBreaks(t *testing.T) {
	// Every Match criterion OpenSSH knows, in one file: the ones that can
	// be evaluated are, the rest are skipped, and nothing fails.
	r := memReader("/home/alice", map[string]string{"/cfg": `
Match exec "test -f /tmp/vpn-up"
    ProxyJump bastion
Match canonical
    User canon
Match final all
    User final
Match localnetwork 10.0.0.0/8
    User lan
Match tagged work
    User tagged
Match !exec "false" host target
    User viaexec
Match version OpenSSH_9*
    User ver
Match originalhost target user alice
    Port 2200
Match host other,!target
    User wrong
Match host 10.1.*
    IdentityFile ~/.ssh/after_hostname
Match localuser alice
    IdentitiesOnly yes
Match !host target
    User negated
Host target
    HostName 10.1.2.3
Match host 10.1.2.3
    User byhostname
Match all
    IdentityFile ~/.ssh/all
`})
	hc, err := r.read("/cfg", "target", "", false)
	require.NoError(t, err)
	assert.Equal(t, "", hc.ProxyJump, "Match exec is never run, its block never applied")
	assert.Equal(t, "2200", hc.Port)
	assert.Equal(t, "10.1.2.3", hc.HostName)
	assert.Equal(t, "byhostname", hc.User, "Match host sees the HostName set before it")
	assert.Equal(t, "yes", hc.IdentitiesOnly)
	assert.Equal(t, []string{"~/.ssh/all"}, hc.IdentityFiles)
	notes := strings.Join(hc.Notes, "\n")
	for _, crit := range []string{"exec", "canonical", "final", "localnetwork", "tagged", "version"} {
		assert.Contains(t, notes, `"`+crit+`"`)
	}
}

func TestSSHConfigMatchUserUsesURLUser(t *testing.T) {
	r := memReader("/h", map[string]string{"/cfg": "Match user root\n  Port 2022\n"})
	hc, err := r.read("/cfg", "x", "root", false)
	require.NoError(t, err)
	assert.Equal(t, "2022", hc.Port)
	hc, err = r.read("/cfg", "x", "", false)
	require.NoError(t, err)
	assert.Equal(t, "", hc.Port, "the local user alice does not match")
}

func TestSSHConfigInclude(t *testing.T) {
	r := memReader("/home/alice", map[string]string{
		"/cfg": `Include config.d/*.conf
Host inner
  Include /abs/inner.conf
Host *
  User fallback
`,
		"/home/alice/.ssh/config.d/10-a.conf": "Host a\n  HostName a.example\nHost *\n  Port 2201\n",
		"/home/alice/.ssh/config.d/20-b.conf": "Host a\n  HostName never.example\n  User from-b\n",
		"/abs/inner.conf":                     "User inner-user\nHost *\nUser after-host-line\n",
	})
	hc, err := r.read("/cfg", "a", "", false)
	require.NoError(t, err)
	assert.Equal(t, "a.example", hc.HostName)
	assert.Equal(t, "2201", hc.Port)
	assert.Equal(t, "from-b", hc.User)

	hc, err = r.read("/cfg", "inner", "", false)
	require.NoError(t, err)
	assert.Equal(t, "inner-user", hc.User)
	hc, err = r.read("/cfg", "other", "", false)
	require.NoError(t, err)
	assert.Equal(t, "fallback", hc.User, "an Include inside a non-matching Host block is not read")
}

func TestSSHConfigIncludeLoop(t *testing.T) {
	r := memReader("/h", map[string]string{"/cfg": "Include /cfg\n"})
	_, err := r.read("/cfg", "x", "", false)
	require.ErrorIs(t, err, errConfigLoop)
}

func TestSSHConfigSyntax(t *testing.T) {
	cases := []struct {
		line string
		key  string
		args []string
	}{
		{"  Host   a b  ", "host", []string{"a", "b"}},
		{"Port=22", "port", []string{"22"}},
		{"Port = 22", "port", []string{"22"}},
		{"\tUser\tbob # a comment", "user", []string{"bob"}},
		{`IdentityFile "C:\keys\id" 'x y'`, "identityfile", []string{`C:\keys\id`, "x y"}},
		{`IdentityFile a\ b`, "identityfile", []string{"a b"}},
		{"# only a comment", "", nil},
		{"", "", nil},
		{"HOSTNAME example.com\r", "hostname", []string{"example.com"}},
	}
	for _, tc := range cases {
		key, args, err := splitConfigLine(tc.line)
		require.NoError(t, err, tc.line)
		assert.Equal(t, tc.key, key, "splitConfigLine(%q)", tc.line)
		assert.Equal(t, tc.args, args, "splitConfigLine(%q)", tc.line)
	}
	_, _, err := splitConfigLine(`Host "unterminated`)
	assert.Error(t, err)
}

func TestSSHConfigHostPatterns(t *testing.T) {
	cases := []struct {
		name     string
		patterns []string
		want     bool
	}{
		{"host", []string{"host"}, true},
		{"HOST", []string{"host"}, true},
		{"a.example.com", []string{"*.example.com"}, true},
		{"a.example.com", []string{"*.example.com", "!a.*"}, false},
		{"b.example.com", []string{"*.example.com", "!a.*"}, true},
		{"x", []string{"!y"}, false},
		{"h1", []string{"h?"}, true},
		{"h10", []string{"h?"}, false},
	}
	for _, tc := range cases {
		r := memReader("/h", map[string]string{"/cfg": "Host " + strings.Join(tc.patterns, " ") + "\n  User matched\n"})
		hc, err := r.read("/cfg", tc.name, "", false)
		require.NoError(t, err)
		assert.Equal(t, tc.want, hc.User == "matched", "Host %s for %q", strings.Join(tc.patterns, " "), tc.name)
	}
}

func TestResolveEndpoint(t *testing.T) {
	home := t.TempDir()
	require.NoError(t, os.MkdirAll(filepath.Join(home, ".ssh"), 0o700))
	cfgPath := filepath.Join(home, ".ssh", "config")
	require.NoError(t, os.WriteFile(cfgPath, []byte(`
Host prod
  HostName prod.internal
  User ops
  Port 2222
  IdentityFile %d/.ssh/%r@%h
  UserKnownHostsFile ~/.ssh/known_hosts_prod
  ProxyJump jump1,admin@jump2:2022
  IdentityAgent none
Host jump1
  HostName 192.0.2.10
  User jumper
Host cmd
  ProxyCommand nc %h %p
`), 0o600))
	r, err := newResolver(&Config{HomeDir: home, SystemSSHConfigPath: "none"})
	require.NoError(t, err)
	r.getenv = func(string) string { return "/agent.sock" }

	d, err := r.resolve(&target{host: "prod", user: "root"})
	require.NoError(t, err)
	assert.Equal(t, "prod.internal:2222", d.addr())
	assert.Equal(t, "root", d.user, "the URL user wins")
	assert.Equal(t, []identityFile{{path: home + "/.ssh/root@prod.internal", explicit: true}}, d.identityFiles)
	assert.Equal(t, []string{home + "/.ssh/known_hosts_prod", "/etc/ssh/ssh_known_hosts", "/etc/ssh/ssh_known_hosts2"}, d.knownHosts)
	assert.Equal(t, "", d.agentSocket)
	require.Len(t, d.jumps, 2)
	assert.Equal(t, "192.0.2.10:22", d.jumps[0].addr())
	assert.Equal(t, "jumper", d.jumps[0].user)
	assert.Equal(t, "/agent.sock", d.jumps[0].agentSocket)
	assert.Equal(t, "jump2:2022", d.jumps[1].addr())
	assert.Equal(t, "admin", d.jumps[1].user)

	d, err = r.resolve(&target{host: "prod", port: 22})
	require.NoError(t, err)
	assert.Equal(t, "prod.internal:22", d.addr(), "the URL port wins")
	assert.Equal(t, "ops", d.user)

	d, err = r.resolve(&target{host: "cmd"})
	require.NoError(t, err)
	assert.Equal(t, "exec nc cmd 22", d.proxyCommand)
	assert.Empty(t, d.jumps)

	// Defaults without a config entry.
	d, err = r.resolve(&target{host: "plain"})
	require.NoError(t, err)
	assert.Equal(t, "plain:22", d.addr())
	assert.Len(t, d.identityFiles, 3)
	assert.False(t, d.identityFiles[0].explicit)
	assert.Equal(t, home+"/.ssh/known_hosts", d.knownHosts[0])

	// IgnoreSSHConfig.
	r, err = newResolver(&Config{HomeDir: home, IgnoreSSHConfig: true, KnownHostsFiles: []string{"~/kh"}})
	require.NoError(t, err)
	d, err = r.resolve(&target{host: "prod"})
	require.NoError(t, err)
	assert.Equal(t, "prod:22", d.addr())
	assert.Equal(t, []string{home + "/kh"}, d.knownHosts)
}

func TestParseJump(t *testing.T) {
	cases := []struct {
		in         string
		user, host string
		port       int
		err        bool
	}{
		{in: "bastion", host: "bastion"},
		{in: "me@bastion:2200", user: "me", host: "bastion", port: 2200},
		{in: "ssh://me@bastion:2200", user: "me", host: "bastion", port: 2200},
		{in: "[::1]:22", host: "::1", port: 22},
		{in: "me@[2001:db8::1]", user: "me", host: "2001:db8::1"},
		{in: "bastion:x", err: true},
		{in: "-oProxyCommand=x", err: true},
		{in: "", err: true},
		{in: "ssh://me:pw@bastion", err: true},
	}
	for _, tc := range cases {
		u, h, p, err := parseJump(tc.in)
		if tc.err {
			assert.Error(t, err, "parseJump(%q)", tc.in)
			continue
		}
		require.NoError(t, err, tc.in)
		assert.Equal(t, []any{tc.user, tc.host, tc.port}, []any{u, h, p}, "parseJump(%q)", tc.in)
	}
}

// FuzzSSHConfig feeds arbitrary files to the reader: it never panics and
// never fails on anything but quotes and Include loops.
func FuzzSSHConfig(f *testing.F) {
	for _, s := range []string{
		"Host a\n HostName b\n",
		"Match exec \"x\" host y\n User z\n",
		"Include *.conf\nHost *\n Port=22\n",
		"Host \"a b\" !c\n IdentityFile 'x y' \\ z\n",
		"Match !all\nMatch user\nMatch host\n",
		"Host a\n ProxyCommand=  ssh -W \"[%h]:%p\" bastion  \n ProxyJump none\n",
		"Host *\n ProxyJump none\n ProxyCommand nc %h %p %%\n",
		"Host a\n HostKeyAlias Box.%h\n CertificateFile ~/c-%r.pub\n CertificateFile ~/c-%r.pub\n ProxyUseFdpass yes\n ProxyCommand -\n",
		"ProxyCommand nc %h %C\nProxyCommand=%\n",
	} {
		f.Add(s, "a")
	}
	f.Fuzz(func(t *testing.T, data, alias string) {
		r := memReader("/h", map[string]string{"/cfg": data, "/h/.ssh/x.conf": data})
		hc, err := r.read("/cfg", alias, "", false)
		if err != nil && !strings.Contains(err.Error(), "quote") && err != errConfigLoop && !strings.Contains(err.Error(), "Include") {
			t.Fatalf("read: %v", err)
		}
		if err != nil {
			return
		}
		// ProxyJump and ProxyCommand exclude each other; a ProxyCommand is
		// the rest of a line; its expansion either fails or runs
		// the command with exec and leaves no token unexpanded but %%'s.
		if hc.ProxyJump != "" && hc.ProxyCommand != "" {
			t.Fatalf("both ProxyJump %q and ProxyCommand %q", hc.ProxyJump, hc.ProxyCommand)
		}
		// As in OpenSSH: blanks and '=' go before it, white space and
		// form feeds after it (readconf.c process_config_line_depth).
		if c := hc.ProxyCommand; c != strings.TrimRight(strings.TrimLeft(c, " \t="), " \t\r\f") || strings.ContainsAny(c, "\n") {
			t.Fatalf("ProxyCommand %q is not a trimmed line", c)
		}
		ep := &endpoint{alias: "a", host: "h", port: 22, user: "u"}
		if cmd, err := expandProxyCommand(hc.ProxyCommand, ep); err == nil && !strings.HasPrefix(cmd, "exec ") {
			t.Fatalf("expandProxyCommand(%q) = %q", hc.ProxyCommand, cmd)
		}
	})
}
