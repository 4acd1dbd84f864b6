// Package kube runs execbridge sessions in Kubernetes pods: a Backend over
// the pod exec API (client-go's remote command executor, WebSocket with a
// SPDY fallback, as kubectl exec) and a Resolver over pods. It is a
// separate package so that programs that serve Docker containers only do
// not import client-go.
//
//	rc, _ := clientcmd.BuildConfigFromFlags("", kubeconfig)
//	be, err := kube.NewBackend(&kube.Config{REST: rc})
//	cs, _ := kubernetes.NewForConfig(rc)
//	b, err := execbridge.New(&execbridge.Config{
//		Backend:  be,
//		Resolver: &kube.Resolver{Client: cs, Namespaces: []string{"team-a"}, Routing: execbridge.RoutingLabeled},
//	})
//
// The pod exec API has no environment, user or working directory, and
// cannot signal: processes start through the container's /bin/sh, which
// exports the environment and the session marker, and Signal and Close run
// the same marker-based scripts as the Docker backend (package
// internal/procscript). A container without /bin/sh gets no session. See
// docs/kubernetes.md.
package kube
