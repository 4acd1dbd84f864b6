package authn

import (
	"net/netip"
	"strings"
	"testing"
	"time"
)

func TestParseKeyOptions(t *testing.T) {
	all := allPermits()
	tests := []struct {
		in   string
		want keyOptions
		err  string
	}{
		{in: "", want: keyOptions{permits: all}},
		{in: "restrict", want: keyOptions{}},
		{in: "restrict,pty,port-forwarding", want: keyOptions{permits: permits{pty: true, portForwarding: true}}},
		{in: "pty,restrict", want: keyOptions{}}, // order matters, as in OpenSSH
		{in: "no-pty,no-user-rc", want: keyOptions{permits: permits{portForwarding: true, agentForwarding: true, x11Forwarding: true}}},
		{in: `command="a \"b\" \c"`, want: keyOptions{permits: all, command: `a "b" \c`}},
		{in: `environment="A=1",environment="B_2=x=y"`, want: keyOptions{permits: all, environment: []string{"A=1", "B_2=x=y"}}},
		{in: `principals="a,b",cert-authority`, want: keyOptions{permits: all, certAuthority: true, principals: []string{"a", "b"}}},
		{in: `permitopen="h:1",permitopen="[::1]:*"`, want: keyOptions{permits: all, permitOpen: []string{"h:1", "[::1]:*"}}},
		{in: `permitlisten="80",permitlisten="localhost:*"`, want: keyOptions{permits: all, permitListen: []string{"80", "localhost:*"}}},
		{in: `tunnel="0"`, want: keyOptions{permits: all, tunnel: "0"}},
		{in: `no-touch-required,verify-required`, want: keyOptions{permits: all, noTouchRequired: true, verifyRequired: true}},
		{in: `expiry-time="20250101Z"`, want: keyOptions{permits: all, expiry: time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)}},
		{in: `expiry-time="20250101123456Z"`, want: keyOptions{permits: all, expiry: time.Date(2025, 1, 1, 12, 34, 56, 0, time.UTC)}},
		{in: "unknown", err: `unknown option "unknown"`},
		{in: "pty=", err: "double quotes"},
		{in: `pty="x"`, err: "takes no value"},
		{in: "command", err: "needs a value"},
		{in: "command=x", err: "double quotes"},
		{in: `command="x`, err: "missing closing quote"},
		{in: `command=""`, err: "empty command"},
		{in: `command="a",command="a"`, err: "given twice"},
		{in: `from="1.2.3.4",from="1.2.3.4"`, err: "given twice"},
		{in: `tunnel="x"`, err: "device number"},
		{in: `environment="1A=x"`, err: "NAME=value"},
		{in: `environment="NOEQUALS"`, err: "NAME=value"},
		{in: `permitopen="80"`, err: "want host:port"},
		{in: `permitopen="h:99999"`, err: "port must be"},
		{in: `permitopen="::1:80"`, err: "brackets"},
		{in: `permitopen="[::1:80"`, err: "brackets"},
		{in: `principals="a"`, err: "only valid with cert-authority"},
		{in: `principals="a,,b",cert-authority`, err: "empty principal"},
		{in: `expiry-time="2025"`, err: "YYYYMMDD"},
		{in: `expiry-time="20251301Z"`, err: "month out of range"},
		{in: "pty,", err: "trailing comma"},
		{in: ",pty", err: "empty option name"},
		{in: `command="a"x`, err: "unexpected"},
		{in: "command=\"a\tb\"", err: "control character"},
		{in: `from="10.0.0.1/8"`, err: "host bits"},
		{in: `from="300.1.1.1"`, err: "malformed address"},
		{in: `from=""`, err: "empty pattern list"},
		{in: `from="a,,b"`, err: "empty pattern"},
	}
	for _, tt := range tests {
		got, err := parseKeyOptions(tt.in)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("parseKeyOptions(%q) error = %v, want %q", tt.in, err, tt.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("parseKeyOptions(%q) error = %v", tt.in, err)
			continue
		}
		got.from = nil
		if !equalOptions(got, tt.want) {
			t.Errorf("parseKeyOptions(%q) = %+v, want %+v", tt.in, got, tt.want)
		}
	}
}

func equalOptions(a, b keyOptions) bool {
	eq := func(x, y []string) bool {
		return strings.Join(x, "\x00") == strings.Join(y, "\x00") && (x == nil) == (y == nil)
	}
	return a.certAuthority == b.certAuthority && a.permits == b.permits && a.command == b.command &&
		eq(a.environment, b.environment) && a.expiry.Equal(b.expiry) && eq(a.principals, b.principals) &&
		eq(a.permitOpen, b.permitOpen) && eq(a.permitListen, b.permitListen) && a.tunnel == b.tunnel &&
		a.noTouchRequired == b.noTouchRequired && a.verifyRequired == b.verifyRequired
}

func TestAddrPatterns(t *testing.T) {
	tests := []struct {
		patterns string
		ip       string
		want     bool
	}{
		{"192.0.2.1", "192.0.2.1", true},
		{"192.0.2.1", "192.0.2.2", false},
		{"192.0.2.0/24", "192.0.2.200", true},
		{"192.0.2.0/24", "192.0.3.1", false},
		{"192.0.2.*", "192.0.2.77", true},
		{"192.0.2.?", "192.0.2.7", true},
		{"192.0.2.?", "192.0.2.77", false},
		{"*,!192.0.2.1", "192.0.2.1", false},
		{"!192.0.2.1,*", "192.0.2.2", true},
		{"!192.0.2.0/24", "198.51.100.1", false}, // only negative: nothing matches
		{"2001:db8::/32", "2001:db8:1::1", true},
		{"2001:db8::/32", "::ffff:192.0.2.1", false},
		{"192.0.2.1", "::ffff:192.0.2.1", true},
		{"2001:DB8::*", "2001:db8::1", true},
		{"localhost", "127.0.0.1", false},
		{"*.example.com", "192.0.2.1", false},
		{"!*.example.com,192.0.2.1", "192.0.2.1", true},
	}
	for _, tt := range tests {
		l, err := parseAddrPatterns(tt.patterns)
		if err != nil {
			t.Errorf("parseAddrPatterns(%q) error %v", tt.patterns, err)
			continue
		}
		if got := l.match(netip.MustParseAddr(tt.ip)); got != tt.want {
			t.Errorf("parseAddrPatterns(%q).match(%s) = %v, want %v", tt.patterns, tt.ip, got, tt.want)
		}
	}
}

func TestParseAuthorizedKeyLine(t *testing.T) {
	const key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBtv4OnnhhYYK7bvAgHM2fWQEz2d/B2glhLtdzPd9OSR"
	tests := []struct {
		line string
		ok   bool
		err  string
	}{
		{key, true, ""},
		{key + " comment with spaces", true, ""},
		{"  \t" + key + "\r", true, ""},
		{`command="ls -l",no-pty ` + key, true, ""},
		{`command="with \" quote and space" ` + key, true, ""},
		{"# " + key, false, ""},
		{"", false, ""},
		{`command="unterminated ` + key, false, "missing closing quote"},
		{"restrict", false, "no key after the options"},
		{"restrict ssh-foo AAAA", false, "unknown key type"},
		{"ssh-rsa " + key[12:], false, "does not match"},
		{"ssh-ed25519 !!!", false, "base64"},
		{"ssh-ed25519 AAAA", false, "bad ssh-ed25519 key"},
		{"ssh-ed25519-cert-v01@openssh.com AAAA", false, "certificates cannot be listed"},
		{"restrict  \t " + key, true, ""},
	}
	for _, tt := range tests {
		l, err := parseAuthorizedKeyLine(tt.line)
		switch {
		case tt.err != "":
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("parseAuthorizedKeyLine(%q) error = %v, want %q", tt.line, err, tt.err)
			}
		case err != nil:
			t.Errorf("parseAuthorizedKeyLine(%q) error = %v", tt.line, err)
		case (l != nil) != tt.ok:
			t.Errorf("parseAuthorizedKeyLine(%q) = %v, want a line: %v", tt.line, l, tt.ok)
		}
	}
}

func TestParseArgon2id(t *testing.T) {
	good := "$argon2id$v=19$m=65536,t=3,p=4$c29tZXNhbHRzb21lc2FsdA$RdescudvJCsgt3ub+b+dWRWJTmaaJObG"
	h, err := parseArgon2id(good)
	if err != nil {
		t.Fatalf("parseArgon2id(%q) error %v", good, err)
	}
	if h.memory != 65536 || h.time != 3 || h.threads != 4 || len(h.salt) != 16 || len(h.key) != 24 {
		t.Errorf("parseArgon2id(%q) = %+v", good, h)
	}
	for _, bad := range []string{
		"$argon2id$v=16$m=65536,t=3,p=4$c29tZXNhbHQ$RdescudvJCsgt3ub+b+dWRWJTmaaJObG",
		"$argon2id$m=65536,t=3,p=4$c29tZXNhbHQ$RdescudvJCsgt3ub+b+dWRWJTmaaJObG",
		"$argon2id$v=19$m=65536,t=3$c29tZXNhbHRzb21lc2FsdA$RdescudvJCsgt3ub+b+dWRWJTmaaJObG",
		"$argon2id$v=19$m=65536,t=3,p=4,p=4$c29tZXNhbHRzb21lc2FsdA$RdescudvJCsgt3ub+b+dWRWJTmaaJObG",
		"$argon2id$v=19$m=65536,t=0,p=4$c29tZXNhbHRzb21lc2FsdA$RdescudvJCsgt3ub+b+dWRWJTmaaJObG",
		"$argon2id$v=19$m=65536,t=3,p=0$c29tZXNhbHRzb21lc2FsdA$RdescudvJCsgt3ub+b+dWRWJTmaaJObG",
		"$argon2id$v=19$m=65536,t=3,p=4$c2FsdA$RdescudvJCsgt3ub+b+dWRWJTmaaJObG",
		"$argon2id$v=19$m=65536,t=3,p=4$c29tZXNhbHRzb21lc2FsdA$c2hvcnQ",
		"$argon2id$v=19$m=65536,t=3,p=4$!!$RdescudvJCsgt3ub+b+dWRWJTmaaJObG",
		"$argon2id$v=19$m=65536,t=3,p=4$c29tZXNhbHRzb21lc2FsdA$RdescudvJCsgt3ub+b+dWRWJTmaaJObG$extra",
	} {
		if _, err := parseArgon2id(bad); err == nil {
			t.Errorf("parseArgon2id(%q) accepted", bad)
		} else if strings.Contains(err.Error(), "Rdescud") {
			t.Errorf("parseArgon2id error quotes the hash: %v", err)
		}
	}
}

// TestArgon2KnownAnswer checks the verifier against a vector of the
// reference argon2 CLI (phc-winner-argon2), as listed in x/crypto's own
// tests: password "password", salt "somesalt", argon2id t=4 m=4096 p=4.
func TestArgon2KnownAnswer(t *testing.T) {
	const phc = "$argon2id$v=19$m=4096,t=4,p=4$c29tZXNhbHQ$FF25czqfTuQ+3zPFCb6WuTTVBaTvszxa"
	h, err := parseArgon2id(phc)
	if err != nil {
		t.Fatal(err)
	}
	if !h.verify([]byte("password")) {
		t.Errorf("reference hash %q does not verify", phc)
	}
	if h.verify([]byte("passwore")) {
		t.Error("wrong password verifies")
	}
	if got := h.String(); got != phc {
		t.Errorf("String() = %q, want %q", got, phc)
	}
}

func TestPenaltyBoxBounded(t *testing.T) {
	now := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	b, err := newPenaltyBox(&PenaltyConfig{MaxSources: 100}, func() time.Time { return now }, discardLogger())
	if err != nil {
		t.Fatal(err)
	}
	for i := range 100000 {
		b.add(addrOf(netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)})), 5*time.Second)
		if n := b.size(); n > 100 {
			t.Fatalf("after %d sources the box holds %d entries, want <= 100", i+1, n)
		}
	}
	now = now.Add(time.Hour)
	b.add(addrOf(netip.MustParseAddr("192.0.2.1")), time.Second)
	if n := b.size(); n != 1 {
		t.Errorf("after all penalties expired size = %d, want 1", n)
	}
}
