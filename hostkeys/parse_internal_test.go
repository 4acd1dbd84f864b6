package hostkeys

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"log/slog"
	"math/big"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

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
		{line: "example.com 1024 35 12345", err: "SSH protocol 1"},
		{line: "@revoked * 2048 35 12345", err: "SSH protocol 1"},
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

// TestParseLineCertificates: what a certificate means on each kind of line,
// compared with OpenSSH 9.2's hostfile.c and sshkey.c.
func TestParseLineCertificates(t *testing.T) {
	key := testPublicKey(t)
	_, caPriv, err := ed25519.GenerateKey(rand.Reader)
	require.NoError(t, err)
	ca, err := ssh.NewSignerFromKey(caPriv)
	require.NoError(t, err)
	cert := &ssh.Certificate{Key: key, CertType: ssh.HostCert, ValidBefore: ssh.CertTimeInfinity}
	require.NoError(t, cert.SignCert(rand.Reader, ca))
	field := cert.Type() + " " + base64.StdEncoding.EncodeToString(cert.Marshal())

	// A plain line keeps it as a certificate, which no plain key equals
	// (sshkey_equal compares types), so the host is known.
	e, err := parseLine("example.com " + field)
	require.NoError(t, err)
	assert.Equal(t, string(cert.Marshal()), e.blob)

	// A @revoked line revokes the certified key (sshkey_equal_public).
	e, err = parseLine("@revoked * " + field)
	require.NoError(t, err)
	assert.Equal(t, string(key.Marshal()), e.blob)
	assert.Nil(t, e.unreadable)

	// A @cert-authority line with a certificate is skipped.
	_, err = parseLine("@cert-authority * " + field)
	assert.ErrorContains(t, err, "certificate on a @cert-authority line")
}

// nonCanonicalRSA returns an RSA public key whose e and n are written with
// extra leading zero bytes, which OpenSSH's sshbuf_get_bignum2 trims.
func nonCanonicalRSA(tb testing.TB) (canonical ssh.PublicKey, blob []byte) {
	tb.Helper()
	priv, err := rsa.GenerateKey(rand.Reader, 1024)
	require.NoError(tb, err)
	canonical, err = ssh.NewPublicKey(&priv.PublicKey)
	require.NoError(tb, err)
	e := big.NewInt(int64(priv.E)).Bytes()
	blob = ssh.Marshal(struct {
		Name string
		E, N []byte
	}{ssh.KeyAlgoRSA, append([]byte{0, 0}, e...), append([]byte{0, 0, 0}, priv.N.Bytes()...)})
	require.NotEqual(tb, canonical.Marshal(), blob)
	return canonical, blob
}

// TestParseLineComparesParsedKeys: every kind of line is compared by the
// parsed key, so bytes that differ for the same key do not matter.
func TestParseLineComparesParsedKeys(t *testing.T) {
	canonical, blob := nonCanonicalRSA(t)
	b64 := base64.StdEncoding.EncodeToString(blob)
	for _, prefix := range []string{"example.com ssh-rsa ", "@cert-authority * ssh-rsa ", "@revoked * ssh-rsa ", "@revoked * rsa-sha2-256 ", "example.com rsa-sha2-512 "} {
		e, err := parseLine(prefix + b64)
		require.NoError(t, err, prefix)
		assert.Equal(t, string(canonical.Marshal()), e.blob, "parseLine(%q...).blob is the canonical key", prefix)
	}

	db := parseDatabase([]string{"f"}, [][]byte{[]byte("@revoked * ssh-rsa " + b64)})
	v := db.verify("example.com", "example.com", "22", canonical, checkOptions{now: time.Now})
	assert.Equal(t, ErrHostKeyRevoked, v.reason)
}

// TestParseLineRevokedNeverSkipped: each way a @revoked line can be
// malformed either still revokes its key, refuses every key for the hosts
// it names, or is one that cannot matter to an x/crypto client.
func TestParseLineRevokedNeverSkipped(t *testing.T) {
	key := testPublicKey(t)
	b64 := base64.StdEncoding.EncodeToString(key.Marshal())
	rsaKey, _ := nonCanonicalRSA(t)
	rsaB64 := base64.StdEncoding.EncodeToString(rsaKey.Marshal())
	shortPriv := &rsa.PublicKey{N: new(big.Int).Lsh(big.NewInt(1), 767), E: 65537}
	shortPriv.N.SetBit(shortPriv.N, 0, 1)
	short, err := ssh.NewPublicKey(shortPriv)
	require.NoError(t, err)
	xmss := base64.StdEncoding.EncodeToString(ssh.Marshal(struct{ Name, Rest string }{"ssh-xmss@openssh.com", "abcd"}))
	tests := []struct {
		line       string
		revokes    ssh.PublicKey // the key revoked, if any
		unreadable string        // scope of an unreadable line: "every host" or the hosts
		skipped    bool
		warn       string // substring of the warning, for lines OpenSSH skips
	}{
		{line: "@revoked * ssh-ed25519 " + b64, revokes: key},
		{line: "@revoked * rsa-sha2-256 " + rsaB64, revokes: rsaKey},
		{line: "@revoked * rsa-sha2-512 " + rsaB64, revokes: rsaKey},
		{line: "@revoked * ssh-rsa " + b64, revokes: key, warn: "does not match the key"},
		{line: "@REVOKED * ssh-ed25519 " + b64, revokes: key, warn: "not spelled @revoked"},
		{line: "@revoked * ssh-rsa " + base64.StdEncoding.EncodeToString(short.Marshal()), revokes: short, warn: "768 bits"},
		{line: "@revoked foo.example.com ssh-ed25519 !!!", unreadable: `hosts matching "foo.example.com"`, warn: "bad base64"},
		{line: "@revoked foo.example.com ssh-ed25519 AAAA", unreadable: `hosts matching "foo.example.com"`},
		{line: "@revoked foo.example.com ssh-ed25519", unreadable: `hosts matching "foo.example.com"`, warn: "missing key"},
		{line: "@revoked foo.example.com", unreadable: `hosts matching "foo.example.com"`, warn: "before the key type"},
		{line: "@revoked |1|bad ssh-ed25519 !!!", unreadable: "every host"},
		{line: "@revoked", unreadable: "every host", warn: "no host field"},
		{line: "@revoked @cert-authority * ssh-ed25519 " + b64, unreadable: "every host"},
		{line: "@revoked * ssh-xmss@openssh.com " + xmss, skipped: true, warn: "never be offered"},
		// A corrupt blob whose type name differs from the line's is not an
		// unsupported key type.
		{line: "@revoked * ssh-ed25519 " + xmss, unreadable: `hosts matching "*"`},
		{line: "@revoked * 1024 35 12345", skipped: true, warn: "SSH protocol 1"},
	}
	for _, tc := range tests {
		e, err := parseLine(tc.line)
		if tc.skipped {
			assert.Nil(t, e, "parseLine(%q) is skipped", tc.line)
			assert.ErrorContains(t, err, tc.warn)
			continue
		}
		require.NotNil(t, e, "parseLine(%q) = nil, %v", tc.line, err)
		assert.Equal(t, markerRevoked, e.marker)
		if tc.warn != "" {
			assert.ErrorContains(t, err, tc.warn, "parseLine(%q)", tc.line)
		} else if tc.revokes != nil {
			assert.NoError(t, err, "parseLine(%q): a line OpenSSH honours too", tc.line)
		}
		if tc.revokes != nil {
			assert.Nil(t, e.unreadable)
			assert.Equal(t, string(tc.revokes.Marshal()), e.blob, "parseLine(%q) revokes the key", tc.line)
			continue
		}
		assert.Error(t, e.unreadable, "parseLine(%q)", tc.line)
		assert.Equal(t, tc.unreadable, e.scope(), "parseLine(%q)", tc.line)
		assert.ErrorContains(t, err, "refusing every key for "+tc.unreadable)
	}
}

// TestShortRSAKeys: RSA keys shorter than OpenSSH's 1024-bit minimum are
// not host keys or CAs here either, and AcceptNew does not record them.
func TestShortRSAKeys(t *testing.T) {
	pub := &rsa.PublicKey{N: new(big.Int).Lsh(big.NewInt(1), 767), E: 65537}
	pub.N.SetBit(pub.N, 0, 1)
	short, err := ssh.NewPublicKey(pub)
	require.NoError(t, err)
	b64 := base64.StdEncoding.EncodeToString(short.Marshal())
	for _, l := range []string{"example.com ssh-rsa " + b64, "@cert-authority * ssh-rsa " + b64} {
		_, err := parseLine(l)
		assert.ErrorContains(t, err, "768 bits is shorter than the 1024 bits OpenSSH requires", "parseLine(%q)", l)
	}

	dir := t.TempDir()
	file := filepath.Join(dir, "known_hosts")
	kh, err := New(&Config{Files: []string{file}, Policy: AcceptNew, Logger: slog.New(slog.DiscardHandler)})
	require.NoError(t, err)
	err = kh.HostKeyCallback()("example.com:22", nil, short)
	assert.ErrorContains(t, err, "not adding example.com to known_hosts: RSA key of 768 bits")
	_, statErr := os.Stat(file)
	assert.ErrorIs(t, statErr, os.ErrNotExist, "nothing was written")
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
	preferred := preferredHostKeyAlgorithms()
	for _, a := range preferred {
		assert.Contains(t, supported, a, "x/crypto implements %s", a)
	}
	assert.NotContains(t, preferred, ssh.KeyAlgoRSA, "no SHA-1 signatures")
	preferred[0] = "changed by a caller"
	assert.NotEqual(t, preferred[0], preferredHostKeyAlgorithms()[0], "each call returns a new slice")
	preferred = preferredHostKeyAlgorithms()

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
			assert.ElementsMatch(t, preferred, got, "always the full list")
			if len(tc.first) > 0 {
				assert.Equal(t, tc.first, got[:len(tc.first)], "known algorithms first")
			}
			if len(tc.first) == 0 {
				assert.Equal(t, preferred, got)
			}
			// The rest keeps the preference order.
			rest := got[len(tc.first):]
			var want []string
			for _, a := range preferred {
				if !slices.Contains(tc.first, a) {
					want = append(want, a)
				}
			}
			assert.Equal(t, want, rest)
		})
	}
}
