package integration

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/moby/moby/api/types/swarm"
	"github.com/moby/moby/client"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dockssh/dockssh/integration/internal/harness"
)

// startSwarm makes the local Docker Engine a single-node swarm on
// 127.0.0.1 until the test ends (left with force in cleanup, failure or
// not) and returns the node's ID. The test must not run in parallel: the
// engine is everyone's, and other tests must not see a swarm.
func startSwarm(tb testing.TB) string {
	tb.Helper()
	docker := harness.Docker(tb)
	ctx := context.Background()
	info, err := docker.Info(ctx, client.InfoOptions{})
	require.NoError(tb, err)
	if info.Info.Swarm.LocalNodeState != swarm.LocalNodeStateInactive {
		// A run that was killed before its cleanup left the engine in a
		// swarm: start from none.
		_, err := docker.SwarmLeave(ctx, client.SwarmLeaveOptions{Force: true})
		require.NoError(tb, err, "leave the swarm an earlier run left")
	}
	tb.Cleanup(func() {
		if _, err := docker.SwarmLeave(context.Background(), client.SwarmLeaveOptions{Force: true}); err != nil {
			tb.Errorf("leave the swarm: %v", err)
		}
	})
	res, err := docker.SwarmInit(ctx, client.SwarmInitOptions{ListenAddr: "127.0.0.1:2377", AdvertiseAddr: "127.0.0.1"})
	require.NoError(tb, err)
	return res.NodeID
}

// startService creates a replicated service of the target image (by image
// ID, so that no node tries to pull it from a registry) and waits until
// its replicas run. It is removed at cleanup.
func startService(tb testing.TB, name string, replicas uint64) string {
	tb.Helper()
	docker := harness.Docker(tb)
	ctx := context.Background()
	img, err := docker.ImageInspect(ctx, harness.Require(tb).Target)
	require.NoError(tb, err)
	spec := swarm.ServiceSpec{
		Annotations:  swarm.Annotations{Name: name, Labels: map[string]string{"dockssh.test": "swarm"}},
		TaskTemplate: swarm.TaskSpec{ContainerSpec: &swarm.ContainerSpec{Image: img.ID}},
		Mode:         swarm.ServiceMode{Replicated: &swarm.ReplicatedService{Replicas: &replicas}},
	}
	created, err := docker.ServiceCreate(ctx, client.ServiceCreateOptions{Spec: spec})
	require.NoError(tb, err)
	tb.Cleanup(func() { docker.ServiceRemove(context.Background(), created.ID, client.ServiceRemoveOptions{}) })
	waitTasks(tb, created.ID, int(replicas))
	return created.ID
}

// runningTasks returns the service's running tasks by slot.
func runningTasks(tb testing.TB, serviceID string) map[int]swarm.Task {
	tb.Helper()
	f := make(client.Filters)
	f.Add("service", serviceID)
	f.Add("desired-state", "running")
	res, err := harness.Docker(tb).TaskList(context.Background(), client.TaskListOptions{Filters: f})
	require.NoError(tb, err)
	out := map[int]swarm.Task{}
	for _, t := range res.Items {
		if t.Status.State == swarm.TaskStateRunning && t.Status.ContainerStatus != nil {
			out[t.Slot] = t
		}
	}
	return out
}

func waitTasks(tb testing.TB, serviceID string, n int) map[int]swarm.Task {
	tb.Helper()
	var tasks map[int]swarm.Task
	waitUntil(tb, fmt.Sprintf("%d running tasks", n), func() bool {
		tasks = runningTasks(tb, serviceID)
		return len(tasks) == n
	})
	return tasks
}

func taskHostname(t swarm.Task) string { return t.Status.ContainerStatus.ContainerID[:12] + "\n" }

// TestDockerSSHDSwarm turns the local engine into a single-node swarm, so
// it does not run in parallel with the other tests (which wait until it is
// done).
func TestDockerSSHDSwarm(t *testing.T) {
	harness.Require(t)
	nodeID := startSwarm(t)
	sshd := harness.StartSSHD(t, &harness.SSHDOptions{ExtraConfig: "LogLevel VERBOSE"})
	name := "dockssh-" + randomHex(t, 4)
	svcID := startService(t, name, 2)
	tasks := waitTasks(t, svcID, 2)

	const password = "swarm-Pw-canary-5e1d"
	p := startDockerSSHD(t, map[string]string{
		"ENDPOINTS":       "local=local,host-a=ssh://host-a",
		"SSH_CONFIG":      sshClientConfig(t, map[string]*harness.SSHD{"host-a": sshd}),
		"SSH_KNOWN_HOSTS": sshd.WriteKnownHosts(t),
		"SWARM":           "true",
		"SWARM_NODES":     nodeID + "=host-a", // the one node, reached through the dialer
		"ROUTING":         "any",
		"AUTH_MECHANISM":  "simpleAuth",
		"AUTH_USER":       "u",
		"AUTH_PASSWORD":   password,
	})
	login := passwordLogin(t, password)
	run := func(user, cmd string) (string, string, int) {
		return runCmd(t, p.ssh(t, user, login, nil, cmd), nil)
	}

	t.Run("by service, by slot, through the node's endpoint", func(t *testing.T) {
		before := sessions(t, sshd)
		out, errOut, status := run("u+"+name+".svc", "cat /etc/hostname")
		require.Zero(t, status, errOut)
		assert.Equal(t, taskHostname(tasks[1]), out, "the first running task in slot order")
		out, errOut, status = run("u+"+name+".2.svc", "cat /etc/hostname")
		require.Zero(t, status, errOut)
		assert.Equal(t, taskHostname(tasks[2]), out)
		out, errOut, status = run("u+"+name+".svc.host-a", "cat /etc/hostname")
		require.Zero(t, status, errOut)
		assert.Equal(t, taskHostname(tasks[1]), out)
		waitUntil(t, "the node's sshd to log the sessions", func() bool { return sessions(t, sshd) >= before+3 })

		_, errOut, status = run("u+"+name+".svc.local", "true")
		assert.Equal(t, 1, status)
		assert.Equal(t, fmt.Sprintf("dockssh: service %q has no running task on local (tasks: 2 running)\n", name), errOut)
		_, errOut, status = run("u+"+name+".3.svc", "true")
		assert.Equal(t, 1, status)
		assert.Equal(t, fmt.Sprintf("dockssh: service %q has no running task in slot 3 (no tasks: scaled to 0?)\n", name), errOut)
		_, errOut, status = run("u+no-such-service.svc", "true")
		assert.Equal(t, 1, status)
		assert.Equal(t, "dockssh: no service \"no-such-service\" that you may use\n", errOut)
	})

	t.Run("SFTP routes the same way", func(t *testing.T) {
		local := filepath.Join(t.TempDir(), "hostname")
		_, errOut, status := runCmd(t, sftpCmd(t, p, "u+"+name+".2.svc", login), []byte("get /etc/hostname "+local+"\n"))
		require.Zero(t, status, errOut)
		assert.Equal(t, taskHostname(tasks[2]), readFile(t, local))
	})

	t.Run("a task killed mid-session ends it with a message; the next login finds the new task", func(t *testing.T) {
		long := startLongSession(t, p.ssh(t, "u+"+name+".1.svc", login, nil, longSessionCommand))
		old := tasks[1].Status.ContainerStatus.ContainerID
		_, err := harness.Docker(t).ContainerKill(context.Background(), old, client.ContainerKillOptions{Signal: "KILL"})
		require.NoError(t, err)
		status, stderr := long.wait(t, "its task's container was killed")
		assert.Equal(t, 137, status)
		assert.Regexp(t, `^dockssh: container `+name+`\.1\.\S+ on host-a stopped while the session ran\n$`, stderr)

		waitUntil(t, "the next login to reach the rescheduled task", func() bool {
			out, _, status := run("u+"+name+".1.svc", "cat /etc/hostname")
			return status == 0 && out != old[:12]+"\n" && out != ""
		})
	})

	t.Run("a service scaled to 0: a clear message", func(t *testing.T) {
		docker := harness.Docker(t)
		ctx := context.Background()
		in, err := docker.ServiceInspect(ctx, svcID, client.ServiceInspectOptions{})
		require.NoError(t, err)
		spec := in.Service.Spec
		zero := uint64(0)
		spec.Mode.Replicated.Replicas = &zero
		_, err = docker.ServiceUpdate(ctx, svcID, client.ServiceUpdateOptions{Version: in.Service.Version, Spec: spec})
		require.NoError(t, err)
		waitTasks(t, svcID, 0)
		_, errOut, status := run("u+"+name+".svc", "true")
		assert.Equal(t, 1, status)
		assert.Regexp(t, `^dockssh: service "`+name+`" has no running task \(`, errOut)
	})
	assert.NotContains(t, p.logs.String(), password)
}
