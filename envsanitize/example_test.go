package envsanitize_test

import (
	"errors"
	"fmt"

	"github.com/dockssh/dockssh/envsanitize"
)

// A program about to run "ssh ... docker system dial-stdio" cleans its own
// environment. This one runs inside a PyInstaller bundle, which pointed
// LD_LIBRARY_PATH and SSL_CERT_FILE into the bundle (docker/compose#7686).
func ExampleHelper() {
	environ := []string{ // os.Environ() in a real program
		"HOME=/home/ada",
		"PATH=/usr/local/bin:/usr/bin:/bin",
		"LANG=en_US.UTF-8",
		"SSH_AUTH_SOCK=/run/user/1000/ssh-agent.sock",
		"LD_LIBRARY_PATH=/tmp/_MEIx1y2z3:/opt/vendor/lib",
		"LD_LIBRARY_PATH_ORIG=/opt/vendor/lib",
		"SSL_CERT_FILE=/tmp/_MEIx1y2z3/certifi/cacert.pem",
		"PYTHONPATH=/tmp/_MEIx1y2z3",
		"BASH_FUNC_greet%%=() {  echo hi\n}",
	}

	p := envsanitize.Helper()
	kept, dropped := p.Filter(environ)
	// cmd := exec.Command("ssh", "--", "docker-host", "docker", "system", "dial-stdio")
	// cmd.Env = kept
	for _, kv := range kept {
		fmt.Println("keep", kv)
	}
	for _, d := range dropped {
		fmt.Printf("drop %s (%s)\n", d.Name, d.Reason)
	}
	// Output:
	// keep HOME=/home/ada
	// keep PATH=/usr/local/bin:/usr/bin:/bin
	// keep LANG=en_US.UTF-8
	// keep SSH_AUTH_SOCK=/run/user/1000/ssh-agent.sock
	// keep LD_LIBRARY_PATH=/opt/vendor/lib
	// drop LD_LIBRARY_PATH (pyinstaller)
	// drop LD_LIBRARY_PATH_ORIG (pyinstaller)
	// drop SSL_CERT_FILE (denied)
	// drop PYTHONPATH (denied)
	// drop BASH_FUNC_greet%% (denied)
}

// An SSH server collects a session's "env" requests in an Env and passes
// the result to the process it starts (for dockssh, a docker exec).
func ExampleSSHSession() {
	env := envsanitize.Env{Policy: envsanitize.SSHSession()}

	// What an OpenSSH client with "SendEnv LANG LC_* EDITOR" and a
	// hostile one might ask for.
	requests := [][2]string{
		{"LANG", "de_DE.UTF-8"},
		{"LC_MESSAGES", "C"},
		{"EDITOR", "vim"},
		{"LD_PRELOAD", "/tmp/evil.so"},
		{"LC_ALL", "../../../tmp/evil"},
	}
	for _, r := range requests {
		if err := env.Set(r[0], r[1]); err != nil {
			fmt.Println("refused:", err)
		}
	}

	// A "pty-req" carries the terminal type; TERM passes only now.
	env.Policy.PTY = true
	if err := env.Set("TERM", "xterm-256color"); err != nil {
		fmt.Println("refused:", err)
	}

	fmt.Println(env.Environ())
	// Output:
	// refused: envsanitize: "EDITOR" is denied (programs the user picks): editor crontab -e, git, mailx and others run [POSIX]
	// refused: envsanitize: "LD_PRELOAD" is denied (dynamic loader): shared objects ld.so loads before all others (code in every program) [glibc unsecvars.h]
	// refused: envsanitize: "LC_ALL": value contains '/' or '%', unsafe for a locale or terminal name
	// [LANG=de_DE.UTF-8 LC_MESSAGES=C TERM=xterm-256color]
}

func ExamplePolicy_Check() {
	p := envsanitize.Policy{Allow: []string{"*"}} // even "*" ...
	err := p.Check("BASH_ENV", "/tmp/rc")         // ... never lets a denied name through

	var d *envsanitize.Decision
	if errors.As(err, &d) {
		fmt.Println(d.Reason, d.Rule.Pattern, d.Rule.Group)
	}
	fmt.Println(p.Check("GREETING", "() { echo pwned; }"))
	fmt.Println(p.Check("GREETING", "hello"))
	// Output:
	// denied BASH_ENV shell start-up and behaviour
	// envsanitize: "GREETING": value starts with "()", a bash function definition (Shellshock)
	// <nil>
}

func ExamplePolicy_Filter() {
	p := envsanitize.Policy{
		Allow: []string{"LANG", "LC_*", "TZ", "APP_*"},
		Deny:  []string{"APP_SECRET*"},
	}
	kept, dropped := p.Filter([]string{
		"LANG=C",
		"APP_MODE=dev",
		"APP_SECRET_TOKEN=hunter2",
		"TZ=/etc/shadow",
		"LANG=en_GB.UTF-8", // the last one wins
		"DEBUG=1",
	})
	fmt.Println(kept)
	for _, d := range dropped {
		fmt.Println(d.Index, d)
	}
	// Output:
	// [APP_MODE=dev LANG=en_GB.UTF-8]
	// 0 "LANG" is set again later; the last entry wins
	// 2 "APP_SECRET_TOKEN" is denied by the policy's Deny pattern "APP_SECRET*"
	// 3 "TZ": value is not a safe time zone (a path outside /usr/share/zoneinfo, a '..' element, or a non-printable byte)
	// 5 "DEBUG" matches no allow pattern
}

func ExampleEnv_Set() {
	env := envsanitize.Env{Policy: envsanitize.Policy{Allow: []string{"LC_*"}, MaxVars: 2}}
	fmt.Println(env.Set("LC_TIME", "C"))
	fmt.Println(env.Set("LC_PAPER", "a4"))
	fmt.Println(env.Set("LC_NAME", "x"))     // a third name is one too many
	fmt.Println(env.Set("LC_TIME", "de_DE")) // a known name may change
	fmt.Println(env.Environ(), env.Len())
	// Output:
	// <nil>
	// <nil>
	// envsanitize: "LC_NAME": already 2 variables, the limit
	// <nil>
	// [LC_TIME=de_DE LC_PAPER=a4] 2
}

func ExampleMatch() {
	fmt.Println(envsanitize.Match("LC_*", "LC_ALL"))
	fmt.Println(envsanitize.Match("LC_?", "LC_ALL"))
	fmt.Println(envsanitize.Match("*_PROXY", "HTTPS_PROXY"))
	fmt.Println(envsanitize.Match("lang", "LANG")) // case-sensitive, as sshd
	// Output:
	// true
	// false
	// true
	// false
}

func ExampleDenied() {
	for _, name := range []string{"LD_PRELOAD", "ld_audit", "PYTHONSTARTUP", "PATH", "LANG"} {
		r, ok := envsanitize.Denied(name)
		fmt.Printf("%s: %v %s remote only: %v\n", name, ok, r.Pattern, r.Group.RemoteOnly())
	}
	// Output:
	// LD_PRELOAD: true LD_PRELOAD remote only: false
	// ld_audit: true LD_AUDIT remote only: false
	// PYTHONSTARTUP: true PYTHON* remote only: false
	// PATH: true PATH remote only: true
	// LANG: false  remote only: false
}

func ExampleDenyList() {
	perGroup := map[envsanitize.Group]int{}
	for _, r := range envsanitize.DenyList() {
		perGroup[r.Group]++
	}
	fmt.Println(perGroup[envsanitize.GroupTLS], "TLS rules, for instance SSL_CERT_FILE")
	r, _ := envsanitize.Denied("SSL_CERT_FILE")
	fmt.Println(r.Source)
	// Output:
	// 7 TLS rules, for instance SSL_CERT_FILE
	// docker-py; aiodocker; PyInstaller (pyi_rth_certifi)
}
