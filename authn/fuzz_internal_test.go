package authn

import (
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"testing"
)

func discardLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }

func addrOf(ip netip.Addr) net.Addr { return net.TCPAddrFromAddrPort(netip.AddrPortFrom(ip, 1)) }

// FuzzKeyOptions: the options parser never panics, and what it accepts
// holds only valid values.
func FuzzKeyOptions(f *testing.F) {
	for _, s := range []string{
		"", "restrict", "restrict,pty", "no-pty,no-port-forwarding,no-agent-forwarding,no-X11-forwarding",
		`command="/usr/bin/rrsync -ro /srv",restrict`, `from="10.0.0.0/8,!10.1.2.3,*.example.com"`,
		`environment="LANG=C.UTF-8"`, `expiry-time="20301231235959Z"`, `principals="ops,dev",cert-authority`,
		`permitopen="localhost:5432",permitopen="[::1]:*"`, `permitlisten="127.0.0.1:8080"`, `tunnel="1"`,
		`no-touch-required`, `verify-required`, `command="a \"quoted\" b"`, `x=`, `,,`, `"`, `a="\"`,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		o, err := parseKeyOptions(s)
		if err != nil {
			return
		}
		for _, e := range o.environment {
			if n, _, ok := strings.Cut(e, "="); !ok || !validEnvName(n) {
				t.Fatalf("parseKeyOptions(%q) accepted environment %q", s, e)
			}
		}
		if strings.Contains(s, "command") && strings.Contains(strings.ToLower(s), "command=") && o.command == "" {
			// command= with a value must be kept (or refused).
			if strings.Contains(strings.ToLower(s), `command="`) && !strings.Contains(strings.ToLower(s), `command=""`) {
				t.Fatalf("parseKeyOptions(%q) dropped the forced command", s)
			}
		}
		if len(o.principals) > 0 && !o.certAuthority {
			t.Fatalf("parseKeyOptions(%q): principals without cert-authority", s)
		}
		for _, v := range append(append([]string{o.command}, o.permitOpen...), o.permitListen...) {
			if strings.ContainsFunc(v, func(r rune) bool { return r < ' ' || r == 0x7f }) {
				t.Fatalf("parseKeyOptions(%q) accepted a control character in %q", s, v)
			}
		}
		// Accepting an option set means every name in it is known:
		// appending an unknown option must be refused.
		if _, err := parseKeyOptions(s + ",zz-unknown"); err == nil && s != "" {
			t.Fatalf("parseKeyOptions(%q) accepted an unknown option", s+",zz-unknown")
		}
	})
}

// FuzzAuthorizedKeyLine: a whole line, options and key.
func FuzzAuthorizedKeyLine(f *testing.F) {
	const key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBtv4OnnhhYYK7bvAgHM2fWQEz2d/B2glhLtdzPd9OSR user@host"
	for _, s := range []string{key, "restrict " + key, `command="x y" ` + key, "# comment", "", `from="a b" ` + key, `cert-authority,principals="a" ` + key} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		l, err := parseAuthorizedKeyLine(s)
		if err != nil || l == nil {
			return
		}
		if !isKeyType(l.key.Type()) {
			t.Fatalf("parseAuthorizedKeyLine(%q) accepted key type %q", s, l.key.Type())
		}
	})
}

// FuzzAddrPatterns: from= lists never panic, and a list that is exactly
// one address matches that address.
func FuzzAddrPatterns(f *testing.F) {
	for _, s := range []string{"10.0.0.0/8", "!1.2.3.4,*", "2001:db8::/32", "*.example.com", "192.168.?.*", "::ffff:1.2.3.4", "1.2.3.4/33"} {
		f.Add(s, []byte{192, 0, 2, 1})
	}
	f.Fuzz(func(t *testing.T, s string, ipb []byte) {
		l, err := parseAddrPatterns(s)
		if err != nil {
			return
		}
		if ip, ok := netip.AddrFromSlice(ipb); ok {
			l.match(ip)
		}
		if a, err := netip.ParseAddr(s); err == nil && a.Zone() == "" {
			if !l.match(a) {
				t.Fatalf("parseAddrPatterns(%q) does not match %s", s, a)
			}
		}
	})
}

// FuzzParseHash: stored hashes from a file never panic the parser nor
// yield parameters beyond the limits.
func FuzzParseHash(f *testing.F) {
	f.Add("$argon2id$v=19$m=65536,t=3,p=4$c29tZXNhbHRzb21lc2FsdA$RdescudvJCsgt3ub+b+dWRWJTmaaJObG")
	f.Add("$2b$10$N9qo8uLOickgx2ZMRZoMyeIjZAgcfl7p92ldGxad68LJZdL17lhWy")
	f.Fuzz(func(t *testing.T, s string) {
		v, err := parseHash(s)
		if err != nil {
			return
		}
		if h, ok := v.(*argon2Hash); ok && (h.memory > maxArgon2Memory || h.time > maxArgon2Time || len(h.key) > maxArgon2KeyLen) {
			t.Fatalf("parseHash(%q) accepted %+v", s, h)
		}
	})
}

// FuzzUsersFile: a users file never panics the parser, and the promise
// about repeated names holds: a name that starts two non-comment lines
// (the text before the first ':', or the whole line) gets no account.
func FuzzUsersFile(f *testing.F) {
	const argon = "$argon2id$v=19$m=65536,t=3,p=4$c29tZXNhbHRzb21lc2FsdA$RdescudvJCsgt3ub+b+dWRWJTmaaJObGRdescudvJCs"
	const bcrypt = "$2b$10$N9qo8uLOickgx2ZMRZoMyeIjZAgcfl7p92ldGxad68LJZdL17lhWy"
	for _, s := range []string{
		"alice:" + argon + "\nbob:" + bcrypt + "\n",
		"# comment\n\nalice:" + argon + "\nalice:" + bcrypt + "\n",
		"alice:$2b$10$bad\nalice:" + bcrypt + "\n",
		"alice\nalice:" + argon + "\n",
		"  alice:" + argon + "  \r\n\x00",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		users, err := parseUsersLines("users", data, discardLogger())
		if err != nil {
			return
		}
		lines := map[string]int{}
		for _, line := range strings.Split(string(data), "\n") {
			line = strings.TrimSpace(line)
			if line == "" || line[0] == '#' {
				continue
			}
			name, _, _ := strings.Cut(line, ":")
			lines[name]++
		}
		for name, v := range users {
			if v == nil {
				t.Fatalf("parseUsersLines(%q): nil verifier for %q", data, name)
			}
			if lines[name] != 1 {
				t.Fatalf("parseUsersLines(%q) kept %q, which starts %d lines", data, name, lines[name])
			}
		}
	})
}
