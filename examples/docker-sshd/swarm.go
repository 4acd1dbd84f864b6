package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"strings"
	"sync"

	"github.com/moby/moby/client"

	"github.com/dockssh/dockssh/execbridge"
)

// swarmNodes finds the endpoint of each Swarm node: the one SWARM_NODES
// maps it to (by node ID or hostname), else the manager's endpoint for the
// manager's own node, else ssh://NODE-ADDRESS with the gateway's SSH client
// settings, added to the Fleet the first time the node runs a task that a
// user asks for.
type swarmNodes struct {
	manager   *client.Client
	managerEP string
	selfID    string            // the manager's own node ID
	mapped    map[string]string // node ID or hostname -> endpoint name
	fleet     *execbridge.Fleet
	fs        fleetSettings
	log       *slog.Logger
	addEngine func(*engine) // keeps an engine added here, to close it at the end

	mu    sync.Mutex        // guards known
	known map[string]string // node ID -> endpoint name
}

// parseNodeMap reads SWARM_NODES: "node=endpoint,...", node an ID or a
// hostname.
func parseNodeMap(v string, endpoints []string) (map[string]string, error) {
	out := map[string]string{}
	for item := range strings.SplitSeq(v, ",") {
		if item = strings.TrimSpace(item); item == "" {
			continue
		}
		node, ep, ok := strings.Cut(item, "=")
		if !ok || node == "" {
			return nil, fmt.Errorf("SWARM_NODES: %q is not node=endpoint", item)
		}
		if !slices.Contains(endpoints, ep) {
			return nil, fmt.Errorf("SWARM_NODES: %q maps to %q, which is not an endpoint (ENDPOINTS: %s)", node, ep, strings.Join(endpoints, ", "))
		}
		out[node] = ep
	}
	return out, nil
}

// endpoint implements execbridge.NodeEndpointFunc.
func (n *swarmNodes) endpoint(ctx context.Context, nodeID string) (string, error) {
	n.mu.Lock()
	ep, ok := n.known[nodeID]
	n.mu.Unlock()
	if ok {
		return ep, nil
	}
	if ep, ok := n.mapped[nodeID]; ok {
		return n.remember(nodeID, ep), nil
	}
	res, err := n.manager.NodeInspect(ctx, nodeID, client.NodeInspectOptions{})
	if err != nil {
		return "", fmt.Errorf("inspect node %s: %w", nodeID, err)
	}
	node := res.Node
	if ep, ok := n.mapped[node.Description.Hostname]; ok {
		return n.remember(nodeID, ep), nil
	}
	if nodeID == n.selfID {
		return n.remember(nodeID, n.managerEP), nil
	}
	addr := node.Status.Addr
	if addr == "" || net.ParseIP(addr) == nil {
		return "", fmt.Errorf("node %s (%s) has no address; map it with SWARM_NODES", nodeID, node.Description.Hostname)
	}
	spec := endpointSpec{Name: nodeEndpointName(nodeID), URL: "ssh://" + hostForURL(addr)}
	e, err := newEngine(spec, n.fs.ssh)
	if err != nil {
		return "", fmt.Errorf("node %s: %w", nodeID, err)
	}
	if err := n.fleet.Add(fleetEndpoint(spec, e, n.fs, n.log)); err != nil {
		e.Close()
		return "", err
	}
	n.addEngine(e)
	n.log.Info("docker-sshd: Swarm node reached over SSH", "node", nodeID, "hostname", node.Description.Hostname, "endpoint", spec.Name, "url", spec.URL)
	return n.remember(nodeID, spec.Name), nil
}

func (n *swarmNodes) remember(nodeID, ep string) string {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.known == nil {
		n.known = map[string]string{}
	}
	n.known[nodeID] = ep
	return ep
}

// nodeEndpointName is the endpoint name of a node reached by its address.
func nodeEndpointName(nodeID string) string {
	id := strings.ToLower(nodeID)
	if len(id) > 12 {
		id = id[:12]
	}
	return "node-" + id
}

// hostForURL brackets an IPv6 address for a URL.
func hostForURL(ip string) string {
	if strings.Contains(ip, ":") {
		return "[" + ip + "]"
	}
	return ip
}

// newSwarm checks that the manager endpoint is a Swarm manager and returns
// the resolver of service routes, in front of fleet for the rest.
func newSwarm(ctx context.Context, o settings, fleet *execbridge.Fleet, engines []*engine, fs fleetSettings, log *slog.Logger, addEngine func(*engine)) (*execbridge.SwarmResolver, error) {
	name := o["SWARM_MANAGER"]
	var manager *engine
	for _, e := range engines {
		if e.name == name {
			manager = e
		}
	}
	if manager == nil {
		return nil, fmt.Errorf("SWARM_MANAGER %q is not an endpoint (ENDPOINTS: %s)", name, strings.Join(fleet.Endpoints(), ", "))
	}
	mapped, err := parseNodeMap(o["SWARM_NODES"], fleet.Endpoints())
	if err != nil {
		return nil, err
	}
	info, err := manager.client.Info(ctx, client.InfoOptions{})
	if err != nil {
		return nil, fmt.Errorf("SWARM_MANAGER %s: %w", name, err)
	}
	if sw := info.Info.Swarm; !sw.ControlAvailable {
		return nil, fmt.Errorf("SWARM_MANAGER %s is not a Swarm manager (its swarm state: %s)", name, sw.LocalNodeState)
	}
	nodes := &swarmNodes{
		manager: manager.client, managerEP: name, selfID: info.Info.Swarm.NodeID,
		mapped: mapped, fleet: fleet, fs: fs, log: log, addEngine: addEngine,
	}
	log.Info("docker-sshd: serving Swarm services", "manager", name, "node", info.Info.Swarm.NodeID, "mapped_nodes", len(mapped))
	return &execbridge.SwarmResolver{
		Client:       manager.client,
		NodeEndpoint: nodes.endpoint,
		Routing:      fs.routing,
		AllowLabel:   fs.allowLabel,
		Next:         fleet,
	}, nil
}
