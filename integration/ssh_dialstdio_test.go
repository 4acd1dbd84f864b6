package integration

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/moby/moby/client"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/ssh"

	"github.com/dockssh/dockssh/integration/internal/harness"
)

// TestOpenSSHDialStdio proves the harness end to end, the way the Docker CLI's
// ssh:// helper works: the real ssh client, strict host key checking against
// the container's own keys, `docker system dial-stdio` on the server, and the
// host's dockerd answering through the mounted socket.
func TestOpenSSHDialStdio(t *testing.T) {
	t.Parallel()
	sshd := harness.StartSSHD(t, nil)
	docker := harness.Docker(t)
	ctx := t.Context()

	ping, err := docker.Ping(ctx, client.PingOptions{})
	require.NoError(t, err)
	version, err := docker.ServerVersion(ctx, client.ServerVersionOptions{})
	require.NoError(t, err)

	knownHosts := sshd.WriteKnownHosts(t)
	cmd := exec.CommandContext(ctx, "ssh", append(sshd.SSHArgs(knownHosts), "docker", "system", "dial-stdio")...)
	cmd.Env = cleanEnv(t)
	// Written by exec's copying goroutine while the test reads it.
	var stderr lockedBuffer
	cmd.Stderr = &stderr
	stdin, err := cmd.StdinPipe()
	require.NoError(t, err)
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	defer func() {
		stdin.Close()
		if err := cmd.Wait(); err != nil {
			t.Logf("ssh exited: %v; stderr: %s", err, stderr.String())
		}
	}()

	// Two requests on the one dial-stdio stream, as an HTTP/1.1 client with
	// keep-alive would send them.
	_, err = io.WriteString(stdin, "GET /_ping HTTP/1.1\r\nHost: docker\r\n\r\n"+
		"GET /version HTTP/1.1\r\nHost: docker\r\nConnection: close\r\n\r\n")
	require.NoError(t, err)
	br := bufio.NewReader(stdout)

	resp, err := http.ReadResponse(br, nil)
	require.NoError(t, err, "ssh stderr: %s", stderr.String())
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Equal(t, "OK", string(body))
	assert.Equal(t, ping.APIVersion, resp.Header.Get("Api-Version"), "Api-Version over ssh vs local")

	resp, err = http.ReadResponse(br, nil)
	require.NoError(t, err, "ssh stderr: %s", stderr.String())
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	var remote struct {
		Version    string
		APIVersion string `json:"ApiVersion"`
	}
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&remote))
	assert.Equal(t, version.Version, remote.Version, "server version over ssh vs local")
	assert.Equal(t, version.APIVersion, remote.APIVersion, "API version over ssh vs local")
}

// TestOpenSSHStrictHostKeyChecking proves that the host key check in the test
// above is real: with a known_hosts entry whose key is not the server's, ssh
// refuses before running anything.
func TestOpenSSHStrictHostKeyChecking(t *testing.T) {
	t.Parallel()
	sshd := harness.StartSSHD(t, nil)

	// A well-formed entry for the right host and port, with keys of every
	// type the server has, none of them the server's.
	var wrong strings.Builder
	for _, k := range sshd.HostKeys() {
		other := otherKeyOfType(t, k.Type())
		fmt.Fprintf(&wrong, "[%s]:%d %s", sshd.Host, sshd.Port, ssh.MarshalAuthorizedKey(other))
	}
	knownHosts := filepath.Join(t.TempDir(), "known_hosts")
	require.NoError(t, os.WriteFile(knownHosts, []byte(wrong.String()), 0o600))

	ctx := t.Context()
	cmd := exec.CommandContext(ctx, "ssh", append(sshd.SSHArgs(knownHosts), "echo", "ran-remote-command")...)
	cmd.Env = cleanEnv(t)
	out, err := cmd.CombinedOutput()
	var exitErr *exec.ExitError
	require.ErrorAs(t, err, &exitErr, "ssh must fail; output: %s", out)
	assert.Equal(t, 255, exitErr.ExitCode(), "ssh exit code; output: %s", out)
	assert.Contains(t, string(out), "REMOTE HOST IDENTIFICATION HAS CHANGED")
	assert.NotContains(t, string(out), "ran-remote-command")

	// And the right known_hosts works with the same arguments.
	cmd = exec.CommandContext(ctx, "ssh", append(sshd.SSHArgs(sshd.WriteKnownHosts(t)), "echo", "ran-remote-command")...)
	cmd.Env = cleanEnv(t)
	out, err = cmd.CombinedOutput()
	require.NoError(t, err, "output: %s", out)
	assert.Equal(t, "ran-remote-command\n", string(out))
}

// lockedBuffer is a bytes.Buffer safe for one writer and concurrent readers.
type lockedBuffer struct {
	mu sync.Mutex // guards b
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// cleanEnv is the environment for the ssh client: no agent, and a HOME of
// its own so nothing of the user's ~/.ssh is read or written.
func cleanEnv(tb testing.TB) []string {
	tb.Helper()
	return []string{"PATH=" + os.Getenv("PATH"), "HOME=" + tb.TempDir(), "LANG=C"}
}

// otherKeyOfType generates a fresh host key of the given SSH key type with
// the real ssh-keygen.
func otherKeyOfType(tb testing.TB, keyType string) ssh.PublicKey {
	tb.Helper()
	args := map[string][]string{
		ssh.KeyAlgoED25519:  {"-t", "ed25519"},
		ssh.KeyAlgoECDSA256: {"-t", "ecdsa", "-b", "256"},
		ssh.KeyAlgoRSA:      {"-t", "rsa", "-b", "2048"},
	}[keyType]
	require.NotNil(tb, args, "key type %s", keyType)
	path := filepath.Join(tb.TempDir(), "key")
	out, err := exec.CommandContext(tb.Context(), "ssh-keygen", append(args, "-q", "-N", "", "-f", path)...).CombinedOutput()
	require.NoError(tb, err, "ssh-keygen: %s", out)
	pub, err := os.ReadFile(path + ".pub")
	require.NoError(tb, err)
	k, _, _, _, err := ssh.ParseAuthorizedKey(pub)
	require.NoError(tb, err)
	return k
}
