package envsanitize_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/dockssh/dockssh/envsanitize"
)

// desktopEnv is a realistic 60-variable environment: a Linux desktop
// session with a developer's tools, a LS_COLORS of real size, and what a
// PyInstaller bundle adds.
func desktopEnv() []string {
	env := []string{
		"HOME=/home/ada",
		"USER=ada",
		"LOGNAME=ada",
		"SHELL=/bin/bash",
		"PATH=/home/ada/.local/bin:/home/ada/go/bin:/usr/local/go/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin:/usr/games:/usr/local/games:/snap/bin",
		"PWD=/home/ada/src/dockssh",
		"OLDPWD=/home/ada/src",
		"TERM=xterm-256color",
		"COLORTERM=truecolor",
		"LANG=en_US.UTF-8",
		"LANGUAGE=en_US:en",
		"LC_TIME=de_DE.UTF-8",
		"LC_PAPER=de_DE.UTF-8",
		"LC_MEASUREMENT=de_DE.UTF-8",
		"TZ=Europe/Berlin",
		"EDITOR=vim",
		"VISUAL=vim",
		"PAGER=less",
		"LESS=-R",
		"LS_COLORS=" + strings.Repeat("di=01;34:ln=01;36:*.tar=01;31:", 60),
		"DISPLAY=:0",
		"WAYLAND_DISPLAY=wayland-0",
		"XDG_RUNTIME_DIR=/run/user/1000",
		"XDG_SESSION_TYPE=wayland",
		"XDG_SESSION_DESKTOP=gnome",
		"XDG_CURRENT_DESKTOP=GNOME",
		"XDG_DATA_DIRS=/usr/share/gnome:/usr/local/share/:/usr/share/",
		"XDG_CONFIG_DIRS=/etc/xdg/xdg-gnome:/etc/xdg",
		"DBUS_SESSION_BUS_ADDRESS=unix:path=/run/user/1000/bus",
		"SSH_AUTH_SOCK=/run/user/1000/keyring/ssh",
		"GPG_AGENT_INFO=/run/user/1000/gnupg/S.gpg-agent:0:1",
		"DESKTOP_SESSION=gnome",
		"SESSION_MANAGER=local/host:@/tmp/.ICE-unix/2211,unix/host:/tmp/.ICE-unix/2211",
		"GNOME_TERMINAL_SCREEN=/org/gnome/Terminal/screen/1f2e3d",
		"VTE_VERSION=7006",
		"SHLVL=2",
		"HISTSIZE=10000",
		"HISTCONTROL=ignoreboth",
		"GOPATH=/home/ada/go",
		"GOPROXY=https://proxy.golang.org,direct",
		"GOFLAGS=-buildvcs=false",
		"CARGO_HOME=/home/ada/.cargo",
		"NVM_DIR=/home/ada/.nvm",
		"JAVA_HOME=/usr/lib/jvm/java-17-openjdk-amd64",
		"DOCKER_HOST=ssh://ada@build-host",
		"DOCKER_BUILDKIT=1",
		"KUBECONFIG=/home/ada/.kube/config",
		"AWS_PROFILE=dev",
		"HTTPS_PROXY=http://proxy.internal:3128",
		"NO_PROXY=localhost,127.0.0.1,.internal",
		"MAIL=/var/mail/ada",
		"HOSTNAME=workstation",
		"QT_ACCESSIBILITY=1",
		"GTK_MODULES=gail:atk-bridge",
		"_=/usr/bin/env",
		// A PyInstaller bundle's additions.
		"LD_LIBRARY_PATH=/tmp/_MEIx1y2z3:/opt/vendor/lib",
		"LD_LIBRARY_PATH_ORIG=/opt/vendor/lib",
		"SSL_CERT_FILE=/tmp/_MEIx1y2z3/certifi/cacert.pem",
		"_MEIPASS2=/tmp/_MEIx1y2z3",
		"PYTHONPATH=/tmp/_MEIx1y2z3",
	}
	if len(env) != 60 {
		panic(fmt.Sprintf("desktopEnv has %d variables, want 60", len(env)))
	}
	return env
}

func TestDesktopEnv(t *testing.T) {
	p := envsanitize.Helper()
	kept, dropped := p.Filter(desktopEnv())
	// Dropped: the bundle's LD_LIBRARY_PATH (restored from _ORIG, which
	// is consumed), SSL_CERT_FILE, PYTHONPATH, GTK_MODULES and GOFLAGS.
	// PATH, HOME, EDITOR, PAGER, SSH_AUTH_SOCK and the like pass: they are
	// the user's own (Policy.OwnEnvironment).
	if len(kept) != 55 || len(dropped) != 6 {
		t.Errorf("Helper().Filter(desktopEnv()) kept %d, dropped %d (%v), want 55 and 6", len(kept), len(dropped), summarize(dropped))
	}
}

func benchmarkFilter(b *testing.B, p envsanitize.Policy) {
	env := desktopEnv()
	b.ReportAllocs()
	for b.Loop() {
		p.Filter(env)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(len(env)), "ns/var")
}

// BenchmarkFilterHelper60 filters the 60-variable environment with the
// Helper policy: everything passes the allow step, so every variable runs
// every check.
func BenchmarkFilterHelper60(b *testing.B) { benchmarkFilter(b, envsanitize.Helper()) }

// BenchmarkFilterSSHSession60 filters it with the SSH session policy:
// most names stop at the allow step.
func BenchmarkFilterSSHSession60(b *testing.B) {
	p := envsanitize.SSHSession()
	p.PTY = true
	benchmarkFilter(b, p)
}

func BenchmarkCheck(b *testing.B) {
	p := envsanitize.SSHSession()
	p.PTY = true
	cases := []struct{ name, key, value string }{
		{"allowed LANG", "LANG", "en_US.UTF-8"},
		{"allowed LC_TIME", "LC_TIME", "de_DE.UTF-8"},
		{"denied LD_PRELOAD", "LD_PRELOAD", "/tmp/x.so"},
		{"denied PYTHONSTARTUP", "PYTHONSTARTUP", "/tmp/x.py"},
		{"denied EDITOR (remote only)", "EDITOR", "vim"},
		{"not allowed FOO", "FOO", "bar"},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				_ = p.Check(c.key, c.value)
			}
		})
	}
}

// BenchmarkMatchGeneral is a pattern that is neither a literal nor a
// prefix and '*': the backtracking path of Match.
func BenchmarkMatchGeneral(b *testing.B) {
	name := "HTTPS_PROXY_FOR_THE_BUILD_FARM"
	b.ReportAllocs()
	for b.Loop() {
		envsanitize.Match("*_PROXY*F?RM", name)
	}
}
