package dialer

import (
	"os/exec"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestRemoteCommand(t *testing.T) {
	assert.Equal(t, "docker system dial-stdio", remoteCommand("docker", ""))
	assert.Equal(t, "/usr/local/bin/docker --host=unix:///run/user/1000/docker.sock system dial-stdio",
		remoteCommand("/usr/local/bin/docker", "/run/user/1000/docker.sock"))
	assert.Equal(t, `docker '--host=unix:///tmp/my docker'\''s;$(rm -rf ~).sock' system dial-stdio`,
		remoteCommand("docker", "/tmp/my docker's;$(rm -rf ~).sock"))
}

// shellArgs runs the command line through the real /bin/sh and returns the
// words it sees.
func shellArgs(tb testing.TB, line string) []string {
	tb.Helper()
	out, err := exec.Command("/bin/sh", "-c", `printf '%s\0' `+line).Output()
	require.NoError(tb, err, line)
	words := strings.Split(string(out), "\x00")
	return words[:len(words)-1]
}

// TestRemoteCommandWithRealShell: the command line the dialer sends
// splits, in a real POSIX shell, into exactly the words it was made of.
func TestRemoteCommandWithRealShell(t *testing.T) {
	if _, err := exec.LookPath("/bin/sh"); err != nil {
		skipOrFail(t, "no /bin/sh")
	}
	for _, socket := range []string{"", "/run/user/1000/docker.sock", "/tmp/my docker's;$(id).sock", "/x/`id`/*?[a]~#!%p"} {
		for _, docker := range []string{"docker", "/opt/my docker/bin/docker", "docker's"} {
			want := []string{docker}
			if socket != "" {
				want = append(want, "--host=unix://"+socket)
			}
			want = append(want, "system", "dial-stdio")
			line := remoteCommand(docker, socket)
			assert.Equal(t, want, shellArgs(t, line), "remoteCommand(%q, %q) = %s", docker, socket, line)
		}
	}
}

func TestCheckRemoteArg(t *testing.T) {
	for _, bad := range []string{"", "-x", "a\nb", "a\x00b", "a\\b", "a\x7fb"} {
		assert.Error(t, checkRemoteArg("x", bad), "%q", bad)
	}
	for _, ok := range []string{"docker", "/usr/bin/docker", "/opt/my docker/bin/docker", "docker's"} {
		assert.NoError(t, checkRemoteArg("x", ok), "%q", ok)
	}
}

func TestCommandHint(t *testing.T) {
	cases := []struct {
		status int
		stderr string
		want   string
	}{
		{127, "bash: line 1: docker: command not found", "Config.RemoteDocker"},
		{127, "sh: 1: docker: not found", "PATH"},
		{1, "permission denied while trying to connect to the Docker daemon socket at unix:///var/run/docker.sock", "docker group"},
		{1, "Cannot connect to the Docker daemon at unix:///var/run/docker.sock. Is the docker daemon running?", "is dockerd running"},
		{1, `docker: 'system dial-stdio' is not a docker command.`, "18.09"},
		{126, "permission denied", "permissions"},
		{3, "something else", "see the remote stderr"},
	}
	for _, tc := range cases {
		assert.Contains(t, commandHint(tc.status, tc.stderr, "docker", ""), tc.want, "commandHint(%d, %q)", tc.status, tc.stderr)
	}
}

func TestTailBuffer(t *testing.T) {
	var tb tailBuffer
	for i := 0; i < 3000; i++ {
		tb.Write([]byte("0123456789"))
	}
	tb.Write([]byte("END"))
	s := tb.String()
	assert.Len(t, s, stderrTail)
	assert.True(t, strings.HasSuffix(s, "789END"))
	tb.Write(make([]byte, 10000))
	assert.Len(t, tb.String(), stderrTail)
}

func TestQuoteStderr(t *testing.T) {
	assert.Equal(t, "a | b ? c", quoteStderr("a\nb \x1b c\n\n"))
}

// The remote CLI's words that would make the Docker client drop the whole
// error are hyphenated in the message and kept in Stderr.
func TestQuoteStderrKeepsTheDockerClientsPhrasesOut(t *testing.T) {
	stderr := "failed to open the raw stream connection: dial unix /var/run/docker.sock: connect: connection refused\n"
	got := quoteStderr(stderr)
	assert.NotContains(t, got, "dial unix")
	assert.NotContains(t, got, "connection refused")
	assert.Equal(t, "failed to open the raw stream connection: dial-unix /var/run/docker.sock: connect: connection-refused", got)
}
