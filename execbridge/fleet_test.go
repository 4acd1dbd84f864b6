package execbridge

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"

	"github.com/dockssh/dockssh/authn"
)

// mapResolver finds targets by route on one fake engine ("" is the default
// target), or fails as a down engine does.
type mapResolver struct {
	mu      sync.Mutex // guards targets, down and routes
	targets map[string]Target
	down    bool
	routes  []string
}

func (r *mapResolver) Resolve(ctx context.Context, req Request) (Target, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.routes = append(r.routes, req.Route)
	if r.down {
		return Target{}, &TargetError{Reason: "the Docker Engine did not answer", Err: fmt.Errorf("%w: connection refused", ErrUnavailable)}
	}
	t, ok := r.targets[req.Route]
	if !ok {
		return Target{}, &TargetError{Reason: fmt.Sprintf("no running container %q that you may use", req.Route)}
	}
	return t, nil
}

func (r *mapResolver) setDown(down bool) {
	r.mu.Lock()
	r.down = down
	r.mu.Unlock()
}

func (r *mapResolver) isDown() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.down
}

type fleetEnv struct {
	fleet     *Fleet
	resolvers map[string]*mapResolver
	backends  map[string]*fakeBackend
	logs      *syncBuffer
}

// newFleetEnv builds a Fleet of endpoints a, b and c: web1 runs on a and
// b, db only on b, the default target only on c.
func newFleetEnv(tb testing.TB, maxProcesses int) *fleetEnv {
	tb.Helper()
	e := &fleetEnv{resolvers: map[string]*mapResolver{}, backends: map[string]*fakeBackend{}, logs: &syncBuffer{}}
	targets := map[string]map[string]Target{
		"a": {"web1": {ID: "a-web1", Name: "web1"}},
		"b": {"web1": {ID: "b-web1", Name: "web1"}, "db": {ID: "b-db", Name: "db"}},
		"c": {"": {ID: "c-default", Name: "app"}},
	}
	var eps []Endpoint
	for _, name := range []string{"a", "b", "c"} {
		r := &mapResolver{targets: targets[name]}
		be := newFakeBackend(func(p *fakeProc) error { return nil })
		e.resolvers[name], e.backends[name] = r, be
		eps = append(eps, Endpoint{Name: name, Backend: be, Resolver: r, MaxProcesses: maxProcesses,
			Ping: func(ctx context.Context) error {
				if r.isDown() {
					return errors.New("connection refused")
				}
				return nil
			}})
	}
	f, err := NewFleet(eps, &FleetConfig{Logger: slog.New(slog.NewTextHandler(e.logs, nil))})
	if err != nil {
		tb.Fatal(err)
	}
	e.fleet = f
	return e
}

func TestNewFleetChecksEndpoints(t *testing.T) {
	be, r := newFakeBackend(nil), &mapResolver{}
	tests := []struct {
		name string
		eps  []Endpoint
		want string
	}{
		{"none", nil, "at least one endpoint"},
		{"empty name", []Endpoint{{Backend: be, Resolver: r}}, `endpoint name ""`},
		{"dot", []Endpoint{{Name: "host.a", Backend: be, Resolver: r}}, `endpoint name "host.a"`},
		{"upper", []Endpoint{{Name: "Host", Backend: be, Resolver: r}}, `endpoint name "Host"`},
		{"leading dash", []Endpoint{{Name: "-a", Backend: be, Resolver: r}}, `endpoint name "-a"`},
		{"plus", []Endpoint{{Name: "a+b", Backend: be, Resolver: r}}, `endpoint name "a+b"`},
		{"too long", []Endpoint{{Name: strings.Repeat("a", 64), Backend: be, Resolver: r}}, "endpoint name"},
		{"twice", []Endpoint{{Name: "a", Backend: be, Resolver: r}, {Name: "a", Backend: be, Resolver: r}}, `endpoint "a" is named twice`},
		{"no backend", []Endpoint{{Name: "a", Resolver: r}}, `endpoint "a" needs a Backend and a Resolver`},
		{"no resolver", []Endpoint{{Name: "a", Backend: be}}, `endpoint "a" needs a Backend and a Resolver`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, err := NewFleet(tt.eps, nil)
			if err == nil || !strings.Contains(err.Error(), tt.want) || f != nil {
				t.Fatalf("NewFleet = %v, %v; want nil and an error containing %q", f, err, tt.want)
			}
		})
	}
	if _, err := NewFleet([]Endpoint{{Name: "host-a", Backend: be, Resolver: r}, {Name: "0", Backend: be, Resolver: r}}, nil); err != nil {
		t.Fatalf("NewFleet(valid names) = %v", err)
	}
}

func TestSplitRoute(t *testing.T) {
	eps := []string{"local", "host-a"}
	tests := []struct{ route, target, endpoint string }{
		{"web1.host-a", "web1", "host-a"},
		{"web1.local", "web1", "local"},
		{"web1", "web1", ""},
		{"web.1", "web.1", ""},
		{"web1.host-b", "web1.host-b", ""},
		{"web1.host-a.host-a", "web1.host-a", "host-a"},
		{".host-a", "", "host-a"},
		{"", "", ""},
	}
	for _, tt := range tests {
		target, endpoint := SplitRoute(tt.route, eps)
		if target != tt.target || endpoint != tt.endpoint {
			t.Errorf("SplitRoute(%q) = %q, %q; want %q, %q", tt.route, target, endpoint, tt.target, tt.endpoint)
		}
	}
}

func TestFleetResolve(t *testing.T) {
	e := newFleetEnv(t, 0)
	tests := []struct {
		route          string
		wantID, wantEP string
		wantReason     string
	}{
		{route: "web1.a", wantID: "a-web1", wantEP: "a"},
		{route: "web1.b", wantID: "b-web1", wantEP: "b"},
		{route: "db", wantID: "b-db", wantEP: "b"},
		{route: "", wantID: "c-default", wantEP: "c"},
		{route: "web1", wantReason: "found on several endpoints: web1 on a, web1 on b; add the endpoint to the user name, as in +web1.a"},
		{route: "db.a", wantReason: `no running container "db" that you may use`},
		{route: "nope", wantReason: `no running container "nope" that you may use`},
		{route: ".a", wantReason: `".a" names an endpoint but no container; log in as user+CONTAINER.a`},
	}
	for _, tt := range tests {
		t.Run(tt.route, func(t *testing.T) {
			got, err := e.fleet.Resolve(t.Context(), Request{Login: "alice", Route: tt.route, Grant: &authn.Grant{}})
			if tt.wantReason != "" {
				var te *TargetError
				if !errors.As(err, &te) || te.Reason != tt.wantReason {
					t.Fatalf("Resolve(%q) = %v, %v; want a TargetError with reason %q", tt.route, got, err, tt.wantReason)
				}
				return
			}
			if err != nil || got.ID != tt.wantID || got.Endpoint != tt.wantEP {
				t.Fatalf("Resolve(%q) = %+v, %v; want %s on %s", tt.route, got, err, tt.wantID, tt.wantEP)
			}
		})
	}
	// The endpoints' resolvers see routes without the endpoint.
	for name, r := range e.resolvers {
		r.mu.Lock()
		for _, route := range r.routes {
			if strings.Contains(route, ".") {
				t.Errorf("endpoint %s's resolver saw route %q", name, route)
			}
		}
		r.mu.Unlock()
	}
}

func TestFleetEndpointDown(t *testing.T) {
	e := newFleetEnv(t, 0)
	ctx := t.Context()
	e.resolvers["a"].setDown(true)

	// Named on the down endpoint: its name is in the reason.
	_, err := e.fleet.Resolve(ctx, Request{Route: "web1.a", Grant: &authn.Grant{}})
	var te *TargetError
	if !errors.As(err, &te) || te.Reason != "endpoint a did not answer; try again later" || !errors.Is(err, ErrUnavailable) {
		t.Fatalf("Resolve(web1.a) with a down = %v; want endpoint a named and ErrUnavailable", err)
	}
	e.logs.waitLog(t, "endpoint is down")

	// Discovered: the endpoints that answer serve it; the ambiguity
	// between a and b is not seen while a is down.
	got, err := e.fleet.Resolve(ctx, Request{Route: "web1", Grant: &authn.Grant{}})
	if err != nil || got.ID != "b-web1" {
		t.Fatalf("Resolve(web1) with a down = %+v, %v; want b-web1", got, err)
	}
	// Not found anywhere: the user learns that a did not answer.
	_, err = e.fleet.Resolve(ctx, Request{Route: "nope", Grant: &authn.Grant{}})
	if !errors.As(err, &te) || te.Reason != `no running container "nope" that you may use (endpoint a did not answer)` {
		t.Fatalf("Resolve(nope) with a down = %v", err)
	}
	// Another endpoint is untouched.
	if got, err := e.fleet.Resolve(ctx, Request{Route: "db.b", Grant: &authn.Grant{}}); err != nil || got.ID != "b-db" {
		t.Fatalf("Resolve(db.b) with a down = %+v, %v", got, err)
	}
	// Check sees it too.
	for _, st := range e.fleet.Check(ctx) {
		if down := st.Err != nil; down != (st.Name == "a") {
			t.Errorf("Check: %s: Err = %v", st.Name, st.Err)
		}
	}
	if n := strings.Count(e.logs.String(), "endpoint is down"); n != 1 {
		t.Errorf("the change to down was logged %d times, want once:\n%s", n, e.logs.String())
	}

	// Back: the next session is served, and the change logged once.
	e.resolvers["a"].setDown(false)
	if got, err := e.fleet.Resolve(ctx, Request{Route: "web1.a", Grant: &authn.Grant{}}); err != nil || got.ID != "a-web1" {
		t.Fatalf("Resolve(web1.a) after recovery = %+v, %v", got, err)
	}
	e.logs.waitLog(t, "endpoint answers again")
	if _, err := e.fleet.Resolve(ctx, Request{Route: "web1.a", Grant: &authn.Grant{}}); err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(e.logs.String(), "endpoint answers again"); n != 1 {
		t.Errorf("the change to up was logged %d times, want once", n)
	}
}

func TestFleetStartRoutesAndLimits(t *testing.T) {
	e := newFleetEnv(t, 2)
	ctx := t.Context()
	start := func(ep string) (Process, error) {
		return e.fleet.Start(ctx, ProcessSpec{Target: Target{Endpoint: ep, ID: ep + "-web1", Name: "web1"}, Argv: []string{"true"}})
	}
	p1, err := start("a")
	if err != nil {
		t.Fatal(err)
	}
	if got := e.backends["a"].next(t).spec.Target.ID; got != "a-web1" {
		t.Fatalf("endpoint a started %q", got)
	}
	p2, err := start("a")
	if err != nil {
		t.Fatal(err)
	}
	e.backends["a"].next(t)

	// a is full; b is not affected.
	_, err = start("a")
	var te *TargetError
	if !errors.As(err, &te) || te.Reason != "endpoint a already runs its limit of 2 sessions; try again later" {
		t.Fatalf("third Start on a = %v; want the limit named", err)
	}
	pb, err := start("b")
	if err != nil {
		t.Fatalf("Start on b while a is full = %v", err)
	}
	e.backends["b"].next(t)
	if st := e.fleet.Check(ctx); st[0].Running != 2 || st[1].Running != 1 {
		t.Errorf("Check: running a=%d b=%d, want 2 and 1", st[0].Running, st[1].Running)
	}

	// Close gives the slot back, once however often it is called.
	p1.Close()
	p1.Close()
	p3, err := start("a")
	if err != nil {
		t.Fatalf("Start on a after a Close = %v", err)
	}
	e.backends["a"].next(t)
	if _, err := start("a"); err == nil {
		t.Fatal("a Close called twice gave back two slots")
	}
	for _, p := range []Process{p2, p3, pb} {
		p.Close()
	}

	// A failed start gives its slot back.
	e.backends["c"].startErr = fmt.Errorf("create exec: %w: dial: connection refused", ErrUnavailable)
	for range 3 {
		_, err := start("c")
		if !errors.As(err, &te) || te.Reason != "endpoint c did not answer; try again later" {
			t.Fatalf("Start on a down c = %v", err)
		}
	}
	e.backends["c"].startErr = nil
	if p, err := start("c"); err != nil {
		t.Fatalf("Start on c after failures = %v; the failures kept their slots", err)
	} else {
		p.Close()
	}

	if _, err := start("nope"); err == nil || !strings.Contains(err.Error(), "names no endpoint") {
		t.Fatalf("Start on an unknown endpoint = %v", err)
	}
}

// A Fleet is a Bridge's Resolver and Backend: the SSH user name routes the
// session, and the user reads why a session cannot run.
func TestFleetThroughBridge(t *testing.T) {
	fe := newFleetEnv(t, 0)
	env := newTestEnv(t, nil, envOpts{config: func(c *Config) {
		c.Backend, c.Resolver = fe.fleet, fe.fleet
	}})
	run := func(user, cmd string) (string, error) {
		c := env.dial(t, user)
		defer c.Close()
		s := env.session(t, c)
		var stderr bytes.Buffer
		s.Stderr = &stderr
		err := s.Run(cmd)
		return stderr.String(), err
	}
	if _, err := run("alice+db", "true"); err != nil {
		t.Fatalf("alice+db: %v", err)
	}
	if p := fe.backends["b"].next(t); p.spec.Target.ID != "b-db" || p.spec.Argv[len(p.spec.Argv)-1] != "true" {
		t.Fatalf("alice+db ran %+v", p.spec)
	}
	fe.resolvers["b"].setDown(true)
	stderr, err := run("alice+db.b", "true")
	if err == nil || !strings.Contains(stderr, "dockssh: endpoint b did not answer; try again later") {
		t.Fatalf("alice+db.b with b down: err %v, stderr %q", err, stderr)
	}
	stderr, err = run("alice+web1", "true")
	if err != nil {
		t.Fatalf("alice+web1 with b down: %v %q", err, stderr)
	}
	if p := fe.backends["a"].next(t); p.spec.Target.ID != "a-web1" {
		t.Fatalf("alice+web1 ran in %+v", p.spec.Target)
	}
}

// ownerResolver owns the routes ending in ".own".
type ownerResolver struct{ mapResolver }

func (o *ownerResolver) OwnsRoute(route string) bool { return strings.HasSuffix(route, ".own") }

// A route that an endpoint's resolver owns is asked there only: its answer
// (here a refusal) is what the user reads, not another engine's.
func TestFleetRouteOwner(t *testing.T) {
	plain := &mapResolver{targets: map[string]Target{"x.own": {ID: "p"}, "web1": {ID: "w"}}}
	owner := &ownerResolver{mapResolver{targets: map[string]Target{}}}
	f, err := NewFleet([]Endpoint{
		{Name: "docker", Backend: newFakeBackend(nil), Resolver: plain},
		{Name: "k8s", Backend: newFakeBackend(nil), Resolver: owner},
	}, &FleetConfig{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	_, err = f.Resolve(t.Context(), Request{Route: "x.own", Grant: &authn.Grant{}})
	var te *TargetError
	if !errors.As(err, &te) || te.Reason != `no running container "x.own" that you may use` {
		t.Fatalf("Resolve(x.own) = %v; want the owner's refusal, not the other endpoint's target", err)
	}
	if len(plain.routes) != 0 {
		t.Errorf("the endpoint that does not own x.own was asked: %v", plain.routes)
	}
	if got, err := f.Resolve(t.Context(), Request{Route: "web1", Grant: &authn.Grant{}}); err != nil || got.ID != "w" {
		t.Errorf("Resolve(web1) = %+v, %v; routes nobody owns go everywhere", got, err)
	}
}
