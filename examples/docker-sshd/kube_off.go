//go:build !kube

package main

import (
	"errors"
	"log/slog"

	"github.com/dockssh/dockssh/execbridge"
)

// kubeEndpoint refuses KUBECONFIG in a binary built without Kubernetes
// support (see kube.go).
func kubeEndpoint(o settings, fs fleetSettings, log *slog.Logger) (execbridge.Endpoint, error) {
	return execbridge.Endpoint{}, errors.New("KUBECONFIG: this docker-sshd is built without Kubernetes support; build it with: go build -tags kube ./examples/docker-sshd")
}
