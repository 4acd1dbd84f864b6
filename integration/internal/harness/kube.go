package harness

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// Kube is a real single-node Kubernetes cluster on 127.0.0.1, started by
// scripts/kube-cluster.sh: etcd, kube-apiserver, a private containerd with
// its CRI plugin and kubelet. There is no scheduler, controller-manager or
// CNI, so pods name their node and use the host's network ([Kube.StartPod]
// does both). The busybox target image is imported; nothing is ever pulled.
type Kube struct {
	// Kubeconfig is the path of an admin kubeconfig (a client certificate
	// in system:masters; the API server authorizes everything).
	Kubeconfig string
	// Server is the API server's URL, https://127.0.0.1:PORT.
	Server string
	// Node is the name of the only node, "127.0.0.1".
	Node string
	// Image is the busybox target image as pods name it
	// (docker.io/dockssh-test/target:<hash>).
	Image string
	// Dir holds the cluster's state and logs (Dir/logs/NAME.log).
	Dir string
}

// kube is the cluster shared by the tests of one test binary.
var kube struct {
	once sync.Once
	k    *Kube
	err  error
	// mu guards dir, which TearDown reads.
	mu  sync.Mutex
	dir string
}

// StartKube returns the cluster of this test binary, bringing it up on first
// use: the binaries are built once per machine and Kubernetes version
// (cached outside the repository; about 7 minutes cold), the cluster itself
// starts in about 15 s. [TearDown] stops it when the tests are done; if the
// test binary dies first, a watchdog started with the cluster stops it. A
// cold build inside a test can outlast go test's default 10-minute timeout:
// run scripts/kube-cluster.sh build first on a fresh machine.
//
// Without Docker, without root or when the build fails, the calling test is
// skipped with a loud reason, unless [Required] reports true: then it fails.
func StartKube(tb testing.TB) *Kube {
	tb.Helper()
	im := Require(tb)
	kube.once.Do(func() { kube.k, kube.err = startKube(im.Target) })
	if kube.err != nil {
		if Required() {
			tb.Fatalf("the Kubernetes cluster is required here (CI=true or DOCKSSH_REQUIRE_DOCKER=1) but did not start: %v", kube.err)
		}
		msg := fmt.Sprintf("SKIPPING INTEGRATION TEST %s: the Kubernetes cluster did not start: %v. "+
			"See docs/testing.md (scripts/kube-cluster.sh); set DOCKSSH_REQUIRE_DOCKER=1 to make this a failure.", tb.Name(), kube.err)
		fmt.Fprintln(os.Stderr, "!!! "+msg)
		tb.Skip(msg)
	}
	return kube.k
}

func kubeScript() string { return filepath.Join(RepoRoot(), "scripts", "kube-cluster.sh") }

func startKube(image string) (*Kube, error) {
	if os.Geteuid() != 0 {
		return nil, fmt.Errorf("harness: kube: containerd and kubelet need root")
	}
	build := exec.Command("bash", kubeScript(), "build")
	build.Stdout, build.Stderr = io.Discard, os.Stderr
	if err := build.Run(); err != nil {
		return nil, fmt.Errorf("harness: kube: %s build: %w", kubeScript(), err)
	}
	// A short directory: containerd's socket lives in it (sockaddr_un).
	dir, err := os.MkdirTemp("", "dockssh-kube-")
	if err != nil {
		return nil, fmt.Errorf("harness: kube: %w", err)
	}
	kube.mu.Lock()
	kube.dir = dir
	kube.mu.Unlock()
	up := exec.Command("bash", kubeScript(), "up", dir, image)
	up.Env = append(os.Environ(), "DOCKSSH_KUBE_OWNER_PID="+strconv.Itoa(os.Getpid()))
	up.Stdout, up.Stderr = os.Stderr, os.Stderr
	if err := up.Run(); err != nil {
		// up tears down what it started when it fails; what is left is
		// the directory when up refused to start at all.
		if err := os.Remove(dir); err == nil || errors.Is(err, fs.ErrNotExist) {
			kube.mu.Lock()
			kube.dir = ""
			kube.mu.Unlock()
		}
		return nil, fmt.Errorf("harness: kube: %s up %s: %w", kubeScript(), dir, err)
	}
	env, err := readEnvFile(filepath.Join(dir, "env"))
	if err != nil {
		return nil, fmt.Errorf("harness: kube: %w", err)
	}
	k := &Kube{Kubeconfig: env["KUBECONFIG"], Server: env["KUBE_SERVER"], Node: env["KUBE_NODE"], Image: env["KUBE_IMAGE"], Dir: dir}
	if k.Kubeconfig == "" || k.Server == "" || k.Node == "" || k.Image == "" {
		return nil, fmt.Errorf("harness: kube: %s/env is incomplete: %v", dir, env)
	}
	return k, nil
}

func readEnvFile(path string) (map[string]string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	env := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), "="); ok {
			env[k] = v
		}
	}
	return env, sc.Err()
}

// TearDown stops what the harness shares between the tests of one test
// binary (the cluster of [StartKube]) and removes its state; TestMain calls
// it after the tests. It does nothing when nothing was started.
func TearDown() {
	kube.mu.Lock()
	dir := kube.dir
	kube.dir = ""
	kube.mu.Unlock()
	if dir == "" {
		return
	}
	cmd := exec.Command("bash", kubeScript(), "down", dir)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		fmt.Fprintf(os.Stderr, "!!! harness: kube: %s down %s: %v\n", kubeScript(), dir, err)
	}
}

// Kubectl runs kubectl against the cluster with stdin (nil for none) and
// returns its stdout; a failure or more than 2 minutes fails the test with
// kubectl's stderr.
func (k *Kube) Kubectl(tb testing.TB, stdin io.Reader, args ...string) string {
	tb.Helper()
	out, stderr, err := k.kubectl(context.Background(), stdin, args...)
	if err != nil {
		tb.Fatalf("kubectl %s: %v\nstderr: %s", strings.Join(args, " "), err, stderr)
	}
	return out
}

func (k *Kube) kubectl(ctx context.Context, stdin io.Reader, args ...string) (stdout, stderr string, err error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "kubectl", append([]string{"--kubeconfig", k.Kubeconfig}, args...)...)
	var o, e bytes.Buffer
	cmd.Stdin, cmd.Stdout, cmd.Stderr = stdin, &o, &e
	err = cmd.Run()
	return o.String(), e.String(), err
}

// Namespace makes sure namespace name exists with its default service
// account (without a controller-manager nothing creates that account, and
// the API server refuses pods without it).
func (k *Kube) Namespace(tb testing.TB, name string) {
	tb.Helper()
	list := map[string]any{
		"apiVersion": "v1",
		"kind":       "List",
		"items": []any{
			map[string]any{"apiVersion": "v1", "kind": "Namespace", "metadata": map[string]any{"name": name}},
			map[string]any{"apiVersion": "v1", "kind": "ServiceAccount", "metadata": map[string]any{"name": "default", "namespace": name}},
		},
	}
	b, _ := json.Marshal(list)
	k.Kubectl(tb, bytes.NewReader(b), "apply", "-f", "-")
}

// PodOptions describes a pod for [Kube.CreatePod] and [Kube.StartPod].
type PodOptions struct {
	// Name is the start of the pod's name; a random suffix is added so
	// parallel tests do not collide. "" means "pod".
	Name string
	// Namespace is the pod's namespace; "" means "default". Another
	// namespace is created on demand.
	Namespace   string
	Labels      map[string]string
	Annotations map[string]string
	// Containers are the pod's containers, in order; none means one
	// container named "main".
	Containers []PodContainer
}

// PodContainer is one container of a pod. It runs the busybox target image.
type PodContainer struct {
	Name string
	// Command replaces the image's command (a shell that waits until
	// SIGTERM) when not nil.
	Command []string
	// Env is set in the container.
	Env map[string]string
	// ReadinessExec, when not nil, is an exec readiness probe (checked
	// every second); nil means the container is ready once it runs.
	ReadinessExec []string
}

// Pod is a pod created by [Kube.CreatePod].
type Pod struct {
	Name       string
	Namespace  string
	Containers []string // the container names, in order

	kube *Kube
}

// Manifest returns the pod's manifest (JSON, which kubectl reads as YAML):
// bound to the only node (there is no scheduler), on the host's network
// (there is no CNI), images never pulled, and no service account token
// mounted (nothing in the pod may dial the service IP range).
func (k *Kube) Manifest(name string, opts PodOptions) []byte {
	ctrs := opts.Containers
	if len(ctrs) == 0 {
		ctrs = []PodContainer{{Name: "main"}}
	}
	var cs []any
	for _, c := range ctrs {
		m := map[string]any{"name": c.Name, "image": k.Image, "imagePullPolicy": "Never"}
		if c.Command != nil {
			m["command"] = c.Command
		}
		if len(c.Env) > 0 {
			var env []any
			for _, n := range slices.Sorted(maps.Keys(c.Env)) {
				env = append(env, map[string]string{"name": n, "value": c.Env[n]})
			}
			m["env"] = env
		}
		if c.ReadinessExec != nil {
			m["readinessProbe"] = map[string]any{
				"exec":             map[string]any{"command": c.ReadinessExec},
				"periodSeconds":    1,
				"failureThreshold": 1,
			}
		}
		cs = append(cs, m)
	}
	meta := map[string]any{"name": name, "namespace": cmp.Or(opts.Namespace, "default")}
	if len(opts.Labels) > 0 {
		meta["labels"] = opts.Labels
	}
	if len(opts.Annotations) > 0 {
		meta["annotations"] = opts.Annotations
	}
	pod := map[string]any{
		"apiVersion": "v1",
		"kind":       "Pod",
		"metadata":   meta,
		"spec": map[string]any{
			"nodeName":                      k.Node,
			"hostNetwork":                   true,
			"automountServiceAccountToken":  false,
			"enableServiceLinks":            false,
			"terminationGracePeriodSeconds": 5,
			"containers":                    cs,
		},
	}
	b, _ := json.Marshal(pod)
	return b
}

// CreatePod creates a pod with kubectl apply and returns at once, without
// waiting for it to run; it is deleted in tb.Cleanup.
func (k *Kube) CreatePod(tb testing.TB, opts PodOptions) *Pod {
	tb.Helper()
	suffix := make([]byte, 4)
	rand.Read(suffix)
	name := cmp.Or(opts.Name, "pod") + "-" + hex.EncodeToString(suffix)
	ns := cmp.Or(opts.Namespace, "default")
	if ns != "default" {
		k.Namespace(tb, ns)
	}
	p := &Pod{Name: name, Namespace: ns, kube: k}
	for _, c := range opts.Containers {
		p.Containers = append(p.Containers, c.Name)
	}
	if len(p.Containers) == 0 {
		p.Containers = []string{"main"}
	}
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if _, stderr, err := k.kubectl(ctx, nil, "delete", "pod", name, "-n", ns, "--ignore-not-found", "--wait=true", "--timeout=50s"); err != nil {
			tb.Errorf("kubectl delete pod %s: %v: %s", name, err, stderr)
		}
	})
	k.Kubectl(tb, bytes.NewReader(k.Manifest(name, opts)), "apply", "-f", "-")
	return p
}

// StartPod creates a pod like [Kube.CreatePod] and waits until it is Running
// and Ready.
func (k *Kube) StartPod(tb testing.TB, opts PodOptions) *Pod {
	tb.Helper()
	p := k.CreatePod(tb, opts)
	p.WaitReady(tb)
	return p
}

// WaitReady waits up to 90 s until the pod is Running and Ready; otherwise
// it fails the test with the pod's description and the end of kubelet's log.
func (p *Pod) WaitReady(tb testing.TB) {
	tb.Helper()
	k := p.kube
	_, stderr, err := k.kubectl(context.Background(), nil, "wait", "pod/"+p.Name, "-n", p.Namespace, "--for=condition=Ready", "--timeout=90s")
	if err == nil {
		var phase string
		phase, stderr, err = k.kubectl(context.Background(), nil, "get", "pod", p.Name, "-n", p.Namespace, "-o", "jsonpath={.status.phase}")
		if err == nil && phase == "Running" {
			return
		}
		if err == nil {
			err = fmt.Errorf("phase %q, want Running", phase)
		}
	}
	describe, _, _ := k.kubectl(context.Background(), nil, "describe", "pod", p.Name, "-n", p.Namespace)
	tb.Fatalf("pod %s/%s is not Running and Ready: %v: %s\n%s\nkubelet log:\n%s", p.Namespace, p.Name, err, stderr, describe, k.LogTail("kubelet", 30))
}

// Exec runs cmd in the pod's container with kubectl exec and returns its
// stdout; a non-zero exit fails the test. container "" means the first.
func (p *Pod) Exec(tb testing.TB, container string, stdin io.Reader, cmd ...string) string {
	tb.Helper()
	args := []string{"exec", p.Name, "-n", p.Namespace, "-c", cmp.Or(container, p.Containers[0])}
	if stdin != nil {
		args = append(args, "-i")
	}
	return p.kube.Kubectl(tb, stdin, append(append(args, "--"), cmd...)...)
}

// Delete deletes the pod and waits until it is gone.
func (p *Pod) Delete(tb testing.TB) {
	tb.Helper()
	p.kube.Kubectl(tb, nil, "delete", "pod", p.Name, "-n", p.Namespace, "--wait=true", "--timeout=60s")
}

// LogTail returns the last n lines of a daemon's log: "etcd", "containerd",
// "kube-apiserver" or "kubelet".
func (k *Kube) LogTail(daemon string, n int) string {
	b, err := os.ReadFile(filepath.Join(k.Dir, "logs", daemon+".log"))
	if err != nil {
		return err.Error()
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}
