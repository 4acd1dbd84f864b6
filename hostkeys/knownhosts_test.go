package hostkeys_test

import (
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"

	"github.com/dockssh/dockssh/hostkeys"
)

// strictCase is one known_hosts situation, checked with a real x/crypto
// handshake (and, in openssh_test.go, with the real ssh client).
type strictCase struct {
	name     string
	known    func(k *testKeys, port string) []string // known_hosts lines
	server   func(tb testing.TB, k *testKeys) []ssh.Signer
	address  func(port string) string // dialed address (checked name)
	want     error                    // nil, or the HostKeyError reason
	openssh  error                    // what OpenSSH does, when it differs from want
	wantText []string                 // substrings of the error message
	config   func(*hostkeys.Config)   // changes to the Config, if any
	sshOpts  []string                 // the same changes as ssh options, for OpenSSH
}

// newKnownHosts returns a strict KnownHosts on file with tc's Config changes.
func (tc strictCase) newKnownHosts(tb testing.TB, file string) *hostkeys.KnownHosts {
	tb.Helper()
	cfg := &hostkeys.Config{Files: []string{file}, Logger: discardLogger()}
	if tc.config != nil {
		tc.config(cfg)
	}
	kh, err := hostkeys.New(cfg)
	require.NoError(tb, err)
	return kh
}

func plainServer(pick func(k *testKeys) []ssh.Signer) func(testing.TB, *testKeys) []ssh.Signer {
	return func(_ testing.TB, k *testKeys) []ssh.Signer { return pick(k) }
}

func at(host string) func(string) string {
	return func(port string) string { return net.JoinHostPort(host, port) }
}

// at22 dials the server but checks the name as port 22.
func at22(host string) func(string) string {
	return func(string) string { return net.JoinHostPort(host, "22") }
}

var (
	year     = 365 * 24 * time.Hour
	validNow = func(tb testing.TB, s, ca ssh.Signer, principals ...string) ssh.Signer {
		return hostCert(tb, s, ca, principals, time.Now().Add(-time.Hour), time.Now().Add(year))
	}
)

func strictCases() []strictCase {
	return append(basicCases(), revocationAndCertificateCases()...)
}

func basicCases() []strictCase {
	ed := plainServer(func(k *testKeys) []ssh.Signer { return []ssh.Signer{k.ed25519} })
	return []strictCase{
		{
			name:    "plain name on port 22",
			known:   func(k *testKeys, _ string) []string { return []string{line("foo.example.com", k.ed25519.PublicKey())} },
			server:  ed,
			address: at22("foo.example.com"),
		},
		{
			name: "bracketed name on a non-22 port",
			known: func(k *testKeys, p string) []string {
				return []string{line("[foo.example.com]:"+p, k.ed25519.PublicKey())}
			},
			server:  ed,
			address: at("foo.example.com"),
		},
		{
			// OpenSSH's "checking without port identifier" retry.
			name:    "port-22 entry covers another port when the key matches",
			known:   func(k *testKeys, _ string) []string { return []string{line("foo.example.com", k.ed25519.PublicKey())} },
			server:  ed,
			address: at("foo.example.com"),
		},
		{
			name:    "port-22 entry covers another port, direct connection",
			known:   func(k *testKeys, _ string) []string { return []string{line("127.0.0.1", k.ed25519.PublicKey())} },
			server:  ed,
			address: at("127.0.0.1"),
		},
		{
			name:     "port-22 entry with another key does not make another port changed",
			known:    func(k *testKeys, _ string) []string { return []string{line("foo.example.com", k.ed25519b.PublicKey())} },
			server:   ed,
			address:  at("foo.example.com"),
			want:     hostkeys.ErrUnknownHost,
			wantText: []string{"ssh-keyscan -H -p "},
		},
		{
			// OpenSSH 9.2 counts a plain key of any type as "changed" and
			// then does not retry without the port.
			name: "port entry of another type, port-22 entry with the key",
			known: func(k *testKeys, p string) []string {
				return []string{line("[foo.example.com]:"+p, k.ecdsa256.PublicKey()), line("foo.example.com", k.ed25519.PublicKey())}
			},
			server:  ed,
			address: at("foo.example.com"),
			want:    hostkeys.ErrHostKeyChanged,
		},
		{
			name: "port entry with only a CA, port-22 entry with the key",
			known: func(k *testKeys, p string) []string {
				return []string{line("@cert-authority [foo.example.com]:"+p, k.ca.PublicKey()), line("foo.example.com", k.ed25519.PublicKey())}
			},
			server:  ed,
			address: at("foo.example.com"),
		},
		{
			name: "changed key on the port entry is not rescued by the port-22 entry",
			known: func(k *testKeys, p string) []string {
				return []string{line("[foo.example.com]:"+p, k.ed25519b.PublicKey()), line("foo.example.com", k.ed25519.PublicKey())}
			},
			server:  ed,
			address: at("foo.example.com"),
			want:    hostkeys.ErrHostKeyChanged,
		},
		{
			name:    "wildcard without brackets covers a non-22 port through the retry",
			known:   func(k *testKeys, _ string) []string { return []string{line("*.example.com", k.ed25519.PublicKey())} },
			server:  ed,
			address: at("foo.example.com"),
		},
		{
			name: "wildcard without brackets, negated for the host",
			known: func(k *testKeys, _ string) []string {
				return []string{line("*.example.com,!foo.example.com", k.ed25519.PublicKey())}
			},
			server:  ed,
			address: at("foo.example.com"),
			want:    hostkeys.ErrUnknownHost,
		},
		{
			name: "host known under another name only",
			known: func(k *testKeys, p string) []string {
				return []string{line("[bar.example.com]:"+p, k.ed25519.PublicKey())}
			},
			server:   ed,
			address:  at("foo.example.com"),
			want:     hostkeys.ErrUnknownHost,
			wantText: []string{"ssh-keyscan -H -p "},
		},
		{
			name:    "upper case in file and in address",
			known:   func(k *testKeys, _ string) []string { return []string{line("FOO.Example.COM", k.ed25519.PublicKey())} },
			server:  ed,
			address: at22("Foo.EXAMPLE.com"),
		},
		{
			name: "several names per line",
			known: func(k *testKeys, p string) []string {
				return []string{line("bar.example.com,[foo.example.com]:"+p+",10.1.2.3", k.ed25519.PublicKey())}
			},
			server:  ed,
			address: at("foo.example.com"),
		},
		{
			name:    "wildcard on port 22",
			known:   func(k *testKeys, _ string) []string { return []string{line("*.example.com", k.ed25519.PublicKey())} },
			server:  ed,
			address: at22("foo.example.com"),
		},
		{
			name:    "lone star covers every port",
			known:   func(k *testKeys, _ string) []string { return []string{line("*", k.ed25519.PublicKey())} },
			server:  ed,
			address: at("foo.example.com"),
		},
		{
			name: "bracketed wildcard with wildcard port",
			known: func(k *testKeys, _ string) []string {
				return []string{line("[*.example.com]:*", k.ed25519.PublicKey())}
			},
			server:  ed,
			address: at("foo.example.com"),
		},
		{
			name:    "question mark",
			known:   func(k *testKeys, _ string) []string { return []string{line("fo?.example.co?", k.ed25519.PublicKey())} },
			server:  ed,
			address: at22("foo.example.com"),
		},
		{
			name: "negation wins over a wildcard",
			known: func(k *testKeys, _ string) []string {
				return []string{line("*.example.com,!foo.example.com", k.ed25519.PublicKey())}
			},
			server:  ed,
			address: at22("foo.example.com"),
			want:    hostkeys.ErrUnknownHost,
		},
		{
			name: "negation of another host",
			known: func(k *testKeys, _ string) []string {
				return []string{line("*.example.com,!bar.example.com", k.ed25519.PublicKey())}
			},
			server:  ed,
			address: at22("foo.example.com"),
		},
		{
			name: "hashed name",
			known: func(k *testKeys, p string) []string {
				return []string{line(hashed("[foo.example.com]:"+p), k.ed25519.PublicKey())}
			},
			server:  ed,
			address: at("foo.example.com"),
		},
		{
			name: "hashed name of another host",
			known: func(k *testKeys, p string) []string {
				return []string{line(hashed("[bar.example.com]:"+p), k.ed25519.PublicKey())}
			},
			server:  ed,
			address: at("foo.example.com"),
			want:    hostkeys.ErrUnknownHost,
		},
		{
			name: "second key of the same type matches",
			known: func(k *testKeys, _ string) []string {
				return []string{
					line("foo.example.com", k.ed25519b.PublicKey()),
					line("foo.example.com", k.ed25519.PublicKey()),
				}
			},
			server:  ed,
			address: at22("foo.example.com"),
		},
		{
			name: "comments, blank and invalid lines are skipped",
			known: func(k *testKeys, _ string) []string {
				return []string{
					"# a comment",
					"",
					"foo.example.com ssh-ed25519 !!!notbase64",
					"@bogus foo.example.com " + strings.SplitN(line("x", k.ed25519.PublicKey()), " ", 2)[1],
					"   " + line("foo.example.com", k.ed25519.PublicKey()) + " trailing comment",
				}
			},
			server:  ed,
			address: at22("foo.example.com"),
		},
		{
			name:    "unknown host",
			known:   func(k *testKeys, _ string) []string { return []string{line("bar.example.com", k.ed25519.PublicKey())} },
			server:  ed,
			address: at("foo.example.com"),
			want:    hostkeys.ErrUnknownHost,
			wantText: []string{
				"no host key is known for [foo.example.com]:",
				"and you have requested strict checking",
				"ssh-ed25519 key SHA256:",
				">> ",
			},
		},
		{
			name:    "changed key",
			known:   func(k *testKeys, _ string) []string { return []string{line("foo.example.com", k.ed25519b.PublicKey())} },
			server:  ed,
			address: at22("foo.example.com"),
			want:    hostkeys.ErrHostKeyChanged,
			wantText: []string{
				"REMOTE HOST IDENTIFICATION HAS CHANGED",
				"man-in-the-middle attack",
				"known_hosts:1",
				`-R "foo.example.com"`,
				"then add the correct key with: ssh-keyscan -H foo.example.com >> ",
			},
		},
		{
			name: "only a key of another type is known",
			known: func(k *testKeys, _ string) []string {
				return []string{line("foo.example.com", k.ecdsa256.PublicKey())}
			},
			server:   ed,
			address:  at22("foo.example.com"),
			want:     hostkeys.ErrHostKeyChanged,
			wantText: []string{"only keys of other types", "ecdsa-sha2-nistp256"},
		},
		{
			// golang/go#29286: the server prefers ed25519, only ecdsa is known.
			name: "known ecdsa key while the server also has ed25519",
			known: func(k *testKeys, _ string) []string {
				return []string{line("foo.example.com", k.ecdsa256.PublicKey())}
			},
			server:  plainServer(func(k *testKeys) []ssh.Signer { return []ssh.Signer{k.ed25519, k.ecdsa256, k.rsa} }),
			address: at22("foo.example.com"),
		},
		{
			name: "known rsa key while the server also has ed25519 and ecdsa",
			known: func(k *testKeys, _ string) []string {
				return []string{line("foo.example.com", k.rsa.PublicKey())}
			},
			server:  plainServer(func(k *testKeys) []ssh.Signer { return []ssh.Signer{k.ed25519, k.ecdsa256, k.rsa} }),
			address: at22("foo.example.com"),
		},
		{
			name: "known ecdsa-384 and ecdsa-521 keys",
			known: func(k *testKeys, _ string) []string {
				return []string{line("foo.example.com", k.ecdsa521.PublicKey()), line("foo.example.com", k.ecdsa384.PublicKey())}
			},
			server:  plainServer(func(k *testKeys) []ssh.Signer { return []ssh.Signer{k.ed25519, k.ecdsa384} }),
			address: at22("foo.example.com"),
		},
		{
			name: "revoked key",
			known: func(k *testKeys, _ string) []string {
				return []string{
					line("foo.example.com", k.ed25519.PublicKey()),
					line("@revoked *", k.ed25519.PublicKey()),
				}
			},
			server:   ed,
			address:  at22("foo.example.com"),
			want:     hostkeys.ErrHostKeyRevoked,
			wantText: []string{"REVOKED HOST KEY DETECTED", "known_hosts:2", "stolen key"},
		},
		{
			// A deliberate difference: OpenSSH scopes @revoked by its host field.
			name: "revoked for another host pattern",
			known: func(k *testKeys, _ string) []string {
				return []string{
					line("foo.example.com", k.ed25519.PublicKey()),
					line("@revoked bar.example.com", k.ed25519.PublicKey()),
				}
			},
			server:  ed,
			address: at22("foo.example.com"),
			want:    hostkeys.ErrHostKeyRevoked,
			openssh: errAccepted,
		},
		{
			name: "certificate from a trusted CA",
			known: func(k *testKeys, _ string) []string {
				return []string{line("@cert-authority *.example.com", k.ca.PublicKey())}
			},
			server: func(tb testing.TB, k *testKeys) []ssh.Signer {
				return []ssh.Signer{validNow(tb, k.ed25519, k.ca, "foo.example.com")}
			},
			address: at22("foo.example.com"),
		},
		{
			name: "certificate from a trusted CA on a non-22 port",
			known: func(k *testKeys, _ string) []string {
				return []string{line("@cert-authority [*.example.com]:*", k.ca.PublicKey())}
			},
			server: func(tb testing.TB, k *testKeys) []ssh.Signer {
				return []ssh.Signer{validNow(tb, k.ed25519, k.ca, "foo.example.com")}
			},
			address: at("foo.example.com"),
		},
		{
			// The CA is ed25519, the host key ecdsa: the algorithm to offer
			// follows the host key, not the CA.
			name: "CA and host key of different types",
			known: func(k *testKeys, _ string) []string {
				return []string{line("@cert-authority foo.example.com", k.ca.PublicKey())}
			},
			server: func(tb testing.TB, k *testKeys) []ssh.Signer {
				return []ssh.Signer{validNow(tb, k.ecdsa256, k.ca, "foo.example.com")}
			},
			address: at22("foo.example.com"),
		},
		{
			name: "certificate and plain key on a server, only the CA known",
			known: func(k *testKeys, _ string) []string {
				return []string{line("@cert-authority foo.example.com", k.caECDSA.PublicKey())}
			},
			server: func(tb testing.TB, k *testKeys) []ssh.Signer {
				return []ssh.Signer{k.ed25519b, validNow(tb, k.rsa, k.caECDSA, "foo.example.com")}
			},
			address: at22("foo.example.com"),
		},
		{
			name: "expired certificate",
			known: func(k *testKeys, _ string) []string {
				return []string{line("@cert-authority foo.example.com", k.ca.PublicKey())}
			},
			server: func(tb testing.TB, k *testKeys) []ssh.Signer {
				return []ssh.Signer{hostCert(tb, k.ed25519, k.ca, []string{"foo.example.com"}, time.Now().Add(-2*year), time.Now().Add(-year))}
			},
			address:  at22("foo.example.com"),
			want:     hostkeys.ErrHostCertificate,
			wantText: []string{"cert has expired", "signed by the CA ssh-ed25519 SHA256:", "trusted at ", "known_hosts:1"},
		},
		{
			name: "certificate for another principal",
			known: func(k *testKeys, _ string) []string {
				return []string{line("@cert-authority *.example.com", k.ca.PublicKey())}
			},
			server: func(tb testing.TB, k *testKeys) []ssh.Signer {
				return []ssh.Signer{validNow(tb, k.ed25519, k.ca, "bar.example.com")}
			},
			address:  at22("foo.example.com"),
			want:     hostkeys.ErrHostCertificate,
			wantText: []string{"principal"},
		},
		{
			name: "certificate from an untrusted CA, plain key known",
			known: func(k *testKeys, _ string) []string {
				return []string{line("foo.example.com", k.ed25519.PublicKey())}
			},
			server: func(tb testing.TB, k *testKeys) []ssh.Signer {
				return []ssh.Signer{validNow(tb, k.ed25519, k.ca2, "foo.example.com")}
			},
			address: at22("foo.example.com"),
		},
		{
			name: "certificate from an untrusted CA, host unknown",
			known: func(k *testKeys, _ string) []string {
				return []string{line("@cert-authority bar.example.com", k.ca.PublicKey())}
			},
			server: func(tb testing.TB, k *testKeys) []ssh.Signer {
				return []ssh.Signer{validNow(tb, k.ed25519, k.ca2, "foo.example.com")}
			},
			address:  at22("foo.example.com"),
			want:     hostkeys.ErrUnknownHost,
			wantText: []string{"which known_hosts does not trust"},
		},
		{
			name: "certificate from another CA than the one trusted",
			known: func(k *testKeys, _ string) []string {
				return []string{line("@cert-authority foo.example.com", k.ca.PublicKey())}
			},
			server: func(tb testing.TB, k *testKeys) []ssh.Signer {
				return []ssh.Signer{validNow(tb, k.ed25519, k.ca2, "foo.example.com")}
			},
			address: at22("foo.example.com"),
			want:    hostkeys.ErrHostKeyChanged,
		},
		{
			name: "revoked CA",
			known: func(k *testKeys, _ string) []string {
				return []string{
					line("@cert-authority foo.example.com", k.ca.PublicKey()),
					line("@revoked *", k.ca.PublicKey()),
				}
			},
			server: func(tb testing.TB, k *testKeys) []ssh.Signer {
				return []ssh.Signer{validNow(tb, k.ed25519, k.ca, "foo.example.com")}
			},
			address:  at22("foo.example.com"),
			want:     hostkeys.ErrHostKeyRevoked,
			wantText: []string{"CA that signed its certificate"},
		},
		{
			// x/crypto's knownhosts accepts this; OpenSSH and we do not: a CA
			// key vouches for certificates, it is not a host key.
			name: "CA key presented as a plain host key",
			known: func(k *testKeys, _ string) []string {
				return []string{line("@cert-authority foo.example.com", k.ca.PublicKey())}
			},
			server:   plainServer(func(k *testKeys) []ssh.Signer { return []ssh.Signer{k.ca} }),
			address:  at22("foo.example.com"),
			want:     hostkeys.ErrHostKeyChanged,
			wantText: []string{"trusts only host certificates for this host", "ssh-keygen -s CA_KEY -h -n foo.example.com"},
		},
		{
			name: "IPv6 literal on a non-22 port",
			known: func(k *testKeys, p string) []string {
				return []string{line("[::1]:"+p, k.ed25519.PublicKey())}
			},
			server:  ed,
			address: at("::1"),
		},
		{
			name: "keys of three types known, the server has only one",
			known: func(k *testKeys, _ string) []string {
				return []string{
					line("foo.example.com", k.ed25519.PublicKey()),
					line("foo.example.com", k.ecdsa256.PublicKey()),
					line("foo.example.com", k.rsa.PublicKey()),
				}
			},
			server:  plainServer(func(k *testKeys) []ssh.Signer { return []ssh.Signer{k.rsa} }),
			address: at22("foo.example.com"),
		},
		{
			name: "IPv4 literal on a non-22 port",
			known: func(k *testKeys, p string) []string {
				return []string{line("[127.0.0.1]:"+p, k.ed25519.PublicKey())}
			},
			server:  ed,
			address: at("127.0.0.1"),
		},
	}
}

// errAccepted marks a case OpenSSH accepts.
var errAccepted = errors.New("accepted")

// hashed returns the "|1|salt|hash" form of name, as ssh-keygen -H writes.
func hashed(name string) string {
	// x/crypto's knownhosts.HashHostname is independent of our code.
	return knownhosts.HashHostname(name)
}

func TestStrict(t *testing.T) {
	t.Parallel()
	k := keys(t)
	for _, tc := range strictCases() {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := startServer(t, tc.server(t, k)...)
			dir := t.TempDir()
			file := writeFile(t, dir, "known_hosts", tc.known(k, s.port())...)
			kh := tc.newKnownHosts(t, file)
			address := tc.address(s.port())
			err := dial(t, s, address, kh)
			if tc.want == nil {
				assert.NoError(t, err, "dial(%q)", address)
				return
			}
			require.Error(t, err, "dial(%q)", address)
			assert.ErrorIs(t, err, tc.want)
			var hkErr *hostkeys.HostKeyError
			require.ErrorAs(t, err, &hkErr, "the typed error must survive ssh.NewClientConn's wrapping")
			assert.Equal(t, address, hkErr.Address)
			assert.Equal(t, s.addr, hkErr.Remote.String())
			assert.True(t, strings.HasPrefix(hkErr.Fingerprint, "SHA256:"), "Fingerprint = %q", hkErr.Fingerprint)
			assert.NotEmpty(t, hkErr.KeyType)
			assert.Equal(t, file, hkErr.KnownHostsFile)
			for _, want := range tc.wantText {
				assert.Contains(t, err.Error(), want)
			}
			assert.NotContains(t, hkErr.Error(), "\n", "the error is one line")
			if tc.want == hostkeys.ErrHostKeyChanged || tc.want == hostkeys.ErrHostCertificate {
				require.NotEmpty(t, hkErr.Known)
			}
			for _, kk := range hkErr.Known {
				assert.Equal(t, file, kk.File)
				assert.Positive(t, kk.Line)
			}
			if tc.want == hostkeys.ErrHostKeyRevoked {
				require.NotNil(t, hkErr.Revoked)
				assert.Equal(t, file, hkErr.Revoked.File)
			}
		})
	}
}

// TestXCryptoDefaultAlgorithmsFail shows the bug HostKeyAlgorithms exists
// for (golang/go#29286): with x/crypto's default algorithm list, a host
// known only by its ecdsa key is rejected when the server also has another
// key type that x/crypto's default order prefers.
func TestXCryptoDefaultAlgorithmsFail(t *testing.T) {
	t.Parallel()
	k := keys(t)
	// x/crypto's default order puts ecdsa before rsa and ed25519, so pin
	// the rsa key and let the server have ecdsa too.
	s := startServer(t, k.ed25519, k.ecdsa256, k.rsa)
	file := writeFile(t, t.TempDir(), "known_hosts", line("foo.example.com", k.rsa.PublicKey()))
	kh, err := hostkeys.New(&hostkeys.Config{Files: []string{file}, Logger: discardLogger()})
	require.NoError(t, err)

	c, err := net.Dial("tcp", s.addr)
	require.NoError(t, err)
	_, _, _, err = ssh.NewClientConn(c, "foo.example.com:22", &ssh.ClientConfig{HostKeyCallback: kh.HostKeyCallback()})
	require.ErrorIs(t, err, hostkeys.ErrHostKeyChanged, "without HostKeyAlgorithms x/crypto negotiates ecdsa")

	require.NoError(t, dial(t, s, "foo.example.com:22", kh), "with HostKeyAlgorithms the known rsa key is used")
}

func TestMissingAndUnreadableFiles(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	missing := filepath.Join(dir, "nope", "known_hosts")
	kh, err := hostkeys.New(&hostkeys.Config{Files: []string{missing, "/dev/null"}, Logger: discardLogger()})
	require.NoError(t, err, "missing files are empty")
	assert.Equal(t, []string{missing, "/dev/null"}, kh.Files())

	_, err = hostkeys.New(&hostkeys.Config{Files: []string{dir}})
	assert.ErrorContains(t, err, "not a regular file", "a directory is not a known_hosts file")

	if os.Geteuid() != 0 {
		unreadable := writeFile(t, dir, "unreadable")
		require.NoError(t, os.Chmod(unreadable, 0))
		_, err = hostkeys.New(&hostkeys.Config{Files: []string{unreadable}})
		assert.ErrorIs(t, err, os.ErrPermission)
	}
	// Root reads anything; a file below a non-directory fails for everyone.
	notDir := writeFile(t, dir, "plainfile")
	_, err = hostkeys.New(&hostkeys.Config{Files: []string{filepath.Join(notDir, "known_hosts")}})
	assert.ErrorContains(t, err, "not a directory")
}

func TestDefaultFilesFromHOME(t *testing.T) {
	home := t.TempDir()
	t.Setenv("HOME", home)
	files, err := hostkeys.DefaultFiles()
	require.NoError(t, err)
	assert.Equal(t, []string{
		filepath.Join(home, ".ssh", "known_hosts"),
		filepath.Join(home, ".ssh", "known_hosts2"),
		"/etc/ssh/ssh_known_hosts",
		"/etc/ssh/ssh_known_hosts2",
	}, files)

	kh, err := hostkeys.New(nil)
	require.NoError(t, err)
	assert.Equal(t, files, kh.Files())
	assert.Equal(t, hostkeys.Strict, kh.Policy())

	kh, err = hostkeys.New(&hostkeys.Config{Files: []string{"~/.ssh/other"}})
	require.NoError(t, err)
	assert.Equal(t, []string{filepath.Join(home, ".ssh", "other")}, kh.Files())

	t.Setenv("HOME", "")
	_, err = hostkeys.New(nil)
	assert.ErrorContains(t, err, "HOME")
}

// TestReloadAfterFix: the fix the error message suggests works in a running
// program, without a new KnownHosts.
func TestReloadAfterFix(t *testing.T) {
	t.Parallel()
	k := keys(t)
	s := startServer(t, k.ed25519)
	file := writeFile(t, t.TempDir(), "known_hosts")
	kh, err := hostkeys.New(&hostkeys.Config{Files: []string{file}, Logger: discardLogger()})
	require.NoError(t, err)
	address := "foo.example.com:" + s.port()
	require.ErrorIs(t, dial(t, s, address, kh), hostkeys.ErrUnknownHost)

	writeFile(t, filepath.Dir(file), "known_hosts", line("[foo.example.com]:"+s.port(), k.ed25519b.PublicKey()))
	require.ErrorIs(t, dial(t, s, address, kh), hostkeys.ErrHostKeyChanged)

	writeFile(t, filepath.Dir(file), "known_hosts", line("[foo.example.com]:"+s.port(), k.ed25519.PublicKey()))
	require.NoError(t, dial(t, s, address, kh))

	require.NoError(t, os.Remove(file))
	require.ErrorIs(t, dial(t, s, address, kh), hostkeys.ErrUnknownHost)
}

func TestInsecure(t *testing.T) {
	t.Parallel()
	k := keys(t)
	s := startServer(t, k.ed25519)
	file := writeFile(t, t.TempDir(), "known_hosts", line("foo.example.com", k.ed25519b.PublicKey()))
	logger, logs := newRecordLogger()
	kh, err := hostkeys.New(&hostkeys.Config{Files: []string{file}, Policy: hostkeys.Insecure, Logger: logger})
	require.NoError(t, err)
	require.NoError(t, dial(t, s, "foo.example.com:22", kh), "a changed key is accepted")
	require.NoError(t, dial(t, s, "bar.example.com:22", kh), "an unknown host is accepted")

	msgs := logs.messages()
	require.Len(t, msgs, 2)
	fp := ssh.FingerprintSHA256(k.ed25519.PublicKey())
	assert.Contains(t, msgs[0], "WARN hostkeys: INSECURE")
	assert.Contains(t, msgs[0], "fingerprint="+fp)
	assert.Contains(t, msgs[0], "host=foo.example.com")
	assert.Contains(t, msgs[0], "does not match")
	assert.Contains(t, msgs[1], "not in known_hosts")

	data, err := os.ReadFile(file)
	require.NoError(t, err)
	assert.Equal(t, 1, strings.Count(string(data), "\n"), "Insecure never writes known_hosts")
}

func TestHostKeyErrorFields(t *testing.T) {
	t.Parallel()
	k := keys(t)
	s := startServer(t, k.ed25519)
	dir := t.TempDir()
	user := writeFile(t, dir, "user", "# first line", line("foo.example.com", k.ed25519b.PublicKey()))
	global := writeFile(t, dir, "global", line("*.example.com", k.ecdsa256.PublicKey()), line("@cert-authority *", k.ca.PublicKey()))
	kh, err := hostkeys.New(&hostkeys.Config{Files: []string{user, global}, Logger: discardLogger()})
	require.NoError(t, err)

	err = dial(t, s, "foo.example.com:22", kh)
	var hkErr *hostkeys.HostKeyError
	require.ErrorAs(t, err, &hkErr)
	assert.Equal(t, hostkeys.ErrHostKeyChanged, hkErr.Reason)
	assert.Equal(t, "foo.example.com", hkErr.Host)
	assert.Equal(t, "foo.example.com:22", hkErr.Address)
	assert.Equal(t, "ssh-ed25519", hkErr.KeyType)
	assert.Equal(t, ssh.FingerprintSHA256(k.ed25519.PublicKey()), hkErr.Fingerprint)
	assert.Equal(t, user, hkErr.KnownHostsFile)
	require.Len(t, hkErr.Known, 3)
	assert.Equal(t, hostkeys.KnownKey{Key: k.ed25519b.PublicKey(), File: user, Line: 2}, hkErr.Known[0])
	assert.Equal(t, hostkeys.KnownKey{Key: k.ecdsa256.PublicKey(), File: global, Line: 1}, hkErr.Known[1])
	assert.Equal(t, hostkeys.KnownKey{Key: k.ca.PublicKey(), File: global, Line: 2, CertAuthority: true}, hkErr.Known[2])
	assert.Equal(t, user+":2: ssh-ed25519 "+ssh.FingerprintSHA256(k.ed25519b.PublicKey()), hkErr.Known[0].String())
	assert.Equal(t, global+":2: @cert-authority ssh-ed25519 "+ssh.FingerprintSHA256(k.ca.PublicKey()), hkErr.Known[2].String())

	msg := hkErr.Error()
	assert.Contains(t, msg, `ssh-keygen -f "`+user+`" -R "foo.example.com"`)
	assert.Contains(t, msg, `ssh-keygen -f "`+global+`" -R "foo.example.com"`)
	assert.Contains(t, msg, "offending lines: "+user+":2, "+global+":1")
	assert.NotContains(t, msg, global+":2,", "ssh-keygen -R does not remove @cert-authority lines")
}

func TestErrorQuotesForShell(t *testing.T) {
	t.Parallel()
	k := keys(t)
	s := startServer(t, k.ed25519)
	dir := filepath.Join(t.TempDir(), "it's here")
	require.NoError(t, os.Mkdir(dir, 0o700))
	file := writeFile(t, dir, "known_hosts")
	kh, err := hostkeys.New(&hostkeys.Config{Files: []string{file}, Logger: discardLogger()})
	require.NoError(t, err)
	err = dial(t, s, "127.0.0.1:"+s.port(), kh)
	require.ErrorIs(t, err, hostkeys.ErrUnknownHost)
	want := "ssh-keyscan -H -p " + s.port() + " 127.0.0.1 >> '" + strings.ReplaceAll(file, "'", `'\''`) + "'"
	assert.Contains(t, err.Error(), want)

	// The suggested command really works: run it through sh with a stub
	// ssh-keyscan that prints what the real one would.
	if sh, lerr := exec.LookPath("sh"); lerr == nil {
		stubDir := t.TempDir()
		stub := "#!/bin/sh\necho '" + line("[127.0.0.1]:"+s.port(), k.ed25519.PublicKey()) + "'\n"
		require.NoError(t, os.WriteFile(filepath.Join(stubDir, "ssh-keyscan"), []byte(stub), 0o700))
		cmd := exec.Command(sh, "-c", want)
		cmd.Env = append(os.Environ(), "PATH="+stubDir+":"+os.Getenv("PATH"))
		out, err := cmd.CombinedOutput()
		require.NoError(t, err, "%s", out)
		require.NoError(t, dial(t, s, "127.0.0.1:"+s.port(), kh))
	}
}

func TestParsePolicy(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   string
		want hostkeys.Policy
		err  bool
	}{
		{"yes", hostkeys.Strict, false},
		{"ask", hostkeys.Strict, false},
		{"YES", hostkeys.Strict, false},
		{"accept-new", hostkeys.AcceptNew, false},
		{" Accept-New ", hostkeys.AcceptNew, false},
		{"no", hostkeys.Insecure, false},
		{"off", hostkeys.Insecure, false},
		{"", hostkeys.Strict, true},
		{"maybe", hostkeys.Strict, true},
	}
	for _, tc := range tests {
		got, err := hostkeys.ParsePolicy(tc.in)
		if (err != nil) != tc.err || got != tc.want {
			t.Errorf("ParsePolicy(%q) = %v, %v; want %v, error %v", tc.in, got, err, tc.want, tc.err)
		}
	}
	for _, p := range []hostkeys.Policy{hostkeys.Strict, hostkeys.AcceptNew, hostkeys.Insecure} {
		got, err := hostkeys.ParsePolicy(p.String())
		if err != nil || got != p {
			t.Errorf("ParsePolicy(%q) = %v, %v; want %v", p.String(), got, err, p)
		}
	}
	_, err := hostkeys.New(&hostkeys.Config{Policy: 7, Files: []string{"/dev/null"}})
	assert.Error(t, err)
}

func TestCallbackWithoutAddress(t *testing.T) {
	t.Parallel()
	k := keys(t)
	file := writeFile(t, t.TempDir(), "known_hosts", line("[127.0.0.1]:2222", k.ed25519.PublicKey()))
	kh, err := hostkeys.New(&hostkeys.Config{Files: []string{file}, Logger: discardLogger()})
	require.NoError(t, err)
	cb := kh.HostKeyCallback()
	remote := &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 2222}
	assert.NoError(t, cb("", remote, k.ed25519.PublicKey()), "an empty hostname falls back to the remote address")
	assert.ErrorIs(t, cb("127.0.0.1:2222", remote, k.ed25519b.PublicKey()), hostkeys.ErrHostKeyChanged)
	assert.Error(t, cb("127.0.0.1:2222", remote, nil))
}

// TestCertificateClock: certificate validity follows Config.Now.
func TestCertificateClock(t *testing.T) {
	t.Parallel()
	k := keys(t)
	start := time.Now().Add(24 * time.Hour)
	s := startServer(t, hostCert(t, k.ed25519, k.ca, []string{"foo.example.com"}, start, start.Add(time.Hour)))
	file := writeFile(t, t.TempDir(), "known_hosts", line("@cert-authority foo.example.com", k.ca.PublicKey()))

	kh, err := hostkeys.New(&hostkeys.Config{Files: []string{file}, Logger: discardLogger()})
	require.NoError(t, err)
	err = dial(t, s, "foo.example.com:22", kh)
	assert.ErrorIs(t, err, hostkeys.ErrHostCertificate)
	assert.ErrorContains(t, err, "not yet valid")

	later := func() time.Time { return start.Add(30 * time.Minute) }
	kh, err = hostkeys.New(&hostkeys.Config{Files: []string{file}, Logger: discardLogger(), Now: later})
	require.NoError(t, err)
	assert.NoError(t, dial(t, s, "foo.example.com:22", kh))
}

func TestInsecureLogsInvalidAddress(t *testing.T) {
	t.Parallel()
	k := keys(t)
	logger, logs := newRecordLogger()
	kh, err := hostkeys.New(&hostkeys.Config{Files: []string{"/dev/null"}, Policy: hostkeys.Insecure, Logger: logger})
	require.NoError(t, err)
	assert.NoError(t, kh.HostKeyCallback()("host:notaport", nil, k.ed25519.PublicKey()))
	msgs := logs.messages()
	require.Len(t, msgs, 1)
	assert.Contains(t, msgs[0], "invalid port")
}

// TestReloadSameSizeSameMtime: an edit that keeps the size and, within the
// file system's timestamp granularity, the mtime, is still noticed.
func TestReloadSameSizeSameMtime(t *testing.T) {
	t.Parallel()
	k := keys(t)
	s := startServer(t, k.ed25519)
	dir := t.TempDir()
	file := writeFile(t, dir, "known_hosts", line("foo.example.com", k.ed25519.PublicKey()))
	info, err := os.Stat(file)
	require.NoError(t, err)
	kh, err := hostkeys.New(&hostkeys.Config{Files: []string{file}, Logger: discardLogger()})
	require.NoError(t, err)
	require.NoError(t, dial(t, s, "foo.example.com:22", kh))

	writeFile(t, dir, "known_hosts", line("foo.example.com", k.ed25519b.PublicKey()))
	require.NoError(t, os.Chtimes(file, info.ModTime(), info.ModTime()))
	after, err := os.Stat(file)
	require.NoError(t, err)
	require.Equal(t, info.Size(), after.Size())
	require.Equal(t, info.ModTime(), after.ModTime())

	assert.ErrorIs(t, dial(t, s, "foo.example.com:22", kh), hostkeys.ErrHostKeyChanged)
}
