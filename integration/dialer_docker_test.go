package integration

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/moby/moby/api/pkg/stdcopy"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/ssh"

	"github.com/dockssh/dockssh/dialer"
	"github.com/dockssh/dockssh/hostkeys"
	"github.com/dockssh/dockssh/integration/internal/harness"
)

// dialerConfig is a Config that trusts exactly sshd's host keys, logs in
// with its client key and reads nothing of the user's ~/.ssh.
func dialerConfig(tb testing.TB, sshd *harness.SSHD) *dialer.Config {
	tb.Helper()
	return &dialer.Config{
		HomeDir:         tb.TempDir(),
		IgnoreSSHConfig: true,
		KnownHostsFiles: []string{sshd.WriteKnownHosts(tb)},
		IdentityFiles:   []string{sshd.ClientKeyPath},
		AgentSocket:     "none",
	}
}

func sshURL(sshd *harness.SSHD, path string) string {
	return fmt.Sprintf("ssh://%s@%s%s", sshd.User, sshd.Addr(), path)
}

// newRemoteDocker returns a Dialer for sshd and a Docker client that uses
// it; both are closed at cleanup.
func newRemoteDocker(tb testing.TB, sshd *harness.SSHD, path string, cfg *dialer.Config) (*dialer.Dialer, *client.Client) {
	tb.Helper()
	if cfg == nil {
		cfg = dialerConfig(tb, sshd)
	}
	d, err := dialer.New(sshURL(sshd, path), cfg)
	require.NoError(tb, err)
	cli, err := client.New(client.WithHost("http://docker"), client.WithDialContext(d.DialContext))
	require.NoError(tb, err)
	tb.Cleanup(func() {
		cli.Close()
		d.Close()
	})
	return d, cli
}

// runTarget creates and starts a container of the target image running
// cmd, removed at cleanup.
func runTarget(tb testing.TB, cli *client.Client, cfg *container.Config) string {
	tb.Helper()
	ctx := context.Background()
	cfg.Image = harness.Require(tb).Target
	cfg.Labels = map[string]string{"dockssh.test": "dialer"}
	created, err := cli.ContainerCreate(ctx, client.ContainerCreateOptions{Config: cfg})
	require.NoError(tb, err)
	tb.Cleanup(func() {
		local := harness.Docker(tb)
		local.ContainerRemove(context.Background(), created.ID, client.ContainerRemoveOptions{Force: true})
	})
	return created.ID
}

func TestDialerDockerAPI(t *testing.T) {
	t.Parallel()
	sshd := harness.StartSSHD(t, nil)
	local := harness.Docker(t)
	_, remote := newRemoteDocker(t, sshd, "", nil)
	ctx := t.Context()

	t.Run("Ping and version", func(t *testing.T) {
		ping, err := remote.Ping(ctx, client.PingOptions{})
		require.NoError(t, err)
		lping, err := local.Ping(ctx, client.PingOptions{})
		require.NoError(t, err)
		assert.Equal(t, lping.APIVersion, ping.APIVersion)
		v, err := remote.ServerVersion(ctx, client.ServerVersionOptions{})
		require.NoError(t, err)
		lv, err := local.ServerVersion(ctx, client.ServerVersionOptions{})
		require.NoError(t, err)
		assert.Equal(t, lv.Version, v.Version)
	})

	t.Run("ContainerList", func(t *testing.T) {
		list, err := remote.ContainerList(ctx, client.ContainerListOptions{All: true})
		require.NoError(t, err)
		llist, err := local.ContainerList(ctx, client.ContainerListOptions{All: true})
		require.NoError(t, err)
		ids := func(l client.ContainerListResult) []string {
			var out []string
			for _, c := range l.Items {
				out = append(out, c.ID)
			}
			sort.Strings(out)
			return out
		}
		assert.Contains(t, ids(list), sshd.Container.GetContainerID())
		assert.Equal(t, ids(llist), ids(list))
	})

	t.Run("create, start, attach with CloseWrite", func(t *testing.T) {
		id := runTarget(t, remote, &container.Config{
			Cmd:       []string{"sh", "-c", "tr a-z A-Z; echo done >&2"},
			OpenStdin: true, StdinOnce: true, AttachStdin: true, AttachStdout: true, AttachStderr: true,
		})
		att, err := remote.ContainerAttach(ctx, id, client.ContainerAttachOptions{Stream: true, Stdin: true, Stdout: true, Stderr: true})
		require.NoError(t, err)
		defer att.Close()
		_, err = remote.ContainerStart(ctx, id, client.ContainerStartOptions{})
		require.NoError(t, err)
		_, err = io.WriteString(att.Conn, "hello over ssh\n")
		require.NoError(t, err)
		require.NoError(t, att.CloseWrite(), "CloseWrite ends the container's stdin")
		var stdout, stderr bytes.Buffer
		done := make(chan error, 1)
		go func() {
			_, err := stdcopy.StdCopy(&stdout, &stderr, att.Reader)
			done <- err
		}()
		select {
		case err := <-done:
			require.NoError(t, err)
		case <-time.After(30 * time.Second):
			t.Fatal("no EOF after CloseWrite: the container's stdin was not closed")
		}
		assert.Equal(t, "HELLO OVER SSH\n", stdout.String())
		assert.Equal(t, "done\n", stderr.String())
	})

	t.Run("ContainerLogs follow", func(t *testing.T) {
		id := runTarget(t, remote, &container.Config{
			Cmd: []string{"sh", "-c", "for i in 1 2 3 4 5; do echo line $i; sleep 0.2; done"},
		})
		_, err := remote.ContainerStart(ctx, id, client.ContainerStartOptions{})
		require.NoError(t, err)
		logs, err := remote.ContainerLogs(ctx, id, client.ContainerLogsOptions{ShowStdout: true, Follow: true})
		require.NoError(t, err)
		defer logs.Close()
		var out bytes.Buffer
		_, err = stdcopy.StdCopy(&out, io.Discard, logs)
		require.NoError(t, err, "follow ends when the container exits")
		assert.Equal(t, "line 1\nline 2\nline 3\nline 4\nline 5\n", out.String())
	})
}

func TestDialerImageSave(t *testing.T) {
	t.Parallel()
	im := harness.Require(t)
	sshd := harness.StartSSHD(t, nil)
	local := harness.Docker(t)
	_, remote := newRemoteDocker(t, sshd, "", nil)
	ctx := t.Context()

	sum := func(cli *client.Client) (string, int64) {
		rc, err := cli.ImageSave(ctx, []string{im.SSHD})
		require.NoError(t, err)
		defer rc.Close()
		h := sha256.New()
		n, err := io.Copy(h, rc)
		require.NoError(t, err)
		return hex.EncodeToString(h.Sum(nil)), n
	}
	start := time.Now()
	remoteSum, remoteN := sum(remote)
	t.Logf("ImageSave over the dialer: %d MiB in %s", remoteN>>20, time.Since(start))
	localSum, localN := sum(local)
	assert.GreaterOrEqual(t, remoteN, int64(100<<20), "the image is at least 100 MiB")
	assert.Equal(t, localN, remoteN)
	assert.Equal(t, localSum, remoteSum)
}

// TestDialerManyStreamsOverMaxSessions holds 50 long-lived streams open at
// once against sshd's MaxSessions 10: the dialer opens more SSH
// connections instead of failing.
func TestDialerManyStreamsOverMaxSessions(t *testing.T) {
	t.Parallel()
	sshd := harness.StartSSHD(t, &harness.SSHDOptions{MaxSessions: 10})
	var dials atomic.Int32
	cfg := dialerConfig(t, sshd)
	var nd net.Dialer
	cfg.DialTCP = func(ctx context.Context, network, addr string) (net.Conn, error) {
		dials.Add(1)
		return nd.DialContext(ctx, network, addr)
	}
	_, remote := newRemoteDocker(t, sshd, "", cfg)
	ctx := t.Context()
	id := runTarget(t, remote, &container.Config{Cmd: []string{"sh", "-c", "while true; do echo tick; sleep 0.1; done"}})
	_, err := remote.ContainerStart(ctx, id, client.ContainerStartOptions{})
	require.NoError(t, err)

	const streams = 50
	var opened sync.WaitGroup
	opened.Add(streams)
	allOpen := make(chan struct{})
	var wg sync.WaitGroup
	var failures atomic.Int32
	for i := range streams {
		wg.Add(1)
		go func() {
			defer wg.Done()
			logs, err := remote.ContainerLogs(ctx, id, client.ContainerLogsOptions{ShowStdout: true, Follow: true, Tail: "1"})
			if err != nil {
				failures.Add(1)
				opened.Done()
				t.Errorf("stream %d: %v", i, err)
				return
			}
			defer logs.Close()
			br := bufio.NewReader(logs)
			_, err = br.ReadString('\n')
			opened.Done()
			if err != nil {
				failures.Add(1)
				t.Errorf("stream %d: first line: %v", i, err)
				return
			}
			<-allOpen
			// Still alive with all 50 open.
			if _, err := br.ReadString('\n'); err != nil {
				failures.Add(1)
				t.Errorf("stream %d: line after all opened: %v", i, err)
			}
		}()
	}
	opened.Wait()
	close(allOpen)
	wg.Wait()
	assert.Zero(t, failures.Load())
	assert.GreaterOrEqual(t, dials.Load(), int32(5), "50 sessions need at least 5 SSH connections at MaxSessions 10")
	assert.LessOrEqual(t, dials.Load(), int32(8), "bounded by MaxConnections (default 8)")
	t.Logf("SSH connections: %d", dials.Load())
}

func TestDialerSSHDRestart(t *testing.T) {
	t.Parallel()
	sshd := harness.StartSSHD(t, nil)
	_, remote := newRemoteDocker(t, sshd, "", nil)
	ctx := t.Context()
	id := runTarget(t, remote, &container.Config{Cmd: []string{"sh", "-c", "while true; do echo tick; sleep 0.1; done"}})
	_, err := remote.ContainerStart(ctx, id, client.ContainerStartOptions{})
	require.NoError(t, err)
	logs, err := remote.ContainerLogs(ctx, id, client.ContainerLogsOptions{ShowStdout: true, Follow: true})
	require.NoError(t, err)
	defer logs.Close()
	_, err = bufio.NewReader(logs).ReadString('\n')
	require.NoError(t, err)

	readErr := make(chan error, 1)
	go func() {
		_, err := io.Copy(io.Discard, logs)
		readErr <- err
	}()
	sshd.Restart(t)
	select {
	case err := <-readErr:
		require.Error(t, err, "the in-flight stream fails rather than ending as if complete")
		t.Logf("in-flight stream: %v", err)
		assert.True(t, strings.Contains(err.Error(), "dialer: ") || strings.Contains(err.Error(), "unexpected EOF"), "%v", err)
	case <-time.After(60 * time.Second):
		t.Fatal("the in-flight stream hangs after the server restarted")
	}
	_, err = remote.Ping(ctx, client.PingOptions{})
	require.NoError(t, err, "the next call reconnects")
}

func TestDialerChangedHostKey(t *testing.T) {
	t.Parallel()
	sshd := harness.StartSSHD(t, nil)
	cfg := dialerConfig(t, sshd)
	// known_hosts names the server with a key of every type it has, none
	// of them its own.
	var wrong strings.Builder
	for _, k := range sshd.HostKeys() {
		fmt.Fprintf(&wrong, "[%s]:%d %s", sshd.Host, sshd.Port, ssh.MarshalAuthorizedKey(otherKeyOfType(t, k.Type())))
	}
	kh := filepath.Join(t.TempDir(), "known_hosts")
	require.NoError(t, os.WriteFile(kh, []byte(wrong.String()), 0o600))
	cfg.KnownHostsFiles = []string{kh}
	acceptedBefore := strings.Count(sshdLogs(t, sshd), "Accepted publickey")

	_, remote := newRemoteDocker(t, sshd, "", cfg)
	_, err := remote.Ping(t.Context(), client.PingOptions{})
	require.Error(t, err)
	var hk *hostkeys.HostKeyError
	require.ErrorAs(t, err, &hk)
	assert.ErrorIs(t, err, hostkeys.ErrHostKeyChanged)
	var de *dialer.Error
	require.ErrorAs(t, err, &de)
	assert.Equal(t, dialer.OpHostKey, de.Op)
	assert.Contains(t, err.Error(), hk.Fingerprint)
	t.Logf("error: %v", err)
	assert.Equal(t, acceptedBefore, strings.Count(sshdLogs(t, sshd), "Accepted publickey"), "no authentication was attempted")
}

func sshdLogs(tb testing.TB, sshd *harness.SSHD) string {
	tb.Helper()
	rc, err := sshd.Container.Logs(context.Background())
	require.NoError(tb, err)
	defer rc.Close()
	b, err := io.ReadAll(rc)
	require.NoError(tb, err)
	return string(b)
}

func TestDialerDockerMissingFromPATH(t *testing.T) {
	t.Parallel()
	sshd := harness.StartSSHD(t, &harness.SSHDOptions{ExtraConfig: "SetEnv PATH=/nonexistent"})
	_, remote := newRemoteDocker(t, sshd, "", nil)
	_, err := remote.Ping(t.Context(), client.PingOptions{})
	require.Error(t, err)
	t.Logf("error: %v", err)
	var de *dialer.Error
	require.ErrorAs(t, err, &de)
	assert.Equal(t, dialer.OpCommand, de.Op)
	assert.Equal(t, 127, de.ExitStatus)
	assert.Contains(t, de.Stderr, "docker")
	assert.Contains(t, err.Error(), "PATH")
	assert.Contains(t, err.Error(), "Config.RemoteDocker")

	// The fix the error names works.
	cfg := dialerConfig(t, sshd)
	cfg.RemoteDocker = "/usr/bin/docker"
	_, remote = newRemoteDocker(t, sshd, "", cfg)
	_, err = remote.Ping(t.Context(), client.PingOptions{})
	require.NoError(t, err)
}

func TestDialerPasswordCanary(t *testing.T) {
	t.Parallel()
	sshd := harness.StartSSHD(t, nil)
	canary := "canary-" + randomHex(t, 12)
	var logs lockedBuffer
	logger := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	url := fmt.Sprintf("ssh://%s:%s@%s", sshd.User, canary, sshd.Addr())
	var errs []string

	// The sshd allows no passwords: with no key the dial fails.
	cfg := dialerConfig(t, sshd)
	cfg.IdentityFiles = []string{filepath.Join(t.TempDir(), "none")}
	cfg.Logger = logger
	d, err := dialer.New(url, cfg)
	require.NoError(t, err)
	cli, err := client.New(client.WithHost("http://docker"), client.WithDialContext(d.DialContext))
	require.NoError(t, err)
	_, err = cli.Ping(t.Context(), client.PingOptions{})
	require.Error(t, err)
	var de *dialer.Error
	require.ErrorAs(t, err, &de)
	assert.Equal(t, dialer.OpAuth, de.Op)
	errs = append(errs, err.Error(), fmt.Sprintf("%+v", err), fmt.Sprintf("%#v", de))
	_, err = cli.ContainerList(t.Context(), client.ContainerListOptions{})
	require.Error(t, err)
	errs = append(errs, err.Error())
	cli.Close()
	d.Close()

	// With the key it works, and the password still shows nowhere.
	cfg = dialerConfig(t, sshd)
	cfg.Logger = logger
	d, err = dialer.New(url, cfg)
	require.NoError(t, err)
	cli, err = client.New(client.WithHost("http://docker"), client.WithDialContext(d.DialContext))
	require.NoError(t, err)
	_, err = cli.Ping(t.Context(), client.PingOptions{})
	require.NoError(t, err)
	cli.Close()
	d.Close()

	out := logs.String()
	assert.Contains(t, out, "URL contains a password")
	assert.Contains(t, out, "SSH authenticated")
	for _, s := range append(errs, out) {
		assert.NotContains(t, s, canary)
	}
}

func TestDialerStreamLocal(t *testing.T) {
	t.Parallel()
	for _, allow := range []string{"yes", "no"} {
		t.Run("AllowStreamLocalForwarding "+allow, func(t *testing.T) {
			sshd := harness.StartSSHD(t, &harness.SSHDOptions{AllowStreamLocalForwarding: allow})
			cfg := dialerConfig(t, sshd)
			cfg.Transport = dialer.TransportStreamLocal
			d, remote := newRemoteDocker(t, sshd, "/var/run/docker.sock", cfg)
			ctx := t.Context()
			_, err := remote.Ping(ctx, client.PingOptions{})
			require.NoError(t, err)
			// Hold a conn open and look at the server's processes.
			c, err := d.DialContext(ctx, "tcp", "")
			require.NoError(t, err)
			defer c.Close()
			assert.Equal(t, map[string]dialer.Transport{"yes": dialer.TransportStreamLocal, "no": dialer.TransportDialStdio}[allow], c.RemoteAddr().(*dialer.Addr).Transport)
			procs := dialStdioProcs(t, sshd)
			if allow == "yes" {
				assert.Zero(t, procs, "no remote process per conn")
			} else {
				assert.Positive(t, procs, "fell back to dial-stdio")
			}
			list, err := remote.ContainerList(ctx, client.ContainerListOptions{})
			require.NoError(t, err)
			assert.NotEmpty(t, list.Items)
		})
	}
}

// dialStdioProcs counts "docker ... system dial-stdio" processes in the
// sshd container.
func dialStdioProcs(tb testing.TB, sshd *harness.SSHD) int {
	tb.Helper()
	// The bracket keeps the pattern from matching this shell's own
	// command line.
	out := sshd.Exec(tb, "sh", "-c", "pgrep -f 'system dial-stdi[o]' | wc -l")
	n, err := strconv.Atoi(strings.TrimSpace(out))
	require.NoError(tb, err, out)
	return n
}

// addDockerUser creates a non-root user in the sshd container that logs in
// with the harness's client key and may use the Docker socket (through a
// group with the socket's gid; the socket itself, the host's, is left
// alone).
func addDockerUser(tb testing.TB, sshd *harness.SSHD, name string) {
	tb.Helper()
	sshd.Exec(tb, "sh", "-c", `set -e
gid=$(stat -c %g /var/run/docker.sock)
getent group "$gid" >/dev/null || groupadd -g "$gid" dockerhost
useradd -m -p '*' -s /bin/bash -G "$(getent group "$gid" | cut -d: -f1)" `+name+`
install -d -m 700 -o `+name+` /home/`+name+`/.ssh
install -m 600 -o `+name+` /root/.ssh/authorized_keys /home/`+name+`/.ssh/authorized_keys`)
}

// TestDialerCloseLeavesNoRemoteProcess closes conns whose remote
// dial-stdio may wait on the daemon after EOF. A logs stream ends when the
// daemon sees EOF; a hijacked attach stream does not, so there the dialer
// signals the process after Config.CloseGrace. sshd refuses to signal the
// sessions of root ("session signalling requires privilege separation":
// root sessions run in the privileged monitor), so that case runs as a
// normal user.
func TestDialerCloseLeavesNoRemoteProcess(t *testing.T) {
	t.Parallel()
	sshd := harness.StartSSHD(t, nil)
	addDockerUser(t, sshd, "builder")
	for _, tc := range []struct {
		name string
		user string
		open func(t *testing.T, cli *client.Client, id string) func()
	}{
		{"logs follow as root", "root", func(t *testing.T, cli *client.Client, id string) func() {
			logs, err := cli.ContainerLogs(t.Context(), id, client.ContainerLogsOptions{ShowStdout: true, Follow: true})
			require.NoError(t, err)
			return func() { logs.Close() }
		}},
		{"attach as a user", "builder", func(t *testing.T, cli *client.Client, id string) func() {
			att, err := cli.ContainerAttach(t.Context(), id, client.ContainerAttachOptions{Stream: true, Stdout: true})
			require.NoError(t, err)
			return att.Close
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := dialerConfig(t, sshd)
			cfg.CloseGrace = 500 * time.Millisecond
			d, err := dialer.New(fmt.Sprintf("ssh://%s@%s", tc.user, sshd.Addr()), cfg)
			require.NoError(t, err)
			defer d.Close()
			remote, err := client.New(client.WithHost("http://docker"), client.WithDialContext(d.DialContext))
			require.NoError(t, err)
			defer remote.Close()
			id := runTarget(t, remote, &container.Config{Cmd: []string{"sh", "-c", "while true; do sleep 1; done"}})
			_, err = remote.ContainerStart(t.Context(), id, client.ContainerStartOptions{})
			require.NoError(t, err)
			// The container prints nothing, so the daemon never writes
			// and dial-stdio never hits a broken pipe by itself.
			closeStream := tc.open(t, remote, id)
			require.Eventually(t, func() bool { return dialStdioProcs(t, sshd) >= 1 }, 10*time.Second, 100*time.Millisecond)
			closeStream()
			remote.Close()
			start := time.Now()
			require.NoError(t, d.Close())
			t.Logf("Dialer.Close took %s", time.Since(start))
			require.Eventually(t, func() bool { return dialStdioProcs(t, sshd) == 0 }, 10*time.Second, 100*time.Millisecond,
				"a dial-stdio process is left on the server")
		})
	}
}

func randomHex(tb testing.TB, n int) string {
	tb.Helper()
	b := make([]byte, n)
	_, err := rand.Read(b)
	require.NoError(tb, err)
	return hex.EncodeToString(b)
}

var _ = ed25519.GenerateKey
