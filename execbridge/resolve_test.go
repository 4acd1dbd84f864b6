package execbridge

import (
	"context"
	"errors"
	"regexp"
	"strings"
	"testing"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"
)

// fakeLister answers ContainerList like the Engine does for the filters
// the resolver uses: status=running, label=k=v, and name regular
// expressions on "/name" (OR'ed).
type fakeLister struct {
	items []container.Summary
	err   error
	seen  []client.Filters
}

func (f *fakeLister) ContainerList(ctx context.Context, o client.ContainerListOptions) (client.ContainerListResult, error) {
	f.seen = append(f.seen, o.Filters)
	if f.err != nil {
		return client.ContainerListResult{}, f.err
	}
	var out []container.Summary
	for _, c := range f.items {
		if o.Filters["status"]["running"] && c.State != container.StateRunning {
			continue
		}
		if names := o.Filters["name"]; len(names) > 0 {
			any := false
			for re := range names {
				for _, n := range c.Names {
					if regexp.MustCompile(re).MatchString(n) {
						any = true
					}
				}
			}
			if !any {
				continue
			}
		}
		ok := true
		for l := range o.Filters["label"] {
			k, v, _ := strings.Cut(l, "=")
			if c.Labels[k] != v {
				ok = false
			}
		}
		if ok {
			out = append(out, c)
		}
	}
	return client.ContainerListResult{Items: out}, nil
}

func ctr(id, name string, created int64, labels map[string]string) container.Summary {
	return container.Summary{ID: id, Names: []string{"/" + name}, Created: created, Labels: labels, State: container.StateRunning}
}

func TestDockerResolverDefault(t *testing.T) {
	lister := &fakeLister{items: []container.Summary{
		ctr("aaa", "web1", 100, map[string]string{"env": "dev"}),
		ctr("bbb", "web10", 200, map[string]string{"env": "dev"}),
		ctr("ccc", "db", 300, map[string]string{"env": "prod"}),
		{ID: "ddd", Names: []string{"/stopped"}, Created: 400, State: container.StateExited},
	}}
	tests := []struct {
		name    string
		r       DockerResolver
		want    string
		wantErr string
	}{
		{"newest of all", DockerResolver{}, "db", ""},
		{"newest of filter", DockerResolver{Filters: map[string][]string{"label": {"env=dev"}}}, "web10", ""},
		{"exact container name, not a prefix", DockerResolver{Container: "web1"}, "web1", ""},
		{"container outside filters", DockerResolver{Container: "db", Filters: map[string][]string{"label": {"env=dev"}}}, "", `container "db" is not running`},
		{"stopped container", DockerResolver{Container: "stopped"}, "", `container "stopped" is not running`},
		{"nothing matches", DockerResolver{Filters: map[string][]string{"label": {"env=qa"}}}, "", "no running container matches"},
		{"ambiguous refused", DockerResolver{Filters: map[string][]string{"label": {"env=dev"}}, RefuseAmbiguous: true}, "", "several containers match: web10, web1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.r.Client = lister
			got, err := tt.r.Resolve(t.Context(), Request{Login: "alice"})
			if tt.wantErr != "" {
				var te *TargetError
				if !errors.As(err, &te) || !strings.Contains(te.Reason, tt.wantErr) {
					t.Fatalf("Resolve = %v, %v; want a TargetError containing %q", got, err, tt.wantErr)
				}
				return
			}
			if err != nil || got.Name != tt.want {
				t.Fatalf("Resolve = %+v, %v; want %s", got, err, tt.want)
			}
		})
	}
}

func TestDockerResolverRouting(t *testing.T) {
	lister := &fakeLister{items: []container.Summary{
		ctr("aaa", "web1", 100, map[string]string{DefaultAllowLabel: "alice,bob"}),
		ctr("bbb", "shared", 200, map[string]string{DefaultAllowLabel: "*,!mallory"}),
		ctr("ccc", "private", 300, nil),
	}}
	tests := []struct {
		routing      Routing
		login, route string
		want         string // "" means refused
	}{
		{RoutingOff, "alice", "web1", ""},
		{RoutingLabeled, "alice", "web1", "web1"},
		{RoutingLabeled, "carol", "web1", ""},
		{RoutingLabeled, "carol", "shared", "shared"},
		{RoutingLabeled, "mallory", "shared", ""},
		{RoutingLabeled, "alice", "private", ""},
		{RoutingAny, "alice", "private", "private"},
		{RoutingAny, "alice", "nope", ""},
		{RoutingAny, "alice", "web.*", ""}, // no regular expression reaches the Engine
		{RoutingAny, "alice", "../x", ""},  // not a container name
		{RoutingAny, "alice", "web", ""},   // exact names only
	}
	for _, tt := range tests {
		r := DockerResolver{Client: lister, Routing: tt.routing}
		got, err := r.Resolve(t.Context(), Request{Login: tt.login, Route: tt.route})
		if tt.want == "" {
			var te *TargetError
			if !errors.As(err, &te) {
				t.Errorf("%v %s+%s: Resolve = %+v, %v; want a TargetError", tt.routing, tt.login, tt.route, got, err)
			}
			continue
		}
		if err != nil || got.Name != tt.want {
			t.Errorf("%v %s+%s: Resolve = %+v, %v; want %s", tt.routing, tt.login, tt.route, got, err, tt.want)
		}
	}
	// Not found and not allowed read the same, so names cannot be probed.
	r := DockerResolver{Client: lister, Routing: RoutingLabeled}
	_, e1 := r.Resolve(t.Context(), Request{Login: "carol", Route: "web1"})
	_, e2 := r.Resolve(t.Context(), Request{Login: "carol", Route: "web2"})
	if strings.ReplaceAll(e1.Error(), "web1", "X") != strings.ReplaceAll(e2.Error(), "web2", "X") {
		t.Errorf("refusals differ: %q vs %q", e1, e2)
	}
}

// The Engine ORs name filters: a name filter in Filters must still limit
// what a user may name, and the default container.
func TestDockerResolverNameFiltersStillApply(t *testing.T) {
	lister := &fakeLister{items: []container.Summary{
		ctr("aaa", "web1", 100, nil),
		ctr("bbb", "web2", 200, nil),
		ctr("ccc", "db", 300, nil),
	}}
	filters := map[string][]string{"name": {"^/web"}}
	for _, tt := range []struct {
		r     DockerResolver
		route string
		want  string // "" means refused
	}{
		{DockerResolver{Routing: RoutingAny}, "web1", "web1"},
		{DockerResolver{Routing: RoutingAny}, "db", ""},
		{DockerResolver{Routing: RoutingAny}, "web", ""},
		{DockerResolver{Container: "web1"}, "", "web1"},
		{DockerResolver{Container: "db"}, "", ""},
		{DockerResolver{}, "", "web2"},
	} {
		r := tt.r
		r.Client, r.Filters = lister, filters
		got, err := r.Resolve(t.Context(), Request{Login: "alice", Route: tt.route})
		if tt.want == "" {
			var te *TargetError
			if !errors.As(err, &te) {
				t.Errorf("%+v route %q: Resolve = %+v, %v; want a TargetError", tt.r, tt.route, got, err)
			}
			continue
		}
		if err != nil || got.Name != tt.want {
			t.Errorf("%+v route %q: Resolve = %+v, %v; want %s", tt.r, tt.route, got, err, tt.want)
		}
	}
}

func TestDockerResolverEngineDown(t *testing.T) {
	r := DockerResolver{Client: &fakeLister{err: errors.New("dial unix /var/run/docker.sock: connect: no such file")}}
	_, err := r.Resolve(t.Context(), Request{Login: "alice"})
	var te *TargetError
	if !errors.As(err, &te) || strings.Contains(te.Reason, "docker.sock") || !errors.Is(err, ErrUnavailable) {
		t.Fatalf("Resolve = %v; want a TargetError whose Reason keeps the internal detail out, and ErrUnavailable", err)
	}
}

func TestSplitUser(t *testing.T) {
	for _, tt := range []struct{ in, login, route string }{
		{"alice", "alice", ""},
		{"alice+web1", "alice", "web1"},
		{"alice+web1+x", "alice", "web1+x"},
		{"+web1", "", "web1"},
	} {
		if l, r := SplitUser(tt.in); l != tt.login || r != tt.route {
			t.Errorf("SplitUser(%q) = %q, %q; want %q, %q", tt.in, l, r, tt.login, tt.route)
		}
	}
}
