package hostkeys

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/ssh"
)

func testPublicKey(tb testing.TB) ssh.PublicKey {
	tb.Helper()
	pub, _, err := ed25519.GenerateKey(rand.Reader)
	require.NoError(tb, err)
	k, err := ssh.NewPublicKey(pub)
	require.NoError(tb, err)
	return k
}

func TestKnownHostsName(t *testing.T) {
	tests := []struct {
		in, name, host, port string
		err                  bool
	}{
		{"example.com:22", "example.com", "example.com", "22", false},
		{"Example.COM:22", "example.com", "example.com", "22", false},
		{"example.com:2222", "[example.com]:2222", "example.com", "2222", false},
		{"example.com", "example.com", "example.com", "22", false},
		{"127.0.0.1:22", "127.0.0.1", "127.0.0.1", "22", false},
		{"127.0.0.1:2222", "[127.0.0.1]:2222", "127.0.0.1", "2222", false},
		{"[::1]:22", "::1", "::1", "22", false},
		{"[::1]:2222", "[::1]:2222", "::1", "2222", false},
		{"[2001:DB8::1]:2222", "[2001:db8::1]:2222", "2001:db8::1", "2222", false},
		{"::1", "::1", "::1", "22", false},
		{"[::1]", "::1", "::1", "22", false},
		{"host:", "host", "host", "22", false},
		{"host:022", "host", "host", "22", false},
		{"host:0", "", "", "", true},
		{"host:ssh", "", "", "", true},
		{"0[", "", "", "", true},
		{"[abc", "", "", "", true},
		{"[a]b]:22", "", "", "", true},
		{"host:65536", "", "", "", true},
		{"", "", "", "", true},
		{":22", "", "", "", true},
	}
	for _, tc := range tests {
		name, host, port, err := knownHostsName(tc.in)
		if (err != nil) != tc.err || name != tc.name || host != tc.host || port != tc.port {
			t.Errorf("knownHostsName(%q) = %q, %q, %q, %v; want %q, %q, %q, error %v",
				tc.in, name, host, port, err, tc.name, tc.host, tc.port, tc.err)
		}
	}
}

// matchPatternOpenSSH is OpenSSH's match_pattern (match.c), transcribed
// literally, recursion and all, as the reference for globMatch.
func matchPatternOpenSSH(s, pattern string) bool {
	for {
		if pattern == "" {
			return s == ""
		}
		if pattern[0] == '*' {
			for pattern != "" && pattern[0] == '*' {
				pattern = pattern[1:]
			}
			if pattern == "" {
				return true
			}
			if pattern[0] != '?' && pattern[0] != '*' {
				for ; s != ""; s = s[1:] {
					if s[0] == pattern[0] && matchPatternOpenSSH(s[1:], pattern[1:]) {
						return true
					}
				}
				return false
			}
			for ; s != ""; s = s[1:] {
				if matchPatternOpenSSH(s, pattern) {
					return true
				}
			}
			return false
		}
		if s == "" {
			return false
		}
		if pattern[0] != '?' && pattern[0] != s[0] {
			return false
		}
		s, pattern = s[1:], pattern[1:]
	}
}

func TestGlobMatch(t *testing.T) {
	tests := []struct {
		p, s string
		want bool
	}{
		{"", "", true},
		{"", "a", false},
		{"*", "", true},
		{"*", "[host]:2222", true},
		{"*.example.com", "foo.example.com", true},
		{"*.example.com", "example.com", false},
		{"*.example.com", "[foo.example.com]:2222", false},
		{"[*.example.com]:*", "[foo.example.com]:2222", true},
		{"fo?.example.com", "foo.example.com", true},
		{"fo?.example.com", "fo.example.com", false},
		{"a*b*c", "axxbyyc", true},
		{"a*b*c", "axxbyy", false},
		{"**a", "a", true},
		{"*?", "", false},
		{"*?", "x", true},
		{"10.0.0.?", "10.0.0.1", true},
		{"10.0.0.?", "10.0.0.10", false},
	}
	for _, tc := range tests {
		if got := globMatch(tc.p, tc.s); got != tc.want {
			t.Errorf("globMatch(%q, %q) = %v, want %v", tc.p, tc.s, got, tc.want)
		}
		if ref := matchPatternOpenSSH(tc.s, tc.p); ref != tc.want {
			t.Errorf("reference match_pattern(%q, %q) = %v, want %v", tc.s, tc.p, ref, tc.want)
		}
	}
}

func TestGlobMatchIsLinear(t *testing.T) {
	// Exponential for a naive backtracking matcher.
	p := strings.Repeat("*a", 40) + "b"
	s := strings.Repeat("a", 4000)
	if globMatch(p, s) {
		t.Errorf("globMatch(%q, %q) = true, want false", p, s)
	}
}

func TestPatternList(t *testing.T) {
	tests := []struct {
		field, name string
		want        bool
	}{
		{"a,b,c", "b", true},
		{"a,b,c", "d", false},
		{"*.example.com,!bad.example.com", "good.example.com", true},
		{"*.example.com,!bad.example.com", "bad.example.com", false},
		{"!bad.example.com,*.example.com", "bad.example.com", false},
		{"!bad.example.com", "good.example.com", false},
		{"A.Example.COM", "a.example.com", true},
		{"a,,b", "", true},
		{"!", "x", false},
	}
	for _, tc := range tests {
		if got := parsePatternList(tc.field).match(tc.name); got != tc.want {
			t.Errorf("parsePatternList(%q).match(%q) = %v, want %v", tc.field, tc.name, got, tc.want)
		}
	}
}

func TestParseLine(t *testing.T) {
	key := testPublicKey(t)
	b64 := base64.StdEncoding.EncodeToString(key.Marshal())
	salt := make([]byte, 20)
	hashedField := encodeHashedName(salt, "example.com")
	tests := []struct {
		line    string
		marker  marker
		hosts   string
		nilLine bool   // blank or comment
		err     string // substring of the error
	}{
		{line: "example.com ssh-ed25519 " + b64, hosts: "example.com"},
		{line: "example.com ssh-ed25519 " + b64 + " comment here", hosts: "example.com"},
		{line: "\t  example.com\tssh-ed25519\t" + b64 + "\r", hosts: "example.com"},
		{line: "@cert-authority *.example.com ssh-ed25519 " + b64, marker: markerCA, hosts: "*.example.com"},
		{line: "@revoked * ssh-ed25519 " + b64, marker: markerRevoked, hosts: "*"},
		{line: "@revoked\t\t|1|garbage ssh-ed25519 " + b64, marker: markerRevoked, hosts: "|1|garbage"},
		{line: hashedField + " ssh-ed25519 " + b64, hosts: hashedField},
		{line: "", nilLine: true},
		{line: "   ", nilLine: true},
		{line: "# comment", nilLine: true},
		{line: "  # indented comment", nilLine: true},
		{line: "@bogus example.com ssh-ed25519 " + b64, err: "unknown marker"},
		{line: "@cert-authority @revoked example.com ssh-ed25519 " + b64, err: "one marker"},
		{line: "@cert-authority", err: "missing host"},
		{line: "example.com", err: "before the key type"},
		{line: "example.com # comment", err: "before the key type"},
		{line: "example.com ssh-ed25519", err: "missing key"},
		{line: "example.com ssh-ed25519 !!!", err: "base64"},
		{line: "example.com ssh-ed25519 AAAA", err: "ssh-ed25519 key"},
		{line: "example.com ssh-rsa " + b64, err: "does not match"},
		{line: "|1|abc ssh-ed25519 " + b64, err: "no hash after the salt"},
		{line: "|1|" + base64.StdEncoding.EncodeToString([]byte("short")) + "|" + base64.StdEncoding.EncodeToString(make([]byte, 20)) + " ssh-ed25519 " + b64, err: "20 bytes"},
		{line: "|2|x|y ssh-ed25519 " + b64, err: "|1|"},
		{line: "example.com 1024 35 12345", err: "1024 key"}, // SSH protocol 1
	}
	for _, tc := range tests {
		e, err := parseLine(tc.line)
		switch {
		case tc.err != "":
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("parseLine(%q) error = %v, want one containing %q", tc.line, err, tc.err)
			}
		case tc.nilLine:
			if e != nil || err != nil {
				t.Errorf("parseLine(%q) = %v, %v; want nil, nil", tc.line, e, err)
			}
		default:
			if err != nil {
				t.Errorf("parseLine(%q) error = %v", tc.line, err)
				continue
			}
			if e.marker != tc.marker || e.hosts != tc.hosts || e.blob != string(key.Marshal()) {
				t.Errorf("parseLine(%q) = marker %v hosts %q, want marker %v hosts %q", tc.line, e.marker, e.hosts, tc.marker, tc.hosts)
			}
		}
	}
}

func TestParseLineRejectsCertificates(t *testing.T) {
	key := testPublicKey(t)
	_, caPriv, err := ed25519.GenerateKey(rand.Reader)
	require.NoError(t, err)
	ca, err := ssh.NewSignerFromKey(caPriv)
	require.NoError(t, err)
	cert := &ssh.Certificate{Key: key, CertType: ssh.HostCert, ValidBefore: ssh.CertTimeInfinity}
	require.NoError(t, cert.SignCert(rand.Reader, ca))
	_, err = parseLine("example.com " + cert.Type() + " " + base64.StdEncoding.EncodeToString(cert.Marshal()))
	assert.ErrorContains(t, err, "certificate")
}

func TestDatabaseLookupOrderAndInvalidLines(t *testing.T) {
	k1, k2, k3 := testPublicKey(t), testPublicKey(t), testPublicKey(t)
	l := func(p string, k ssh.PublicKey) string {
		return p + " " + k.Type() + " " + base64.StdEncoding.EncodeToString(k.Marshal())
	}
	f1 := strings.Join([]string{
		l("a.example.com", k1),
		"garbage line",
		l("*.example.com", k2),
		l("a.example.com,a.example.com", k3),
	}, "\n")
	f2 := l("@revoked *", k2) + "\r\n" + l("a.example.com", k2) // CRLF and no final newline
	db := parseDatabase([]string{"f1", "f2"}, [][]byte{[]byte(f1), []byte(f2)})
	require.Len(t, db.invalid, 1)
	assert.Equal(t, "f1", db.invalid[0].file)
	assert.Equal(t, 2, db.invalid[0].line)

	got := db.lookup("a.example.com")
	var where []string
	for _, e := range got {
		where = append(where, e.file+":"+string(rune('0'+e.line)))
	}
	assert.Equal(t, []string{"f1:1", "f1:3", "f1:4", "f2:2"}, where, "file and line order, each line once")
	assert.Contains(t, db.revoked, string(k2.Marshal()))
	assert.Empty(t, db.lookup("b.example.org"))
}

func TestHostKeyAlgorithmsOrder(t *testing.T) {
	supported := ssh.SupportedAlgorithms().HostKeys
	for _, a := range preferredHostKeyAlgorithms {
		assert.Contains(t, supported, a, "x/crypto implements %s", a)
	}
	assert.NotContains(t, preferredHostKeyAlgorithms, ssh.KeyAlgoRSA, "no SHA-1 signatures")

	parse := func(lines ...string) *database {
		return parseDatabase([]string{"f"}, [][]byte{[]byte(strings.Join(lines, "\n"))})
	}
	line := func(p string, k ssh.PublicKey) string {
		return p + " " + k.Type() + " " + base64.StdEncoding.EncodeToString(k.Marshal())
	}
	ed := testPublicKey(t)
	rsaPriv, err := rsa.GenerateKey(rand.Reader, 2048)
	require.NoError(t, err)
	rsaKey, err := ssh.NewPublicKey(&rsaPriv.PublicKey)
	require.NoError(t, err)
	ecPriv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	ecdsaKey, err := ssh.NewPublicKey(&ecPriv.PublicKey)
	require.NoError(t, err)

	tests := []struct {
		name  string
		db    *database
		first []string
	}{
		{"unknown host", parse(), nil},
		{"ecdsa known", parse(line("h", ecdsaKey)), []string{ssh.CertAlgoECDSA256v01, ssh.KeyAlgoECDSA256}},
		{"rsa known", parse(line("h", rsaKey)), []string{ssh.CertAlgoRSASHA512v01, ssh.CertAlgoRSASHA256v01, ssh.KeyAlgoRSASHA512, ssh.KeyAlgoRSASHA256}},
		{"rsa and ed25519 known", parse(line("h", rsaKey), line("h", ed)), []string{ssh.CertAlgoED25519v01, ssh.CertAlgoRSASHA512v01, ssh.CertAlgoRSASHA256v01, ssh.KeyAlgoED25519, ssh.KeyAlgoRSASHA512, ssh.KeyAlgoRSASHA256}},
		{"CA known", parse(line("@cert-authority h", ed)), []string{ssh.CertAlgoED25519v01, ssh.CertAlgoECDSA256v01, ssh.CertAlgoECDSA384v01, ssh.CertAlgoECDSA521v01, ssh.CertAlgoRSASHA512v01, ssh.CertAlgoRSASHA256v01}},
		{"revoked key is not preferred", parse(line("h", ecdsaKey), line("@revoked *", ecdsaKey)), nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := tc.db.hostKeyAlgorithms(tc.db.lookup("h"))
			assert.ElementsMatch(t, preferredHostKeyAlgorithms, got, "always the full list")
			if len(tc.first) > 0 {
				assert.Equal(t, tc.first, got[:len(tc.first)], "known algorithms first")
			}
			if len(tc.first) == 0 {
				assert.Equal(t, preferredHostKeyAlgorithms, got)
			}
			// The rest keeps the preference order.
			rest := got[len(tc.first):]
			var want []string
			for _, a := range preferredHostKeyAlgorithms {
				if !slices.Contains(tc.first, a) {
					want = append(want, a)
				}
			}
			assert.Equal(t, want, rest)
		})
	}
}
