package execbridge

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/moby/moby/api/types/swarm"
	"github.com/moby/moby/client"

	"github.com/dockssh/dockssh/internal/sshmatch"
)

// ServiceLabel is the route part that names a Swarm service:
// "web.svc", "web.2.svc", "web.svc.host-a".
const ServiceLabel = "svc"

// SwarmClient is the part of a Swarm manager's Docker client
// (*client.Client) that SwarmResolver uses.
type SwarmClient interface {
	ServiceList(ctx context.Context, options client.ServiceListOptions) (client.ServiceListResult, error)
	TaskList(ctx context.Context, options client.TaskListOptions) (client.TaskListResult, error)
}

// NodeEndpointFunc names the endpoint (of the Fleet that runs the
// processes) of the Swarm node with ID nodeID. An error means the node
// cannot be reached; the user is told so, with the node.
type NodeEndpointFunc func(ctx context.Context, nodeID string) (string, error)

// SwarmResolver picks a running task of a Docker Swarm service, on the node
// that runs it, for routes that name a service; other routes go to Next.
//
// # Routes
//
// "SERVICE.svc" is the service's first running task in slot order (then
// task ID); "SERVICE.N.svc" the task in slot N (replicated services);
// "SERVICE.svc.ENDPOINT" the first one on a node whose endpoint is
// ENDPOINT. A task is running when both its desired and its current state
// are; a container HEALTHCHECK is not consulted. The target is the task's
// container, by ID, on its node's endpoint (NodeEndpoint), so a Fleet
// that is the Bridge's Backend runs it there.
type SwarmResolver struct {
	// Client asks a manager for services and tasks. Required.
	Client SwarmClient

	// NodeEndpoint names each node's endpoint. Required.
	NodeEndpoint NodeEndpointFunc

	// Filters limits the services that may be reached, in the Engine's
	// service filter syntax (for example {"label": ["ssh=yes"]}). nil
	// means every service.
	Filters map[string][]string

	// Routing says who may name a service, as DockerResolver's: on the
	// service's labels. RoutingOff (the zero value) refuses service
	// routes.
	Routing Routing

	// AllowLabel is the service label RoutingLabeled reads. Empty means
	// DefaultAllowLabel.
	AllowLabel string

	// Next resolves every route that does not name a service, and logins
	// without a route. nil refuses them.
	Next Resolver
}

// OwnsRoute implements RouteOwner: routes that name a service.
func (r *SwarmResolver) OwnsRoute(route string) bool {
	_, ok := parseServiceRoute(route)
	return ok
}

// serviceRoute is a parsed service route.
type serviceRoute struct {
	service  string
	slot     int    // 0: any
	endpoint string // "": any
}

// parseServiceRoute reports whether route names a service, and how.
func parseServiceRoute(route string) (serviceRoute, bool) {
	parts := strings.Split(route, ".")
	i := slices.Index(parts, ServiceLabel)
	if i < 1 || i > 2 || len(parts) > i+2 {
		return serviceRoute{}, false
	}
	r := serviceRoute{service: parts[0]}
	if i == 2 {
		n, err := strconv.Atoi(parts[1])
		if err != nil || n < 1 || parts[1][0] == '0' {
			return serviceRoute{}, false
		}
		r.slot = n
	}
	if len(parts) == i+2 {
		r.endpoint = parts[i+1]
	}
	return r, true
}

// validServiceName reports whether s can name a Swarm service (a DNS
// label, with '_' as Docker allows), so nothing else reaches the manager.
func validServiceName(s string) bool {
	if s == "" || len(s) > 63 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		alnum := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
		if !alnum && (i == 0 || c != '-' && c != '_') {
			return false
		}
	}
	return true
}

// Resolve implements Resolver.
func (r *SwarmResolver) Resolve(ctx context.Context, req Request) (Target, error) {
	sr, ok := parseServiceRoute(req.Route)
	if !ok {
		if r.Next == nil {
			return Target{}, &TargetError{Reason: "this server serves Swarm services only: log in as user+SERVICE.svc"}
		}
		return r.Next.Resolve(ctx, req)
	}
	if r.Routing == RoutingOff {
		return Target{}, &TargetError{Reason: "this server does not let the user name choose a service"}
	}
	if r.Client == nil || r.NodeEndpoint == nil {
		return Target{}, errors.New("execbridge: SwarmResolver needs a Client and a NodeEndpoint")
	}
	// The same answer for "no such service" and "not yours", so that a
	// user cannot probe for names.
	notFound := &TargetError{Reason: fmt.Sprintf("no service %q that you may use", sr.service)}
	if !validServiceName(sr.service) {
		return Target{}, notFound
	}
	svc, err := r.service(ctx, sr.service)
	if err != nil {
		return Target{}, err
	}
	if svc == nil {
		return Target{}, notFound
	}
	if r.Routing == RoutingLabeled {
		allow, ok := svc.Spec.Labels[cmp.Or(r.AllowLabel, DefaultAllowLabel)]
		if !ok || !sshmatch.SplitList(allow, false).Match(req.Login) {
			return Target{}, notFound
		}
	}
	return r.task(ctx, svc, sr)
}

// service returns the service named exactly name within Filters, or nil.
func (r *SwarmResolver) service(ctx context.Context, name string) (*swarm.Service, error) {
	f := make(client.Filters)
	for k, vs := range r.Filters {
		f.Add(k, vs...)
	}
	if len(r.Filters["name"]) == 0 {
		// A service name filter matches prefixes; the exact name is
		// checked below, and the Engine ORs name filters, so one in
		// Filters is left alone.
		f.Add("name", name)
	}
	res, err := r.Client.ServiceList(ctx, client.ServiceListOptions{Filters: f})
	if err != nil {
		return nil, &TargetError{Reason: "the Swarm manager did not answer", Err: fmt.Errorf("%w: %w", ErrUnavailable, err)}
	}
	for i := range res.Items {
		if res.Items[i].Spec.Name == name {
			return &res.Items[i], nil
		}
	}
	return nil, nil
}

// task picks the running task of svc that sr asks for.
func (r *SwarmResolver) task(ctx context.Context, svc *swarm.Service, sr serviceRoute) (Target, error) {
	f := make(client.Filters)
	f.Add("service", svc.ID)
	res, err := r.Client.TaskList(ctx, client.TaskListOptions{Filters: f})
	if err != nil {
		return Target{}, &TargetError{Reason: "the Swarm manager did not answer", Err: fmt.Errorf("%w: %w", ErrUnavailable, err)}
	}
	tasks := slices.DeleteFunc(slices.Clone(res.Items), func(t swarm.Task) bool { return t.ServiceID != svc.ID })
	slices.SortFunc(tasks, func(a, b swarm.Task) int {
		return cmp.Or(cmp.Compare(a.Slot, b.Slot), strings.Compare(a.ID, b.ID))
	})
	states := map[swarm.TaskState]int{}
	for _, t := range tasks {
		if sr.slot != 0 && t.Slot != sr.slot {
			continue
		}
		states[t.Status.State]++
		if t.DesiredState != swarm.TaskStateRunning || t.Status.State != swarm.TaskStateRunning ||
			t.Status.ContainerStatus == nil || t.Status.ContainerStatus.ContainerID == "" {
			continue
		}
		ep, err := r.NodeEndpoint(ctx, t.NodeID)
		if err != nil {
			return Target{}, &TargetError{Reason: fmt.Sprintf("the node of service %q's task cannot be reached", svc.Spec.Name), Err: err}
		}
		if sr.endpoint != "" && ep != sr.endpoint {
			continue
		}
		return Target{
			Endpoint: ep,
			ID:       t.Status.ContainerStatus.ContainerID,
			// Swarm names a task's container SERVICE.SLOT.TASKID.
			Name:   fmt.Sprintf("%s.%d.%s", svc.Spec.Name, t.Slot, t.ID),
			Labels: svc.Spec.Labels,
		}, nil
	}
	where := ""
	switch {
	case sr.slot != 0:
		where = fmt.Sprintf(" in slot %d", sr.slot)
	case sr.endpoint != "":
		where = " on " + sr.endpoint
	}
	return Target{}, &TargetError{Reason: fmt.Sprintf("service %q has no running task%s (%s)", svc.Spec.Name, where, taskStates(states))}
}

// taskStates describes the states of a service's tasks for a message:
// "2 shutdown, 1 failed", or "no tasks: scaled to 0?".
func taskStates(n map[swarm.TaskState]int) string {
	if len(n) == 0 {
		return "no tasks: scaled to 0?"
	}
	var parts []string
	for _, s := range slices.Sorted(maps.Keys(n)) {
		parts = append(parts, fmt.Sprintf("%d %s", n[s], s))
	}
	return "tasks: " + strings.Join(parts, ", ")
}
