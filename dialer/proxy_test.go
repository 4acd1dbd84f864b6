package dialer_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dockssh/dockssh/dialer"
	"github.com/dockssh/dockssh/internal/shquote"
)

// ncFlag makes the test binary a netcat for ProxyCommand tests: with
// "-dockssh-nc host port" it connects there and copies its standard input
// and output over the connection (the host has no nc of its own).
const ncFlag = "-dockssh-nc"

func TestMain(m *testing.M) {
	if len(os.Args) == 4 && os.Args[1] == ncFlag {
		os.Exit(netcat(os.Args[2], os.Args[3]))
	}
	os.Exit(m.Run())
}

func netcat(host, port string) int {
	c, err := net.Dial("tcp", net.JoinHostPort(host, port))
	if err != nil {
		fmt.Fprintln(os.Stderr, "nc:", err)
		return 1
	}
	go func() {
		io.Copy(c, os.Stdin)
		c.(*net.TCPConn).CloseWrite()
	}()
	io.Copy(os.Stdout, c)
	return 0
}

// ncCommand is a ProxyCommand that runs the test binary as netcat.
func ncCommand(tb testing.TB) string {
	tb.Helper()
	exe, err := os.Executable()
	require.NoError(tb, err)
	return shquote.Quote(exe) + " " + ncFlag + " %h %p"
}

// proxyConfig returns a Config for srv whose ssh_config reaches the alias
// "viaproxy" (HostName 127.0.0.1) through command.
func proxyConfig(tb testing.TB, srv *fakeServer, command string) *dialer.Config {
	tb.Helper()
	cfg := srv.Config(tb)
	path := filepath.Join(tb.TempDir(), "ssh_config")
	require.NoError(tb, os.WriteFile(path, []byte(fmt.Sprintf(
		"Host viaproxy\n  HostName 127.0.0.1\n  Port %d\n  User tester\n  ProxyCommand %s\n", srv.port, command)), 0o600))
	cfg.IgnoreSSHConfig, cfg.SSHConfigPath = false, path
	return cfg
}

// proxyScript writes an executable shell script and returns a ProxyCommand
// that runs it with the host and port: ssh runs "exec COMMAND", so a
// command of several statements belongs in a script, as users write them.
func proxyScript(tb testing.TB, body string) string {
	tb.Helper()
	path := filepath.Join(tb.TempDir(), "proxy.sh")
	require.NoError(tb, os.WriteFile(path, []byte("#!/bin/sh\n"+body+"\n"), 0o700))
	return shquote.Quote(path) + " %h %p"
}

// proxyPID is the process ID of the ProxyCommand under conn.
func proxyPID(tb testing.TB, c net.Conn) int {
	tb.Helper()
	require.Equal(tb, "proxycommand", c.LocalAddr().Network())
	pid, err := strconv.Atoi(strings.TrimPrefix(c.LocalAddr().String(), "proxycommand:pid="))
	require.NoError(tb, err, c.LocalAddr().String())
	return pid
}

// processGone reports whether no process pid exists, not even a zombie.
func processGone(pid int) bool {
	_, err := os.Stat(fmt.Sprintf("/proc/%d", pid))
	return errors.Is(err, os.ErrNotExist)
}

// readPID reads a process ID a ProxyCommand wrote into path.
func readPID(tb testing.TB, path string) int {
	tb.Helper()
	b, err := os.ReadFile(path)
	require.NoError(tb, err)
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	require.NoError(tb, err)
	return pid
}

func TestProxyCommand(t *testing.T) {
	t.Parallel()
	srv := newFakeServer(t)
	d, err := dialer.New("ssh://viaproxy", proxyConfig(t, srv, ncCommand(t)))
	require.NoError(t, err)
	c, err := d.DialContext(t.Context(), "tcp", "")
	require.NoError(t, err)
	pid := proxyPID(t, c)
	assert.False(t, processGone(pid), "the proxy runs while the connection is up")
	c.Close()
	assert.Equal(t, "OK", get(t, httpClient(d), "/_ping"))

	require.NoError(t, d.Close())
	assert.True(t, processGone(pid), "the proxy %d is killed and reaped by Close", pid)
}

// A proxy that exits at once: its exit status and stderr, redacted, are
// the error.
func TestProxyCommandExitsAtOnce(t *testing.T) {
	t.Parallel()
	srv := newFakeServer(t)
	cmd := proxyScript(t, `echo "bastion: no route to $1:$2 via https://proxyuser:hunter2secret@gw.example" >&2; exit 3`)
	d, err := dialer.New("ssh://viaproxy", proxyConfig(t, srv, cmd))
	require.NoError(t, err)
	defer d.Close()
	_, err = d.DialContext(t.Context(), "tcp", "")
	var de *dialer.Error
	require.ErrorAs(t, err, &de)
	assert.Equal(t, dialer.OpProxy, de.Op)
	assert.Equal(t, 3, de.ExitStatus)
	assert.Contains(t, de.Stderr, fmt.Sprintf("bastion: no route to 127.0.0.1:%d", srv.port))
	assert.Contains(t, err.Error(), "exited with status 3")
	assert.Contains(t, err.Error(), "ProxyCommand stderr (last 4 KiB): bastion: no route to 127.0.0.1")
	assert.NotContains(t, err.Error(), "hunter2secret", "the stderr is redacted")
	assert.NotContains(t, de.Stderr, "hunter2secret")
}

// A proxy that never answers: the context bounds the dial, and the proxy
// and its children are gone afterwards.
func TestProxyCommandHangs(t *testing.T) {
	t.Parallel()
	srv := newFakeServer(t)
	dir := t.TempDir()
	leader, child := filepath.Join(dir, "leader"), filepath.Join(dir, "child")
	cmd := proxyScript(t, fmt.Sprintf(`sleep 600 & echo $! > %s; echo $$ > %s; echo waiting for the bastion >&2; exec sleep 600`,
		shquote.Quote(child), shquote.Quote(leader)))
	d, err := dialer.New("ssh://viaproxy", proxyConfig(t, srv, cmd))
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(t.Context(), time.Second)
	defer cancel()
	start := time.Now()
	_, err = d.DialContext(ctx, "tcp", "")
	require.Error(t, err)
	assert.Less(t, time.Since(start), 10*time.Second)
	assert.ErrorIs(t, err, context.DeadlineExceeded)
	assert.Contains(t, err.Error(), "sent no SSH version line")
	require.NoError(t, d.Close())
	assert.True(t, processGone(readPID(t, leader)), "the proxy is killed and reaped")
	assertNotRunning(t, readPID(t, child))
}

// assertNotRunning waits until pid is gone or a zombie: a child of the
// proxy got the signal sent to the proxy's process group with it, but
// dies on its own time, and init reaps it (in a container it may never).
func assertNotRunning(tb testing.TB, pid int) {
	tb.Helper()
	assert.Eventually(tb, func() bool {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			return errors.Is(err, os.ErrNotExist)
		}
		f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:]))
		return len(f) > 0 && (f[0] == "Z" || f[0] == "X")
	}, 5*time.Second, 10*time.Millisecond, "the proxy's child %d is not running", pid)
}

// The proxy's environment goes through envsanitize's Helper policy: a
// dynamic-loader variable of the parent does not reach it; what a proxy
// needs does.
func TestProxyCommandEnvironment(t *testing.T) {
	t.Setenv("LD_PRELOAD", "/tmp/dockssh-canary.so")
	t.Setenv("BASH_ENV", "/tmp/dockssh-canary.sh")
	t.Setenv("HTTPS_PROXY", "http://127.0.0.1:3128")
	srv := newFakeServer(t)
	envFile := filepath.Join(t.TempDir(), "env")
	exe, err := os.Executable()
	require.NoError(t, err)
	cfg := proxyConfig(t, srv, proxyScript(t, "env > "+shquote.Quote(envFile)+"; exec "+shquote.Quote(exe)+" "+ncFlag+` "$1" "$2"`))
	cfg.AgentSocket = "/run/agent.sock"
	d, err := dialer.New("ssh://viaproxy", cfg)
	require.NoError(t, err)
	defer d.Close()
	c, err := d.DialContext(t.Context(), "tcp", "")
	require.NoError(t, err)
	c.Close()
	b, err := os.ReadFile(envFile)
	require.NoError(t, err)
	env := "\n" + string(b)
	assert.NotContains(t, env, "\nLD_PRELOAD=")
	assert.NotContains(t, env, "\nBASH_ENV=")
	assert.Contains(t, env, "\nHTTPS_PROXY=http://127.0.0.1:3128\n")
	assert.Contains(t, env, "\nHOME="+cfg.HomeDir+"\n")
	assert.Contains(t, env, "\nSSH_AUTH_SOCK=/run/agent.sock\n")
	assert.Contains(t, env, "\nPATH=")
}

// ProxyCommand none means a direct connection, and a ProxyCommand set
// first hides a later ProxyJump (and the other way round), as in ssh.
func TestProxyCommandNoneAndFirstWins(t *testing.T) {
	t.Parallel()
	srv := newFakeServer(t)
	cfg := srv.Config(t)
	path := filepath.Join(t.TempDir(), "ssh_config")
	require.NoError(t, os.WriteFile(path, []byte(fmt.Sprintf(`
Host direct
  ProxyCommand none
Host viajump
  ProxyJump 127.0.0.1:1
Host direct other viajump
  HostName 127.0.0.1
  Port %d
  User tester
  ProxyCommand %s
`, srv.port, ncCommand(t))), 0o600))
	cfg.IgnoreSSHConfig, cfg.SSHConfigPath = false, path

	d, err := dialer.New("ssh://direct", cfg)
	require.NoError(t, err)
	defer d.Close()
	c, err := d.DialContext(t.Context(), "tcp", "")
	require.NoError(t, err)
	assert.Equal(t, "tcp", c.LocalAddr().Network(), "ProxyCommand none: a direct connection")
	c.Close()

	d2, err := dialer.New("ssh://other", cfg)
	require.NoError(t, err)
	defer d2.Close()
	c, err = d2.DialContext(t.Context(), "tcp", "")
	require.NoError(t, err)
	assert.Equal(t, "proxycommand", c.LocalAddr().Network())
	c.Close()

	d3, err := dialer.New("ssh://viajump", cfg)
	require.NoError(t, err)
	defer d3.Close()
	_, err = d3.DialContext(t.Context(), "tcp", "")
	var de *dialer.Error
	require.ErrorAs(t, err, &de)
	assert.Equal(t, dialer.OpConnect, de.Op, "the ProxyJump set first wins over the later ProxyCommand")
	assert.Equal(t, "127.0.0.1:1", de.Addr)
}

func TestRefuseProxyCommand(t *testing.T) {
	t.Parallel()
	srv := newFakeServer(t)
	cfg := proxyConfig(t, srv, ncCommand(t))
	cfg.RefuseProxyCommand = true
	_, err := dialer.New("ssh://viaproxy", cfg)
	var de *dialer.Error
	require.ErrorAs(t, err, &de)
	assert.Equal(t, dialer.OpSSHConfig, de.Op)
	assert.Contains(t, err.Error(), "RefuseProxyCommand")
}

// The first ProxyJump host's own ProxyCommand reaches it, as ssh -J runs
// "ssh -W ... hop", which applies the hop's ProxyCommand; the destination
// is then reached through the hop's SSH connection.
func TestProxyCommandOfTheFirstJumpHost(t *testing.T) {
	t.Parallel()
	jump := newFakeServer(t)
	jump.set(func() { jump.allowTCP = true })
	srv := newFakeServer(t)
	cfg := srv.Config(t)
	kh := filepath.Join(t.TempDir(), "known_hosts")
	a, err := os.ReadFile(srv.knownHosts)
	require.NoError(t, err)
	b, err := os.ReadFile(jump.knownHosts)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(kh, append(a, b...), 0o600))
	cfg.KnownHostsFiles = []string{kh}
	path := filepath.Join(t.TempDir(), "ssh_config")
	require.NoError(t, os.WriteFile(path, []byte(fmt.Sprintf(`
Host dest
  HostName 127.0.0.1
  Port %d
  User tester
  ProxyJump hop
Host hop
  HostName 127.0.0.1
  Port %d
  User tester
  IdentityFile %s
  ProxyCommand %s
`, srv.port, jump.port, jump.clientKeyPath, ncCommand(t))), 0o600))
	cfg.IgnoreSSHConfig, cfg.SSHConfigPath = false, path
	d, err := dialer.New("ssh://dest", cfg)
	require.NoError(t, err)
	defer d.Close()
	c, err := d.DialContext(t.Context(), "tcp", "")
	require.NoError(t, err)
	assert.Equal(t, "proxycommand", c.LocalAddr().Network(), "the first hop is reached through its ProxyCommand")
	c.Close()
	execs, _, _ := srv.stats()
	assert.NotEmpty(t, execs, "the destination ran the remote command")
}

// A proxy that closes its output and only then says why and exits: its own
// exit status and message are reported, not the signal a hurried Close
// would have sent it.
func TestProxyCommandClosesOutputBeforeExiting(t *testing.T) {
	t.Parallel()
	srv := newFakeServer(t)
	cmd := proxyScript(t, `exec 1>&-; sleep 0.3; echo "tunnel closed by the bastion" >&2; exit 4`)
	d, err := dialer.New("ssh://viaproxy", proxyConfig(t, srv, cmd))
	require.NoError(t, err)
	defer d.Close()
	_, err = d.DialContext(t.Context(), "tcp", "")
	var de *dialer.Error
	require.ErrorAs(t, err, &de)
	assert.Equal(t, dialer.OpProxy, de.Op)
	assert.Equal(t, 4, de.ExitStatus)
	assert.Contains(t, de.Stderr, "tunnel closed by the bastion")
}
