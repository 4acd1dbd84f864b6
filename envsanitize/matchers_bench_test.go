package envsanitize

import (
	"strings"
	"testing"

	"github.com/dockssh/dockssh/internal/sshmatch"
)

// realNames are the names of desktopEnv (bench_test.go).
var realNames = []string{"HOME", "USER", "LOGNAME", "SHELL", "PATH", "PWD", "OLDPWD", "TERM", "COLORTERM", "LANG", "LANGUAGE", "LC_TIME", "LC_PAPER", "LC_MEASUREMENT", "TZ", "EDITOR", "VISUAL", "PAGER", "LESS", "LS_COLORS", "DISPLAY", "WAYLAND_DISPLAY", "XDG_RUNTIME_DIR", "XDG_SESSION_TYPE", "XDG_SESSION_DESKTOP", "XDG_CURRENT_DESKTOP", "XDG_DATA_DIRS", "XDG_CONFIG_DIRS", "DBUS_SESSION_BUS_ADDRESS", "SSH_AUTH_SOCK", "GPG_AGENT_INFO", "DESKTOP_SESSION", "SESSION_MANAGER", "GNOME_TERMINAL_SCREEN", "VTE_VERSION", "SHLVL", "HISTSIZE", "HISTCONTROL", "GOPATH", "GOPROXY", "GOFLAGS", "CARGO_HOME", "NVM_DIR", "JAVA_HOME", "DOCKER_HOST", "DOCKER_BUILDKIT", "KUBECONFIG", "AWS_PROFILE", "HTTPS_PROXY", "NO_PROXY", "MAIL", "HOSTNAME", "QT_ACCESSIBILITY", "GTK_MODULES", "_", "LD_LIBRARY_PATH", "LD_LIBRARY_PATH_ORIG", "SSL_CERT_FILE", "_MEIPASS2", "PYTHONPATH"}

func BenchmarkMatchers(b *testing.B) {
	hostileName := strings.Repeat("a", DefaultMaxNameLen)
	cases := []struct {
		name     string
		patterns []string
		names    []string
		fold     bool
	}{
		{"SSHSession allow", []string{"LANG", "LC_*", "TERM"}, realNames, false},
		{"Helper allow *", []string{"*"}, realNames, false},
		{"Deny AWS_* fold", []string{"AWS_*"}, realNames, true},
		{"allow *_PROXY", []string{"*_PROXY"}, realNames, false},
		{"allow LC_?* and *PROXY*", []string{"LC_?*", "*PROXY*"}, realNames, false},
		{"hostile *a*a*a*a*a*a*b vs 256 a", []string{"*a*a*a*a*a*a*b"}, []string{hostileName}, false},
		{"hostile (*a)x100 b vs 256 a", []string{strings.Repeat("*a", 100) + "b"}, []string{hostileName}, false},
		{"hostile * a x100 b vs 256 a", []string{"*" + strings.Repeat("a", 100) + "b"}, []string{hostileName}, false},
	}
	matchers := []struct {
		name string
		fn   func(p, s string, fold bool) bool
	}{
		{"nfa", func(p, s string, fold bool) bool { ok, _ := match(p, s, fold); return ok }},
		{"sshmatch", func(p, s string, fold bool) bool {
			if fold {
				return sshmatch.GlobFold(p, s)
			}
			return sshmatch.Glob(p, s)
		}},
	}
	for _, c := range cases {
		for _, m := range matchers {
			b.Run(c.name+"/"+m.name, func(b *testing.B) {
				b.ReportAllocs()
				n := 0
				for b.Loop() {
					for _, s := range c.names {
						for _, p := range c.patterns {
							if m.fn(p, s, c.fold) {
								n++
							}
						}
					}
				}
				b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(c.names)), "ns/name")
			})
		}
	}
}
