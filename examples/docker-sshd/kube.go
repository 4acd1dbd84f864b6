//go:build kube

// Kubernetes support doubles the binary (client-go: 20 MB to 74 MB), which
// every FROM scratch image and every container that gets this binary as
// its SFTP helper would carry: it is built with -tags kube only.

package main

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/dockssh/dockssh/execbridge"
	"github.com/dockssh/dockssh/execbridge/kube"
)

// kubeEndpoint is the Fleet endpoint of the cluster KUBECONFIG names
// ("in-cluster": the service account of the pod docker-sshd runs in).
func kubeEndpoint(o settings, fs fleetSettings, log *slog.Logger) (execbridge.Endpoint, error) {
	var rc *rest.Config
	var err error
	if o["KUBECONFIG"] == "in-cluster" {
		rc, err = rest.InClusterConfig()
	} else {
		// A list of files, as kubectl reads KUBECONFIG.
		rules := &clientcmd.ClientConfigLoadingRules{Precedence: filepath.SplitList(o["KUBECONFIG"])}
		rc, err = clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &clientcmd.ConfigOverrides{}).ClientConfig()
	}
	if err != nil {
		return execbridge.Endpoint{}, fmt.Errorf("KUBECONFIG %s: %w", o["KUBECONFIG"], err)
	}
	cs, err := kubernetes.NewForConfig(rc)
	if err != nil {
		return execbridge.Endpoint{}, fmt.Errorf("KUBECONFIG %s: %w", o["KUBECONFIG"], err)
	}
	be, err := kube.NewBackend(&kube.Config{REST: rc, Logger: log.With("endpoint", o["KUBE_ENDPOINT"]), SFTPHelper: fs.sftpHelper})
	if err != nil {
		return execbridge.Endpoint{}, err
	}
	var namespaces []string
	for ns := range strings.SplitSeq(o["KUBE_NAMESPACES"], ",") {
		if ns = strings.TrimSpace(ns); ns != "" {
			namespaces = append(namespaces, ns)
		}
	}
	ns := "default"
	if len(namespaces) > 0 {
		ns = namespaces[0]
	}
	return execbridge.Endpoint{
		Name:    o["KUBE_ENDPOINT"],
		Backend: be,
		Resolver: &kube.Resolver{
			Client:          cs,
			Namespace:       ns,
			Namespaces:      namespaces,
			Selector:        o["KUBE_SELECTOR"],
			Pod:             o["KUBE_POD"],
			Routing:         fs.routing,
			AllowAnnotation: fs.allowLabel,
		},
		Ping: func(ctx context.Context) error {
			_, err := cs.Discovery().RESTClient().Get().AbsPath("/readyz").DoRaw(ctx)
			return err
		},
		MaxProcesses: fs.maxSessions,
	}, nil
}
