package kube

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/client-go/kubernetes"

	"github.com/dockssh/dockssh/execbridge"
	"github.com/dockssh/dockssh/internal/sshmatch"
)

// PodLabel is the route part that names a pod: "web-7f9c.pod",
// "web-7f9c.app.pod" (container app), "web-7f9c.pod.team-a" (namespace).
const PodLabel = "pod"

// DefaultContainerAnnotation names a pod's default container, as kubectl
// reads it.
const DefaultContainerAnnotation = "kubectl.kubernetes.io/default-container"

// Resolver picks a container of a running, ready pod.
//
// # Routes
//
// "POD.pod" is the pod's default container (DefaultContainerAnnotation,
// else the first); "POD.CONTAINER.pod" one of its containers, when no pod
// is named "POD.CONTAINER" (pod names may hold dots, container names
// cannot); ".pod.NAMESPACE" after either picks the namespace, else
// Namespace. Any other route is refused as not found, so that in an
// execbridge.Fleet beside Docker endpoints a container route is theirs.
type Resolver struct {
	// Client reads pods. Required.
	Client kubernetes.Interface

	// Namespace is the namespace of routes without one, and of Pod.
	// Empty means "default".
	Namespace string

	// Namespaces lists the namespaces a route may name. Empty means
	// Namespace only.
	Namespaces []string

	// Selector is a label selector that every pod a session reaches must
	// match (the FILTERS of pods), for example "ssh=yes". Empty means
	// every pod.
	Selector string

	// Pod is the default target of logins without a route. Empty means
	// none: such logins are refused.
	Pod string

	// Routing says who may name a pod, as execbridge.DockerResolver's,
	// on the pod's annotations (labels cannot hold pattern lists).
	// RoutingOff (the zero value) refuses pod routes.
	Routing execbridge.Routing

	// AllowAnnotation is the annotation RoutingLabeled reads: an OpenSSH
	// pattern list of logins. Empty means execbridge.DefaultAllowLabel.
	AllowAnnotation string
}

var (
	_ execbridge.Resolver   = (*Resolver)(nil)
	_ execbridge.RouteOwner = (*Resolver)(nil)
)

// OwnsRoute implements execbridge.RouteOwner: routes that name a pod.
func (r *Resolver) OwnsRoute(route string) bool {
	_, ok := parsePodRoute(route)
	return ok
}

type podRoute struct{ pod, namespace string }

// parsePodRoute reports whether route names a pod: the part before
// ".pod", and the namespace after it.
func parsePodRoute(route string) (podRoute, bool) {
	before, after, ok := strings.Cut(route, "."+PodLabel)
	if !ok || before == "" || after != "" && !strings.HasPrefix(after, ".") {
		return podRoute{}, false
	}
	ns := strings.TrimPrefix(after, ".")
	if strings.Contains(ns, ".") {
		return podRoute{}, false
	}
	return podRoute{pod: before, namespace: ns}, true
}

// Resolve implements execbridge.Resolver.
func (r *Resolver) Resolve(ctx context.Context, req execbridge.Request) (execbridge.Target, error) {
	ns := cmp.Or(r.Namespace, metav1.NamespaceDefault)
	if req.Route == "" {
		if r.Pod == "" {
			return execbridge.Target{}, &execbridge.TargetError{Reason: "no default pod: log in as user+POD.pod"}
		}
		return r.find(ctx, req, ns, r.Pod, "", true)
	}
	pr, ok := parsePodRoute(req.Route)
	notFound := &execbridge.TargetError{Reason: fmt.Sprintf("no running pod %q that you may use", req.Route)}
	if !ok {
		return execbridge.Target{}, notFound
	}
	if r.Routing == execbridge.RoutingOff {
		return execbridge.Target{}, &execbridge.TargetError{Reason: "this server does not let the user name choose a pod"}
	}
	if pr.namespace != "" {
		ns = pr.namespace
	}
	allowed := r.Namespaces
	if len(allowed) == 0 {
		allowed = []string{cmp.Or(r.Namespace, metav1.NamespaceDefault)}
	}
	if !slices.Contains(allowed, ns) || len(validation.IsDNS1123Label(ns)) > 0 {
		return execbridge.Target{}, notFound
	}
	return r.find(ctx, req, ns, pr.pod, "", false)
}

// find gets pod name in ns (or, when there is none and name holds a dot,
// the pod before the last dot with the container after it) and checks
// that the login may use it and that it runs.
func (r *Resolver) find(ctx context.Context, req execbridge.Request, ns, name, container string, isDefault bool) (execbridge.Target, error) {
	notFound := &execbridge.TargetError{Reason: fmt.Sprintf("no running pod %q that you may use", name)}
	if len(validation.IsDNS1123Subdomain(name)) > 0 {
		return execbridge.Target{}, notFound
	}
	pod, err := r.Client.CoreV1().Pods(ns).Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) && !isDefault {
		if i := strings.LastIndexByte(name, '.'); i > 0 {
			name, container = name[:i], name[i+1:]
			pod, err = r.Client.CoreV1().Pods(ns).Get(ctx, name, metav1.GetOptions{})
		}
	}
	switch {
	case apierrors.IsNotFound(err) || apierrors.IsForbidden(err):
		return execbridge.Target{}, notFound
	case err != nil:
		return execbridge.Target{}, &execbridge.TargetError{Reason: "the Kubernetes API server did not answer", Err: fmt.Errorf("%w: %w", execbridge.ErrUnavailable, err)}
	}
	if r.Selector != "" {
		sel, err := labels.Parse(r.Selector)
		if err != nil {
			return execbridge.Target{}, fmt.Errorf("kube: Resolver.Selector %q: %w", r.Selector, err)
		}
		if !sel.Matches(labels.Set(pod.Labels)) {
			return execbridge.Target{}, notFound
		}
	}
	if r.Routing == execbridge.RoutingLabeled && !isDefault {
		allow, ok := pod.Annotations[cmp.Or(r.AllowAnnotation, execbridge.DefaultAllowLabel)]
		if !ok || !sshmatch.SplitList(allow, false).Match(req.Login) {
			return execbridge.Target{}, notFound
		}
	}
	if pod.DeletionTimestamp != nil || pod.Status.Phase != corev1.PodRunning || !podReady(pod) {
		return execbridge.Target{}, &execbridge.TargetError{Reason: fmt.Sprintf("pod %s is not ready (phase %s)", pod.Name, pod.Status.Phase)}
	}
	ctr, err := pickContainer(pod, container)
	if err != nil {
		return execbridge.Target{}, err
	}
	return execbridge.Target{
		ID:     ns + "/" + pod.Name + "/" + ctr,
		Name:   pod.Name + "." + ctr,
		Labels: pod.Labels,
	}, nil
}

func podReady(pod *corev1.Pod) bool {
	for _, c := range pod.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// pickContainer returns the container asked for, or the pod's default
// container, and checks that it runs.
func pickContainer(pod *corev1.Pod, want string) (string, error) {
	names := make([]string, len(pod.Spec.Containers))
	for i, c := range pod.Spec.Containers {
		names[i] = c.Name
	}
	if want == "" {
		want = pod.Annotations[DefaultContainerAnnotation]
		if !slices.Contains(names, want) && len(names) > 0 {
			want = names[0]
		}
	}
	if !slices.Contains(names, want) {
		return "", &execbridge.TargetError{Reason: fmt.Sprintf("pod %s has no container %q (containers: %s)", pod.Name, want, strings.Join(names, ", "))}
	}
	for _, s := range pod.Status.ContainerStatuses {
		if s.Name == want && s.State.Running != nil {
			return want, nil
		}
	}
	return "", &execbridge.TargetError{Reason: fmt.Sprintf("container %q of pod %s is not running", want, pod.Name)}
}
