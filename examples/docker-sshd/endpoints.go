package main

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/moby/moby/client"

	"github.com/dockssh/dockssh/dialer"
	"github.com/dockssh/dockssh/execbridge"
	"github.com/dockssh/dockssh/redact"
)

// endpointSpec is one Docker Engine the gateway serves, from ENDPOINTS or
// ENDPOINTS_FILE.
type endpointSpec struct {
	// Name is the endpoint's name in user names (web1.NAME) and logs.
	Name string `json:"name"`
	// URL says how to reach the engine: "local" (DOCKER_HOST, else the
	// local socket, as the Docker CLI), unix:///path, tcp://host:port
	// (TLS required), or ssh://[user@]host[:port][/path/to/docker.sock]
	// through package dialer.
	URL string `json:"url"`
	// Filters and Container replace FILTERS and CONTAINER for this
	// endpoint; unset, the global ones apply.
	Filters   map[string][]string `json:"filters,omitempty"`
	Container string              `json:"container,omitempty"`
	// MaxSessions replaces ENDPOINT_MAX_SESSIONS for this endpoint.
	MaxSessions int `json:"maxSessions,omitempty"`
	// TLS holds the client certificate files of a tcp:// endpoint.
	TLS *tlsFiles `json:"tls,omitempty"`
	// StreamLocal makes an ssh:// endpoint reach the socket through
	// OpenSSH's direct-streamlocal channels instead of running
	// "docker system dial-stdio" (see dialer.TransportStreamLocal).
	StreamLocal bool `json:"streamLocal,omitempty"`
}

type tlsFiles struct {
	CA   string `json:"ca"`
	Cert string `json:"cert"`
	Key  string `json:"key"`
}

type endpointsFile struct {
	Endpoints []endpointSpec `json:"endpoints"`
}

// parseEndpoints reads ENDPOINTS ("name=url,name=url") and ENDPOINTS_FILE
// (JSON, see docs/docker-sshd.md). It returns nil when neither is set:
// docker-ssh's single engine.
func parseEndpoints(list, file string) ([]endpointSpec, error) {
	var specs []endpointSpec
	for item := range strings.SplitSeq(list, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		name, u, ok := strings.Cut(item, "=")
		if !ok {
			return nil, fmt.Errorf("ENDPOINTS: %q is not name=url", redact.URL(item))
		}
		specs = append(specs, endpointSpec{Name: strings.TrimSpace(name), URL: strings.TrimSpace(u)})
	}
	if file != "" {
		data, err := os.ReadFile(file)
		if err != nil {
			return nil, fmt.Errorf("ENDPOINTS_FILE: %w", err)
		}
		dec := json.NewDecoder(bytes.NewReader(data))
		dec.DisallowUnknownFields()
		var f endpointsFile
		if err := dec.Decode(&f); err != nil {
			return nil, fmt.Errorf("ENDPOINTS_FILE %s: %w", file, err)
		}
		if len(f.Endpoints) == 0 {
			return nil, fmt.Errorf("ENDPOINTS_FILE %s: no endpoints", file)
		}
		specs = append(specs, f.Endpoints...)
	}
	seen := map[string]bool{}
	for _, s := range specs {
		switch {
		case !execbridge.ValidEndpointName(s.Name):
			return nil, fmt.Errorf("endpoint name %q: use 1 to 63 of a-z, 0-9 and '-', starting with a letter or digit", s.Name)
		case seen[s.Name]:
			return nil, fmt.Errorf("endpoint %q is given twice", s.Name)
		case s.MaxSessions < 0:
			return nil, fmt.Errorf("endpoint %s: maxSessions %d: want a positive number", s.Name, s.MaxSessions)
		}
		seen[s.Name] = true
		if err := checkEndpointURL(s); err != nil {
			return nil, fmt.Errorf("endpoint %s: %w", s.Name, err)
		}
	}
	return specs, nil
}

// checkEndpointURL refuses what would connect insecurely or not at all,
// before anything is dialled.
func checkEndpointURL(s endpointSpec) error {
	if s.URL == "local" {
		return nil
	}
	u, err := url.Parse(s.URL)
	if err != nil {
		return fmt.Errorf("url %q: %w", redact.URL(s.URL), errors.Unwrap(err))
	}
	switch u.Scheme {
	case "ssh":
		return nil // dialer.New checks the rest
	case "unix":
		if u.Path == "" {
			return fmt.Errorf("url %q has no socket path", s.URL)
		}
		return nil
	case "tcp":
		if s.TLS == nil || s.TLS.CA == "" || s.TLS.Cert == "" || s.TLS.Key == "" {
			return fmt.Errorf("url %s: a tcp:// endpoint needs tls (ca, cert and key files) in ENDPOINTS_FILE: the Docker API without TLS is root on that host for anyone on the network", redact.URL(s.URL))
		}
		return nil
	}
	return fmt.Errorf("url %q: want local, unix://, tcp:// or ssh://", redact.URL(s.URL))
}

// engine is one Docker Engine with its client, and the dialer under it for
// an ssh:// endpoint.
type engine struct {
	name   string
	url    string // redacted
	client *client.Client
	dialer *dialer.Dialer // nil unless ssh://
}

func (e *engine) Close() {
	e.client.Close()
	if e.dialer != nil {
		e.dialer.Close()
	}
}

// sshClientSettings are the SSH client settings of ssh:// endpoints.
type sshClientSettings struct {
	configFile string   // SSH_CONFIG: "" means ~/.ssh/config, "none" none
	knownHosts []string // SSH_KNOWN_HOSTS: "" means ssh's defaults
	identity   string   // SSH_IDENTITY
	log        *slog.Logger
}

// newEngine builds the client of one endpoint; nothing is dialled yet.
func newEngine(s endpointSpec, ssh sshClientSettings) (*engine, error) {
	e := &engine{name: s.Name, url: redact.URL(s.URL)}
	var opts []client.Opt
	switch u := s.URL; {
	case u == "local":
		opts = append(opts, client.FromEnv)
	case strings.HasPrefix(u, "unix://"):
		opts = append(opts, client.WithHost(u))
	case strings.HasPrefix(u, "tcp://"):
		opts = append(opts, client.WithHost(u), client.WithTLSClientConfig(s.TLS.CA, s.TLS.Cert, s.TLS.Key))
	case strings.HasPrefix(u, "ssh://"):
		cfg := &dialer.Config{
			SSHConfigPath:   ssh.configFile,
			IgnoreSSHConfig: ssh.configFile == "none",
			KnownHostsFiles: ssh.knownHosts,
			ConnectTimeout:  10 * time.Second,
			// A session's exec attach needs a new stream: one opened
			// ahead saves it the start of a remote docker process.
			DialAhead: 1,
			Logger:    ssh.log.With("endpoint", s.Name),
		}
		if ssh.configFile == "none" {
			cfg.SSHConfigPath = ""
		}
		if ssh.identity != "" {
			cfg.IdentityFiles = []string{ssh.identity}
		}
		if s.StreamLocal {
			cfg.Transport = dialer.TransportStreamLocal
		}
		d, err := dialer.New(u, cfg)
		if err != nil {
			return nil, err
		}
		e.dialer = d
		// The host in the URL is a placeholder: every connection goes
		// to the dialer's destination.
		opts = append(opts, client.WithHost("http://docker"), client.WithDialContext(d.DialContext))
	}
	c, err := client.New(opts...)
	if err != nil {
		if e.dialer != nil {
			e.dialer.Close()
		}
		return nil, fmt.Errorf("the Docker client: %w", err)
	}
	e.client = c
	return e, nil
}

// fleetSettings are what every endpoint's resolver and backend share.
type fleetSettings struct {
	filters         map[string][]string
	container       string
	routing         execbridge.Routing
	allowLabel      string
	refuseAmbiguous bool
	maxSessions     int
	sftpHelper      string
	ssh             sshClientSettings
}

// newFleet builds the engines of specs and a Fleet over them, and checks
// each engine: one that does not answer is logged and served as soon as it
// does; none answering fails the start. The engines are closed by the
// caller (also on error, those returned).
func newFleet(ctx context.Context, specs []endpointSpec, extra []execbridge.Endpoint, fs fleetSettings, log *slog.Logger) (*execbridge.Fleet, []*engine, error) {
	var engines []*engine
	var eps []execbridge.Endpoint
	urls := map[string]string{}
	for _, s := range specs {
		if len(s.Filters) == 0 && len(fs.filters) == 0 && cmp.Or(s.Container, fs.container) == "" && fs.routing == execbridge.RoutingOff {
			return nil, engines, fmt.Errorf("endpoint %s has no target: give it filters or a container, or set FILTERS, CONTAINER or ROUTING", s.Name)
		}
		e, err := newEngine(s, fs.ssh)
		if err != nil {
			return nil, engines, fmt.Errorf("endpoint %s: %w", s.Name, err)
		}
		engines = append(engines, e)
		eps = append(eps, fleetEndpoint(s, e, fs, log))
		urls[s.Name] = e.url
	}
	for _, e := range extra {
		eps = append(eps, e)
		urls[e.Name] = "kubernetes"
	}
	fleet, err := execbridge.NewFleet(eps, &execbridge.FleetConfig{Logger: log})
	if err != nil {
		return nil, engines, err
	}
	cctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	up := 0
	var downs []string
	for _, st := range fleet.Check(cctx) {
		if st.Err == nil {
			up++
			log.Info("docker-sshd: endpoint answers", "endpoint", st.Name, "url", urls[st.Name], "took", st.Took.Round(time.Millisecond))
			continue
		}
		downs = append(downs, fmt.Sprintf("%s (%s): %v", st.Name, urls[st.Name], st.Err))
	}
	if up == 0 {
		return nil, engines, fmt.Errorf("no endpoint answers: %s", strings.Join(downs, "; "))
	}
	return fleet, engines, nil
}

// fleetEndpoint is the execbridge endpoint of engine e, described by s.
func fleetEndpoint(s endpointSpec, e *engine, fs fleetSettings, log *slog.Logger) execbridge.Endpoint {
	return execbridge.Endpoint{
		Name: s.Name,
		Backend: execbridge.NewDockerBackend(e.client, &execbridge.DockerConfig{
			Logger: log.With("endpoint", s.Name), SFTPHelper: fs.sftpHelper,
		}),
		Resolver: &execbridge.DockerResolver{
			Client:          e.client,
			Filters:         orFilters(s.Filters, fs.filters),
			Container:       cmp.Or(s.Container, fs.container),
			Routing:         fs.routing,
			AllowLabel:      fs.allowLabel,
			RefuseAmbiguous: fs.refuseAmbiguous,
		},
		Ping: func(ctx context.Context) error {
			_, err := e.client.Ping(ctx, client.PingOptions{})
			return err
		},
		MaxProcesses: cmp.Or(s.MaxSessions, fs.maxSessions),
	}
}

// defaultKnownHosts is what SSH_KNOWN_HOSTS means when empty, for the
// help text.
const defaultKnownHosts = "the ssh_config's, else ~/.ssh/known_hosts and /etc/ssh/ssh_known_hosts"

// splitFiles splits a comma-separated list of files, with ~/ expanded.
func splitFiles(v string) []string {
	var out []string
	for f := range strings.SplitSeq(v, ",") {
		if f = strings.TrimSpace(f); f == "" {
			continue
		}
		if rest, ok := strings.CutPrefix(f, "~/"); ok {
			if home, err := os.UserHomeDir(); err == nil {
				f = filepath.Join(home, rest)
			}
		}
		out = append(out, f)
	}
	return out
}

// orFilters is f, or def when f is empty.
func orFilters(f, def map[string][]string) map[string][]string {
	if len(f) == 0 {
		return def
	}
	return f
}
