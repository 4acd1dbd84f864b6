package integration

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/moby/moby/client"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dockssh/dockssh/dialer"
	"github.com/dockssh/dockssh/integration/internal/harness"
)

// TestDialerExampleRemoteDocker runs examples/remote-docker the way its
// doc says, against the real sshd, with everything coming from a
// ~/.ssh/config that also uses Match (which must not break anything) and
// Include.
func TestDialerExampleRemoteDocker(t *testing.T) {
	t.Parallel()
	sshd := harness.StartSSHD(t, nil)
	local := harness.Docker(t)
	version, err := local.ServerVersion(t.Context(), client.ServerVersionOptions{})
	require.NoError(t, err)

	home := t.TempDir()
	sshDir := filepath.Join(home, ".ssh")
	require.NoError(t, os.MkdirAll(filepath.Join(sshDir, "config.d"), 0o700))
	require.NoError(t, os.WriteFile(filepath.Join(sshDir, "known_hosts"), []byte(sshd.KnownHosts()), 0o600))
	require.NoError(t, os.WriteFile(filepath.Join(sshDir, "config"), []byte(`# A config with what real ones have.
Include config.d/*.conf
Match exec "test -e /etc/dockssh-vpn"
    ProxyJump unreachable.invalid
Match host *.corp.invalid !localuser nobody
    User corp
Host *
    ServerAliveInterval 30
    SendEnv LANG LC_*
    HashKnownHosts yes
`), 0o600))
	require.NoError(t, os.WriteFile(filepath.Join(sshDir, "config.d", "dockssh.conf"), []byte(fmt.Sprintf(`Host dockssh-test
    HostName %s
    Port %d
    User %s
    IdentityFile %s
    IdentitiesOnly yes
    IdentityAgent none
`, sshd.Host, sshd.Port, sshd.User, sshd.ClientKeyPath)), 0o600))

	bin := filepath.Join(t.TempDir(), "remote-docker")
	build := exec.CommandContext(t.Context(), "go", "build", "-o", bin, "./examples/remote-docker")
	build.Dir = harness.RepoRoot()
	out, err := build.CombinedOutput()
	require.NoError(t, err, "go build: %s", out)

	cmd := exec.CommandContext(t.Context(), bin, "ssh://dockssh-test")
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + home, "LANG=C"}
	out, err = cmd.CombinedOutput()
	require.NoError(t, err, "remote-docker: %s", out)
	t.Logf("remote-docker output:\n%s", out)
	assert.Contains(t, string(out), "Docker Engine "+version.Version)
	assert.Contains(t, string(out), "CONTAINER ID")
	assert.Contains(t, string(out), sshd.Container.GetContainerID()[:12])
}

// TestDialerUserWithoutDockerAccess: a user that may log in but not use
// the Docker socket gets the remote CLI's words and the fix, through the
// Docker client (which replaces errors that mention "dial unix" with its
// own "Cannot connect to the Docker daemon").
func TestDialerUserWithoutDockerAccess(t *testing.T) {
	t.Parallel()
	sshd := harness.StartSSHD(t, nil)
	sshd.Exec(t, "sh", "-c", `set -e
useradd -m -p '*' -s /bin/bash plain
install -d -m 700 -o plain /home/plain/.ssh
install -m 600 -o plain /root/.ssh/authorized_keys /home/plain/.ssh/authorized_keys`)
	cfg := dialerConfig(t, sshd)
	d, err := dialer.New("ssh://plain@"+sshd.Addr(), cfg)
	require.NoError(t, err)
	defer d.Close()
	cli, err := client.New(client.WithHost("http://docker"), client.WithDialContext(d.DialContext))
	require.NoError(t, err)
	defer cli.Close()
	_, err = cli.Ping(t.Context(), client.PingOptions{})
	require.Error(t, err)
	t.Logf("error: %v", err)
	var de *dialer.Error
	require.ErrorAs(t, err, &de)
	assert.Equal(t, dialer.OpCommand, de.Op)
	assert.Contains(t, de.Stderr, "permission denied")
	assert.Contains(t, err.Error(), "docker group")
	assert.False(t, strings.Contains(err.Error(), "Cannot connect to the Docker daemon at http://docker"), "%v", err)
}
