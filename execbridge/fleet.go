package execbridge

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"
)

// ErrUnavailable marks an error of an engine that could not be reached or
// did not answer in time, as opposed to one that answered with a refusal.
// DockerResolver and DockerBackend wrap it; a Fleet uses it to tell an
// endpoint that is down from a container that is not there.
var ErrUnavailable = errors.New("engine unavailable")

// Endpoint is one engine of a Fleet: a Backend and a Resolver that talk to
// it, usually a DockerBackend and a DockerResolver sharing one Docker
// client (a local socket, tcp:// with TLS, or ssh:// through package
// dialer).
type Endpoint struct {
	// Name names the endpoint in routes ("web1.host-a"), messages and
	// logs: 1 to 63 characters of a-z, 0-9 and '-', starting with a
	// letter or digit (a DNS label, so it never holds '.', '+' or '@').
	Name string

	// Backend starts processes on this engine. Required. It may also be
	// a SubsystemBackend; without one, SFTP is refused on this endpoint.
	Backend Backend

	// Resolver picks targets on this engine. Required. It sees the route
	// without the endpoint ("web1" for "web1.host-a").
	Resolver Resolver

	// Ping reports whether the engine answers, for Fleet.Check. nil means
	// Check reports the endpoint as unknown.
	Ping func(ctx context.Context) error

	// MaxProcesses is the most processes (sessions, SFTP servers and web
	// terminals) that may run on this endpoint at once, counting those
	// starting; more are refused with a message naming the endpoint, so
	// an endpoint that hangs holds at most this many sessions while the
	// others serve on. Zero means DefaultMaxProcesses; negative means no
	// limit.
	MaxProcesses int
}

// DefaultMaxProcesses is the MaxProcesses of an Endpoint that sets none.
const DefaultMaxProcesses = 256

// FleetConfig configures a Fleet. A nil *FleetConfig means every default.
type FleetConfig struct {
	// Logger receives a record when an endpoint stops answering and when
	// it answers again. nil means slog.Default().
	Logger *slog.Logger
}

// Fleet runs sessions on several engines. It is both the Resolver and the
// Backend of a Bridge (and its SubsystemBackend): it routes each session to
// one endpoint and each process to the endpoint of its Target, so SSH
// sessions, SFTP and web terminals (Bridge.StartShell) route the same way.
//
// # Routes
//
// A route (the part of the SSH user name after RouteSep) may end in
// "." + an endpoint name: "alice+web1.host-a" asks for web1 on host-a only,
// and host-a's Resolver sees "web1". A route without a known endpoint
// suffix, and a user name without a route, are resolved on every endpoint
// at once (on those whose Resolver is a RouteOwner of the route, when
// some are): exactly one answer is the target; answers from several
// endpoints are refused with a message naming the candidates (there is no
// meaningful "newest" across engines), so the user adds the endpoint.
// A container whose own name ends in "." + an endpoint name is reached by
// adding the endpoint: "web1.host-a.host-a".
//
// # Health
//
// An endpoint that does not answer (an error wrapping ErrUnavailable) fails
// only the sessions routed to it, with a message naming it; a session
// resolved on every endpoint is served by those that answer. The endpoint
// is tried again by the next session, so it serves again as soon as its
// engine answers (package dialer reconnects an ssh:// endpoint on the next
// dial), with no restart. Each change between down and up is logged once.
type Fleet struct {
	logger *slog.Logger

	mu        sync.RWMutex // guards endpoints and byName
	endpoints []*fleetEndpoint
	byName    map[string]*fleetEndpoint
}

type fleetEndpoint struct {
	Endpoint
	slots chan struct{} // nil: no limit

	mu      sync.Mutex // guards down and lastErr
	down    bool
	lastErr error
}

var (
	_ Resolver         = (*Fleet)(nil)
	_ Backend          = (*Fleet)(nil)
	_ SubsystemBackend = (*Fleet)(nil)
)

// NewFleet checks the endpoints and returns a Fleet over them, in the
// given order (the order of candidates in messages and of Check).
func NewFleet(endpoints []Endpoint, cfg *FleetConfig) (*Fleet, error) {
	if len(endpoints) == 0 {
		return nil, errors.New("execbridge: a Fleet needs at least one endpoint")
	}
	if cfg == nil {
		cfg = &FleetConfig{}
	}
	f := &Fleet{byName: make(map[string]*fleetEndpoint, len(endpoints)), logger: cmp.Or(cfg.Logger, slog.Default())}
	for _, e := range endpoints {
		if err := f.Add(e); err != nil {
			return nil, err
		}
	}
	return f, nil
}

// Add adds an endpoint to the Fleet, after those it has: for an engine
// found while serving, such as a Swarm node seen for the first time.
func (f *Fleet) Add(e Endpoint) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	switch {
	case !ValidEndpointName(e.Name):
		return fmt.Errorf("execbridge: endpoint name %q: use 1 to 63 of a-z, 0-9 and '-', starting with a letter or digit", e.Name)
	case f.byName[e.Name] != nil:
		return fmt.Errorf("execbridge: endpoint %q is named twice", e.Name)
	case e.Backend == nil || e.Resolver == nil:
		return fmt.Errorf("execbridge: endpoint %q needs a Backend and a Resolver", e.Name)
	}
	fe := &fleetEndpoint{Endpoint: e}
	if n := cmp.Or(e.MaxProcesses, DefaultMaxProcesses); n > 0 {
		fe.slots = make(chan struct{}, n)
	}
	f.endpoints = append(f.endpoints, fe)
	f.byName[e.Name] = fe
	return nil
}

// list returns the endpoints, in order.
func (f *Fleet) list() []*fleetEndpoint {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return slices.Clone(f.endpoints)
}

// named returns the endpoint called name, or nil.
func (f *Fleet) named(name string) *fleetEndpoint {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return f.byName[name]
}

// ValidEndpointName reports whether name can name an Endpoint.
func ValidEndpointName(name string) bool {
	if name == "" || len(name) > 63 || name[0] == '-' {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}

// SplitRoute splits a route into the target and the endpoint it names,
// when its last '.'-separated part is the name of one of endpoints:
// ("web1.host-a", [local host-a]) is ("web1", "host-a"); ("web1", ...) and
// ("www.example", ...) are themselves with no endpoint.
func SplitRoute(route string, endpoints []string) (target, endpoint string) {
	i := strings.LastIndexByte(route, '.')
	if i < 0 || !slices.Contains(endpoints, route[i+1:]) {
		return route, ""
	}
	return route[:i], route[i+1:]
}

// A RouteOwner is a Resolver whose routes have a syntax of their own, such
// as a pod's "web-1.pod" or a Swarm service's "web.svc". A Fleet resolves a
// route that some endpoints' resolvers own on those endpoints only, so
// that the user reads their answer (a pod that is not ready) rather than
// another engine's "no such container".
type RouteOwner interface {
	// OwnsRoute reports whether route is in the resolver's syntax.
	OwnsRoute(route string) bool
}

// Endpoints returns the names of the endpoints, in order.
func (f *Fleet) Endpoints() []string {
	eps := f.list()
	names := make([]string, len(eps))
	for i, e := range eps {
		names[i] = e.Name
	}
	return names
}

// Resolve implements Resolver: see the type's doc for routes. The Target's
// Endpoint is set to the endpoint that found it.
func (f *Fleet) Resolve(ctx context.Context, req Request) (Target, error) {
	route, name := SplitRoute(req.Route, f.Endpoints())
	if name != "" {
		if route == "" {
			return Target{}, &TargetError{Reason: fmt.Sprintf("%q names an endpoint but no container; log in as user+CONTAINER.%s", req.Route, name)}
		}
		req.Route = route
		return f.named(name).resolve(ctx, f.logger, req)
	}
	eps := f.list()
	if owners := ownersOf(eps, req.Route); len(owners) > 0 {
		eps = owners
	}
	if len(eps) == 1 {
		return eps[0].resolve(ctx, f.logger, req)
	}

	type answer struct {
		t   Target
		err error
	}
	answers := make([]answer, len(eps))
	var wg sync.WaitGroup
	for i, e := range eps {
		wg.Go(func() {
			t, err := e.resolve(ctx, f.logger, req)
			answers[i] = answer{t, err}
		})
	}
	wg.Wait()

	var found []Target
	var down []string
	var first error
	for i, a := range answers {
		switch {
		case a.err == nil:
			found = append(found, a.t)
		case errors.Is(a.err, ErrUnavailable):
			down = append(down, eps[i].Name)
		case first == nil:
			first = a.err
		}
	}
	switch {
	case len(found) == 1:
		return found[0], nil
	case len(found) > 1:
		example := found[0].Name + "." + found[0].Endpoint
		return Target{}, &TargetError{Reason: "found on several endpoints: " + candidateNames(found) + "; add the endpoint to the user name, as in +" + example}
	case len(down) > 0:
		reason := "endpoint " + strings.Join(down, ", ") + " did not answer"
		if first != nil {
			reason = userReason(first) + " (" + reason + ")"
		}
		return Target{}, &TargetError{Reason: reason, Err: errors.Join(ErrUnavailable, first)}
	}
	return Target{}, first
}

// ownersOf returns the endpoints whose resolver owns route.
func ownersOf(eps []*fleetEndpoint, route string) []*fleetEndpoint {
	var owners []*fleetEndpoint
	for _, e := range eps {
		if o, ok := e.Resolver.(RouteOwner); ok && route != "" && o.OwnsRoute(route) {
			owners = append(owners, e)
		}
	}
	return owners
}

// resolve asks e's Resolver and keeps e's health.
func (e *fleetEndpoint) resolve(ctx context.Context, logger *slog.Logger, req Request) (Target, error) {
	t, err := e.Resolver.Resolve(ctx, req)
	if err = e.observe(ctx, logger, err); err != nil {
		return Target{}, err
	}
	t.Endpoint = e.Name
	return t, nil
}

// observe records whether err says that e is down, logs a change, and
// returns err with e's name in the user's reason when it is.
func (e *fleetEndpoint) observe(ctx context.Context, logger *slog.Logger, err error) error {
	down := errors.Is(err, ErrUnavailable)
	if err != nil && !down && ctx.Err() != nil {
		// The session's own time ran out: no news of the endpoint.
		return err
	}
	// Otherwise the engine answered: a refusal is an answer too.
	e.mu.Lock()
	changed := e.down != down
	e.down, e.lastErr = down, err
	e.mu.Unlock()
	if changed && down {
		logger.Warn("execbridge: endpoint is down; sessions routed to it fail until it answers", "endpoint", e.Name, "err", err)
	} else if changed {
		logger.Info("execbridge: endpoint answers again", "endpoint", e.Name)
	}
	if down {
		return &TargetError{Reason: "endpoint " + e.Name + " did not answer; try again later", Err: err}
	}
	return err
}

// endpoint returns the endpoint of t.
func (f *Fleet) endpoint(t Target) (*fleetEndpoint, error) {
	if e := f.named(t.Endpoint); e != nil {
		return e, nil
	}
	if eps := f.list(); t.Endpoint == "" && len(eps) == 1 {
		return eps[0], nil
	}
	return nil, fmt.Errorf("execbridge: target %s names no endpoint of this Fleet", t)
}

// Start implements Backend: it starts the process on spec.Target's
// endpoint, within that endpoint's MaxProcesses.
func (f *Fleet) Start(ctx context.Context, spec ProcessSpec) (Process, error) {
	e, err := f.endpoint(spec.Target)
	if err != nil {
		return nil, err
	}
	if e.slots != nil {
		select {
		case e.slots <- struct{}{}:
		default:
			return nil, &TargetError{Reason: fmt.Sprintf("endpoint %s already runs its limit of %d sessions; try again later", e.Name, cap(e.slots))}
		}
	}
	p, err := e.Backend.Start(ctx, spec)
	if err = e.observe(ctx, f.logger, err); err != nil {
		e.release()
		return nil, err
	}
	return &fleetProcess{Process: p, e: e, logger: f.logger, release: sync.OnceFunc(e.release)}, nil
}

func (e *fleetEndpoint) release() {
	if e.slots != nil {
		<-e.slots
	}
}

// fleetProcess is a process on endpoint e: it gives back e's slot when it
// is closed, and names e when its exit status is lost with e.
type fleetProcess struct {
	Process
	e       *fleetEndpoint
	logger  *slog.Logger
	release func()
}

func (p *fleetProcess) Wait(ctx context.Context) error {
	err := p.Process.Wait(ctx)
	var ee *ExitError
	if err == nil || errors.As(err, &ee) {
		return err
	}
	return p.e.observe(ctx, p.logger, err)
}

func (p *fleetProcess) Close() error {
	defer p.release()
	return p.Process.Close()
}

// Shell implements Backend on target's endpoint.
func (f *Fleet) Shell(ctx context.Context, target Target) (string, error) {
	e, err := f.endpoint(target)
	if err != nil {
		return "", err
	}
	shell, err := e.Backend.Shell(ctx, target)
	if err = e.observe(ctx, f.logger, err); err != nil {
		return "", err
	}
	return shell, nil
}

// Subsystem implements SubsystemBackend on target's endpoint.
func (f *Fleet) Subsystem(ctx context.Context, target Target, name, user string) ([]string, error) {
	e, err := f.endpoint(target)
	if err != nil {
		return nil, err
	}
	sb, ok := e.Backend.(SubsystemBackend)
	if !ok {
		return nil, &TargetError{Reason: "endpoint " + e.Name + " does not serve " + name}
	}
	argv, err := sb.Subsystem(ctx, target, name, user)
	if err = e.observe(ctx, f.logger, err); err != nil {
		return nil, err
	}
	return argv, nil
}

// EndpointStatus is the health of one endpoint, as Fleet.Check reports it.
type EndpointStatus struct {
	// Name is the endpoint's name.
	Name string
	// Err is nil when the endpoint answered, the error of its Ping when
	// it did not, and ErrNoPing when it has no Ping.
	Err error
	// Took is how long the Ping took.
	Took time.Duration
	// Running is the number of processes the Fleet runs there now.
	Running int
}

// ErrNoPing is the EndpointStatus.Err of an endpoint without a Ping.
var ErrNoPing = errors.New("execbridge: the endpoint has no Ping")

// Check pings every endpoint at once and reports each, in order, updating
// the health the Fleet logs. ctx bounds the pings.
func (f *Fleet) Check(ctx context.Context) []EndpointStatus {
	eps := f.list()
	out := make([]EndpointStatus, len(eps))
	var wg sync.WaitGroup
	for i, e := range eps {
		out[i] = EndpointStatus{Name: e.Name, Err: ErrNoPing, Running: len(e.slots)}
		if e.Ping == nil {
			continue
		}
		wg.Go(func() {
			start := time.Now()
			err := e.Ping(ctx)
			out[i].Took = time.Since(start)
			if err != nil {
				err = fmt.Errorf("%w: %w", ErrUnavailable, err)
			}
			out[i].Err = err
			e.observe(context.WithoutCancel(ctx), f.logger, err)
		})
	}
	wg.Wait()
	return out
}
