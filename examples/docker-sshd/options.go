package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"text/tabwriter"
)

// option is one setting, read from a flag, else from the environment
// variable of the same meaning, else from its default.
type option struct {
	env, flag, def, help string
	// group names the section of -h it is listed in.
	group string
}

// optionTable lists every setting. docker-ssh's variables keep their names
// and meaning; what dockssh adds has new names.
func optionTable() []option {
	const (
		compat = "docker-ssh's settings (same names and meaning)"
		added  = "dockssh's additions"
	)
	return []option{
		{"FILTERS", "filters", "", "Engine filter JSON choosing the target container, e.g. {\"name\":[\"^/web1$\"]}", compat},
		{"CONTAINER", "container", "", "name of the target container (exact match)", compat},
		{"CONTAINER_SHELL", "container-shell", "", "shell to run in the container; empty: bash if present, else sh", compat},
		{"AUTH_MECHANISM", "auth-mechanism", "", "noAuth, simpleAuth, multiUser or publicKey", compat},
		{"AUTH_USER", "auth-user", "", "the user of simpleAuth", compat},
		{"AUTH_PASSWORD", "auth-password", "", "the password of simpleAuth (prefer the variable: a flag shows in ps)", compat},
		{"AUTH_TUPLES", "auth-tuples", "", "the users of multiUser: user:password;user2:password2", compat},
		{"AUTHORIZED_KEYS", "authorized-keys", "", "the authorized_keys file of publicKey (or the keys themselves)", compat},
		{"KEYPATH", "keypath", "", "host key file; empty: " + defaultKeyPathDoc, compat},
		{"IP", "ip", "0.0.0.0", "address to listen on (SSH and HTTP)", compat},
		{"PORT", "port", "22", "SSH port", compat},
		{"HTTP_ENABLED", "http-enabled", "true", "serve the web terminal and /healthz", compat},
		{"HTTP_PORT", "http-port", "8022", "web terminal port", compat},
		{"SHELL_USER", "shell-user", "", "user to run sessions as in the container; empty: the image's USER", compat},

		{"AUTH_USERS_FILE", "auth-users-file", "", "file of name:hash lines (argon2id or bcrypt), re-read when it changes", added},
		{"TRUSTED_USER_CA_KEYS", "trusted-user-ca-keys", "", "file of CA public keys whose user certificates are accepted", added},
		{"ROUTING", "routing", "off", "let the user name pick the container (alice+web1): off, labeled (containers labeled dockssh.allow=alice) or any", added},
		{"ALLOW_LABEL", "allow-label", "dockssh.allow", "label that routing=labeled reads", added},
		{"ENDPOINTS", "endpoints", "", "several Docker Engines: name=url,... (url: local, unix://, ssh://[user@]host[/socket]); users pick one as alice+web1.name", added},
		{"ENDPOINTS_FILE", "endpoints-file", "", "JSON file of endpoints (adds tcp:// with TLS, per-endpoint filters and limits); see docs/docker-sshd.md", added},
		{"ENDPOINT_MAX_SESSIONS", "endpoint-max-sessions", "256", "sessions running at once on one endpoint; more are refused naming it", added},
		{"SWARM", "swarm", "false", "serve Docker Swarm services: alice+web.svc (a running task), alice+web.2.svc (slot 2), alice+web.svc.host-a (on that node's endpoint)", added},
		{"SWARM_MANAGER", "swarm-manager", "local", "the endpoint whose engine is a Swarm manager", added},
		{"SWARM_NODES", "swarm-nodes", "", "node=endpoint,... (node ID or hostname); other nodes: the manager's own endpoint for its node, else ssh://NODE-ADDRESS", added},
		{"KUBECONFIG", "kubeconfig", "", "serve Kubernetes pods too (alice+POD.pod, POD.CONTAINER.pod, POD.pod.NAMESPACE): a kubeconfig file (list), or in-cluster", added},
		{"KUBE_ENDPOINT", "kube-endpoint", "k8s", "the cluster's endpoint name (alice+POD.pod.k8s)", added},
		{"KUBE_NAMESPACES", "kube-namespaces", "default", "namespaces users may reach (comma-separated); the first is the default", added},
		{"KUBE_SELECTOR", "kube-selector", "", "label selector every pod reached must match, e.g. ssh=yes", added},
		{"KUBE_POD", "kube-pod", "", "the pod of logins without a route", added},
		{"SSH_CONFIG", "ssh-config", "", "ssh_config for ssh:// endpoints; empty: ~/.ssh/config; none: no file", added},
		{"SSH_KNOWN_HOSTS", "ssh-known-hosts", "", "known_hosts files (comma-separated) for ssh:// endpoints, checked strictly; empty: " + defaultKnownHosts, added},
		{"SSH_IDENTITY", "ssh-identity", "", "identity file for ssh:// endpoints, tried after the agent's keys (SSH_AUTH_SOCK)", added},
		{"REFUSE_AMBIGUOUS", "refuse-ambiguous", "false", "refuse a login when several containers match instead of taking the newest", added},
		{"MAX_SESSIONS", "max-sessions", "10", "sessions per SSH connection", added},
		{"MAX_HANDSHAKES", "max-handshakes", "64", "SSH handshakes in progress at once", added},
		{"HANDSHAKE_TIMEOUT", "handshake-timeout", "30s", "time allowed for the SSH handshake and login", added},
		{"IDLE_TIMEOUT", "idle-timeout", "0", "close a connection without sessions after this long; 0: never", added},
		{"KEEPALIVE_INTERVAL", "keepalive-interval", "15s", "keepalive probe interval; a client missing 3 in a row is dropped", added},
		{"SHUTDOWN_GRACE", "shutdown-grace", "10s", "on SIGTERM, how long running sessions may go on", added},
		{"BANNER", "banner", "", "text shown before the first prompt of interactive terminal sessions", added},
		{"RECORD_DIR", "record-dir", "", "record terminal sessions as asciicast v2 files in this directory", added},
		{"RECORD_INPUT", "record-input", "false", "also record what users type (holds passwords typed at prompts)", added},
		{"LEGACY_ALGORITHMS", "legacy-algorithms", "false", "also offer SHA-1 key exchange and CBC ciphers, for old clients", added},
		{"SFTP_HELPER", "sftp-helper", "self", "static program copied into containers without an sftp-server: self (this binary, if static), a path, or none", added},
		{"WEB_AUTH", "web-auth", "ssh", "web terminal login: ssh (the SSH users; a login URL for publicKey), or none (no login, loudly logged)", added},
		{"WEB_ALLOWED_ORIGINS", "web-allowed-origins", "", "extra origins (comma-separated) allowed to drive the web terminal", added},
		{"WEB_XTERM_URL", "web-xterm-url", "", "base URL of the xterm.js npm files for the web page; empty: a public CDN", added},
		{"LOG_FORMAT", "log-format", "text", "text or json", added},
		{"LOG_LEVEL", "log-level", "info", "debug, info, warn or error", added},
	}
}

// settings are the resolved values, by environment variable name.
type settings map[string]string

// lookup reads a setting, as os.LookupEnv does, for authn.ConfigFromEnv:
// only values that were given (flag or environment) count as set.
func (s settings) lookup(given map[string]bool) func(string) (string, bool) {
	return func(k string) (string, bool) {
		v, ok := s[k]
		return v, ok && given[k]
	}
}

// parseOptions reads flags from args and the environment through getenv.
// given reports which settings were set by flag or environment.
func parseOptions(args []string, getenv func(string) (string, bool), stderr io.Writer) (settings, map[string]bool, error) {
	table := optionTable()
	fs := flag.NewFlagSet("docker-sshd", flag.ContinueOnError)
	fs.SetOutput(stderr)
	vals := make(map[string]*string, len(table))
	for _, o := range table {
		vals[o.env] = fs.String(o.flag, "", o.help)
	}
	fs.Usage = func() { usage(stderr, table) }
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil, nil, errHelp
		}
		return nil, nil, err
	}
	if fs.NArg() > 0 {
		return nil, nil, fmt.Errorf("unexpected argument %q (settings are flags or environment variables; see -h)", fs.Arg(0))
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) {
		for _, o := range table {
			if o.flag == f.Name {
				set[o.env] = true
			}
		}
	})
	out := settings{}
	given := map[string]bool{}
	for _, o := range table {
		switch v, ok := getenv(o.env); {
		case set[o.env]:
			out[o.env], given[o.env] = *vals[o.env], true
		case ok:
			out[o.env], given[o.env] = v, true
		default:
			out[o.env] = o.def
		}
	}
	return out, given, nil
}

func usage(w io.Writer, table []option) {
	fmt.Fprintf(w, `docker-sshd: an SSH server (and web terminal) into Docker containers,
a drop-in replacement for docker-ssh.

Every setting is a flag or the environment variable of the same meaning;
a flag wins over the variable. See docs/docker-sshd.md.

`)
	group := ""
	tw := tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
	for _, o := range table {
		if o.group != group {
			tw.Flush()
			group = o.group
			fmt.Fprintf(w, "%s:\n", group)
		}
		def := ""
		if o.def != "" {
			def = " (default " + o.def + ")"
		}
		fmt.Fprintf(tw, "  -%s\t%s\t%s%s\n", o.flag, o.env, o.help, def)
	}
	tw.Flush()
}

// errHelp reports that -h was asked for and answered.
var errHelp = flag.ErrHelp

// exitUsage is the exit status for bad settings, as flag uses.
const exitUsage = 2

func envLookup(k string) (string, bool) { return os.LookupEnv(k) }
