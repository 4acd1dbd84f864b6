package main

import (
	"cmp"
	"context"
	"debug/elf"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/moby/moby/client"
	"golang.org/x/crypto/ssh"

	"github.com/dockssh/dockssh/authn"
	"github.com/dockssh/dockssh/execbridge"
	"github.com/dockssh/dockssh/hostkeys"
	"github.com/dockssh/dockssh/redact"
)

// server is everything docker-sshd runs, built and checked before anything
// listens, so that a bad setting never half-starts it.
type server struct {
	log     *slog.Logger
	engMu   sync.Mutex // guards engines, which Swarm nodes may add to
	engines []*engine  // the Docker Engines, closed at the end
	bridge  *execbridge.Server
	sshLn   net.Listener
	httpLn  net.Listener // nil when HTTP_ENABLED=false
	http    *http.Server
	web     *web // nil when HTTP_ENABLED=false
	grace   time.Duration
}

const defaultKeyPathDoc = "/var/lib/dockssh/ssh_host_ed25519_key as root, else ~/.local/state/dockssh/ssh_host_ed25519_key"

// defaultKeyPath is where the host key is created once and reused when
// KEYPATH is not set: never a key baked into an image.
func defaultKeyPath() (string, error) {
	if os.Geteuid() == 0 {
		return "/var/lib/dockssh/ssh_host_ed25519_key", nil
	}
	state := os.Getenv("XDG_STATE_HOME")
	if state == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			return "", fmt.Errorf("no KEYPATH and no home directory for the default host key: %w", err)
		}
		state = filepath.Join(home, ".local", "state")
	}
	return filepath.Join(state, "dockssh", "ssh_host_ed25519_key"), nil
}

func newServer(ctx context.Context, o settings, given map[string]bool, stderr io.Writer) (*server, error) {
	// Every secret that reaches the process is registered before anything
	// logs, so no log line can show it.
	rd, err := redact.New(nil)
	if err != nil {
		return nil, err
	}
	for _, k := range []string{"AUTH_PASSWORD"} {
		if v := o[k]; v != "" {
			rd.Add(v)
		}
	}
	if tuples := o["AUTH_TUPLES"]; tuples != "" {
		if users, err := authn.ParseAuthTuples(tuples); err == nil {
			for _, u := range users {
				rd.Add(u.Password)
			}
		}
	}
	log, err := newLogger(o, rd, stderr)
	if err != nil {
		return nil, err
	}

	d, err := parseDurations(o, "HANDSHAKE_TIMEOUT", "IDLE_TIMEOUT", "KEEPALIVE_INTERVAL", "SHUTDOWN_GRACE")
	if err != nil {
		return nil, err
	}
	n, err := parseInts(o, "PORT", "HTTP_PORT", "MAX_SESSIONS", "MAX_HANDSHAKES", "ENDPOINT_MAX_SESSIONS")
	if err != nil {
		return nil, err
	}
	b, err := parseBools(o, "HTTP_ENABLED", "REFUSE_AMBIGUOUS", "RECORD_INPUT", "LEGACY_ALGORITHMS", "SWARM")
	if err != nil {
		return nil, err
	}
	filters, err := parseFilters(o["FILTERS"])
	if err != nil {
		return nil, err
	}
	routing, err := parseRouting(o["ROUTING"])
	if err != nil {
		return nil, err
	}
	endpoints, err := parseEndpoints(o["ENDPOINTS"], o["ENDPOINTS_FILE"])
	if err != nil {
		return nil, err
	}
	if o["KUBECONFIG"] != "" && endpoints == nil {
		// Pods beside the containers of the local engine.
		endpoints = []endpointSpec{{Name: "local", URL: "local"}}
	}
	if b["SWARM"] {
		if routing == execbridge.RoutingOff {
			return nil, errors.New("SWARM=true needs ROUTING=labeled or any: users name the service in the user name (alice+web.svc)")
		}
		if endpoints == nil {
			endpoints = []endpointSpec{{Name: "local", URL: "local"}}
		}
	}
	if endpoints == nil && len(filters) == 0 && o["CONTAINER"] == "" && routing == execbridge.RoutingOff {
		return nil, errors.New("no target: set FILTERS or CONTAINER (or ROUTING to let the user name choose)")
	}

	auth, err := newAuthenticator(o, given, log)
	if err != nil {
		return nil, err
	}
	hostKey, err := loadHostKey(o["KEYPATH"], log)
	if err != nil {
		return nil, err
	}

	helper, err := sftpHelper(o["SFTP_HELPER"], log)
	if err != nil {
		return nil, err
	}
	s := &server{log: log, grace: d["SHUTDOWN_GRACE"]}
	fs := fleetSettings{
		filters:         filters,
		container:       o["CONTAINER"],
		routing:         routing,
		allowLabel:      o["ALLOW_LABEL"],
		refuseAmbiguous: b["REFUSE_AMBIGUOUS"],
		maxSessions:     n["ENDPOINT_MAX_SESSIONS"],
		sftpHelper:      helper,
		ssh:             sshClientSettings{configFile: o["SSH_CONFIG"], knownHosts: splitFiles(o["SSH_KNOWN_HOSTS"]), identity: o["SSH_IDENTITY"], log: log},
	}
	var backend execbridge.Backend
	var resolver execbridge.Resolver
	if endpoints == nil {
		backend, resolver, err = s.singleEngine(ctx, fs)
	} else {
		var fleet *execbridge.Fleet
		var extra []execbridge.Endpoint
		if o["KUBECONFIG"] != "" {
			var ke execbridge.Endpoint
			if ke, err = kubeEndpoint(o, fs, log); err != nil {
				return nil, err
			}
			extra = append(extra, ke)
		}
		fleet, s.engines, err = newFleet(ctx, endpoints, extra, fs, log)
		backend, resolver = fleet, fleet
		if err == nil && b["SWARM"] {
			resolver, err = newSwarm(ctx, o, fleet, s.engines, fs, log, s.addEngine)
		}
	}
	if err != nil {
		s.closeEngines()
		return nil, err
	}
	bcfg := &execbridge.Config{
		Backend:           backend,
		Resolver:          resolver,
		Shell:             o["CONTAINER_SHELL"],
		User:              o["SHELL_USER"],
		Banner:            o["BANNER"],
		MaxSessions:       n["MAX_SESSIONS"],
		IdleTimeout:       d["IDLE_TIMEOUT"],
		KeepAliveInterval: cmp.Or(d["KEEPALIVE_INTERVAL"], -1),
		Logger:            log,
	}
	if dir := o["RECORD_DIR"]; dir != "" {
		bcfg.Recording = &execbridge.Recording{Dir: dir, Input: b["RECORD_INPUT"]}
	}
	bridge, err := execbridge.New(bcfg)
	if err != nil {
		s.closeEngines()
		return nil, err
	}

	sc := &ssh.ServerConfig{}
	auth.Apply(sc)
	hk, err := modernHostKey(hostKey, b["LEGACY_ALGORITHMS"])
	if err != nil {
		s.closeEngines()
		return nil, fmt.Errorf("host key: %w", err)
	}
	sc.AddHostKey(hk)
	execbridge.SetAlgorithms(sc, b["LEGACY_ALGORITHMS"])

	s.bridge = &execbridge.Server{
		Bridge:           bridge,
		SSHConfig:        sc,
		Allow:            auth.Allow,
		HandshakeTimeout: d["HANDSHAKE_TIMEOUT"],
		MaxHandshakes:    n["MAX_HANDSHAKES"],
	}

	// Listen last, both ports before serving either: a port in use
	// fails the start with nothing left running.
	addr := net.JoinHostPort(o["IP"], strconv.Itoa(n["PORT"]))
	if s.sshLn, err = net.Listen("tcp", addr); err != nil {
		s.closeEngines()
		return nil, fmt.Errorf("cannot listen for SSH on %s: %w", addr, unwrapOp(err))
	}
	if b["HTTP_ENABLED"] {
		haddr := net.JoinHostPort(o["IP"], strconv.Itoa(n["HTTP_PORT"]))
		if s.httpLn, err = net.Listen("tcp", haddr); err != nil {
			s.sshLn.Close()
			s.closeEngines()
			return nil, fmt.Errorf("cannot listen for HTTP on %s: %w", haddr, unwrapOp(err))
		}
		s.web, err = newWeb(o, auth, sc, bridge, publicURL(s.httpLn.Addr()), log)
		if err != nil {
			s.sshLn.Close()
			s.httpLn.Close()
			s.closeEngines()
			return nil, err
		}
		s.http = &http.Server{Handler: s.web.handler, ReadHeaderTimeout: 10 * time.Second, ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn)}
	}
	log.Info("docker-sshd: listening",
		"ssh", s.sshLn.Addr().String(),
		"http", httpAddr(s.httpLn),
		"host_key", ssh.FingerprintSHA256(hostKey.PublicKey()),
		"docker", s.engineNames())
	if s.web != nil && s.web.loginURL != "" {
		// Straight to the operator, not through the log: the token in
		// it is a credential, and the log masks credentials.
		fmt.Fprintf(stderr, "docker-sshd: web terminal login (keep it secret; valid until restart): %s\n", s.web.loginURL)
	}
	return s, nil
}

// singleEngine is docker-ssh's set-up: one engine, found as the Docker CLI
// finds it, which must answer at start.
func (s *server) singleEngine(ctx context.Context, fs fleetSettings) (execbridge.Backend, execbridge.Resolver, error) {
	docker, err := client.New(client.FromEnv)
	if err != nil {
		return nil, nil, fmt.Errorf("the Docker client: %w", err)
	}
	s.engines = []*engine{{name: "local", url: docker.DaemonHost(), client: docker}}
	pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	_, err = docker.Ping(pctx, client.PingOptions{})
	cancel()
	if err != nil {
		return nil, nil, fmt.Errorf("cannot reach the Docker Engine at %s: %w", docker.DaemonHost(), err)
	}
	backend := execbridge.NewDockerBackend(docker, &execbridge.DockerConfig{Logger: s.log, SFTPHelper: fs.sftpHelper})
	resolver := &execbridge.DockerResolver{
		Client:          docker,
		Filters:         fs.filters,
		Container:       fs.container,
		Routing:         fs.routing,
		AllowLabel:      fs.allowLabel,
		RefuseAmbiguous: fs.refuseAmbiguous,
	}
	return backend, resolver, nil
}

func (s *server) closeEngines() {
	s.engMu.Lock()
	defer s.engMu.Unlock()
	for _, e := range s.engines {
		e.Close()
	}
	s.engines = nil
}

func (s *server) addEngine(e *engine) {
	s.engMu.Lock()
	defer s.engMu.Unlock()
	s.engines = append(s.engines, e)
}

// engineNames says where the engines are, for the start-up line: the one
// engine's address, or the endpoints' names and URLs.
func (s *server) engineNames() string {
	s.engMu.Lock()
	defer s.engMu.Unlock()
	if len(s.engines) == 1 && s.engines[0].dialer == nil {
		return s.engines[0].url
	}
	names := make([]string, len(s.engines))
	for i, e := range s.engines {
		names[i] = e.name + "=" + e.url
	}
	return strings.Join(names, ",")
}

// publicURL is the web terminal's base URL for messages: the listener's
// address, with 127.0.0.1 for an address that listens everywhere.
func publicURL(a net.Addr) string {
	host, port, _ := net.SplitHostPort(a.String())
	if ip := net.ParseIP(host); ip == nil || ip.IsUnspecified() {
		host = "127.0.0.1"
	}
	return "http://" + net.JoinHostPort(host, port)
}

// serve runs until ctx ends (SIGTERM, SIGINT), then shuts down: no new
// connections or sessions, running sessions get SHUTDOWN_GRACE to end,
// then they and their processes in the containers are ended.
func (s *server) serve(ctx context.Context) error {
	defer s.closeEngines()
	errc := make(chan error, 2)
	go func() { errc <- s.bridge.Serve(s.sshLn) }()
	if s.http != nil {
		go func() { errc <- s.http.Serve(s.httpLn) }()
	}
	var err error
	select {
	case <-ctx.Done():
		s.log.Info("docker-sshd: shutting down", "grace", s.grace)
	case err = <-errc:
		s.log.Error("docker-sshd: a listener failed; shutting down", "err", err)
	}
	sctx, cancel := context.WithTimeout(context.Background(), s.grace)
	defer cancel()
	if s.http != nil {
		// The terminal first: its streams never end on their own, and
		// http.Server.Shutdown would wait for them.
		s.web.term.Shutdown(sctx)
		s.http.Shutdown(sctx)
	}
	if e := s.bridge.Shutdown(sctx); e != nil {
		s.log.Warn("docker-sshd: grace period over; sessions ended", "err", e)
	}
	s.log.Info("docker-sshd: stopped")
	if errors.Is(err, execbridge.ErrServerClosed) || errors.Is(err, http.ErrServerClosed) {
		err = nil
	}
	return err
}

func httpAddr(l net.Listener) string {
	if l == nil {
		return "off"
	}
	return l.Addr().String()
}

// unwrapOp drops net.OpError's "listen tcp ADDR: bind:" prefixes, which
// the message already says, down to the system's reason.
func unwrapOp(err error) error {
	var se *os.SyscallError
	if errors.As(err, &se) {
		return se.Err
	}
	var oe *net.OpError
	if errors.As(err, &oe) && oe.Err != nil {
		return oe.Err
	}
	return err
}

func newLogger(o settings, rd *redact.Redactor, w io.Writer) (*slog.Logger, error) {
	var level slog.Level
	if err := level.UnmarshalText([]byte(o["LOG_LEVEL"])); err != nil {
		return nil, fmt.Errorf("LOG_LEVEL %q: want debug, info, warn or error", o["LOG_LEVEL"])
	}
	hopts := &slog.HandlerOptions{Level: level}
	var h slog.Handler
	switch o["LOG_FORMAT"] {
	case "text":
		h = slog.NewTextHandler(w, hopts)
	case "json":
		h = slog.NewJSONHandler(w, hopts)
	default:
		return nil, fmt.Errorf("LOG_FORMAT %q: want text or json", o["LOG_FORMAT"])
	}
	return slog.New(rd.Handler(h)), nil
}

// newAuthenticator builds authn's configuration from docker-ssh's
// variables and dockssh's additions.
func newAuthenticator(o settings, given map[string]bool, log *slog.Logger) (*authn.Authenticator, error) {
	cfg := &authn.Config{}
	if o["AUTH_MECHANISM"] != "" {
		c, err := authn.ConfigFromEnv(o.lookup(given))
		if err != nil {
			return nil, err
		}
		cfg = c
	}
	if f := o["AUTH_USERS_FILE"]; f != "" {
		if cfg.InsecureNoAuthentication {
			return nil, errors.New("AUTH_USERS_FILE cannot be combined with AUTH_MECHANISM=noAuth")
		}
		if cfg.Passwords == nil {
			cfg.Passwords = &authn.PasswordConfig{}
		}
		cfg.Passwords.File = f
	}
	if f := o["TRUSTED_USER_CA_KEYS"]; f != "" {
		if cfg.InsecureNoAuthentication {
			return nil, errors.New("TRUSTED_USER_CA_KEYS cannot be combined with AUTH_MECHANISM=noAuth")
		}
		cfg.Certificates = &authn.CertificateConfig{TrustedCAKeysFile: f}
	}
	if !cfg.InsecureNoAuthentication && cfg.Passwords == nil && cfg.AuthorizedKeys == nil && cfg.Certificates == nil {
		return nil, errors.New("no authentication: set AUTH_MECHANISM (noAuth, simpleAuth, multiUser or publicKey), AUTH_USERS_FILE or TRUSTED_USER_CA_KEYS")
	}
	cfg.Logger = log
	// "alice+web1" authenticates as alice (the route picks the container).
	cfg.AccountName = func(u string) string { l, _ := execbridge.SplitUser(u); return l }
	a, err := authn.New(cfg)
	if err != nil {
		return nil, err
	}
	if cfg.InsecureNoAuthentication {
		log.Error("docker-sshd: AUTH_MECHANISM=noAuth: anyone who reaches the port gets a shell in the containers, without a password")
	}
	return a, nil
}

func loadHostKey(path string, log *slog.Logger) (ssh.Signer, error) {
	if path == "" {
		p, err := defaultKeyPath()
		if err != nil {
			return nil, err
		}
		path = p
	}
	k, err := hostkeys.LoadOrCreateHostKey(path, &hostkeys.KeyConfig{Logger: log})
	if err != nil {
		return nil, fmt.Errorf("host key: %w", err)
	}
	return k, nil
}

// sftpHelper resolves SFTP_HELPER: "self" is this binary (it calls
// sftphelper.Main), usable when it is static; a path names another helper;
// "none" turns the helper off (containers without sftp-server get no
// SFTP).
func sftpHelper(v string, log *slog.Logger) (string, error) {
	switch v {
	case "none", "":
		return "", nil
	case "self":
		exe, err := os.Executable()
		if err != nil {
			return "", fmt.Errorf("SFTP_HELPER=self: cannot find this program: %w", err)
		}
		if !isStatic(exe) {
			log.Warn("docker-sshd: this binary is not static, so it cannot serve SFTP in containers without an sftp-server; build it with CGO_ENABLED=0, or set SFTP_HELPER", "binary", exe)
			return "", nil
		}
		return exe, nil
	}
	if _, err := os.Stat(v); err != nil {
		return "", fmt.Errorf("SFTP_HELPER: %w", err)
	}
	return v, nil
}

// isStatic reports whether the ELF file at path needs no dynamic loader.
func isStatic(path string) bool {
	f, err := elf.Open(path)
	if err != nil {
		return false
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			return false
		}
	}
	return true
}

// modernHostKey keeps an RSA host key (docker-ssh users bring id_rsa as
// KEYPATH) from signing with SHA-1 (ssh-rsa) unless legacy is set.
func modernHostKey(k ssh.Signer, legacy bool) (ssh.Signer, error) {
	as, ok := k.(ssh.AlgorithmSigner)
	if legacy || !ok || k.PublicKey().Type() != ssh.KeyAlgoRSA {
		return k, nil
	}
	return ssh.NewSignerWithAlgorithms(as, []string{ssh.KeyAlgoRSASHA512, ssh.KeyAlgoRSASHA256})
}

// parseFilters reads docker-ssh's FILTERS: the Engine's filter JSON, as
// {"name": ["^/web1$"]} or the Engine's own {"name": {"^/web1$": true}}.
func parseFilters(s string) (map[string][]string, error) {
	if strings.TrimSpace(s) == "" {
		return nil, nil
	}
	var lists map[string][]string
	if err := json.Unmarshal([]byte(s), &lists); err == nil {
		return lists, nil
	}
	var sets map[string]map[string]bool
	if err := json.Unmarshal([]byte(s), &sets); err != nil {
		return nil, fmt.Errorf(`FILTERS is not filter JSON like {"name":["^/web1$"]}: %v`, err)
	}
	out := make(map[string][]string, len(sets))
	for k, vs := range sets {
		for v, on := range vs {
			if on {
				out[k] = append(out[k], v)
			}
		}
	}
	return out, nil
}

func parseRouting(s string) (execbridge.Routing, error) {
	for _, r := range []execbridge.Routing{execbridge.RoutingOff, execbridge.RoutingLabeled, execbridge.RoutingAny} {
		if s == r.String() {
			return r, nil
		}
	}
	return 0, fmt.Errorf("ROUTING %q: want off, labeled or any", s)
}

func parseDurations(o settings, keys ...string) (map[string]time.Duration, error) {
	out := map[string]time.Duration{}
	for _, k := range keys {
		v := o[k]
		if v == "0" {
			out[k] = 0
			continue
		}
		d, err := time.ParseDuration(v)
		if err != nil || d < 0 {
			return nil, fmt.Errorf("%s %q: want a duration such as 30s or 5m", k, v)
		}
		out[k] = d
	}
	return out, nil
}

func parseInts(o settings, keys ...string) (map[string]int, error) {
	out := map[string]int{}
	for _, k := range keys {
		n, err := strconv.Atoi(o[k])
		if err != nil || n < 0 || (strings.HasSuffix(k, "PORT") && n > 65535) {
			return nil, fmt.Errorf("%s %q: want a number", k, o[k])
		}
		out[k] = n
	}
	return out, nil
}

func parseBools(o settings, keys ...string) (map[string]bool, error) {
	out := map[string]bool{}
	for _, k := range keys {
		v, err := strconv.ParseBool(o[k])
		if err != nil {
			return nil, fmt.Errorf("%s %q: want true or false", k, o[k])
		}
		out[k] = v
	}
	return out, nil
}
