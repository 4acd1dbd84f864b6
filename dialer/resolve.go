package dialer

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
)

// endpoint is one SSH server to authenticate to: the destination or a
// ProxyJump hop, with its ssh_config settings applied.
type endpoint struct {
	alias          string // the name as written (URL host or hop), for messages
	host           string // HostName applied
	port           int
	user           string
	identityFiles  []identityFile
	identitiesOnly bool
	knownHosts     []string // nil: the HostKeyFunc's defaults
	agentSocket    string   // "" means no agent
}

// identityFile is a private key file to try.
type identityFile struct {
	path     string
	explicit bool // named by Config or ssh_config: a missing file is noted
}

func (e *endpoint) addr() string { return hostPort(e.host, e.port) }

// destination is everything New resolved from the URL, ssh_config and
// Config.
type destination struct {
	endpoint
	jumps   []endpoint // ProxyJump hops, first hop first
	socket  string     // remote daemon socket from the URL path
	command string     // the quoted remote command for dial-stdio
	notes   []string   // what the ssh_config reader skipped
}

// resolver resolves endpoints against one Config and ssh_config file.
type resolver struct {
	cfg       *Config
	home      string
	localUser string
	reader    *sshConfigReader // nil when ssh_config is ignored
	cfgPath   string
	getenv    func(string) string
}

func newResolver(cfg *Config) (*resolver, error) {
	home := cfg.HomeDir
	if home == "" {
		h, err := os.UserHomeDir()
		if err != nil {
			return nil, fmt.Errorf("home directory unknown (%v); set Config.HomeDir", err)
		}
		home = h
	}
	r := &resolver{cfg: cfg, home: home, localUser: localUserName(), getenv: os.Getenv}
	if !cfg.IgnoreSSHConfig {
		r.cfgPath = cfg.SSHConfigPath
		if r.cfgPath == "" {
			r.cfgPath = filepath.Join(home, ".ssh", "config")
		} else {
			r.cfgPath = expandTilde(r.cfgPath, home)
		}
		r.reader = newSSHConfigReader(home, r.localUser)
	}
	return r, nil
}

// localUserName is the user OpenSSH logs in as when nothing names one: the
// name of the process's uid in the user database, from os/user.Current
// (which, in a build without cgo, falls back to $USER for a uid that
// /etc/passwd does not list). "" when even that fails; then the URL or
// ssh_config must name the user, as ssh says "No user exists for uid".
func localUserName() string {
	if u, err := user.Current(); err == nil {
		return u.Username
	}
	return ""
}

// resolve turns a parsed URL into a destination.
func (r *resolver) resolve(t *target) (*destination, error) {
	ep, hc, err := r.endpoint(t.host, t.user, t.port)
	if err != nil {
		return nil, err
	}
	d := &destination{endpoint: *ep, socket: t.socket, notes: hc.Notes}
	jump, err := proxyJump(hc, t.host)
	if err != nil {
		return nil, err
	}
	if jump != "" {
		d.jumps, err = r.jumps(jump, &d.notes, 0)
		if err != nil {
			return nil, err
		}
	}
	return d, nil
}

// proxyJump returns the ProxyJump list that hc sets for host ("" for none),
// or an error when it sets a ProxyCommand: the dialer never runs local
// commands, and ignoring one could reach a different host.
func proxyJump(hc *hostConfig, host string) (string, error) {
	if c := hc.ProxyCommand; c != "" && !strings.EqualFold(c, "none") {
		return "", fmt.Errorf("ssh_config sets ProxyCommand for %s; dialer never runs local commands: use ProxyJump instead, or set Config.IgnoreSSHConfig", host)
	}
	if j := hc.ProxyJump; j != "" && !strings.EqualFold(j, "none") {
		return j, nil
	}
	return "", nil
}

// maxJumpDepth bounds how many ProxyJump settings of first hops are
// followed, so that hosts jumping through each other are an error.
const maxJumpDepth = 16

// jumps resolves a ProxyJump list, first hop first. As with ssh, which
// reaches the last hop with "ssh -J <the others> -W ... <last>", only the
// first hop's own ssh_config ProxyJump (or ProxyCommand) applies: a later
// hop's is overridden by the hops before it.
func (r *resolver) jumps(list string, notes *[]string, depth int) ([]endpoint, error) {
	if depth >= maxJumpDepth {
		return nil, fmt.Errorf("ProxyJump hosts nested more than %d levels (hosts that jump through each other?)", maxJumpDepth)
	}
	var out []endpoint
	for i, hop := range strings.Split(list, ",") {
		hu, hh, hp, err := parseJump(strings.TrimSpace(hop))
		if err != nil {
			return nil, fmt.Errorf("ProxyJump %q: %w", rejectedURL(strings.TrimSpace(hop)), err)
		}
		jep, jhc, err := r.endpoint(hh, hu, hp)
		if err != nil {
			return nil, fmt.Errorf("ProxyJump hop %s: %w", hh, err)
		}
		*notes = append(*notes, jhc.Notes...)
		if i == 0 {
			j, err := proxyJump(jhc, "the ProxyJump host "+hh)
			if err != nil {
				return nil, err
			}
			if j != "" {
				before, err := r.jumps(j, notes, depth+1)
				if err != nil {
					return nil, err
				}
				out = append(out, before...)
			}
		}
		out = append(out, *jep)
	}
	return out, nil
}

// endpoint resolves one host alias with the user and port given explicitly
// (URL or ProxyJump), which win over ssh_config.
func (r *resolver) endpoint(alias, explicitUser string, explicitPort int) (*endpoint, *hostConfig, error) {
	hc := &hostConfig{}
	if r.reader != nil {
		var err error
		hc, err = r.reader.read(r.cfgPath, alias, explicitUser)
		if err != nil {
			return nil, nil, fmt.Errorf("%w: %v", errSSHConfig, err)
		}
	}
	ep := &endpoint{alias: alias, host: alias, port: 22, user: r.localUser}
	if hc.HostName != "" {
		ep.host = expandHostName(hc.HostName, alias)
	}
	switch {
	case explicitPort != 0:
		ep.port = explicitPort
	case hc.Port != "":
		p, err := parsePort(hc.Port)
		if err != nil {
			return nil, nil, fmt.Errorf("%w: %v", errSSHConfig, err)
		}
		ep.port = p
	}
	switch {
	case explicitUser != "":
		ep.user = explicitUser
	case hc.User != "":
		ep.user = hc.User
	}
	if ep.user == "" {
		return nil, nil, errors.New("no user: the URL names none and the local user name is unknown; write ssh://USER@host")
	}
	tokens := r.tokens(ep)

	for _, f := range r.cfg.IdentityFiles {
		ep.identityFiles = append(ep.identityFiles, identityFile{path: r.path(f, tokens), explicit: true})
	}
	for _, f := range hc.IdentityFiles {
		ep.identityFiles = append(ep.identityFiles, identityFile{path: r.path(f, tokens), explicit: true})
	}
	if len(ep.identityFiles) == 0 {
		for _, name := range []string{"id_ed25519", "id_ecdsa", "id_rsa"} {
			ep.identityFiles = append(ep.identityFiles, identityFile{path: filepath.Join(r.home, ".ssh", name)})
		}
	}
	ep.identitiesOnly = strings.EqualFold(hc.IdentitiesOnly, "yes")

	switch {
	case r.cfg.KnownHostsFiles != nil:
		for _, f := range r.cfg.KnownHostsFiles {
			ep.knownHosts = append(ep.knownHosts, r.path(f, tokens))
		}
	case hc.UserKnownHostsFiles != nil || hc.GlobalKnownHostsFiles != nil:
		user := hc.UserKnownHostsFiles
		if user == nil {
			user = []string{"~/.ssh/known_hosts", "~/.ssh/known_hosts2"}
		}
		global := hc.GlobalKnownHostsFiles
		if global == nil {
			global = []string{"/etc/ssh/ssh_known_hosts", "/etc/ssh/ssh_known_hosts2"}
		}
		ep.knownHosts = []string{} // "none" everywhere means no file at all
		for _, f := range append(append([]string{}, user...), global...) {
			if strings.EqualFold(f, "none") {
				continue
			}
			ep.knownHosts = append(ep.knownHosts, r.path(f, tokens))
		}
	default:
		ep.knownHosts = []string{
			filepath.Join(r.home, ".ssh", "known_hosts"),
			filepath.Join(r.home, ".ssh", "known_hosts2"),
			"/etc/ssh/ssh_known_hosts",
			"/etc/ssh/ssh_known_hosts2",
		}
	}

	switch {
	case r.cfg.AgentSocket != "":
		ep.agentSocket = r.cfg.AgentSocket
	case hc.IdentityAgent != "":
		ep.agentSocket = hc.IdentityAgent
		if ep.agentSocket == "SSH_AUTH_SOCK" {
			ep.agentSocket = r.getenv("SSH_AUTH_SOCK")
		} else if v, ok := strings.CutPrefix(ep.agentSocket, "$"); ok {
			ep.agentSocket = r.getenv(v)
		} else if !strings.EqualFold(ep.agentSocket, "none") {
			ep.agentSocket = r.path(ep.agentSocket, tokens)
		}
	default:
		ep.agentSocket = r.getenv("SSH_AUTH_SOCK")
	}
	if strings.EqualFold(ep.agentSocket, "none") {
		ep.agentSocket = ""
	}
	return ep, hc, nil
}

// errSSHConfig marks errors of the ssh_config file.
var errSSHConfig = errors.New("ssh_config")

func (r *resolver) tokens(ep *endpoint) map[byte]string {
	return map[byte]string{
		'd': r.home,
		'u': r.localUser,
		'h': ep.host,
		'n': ep.alias,
		'p': strconv.Itoa(ep.port),
		'r': ep.user,
		'i': strconv.Itoa(os.Getuid()),
	}
}

// path expands ~ and %-tokens in a file name from ssh_config or Config.
func (r *resolver) path(p string, tokens map[byte]string) string {
	return expandTilde(expandTokens(p, tokens), r.home)
}

// parseJump parses one ProxyJump hop: [user@]host[:port] or
// ssh://[user@]host[:port].
func parseJump(s string) (user, host string, port int, err error) {
	if s == "" {
		return "", "", 0, errors.New("empty hop")
	}
	if strings.HasPrefix(s, "ssh://") {
		t, err := parseURL(s)
		if err != nil {
			return "", "", 0, err
		}
		if t.password != nil || t.socket != "" {
			return "", "", 0, errors.New("a hop has no password and no path")
		}
		return t.user, t.host, t.port, nil
	}
	if i := strings.LastIndex(s, "@"); i >= 0 {
		user, s = s[:i], s[i+1:]
		if err := checkUser(user); err != nil {
			return "", "", 0, err
		}
	}
	host = s
	if strings.HasPrefix(s, "[") && strings.HasSuffix(s, "]") {
		host = s[1 : len(s)-1]
	} else if strings.HasPrefix(s, "[") || strings.Count(s, ":") == 1 {
		h, p, err := net.SplitHostPort(s)
		if err != nil {
			return "", "", 0, errors.New("want [user@]host[:port]")
		}
		host = h
		if port, err = parsePort(p); err != nil {
			return "", "", 0, err
		}
	}
	if host == "" || strings.ContainsAny(host, " \t/\\") || strings.HasPrefix(host, "-") {
		return "", "", 0, errors.New("invalid host")
	}
	return user, host, port, nil
}
