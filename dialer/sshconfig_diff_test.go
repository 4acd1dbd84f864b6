package dialer

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// genConfig writes a random ssh_config from the keywords the dialer reads,
// in the shapes users write them: Host and Match blocks, negation, "=" or
// blanks, any keyword case, first-one-wins between ProxyJump and
// ProxyCommand, "none" for either. No HostName is ever resolved: ssh -G
// only prints the configuration.
func genConfig(r *rand.Rand) string {
	pick := func(s ...string) string { return s[r.IntN(len(s))] }
	keyword := func(k string) string {
		switch r.IntN(3) {
		case 0:
			return strings.ToLower(k)
		case 1:
			return strings.ToUpper(k[:1]) + k[1:]
		}
		return k
	}
	sep := func() string { return pick(" ", "  ", "\t", "=", " = ", "= ") }
	values := map[string][]string{
		"HostName":        {"127.0.0.1", "%h.internal", "Node-%h", "db.example", "%%h-%h"},
		"User":            {"u1", "deploy", "Admin"},
		"Port":            {"22", "2222", "10022"},
		"ProxyJump":       {"none", "hop1", "u@hop2:2200", "hop1,hop2", "ssh://jumper@hop3:2022"},
		"ProxyCommand":    {"none", "nc %h %p", `ssh -W "[%h]:%p" bastion`, "exec  socat - TCP:%h:%p  ", "/usr/bin/aws-ssm %h --port=%p #x", "sh -c 'nc %h %p'"},
		"HostKeyAlias":    {"k1", "Mixed.Case", "%h"},
		"CertificateFile": {"~/.ssh/c1.pub", "/certs/%h-%r.pub"},
		"ProxyUseFdpass":  {"no"},
	}
	keys := slices.Sorted(func(yield func(string) bool) {
		for k := range values {
			if !yield(k) {
				return
			}
		}
	})
	var b strings.Builder
	for range 1 + r.IntN(5) {
		switch r.IntN(4) {
		case 0:
			fmt.Fprintf(&b, "%s %s\n", keyword("Host"), pick("*", "alpha", "beta gamma", "!beta *", "web*", "al?ha", "*.example"))
		case 1:
			fmt.Fprintf(&b, "%s %s\n", keyword("Match"), pick("all", "host alpha,web1", "originalhost beta", "!host gamma", "user deploy", "host *.internal", "originalhost alpha host 127.0.0.1"))
		}
		for range 1 + r.IntN(4) {
			k := keys[r.IntN(len(keys))]
			fmt.Fprintf(&b, "%s%s%s%s\n", pick("  ", "\t", ""), keyword(k), sep(), pick(values[k]...))
		}
	}
	return b.String()
}

// sshG runs the real ssh -G on the config file for alias and returns the
// values of the keywords the dialer reads; ok is false when ssh rejects
// the file.
func sshG(tb testing.TB, home, cfgPath, alias string) (map[string][]string, bool) {
	tb.Helper()
	cmd := exec.Command("ssh", "-G", "-F", cfgPath, "--", alias)
	cmd.Env = []string{"HOME=" + home, "PATH=" + os.Getenv("PATH")}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, false
	}
	got := map[string][]string{}
	for _, line := range strings.Split(string(out), "\n") {
		k, v, _ := strings.Cut(line, " ")
		switch k {
		case "hostname", "user", "port", "proxycommand", "proxyjump", "hostkeyalias", "certificatefile":
			got[k] = append(got[k], v)
		}
	}
	return got, true
}

// dialerView is what the dialer makes of alias under the config at
// cfgPath, in ssh -G's terms.
func dialerView(tb testing.TB, home, cfgPath, alias string) map[string][]string {
	tb.Helper()
	r, err := newResolver(&Config{HomeDir: home, SSHConfigPath: cfgPath})
	require.NoError(tb, err)
	hc, err := r.hostConfig(alias, "")
	require.NoError(tb, err)
	ep, _, err := r.endpoint(alias, "", userFromURL, 0)
	require.NoError(tb, err)
	view := map[string][]string{
		"hostname": {ep.host},
		"user":     {ep.user},
		"port":     {strconv.Itoa(ep.port)},
	}
	if c := hc.ProxyCommand; c != "" && !strings.EqualFold(c, "none") {
		view["proxycommand"] = []string{c}
	}
	if j := hc.ProxyJump; j != "" && !strings.EqualFold(j, "none") {
		view["proxyjump"] = []string{j}
	}
	if ep.hostKeyAlias != "" {
		view["hostkeyalias"] = []string{ep.hostKeyAlias}
	}
	if len(hc.CertificateFiles) > 0 {
		view["certificatefile"] = hc.CertificateFiles
	}
	return view
}

// TestSSHConfigDifferential compares the dialer's reading of generated
// configs with the real ssh -G (OpenSSH 9.2 on the build machines): host
// name (HostName with %h, lower-cased), user, port, ProxyCommand (the rest
// of the line), ProxyJump, HostKeyAlias (lower-cased) and CertificateFile,
// with Host and Match blocks and first-one-wins.
func TestSSHConfigDifferential(t *testing.T) {
	if _, err := exec.LookPath("ssh"); err != nil {
		skipOrFail(t, "no ssh client to compare with")
	}
	// Not parallel: the goroutine tests of the package count a paused
	// test of package dialer as one of the Dialer's.
	home := t.TempDir()
	dir := t.TempDir()
	r := rand.New(rand.NewPCG(20, 0))
	compared := 0
	for i := range 50 {
		cfg := genConfig(r)
		path := filepath.Join(dir, fmt.Sprintf("config%d", i))
		require.NoError(t, os.WriteFile(path, []byte(cfg), 0o600))
		for _, alias := range []string{"alpha", "beta", "web1"} {
			want, ok := sshG(t, home, path, alias)
			if !ok {
				continue
			}
			compared++
			// ProxyJump values are written in ssh's canonical form, but
			// for ssh://, which ssh -G prints as user@host:port.
			if j, ok := want["proxyjump"]; ok {
				want["proxyjump"] = []string{strings.ReplaceAll(j[0], "jumper@hop3:2022", "ssh://jumper@hop3:2022")}
			}
			got := dialerView(t, home, path, alias)
			if !assert.Equal(t, want, got, "alias %s, config:\n%s", alias, cfg) {
				return
			}
		}
	}
	assert.Greater(t, compared, 100, "ssh -G accepted too few of the generated configs to compare")
}
