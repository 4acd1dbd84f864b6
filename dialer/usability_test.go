package dialer_test

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"os/user"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dockssh/dockssh/dialer"
	"github.com/dockssh/dockssh/hostkeys"
)

// TestExplicitSSHConfigMustExist: a config file the program names must
// exist, as for ssh -F; the default ~/.ssh/config may be missing.
func TestExplicitSSHConfigMustExist(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "no-such-config")
	_, err := dialer.New("ssh://box", &dialer.Config{HomeDir: t.TempDir(), SSHConfigPath: missing})
	require.Error(t, err)
	var de *dialer.Error
	require.ErrorAs(t, err, &de)
	assert.Equal(t, dialer.OpSSHConfig, de.Op)
	assert.ErrorIs(t, err, fs.ErrNotExist)
	assert.Contains(t, err.Error(), missing)
	assert.Contains(t, de.Hint, "Config.SSHConfigPath")

	d, err := dialer.New("ssh://127.0.0.1", &dialer.Config{HomeDir: t.TempDir()})
	require.NoError(t, err, "a missing ~/.ssh/config is fine")
	d.Close()
}

// TestRefusedCredentialsNameTheUser: the authentication error names the
// user it tried and where that name came from.
func TestRefusedCredentialsNameTheUser(t *testing.T) {
	srv := newFakeServer(t)
	srv.set(func() { srv.user = "nobody-logs-in-as-this" })
	local, err := user.Current()
	require.NoError(t, err)

	home := t.TempDir()
	require.NoError(t, os.MkdirAll(filepath.Join(home, ".ssh"), 0o700))
	require.NoError(t, os.WriteFile(filepath.Join(home, ".ssh", "config"), []byte(fmt.Sprintf(
		"Host fromconfig\n  HostName 127.0.0.1\n  Port %d\n  User deploy\nHost local\n  HostName 127.0.0.1\n  Port %d\n",
		srv.port, srv.port)), 0o600))
	for _, tc := range []struct{ url, want string }{
		{srv.URL(""), `user "tester" (from the URL)`},
		{"ssh://fromconfig", `user "deploy" (from User in ssh_config)`},
		{"ssh://local", fmt.Sprintf("user %q (from the local user name)", local.Username)},
	} {
		t.Run(tc.url, func(t *testing.T) {
			cfg := srv.Config(t)
			cfg.HomeDir, cfg.IgnoreSSHConfig = home, false
			d, err := dialer.New(tc.url, cfg)
			require.NoError(t, err)
			defer d.Close()
			_, err = d.DialContext(t.Context(), "tcp", "")
			var de *dialer.Error
			require.ErrorAs(t, err, &de)
			assert.Equal(t, dialer.OpAuth, de.Op)
			assert.Contains(t, err.Error(), tc.want)
			assert.Contains(t, de.Hint, "name the right one in the URL (ssh://USER@host) or with User in ssh_config")
		})
	}
}

// TestHintsCarryTheAdvice: where a message gives advice, Error.Hint holds
// it, so that a program can show it apart from the message.
func TestHintsCarryTheAdvice(t *testing.T) {
	srv := newFakeServer(t)
	home := t.TempDir()
	require.NoError(t, os.MkdirAll(filepath.Join(home, ".ssh"), 0o700))
	require.NoError(t, os.WriteFile(filepath.Join(home, ".ssh", "config"), []byte("Host viacmd\n  HostName 127.0.0.1\n  ProxyCommand nc %h %p\n"), 0o600))
	encrypted := func(t *testing.T) *dialer.Config {
		_, path := writeClientKey(t, t.TempDir(), []byte("secret words"))
		cfg := srv.Config(t)
		cfg.IdentityFiles = []string{path}
		return cfg
	}
	cases := []struct {
		name string
		url  string
		cfg  func(t *testing.T) *dialer.Config
		op   dialer.Op
		hint string
	}{
		{"unknown host", srv.URL(""), func(t *testing.T) *dialer.Config {
			cfg := srv.Config(t)
			cfg.KnownHostsFiles = []string{filepath.Join(t.TempDir(), "empty")}
			return cfg
		}, dialer.OpHostKey, "hostkeys.AcceptNew"},
		{"ProxyCommand refused", "ssh://viacmd", func(t *testing.T) *dialer.Config {
			return &dialer.Config{HomeDir: home, SystemSSHConfigPath: "none", RefuseProxyCommand: true}
		}, dialer.OpSSHConfig, "use ProxyJump instead"},
		{"password with a slash", "ssh://u:pa/ss@127.0.0.1", func(t *testing.T) *dialer.Config {
			return srv.Config(t)
		}, dialer.OpParseURL, "percent-encode"},
		{"IPv6 without brackets", "ssh://::1", func(t *testing.T) *dialer.Config {
			return srv.Config(t)
		}, dialer.OpParseURL, "ssh://[::1]:22"},
		{"encrypted identity file", srv.URL(""), encrypted, dialer.OpAuth, "ssh-add"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			d, err := dialer.New(tc.url, tc.cfg(t))
			if err == nil {
				defer d.Close()
				_, err = d.DialContext(t.Context(), "tcp", "")
			}
			var de *dialer.Error
			require.ErrorAs(t, err, &de)
			assert.Equal(t, tc.op, de.Op)
			assert.Contains(t, de.Hint, tc.hint)
			assert.True(t, strings.HasSuffix(err.Error(), "; "+de.Hint), "the message ends with the hint: %v", err)
			if tc.name == "unknown host" {
				assert.True(t, errors.Is(err, hostkeys.ErrUnknownHost))
			}
		})
	}
}

// TestDebugLogSaysWhatHappened: the debug lines name the transport in use
// (no dial-stdio command for a streamlocal conn) and how a conn ended (the
// remote command's exit status, none for streamlocal).
func TestDebugLogSaysWhatHappened(t *testing.T) {
	srv := newFakeServer(t)
	srv.set(func() { srv.allowStreamLocal = true })
	lineOf := func(logs, msg string) string {
		for _, l := range strings.Split(logs, "\n") {
			if strings.HasPrefix(l, msg+" ") {
				return l
			}
		}
		t.Fatalf("no %q line in:\n%s", msg, logs)
		return ""
	}
	for _, tc := range []struct {
		transport      dialer.Transport
		resolved, open []string
		closed         []string
		notInResolved  string
		notInClosed    string
	}{
		{transport: dialer.TransportStreamLocal,
			resolved:      []string{"transport=streamlocal", "socket=" + srv.echoSock},
			open:          []string{"transport=streamlocal", "target=" + srv.echoSock},
			closed:        []string{"transport=streamlocal", "ended=the remote side finished", "socket=" + srv.echoSock},
			notInResolved: "command=", notInClosed: "exit="},
		{transport: dialer.TransportDialStdio,
			resolved:      []string{"transport=dial-stdio", "command=docker --host=unix://" + srv.echoSock + " system dial-stdio"},
			open:          []string{"transport=dial-stdio", "target=docker --host=unix://"},
			closed:        []string{"transport=dial-stdio", "ended=the remote side finished", "exit=status 0"},
			notInResolved: "socket=", notInClosed: "exit_status=-1"},
	} {
		t.Run(tc.transport.String(), func(t *testing.T) {
			logs := newRecordHandler()
			cfg := srv.Config(t)
			cfg.Transport = tc.transport
			cfg.Logger = slog.New(logs)
			d, err := dialer.New(srv.URL(srv.echoSock), cfg)
			require.NoError(t, err)
			c, err := d.DialContext(t.Context(), "tcp", "")
			require.NoError(t, err)
			io.WriteString(c, "x")
			require.NoError(t, c.(interface{ CloseWrite() error }).CloseWrite())
			_, err = io.ReadAll(c)
			require.NoError(t, err)
			c.Close()
			require.NoError(t, d.Close())
			out := logs.text()
			resolved := lineOf(out, "dialer: destination resolved")
			for _, w := range tc.resolved {
				assert.Contains(t, resolved, w)
			}
			assert.NotContains(t, resolved, tc.notInResolved)
			opened := lineOf(out, "dialer: conn opened")
			for _, w := range tc.open {
				assert.Contains(t, opened, w)
			}
			closed := lineOf(out, "dialer: conn closed")
			for _, w := range tc.closed {
				assert.Contains(t, closed, w)
			}
			assert.NotContains(t, closed, tc.notInClosed)
		})
	}
}
