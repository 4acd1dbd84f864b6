package dialer

import (
	"cmp"
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
	alias            string // the name as written (URL host or hop), for messages
	host             string // HostName applied
	port             int
	user             string
	userFrom         string // where user came from, for the authentication error
	identityFiles    []identityFile
	certificateFiles []string // user certificates (CertificateFile), tokens expanded
	identitiesOnly   bool
	knownHosts       []string // nil: the HostKeyFunc's defaults
	agentSocket      string   // "" means no agent
	hostKeyAlias     string   // HostKeyAlias, lower case; "" for none
	proxyCommand     string   // ProxyCommand with its tokens expanded; "" for none
}

// identityFile is a private key file to try.
type identityFile struct {
	path     string
	explicit bool // named by Config or ssh_config: a missing file is noted
}

func (e *endpoint) addr() string { return hostPort(e.host, e.port) }

// hostKeyAddr is the name the host key is looked up and recorded under:
// the HostKeyAlias alone (ssh writes it without a port,
// get_hostfile_hostname_ipaddr in sshconnect.c; the default port makes
// "alias:22" mean just "alias" in known_hosts), else host:port.
func (e *endpoint) hostKeyAddr() string {
	if e.hostKeyAlias != "" {
		return hostPort(e.hostKeyAlias, 22)
	}
	return e.addr()
}

// destination is everything New resolved from the URL, ssh_config and
// Config.
type destination struct {
	endpoint
	jumps   []endpoint // ProxyJump hops, first hop first
	socket  string     // remote daemon socket from the URL path
	command string     // the quoted remote command for dial-stdio
	notes   []string   // what the ssh_config reader skipped
	home    string     // the local home directory, HOME for a ProxyCommand
}

// Where an endpoint's user name came from, as the authentication error
// names it.
const (
	userFromURL       = "the URL"
	userFromProxyJump = "the ProxyJump entry"
	userFromConfig    = "User in ssh_config"
	userFromLocal     = "the local user name"
)

// resolver resolves endpoints against one Config and ssh_config file.
type resolver struct {
	cfg       *Config
	home      string
	localUser string
	reader    *sshConfigReader // nil when ssh_config is ignored
	files     []configFile     // the ssh_config files, in the order they are read
	getenv    func(string) string
}

func newResolver(cfg *Config) (*resolver, error) {
	home := cfg.HomeDir
	if home == "" {
		h, err := os.UserHomeDir()
		if err != nil {
			return nil, withHint(fmt.Errorf("home directory unknown: %w", err), "set Config.HomeDir")
		}
		home = h
	}
	r := &resolver{cfg: cfg, home: home, localUser: localUserName(), getenv: os.Getenv}
	if !cfg.IgnoreSSHConfig {
		r.files = configFiles(cfg, home)
		r.reader = newSSHConfigReader(home, r.localUser)
	}
	return r, nil
}

// DefaultSystemSSHConfig is the system-wide ssh_config that ssh reads after
// the user's file.
const DefaultSystemSSHConfig = "/etc/ssh/ssh_config"

// configFiles lists the ssh_config files to read, as ssh does: the user's
// file, or the one named like ssh -F (which makes ssh skip the system
// file), then the system-wide file.
func configFiles(cfg *Config, home string) []configFile {
	user := configFile{path: filepath.Join(home, ".ssh", "config")}
	if cfg.SSHConfigPath != "" {
		user = configFile{path: expandTilde(cfg.SSHConfigPath, home), required: true}
	}
	files := []configFile{user}
	switch sys := cfg.SystemSSHConfigPath; {
	case strings.EqualFold(sys, "none"):
	case sys != "":
		files = append(files, configFile{path: expandTilde(sys, home), required: true, system: true})
	case cfg.SSHConfigPath == "":
		files = append(files, configFile{path: DefaultSystemSSHConfig, system: true})
	}
	return files
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
	ep, hc, err := r.endpoint(t.host, t.user, userFromURL, t.port)
	if err != nil {
		return nil, err
	}
	d := &destination{endpoint: *ep, socket: t.socket, notes: hc.Notes, home: r.home}
	jump, err := r.proxy(hc, &d.endpoint, t.host)
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

// proxy applies what hc says about reaching host: it returns the ProxyJump
// list ("" for none), or sets ep.proxyCommand. The two exclude each other,
// the first one set winning (see set); "none" for either means a direct
// connection.
func (r *resolver) proxy(hc *hostConfig, ep *endpoint, host string) (string, error) {
	if j := hc.ProxyJump; j != "" && !strings.EqualFold(j, "none") {
		return j, nil
	}
	c := hc.ProxyCommand
	if c == "" || strings.EqualFold(c, "none") {
		return "", nil
	}
	switch {
	case r.cfg.RefuseProxyCommand:
		return "", withHint(fmt.Errorf("ssh_config sets ProxyCommand for %s, and Config.RefuseProxyCommand forbids running local commands", host),
			"use ProxyJump instead, or leave Config.RefuseProxyCommand unset")
	case c == "-":
		// ssh's own stdin and stdout as the transport (used under
		// ssh -O proxy); a library has no such streams to give.
		return "", withHint(fmt.Errorf("ssh_config sets ProxyCommand - for %s, which the dialer cannot use (it has no standard input and output of its own to give)", host),
			"name a command, or use ProxyJump")
	case strings.EqualFold(hc.ProxyUseFdpass, "yes"):
		return "", withHint(fmt.Errorf("ssh_config sets ProxyUseFdpass yes for %s, which the dialer does not support", host),
			"remove ProxyUseFdpass: the same command then works over its standard input and output")
	}
	cmd, err := expandProxyCommand(c, ep)
	if err != nil {
		return "", withHint(fmt.Errorf("ProxyCommand for %s: %w", host, err), configHint)
	}
	ep.proxyCommand = cmd
	return "", nil
}

// expandProxyCommand expands the tokens of a ProxyCommand as ssh does
// (expand_proxy_command in sshconnect.c): %h the host name (HostName
// applied), %k the HostKeyAlias or else the name as given, %n the name as
// given, %p the port, %r the remote user, %% a percent sign. Any other
// token, and a lone % at the end, is an error, as in ssh's percent_expand.
// Like ssh, it prepends "exec ", so that the shell is replaced by the
// command and killing it ends the command.
func expandProxyCommand(c string, ep *endpoint) (string, error) {
	vals := map[byte]string{
		'h': ep.host,
		'k': cmp.Or(ep.hostKeyAlias, ep.alias),
		'n': ep.alias,
		'p': strconv.Itoa(ep.port),
		'r': ep.user,
	}
	var b strings.Builder
	b.WriteString("exec ")
	for i := 0; i < len(c); i++ {
		if c[i] != '%' {
			b.WriteByte(c[i])
			continue
		}
		i++
		switch {
		case i >= len(c):
			return "", errors.New("a lone % at the end (write %% for a percent sign)")
		case c[i] == '%':
			b.WriteByte('%')
		default:
			v, ok := vals[c[i]]
			if !ok {
				return "", fmt.Errorf("unknown token %%%c (ssh knows %%h, %%k, %%n, %%p, %%r and %%%% there)", c[i])
			}
			b.WriteString(v)
		}
	}
	return b.String(), nil
}

// maxJumpDepth bounds how many ProxyJump settings of first hops are
// followed, so that hosts jumping through each other are an error.
const maxJumpDepth = 16

// jumps resolves a ProxyJump list, first hop first. As with ssh, which
// reaches the last hop with "ssh -J <the others> -W ... <last>", only the
// first hop's own ssh_config ProxyJump or ProxyCommand applies: a later
// hop's is overridden by the hops before it.
func (r *resolver) jumps(list string, notes *[]string, depth int) ([]endpoint, error) {
	if depth >= maxJumpDepth {
		return nil, fmt.Errorf("ProxyJump hosts nested more than %d levels (hosts that jump through each other?)", maxJumpDepth)
	}
	var out []endpoint
	for i, hop := range strings.Split(list, ",") {
		hop = strings.TrimSpace(hop)
		hu, hh, hp, err := parseJump(hop)
		if err != nil {
			return nil, withHint(fmt.Errorf("ProxyJump %q: %w", rejectedURL(hop), err), "write each hop as [user@]host[:port] or ssh://[user@]host[:port]")
		}
		jep, jhc, err := r.endpoint(hh, hu, userFromProxyJump, hp)
		if err != nil {
			return nil, fmt.Errorf("ProxyJump hop %s: %w", hh, err)
		}
		*notes = append(*notes, jhc.Notes...)
		if i == 0 {
			before, err := r.firstHopProxy(jhc, jep, hh, notes, depth)
			if err != nil {
				return nil, err
			}
			out = append(out, before...)
		}
		out = append(out, *jep)
	}
	return out, nil
}

// firstHopProxy applies the first hop's own ProxyJump or ProxyCommand:
// it returns the hops before it, or sets its proxyCommand.
func (r *resolver) firstHopProxy(hc *hostConfig, ep *endpoint, host string, notes *[]string, depth int) ([]endpoint, error) {
	j, err := r.proxy(hc, ep, "the ProxyJump host "+host)
	if err != nil || j == "" {
		return nil, err
	}
	return r.jumps(j, notes, depth+1)
}

// endpoint resolves one host alias with the user and port given explicitly
// (URL or ProxyJump), which win over ssh_config.
func (r *resolver) endpoint(alias, explicitUser, explicitFrom string, explicitPort int) (*endpoint, *hostConfig, error) {
	hc, err := r.hostConfig(alias, explicitUser)
	if err != nil {
		return nil, nil, err
	}
	ep := &endpoint{alias: alias, host: alias}
	if hc.HostName != "" {
		ep.host = expandHostName(hc.HostName, alias)
	}
	// ssh lowercases a host name (not an address) once HostName is
	// applied (ssh.c main), so %h, known_hosts and the connection all
	// see the lower-case name.
	if net.ParseIP(ep.host) == nil {
		ep.host = strings.ToLower(ep.host)
	}
	if ep.port, err = r.port(hc, explicitPort); err != nil {
		return nil, nil, err
	}
	if ep.user, ep.userFrom, err = r.user(hc, explicitUser, explicitFrom); err != nil {
		return nil, nil, err
	}
	tokens := r.tokens(ep)
	ep.identityFiles = r.identityFiles(hc, tokens)
	ep.certificateFiles = r.certificateFiles(hc, tokens)
	ep.identitiesOnly = strings.EqualFold(hc.IdentitiesOnly, "yes")
	ep.knownHosts = r.knownHosts(hc, tokens)
	ep.agentSocket = r.agentSocket(hc, tokens)
	ep.hostKeyAlias = strings.ToLower(hc.HostKeyAlias) // as ssh.c does
	return ep, hc, nil
}

// configHint is the advice for an ssh_config file that cannot be used.
const configHint = "fix the file, point Config.SSHConfigPath elsewhere, or set Config.IgnoreSSHConfig"

// hostConfig reads what ssh_config says about alias; an empty hostConfig
// when ssh_config is ignored.
func (r *resolver) hostConfig(alias, explicitUser string) (*hostConfig, error) {
	if r.reader == nil {
		return &hostConfig{}, nil
	}
	hc, err := r.reader.readAll(r.files, alias, explicitUser)
	if err != nil {
		return nil, withHint(err, configHint)
	}
	return hc, nil
}

// port is the explicit port, else ssh_config's Port, else 22.
func (r *resolver) port(hc *hostConfig, explicit int) (int, error) {
	switch {
	case explicit != 0:
		return explicit, nil
	case hc.Port != "":
		p, err := parsePort(hc.Port)
		if err != nil {
			return 0, withHint(err, configHint)
		}
		return p, nil
	}
	return 22, nil
}

// user is the explicit user, else ssh_config's User, else the local user,
// with where it came from.
func (r *resolver) user(hc *hostConfig, explicit, explicitFrom string) (string, string, error) {
	switch {
	case explicit != "":
		return explicit, explicitFrom, nil
	case hc.User != "":
		return hc.User, userFromConfig, nil
	case r.localUser != "":
		return r.localUser, userFromLocal, nil
	}
	return "", "", withHint(errors.New("no user: the URL names none, ssh_config sets no User, and the local user name is unknown"),
		"write ssh://USER@host")
}

// identityFiles lists Config.IdentityFiles, then ssh_config's, else the
// default files.
func (r *resolver) identityFiles(hc *hostConfig, tokens map[byte]string) []identityFile {
	var out []identityFile
	for _, f := range append(append([]string{}, r.cfg.IdentityFiles...), hc.IdentityFiles...) {
		out = append(out, identityFile{path: r.path(f, tokens), explicit: true})
	}
	if len(out) == 0 {
		for _, name := range []string{"id_ed25519", "id_ecdsa", "id_rsa"} {
			out = append(out, identityFile{path: filepath.Join(r.home, ".ssh", name)})
		}
	}
	return out
}

// certificateFiles lists Config.CertificateFiles, then ssh_config's.
func (r *resolver) certificateFiles(hc *hostConfig, tokens map[byte]string) []string {
	var out []string
	for _, f := range append(append([]string{}, r.cfg.CertificateFiles...), hc.CertificateFiles...) {
		out = append(out, r.path(f, tokens))
	}
	return out
}

// knownHosts is Config.KnownHostsFiles, else ssh_config's
// UserKnownHostsFile and GlobalKnownHostsFile, else OpenSSH's defaults.
func (r *resolver) knownHosts(hc *hostConfig, tokens map[byte]string) []string {
	var out []string
	switch {
	case r.cfg.KnownHostsFiles != nil:
		for _, f := range r.cfg.KnownHostsFiles {
			out = append(out, r.path(f, tokens))
		}
	case hc.UserKnownHostsFiles != nil || hc.GlobalKnownHostsFiles != nil:
		user := cmpSlice(hc.UserKnownHostsFiles, []string{"~/.ssh/known_hosts", "~/.ssh/known_hosts2"})
		global := cmpSlice(hc.GlobalKnownHostsFiles, []string{"/etc/ssh/ssh_known_hosts", "/etc/ssh/ssh_known_hosts2"})
		out = []string{} // "none" everywhere means no file at all
		for _, f := range append(append([]string{}, user...), global...) {
			if !strings.EqualFold(f, "none") {
				out = append(out, r.path(f, tokens))
			}
		}
	default:
		out = []string{
			filepath.Join(r.home, ".ssh", "known_hosts"),
			filepath.Join(r.home, ".ssh", "known_hosts2"),
			"/etc/ssh/ssh_known_hosts",
			"/etc/ssh/ssh_known_hosts2",
		}
	}
	return out
}

// cmpSlice returns s, or def when s is nil.
func cmpSlice(s, def []string) []string {
	if s == nil {
		return def
	}
	return s
}

// agentSocket is Config.AgentSocket, else ssh_config's IdentityAgent (a
// path, SSH_AUTH_SOCK or $VAR), else $SSH_AUTH_SOCK; "" for none.
func (r *resolver) agentSocket(hc *hostConfig, tokens map[byte]string) string {
	sock := r.cfg.AgentSocket
	switch {
	case sock != "":
	case hc.IdentityAgent == "SSH_AUTH_SOCK":
		sock = r.getenv("SSH_AUTH_SOCK")
	case strings.HasPrefix(hc.IdentityAgent, "$"):
		sock = r.getenv(hc.IdentityAgent[1:])
	case hc.IdentityAgent != "" && !strings.EqualFold(hc.IdentityAgent, "none"):
		sock = r.path(hc.IdentityAgent, tokens)
	case hc.IdentityAgent != "":
		sock = "none"
	default:
		sock = r.getenv("SSH_AUTH_SOCK")
	}
	if strings.EqualFold(sock, "none") {
		return ""
	}
	return sock
}

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
