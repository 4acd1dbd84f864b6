package kube

import (
	"bytes"
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/remotecommand"
	"k8s.io/streaming/pkg/httpstream"

	"github.com/dockssh/dockssh/execbridge"
	"github.com/dockssh/dockssh/execbridge/sftphelper"
	"github.com/dockssh/dockssh/internal/logtext"
	"github.com/dockssh/dockssh/internal/shquote"
)

// Config configures a Backend.
type Config struct {
	// REST reaches the API server: from a kubeconfig
	// (clientcmd.BuildConfigFromFlags) or rest.InClusterConfig. Required.
	REST *rest.Config

	// Logger receives what cannot be reported to a caller: a process
	// that could not be ended by Close. nil means slog.Default().
	Logger *slog.Logger

	// KillGrace is how long Close lets a process and its descendants
	// exit after the hangup and termination signals before it kills
	// them. Zero (or negative) means execbridge.DefaultKillGrace.
	KillGrace time.Duration

	// SFTPHelper is a static SFTP helper program (as
	// execbridge.DockerConfig's) that Subsystem copies into a container
	// without an sftp-server, through an exec of its /bin/sh and cat,
	// to "/" + execbridge.SFTPHelperPrefix + a hash of it; the copy
	// stays for later sessions. It needs a container whose user may
	// write "/" (root): others get no SFTP. Empty means no helper.
	SFTPHelper string
}

// Backend runs processes in pod containers with the pod exec API: the
// remote command executor of client-go over WebSocket (stream protocol
// v5), falling back to SPDY when the API server cannot upgrade to
// WebSocket. It is safe for concurrent use.
//
// A Target's ID is "NAMESPACE/POD/CONTAINER" (Resolver makes them).
type Backend struct {
	rest      *rest.Config
	client    kubernetes.Interface
	logger    *slog.Logger
	killGrace time.Duration
	helper    *execbridge.SFTPHelperFile // nil: none
	shells    sync.Map                   // target ID -> shell path
}

var (
	_ execbridge.Backend          = (*Backend)(nil)
	_ execbridge.SubsystemBackend = (*Backend)(nil)
)

// NewBackend returns a Backend for the cluster cfg.REST reaches.
func NewBackend(cfg *Config) (*Backend, error) {
	if cfg == nil || cfg.REST == nil {
		return nil, errors.New("kube: Config.REST is required")
	}
	c, err := kubernetes.NewForConfig(cfg.REST)
	if err != nil {
		return nil, fmt.Errorf("kube: client: %w", err)
	}
	b := &Backend{
		rest:      cfg.REST,
		client:    c,
		logger:    cmp.Or(cfg.Logger, slog.Default()),
		killGrace: cmp.Or(max(cfg.KillGrace, 0), execbridge.DefaultKillGrace),
	}
	if cfg.SFTPHelper != "" {
		b.helper = execbridge.NewSFTPHelperFile(cfg.SFTPHelper)
	}
	return b, nil
}

// splitID splits a Target ID into namespace, pod and container.
func splitID(t execbridge.Target) (ns, pod, container string, err error) {
	parts := strings.Split(t.ID, "/")
	if len(parts) != 3 || parts[0] == "" || parts[1] == "" || parts[2] == "" {
		return "", "", "", fmt.Errorf("kube: target %q is not NAMESPACE/POD/CONTAINER", t.ID)
	}
	return parts[0], parts[1], parts[2], nil
}

// executor returns the executor of one exec of argv in t.
func (b *Backend) executor(t execbridge.Target, argv []string, tty, stdin bool) (remotecommand.Executor, error) {
	ns, pod, ctr, err := splitID(t)
	if err != nil {
		return nil, err
	}
	req := b.client.CoreV1().RESTClient().Post().
		Resource("pods").Namespace(ns).Name(pod).SubResource("exec").
		VersionedParams(&corev1.PodExecOptions{
			Container: ctr, Command: argv,
			Stdin: stdin, Stdout: true, Stderr: !tty, TTY: tty,
		}, scheme.ParameterCodec)
	ws, err := remotecommand.NewWebSocketExecutor(b.rest, "GET", req.URL().String())
	if err != nil {
		return nil, fmt.Errorf("kube: exec in %s: %w", t, err)
	}
	spdy, err := remotecommand.NewSPDYExecutor(b.rest, "POST", req.URL())
	if err != nil {
		return nil, fmt.Errorf("kube: exec in %s: %w", t, err)
	}
	// As kubectl exec: SPDY only when the server cannot upgrade to
	// WebSocket (API servers before 1.29, or a proxy in the way).
	return remotecommand.NewFallbackExecutor(ws, spdy, func(err error) bool {
		return httpstream.IsUpgradeFailure(err) || httpstream.IsHTTPSProxyError(err)
	})
}

// Start starts spec.Argv in the container. The pod exec API has no fields
// for the environment, the user or the working directory, so the process
// is started through the container's /bin/sh, which exports spec.Env and
// the session marker (execbridge.MarkerEnv, which Signal and Close find
// it by), changes to spec.Dir and then replaces itself with the process.
// A spec.User is refused: the process runs as the container's user. ctx
// bounds the start; the process does not depend on it.
func (b *Backend) Start(ctx context.Context, spec execbridge.ProcessSpec) (execbridge.Process, error) {
	if len(spec.Argv) == 0 {
		return nil, fmt.Errorf("kube: start in %s: empty Argv", spec.Target)
	}
	if spec.User != "" {
		return nil, &execbridge.TargetError{Reason: "pods run commands as their container's user: this server's user setting (SHELL_USER) cannot apply", Err: fmt.Errorf("kube: User %q", spec.User)}
	}
	marker := newMarker()
	argv, err := wrap(spec, execbridge.MarkerEnv+"="+marker)
	if err != nil {
		return nil, err
	}
	ex, err := b.executor(spec.Target, argv, spec.TTY, true)
	if err != nil {
		return nil, err
	}
	return startProcess(b, spec, marker, ex), nil
}

// wrap is argv run by /bin/sh with env exported and the directory
// changed: every value is quoted, and argv itself is passed as
// positional parameters, never as script text.
func wrap(spec execbridge.ProcessSpec, marker string) ([]string, error) {
	env := make([]string, 0, len(spec.Env)+1)
	for _, kv := range spec.Env {
		name, _, _ := strings.Cut(kv, "=")
		if name == execbridge.MarkerEnv {
			continue
		}
		if !shellName(name) {
			return nil, fmt.Errorf("kube: environment name %q cannot be exported by a shell", name)
		}
		env = append(env, kv)
	}
	env = append(env, marker)
	script := "export " + shquote.Join(env) + "; "
	if spec.Dir != "" {
		script += "cd -- " + shquote.Quote(spec.Dir) + " || exit 126; "
	}
	script += `exec "$@"`
	return append([]string{"/bin/sh", "-c", script, "dockssh"}, spec.Argv...), nil
}

// shellName reports whether s is a POSIX shell variable name.
func shellName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || i > 0 && c >= '0' && c <= '9') {
			return false
		}
	}
	return true
}

func newMarker() string {
	var m [16]byte
	rand.Read(m[:]) // never fails (crypto/rand, Go 1.24)
	return hex.EncodeToString(m[:])
}

// run runs argv in t without a terminal, with stdin if not nil, and
// returns its output (the first 64 KiB of each stream). A non-zero exit is
// an *execbridge.ExitError.
func (b *Backend) run(ctx context.Context, t execbridge.Target, argv []string, stdin io.Reader) (stdout, stderr string, err error) {
	ex, err := b.executor(t, argv, false, stdin != nil)
	if err != nil {
		return "", "", err
	}
	var out, errOut limitedBuffer
	err = ex.StreamWithContext(ctx, remotecommand.StreamOptions{Stdin: stdin, Stdout: &out, Stderr: &errOut})
	return out.String(), errOut.String(), exitResult(err, nil)
}

// limitedBuffer keeps the first 64 KiB written to it.
type limitedBuffer struct{ b []byte }

func (l *limitedBuffer) Write(p []byte) (int, error) {
	if room := 64<<10 - len(l.b); room > 0 {
		l.b = append(l.b, p[:min(room, len(p))]...)
	}
	return len(p), nil
}

func (l *limitedBuffer) String() string { return string(l.b) }

// shellProbe prints the shell to use: bash when present, else sh.
const shellProbe = `for s in /bin/bash /usr/bin/bash; do [ -x "$s" ] && { echo "$s"; exit 0; }; done; echo /bin/sh`

// Shell returns bash when the container has it, otherwise /bin/sh, asked
// once per container with a short exec of /bin/sh; a container without
// /bin/sh has no shell.
func (b *Backend) Shell(ctx context.Context, t execbridge.Target) (string, error) {
	if sh, ok := b.shells.Load(t.ID); ok {
		return sh.(string), nil
	}
	out, errOut, err := b.run(ctx, t, []string{"/bin/sh", "-c", shellProbe}, nil)
	sh := strings.TrimSpace(out)
	if err != nil || !strings.HasPrefix(sh, "/") {
		return "", &execbridge.TargetError{Reason: "container " + t.String() + " has no /bin/sh", Err: fmt.Errorf("kube: find a shell in %s: %w (stderr %q)", t, err, logtext.Clip(errOut, 200))}
	}
	b.shells.Store(t.ID, sh)
	return sh, nil
}

// Subsystem serves "sftp" with the container's own sftp-server, looked for
// where Debian, Alpine and Fedora images keep it (execbridge.SFTPServerPaths)
// and in PATH, else with the SFTP helper, copied in once.
func (b *Backend) Subsystem(ctx context.Context, t execbridge.Target, name, user string) ([]string, error) {
	if name != "sftp" {
		return nil, &execbridge.TargetError{Reason: "no subsystem " + name}
	}
	script := `for p in "$@"; do [ -x "$p" ] && { echo "$p"; exit 0; }; done; command -v sftp-server || true`
	out, errOut, err := b.run(ctx, t, append([]string{"/bin/sh", "-c", script, "dockssh"}, execbridge.SFTPServerPaths()...), nil)
	if err != nil {
		return nil, &execbridge.TargetError{Reason: "container " + t.String() + " has no /bin/sh to look for an sftp-server", Err: fmt.Errorf("%w (stderr %q)", err, logtext.Clip(errOut, 200))}
	}
	if server := strings.TrimSpace(out); strings.HasPrefix(server, "/") {
		return []string{server, "-d", "%d"}, nil
	}
	if b.helper == nil {
		return nil, &execbridge.TargetError{Reason: "container " + t.String() + " has no sftp-server, and this server has no SFTP helper to copy into it"}
	}
	dst, err := b.installHelper(ctx, t)
	if err != nil {
		return nil, err
	}
	return []string{dst, sftphelper.Arg}, nil
}

// helperCheck prints "present" when the file $1 is an executable of $2
// bytes, else "absent"; then the machine (uname -m).
const helperCheck = `if [ -x "$1" ] && [ "$(wc -c <"$1")" -eq "$2" ]; then echo present; else echo absent; fi; uname -m`

// helperCopy writes standard input to $1 through a temporary name, so that
// a copy cut short is never run.
const helperCopy = `umask 022; t="$1.tmp.$$"; cat >"$t" && chmod 755 "$t" && mv -f "$t" "$1" || { rm -f "$t"; exit 1; }`

// installHelper makes sure the SFTP helper is in t and returns its path.
func (b *Backend) installHelper(ctx context.Context, t execbridge.Target) (string, error) {
	dst, size, arch, err := b.helper.Info()
	if err != nil {
		return "", &execbridge.TargetError{Reason: "container " + t.String() + " has no sftp-server, and the SFTP helper of this server is unusable", Err: err}
	}
	out, _, err := b.run(ctx, t, []string{"/bin/sh", "-c", helperCheck, "dockssh", dst, fmt.Sprint(size)}, nil)
	fields := strings.Fields(out)
	if err != nil || len(fields) != 2 {
		return "", &execbridge.TargetError{Reason: "container " + t.String() + " has no sftp-server, and its tools (sh, wc, uname) to receive the SFTP helper are missing", Err: err}
	}
	if goarch := map[string]string{"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm", "s390x": "s390x", "ppc64le": "ppc64le", "riscv64": "riscv64"}[fields[1]]; goarch != arch {
		return "", &execbridge.TargetError{Reason: fmt.Sprintf("container %s has no sftp-server, and the SFTP helper of this server is built for %s, not %s", t, arch, fields[1])}
	}
	if fields[0] == "present" {
		return dst, nil
	}
	data, dst, _, err := b.helper.Read()
	if err != nil {
		return "", &execbridge.TargetError{Reason: "container " + t.String() + " has no sftp-server, and the SFTP helper of this server is unusable", Err: err}
	}
	if _, errOut, err := b.run(ctx, t, []string{"/bin/sh", "-c", helperCopy, "dockssh", dst}, bytes.NewReader(data)); err != nil {
		return "", &execbridge.TargetError{Reason: "container " + t.String() + " has no sftp-server, and the SFTP helper could not be copied into it (may its user write /?)", Err: fmt.Errorf("%w (stderr %q)", err, logtext.Clip(errOut, 200))}
	}
	return dst, nil
}
