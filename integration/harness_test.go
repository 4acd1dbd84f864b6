package integration

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/moby/moby/client"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dockssh/dockssh/integration/internal/harness"
)

// The harness is what every other integration test stands on; these tests
// check that its options really reach sshd and that its fault controls do
// what they say.

func TestHarnessSSHDOptions(t *testing.T) {
	t.Parallel()
	sshd := harness.StartSSHD(t, &harness.SSHDOptions{
		MaxSessions:                3,
		AllowStreamLocalForwarding: "no",
		AuthorizedKeys:             []string{"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFvXv1Yh3XG1b7b2Fq9g3u6rj2uKp0r4bQy1J5VbL6xS extra@test"},
	})
	// sshd -T prints the effective configuration.
	eff := sshd.Exec(t, "/usr/sbin/sshd", "-T")
	assert.Contains(t, eff, "\nmaxsessions 3\n")
	assert.Contains(t, eff, "\nallowstreamlocalforwarding no\n")
	assert.Contains(t, eff, "\npermitrootlogin without-password\n")
	assert.Contains(t, eff, "\npasswordauthentication no\n")

	ak := sshd.Exec(t, "cat", "/root/.ssh/authorized_keys")
	assert.Contains(t, ak, "extra@test")
	assert.Equal(t, 2, strings.Count(strings.TrimSpace(ak), "\n")+1, "generated key plus one extra: %q", ak)

	// The Docker socket is mounted and the CLI inside reaches the host's
	// daemon.
	assert.Contains(t, sshd.Exec(t, "docker", "version", "--format", "{{.Server.Version}}"), ".")
}

func TestHarnessDefaultsAreOpenSSHDefaults(t *testing.T) {
	t.Parallel()
	sshd := harness.StartSSHD(t, &harness.SSHDOptions{NoDockerSocket: true})
	eff := sshd.Exec(t, "/usr/sbin/sshd", "-T")
	assert.Contains(t, eff, "\nmaxsessions 10\n")
	assert.Contains(t, eff, "\nallowstreamlocalforwarding yes\n")
	out := sshd.Exec(t, "sh", "-c", "test -S /var/run/docker.sock && echo mounted || echo absent")
	assert.Equal(t, "absent\n", out)
}

func TestHarnessRestartKeepsPortAndKeys(t *testing.T) {
	t.Parallel()
	sshd := harness.StartSSHD(t, nil)
	port, keys := sshd.Port, sshd.KnownHosts()
	sshd.Restart(t)
	assert.Equal(t, port, sshd.Port)
	assert.Equal(t, keys, sshd.KnownHosts(), "host keys are per build, not per start")
	runSSH(t, sshd, sshd.WriteKnownHosts(t), "true")
}

func TestHarnessRegenerateHostKeys(t *testing.T) {
	t.Parallel()
	sshd := harness.StartSSHD(t, &harness.SSHDOptions{RegenerateHostKeys: true})
	before := sshd.KnownHosts()
	oldKnownHosts := sshd.WriteKnownHosts(t)
	sshd.Stop(t)
	sshd.Start(t)
	require.NotEqual(t, before, sshd.KnownHosts())
	runSSH(t, sshd, sshd.WriteKnownHosts(t), "true")

	cmd := exec.CommandContext(t.Context(), "ssh", append(sshd.SSHArgs(oldKnownHosts), "true")...)
	cmd.Env = cleanEnv(t)
	out, err := cmd.CombinedOutput()
	require.Error(t, err, "old known_hosts must be refused after new host keys; output: %s", out)
	assert.Contains(t, string(out), "REMOTE HOST IDENTIFICATION HAS CHANGED")
}

func TestHarnessTarget(t *testing.T) {
	t.Parallel()
	target := harness.StartTarget(t, "harness-target")
	assert.Equal(t, "hello\n", target.Exec(t, "sh", "-c", "echo hello"))

	docker := harness.Docker(t)
	list, err := docker.ContainerList(t.Context(), client.ContainerListOptions{
		Filters: make(client.Filters).Add("label", "dockssh.target=harness-target"),
	})
	require.NoError(t, err)
	var ids []string
	for _, c := range list.Items {
		ids = append(ids, c.ID)
	}
	assert.Contains(t, ids, target.ID)
}

// TestHarnessCleanup checks that a test's containers are gone once its
// cleanups ran, also when it failed.
func TestHarnessCleanup(t *testing.T) {
	t.Parallel()
	var sshdID, targetID string
	t.Run("failing", func(t *testing.T) {
		ft := &failingTB{T: t}
		// The harness must not care whether the test failed.
		sshd := harness.StartSSHD(ft, nil)
		target := harness.StartTarget(ft, "cleanup")
		sshdID, targetID = sshd.Container.GetContainerID(), target.ID
	})
	docker := harness.Docker(t)
	for _, id := range []string{sshdID, targetID} {
		_, err := docker.ContainerInspect(context.Background(), id, client.ContainerInspectOptions{})
		assert.Error(t, err, "container %s still exists after cleanup", id)
	}
}

// failingTB reports the test as failed to the harness's cleanups without
// failing the real test, so the cleanup path for failed tests is exercised.
type failingTB struct{ *testing.T }

func (f *failingTB) Failed() bool { return true }

func runSSH(tb testing.TB, sshd *harness.SSHD, knownHosts string, remote ...string) string {
	tb.Helper()
	cmd := exec.CommandContext(tb.Context(), "ssh", append(sshd.SSHArgs(knownHosts), remote...)...)
	cmd.Env = cleanEnv(tb)
	out, err := cmd.CombinedOutput()
	require.NoError(tb, err, "ssh %v: %s", remote, out)
	return string(out)
}

// TestHarnessWithoutDocker runs the harness in a child test binary whose
// DOCKER_HOST names a socket nobody listens on: without CI=true or
// DOCKSSH_REQUIRE_DOCKER=1 the test is skipped with a loud reason; with
// either, it fails.
func TestHarnessWithoutDocker(t *testing.T) {
	t.Parallel()
	if os.Getenv("DOCKSSH_HARNESS_PROBE") == "1" {
		harness.Require(t)
		t.Log("PROBE REACHED DOCKER")
		return
	}
	exe, err := os.Executable()
	require.NoError(t, err)
	run := func(extra ...string) (string, error) {
		cmd := exec.Command(exe, "-test.run", "^TestHarnessWithoutDocker$", "-test.v", "-test.count=1")
		env := []string{"DOCKSSH_HARNESS_PROBE=1", "DOCKER_HOST=unix://" + filepath.Join(t.TempDir(), "no-docker.sock")}
		for _, kv := range os.Environ() {
			switch k, _, _ := strings.Cut(kv, "="); k {
			case "CI", "DOCKSSH_REQUIRE_DOCKER", "DOCKER_HOST", "DOCKER_CONTEXT":
			default:
				env = append(env, kv)
			}
		}
		cmd.Env = append(env, extra...)
		out, err := cmd.CombinedOutput()
		return string(out), err
	}

	out, err := run()
	require.NoError(t, err, "a missing Docker skips the test: %s", out)
	assert.Contains(t, out, "--- SKIP: TestHarnessWithoutDocker")
	assert.Contains(t, out, "!!! SKIPPING INTEGRATION TEST TestHarnessWithoutDocker: Docker is not usable")
	assert.Contains(t, out, "scripts/ensure-docker.sh")
	assert.NotContains(t, out, "PROBE REACHED DOCKER")

	for _, required := range []string{"CI=true", "DOCKSSH_REQUIRE_DOCKER=1"} {
		out, err := run(required)
		require.Error(t, err, "with %s a missing Docker fails: %s", required, out)
		assert.Contains(t, out, "--- FAIL: TestHarnessWithoutDocker")
		assert.Contains(t, out, "Docker is required here (CI=true or DOCKSSH_REQUIRE_DOCKER=1) but not usable")
		assert.NotContains(t, out, "PROBE REACHED DOCKER")
	}
}
