package execbridge

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/moby/moby/api/types/swarm"
	"github.com/moby/moby/client"
	"golang.org/x/crypto/ssh"
)

// fakeSwarm answers ServiceList and TaskList like a manager: service name
// filters match prefixes, task lists are filtered by service.
type fakeSwarm struct {
	services []swarm.Service
	tasks    []swarm.Task
	err      error
}

func (f *fakeSwarm) ServiceList(ctx context.Context, o client.ServiceListOptions) (client.ServiceListResult, error) {
	if f.err != nil {
		return client.ServiceListResult{}, f.err
	}
	var out []swarm.Service
	for _, s := range f.services {
		keep := len(o.Filters["name"]) == 0
		for n := range o.Filters["name"] {
			keep = keep || strings.HasPrefix(s.Spec.Name, n)
		}
		if keep {
			out = append(out, s)
		}
	}
	return client.ServiceListResult{Items: out}, nil
}

func (f *fakeSwarm) TaskList(ctx context.Context, o client.TaskListOptions) (client.TaskListResult, error) {
	var out []swarm.Task
	for _, t := range f.tasks {
		if o.Filters["service"][t.ServiceID] {
			out = append(out, t)
		}
	}
	return client.TaskListResult{Items: out}, nil
}

func svc(id, name string, labels map[string]string) swarm.Service {
	s := swarm.Service{ID: id}
	s.Spec.Name, s.Spec.Labels = name, labels
	return s
}

func task(id, service string, slot int, node string, desired, state swarm.TaskState, ctr string) swarm.Task {
	t := swarm.Task{ID: id, ServiceID: service, Slot: slot, NodeID: node, DesiredState: desired}
	t.Status.State = state
	if ctr != "" {
		t.Status.ContainerStatus = &swarm.ContainerStatus{ContainerID: ctr}
	}
	return t
}

func TestParseServiceRoute(t *testing.T) {
	for _, tt := range []struct {
		route string
		want  serviceRoute
		ok    bool
	}{
		{"web.svc", serviceRoute{service: "web"}, true},
		{"web.2.svc", serviceRoute{service: "web", slot: 2}, true},
		{"web.svc.host-a", serviceRoute{service: "web", endpoint: "host-a"}, true},
		{"web.2.svc.host-a", serviceRoute{service: "web", slot: 2, endpoint: "host-a"}, true},
		{"web", serviceRoute{}, false},
		{"web.host-a", serviceRoute{}, false},
		{"svc", serviceRoute{}, false},
		{".svc", serviceRoute{service: ""}, true},
		{"web.x.svc", serviceRoute{}, false},
		{"web.0.svc", serviceRoute{}, false},
		{"web.02.svc", serviceRoute{}, false},
		{"web.svc.a.b", serviceRoute{}, false},
		{"a.b.c.svc", serviceRoute{}, false},
	} {
		got, ok := parseServiceRoute(tt.route)
		if ok != tt.ok || ok && got != tt.want {
			t.Errorf("parseServiceRoute(%q) = %+v, %v; want %+v, %v", tt.route, got, ok, tt.want, tt.ok)
		}
	}
}

func TestSwarmResolver(t *testing.T) {
	run, shut := swarm.TaskStateRunning, swarm.TaskStateShutdown
	fs := &fakeSwarm{
		services: []swarm.Service{
			svc("s1", "web", map[string]string{DefaultAllowLabel: "alice"}),
			svc("s2", "webapp", nil),
			svc("s3", "idle", nil),
			svc("s4", "broken", nil),
		},
		tasks: []swarm.Task{
			task("t2", "s1", 2, "n2", run, run, "c2"),
			task("t1", "s1", 1, "n1", run, run, "c1"),
			task("t1old", "s1", 1, "n1", shut, swarm.TaskStateFailed, "c1old"),
			task("t3", "s1", 3, "n1", run, swarm.TaskStatePreparing, ""),
			task("t9", "s2", 1, "n2", run, run, "c9"),
			task("b1", "s4", 1, "n1", run, swarm.TaskStateRejected, ""),
			task("b2", "s4", 2, "n1", shut, shut, "cb2"),
		},
	}
	next := &fixedResolver{target: Target{Name: "plain"}}
	nodes := map[string]string{"n1": "host-a", "n2": "host-b"}
	r := &SwarmResolver{
		Client: fs, Routing: RoutingAny, Next: next,
		NodeEndpoint: func(ctx context.Context, node string) (string, error) {
			if ep, ok := nodes[node]; ok {
				return ep, nil
			}
			return "", errors.New("unknown node")
		},
	}
	for _, tt := range []struct {
		route, wantID, wantEP, wantReason string
	}{
		{route: "web.svc", wantID: "c1", wantEP: "host-a"},
		{route: "web.2.svc", wantID: "c2", wantEP: "host-b"},
		{route: "web.svc.host-b", wantID: "c2", wantEP: "host-b"},
		{route: "web.1.svc.host-b", wantReason: `service "web" has no running task in slot 1 (tasks: 1 failed, 1 running)`},
		{route: "web.3.svc", wantReason: `service "web" has no running task in slot 3 (tasks: 1 preparing)`},
		{route: "webapp.svc", wantID: "c9", wantEP: "host-b"},
		{route: "we.svc", wantReason: `no service "we" that you may use`},
		{route: "idle.svc", wantReason: `service "idle" has no running task (no tasks: scaled to 0?)`},
		{route: "broken.svc", wantReason: `service "broken" has no running task (tasks: 1 rejected, 1 shutdown)`},
		{route: "-web.svc", wantReason: `no service "-web" that you may use`},
		{route: "web1", wantID: "", wantEP: ""}, // to Next
	} {
		t.Run(tt.route, func(t *testing.T) {
			got, err := r.Resolve(t.Context(), Request{Login: "alice", Route: tt.route})
			if tt.wantReason != "" {
				var te *TargetError
				if !errors.As(err, &te) || te.Reason != tt.wantReason {
					t.Fatalf("Resolve(%q) = %+v, %v; want reason %q", tt.route, got, err, tt.wantReason)
				}
				return
			}
			if err != nil || got.ID != tt.wantID || got.Endpoint != tt.wantEP {
				t.Fatalf("Resolve(%q) = %+v, %v; want %s on %s", tt.route, got, err, tt.wantID, tt.wantEP)
			}
		})
	}
	if got, _ := r.Resolve(t.Context(), Request{Route: "web.svc"}); got.Name != "web.1.t1" {
		t.Errorf("the target is named %q, want Swarm's container name web.1.t1", got.Name)
	}

	// Labeled routing reads the service's labels.
	r.Routing = RoutingLabeled
	if _, err := r.Resolve(t.Context(), Request{Login: "alice", Route: "web.svc"}); err != nil {
		t.Errorf("alice on web (labeled for alice): %v", err)
	}
	_, e1 := r.Resolve(t.Context(), Request{Login: "bob", Route: "web.svc"})
	_, e2 := r.Resolve(t.Context(), Request{Login: "bob", Route: "nope.svc"})
	if e1 == nil || strings.ReplaceAll(e1.Error(), "web", "X") != strings.ReplaceAll(e2.Error(), "nope", "X") {
		t.Errorf("bob on web = %v, on nope = %v; want the same refusal", e1, e2)
	}
	r.Routing = RoutingOff
	if _, err := r.Resolve(t.Context(), Request{Login: "alice", Route: "web.svc"}); err == nil {
		t.Error("RoutingOff let a service be named")
	}

	// A manager that does not answer.
	fs.err = errors.New("connection refused")
	r.Routing = RoutingAny
	if _, err := r.Resolve(t.Context(), Request{Route: "web.svc"}); !errors.Is(err, ErrUnavailable) {
		t.Errorf("Resolve with the manager down = %v; want ErrUnavailable", err)
	}
}

// A process ended by the end of its container (a Swarm task rescheduled, a
// docker kill) ends the session with its status and a message.
func TestTargetStoppedIsTold(t *testing.T) {
	env := newTestEnv(t, func(p *fakeProc) error {
		return &ExitError{Code: 137, TargetStopped: true}
	}, envOpts{})
	c := env.dial(t, "alice")
	defer c.Close()
	s := env.session(t, c)
	var stderr strings.Builder
	s.Stderr = &stderr
	err := s.Run("sleep 100")
	var ee *ssh.ExitError
	if !errors.As(err, &ee) || ee.ExitStatus() != 137 {
		t.Fatalf("Run = %v; want exit status 137", err)
	}
	if got, want := stderr.String(), "dockssh: container web1 stopped while the session ran\n"; got != want {
		t.Errorf("stderr = %q, want %q", got, want)
	}
}
