package envsanitize_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dockssh/dockssh/envsanitize"
)

// reasonOf returns the Reason of a Check result, 0 for nil.
func reasonOf(tb testing.TB, err error) envsanitize.Reason {
	tb.Helper()
	if err == nil {
		return 0
	}
	var d *envsanitize.Decision
	require.ErrorAs(tb, err, &d)
	return d.Reason
}

func TestCheck(t *testing.T) {
	all := envsanitize.Policy{Allow: []string{"*"}}
	ssh := envsanitize.SSHSession()
	sshPTY := envsanitize.SSHSession()
	sshPTY.PTY = true
	small := envsanitize.Policy{Allow: []string{"*"}, MaxNameLen: 4, MaxValueLen: 3}
	deny := envsanitize.Policy{Allow: []string{"*"}, Deny: []string{"AWS_*", "secret"}}

	tests := []struct {
		name        string
		p           *envsanitize.Policy
		key, value  string
		want        envsanitize.Reason
		wantMessage string // substring of the error, if any
	}{
		{"zero policy allows nothing", &envsanitize.Policy{}, "LANG", "C", envsanitize.ReasonNotAllowed, `"LANG" matches no allow pattern`},
		{"nil policy allows nothing", nil, "LANG", "C", envsanitize.ReasonNotAllowed, ""},
		{"allow star", &all, "FOO", "bar", 0, ""},
		{"empty value", &all, "FOO", "", 0, ""},
		{"deny wins over star", &all, "LD_PRELOAD", "/tmp/x.so", envsanitize.ReasonDenied, "dynamic loader"},
		{"deny ignores case", &all, "Ld_Preload", "/tmp/x.so", envsanitize.ReasonDenied, ""},
		{"empty name", &all, "", "x", envsanitize.ReasonInvalidName, "not a valid variable name"},
		{"digit first", &all, "1FOO", "x", envsanitize.ReasonInvalidName, ""},
		{"equals in name", &all, "FOO=BAR", "x", envsanitize.ReasonInvalidName, ""},
		{"NUL in name", &all, "FOO\x00BAR", "x", envsanitize.ReasonInvalidName, `"FOO\x00BAR"`},
		{"dash in name", &all, "FOO-BAR", "x", envsanitize.ReasonInvalidName, ""},
		{"space in name", &all, "FOO BAR", "x", envsanitize.ReasonInvalidName, ""},
		{"non-ASCII name", &all, "FÖÖ", "x", envsanitize.ReasonInvalidName, ""},
		{"Windows name with parentheses", &all, "ProgramFiles(x86)", `C:\Program Files (x86)`, envsanitize.ReasonInvalidName, ""},
		{"underscore only", &all, "_", "x", 0, ""},
		{"digits after first", &all, "_1A2", "x", 0, ""},
		{"NUL in value", &all, "FOO", "a\x00b", envsanitize.ReasonNUL, "NUL"},
		{"function value", &all, "FOO", "() { :; }; id", envsanitize.ReasonFunction, "bash function"},
		{"parens later are fine", &all, "FOO", "x () { :; }", 0, ""},
		{"name too long", &small, "ABCDE", "x", envsanitize.ReasonNameTooLong, "name of 5 bytes exceeds the limit of 4"},
		{"name at limit", &small, "ABCD", "x", 0, ""},
		{"value too long", &small, "A", "abcd", envsanitize.ReasonValueTooLong, "value of 4 bytes exceeds the limit of 3"},
		{"value at limit", &small, "A", "abc", 0, ""},
		{"default name limit", &all, strings.Repeat("N", envsanitize.DefaultMaxNameLen+1), "x", envsanitize.ReasonNameTooLong, ""},
		{"default value limit", &all, "V", strings.Repeat("v", envsanitize.DefaultMaxValueLen+1), envsanitize.ReasonValueTooLong, ""},
		{"default value limit exact", &all, "V", strings.Repeat("v", envsanitize.DefaultMaxValueLen), 0, ""},
		{"LANG ok", &ssh, "LANG", "en_US.UTF-8", 0, ""},
		{"LANG slash", &ssh, "LANG", "../../tmp/x", envsanitize.ReasonUnsafeValue, "'/' or '%'"},
		{"LANG percent", &ssh, "LANG", "%n%n", envsanitize.ReasonUnsafeValue, ""},
		{"LC_ALL slash", &ssh, "LC_ALL", "/tmp/loc", envsanitize.ReasonUnsafeValue, ""},
		{"LC_TERMINAL ok", &ssh, "LC_TERMINAL", "iTerm2", 0, ""},
		{"LANGUAGE percent", &all, "LANGUAGE", "de:%s", envsanitize.ReasonUnsafeValue, ""},
		{"LANGUAGE list ok", &all, "LANGUAGE", "de_DE:de:en", 0, ""},
		{"LINGUAS slash", &all, "LINGUAS", "de/x", envsanitize.ReasonUnsafeValue, ""},
		{"COLORTERM slash", &all, "COLORTERM", "/x", envsanitize.ReasonUnsafeValue, ""},
		{"TERM without pty", &ssh, "TERM", "xterm", envsanitize.ReasonNotAllowed, ""},
		{"TERM with pty", &sshPTY, "TERM", "xterm-256color", 0, ""},
		{"TERM path with pty", &sshPTY, "TERM", "../../tmp/evil", envsanitize.ReasonUnsafeValue, ""},
		{"TERMINFO with pty", &sshPTY, "TERMINFO", "/tmp", envsanitize.ReasonDenied, "terminal database"},
		{"other name in ssh", &sshPTY, "FOO", "x", envsanitize.ReasonNotAllowed, ""},
		{"LD in ssh", &sshPTY, "LD_PRELOAD", "x", envsanitize.ReasonDenied, ""},
		{"lowercase lang not allowed", &ssh, "lang", "C", envsanitize.ReasonNotAllowed, ""},
		{"TZ zone", &all, "TZ", "Europe/Berlin", 0, ""},
		{"TZ colon zone", &all, "TZ", ":Europe/Berlin", 0, ""},
		{"TZ POSIX rule", &all, "TZ", "CET-1CEST,M3.5.0,M10.5.0/3", 0, ""},
		{"TZ zoneinfo path", &all, "TZ", "/usr/share/zoneinfo/UTC", 0, ""},
		{"TZ colon zoneinfo path", &all, "TZ", ":/usr/share/zoneinfo/UTC", 0, ""},
		{"TZ other path", &all, "TZ", "/tmp/evil", envsanitize.ReasonUnsafeValue, "time zone"},
		{"TZ colon other path", &all, "TZ", ":/etc/shadow", envsanitize.ReasonUnsafeValue, ""},
		{"TZ localtime is a path too", &all, "TZ", ":/etc/localtime", envsanitize.ReasonUnsafeValue, ""},
		{"TZ zoneinfo prefix only", &all, "TZ", "/usr/share/zoneinfox/UTC", envsanitize.ReasonUnsafeValue, ""},
		{"TZ dotdot", &all, "TZ", "/usr/share/zoneinfo/../../../etc/shadow", envsanitize.ReasonUnsafeValue, ""},
		{"TZ relative dotdot", &all, "TZ", "../../etc/passwd", envsanitize.ReasonUnsafeValue, ""},
		{"TZ trailing dotdot", &all, "TZ", "Europe/..", envsanitize.ReasonUnsafeValue, ""},
		{"TZ dots in name ok", &all, "TZ", "Etc/a..b", 0, ""},
		{"TZ space", &all, "TZ", "Europe/Ber lin", envsanitize.ReasonUnsafeValue, ""},
		{"TZ control", &all, "TZ", "UTC\n", envsanitize.ReasonUnsafeValue, ""},
		{"TZ non-ASCII", &all, "TZ", "Europe/Zürich", envsanitize.ReasonUnsafeValue, ""},
		{"TZ too long", &all, "TZ", strings.Repeat("A", 4096), envsanitize.ReasonUnsafeValue, ""},
		{"TZ just under PATH_MAX", &all, "TZ", strings.Repeat("A", 4095), 0, ""},
		{"caller deny", &deny, "AWS_SECRET_ACCESS_KEY", "x", envsanitize.ReasonDenied, `Deny pattern "AWS_*"`},
		{"caller deny ignores case", &deny, "Secret", "x", envsanitize.ReasonDenied, ""},
		{"caller deny misses", &deny, "AWS", "x", 0, ""},
		{"PyInstaller var never restored by Check", &envsanitize.Policy{Allow: []string{"*"}, RestorePyInstaller: true}, "LD_LIBRARY_PATH", "/usr/lib", envsanitize.ReasonDenied, ""},
		{"PyInstaller _ORIG denied by LD_*", &all, "LD_LIBRARY_PATH_ORIG", "/usr/lib", envsanitize.ReasonDenied, ""},
		{"LIBPATH_ORIG is ordinary", &all, "LIBPATH_ORIG", "/usr/lib", 0, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.p.Check(tt.key, tt.value)
			if got := reasonOf(t, err); got != tt.want {
				t.Fatalf("Check(%q, %q) = %v, want reason %v", tt.key, tt.value, err, tt.want)
			}
			if err == nil {
				return
			}
			msg := err.Error()
			assert.True(t, strings.HasPrefix(msg, "envsanitize: "), "error %q lacks the package prefix", msg)
			if tt.wantMessage != "" {
				assert.Contains(t, msg, tt.wantMessage)
			}
			var d *envsanitize.Decision
			require.ErrorAs(t, err, &d)
			assert.Equal(t, -1, d.Index)
			assert.Equal(t, tt.key, d.Name)
		})
	}
}

// TestDecisionNeverHoldsValue is the property behind "no secret in any
// error": whatever the reason, the value never appears in the decision.
func TestDecisionNeverHoldsValue(t *testing.T) {
	const secret = "s3cr3t-TOKEN-9f8e7d"
	p := envsanitize.SSHSession()
	p.MaxValueLen = 64
	values := []string{secret, "/" + secret, "()" + secret, secret + "\x00", strings.Repeat(secret, 10)}
	names := []string{"LANG", "LD_PRELOAD", "FOO", "1X", "TZ", "LC_X", "BASH_FUNC_x%%"}
	for _, n := range names {
		for _, v := range values {
			err := p.Check(n, v)
			if err == nil {
				continue
			}
			assert.NotContains(t, err.Error(), secret, "Check(%q, value)", n)
			var d *envsanitize.Decision
			require.ErrorAs(t, err, &d)
			assert.NotContains(t, fmt.Sprintf("%+v", *d), secret)
		}
	}
	// Malformed entries are not echoed at all: an entry without '=' may
	// be a stray secret.
	_, dropped := p.Filter([]string{secret})
	require.Len(t, dropped, 1)
	assert.Equal(t, envsanitize.ReasonMalformed, dropped[0].Reason)
	assert.NotContains(t, dropped[0].String(), secret)
	assert.Empty(t, dropped[0].Name)
}

func TestDecisionStringLongName(t *testing.T) {
	long := strings.Repeat("N", 1000)
	err := (&envsanitize.Policy{Allow: []string{"*"}}).Check(long, "x")
	require.Error(t, err)
	assert.Less(t, len(err.Error()), 200, "a message repeats at most a short prefix of the name")
}

func TestReasonString(t *testing.T) {
	for r := envsanitize.ReasonMalformed; r <= envsanitize.ReasonTooMany; r++ {
		assert.NotContains(t, r.String(), "Reason(", "reason %d has no name", r)
	}
	assert.Equal(t, "Reason(99)", envsanitize.Reason(99).String())
	assert.Equal(t, "unknown group", envsanitize.Group(99).String())
}

// kv turns Filter decisions into "Index:Name:reason" strings for compact
// comparison.
func summarize(ds []envsanitize.Decision) []string {
	out := []string{}
	for _, d := range ds {
		out = append(out, fmt.Sprintf("%d:%s:%s", d.Index, d.Name, d.Reason))
	}
	return out
}

func TestFilter(t *testing.T) {
	all := envsanitize.Policy{Allow: []string{"*"}}
	two := envsanitize.Policy{Allow: []string{"*"}, MaxVars: 2}
	own := envsanitize.Policy{Allow: []string{"*"}, OwnEnvironment: true}
	tests := []struct {
		name        string
		p           *envsanitize.Policy
		env         []string
		wantKept    []string
		wantDropped []string
	}{
		{
			name:        "nil env",
			p:           &all,
			env:         nil,
			wantKept:    []string{},
			wantDropped: []string{},
		},
		{
			name:        "zero policy keeps nothing",
			p:           &envsanitize.Policy{},
			env:         []string{"FOO=/bin", "BAR=/root"},
			wantKept:    []string{},
			wantDropped: []string{"0:FOO:not allowed", "1:BAR:not allowed"},
		},
		{
			name:        "order kept",
			p:           &all,
			env:         []string{"B=2", "A=1", "C=3"},
			wantKept:    []string{"B=2", "A=1", "C=3"},
			wantDropped: []string{},
		},
		{
			name:        "value with equals",
			p:           &all,
			env:         []string{"A=b=c", "E="},
			wantKept:    []string{"A=b=c", "E="},
			wantDropped: []string{},
		},
		{
			name:        "malformed",
			p:           &all,
			env:         []string{"NOEQUALS", "A=1", ""},
			wantKept:    []string{"A=1"},
			wantDropped: []string{"0::malformed", "2::malformed"},
		},
		{
			name:        "windows drive entries are invalid names",
			p:           &all,
			env:         []string{"=C:=C:\\Users", "A=1"},
			wantKept:    []string{"A=1"},
			wantDropped: []string{"0::invalid name"},
		},
		{
			name:        "last wins",
			p:           &all,
			env:         []string{"A=1", "B=2", "A=3"},
			wantKept:    []string{"B=2", "A=3"},
			wantDropped: []string{"0:A:duplicate"},
		},
		{
			name:        "last wins even when the last is dropped",
			p:           &all,
			env:         []string{"LANG=C", "LANG=/tmp/x"},
			wantKept:    []string{},
			wantDropped: []string{"0:LANG:duplicate", "1:LANG:unsafe value"},
		},
		{
			name:        "duplicates are case-sensitive like the environment",
			p:           &all,
			env:         []string{"a=1", "A=2"},
			wantKept:    []string{"a=1", "A=2"},
			wantDropped: []string{},
		},
		{
			name:        "count limit keeps the first",
			p:           &two,
			env:         []string{"A=1", "LD_PRELOAD=x", "B=2", "C=3", "D=4"},
			wantKept:    []string{"A=1", "B=2"},
			wantDropped: []string{"1:LD_PRELOAD:denied", "3:C:too many variables", "4:D:too many variables"},
		},
		{
			name:        "session names from someone else",
			p:           &all,
			env:         []string{"PATH=/tmp/evil", "HOME=/tmp/evil", "EDITOR=/tmp/evil", "A=1"},
			wantKept:    []string{"A=1"},
			wantDropped: []string{"0:PATH:denied", "1:HOME:denied", "2:EDITOR:denied"},
		},
		{
			name:        "session names in the own environment",
			p:           &own,
			env:         []string{"PATH=/usr/bin", "HOME=/home/ada", "EDITOR=vim", "LD_PRELOAD=x"},
			wantKept:    []string{"PATH=/usr/bin", "HOME=/home/ada", "EDITOR=vim"},
			wantDropped: []string{"3:LD_PRELOAD:denied"},
		},
		{
			name:        "mixed",
			p:           &own,
			env:         []string{"PATH=/usr/bin", "BASH_ENV=/tmp/rc", "X=() { :; }", "LANG=en_US.UTF-8", "SSL_CERT_FILE=/b/cacert.pem"},
			wantKept:    []string{"PATH=/usr/bin", "LANG=en_US.UTF-8"},
			wantDropped: []string{"1:BASH_ENV:denied", "2:X:function value", "4:SSL_CERT_FILE:denied"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			kept, dropped := tt.p.Filter(tt.env)
			require.NotNil(t, kept, "kept must never be nil (exec.Cmd.Env = nil inherits everything)")
			assert.Equal(t, tt.wantKept, kept)
			assert.Equal(t, tt.wantDropped, summarize(dropped))
		})
	}
}

func TestFilterNilPolicy(t *testing.T) {
	var p *envsanitize.Policy
	kept, dropped := p.Filter([]string{"A=1"})
	assert.Equal(t, []string{}, kept)
	assert.Equal(t, []string{"0:A:not allowed"}, summarize(dropped))
}

func TestFilterDefaultMaxVars(t *testing.T) {
	env := make([]string, 200)
	for i := range env {
		env[i] = fmt.Sprintf("V%d=x", i)
	}
	kept, dropped := (&envsanitize.Policy{Allow: []string{"*"}}).Filter(env)
	assert.Len(t, kept, envsanitize.DefaultMaxVars)
	assert.Len(t, dropped, 200-envsanitize.DefaultMaxVars)
	assert.Equal(t, envsanitize.ReasonTooMany, dropped[0].Reason)
	assert.Contains(t, dropped[0].String(), "128")

	kept, _ = func() ([]string, []envsanitize.Decision) { p := envsanitize.Helper(); return p.Filter(env) }()
	assert.Len(t, kept, 200, "Helper takes a large desktop environment whole")
}

func TestFilterPyInstaller(t *testing.T) {
	tests := []struct {
		name        string
		restore     bool
		env         []string
		wantKept    []string
		wantDropped []string
	}{
		{
			name:        "restore from _ORIG",
			restore:     true,
			env:         []string{"PATH=/bin", "LD_LIBRARY_PATH=/tmp/_MEI123:/opt/lib", "LD_LIBRARY_PATH_ORIG=/opt/lib"},
			wantKept:    []string{"PATH=/bin", "LD_LIBRARY_PATH=/opt/lib"},
			wantDropped: []string{"1:LD_LIBRARY_PATH:pyinstaller", "2:LD_LIBRARY_PATH_ORIG:pyinstaller"},
		},
		{
			name:        "_ORIG first",
			restore:     true,
			env:         []string{"LD_LIBRARY_PATH_ORIG=/opt/lib", "LD_LIBRARY_PATH=/tmp/_MEI123:/opt/lib"},
			wantKept:    []string{"LD_LIBRARY_PATH=/opt/lib"},
			wantDropped: []string{"0:LD_LIBRARY_PATH_ORIG:pyinstaller", "1:LD_LIBRARY_PATH:pyinstaller"},
		},
		{
			name:        "no _ORIG: the user had none, drop",
			restore:     true,
			env:         []string{"LD_LIBRARY_PATH=/tmp/_MEI123"},
			wantKept:    []string{},
			wantDropped: []string{"0:LD_LIBRARY_PATH:denied"},
		},
		{
			name:        "AIX LIBPATH",
			restore:     true,
			env:         []string{"LIBPATH=/tmp/_MEI1:/usr/lib", "LIBPATH_ORIG=/usr/lib"},
			wantKept:    []string{"LIBPATH=/usr/lib"},
			wantDropped: []string{"0:LIBPATH:pyinstaller", "1:LIBPATH_ORIG:pyinstaller"},
		},
		{
			name:        "restore off",
			restore:     false,
			env:         []string{"LD_LIBRARY_PATH=/tmp/_MEI123:/opt/lib", "LD_LIBRARY_PATH_ORIG=/opt/lib", "LIBPATH_ORIG=/usr/lib"},
			wantKept:    []string{"LIBPATH_ORIG=/usr/lib"},
			wantDropped: []string{"0:LD_LIBRARY_PATH:denied", "1:LD_LIBRARY_PATH_ORIG:denied"},
		},
		{
			name:    "only the two PyInstaller names restore",
			restore: true,
			env: []string{
				"LD_PRELOAD_ORIG=/tmp/evil.so", "BASH_ENV_ORIG=/tmp/rc", "DYLD_INSERT_LIBRARIES_ORIG=/x",
				"PYTHONPATH_ORIG=/x", "SSL_CERT_FILE_ORIG=/x",
			},
			wantKept:    []string{"BASH_ENV_ORIG=/tmp/rc", "SSL_CERT_FILE_ORIG=/x"}, // ordinary, harmless names
			wantDropped: []string{"0:LD_PRELOAD_ORIG:denied", "2:DYLD_INSERT_LIBRARIES_ORIG:denied", "3:PYTHONPATH_ORIG:denied"},
		},
		{
			name:        "restored value still checked",
			restore:     true,
			env:         []string{"LD_LIBRARY_PATH=/tmp/_MEI1", "LD_LIBRARY_PATH_ORIG=() { :; }"},
			wantKept:    []string{},
			wantDropped: []string{"0:LD_LIBRARY_PATH:pyinstaller", "1:LD_LIBRARY_PATH:function value"},
		},
		{
			name:        "duplicate _ORIG: last wins",
			restore:     true,
			env:         []string{"LD_LIBRARY_PATH_ORIG=/a", "LD_LIBRARY_PATH_ORIG=/b"},
			wantKept:    []string{"LD_LIBRARY_PATH=/b"},
			wantDropped: []string{"0:LD_LIBRARY_PATH_ORIG:duplicate", "1:LD_LIBRARY_PATH_ORIG:pyinstaller"},
		},
		{
			name:        "case matters: PyInstaller writes exact names",
			restore:     true,
			env:         []string{"ld_library_path_orig=/a"},
			wantKept:    []string{},
			wantDropped: []string{"0:ld_library_path_orig:denied"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := envsanitize.Helper()
			p.RestorePyInstaller = tt.restore
			kept, dropped := p.Filter(tt.env)
			assert.Equal(t, tt.wantKept, kept)
			assert.Equal(t, tt.wantDropped, summarize(dropped))
			for _, d := range dropped {
				if d.Reason == envsanitize.ReasonPyInstaller {
					assert.Contains(t, d.String(), "PyInstaller")
					assert.NotEmpty(t, d.Related)
				}
			}
		})
	}
}

// TestFilterPyInstallerRespectsPolicy: restoration overrides only the
// built-in deny list; the caller's Deny, the allow patterns and the
// count limit still apply.
func TestFilterPyInstallerRespectsPolicy(t *testing.T) {
	env := []string{"LD_LIBRARY_PATH=/tmp/_MEI1", "LD_LIBRARY_PATH_ORIG=/opt/lib"}

	p := envsanitize.Policy{Allow: []string{"*"}, Deny: []string{"LD_LIBRARY_PATH"}, RestorePyInstaller: true}
	kept, dropped := p.Filter(env)
	assert.Empty(t, kept)
	assert.Equal(t, []string{"0:LD_LIBRARY_PATH:pyinstaller", "1:LD_LIBRARY_PATH:denied"}, summarize(dropped))

	p = envsanitize.Policy{Allow: []string{"PATH"}, RestorePyInstaller: true}
	kept, dropped = p.Filter(env)
	assert.Empty(t, kept)
	assert.Equal(t, []string{"0:LD_LIBRARY_PATH:pyinstaller", "1:LD_LIBRARY_PATH:not allowed"}, summarize(dropped))

	p = envsanitize.Policy{Allow: []string{"*"}, MaxVars: 1, RestorePyInstaller: true}
	kept, dropped = p.Filter(append([]string{"A=1"}, env...))
	assert.Equal(t, []string{"A=1"}, kept)
	assert.Equal(t, []string{"1:LD_LIBRARY_PATH:pyinstaller", "2:LD_LIBRARY_PATH_ORIG:too many variables"}, summarize(dropped))
}

func TestHelperAndSSHSessionAreFresh(t *testing.T) {
	a := envsanitize.Helper()
	a.Allow[0] = "NOTHING"
	assert.Equal(t, "*", envsanitize.Helper().Allow[0], "Helper must not share its slices")
	b := envsanitize.SSHSession()
	b.Allow[0] = "NOTHING"
	assert.Equal(t, "LANG", envsanitize.SSHSession().Allow[0], "SSHSession must not share its slices")
}

func TestDocumentedDefaults(t *testing.T) {
	// The docs promise these; a change must be deliberate.
	assert.Equal(t, 128, envsanitize.DefaultMaxVars)
	h := envsanitize.Helper()
	assert.Equal(t, []string{"*"}, h.Allow)
	assert.True(t, h.RestorePyInstaller)
	assert.True(t, h.OwnEnvironment)
	s := envsanitize.SSHSession()
	assert.Equal(t, []string{"LANG", "LC_*"}, s.Allow)
	assert.Equal(t, []string{"TERM"}, s.PTYAllow)
	assert.False(t, s.PTY)
	assert.False(t, s.RestorePyInstaller)
	assert.False(t, s.OwnEnvironment)
}

func TestCheckAgreesWithFilter(t *testing.T) {
	p := envsanitize.SSHSession()
	p.PTY = true
	for _, kv := range []string{"LANG=C", "LANG=/x", "TERM=xterm", "FOO=1", "LD_PRELOAD=x", "LC_X=()"} {
		name, value, _ := strings.Cut(kv, "=")
		err := p.Check(name, value)
		kept, dropped := p.Filter([]string{kv})
		if err == nil {
			assert.Equal(t, []string{kv}, kept)
			continue
		}
		var d *envsanitize.Decision
		require.True(t, errors.As(err, &d))
		require.Len(t, dropped, 1)
		assert.Equal(t, d.Reason, dropped[0].Reason, kv)
	}
}

// TestNameLengthBeforePatterns: a name longer than MaxNameLen is dropped
// before any Deny, Allow or PTYAllow pattern runs on it, which is what
// bounds the patterns' work on a name from the network. The proof is the
// reason: the Deny pattern would match the name, yet the length refuses it.
func TestNameLengthBeforePatterns(t *testing.T) {
	p := envsanitize.Policy{Allow: []string{"*a*a*a*b"}, PTY: true, PTYAllow: []string{"*"}, Deny: []string{"*a*a*a*a"}}
	for _, n := range []int{envsanitize.DefaultMaxNameLen + 1, 1 << 20} {
		name := strings.Repeat("a", n)
		assert.Equal(t, envsanitize.ReasonNameTooLong, reasonOf(t, p.Check(name, "x")), "len %d", n)
		_, dropped := p.Filter([]string{name + "=x"})
		require.Len(t, dropped, 1)
		assert.Equal(t, envsanitize.ReasonNameTooLong, dropped[0].Reason)
	}
	// At the limit the patterns do run.
	assert.Equal(t, envsanitize.ReasonDenied, reasonOf(t, p.Check(strings.Repeat("a", envsanitize.DefaultMaxNameLen), "x")))
}

// TestHostilePatterns runs the patterns that make OpenSSH's recursive
// match_pattern exponential (and the worst case of the matcher used here,
// a long literal after a '*') against the longest names a Policy lets a
// pattern see. They must give the right answers and finish: a recursive
// matcher would need more than 10^13 steps for the first one.
func TestHostilePatterns(t *testing.T) {
	longest := strings.Repeat("a", envsanitize.DefaultMaxNameLen)
	tests := []struct {
		pattern, name string
		want          bool
	}{
		{"*a*a*a*a*a*a*a*b", longest, false},
		{"*a*a*a*a*a*a*a*b", longest[1:] + "b", true},
		{strings.Repeat("*a", 100) + "b", longest, false},
		{strings.Repeat("*?", 100) + "b", longest, false},
		{"*" + strings.Repeat("a", 200) + "b", longest, false},
		{"*" + strings.Repeat("a", 200) + "b", longest[1:] + "b", true},
		{strings.Repeat("*", 10000) + "b", longest, false},
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for _, tt := range tests {
			p := envsanitize.Policy{Allow: []string{tt.pattern}}
			if got := p.Check(tt.name, "x") == nil; got != tt.want {
				t.Errorf("Check with Allow %.20q... on %.20q... passed = %v, want %v", tt.pattern, tt.name, got, tt.want)
			}
			d := envsanitize.Policy{Allow: []string{"*"}, Deny: []string{tt.pattern}}
			if got := d.Check(tt.name, "x") != nil; got != tt.want {
				t.Errorf("Check with Deny %.20q... on %.20q... denied = %v, want %v", tt.pattern, tt.name, got, tt.want)
			}
		}
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("hostile patterns still running after 10 s: the matcher is not polynomial")
	}
}
