package envsanitize

import "strings"

// Limits of the zero Policy.
const (
	// DefaultMaxVars is OpenSSH's limit: sshd ignores "env" requests once
	// a session holds more than 128 (session_env_req in session.c).
	DefaultMaxVars = 128
	// DefaultMaxNameLen bounds a name; real names are far shorter.
	DefaultMaxNameLen = 256
	// DefaultMaxValueLen bounds a value; it fits PATH and LS_COLORS.
	DefaultMaxValueLen = 32 << 10
)

// A Policy decides which environment variables pass. Its zero value is the
// safe default: like sshd without AcceptEnv, it lets nothing through. The
// ready policies are Helper and SSHSession.
//
// Every variable goes through the same checks, in this order; the first
// that fails drops it:
//
//  1. the built-in deny list (see DenyList): it always wins (but for the
//     rules OwnEnvironment lifts);
//  2. the name's length: at most MaxNameLen bytes, checked before any
//     pattern runs on the name, which bounds the patterns' work;
//  3. Deny: it always wins too;
//  4. the name: [A-Za-z_][A-Za-z0-9_]*;
//  5. Allow (and PTYAllow when PTY): some pattern must match;
//  6. the value: no NUL, at most MaxValueLen bytes, not a bash function
//     ("()..."), and for LANG, LANGUAGE, LC_*, LINGUAS, TERM, COLORTERM no
//     '/' or '%', for TZ a time zone rather than a file (sudo's checks);
//  7. the count: at most MaxVars variables are kept, the first ones.
//
// A Policy is read, never written, by its methods: one Policy may serve
// many goroutines.
type Policy struct {
	// Allow lists the names that may pass, as OpenSSH AcceptEnv patterns
	// ('*' any run of bytes, '?' one byte, case-sensitive; see Match).
	// nil or empty allows nothing. No pattern, not even "*", lets a name
	// on the deny list through.
	Allow []string

	// PTYAllow lists patterns that pass only while PTY is true: variables
	// that describe a terminal, such as TERM, which a session only has once
	// the client requested a pty. nil adds nothing.
	PTYAllow []string

	// PTY reports whether the session has a pseudo-terminal ("pty-req" was
	// granted). false means PTYAllow is ignored.
	PTY bool

	// Deny lists further patterns, in the same syntax as Allow but
	// matched without regard to ASCII case, that never pass. They add to
	// the built-in deny list, which cannot be shortened. nil adds nothing.
	Deny []string

	// MaxVars is the most variables Filter keeps and an Env holds; later
	// ones are dropped with ReasonTooMany. Zero or negative means
	// DefaultMaxVars (128, as sshd).
	MaxVars int

	// MaxNameLen is the longest name, in bytes, that passes. Zero or
	// negative means DefaultMaxNameLen (256). A longer name is dropped
	// before any Deny, Allow or PTYAllow pattern sees it: a pattern costs
	// at most about len(pattern)·MaxNameLen byte comparisons (see Match).
	MaxNameLen int

	// MaxValueLen is the longest value, in bytes, that passes. Zero or
	// negative means DefaultMaxValueLen (32 KiB).
	MaxValueLen int

	// OwnEnvironment reports that the variables are the program's own,
	// set by the user who runs it (os.Environ), not by a client. The deny
	// rules that guard only against others (DenyRule.Group.RemoteOnly:
	// the pager, editor and askpass the user picked, and what an SSH
	// server sets for a session, such as PATH, HOME and SSH_AUTH_SOCK)
	// then let them pass: a helper started from the user's environment
	// needs them, and they are the user's own choice. false (the zero
	// value) applies every rule, which is right for anything that comes
	// from the network. Helper sets it; never set it on a policy for SSH
	// requests.
	OwnEnvironment bool

	// RestorePyInstaller makes Filter undo what a PyInstaller bundle did
	// to the environment it runs in: when LD_LIBRARY_PATH_ORIG (or, on AIX,
	// LIBPATH_ORIG) is present, Filter passes its value on as
	// LD_LIBRARY_PATH (LIBPATH), the user's own value from before the
	// bundle started, drops the bundle's LD_LIBRARY_PATH and drops the
	// _ORIG variable itself. Without an _ORIG variable, LD_LIBRARY_PATH is
	// dropped like every denied name, which is also what PyInstaller's
	// documentation asks of programs a bundle starts.
	//
	// This is the only way a denied name passes, and only for those two
	// names: it is safe only when the environment is the user's own (the
	// program's os.Environ), where LD_LIBRARY_PATH_ORIG holds what the user
	// had set anyway. From anyone else, an _ORIG variable is a way to set
	// LD_LIBRARY_PATH: never set this on a policy for SSH requests or other
	// input from the network. Check and Env never restore. false means no
	// restoration: _ORIG variables are ordinary variables (and
	// LD_LIBRARY_PATH_ORIG is denied by LD_*).
	RestorePyInstaller bool
}

// Helper returns the policy for a program that spawns a helper process
// (ssh, docker) from its user's own environment: every variable passes
// except the deny list, which covers what docker-py and aiodocker drop
// before running ssh (LD_LIBRARY_PATH, SSL_CERT_FILE, SSL_CERT_DIR,
// PYTHONPATH; docker/compose#7686), but for its rules that guard only
// against others (OwnEnvironment: PATH, HOME, SSH_AUTH_SOCK, SSH_ASKPASS,
// EDITOR pass); a PyInstaller bundle's changes are undone
// (RestorePyInstaller); the limits are those of a large desktop
// environment: 4096 variables of up to 64 KiB each, well inside Linux's
// 128 KiB per string.
//
// Use it only on the program's own environment, never in a setuid or
// otherwise privileged program, whose environment comes from someone else.
func Helper() Policy {
	return Policy{
		Allow:              []string{"*"},
		MaxVars:            4096,
		MaxValueLen:        64 << 10,
		OwnEnvironment:     true,
		RestorePyInstaller: true,
	}
}

// SSHSession returns the policy for the "env" requests of an SSH session:
// LANG and LC_*, as Debian's sshd_config has it ("AcceptEnv LANG LC_*"),
// and TERM once PTY is set. Limits are the defaults (128 variables, as
// sshd). Callers may append to Allow (COLORTERM, NO_COLOR, ...); the deny
// list still applies.
func SSHSession() Policy {
	return Policy{
		Allow:    []string{"LANG", "LC_*"},
		PTYAllow: []string{"TERM"},
	}
}

func (p *Policy) maxVars() int {
	if p.MaxVars > 0 {
		return p.MaxVars
	}
	return DefaultMaxVars
}

func (p *Policy) maxNameLen() int {
	if p.MaxNameLen > 0 {
		return p.MaxNameLen
	}
	return DefaultMaxNameLen
}

func (p *Policy) maxValueLen() int {
	if p.MaxValueLen > 0 {
		return p.MaxValueLen
	}
	return DefaultMaxValueLen
}

// Check decides one variable, as an SSH server decides one "env" request
// (RFC 4254, section 6.4). It returns nil if name=value may pass, else a
// *Decision that says why not. Check does not count variables and does not
// know about duplicates: an SSH server collects requests in an Env, which
// does. A nil *Policy is the zero Policy.
func (p *Policy) Check(name, value string) error {
	if p == nil {
		p = new(Policy)
	}
	if d, ok := p.check(name, value, false); !ok {
		e := d // declared here so that only a refusal allocates
		e.Index = -1
		return &e
	}
	return nil
}

// Filter decides a whole environment, a list of "NAME=value" entries as
// os.Environ returns it. It returns the entries that pass, in their input
// order, and one Decision for every entry that does not appear in kept
// under its own name, in input order.
//
// Duplicates resolve deterministically: the last entry for a name wins, as
// in os/exec, and earlier ones are dropped with ReasonDuplicate, even when
// the last one is then dropped too (then the name is absent: an earlier
// value the caller overrode never comes back). glibc's getenv would pick
// the first one; passing only one avoids the disagreement.
//
// kept is never nil, so that exec.Cmd.Env = kept means "exactly these"
// even when nothing passes (a nil Env would inherit the parent's). A nil
// *Policy is the zero Policy.
func (p *Policy) Filter(env []string) (kept []string, dropped []Decision) {
	if p == nil {
		p = new(Policy)
	}
	maxVars := p.maxVars()
	kept = make([]string, 0, min(len(env), maxVars))

	// Where each name occurs last.
	last := make(map[string]int, len(env))
	for i, kv := range env {
		if name, _, ok := strings.Cut(kv, "="); ok {
			last[name] = i
		}
	}
	// Which PyInstaller variables have a saved original.
	var hasOrig [len(pyInstallerVars)]bool
	if p.RestorePyInstaller {
		for k, n := range pyInstallerVars {
			_, hasOrig[k] = last[n+origSuffix]
		}
	}

	drop := func(d Decision) {
		if dropped == nil {
			// At most one decision per remaining entry: one allocation
			// instead of a chain of growing ones.
			dropped = make([]Decision, 0, len(env)-d.Index)
		}
		dropped = append(dropped, d)
	}

	for i, kv := range env {
		name, value, ok := strings.Cut(kv, "=")
		if !ok {
			drop(Decision{Index: i, Reason: ReasonMalformed})
			continue
		}
		if last[name] != i {
			drop(Decision{Index: i, Name: name, Reason: ReasonDuplicate})
			continue
		}
		restoreAs := ""
		if p.RestorePyInstaller {
			if k := pyInstallerVar(name); k >= 0 && hasOrig[k] {
				// The bundle's value; the _ORIG entry brings the user's.
				drop(Decision{Index: i, Name: name, Reason: ReasonPyInstaller, Related: name + origSuffix})
				continue
			}
			if k := pyInstallerOrig(name); k >= 0 {
				restoreAs = pyInstallerVars[k]
			}
		}
		if restoreAs != "" {
			if d, ok := p.check(restoreAs, value, true); !ok {
				d.Index, d.Related = i, name
				drop(d)
				continue
			}
		} else if d, ok := p.check(name, value, false); !ok {
			d.Index = i
			drop(d)
			continue
		}
		if len(kept) >= maxVars {
			drop(Decision{Index: i, Name: name, Reason: ReasonTooMany, Limit: maxVars, Size: len(kept)})
			continue
		}
		if restoreAs != "" {
			kept = append(kept, restoreAs+"="+value)
			drop(Decision{Index: i, Name: name, Reason: ReasonPyInstaller, Related: restoreAs})
			continue
		}
		kept = append(kept, kv)
	}
	return kept, dropped
}

// check runs every per-variable check on name=value. restoring skips the
// built-in deny list, for PyInstaller restoration only; Deny still applies.
// It returns the Decision (Index unset) and false if the variable is
// dropped. It does not allocate.
func (p *Policy) check(name, value string, restoring bool) (Decision, bool) {
	if !restoring {
		if r := deniedRule(name); r != nil && !(p.OwnEnvironment && r.Group.RemoteOnly()) {
			return Decision{Name: name, Reason: ReasonDenied, Rule: *r}, false
		}
	}
	// The length before any pattern: it bounds their work on a hostile
	// name (the built-in list above is a binary search, linear in it).
	if n := p.maxNameLen(); len(name) > n {
		return Decision{Name: name, Reason: ReasonNameTooLong, Limit: n, Size: len(name)}, false
	}
	for _, pat := range p.Deny {
		if matchFold(pat, name) {
			return Decision{Name: name, Reason: ReasonDenied, Rule: DenyRule{
				Pattern: pat, Group: GroupPolicy, Why: "listed in Policy.Deny", Source: "Policy.Deny",
			}}, false
		}
	}
	if !validName(name) {
		return Decision{Name: name, Reason: ReasonInvalidName}, false
	}
	if !p.allowed(name) {
		return Decision{Name: name, Reason: ReasonNotAllowed}, false
	}
	if strings.IndexByte(value, 0) >= 0 {
		return Decision{Name: name, Reason: ReasonNUL}, false
	}
	if n := p.maxValueLen(); len(value) > n {
		return Decision{Name: name, Reason: ReasonValueTooLong, Limit: n, Size: len(value)}, false
	}
	if isFunction(value) {
		return Decision{Name: name, Reason: ReasonFunction}, false
	}
	if !safeValue(name, value) {
		return Decision{Name: name, Reason: ReasonUnsafeValue}, false
	}
	return Decision{}, true
}

// allowed reports whether an allow pattern matches name.
func (p *Policy) allowed(name string) bool {
	for _, pat := range p.Allow {
		if Match(pat, name) {
			return true
		}
	}
	if p.PTY {
		for _, pat := range p.PTYAllow {
			if Match(pat, name) {
				return true
			}
		}
	}
	return false
}
