package integration

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/testcontainers/testcontainers-go"
	"github.com/testcontainers/testcontainers-go/wait"
	"golang.org/x/crypto/ssh"

	"github.com/dockssh/dockssh/dialer"
	"github.com/dockssh/dockssh/integration/internal/harness"
	"github.com/dockssh/dockssh/internal/shquote"
)

// proxySSHConfig writes an ssh_config whose alias "dest" is sshd's own
// port 22 as seen from inside its container (HostName 127.0.0.1), reached
// through command, with HostKeyAlias dockssh-dest; the returned Config
// trusts sshd's keys under that alias only.
func proxySSHConfig(tb testing.TB, sshd *harness.SSHD, command string) *dialer.Config {
	tb.Helper()
	dir := tb.TempDir()
	cfgPath := filepath.Join(dir, "ssh_config")
	require.NoError(tb, os.WriteFile(cfgPath, []byte(fmt.Sprintf(`Host dest
  HostName 127.0.0.1
  Port 22
  User %s
  HostKeyAlias dockssh-dest
  ProxyCommand %s
`, sshd.User, command)), 0o600))
	var kh strings.Builder
	for _, k := range sshd.HostKeys() {
		fmt.Fprintf(&kh, "dockssh-dest %s", ssh.MarshalAuthorizedKey(k))
	}
	khPath := filepath.Join(dir, "known_hosts")
	require.NoError(tb, os.WriteFile(khPath, []byte(kh.String()), 0o600))
	cfg := dialerConfig(tb, sshd)
	cfg.IgnoreSSHConfig, cfg.SSHConfigPath, cfg.KnownHostsFiles = false, cfgPath, []string{khPath}
	return cfg
}

// sshW is a ProxyCommand that runs the real OpenSSH client as
// "ssh -W target jumphost", the jump host being sshd on its published
// 127.0.0.1 port.
func sshW(tb testing.TB, sshd *harness.SSHD, target string) string {
	tb.Helper()
	args := sshd.SSHArgs(sshd.WriteKnownHosts(tb))
	i := slices.Index(args, "--")
	require.GreaterOrEqual(tb, i, 0)
	args = slices.Concat([]string{"ssh"}, args[:i], []string{"-W", target}, args[i:])
	return shquote.Join(args)
}

// processGone reports whether no process pid exists, not even a zombie.
func processGone(pid int) bool {
	_, err := os.Stat(fmt.Sprintf("/proc/%d", pid))
	return errors.Is(err, os.ErrNotExist)
}

// dialProxied dials once through d, checks that the conn runs over a
// ProxyCommand and returns the command's process ID.
func dialProxied(tb testing.TB, d *dialer.Dialer) int {
	tb.Helper()
	c, err := d.DialContext(tb.Context(), "tcp", "")
	require.NoError(tb, err)
	defer c.Close()
	require.Equal(tb, "proxycommand", c.LocalAddr().Network())
	pid, err := strconv.Atoi(strings.TrimPrefix(c.LocalAddr().String(), "proxycommand:pid="))
	require.NoError(tb, err)
	return pid
}

// The Docker API through "ssh -W %h:%p jumphost" run by the real OpenSSH
// client, the Docker CLI in the sshd image at the far end; the host key is
// known only under the HostKeyAlias. Close ends and reaps the ssh process.
func TestDialerProxyCommandSSHW(t *testing.T) {
	t.Parallel()
	sshd := harness.StartSSHD(t, nil)
	cfg := proxySSHConfig(t, sshd, sshW(t, sshd, "%h:%p"))
	d, err := dialer.New("ssh://dest", cfg)
	require.NoError(t, err)
	cli, err := client.New(client.WithHost("http://docker"), client.WithDialContext(d.DialContext))
	require.NoError(t, err)
	defer cli.Close()

	v, err := cli.ServerVersion(t.Context(), client.ServerVersionOptions{})
	require.NoError(t, err)
	assert.NotEmpty(t, v.Version)
	list, err := cli.ContainerList(t.Context(), client.ContainerListOptions{})
	require.NoError(t, err)
	assert.NotEmpty(t, list.Items)

	pid := dialProxied(t, d)
	assert.False(t, processGone(pid))
	require.NoError(t, d.Close())
	assert.True(t, processGone(pid), "ssh -W (pid %d) is ended and reaped by Close", pid)
	// Two logins: ssh -W's to the jump host, and the dialer's through it.
	assert.GreaterOrEqual(t, strings.Count(sshdLogs(t, sshd), "Accepted publickey"), 2)
}

// ssh -W to a port where nothing listens: ssh says why on stderr and exits
// 255, and the dial's error quotes it.
func TestDialerProxyCommandSSHWFails(t *testing.T) {
	t.Parallel()
	sshd := harness.StartSSHD(t, nil)
	cfg := proxySSHConfig(t, sshd, sshW(t, sshd, "%h:1"))
	d, err := dialer.New("ssh://dest", cfg)
	require.NoError(t, err)
	defer d.Close()
	_, err = d.DialContext(t.Context(), "tcp", "")
	var de *dialer.Error
	require.ErrorAs(t, err, &de)
	assert.Equal(t, dialer.OpProxy, de.Op)
	assert.Equal(t, 255, de.ExitStatus)
	assert.Contains(t, de.Stderr, "open failed")
	assert.Contains(t, err.Error(), "ProxyCommand stderr (last 4 KiB):")
}

// An nc-style proxy: busybox nc in a helper container that shares sshd's
// network namespace, run with docker exec -i, so that 127.0.0.1:22 there
// is sshd.
func TestDialerProxyCommandNetcat(t *testing.T) {
	t.Parallel()
	sshd := harness.StartSSHD(t, nil)
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	helper, err := testcontainers.Run(ctx, harness.Require(t).Target,
		testcontainers.WithLabels(map[string]string{"dockssh.test": "proxy"}),
		testcontainers.WithHostConfigModifier(func(hc *container.HostConfig) {
			hc.NetworkMode = container.NetworkMode("container:" + sshd.Container.GetContainerID())
		}),
		testcontainers.WithWaitStrategy(wait.ForExec([]string{"true"}).WithStartupTimeout(time.Minute)),
	)
	testcontainers.CleanupContainer(t, helper)
	require.NoError(t, err)

	cfg := proxySSHConfig(t, sshd, "docker exec -i "+helper.GetContainerID()+" nc %h %p")
	_, cli := newProxiedDocker(t, cfg)
	ping, err := cli.Ping(t.Context(), client.PingOptions{})
	require.NoError(t, err)
	assert.NotEmpty(t, ping.APIVersion)
}

// newProxiedDocker returns a Dialer for the alias dest and a Docker client
// over it, both closed at cleanup.
func newProxiedDocker(tb testing.TB, cfg *dialer.Config) (*dialer.Dialer, *client.Client) {
	tb.Helper()
	d, err := dialer.New("ssh://dest", cfg)
	require.NoError(tb, err)
	cli, err := client.New(client.WithHost("http://docker"), client.WithDialContext(d.DialContext))
	require.NoError(tb, err)
	tb.Cleanup(func() {
		cli.Close()
		d.Close()
	})
	return d, cli
}
