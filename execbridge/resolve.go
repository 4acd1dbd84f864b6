package execbridge

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net"
	"regexp"
	"slices"
	"strings"

	"github.com/dockssh/dockssh/authn"
	"github.com/dockssh/dockssh/internal/sshmatch"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"
)

// Request is what a Resolver knows about the session it picks a target for.
type Request struct {
	// Login is the account that authenticated (the SSH user name without
	// its route, see SplitUser).
	Login string
	// Route is what the user asked for after RouteSep; empty when the
	// user name has none.
	Route string
	// Grant is what authentication established; never nil.
	Grant *authn.Grant
	// Remote is the client's address.
	Remote net.Addr
}

// A Resolver picks the target of a session. It is called once per session
// (shell, exec or subsystem), so a container that was replaced is found
// again by the next session.
type Resolver interface {
	// Resolve returns the target for req. A *TargetError tells the user
	// why there is none; any other error is reported to the user as the
	// target being unavailable and logged.
	Resolve(ctx context.Context, req Request) (Target, error)
}

// TargetError reports that a session cannot run: it has no target, or its
// target cannot serve it (no shell, no SFTP). Reason is shown to the user
// (one line, no internal detail); Err, if any, goes to the log. Resolvers,
// SubsystemBackend and Bridge.StartShell return it.
type TargetError struct {
	Reason string
	Err    error
}

func (e *TargetError) Error() string {
	if e.Err != nil {
		return "execbridge: " + e.Reason + ": " + e.Err.Error()
	}
	return "execbridge: " + e.Reason
}

func (e *TargetError) Unwrap() error { return e.Err }

// Routing says which containers a user may name in the SSH user name
// ("alice+web1").
type Routing uint8

const (
	// RoutingOff refuses user names with a route: every session goes to
	// the default target. It is the zero value.
	RoutingOff Routing = iota
	// RoutingLabeled lets a user name a container that carries the allow
	// label (DockerResolver.AllowLabel) with a pattern list matching the
	// login, for example dockssh.allow=alice,bob or dockssh.allow=*.
	RoutingLabeled
	// RoutingAny lets a user name any container within Filters.
	RoutingAny
)

func (r Routing) String() string {
	switch r {
	case RoutingOff:
		return "off"
	case RoutingLabeled:
		return "labeled"
	case RoutingAny:
		return "any"
	}
	return fmt.Sprintf("Routing(%d)", uint8(r))
}

// DefaultAllowLabel is the container label that RoutingLabeled reads.
const DefaultAllowLabel = "dockssh.allow"

// ContainerLister is the part of the Docker client (*client.Client) that
// DockerResolver uses.
type ContainerLister interface {
	ContainerList(ctx context.Context, options client.ContainerListOptions) (client.ContainerListResult, error)
}

// DockerResolver picks running containers of one Docker Engine, the way
// docker-ssh's FILTERS and CONTAINER do, and by name from the SSH user
// name when Routing allows it.
//
// Only running containers are targets. When several match, the newest
// (latest creation time, then the greatest ID) is chosen, which is also
// the first one the Engine lists; set RefuseAmbiguous to refuse instead.
type DockerResolver struct {
	// Client lists containers. Required.
	Client ContainerLister

	// Filters limits the containers that sessions may reach, in the
	// Engine's filter syntax (docker-ssh's FILTERS, for example
	// {"label": ["env=dev"]} or {"name": ["^/web"]}; name filters are
	// regular expressions on "/name"). nil means every running container.
	Filters map[string][]string

	// Container names the default target: the running container with
	// exactly this name, within Filters (docker-ssh's CONTAINER). Empty
	// means the newest container that Filters selects.
	Container string

	// Routing says whether users may name a container in the SSH user
	// name. The zero value, RoutingOff, refuses it.
	Routing Routing

	// AllowLabel is the label RoutingLabeled reads: an OpenSSH pattern
	// list of logins ("alice,bob", "*,!mallory"). Empty means
	// DefaultAllowLabel.
	AllowLabel string

	// RefuseAmbiguous refuses a session when more than one container
	// matches, naming the candidates, instead of choosing the newest.
	RefuseAmbiguous bool
}

// Resolve implements Resolver.
func (r *DockerResolver) Resolve(ctx context.Context, req Request) (Target, error) {
	switch {
	case req.Route == "":
		return r.resolveDefault(ctx)
	case r.Routing == RoutingOff:
		return Target{}, &TargetError{Reason: "this server does not let the user name choose a container; log in without \"" + RouteSep + "...\""}
	}
	return r.resolveNamed(ctx, req)
}

func (r *DockerResolver) resolveDefault(ctx context.Context) (Target, error) {
	var name string
	if r.Container != "" {
		name = r.Container
	}
	cands, err := r.list(ctx, name)
	if err != nil {
		return Target{}, err
	}
	switch {
	case len(cands) == 0 && name != "":
		return Target{}, &TargetError{Reason: fmt.Sprintf("container %q is not running", name)}
	case len(cands) == 0:
		return Target{}, &TargetError{Reason: "no running container matches this server's filters"}
	case len(cands) > 1 && r.RefuseAmbiguous:
		return Target{}, &TargetError{Reason: "several containers match: " + candidateNames(cands) + "; ask for one by name"}
	}
	return cands[0], nil
}

func (r *DockerResolver) resolveNamed(ctx context.Context, req Request) (Target, error) {
	// The same answer for "no such container" and "not yours", so that
	// a user cannot probe for names.
	notFound := &TargetError{Reason: fmt.Sprintf("no running container %q that you may use", req.Route)}
	if !validContainerName(req.Route) {
		return Target{}, notFound
	}
	cands, err := r.list(ctx, req.Route)
	if err != nil {
		return Target{}, err
	}
	if len(cands) == 0 {
		return Target{}, notFound
	}
	t := cands[0]
	if r.Routing == RoutingLabeled {
		label := cmp.Or(r.AllowLabel, DefaultAllowLabel)
		allow, ok := t.Labels[label]
		if !ok || !sshmatch.SplitList(allow, false).Match(req.Login) {
			return Target{}, notFound
		}
	}
	return t, nil
}

// list returns the running containers within Filters (and named name
// exactly, when name is not empty), newest first.
func (r *DockerResolver) list(ctx context.Context, name string) ([]Target, error) {
	if r.Client == nil {
		return nil, errors.New("execbridge: DockerResolver has no Client")
	}
	f := make(client.Filters)
	for k, vs := range r.Filters {
		f.Add(k, vs...)
	}
	f.Add("status", "running")
	if name != "" && len(r.Filters["name"]) == 0 {
		// Engine name filters are unanchored regular expressions on
		// "/name"; anchor and quote for an exact match. The Engine ORs
		// name filters, so with name filters in Filters this one would
		// widen the list beyond them: then only Filters go to the
		// Engine, and the exact name is checked below.
		f.Add("name", "^/"+regexp.QuoteMeta(name)+"$")
	}
	res, err := r.Client.ContainerList(ctx, client.ContainerListOptions{Filters: f})
	if err != nil {
		// No list means no answer, whatever the cause.
		return nil, &TargetError{Reason: "the Docker Engine did not answer", Err: fmt.Errorf("%w: %w", ErrUnavailable, err)}
	}
	items := slices.Clone(res.Items)
	// The exact name, which the Engine was not asked for when Filters
	// has name filters.
	if name != "" {
		items = slices.DeleteFunc(items, func(c container.Summary) bool { return !slices.Contains(c.Names, "/"+name) })
	}
	slices.SortStableFunc(items, func(a, b container.Summary) int {
		return cmp.Or(cmp.Compare(b.Created, a.Created), strings.Compare(b.ID, a.ID))
	})
	out := make([]Target, 0, len(items))
	for _, c := range items {
		t := Target{ID: c.ID, Labels: c.Labels}
		if len(c.Names) > 0 {
			t.Name = strings.TrimPrefix(c.Names[0], "/")
		}
		out = append(out, t)
	}
	return out, nil
}

// validContainerName reports whether s can be a Docker container name
// ([a-zA-Z0-9][a-zA-Z0-9_.-]*), so nothing else reaches the Engine.
func validContainerName(s string) bool {
	if s == "" || len(s) > 255 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		alnum := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
		if !alnum && (i == 0 || c != '_' && c != '.' && c != '-') {
			return false
		}
	}
	return true
}

func candidateNames(ts []Target) string {
	const show = 5
	names := make([]string, 0, show)
	for i, t := range ts {
		if i == show {
			names = append(names, fmt.Sprintf("and %d more", len(ts)-show))
			break
		}
		names = append(names, t.String())
	}
	return strings.Join(names, ", ")
}
