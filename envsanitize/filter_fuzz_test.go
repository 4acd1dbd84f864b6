package envsanitize_test

import (
	"regexp"
	"strings"
	"testing"

	"github.com/dockssh/dockssh/envsanitize"
)

var validNameRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// FuzzFilter feeds Filter arbitrary environments (entries separated by
// '\n') under arbitrary allow and deny patterns (separated by ',') and
// checks the promises: no panic, no denied name ever kept (but the
// documented PyInstaller restoration, and the remote-only rules in the
// own environment), every kept variable valid and
// unique, the limits held, and every input entry accounted for exactly
// once.
func FuzzFilter(f *testing.F) {
	f.Add("PATH=/usr/bin\nHOME=/root\nLD_PRELOAD=/tmp/x.so\nLANG=C", "*", "", uint8(0))
	f.Add("LD_LIBRARY_PATH=/tmp/_MEI1:/a\nLD_LIBRARY_PATH_ORIG=/a\nLIBPATH_ORIG=/b", "*", "", uint8(2))
	f.Add("BASH_FUNC_ls%%=() { :; }\nX=() { id; }\nTZ=/etc/shadow\nLANG=../x", "*,?*", "", uint8(0))
	f.Add("A=1\nA=2\nnoequals\n=x\nB\x00=1\nC=a\x00b", "*", "B*", uint8(4))
	f.Add("TERM=xterm\nLC_ALL=C\nLANG=en_US.UTF-8", "LANG,LC_*", "", uint8(1))
	f.Add("ld_preload=x\nPythonPath=y\nSsl_Cert_File=z", "*", "", uint8(0))
	f.Add("PATH=/usr/bin\nHOME=/root\nEDITOR=vi\nGIT_SSH_COMMAND=x\nnpm_config_script_shell=y", "*", "", uint8(8))
	f.Fuzz(func(t *testing.T, envBlob, allowBlob, denyBlob string, flags uint8) {
		var env []string
		if envBlob != "" {
			env = strings.Split(envBlob, "\n")
		}
		p := envsanitize.Policy{
			Allow:              splitNonEmpty(allowBlob),
			PTYAllow:           []string{"TERM", "*"},
			PTY:                flags&1 != 0,
			RestorePyInstaller: flags&2 != 0,
			OwnEnvironment:     flags&8 != 0,
			Deny:               splitNonEmpty(denyBlob),
		}
		if flags&4 != 0 {
			p.MaxVars = 3
			p.MaxNameLen = 8
			p.MaxValueLen = 8
		}
		maxVars, maxName, maxValue := envsanitize.DefaultMaxVars, envsanitize.DefaultMaxNameLen, envsanitize.DefaultMaxValueLen
		if flags&4 != 0 {
			maxVars, maxName, maxValue = 3, 8, 8
		}

		kept, dropped := p.Filter(env)

		if kept == nil {
			t.Fatal("kept is nil")
		}
		if len(kept) > maxVars {
			t.Fatalf("kept %d variables, limit %d", len(kept), maxVars)
		}
		// Values of the _ORIG entries Filter may restore from.
		orig := map[string]string{}
		for _, kv := range env {
			if n, v, ok := strings.Cut(kv, "="); ok && (n == "LD_LIBRARY_PATH_ORIG" || n == "LIBPATH_ORIG") {
				orig[strings.TrimSuffix(n, "_ORIG")] = v
			}
		}
		seen := map[string]bool{}
		restored := 0
		for _, kv := range kept {
			name, value, ok := strings.Cut(kv, "=")
			if !ok {
				t.Fatalf("kept %q without '='", kv)
			}
			if seen[name] {
				t.Fatalf("kept %q twice", name)
			}
			seen[name] = true
			wasRestored := false
			if r, denied := envsanitize.Denied(name); denied && !(p.OwnEnvironment && r.Group.RemoteOnly()) {
				v, isOrig := orig[name]
				if !p.RestorePyInstaller || !isOrig || v != value {
					t.Fatalf("kept denied %q (rule %q)", kv, r.Pattern)
				}
				wasRestored = true
				restored++
			}
			for _, pat := range p.Deny {
				if envsanitize.Match(asciiUpper(pat), asciiUpper(name)) {
					t.Fatalf("kept %q, denied by Policy.Deny %q", kv, pat)
				}
			}
			if !validNameRE.MatchString(name) || len(name) > maxName {
				t.Fatalf("kept invalid name %q", name)
			}
			if !allowedBy(p, name) {
				t.Fatalf("kept %q, which no allow pattern matches", name)
			}
			if strings.ContainsRune(value, 0) || len(value) > maxValue || strings.HasPrefix(value, "()") {
				t.Fatalf("kept unsafe value in %q", kv)
			}
			if err := p.Check(name, value); err != nil && !wasRestored {
				t.Fatalf("kept %q, but Check says %v", kv, err)
			}
		}
		// Accounting: every input entry is either kept as is, or has
		// exactly one decision; a restored variable's _ORIG entry has one.
		indexes := map[int]bool{}
		for _, d := range dropped {
			if d.Index < 0 || d.Index >= len(env) || indexes[d.Index] {
				t.Fatalf("decision with bad or repeated index: %+v", d)
			}
			indexes[d.Index] = true
			if d.Reason < envsanitize.ReasonMalformed || d.Reason > envsanitize.ReasonTooMany {
				t.Fatalf("decision with unknown reason: %+v", d)
			}
			if d.String() == "" {
				t.Fatalf("decision without explanation: %+v", d)
			}
		}
		if got, want := len(kept)+len(dropped)-restored, len(env); got != want {
			t.Fatalf("kept %d + dropped %d - restored %d = %d, want %d entries", len(kept), len(dropped), restored, got, want)
		}
	})
}

func splitNonEmpty(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f != "" {
			out = append(out, f)
		}
	}
	return out
}

func allowedBy(p envsanitize.Policy, name string) bool {
	for _, pat := range p.Allow {
		if envsanitize.Match(pat, name) {
			return true
		}
	}
	if p.PTY {
		for _, pat := range p.PTYAllow {
			if envsanitize.Match(pat, name) {
				return true
			}
		}
	}
	return false
}

func asciiUpper(s string) string {
	b := []byte(s)
	for i, c := range b {
		if 'a' <= c && c <= 'z' {
			b[i] = c - ('a' - 'A')
		}
	}
	return string(b)
}
