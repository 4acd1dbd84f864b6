package dialer

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"

	"github.com/dockssh/dockssh/internal/sshmatch"
)

// hostConfig is what an ssh_config file says about one host, first value
// wins as in OpenSSH. Empty fields were not set.
type hostConfig struct {
	HostName              string
	User                  string
	Port                  string
	IdentityFiles         []string // raw, tokens not yet expanded
	CertificateFiles      []string // raw, tokens not yet expanded
	IdentitiesOnly        string   // "yes", "no" or ""
	IdentityAgent         string
	UserKnownHostsFiles   []string
	GlobalKnownHostsFiles []string
	ProxyJump             string
	ProxyCommand          string // the rest of the line as written, as OpenSSH keeps it
	ProxyUseFdpass        string
	HostKeyAlias          string

	// Notes explains what was skipped (Match blocks that cannot be
	// evaluated without running something); for debug logs.
	Notes []string
}

// sshConfigReader reads an OpenSSH client configuration for one host.
//
// It is a small parser of its own rather than kevinburke/ssh_config,
// because a user's config that works with ssh must not stop the dialer,
// and that library refuses whole files over Match lines: up to v1.4.0 any
// Match line ("Match directive parsing is unsupported"); from v1.5.0 every
// Match but "Match all" and "Match host" (exec, user, localuser,
// originalhost, canonical, final, ...), while it reads further criteria
// after "Match host" as host patterns. Supported: Host (patterns, negation), Match with the
// criteria all, host, originalhost, user and localuser (negation
// included), Include (globs, relative to ~/.ssh, nested up to 16 levels,
// also inside Host and Match blocks), quoted arguments, "Key=Value".
// A Match block with any other criterion (exec, localnetwork, canonical,
// final, tagged, ...) is skipped as a whole: dialer never runs commands
// from a config file, and guessing would apply settings meant for another
// situation. Unknown keywords are ignored.
type sshConfigReader struct {
	home      string // for ~ and relative Include paths
	localUser string
	readFile  func(string) ([]byte, error)
	glob      func(string) ([]string, error)
}

// systemConfigDir is where OpenSSH keeps the system-wide ssh_config
// (SSHDIR); relative Include paths in that file are taken from it.
const systemConfigDir = "/etc/ssh"

// maxIncludeDepth is OpenSSH's READCONF_MAX_DEPTH.
const maxIncludeDepth = 16

// errConfigLoop is returned for Include nested too deep (usually a loop).
var errConfigLoop = errors.New("dialer: include files nested more than 16 levels (an Include loop?)")

// resolveState is the evaluation state of one lookup.
type resolveState struct {
	alias   string // the host as written in the URL
	urlUser string // the user from the URL, "" if none
	system  bool   // reading the system-wide file (and what it includes)
	hc      hostConfig
}

// configFile is one top-level ssh_config file to read.
type configFile struct {
	path     string
	required bool // named by the program: it must exist, as for ssh -F
	system   bool // the system-wide file: relative Include paths are under /etc/ssh
}

// read evaluates the file at path for alias. A missing file yields an empty
// hostConfig, unless required: a file the program named must exist, as
// for ssh -F ("Can't open user config file").
func (r *sshConfigReader) read(path, alias, urlUser string, required bool) (*hostConfig, error) {
	return r.readAll([]configFile{{path: path, required: required}}, alias, urlUser)
}

// readAll evaluates files in order for alias, the first value of a
// keyword in any of them winning: ssh reads the user's file and then the
// system-wide one (ssh.c process_config_files).
func (r *sshConfigReader) readAll(files []configFile, alias, urlUser string) (*hostConfig, error) {
	st := &resolveState{alias: alias, urlUser: urlUser}
	for _, f := range files {
		st.system = f.system
		if err := r.readFileAt(st, f.path, 0, true); err != nil {
			if f.required || !errors.Is(err, fs.ErrNotExist) {
				return nil, err
			}
		}
	}
	return &st.hc, nil
}

// readFileAt reads and evaluates one file. A missing file is an error only
// at the top level (read decides); an Include that matches nothing is
// none.
func (r *sshConfigReader) readFileAt(st *resolveState, path string, depth int, topLevel bool) error {
	if depth > maxIncludeDepth {
		return errConfigLoop
	}
	data, err := r.readFile(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			if topLevel {
				return fmt.Errorf("can't open the ssh config file %s: %w", path, err)
			}
			return nil
		}
		// An Include glob may match a directory too (conf.d/old/);
		// ssh reads no line from it and goes on.
		if !topLevel && errors.Is(err, syscall.EISDIR) {
			return nil
		}
		return err
	}
	return r.evaluate(st, path, string(data), depth)
}

// evaluate runs through the lines of one file. Each file starts active (an
// implicit "Host *"); a Host or Match line in an included file only changes
// the state inside that file, as in OpenSSH.
func (r *sshConfigReader) evaluate(st *resolveState, path, data string, depth int) error {
	active := true
	for n, line := range strings.Split(data, "\n") {
		lineNo := n + 1
		key, args, err := splitConfigLine(line)
		if err != nil {
			return fmt.Errorf("%s:%d: %w", path, lineNo, err)
		}
		if key == "" {
			continue
		}
		switch key {
		case "host":
			active = sshmatch.NewList(args, true).Match(st.alias)
			continue
		case "match":
			ok, note := r.evalMatch(st, args)
			if note != "" {
				st.hc.Notes = append(st.hc.Notes, fmt.Sprintf("%s:%d: %s", path, lineNo, note))
			}
			active = ok
			continue
		}
		if !active {
			continue
		}
		if key == "include" {
			for _, pat := range args {
				if err := r.include(st, pat, depth); err != nil {
					if errors.Is(err, errConfigLoop) {
						return err
					}
					return fmt.Errorf("%s:%d: Include %s: %w", path, lineNo, pat, err)
				}
			}
			continue
		}
		if len(args) == 0 {
			continue
		}
		set(st, key, args, rawValue(line))
	}
	return nil
}

func (r *sshConfigReader) include(st *resolveState, pattern string, depth int) error {
	// Relative paths are under ~/.ssh in the user's file and under
	// /etc/ssh in the system-wide one (ssh_config(5), Include).
	p := expandTilde(pattern, r.home)
	if !filepath.IsAbs(p) {
		dir := filepath.Join(r.home, ".ssh")
		if st.system {
			dir = systemConfigDir
		}
		p = filepath.Join(dir, p)
	}
	matches, err := r.glob(p)
	if err != nil {
		return err
	}
	for _, m := range matches {
		if err := r.readFileAt(st, m, depth+1, false); err != nil {
			return err
		}
	}
	return nil
}

// set records the first value of a keyword; list keywords accumulate. raw
// is the rest of the line, for the keywords OpenSSH keeps unsplit.
func set(st *resolveState, key string, args []string, raw string) {
	hc := &st.hc
	first := func(dst *string) {
		if *dst == "" {
			*dst = args[0]
		}
	}
	switch key {
	case "hostname":
		first(&hc.HostName)
	case "user":
		first(&hc.User)
	case "port":
		first(&hc.Port)
	// A file named twice is listed once, as ssh does (add_identity_file
	// and add_certificate_file in readconf.c).
	case "identityfile":
		if !slices.Contains(hc.IdentityFiles, args[0]) {
			hc.IdentityFiles = append(hc.IdentityFiles, args[0])
		}
	case "certificatefile":
		if !slices.Contains(hc.CertificateFiles, args[0]) {
			hc.CertificateFiles = append(hc.CertificateFiles, args[0])
		}
	case "identitiesonly":
		first(&hc.IdentitiesOnly)
	case "identityagent":
		first(&hc.IdentityAgent)
	case "userknownhostsfile":
		if hc.UserKnownHostsFiles == nil {
			hc.UserKnownHostsFiles = args
		}
	case "globalknownhostsfile":
		if hc.GlobalKnownHostsFiles == nil {
			hc.GlobalKnownHostsFiles = args
		}
	// ProxyJump and ProxyCommand exclude each other: the first one set
	// wins (OpenSSH readconf.c), so a ProxyJump for a host is not undone by
	// a ProxyCommand under a later "Host *".
	case "proxyjump":
		if hc.ProxyCommand == "" {
			first(&hc.ProxyJump)
		}
	// The command is the rest of the line, quotes and all, for
	// /bin/sh -c (readconf.c parse_command), not the split arguments.
	// OpenSSH 9.2 also lets a "ProxyJump none" hide a later ProxyCommand;
	// OpenSSH 9.8 and later no longer do, and the dialer follows the 9.2
	// client that ssh -G checks it against.
	case "proxycommand":
		if hc.ProxyJump == "" && hc.ProxyCommand == "" {
			hc.ProxyCommand = raw
		}
	case "proxyusefdpass":
		first(&hc.ProxyUseFdpass)
	case "hostkeyalias":
		first(&hc.HostKeyAlias)
	}
}

// evalMatch evaluates the criteria of a Match line. It returns false with a
// note when a criterion cannot be evaluated without side effects or
// information the dialer does not have.
func (r *sshConfigReader) evalMatch(st *resolveState, args []string) (bool, string) {
	if len(args) == 0 {
		return false, "Match without criteria skipped"
	}
	result := true
	for i := 0; i < len(args); i++ {
		crit := strings.ToLower(args[i])
		negate := strings.HasPrefix(crit, "!")
		crit = strings.TrimPrefix(crit, "!")
		var ok bool
		switch crit {
		case "all":
			ok = true
		case "host", "originalhost", "user", "localuser":
			if i+1 >= len(args) {
				return false, fmt.Sprintf("Match %s without an argument skipped", crit)
			}
			i++
			pats := sshmatch.SplitList(args[i], true)
			switch crit {
			case "host":
				ok = pats.Match(st.currentHost())
			case "originalhost":
				ok = pats.Match(st.alias)
			case "user":
				ok = pats.Match(st.currentUser(r.localUser))
			case "localuser":
				ok = pats.Match(r.localUser)
			}
		default:
			return false, fmt.Sprintf("Match block with criterion %q skipped (dialer never runs commands and does not canonicalize host names)", crit)
		}
		if negate {
			ok = !ok
		}
		if !ok {
			result = false
		}
	}
	return result, ""
}

// currentHost is the host name as far as the config has resolved it, for
// Match host.
func (st *resolveState) currentHost() string {
	if st.hc.HostName != "" {
		return expandHostName(st.hc.HostName, st.alias)
	}
	return st.alias
}

// currentUser is the remote user as far as it is known, for Match user.
func (st *resolveState) currentUser(localUser string) string {
	switch {
	case st.urlUser != "":
		return st.urlUser
	case st.hc.User != "":
		return st.hc.User
	}
	return localUser
}

// splitConfigLine splits one ssh_config line into a lower-case keyword and
// its arguments. Blank lines and comments yield an empty keyword.
func splitConfigLine(line string) (string, []string, error) {
	line = strings.TrimRight(line, "\r")
	s := strings.TrimLeft(line, " \t")
	if s == "" || s[0] == '#' {
		return "", nil, nil
	}
	end := strings.IndexAny(s, " \t=")
	if end < 0 {
		return strings.ToLower(s), nil, nil
	}
	key := strings.ToLower(s[:end])
	rest := strings.TrimLeft(s[end:], " \t")
	if strings.HasPrefix(rest, "=") {
		rest = strings.TrimLeft(rest[1:], " \t")
	}
	args, err := splitArgs(rest)
	return key, args, err
}

// rawValue is the rest of an ssh_config line after its keyword and the
// blanks or '=' that follow it, without trailing white space: the value
// OpenSSH keeps for ProxyCommand (process_config_line_depth and
// parse_command in readconf.c).
func rawValue(line string) string {
	s := strings.TrimLeft(strings.TrimRight(line, " \t\r\f"), " \t")
	end := strings.IndexAny(s, " \t=")
	if end < 0 {
		return ""
	}
	return strings.TrimLeft(s[end:], " \t=")
}

// splitArgs splits arguments on spaces and tabs, with double or single
// quotes grouping and a backslash escaping a quote, a backslash or a
// space, as OpenSSH's argv_split does. An unquoted argument starting with
// '#' starts a comment.
func splitArgs(s string) ([]string, error) {
	var args []string
	i := 0
	for {
		for i < len(s) && (s[i] == ' ' || s[i] == '\t') {
			i++
		}
		if i >= len(s) || s[i] == '#' {
			return args, nil
		}
		var b strings.Builder
		var quote byte
		for ; i < len(s); i++ {
			c := s[i]
			if quote != 0 {
				switch {
				case c == quote:
					quote = 0
				case c == '\\' && i+1 < len(s) && (s[i+1] == quote || s[i+1] == '\\'):
					i++
					b.WriteByte(s[i])
				default:
					b.WriteByte(c)
				}
				continue
			}
			if c == ' ' || c == '\t' {
				break
			}
			switch {
			case c == '"' || c == '\'':
				quote = c
			case c == '\\' && i+1 < len(s) && strings.IndexByte(`"' \`, s[i+1]) >= 0:
				i++
				b.WriteByte(s[i])
			default:
				b.WriteByte(c)
			}
		}
		if quote != 0 {
			return nil, errors.New("unterminated quote")
		}
		args = append(args, b.String())
	}
}

// expandHostName expands %h (the alias) and %% in a HostName value.
func expandHostName(v, alias string) string {
	return expandTokens(v, map[byte]string{'h': alias})
}

// expandTokens replaces %x tokens found in vals and %% with %; unknown
// tokens stay as written.
func expandTokens(v string, vals map[byte]string) string {
	if !strings.Contains(v, "%") {
		return v
	}
	var b strings.Builder
	for i := 0; i < len(v); i++ {
		if v[i] != '%' || i+1 >= len(v) {
			b.WriteByte(v[i])
			continue
		}
		i++
		if v[i] == '%' {
			b.WriteByte('%')
			continue
		}
		if s, ok := vals[v[i]]; ok {
			b.WriteString(s)
			continue
		}
		b.WriteByte('%')
		b.WriteByte(v[i])
	}
	return b.String()
}

// expandTilde replaces a leading ~ or ~/ with home.
func expandTilde(p, home string) string {
	if p == "~" {
		return home
	}
	if rest, ok := strings.CutPrefix(p, "~/"); ok {
		return filepath.Join(home, rest)
	}
	return p
}

// parsePort parses an ssh_config Port value.
func parsePort(s string) (int, error) {
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 || n > 65535 {
		return 0, fmt.Errorf("port %q is not a number from 1 to 65535", s)
	}
	return n, nil
}

// newSSHConfigReader returns a reader on the real file system.
func newSSHConfigReader(home, localUser string) *sshConfigReader {
	return &sshConfigReader{home: home, localUser: localUser, readFile: os.ReadFile, glob: filepath.Glob}
}
