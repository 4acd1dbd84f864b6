package envsanitize_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dockssh/dockssh/envsanitize"
)

// glibcUnsecure is every name of glibc's UNSECURE_ENVVARS
// (sysdeps/generic/unsecvars.h), copied from the source: the current list
// (with GLIBC_TUNABLES, LD_BIND_*, LD_VERBOSE, LD_WARN and the MALLOC_*
// tunables), the names older releases had (LD_HWCAP_MASK,
// LD_USE_LOAD_BIAS), the per-architecture EXTRA_UNSECURE_ENVVARS of
// dl-librecon.h, and MALLOC_CHECK_, which elf/rtld.c erases for setuid
// programs unless /etc/suid-debug exists.
var glibcUnsecure = []string{
	// UNSECURE_ENVVARS, current.
	"GCONV_PATH", "GETCONF_DIR", "GLIBC_TUNABLES", "HOSTALIASES",
	"LD_AUDIT", "LD_BIND_NOT", "LD_BIND_NOW", "LD_DEBUG", "LD_DEBUG_OUTPUT",
	"LD_DYNAMIC_WEAK", "LD_LIBRARY_PATH", "LD_ORIGIN_PATH", "LD_PRELOAD",
	"LD_PROFILE", "LD_SHOW_AUXV", "LD_VERBOSE", "LD_WARN", "LOCALDOMAIN",
	"LOCPATH", "MALLOC_ARENA_MAX", "MALLOC_ARENA_TEST", "MALLOC_MMAP_MAX_",
	"MALLOC_MMAP_THRESHOLD_", "MALLOC_PERTURB_", "MALLOC_TOP_PAD_",
	"MALLOC_TRACE", "MALLOC_TRIM_THRESHOLD_", "NIS_PATH", "NLSPATH",
	"RESOLV_HOST_CONF", "RES_OPTIONS", "TMPDIR", "TZDIR",
	// UNSECURE_ENVVARS, older releases.
	"LD_HWCAP_MASK", "LD_USE_LOAD_BIAS",
	// EXTRA_UNSECURE_ENVVARS.
	"LD_AOUT_LIBRARY_PATH", "LD_AOUT_PRELOAD", "LD_AT_PLATFORM", "LD_PREFER_MAP_32BIT_EXEC",
	// elf/rtld.c.
	"MALLOC_CHECK_",
}

// sudoEnvDelete is sudo's default env_delete list (initial_badenv_table in
// plugins/sudoers/env.c), every platform's entries included, plus entries
// of older releases (Kerberos 4, BASH_FUNC_*, __BASH_FUNC<*). sudo's "*"
// entries are prefixes, tested through concrete names; "*=()*" matches on
// the value and is TestSudoFunctionValue's.
var sudoEnvDelete = []string{
	"IFS", "CDPATH", "LOCALDOMAIN", "RES_OPTIONS", "HOSTALIASES", "NLSPATH",
	"PATH_LOCALE",
	"LD_", "LD_PRELOAD", "LD_ANYTHING", // LD_*
	"_RLD", "_RLD_LIST", "_RLDN32_LIST", // _RLD*
	"SHLIB_PATH",                                               // HP-UX
	"LDR_", "LDR_PRELOAD", "LDR_CNTRL", "LIBPATH", "AUTHSTATE", // AIX
	"DYLD_", "DYLD_INSERT_LIBRARIES", "DYLD_LIBRARY_PATH", // macOS
	"KRB5_CONFIG", "KRB5_CONFIG_EXTRA", "KRB5_KTNAME", // Kerberos 5 (KRB5_CONFIG*)
	"KRB_CONF", "KRB_CONF_REALMS", "KRBCONFDIR", "KRBTKFILE", // Kerberos 4
	"VAR_ACE", "USR_ACE", "DLC_ACE", // SecurID
	"TERMINFO", "TERMINFO_DIRS", "TERMPATH", "TERMCAP",
	"ENV", "BASH_ENV", "PS4", "GLOBIGNORE", "BASHOPTS", "SHELLOPTS",
	"JAVA_TOOL_OPTIONS",
	"PERLIO_DEBUG", // "PERLIO_DEBUG " (sic) in some releases
	"PERLLIB", "PERL5LIB", "PERL5OPT", "PERL5DB",
	"FPATH", "NULLCMD", "READNULLCMD", "ZDOTDIR", "TMPPREFIX",
	"PYTHONHOME", "PYTHONPATH", "PYTHONINSPECT", "PYTHONUSERBASE",
	"RUBYLIB", "RUBYOPT",
	"BASH_FUNC_", "BASH_FUNC_ls%%", "BASH_FUNC_ls()", // BASH_FUNC_*
	"__BASH_FUNC<", "__BASH_FUNC<ls>%%", "__BASH_FUNC<ls>()", // __BASH_FUNC<*
}

// codeLoadingNames are names beyond glibc's and sudo's lists that make a
// runtime, a shell or a common tool load or run code, or change whom it
// trusts, taken from their own documentation, with what docker-py and
// aiodocker drop before running ssh. Prefix rules are tried with concrete
// names. Every policy drops them, Helper's too.
var codeLoadingNames = []string{
	// Interpreters and runtimes.
	"PYTHONSTARTUP", "PYTHONWARNINGS", "PYTHONBREAKPOINT", // PYTHON*
	"PERL5SHELL", // PERL5*
	"NODE_OPTIONS", "NODE_PATH", "NODE_REPL_EXTERNAL_MODULE",
	"JAVA_TOOL_OPTIONS", "_JAVA_OPTIONS", "JDK_JAVA_OPTIONS", "JDK_JAVAC_OPTIONS",
	"DOTNET_STARTUP_HOOKS", "DOTNET_ADDITIONAL_DEPS",
	"CORECLR_ENABLE_PROFILING", "CORECLR_PROFILER", "CORECLR_PROFILER_PATH", "CORECLR_PROFILER_PATH_64",
	"COR_ENABLE_PROFILING", "COR_PROFILER", "COR_PROFILER_PATH",
	"DOTNET_ENABLE_PROFILING", "DOTNET_PROFILER", "DOTNET_PROFILER_PATH",
	"ERL_AFLAGS", "ERL_ZFLAGS", "ERL_FLAGS", "ERL_LIBS", "ELIXIR_ERL_OPTIONS",
	"R_PROFILE", "R_PROFILE_USER", "JULIA_DEPOT_PATH", "JULIA_LOAD_PATH",
	// Shells.
	"PROMPT_COMMAND", "PS0", "PS4", "SHELLOPTS", "BASHOPTS", "BASH_ENV", "ENV",
	// Tools.
	"GIT_SSH", "GIT_SSH_COMMAND", "GIT_PROXY_COMMAND", "GIT_EXEC_PATH", "GIT_EXTERNAL_DIFF", "GIT_TEMPLATE_DIR",
	"GIT_CONFIG", "GIT_CONFIG_COUNT", "GIT_CONFIG_KEY_0", "GIT_CONFIG_VALUE_0", "GIT_CONFIG_PARAMETERS", "GIT_CONFIG_GLOBAL", "GIT_CONFIG_SYSTEM",
	"LESSOPEN", "LESSCLOSE", "LESSKEY", "LESSKEYIN", "LESSKEY_CONTENT",
	"VIMINIT", "EXINIT", "MYVIMRC", "GVIMINIT", "VIMRUNTIME", "VIM",
	"RUSTC_WRAPPER", "RUSTC_WORKSPACE_WRAPPER", "CARGO_BUILD_RUSTC_WRAPPER", "CARGO_BUILD_RUSTC_WORKSPACE_WRAPPER",
	"GOFLAGS",
	"npm_config_script_shell", "npm_config_node_options", "NPM_CONFIG_USERCONFIG",
	// glibc tunables (Looney Tunables, CVE-2023-4911).
	"GLIBC_TUNABLES",
	// Trust: docker-py, aiodocker; node.
	"SSL_CERT_FILE", "SSL_CERT_DIR", "NODE_EXTRA_CA_CERTS", "NODE_TLS_REJECT_UNAUTHORIZED",
}

// remoteOnlyNames are dropped for anyone but the user (an SSH client), and
// pass in the user's own environment (Policy.OwnEnvironment, Helper): the
// pager, editor, browser and askpass the user picked, and what sshd sets
// for a session after, and over, the client's env requests (do_setup_env
// in OpenSSH's session.c).
var remoteOnlyNames = []string{
	"PAGER", "MANPAGER", "GIT_PAGER", "SYSTEMD_PAGER", "LESS", "LESSEDIT",
	"EDITOR", "VISUAL", "GIT_EDITOR", "GIT_SEQUENCE_EDITOR", "SUDO_EDITOR", "SYSTEMD_EDITOR", "FCEDIT",
	"BROWSER", "SSH_ASKPASS", "SSH_ASKPASS_REQUIRE", "GIT_ASKPASS", "SUDO_ASKPASS",
	"USER", "LOGNAME", "LOGIN", "HOME", "PATH", "SHELL", "MAIL",
	"SSH_CLIENT", "SSH_CONNECTION", "SSH_ORIGINAL_COMMAND", "SSH_TTY", "SSH_TUNNEL", "SSH_USER_AUTH",
	"SSH_AUTH_SOCK", "DISPLAY", "XDG_RUNTIME_DIR", "KRB5CCNAME",
}

// permissive are policies that allow every name: the deny list must still
// win under them.
func permissive() map[string]envsanitize.Policy {
	helper := envsanitize.Helper()
	helper.RestorePyInstaller = false
	return map[string]envsanitize.Policy{
		"Allow *":                {Allow: []string{"*"}},
		"Allow * ? and names":    {Allow: []string{"*", "?*", "LD_*", "LD_PRELOAD", "BASH_FUNC_*"}},
		"Helper":                 envsanitize.Helper(),
		"Helper without restore": helper,
		"PTY *":                  {PTY: true, PTYAllow: []string{"*"}},
	}
}

// requireDropped proves name is dropped by the deny list: by Check, by
// Filter and by an Env, under every permissive policy, in upper, lower and
// mixed case; for a remote-only rule, under the policies for someone
// else's variables, while those for the own environment let it pass.
func requireDropped(t *testing.T, name string) {
	t.Helper()
	rule, ok := envsanitize.Denied(name)
	if !ok {
		t.Errorf("Denied(%q) = false, want true", name)
		return
	}
	for pname, p := range permissive() {
		if p.OwnEnvironment && rule.Group.RemoteOnly() {
			requirePasses(t, pname, p, name)
			continue
		}
		for _, n := range []string{name, strings.ToLower(name), mixedCase(name)} {
			err := p.Check(n, "x")
			var d *envsanitize.Decision
			if !errors.As(err, &d) {
				t.Errorf("%s: Check(%q) = %v, want a *Decision", pname, n, err)
				continue
			}
			assert.Equal(t, envsanitize.ReasonDenied, d.Reason, "%s: Check(%q): %v", pname, n, d)

			kept, dropped := p.Filter([]string{n + "=x", "HARMLESS=1"})
			assert.Equal(t, []string{"HARMLESS=1"}, kept, "%s: Filter kept", pname)
			if assert.Len(t, dropped, 1, "%s: Filter(%q) dropped", pname, n) {
				assert.Equal(t, envsanitize.ReasonDenied, dropped[0].Reason, "%s: Filter(%q): %v", pname, n, dropped[0])
				assert.Equal(t, 0, dropped[0].Index)
			}

			e := envsanitize.Env{Policy: p}
			assert.Error(t, e.Set(n, "x"), "%s: Env.Set(%q)", pname, n)
			assert.Equal(t, 0, e.Len())
		}
	}
}

// requirePasses proves the policy p, for the own environment, lets name
// through Check and Filter.
func requirePasses(t *testing.T, pname string, p envsanitize.Policy, name string) {
	t.Helper()
	assert.NoError(t, p.Check(name, "x"), "%s: Check(%q)", pname, name)
	kept, _ := p.Filter([]string{name + "=x"})
	assert.Equal(t, []string{name + "=x"}, kept, "%s: Filter(%q)", pname, name)
}

func mixedCase(s string) string {
	b := []byte(s)
	for i := range b {
		if i%2 == 1 && 'A' <= b[i] && b[i] <= 'Z' {
			b[i] += 'a' - 'A'
		}
	}
	return string(b)
}

func TestGlibcUnsecureDropped(t *testing.T) {
	for _, name := range glibcUnsecure {
		t.Run(name, func(t *testing.T) { requireDropped(t, name) })
	}
}

func TestSudoEnvDeleteDropped(t *testing.T) {
	for _, name := range sudoEnvDelete {
		t.Run(name, func(t *testing.T) { requireDropped(t, name) })
	}
}

func TestCodeLoadingNamesDropped(t *testing.T) {
	for _, name := range codeLoadingNames {
		t.Run(name, func(t *testing.T) {
			requireDropped(t, name)
			if r, _ := envsanitize.Denied(name); r.Group.RemoteOnly() {
				t.Errorf("%q is denied by the remote-only rule %q: the own environment would pass it", name, r.Pattern)
			}
		})
	}
}

// TestRemoteOnlyNames: denied for an SSH session whatever its Allow, kept
// in the user's own environment.
func TestRemoteOnlyNames(t *testing.T) {
	for _, name := range remoteOnlyNames {
		t.Run(name, func(t *testing.T) {
			requireDropped(t, name)
			r, _ := envsanitize.Denied(name)
			assert.True(t, r.Group.RemoteOnly(), "%q: rule %q of group %v", name, r.Pattern, r.Group)
			session := envsanitize.SSHSession()
			session.Allow = append(session.Allow, "*")
			e := envsanitize.Env{Policy: session}
			assert.Equal(t, envsanitize.ReasonDenied, reasonOf(t, e.Set(name, "/tmp/evil")))
			h := envsanitize.Helper()
			assert.NoError(t, h.Check(name, "/usr/bin/x"))
		})
	}
}

// TestEveryRuleDropped covers the table itself: each exact name, and each
// prefix with and without a suffix.
func TestEveryRuleDropped(t *testing.T) {
	for _, r := range envsanitize.DenyList() {
		if p, ok := strings.CutSuffix(r.Pattern, "*"); ok {
			requireDropped(t, p)
			requireDropped(t, p+"SUFFIX_1")
			continue
		}
		requireDropped(t, r.Pattern)
	}
}

// TestSudoFunctionValue: sudo's "*=()*" entry drops any variable whose
// value starts with "()", whatever its name, under every policy.
func TestSudoFunctionValue(t *testing.T) {
	for pname, p := range permissive() {
		for _, v := range []string{"() { :; }; echo pwned", "() { echo hi; }", "()"} {
			err := p.Check("HARMLESS", v)
			var d *envsanitize.Decision
			require.ErrorAs(t, err, &d, "%s: Check(HARMLESS, %q)", pname, v)
			assert.Equal(t, envsanitize.ReasonFunction, d.Reason)
			kept, dropped := p.Filter([]string{"HARMLESS=" + v})
			assert.Empty(t, kept)
			require.Len(t, dropped, 1)
			assert.Equal(t, envsanitize.ReasonFunction, dropped[0].Reason)
		}
	}
}

// TestDenyListTable checks the table's shape: patterns upper case, exact
// names sorted and unique, prefixes ending in one '*', every entry with a
// group, a reason and a source.
func TestDenyListTable(t *testing.T) {
	rules := envsanitize.DenyList()
	require.NotEmpty(t, rules)
	seen := map[string]bool{}
	prevExact := ""
	inPrefixes := false
	for _, r := range rules {
		assert.Equal(t, strings.ToUpper(r.Pattern), r.Pattern, "pattern %q not upper case", r.Pattern)
		assert.False(t, seen[r.Pattern], "pattern %q listed twice", r.Pattern)
		seen[r.Pattern] = true
		assert.NotEmpty(t, r.Why, r.Pattern)
		assert.NotEmpty(t, r.Source, r.Pattern)
		assert.NotEqual(t, "unknown group", r.Group.String(), r.Pattern)
		assert.NotEqual(t, envsanitize.GroupPolicy, r.Group, r.Pattern)
		star := strings.Count(r.Pattern, "*")
		if star == 0 {
			assert.False(t, inPrefixes, "exact %q after the prefix rules", r.Pattern)
			assert.Less(t, prevExact, r.Pattern, "exact names out of order")
			prevExact = r.Pattern
			continue
		}
		inPrefixes = true
		assert.Equal(t, 1, star, r.Pattern)
		assert.True(t, strings.HasSuffix(r.Pattern, "*"), r.Pattern)
	}
	// The list is a copy.
	rules[0].Pattern = "CHANGED"
	assert.NotEqual(t, "CHANGED", envsanitize.DenyList()[0].Pattern)
}

func TestDenied(t *testing.T) {
	tests := []struct {
		name    string
		pattern string // "" means not denied
	}{
		{"LD_PRELOAD", "LD_PRELOAD"},
		{"ld_preload", "LD_PRELOAD"},
		{"LD_TRACE_LOADED_OBJECTS", "LD_*"},
		{"PYTHONPATH", "PYTHONPATH"},
		{"PYTHONDONTWRITEBYTECODE", "PYTHON*"},
		{"BASH_FUNC_x%%", "BASH_FUNC_*"},
		{"_JAVA_OPTIONS", "_JAVA_OPTIONS"},
		{"LUA_INIT_5_4", "LUA_INIT*"},
		{"PATH", "PATH"},
		{"HOME", "HOME"},
		{"npm_config_script_shell", "NPM_CONFIG_*"},
		{"GIT_CONFIG_KEY_0", "GIT_CONFIG*"},
		{"CORECLR_PROFILER_PATH_64", "CORECLR_PROFILER*"},
		{"LANG", ""},
		{"TERM", ""},
		{"LD", ""},
		{"L", ""},
		{"", ""},
		{"ZZZ", ""},
		{"LIBPATH_ORIG", ""},
		{"SSH_AUTH_SOCK", "SSH_AUTH_SOCK"},
		{"KRB5CCNAME", "KRB5CCNAME"},
		{"TZ", ""},
		{"COLORTERM", ""},
		{"GOPATH", ""},
		{"CARGO_TARGET_DIR", ""},
		{"CARGO_HOME", ""},
		{"LESSSECURE", ""},
		{"GIT_DIR", ""},
		{"NODE_ENV", ""},
	}
	for _, tt := range tests {
		r, ok := envsanitize.Denied(tt.name)
		if tt.pattern == "" {
			if ok {
				t.Errorf("Denied(%q) = %q, want not denied", tt.name, r.Pattern)
			}
			continue
		}
		if !ok || r.Pattern != tt.pattern {
			t.Errorf("Denied(%q) = %q, %v, want %q", tt.name, r.Pattern, ok, tt.pattern)
		}
	}
}
