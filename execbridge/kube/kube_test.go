package kube

import (
	"errors"
	"net"
	"os/exec"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"
	utilexec "k8s.io/client-go/util/exec"

	"github.com/dockssh/dockssh/execbridge"
)

func pod(ns, name string, ready bool, containers []string, running []string, annotations map[string]string) *corev1.Pod {
	p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Labels: map[string]string{"app": name}, Annotations: annotations}}
	for _, c := range containers {
		p.Spec.Containers = append(p.Spec.Containers, corev1.Container{Name: c})
	}
	for _, c := range running {
		p.Status.ContainerStatuses = append(p.Status.ContainerStatuses, corev1.ContainerStatus{Name: c, State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{}}})
	}
	p.Status.Phase = corev1.PodRunning
	st := corev1.ConditionFalse
	if ready {
		st = corev1.ConditionTrue
	}
	p.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: st}}
	return p
}

func TestParsePodRoute(t *testing.T) {
	for _, tt := range []struct {
		route string
		want  podRoute
		ok    bool
	}{
		{"web-1.pod", podRoute{pod: "web-1"}, true},
		{"web-1.app.pod", podRoute{pod: "web-1.app"}, true},
		{"web-1.pod.team-a", podRoute{pod: "web-1", namespace: "team-a"}, true},
		{"web-1", podRoute{}, false},
		{".pod", podRoute{}, false},
		{"web-1.pods", podRoute{}, false},
		{"web-1.pod.a.b", podRoute{}, false},
		{"web.svc", podRoute{}, false},
	} {
		got, ok := parsePodRoute(tt.route)
		if ok != tt.ok || ok && got != tt.want {
			t.Errorf("parsePodRoute(%q) = %+v, %v; want %+v, %v", tt.route, got, ok, tt.want, tt.ok)
		}
	}
}

func TestResolver(t *testing.T) {
	cs := fake.NewClientset(
		pod("default", "web-1", true, []string{"app", "side"}, []string{"app", "side"}, map[string]string{execbridge.DefaultAllowLabel: "alice"}),
		pod("default", "two", true, []string{"a", "b"}, []string{"a", "b"}, map[string]string{DefaultContainerAnnotation: "b"}),
		pod("default", "starting", false, []string{"app"}, nil, nil),
		pod("default", "half", true, []string{"app", "side"}, []string{"app"}, nil),
		pod("team-a", "db-0", true, []string{"db"}, []string{"db"}, nil),
		pod("secret", "vault-0", true, []string{"v"}, []string{"v"}, nil),
	)
	r := &Resolver{Client: cs, Namespaces: []string{"default", "team-a"}, Routing: execbridge.RoutingAny}
	for _, tt := range []struct {
		route, wantID, wantReason string
	}{
		{route: "web-1.pod", wantID: "default/web-1/app"},
		{route: "web-1.side.pod", wantID: "default/web-1/side"},
		{route: "two.pod", wantID: "default/two/b"},
		{route: "db-0.pod.team-a", wantID: "team-a/db-0/db"},
		{route: "db-0.pod", wantReason: `no running pod "db-0" that you may use`},
		{route: "vault-0.pod.secret", wantReason: `no running pod "vault-0.pod.secret" that you may use`},
		{route: "starting.pod", wantReason: "pod starting is not ready (phase Running)"},
		{route: "half.side.pod", wantReason: `container "side" of pod half is not running`},
		{route: "web-1.nope.pod", wantReason: `pod web-1 has no container "nope" (containers: app, side)`},
		{route: "web1", wantReason: `no running pod "web1" that you may use`},
		{route: "Web_1.pod", wantReason: `no running pod "Web_1" that you may use`},
	} {
		t.Run(tt.route, func(t *testing.T) {
			got, err := r.Resolve(t.Context(), execbridge.Request{Login: "bob", Route: tt.route})
			if tt.wantReason != "" {
				var te *execbridge.TargetError
				if !errors.As(err, &te) || te.Reason != tt.wantReason {
					t.Fatalf("Resolve(%q) = %+v, %v; want reason %q", tt.route, got, err, tt.wantReason)
				}
				return
			}
			if err != nil || got.ID != tt.wantID {
				t.Fatalf("Resolve(%q) = %+v, %v; want %s", tt.route, got, err, tt.wantID)
			}
		})
	}

	r.Routing = execbridge.RoutingLabeled
	if _, err := r.Resolve(t.Context(), execbridge.Request{Login: "alice", Route: "web-1.pod"}); err != nil {
		t.Errorf("alice on web-1 (annotated for alice): %v", err)
	}
	_, e1 := r.Resolve(t.Context(), execbridge.Request{Login: "bob", Route: "web-1.pod"})
	_, e2 := r.Resolve(t.Context(), execbridge.Request{Login: "bob", Route: "nope-1.pod"})
	if e1 == nil || strings.ReplaceAll(e1.Error(), "web-1", "X") != strings.ReplaceAll(e2.Error(), "nope-1", "X") {
		t.Errorf("bob on web-1 = %v, on nope-1 = %v; want the same refusal", e1, e2)
	}
	r.Routing = execbridge.RoutingOff
	if _, err := r.Resolve(t.Context(), execbridge.Request{Login: "alice", Route: "web-1.pod"}); err == nil {
		t.Error("RoutingOff let a pod be named")
	}
	r.Pod = "two"
	if got, err := r.Resolve(t.Context(), execbridge.Request{Login: "alice"}); err != nil || got.ID != "default/two/b" {
		t.Errorf("default pod: %+v, %v", got, err)
	}
	r.Selector = "app=web-1"
	if _, err := r.Resolve(t.Context(), execbridge.Request{Login: "alice"}); err == nil {
		t.Error("a pod outside Selector was reached")
	}
}

// The wrapper runs the argv as given, with the environment and directory
// applied, in a real /bin/sh: values with quotes, spaces and $ stay
// literal.
func TestWrapInARealShell(t *testing.T) {
	spec := execbridge.ProcessSpec{
		Argv: []string{"sh", "-c", `printf '%s|%s|%s|%s' "$A" "$B" "$(pwd)" "$1"`, "x", "it's $HOME"},
		Env:  []string{"A=one two", `B='"$(id)"`, execbridge.MarkerEnv + "=spoofed"},
		Dir:  "/tmp",
	}
	argv, err := wrap(spec, execbridge.MarkerEnv+"=m1")
	if err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(argv[0], argv[1:]...).Output()
	if err != nil {
		t.Fatal(err)
	}
	if got, want := string(out), `one two|'"$(id)"|/tmp|it's $HOME`; got != want {
		t.Errorf("wrapped command printed %q, want %q", got, want)
	}
	marker, err := exec.Command(argv[0], append(argv[1:4], "sh", "-c", "echo $"+execbridge.MarkerEnv)...).Output()
	if err != nil || string(marker) != "m1\n" {
		t.Errorf("the marker = %q, %v; want m1 (a spoofed one dropped)", marker, err)
	}
	if _, err := wrap(execbridge.ProcessSpec{Argv: []string{"true"}, Env: []string{"A-B=1"}}, "M=1"); err == nil {
		t.Error("a name no shell can export was accepted")
	}
	spec.Dir = "/nonexistent"
	argv, _ = wrap(spec, "M=1")
	err = exec.Command(argv[0], argv[1:]...).Run()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 126 {
		t.Errorf("a missing directory: %v, want exit status 126", err)
	}
}

func TestExitResult(t *testing.T) {
	if err := exitResult(nil, nil); err != nil {
		t.Errorf("exitResult(nil) = %v", err)
	}
	var ee *execbridge.ExitError
	err := exitResult(utilexec.CodeExitError{Err: errors.New("command terminated with exit code 3"), Code: 3}, nil)
	if !errors.As(err, &ee) || ee.Code != 3 || ee.Signal != "" {
		t.Errorf("exit 3 = %v", err)
	}
	err = exitResult(utilexec.CodeExitError{Err: errors.New("x"), Code: 143}, map[int]string{15: "TERM"})
	if !errors.As(err, &ee) || ee.Code != 143 || ee.Signal != "TERM" {
		t.Errorf("exit 143 after TERM = %+v", err)
	}
	err = exitResult(errors.New(`error executing command in container: exec: "nope": executable file not found in $PATH`), nil)
	var te *execbridge.TargetError
	if !errors.As(err, &te) || !strings.Contains(te.Reason, "executable file not found") || errors.Is(err, execbridge.ErrUnavailable) {
		t.Errorf("a failed exec = %v; want its reason, and the server counted as up", err)
	}
	err = exitResult(&net.OpError{Op: "dial", Net: "tcp", Err: errors.New("connection refused")}, nil)
	if !errors.Is(err, execbridge.ErrUnavailable) {
		t.Errorf("a refused connection = %v; want ErrUnavailable", err)
	}
}
