package integration

import (
	"os"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dockssh/dockssh/integration/internal/harness"
)

// TestKubeCluster checks the cluster the Kubernetes tests stand on: the API
// server answers on 127.0.0.1 with the node registered, pods bound to the
// node run the busybox target image and become Ready, kubectl exec reaches
// the container it names, and a deleted pod is gone.
func TestKubeCluster(t *testing.T) {
	t.Parallel()
	k := harness.StartKube(t)
	require.True(t, strings.HasPrefix(k.Server, "https://127.0.0.1:"), "server %q is not on 127.0.0.1", k.Server)
	assert.Equal(t, "127.0.0.1", k.Node)
	assert.Equal(t, k.Node, k.Kubectl(t, nil, "get", "node", k.Node, "-o", "jsonpath={.metadata.name}"))
	assert.Equal(t, "default", k.Kubectl(t, nil, "get", "serviceaccount", "default", "-o", "jsonpath={.metadata.name}"))
	host, err := os.Hostname()
	require.NoError(t, err)

	tests := []struct {
		name       string
		containers []string
	}{
		{"one-container", []string{"main"}},
		{"two-containers", []string{"main", "sidecar"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var ctrs []harness.PodContainer
			for _, c := range tc.containers {
				ctrs = append(ctrs, harness.PodContainer{Name: c, Env: map[string]string{"WHO": "container " + c}})
			}
			pod := k.StartPod(t, harness.PodOptions{Name: "kube-" + tc.name, Containers: ctrs})
			for _, c := range tc.containers {
				// Each exec reaches the container it names, on the host's
				// network, with stdin passed through.
				got := pod.Exec(t, c, strings.NewReader("from stdin\n"), "sh", "-c", `echo "$WHO"; hostname; cat`)
				assert.Equal(t, "container "+c+"\n"+host+"\nfrom stdin\n", got, "kubectl exec -c %s", c)
			}
			pod.Delete(t)
			assert.Empty(t, k.Kubectl(t, nil, "get", "pod", pod.Name, "-n", pod.Namespace, "--ignore-not-found", "-o", "name"))
		})
	}
}
