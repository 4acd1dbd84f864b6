package hostkeys_test

import (
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/pem"
	"math/big"
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

// keygenCert has the real ssh-keygen sign a host certificate for host's key
// with k.caRSA, using the signature algorithm sigAlg ("ssh-rsa" for SHA-1,
// "rsa-sha2-256", "rsa-sha2-512"), valid from an hour ago for a year, and
// returns a signer that presents it.
func keygenCert(tb testing.TB, k *testKeys, host ssh.Signer, sigAlg string, principals ...string) ssh.Signer {
	tb.Helper()
	keygen := requireTool(tb, "ssh-keygen")
	dir := tb.TempDir()
	block, err := ssh.MarshalPrivateKey(k.caRSAPriv, "")
	require.NoError(tb, err)
	ca := filepath.Join(dir, "ca")
	require.NoError(tb, os.WriteFile(ca, pem.EncodeToMemory(block), 0o600))
	pub := filepath.Join(dir, "host.pub")
	require.NoError(tb, os.WriteFile(pub, ssh.MarshalAuthorizedKey(host.PublicKey()), 0o600))
	out, err := exec.Command(keygen, "-q", "-s", ca, "-h", "-I", "test-host", "-n", strings.Join(principals, ","),
		"-V", "-1h:+52w", "-t", sigAlg, pub).CombinedOutput()
	require.NoError(tb, err, "ssh-keygen -s: %s", out)
	data, err := os.ReadFile(filepath.Join(dir, "host-cert.pub"))
	require.NoError(tb, err)
	parsed, _, _, _, err := ssh.ParseAuthorizedKey(data)
	require.NoError(tb, err)
	cert, ok := parsed.(*ssh.Certificate)
	require.True(tb, ok, "ssh-keygen wrote a %T", parsed)
	require.Equal(tb, sigAlg, cert.Signature.Format)
	signer, err := ssh.NewCertSigner(cert, host)
	require.NoError(tb, err)
	return signer
}

// rsaWithLeadingZeros returns the base64 of key, an RSA key, with extra
// zero bytes in front of e and n: the same key as OpenSSH parses it
// (sshbuf_get_bignum2 trims them), but not the same bytes.
func rsaWithLeadingZeros(key ssh.PublicKey) string {
	pub := key.(ssh.CryptoPublicKey).CryptoPublicKey().(*rsa.PublicKey)
	e := big.NewInt(int64(pub.E)).Bytes()
	blob := ssh.Marshal(struct {
		Name string
		E, N []byte
	}{ssh.KeyAlgoRSA, append([]byte{0, 0, 0}, e...), append([]byte{0, 0}, pub.N.Bytes()...)})
	return base64.StdEncoding.EncodeToString(blob)
}

// renamedRSABlob returns the base64 of key, an RSA key, with name in the
// blob where "ssh-rsa" belongs.
func renamedRSABlob(key ssh.PublicKey, name string) string {
	var w struct {
		Name string
		Rest []byte `ssh:"rest"`
	}
	if err := ssh.Unmarshal(key.Marshal(), &w); err != nil {
		panic(err)
	}
	w.Name = name
	return base64.StdEncoding.EncodeToString(ssh.Marshal(w))
}

// typedLine is line with the key type field written as typ.
func typedLine(pattern, typ string, key ssh.PublicKey) string {
	return pattern + " " + typ + " " + base64.StdEncoding.EncodeToString(key.Marshal())
}

// certFor returns a host certificate of key signed by ca for principals,
// valid from an hour ago for a year. It panics on error: known_hosts
// builders have no testing.TB.
func certFor(key ssh.PublicKey, ca ssh.Signer, principals ...string) *ssh.Certificate {
	cert := &ssh.Certificate{
		Key:             key,
		Serial:          7,
		CertType:        ssh.HostCert,
		KeyId:           "old host certificate",
		ValidPrincipals: principals,
		ValidAfter:      uint64(time.Now().Add(-time.Hour).Unix()),
		ValidBefore:     uint64(time.Now().Add(year).Unix()),
	}
	if err := cert.SignCert(rand.Reader, ca); err != nil {
		panic(err)
	}
	return cert
}

// revocationAndCertificateCases are the @revoked and host certificate
// situations where a parser that drops lines it does not understand, or
// compares key bytes rather than keys, accepts what OpenSSH refuses.
func revocationAndCertificateCases() []strictCase {
	ed := plainServer(func(k *testKeys) []ssh.Signer { return []ssh.Signer{k.ed25519} })
	rsaServer := plainServer(func(k *testKeys) []ssh.Signer { return []ssh.Signer{k.rsa} })
	edCert := func(tb testing.TB, k *testKeys) []ssh.Signer {
		return []ssh.Signer{validNow(tb, k.ed25519, k.ca, "foo.example.com")}
	}
	// An older certificate of the server's key (another CA, serial and
	// principal), as a host's -cert.pub pasted into a @revoked line.
	oldCert := func(k *testKeys) *ssh.Certificate {
		return certFor(k.ed25519.PublicKey(), k.ca2, "old.example.com")
	}
	sha1Cert := func(tb testing.TB, k *testKeys) []ssh.Signer {
		return []ssh.Signer{keygenCert(tb, k, k.ed25519, ssh.KeyAlgoRSA, "foo.example.com")}
	}
	caRSALine := func(k *testKeys, _ string) []string {
		return []string{line("@cert-authority foo.example.com", k.caRSA.PublicKey())}
	}
	// A key type that x/crypto cannot parse (OpenSSH's experimental XMSS).
	xmss := base64.StdEncoding.EncodeToString(ssh.Marshal(struct {
		Name string
		Rest []byte `ssh:"rest"`
	}{"ssh-xmss@openssh.com", []byte("\x00\x00\x00\x04abcd")}))
	var cases []strictCase
	add := func(tc strictCase) { cases = append(cases, tc) }

	// A @revoked line holding a certificate revokes the certified key
	// (OpenSSH: check_key_not_revoked compares with sshkey_equal_public).
	add(strictCase{
		name: "revoked certificate line, server offers the plain key",
		known: func(k *testKeys, _ string) []string {
			return []string{line("foo.example.com", k.ed25519.PublicKey()), line("@revoked *", oldCert(k))}
		},
		server:   ed,
		address:  at22("foo.example.com"),
		want:     hostkeys.ErrHostKeyRevoked,
		wantText: []string{"REVOKED HOST KEY DETECTED", "known_hosts:2"},
	})
	add(strictCase{
		name: "revoked certificate line, server offers a certificate from a trusted CA",
		known: func(k *testKeys, _ string) []string {
			return []string{line("@cert-authority *.example.com", k.ca.PublicKey()), line("@revoked *", oldCert(k))}
		},
		server:  edCert,
		address: at22("foo.example.com"),
		want:    hostkeys.ErrHostKeyRevoked,
	})
	add(strictCase{
		name: "revoked certificate line, host otherwise unknown",
		known: func(k *testKeys, _ string) []string {
			return []string{line("@revoked *", oldCert(k))}
		},
		server:  ed,
		address: at("foo.example.com"),
		want:    hostkeys.ErrHostKeyRevoked,
	})

	// rsa-sha2-256 and rsa-sha2-512 name an ssh-rsa key (OpenSSH's
	// keyimpls map both to KEY_RSA).
	for _, typ := range []string{ssh.KeyAlgoRSASHA256, ssh.KeyAlgoRSASHA512} {
		add(strictCase{
			name: "revoked key written as " + typ,
			known: func(k *testKeys, _ string) []string {
				return []string{line("foo.example.com", k.rsa.PublicKey()), typedLine("@revoked *", typ, k.rsa.PublicKey())}
			},
			server:  rsaServer,
			address: at22("foo.example.com"),
			want:    hostkeys.ErrHostKeyRevoked,
		})
		add(strictCase{
			name: "known key written as " + typ,
			known: func(k *testKeys, _ string) []string {
				return []string{typedLine("foo.example.com", typ, k.rsa.PublicKey())}
			},
			server:  rsaServer,
			address: at22("foo.example.com"),
		})
	}
	add(strictCase{
		// OpenSSH's sshkey_from_blob_internal takes the name inside the
		// blob through sshkey_type_from_name, which maps it to KEY_RSA.
		name: "revoked key whose blob names rsa-sha2-512",
		known: func(k *testKeys, _ string) []string {
			return []string{line("foo.example.com", k.rsa.PublicKey()), "@revoked * rsa-sha2-512 " + renamedRSABlob(k.rsa.PublicKey(), ssh.KeyAlgoRSASHA512)}
		},
		server:  rsaServer,
		address: at22("foo.example.com"),
		want:    hostkeys.ErrHostKeyRevoked,
	})
	add(strictCase{
		name: "revoked CA written as rsa-sha2-512",
		known: func(k *testKeys, _ string) []string {
			return []string{line("@cert-authority foo.example.com", k.caRSA.PublicKey()), typedLine("@revoked *", ssh.KeyAlgoRSASHA512, k.caRSA.PublicKey())}
		},
		server: func(tb testing.TB, k *testKeys) []ssh.Signer {
			return []ssh.Signer{validNow(tb, k.ed25519, k.caRSA, "foo.example.com")}
		},
		address:  at22("foo.example.com"),
		want:     hostkeys.ErrHostKeyRevoked,
		wantText: []string{"CA that signed its certificate"},
	})

	// Keys are compared as parsed keys, not as bytes.
	add(strictCase{
		name: "revoked RSA key with leading zeros in e and n",
		known: func(k *testKeys, _ string) []string {
			return []string{line("foo.example.com", k.rsa.PublicKey()), "@revoked * ssh-rsa " + rsaWithLeadingZeros(k.rsa.PublicKey())}
		},
		server:  rsaServer,
		address: at22("foo.example.com"),
		want:    hostkeys.ErrHostKeyRevoked,
	})
	add(strictCase{
		name: "known RSA key with leading zeros in e and n",
		known: func(k *testKeys, _ string) []string {
			return []string{"foo.example.com ssh-rsa " + rsaWithLeadingZeros(k.rsa.PublicKey())}
		},
		server:  rsaServer,
		address: at22("foo.example.com"),
	})
	add(strictCase{
		name: "RSA CA with leading zeros in e and n",
		known: func(k *testKeys, _ string) []string {
			return []string{"@cert-authority foo.example.com ssh-rsa " + rsaWithLeadingZeros(k.caRSA.PublicKey())}
		},
		server: func(tb testing.TB, k *testKeys) []ssh.Signer {
			return []ssh.Signer{validNow(tb, k.ed25519, k.caRSA, "foo.example.com")}
		},
		address: at22("foo.example.com"),
	})

	// A CA signature made with ssh-rsa (SHA-1) is refused by default, as
	// OpenSSH's CASignatureAlgorithms does since 8.2.
	add(strictCase{
		name:     "certificate signed with ssh-rsa (SHA-1) by a trusted CA",
		known:    caRSALine,
		server:   sha1Cert,
		address:  at22("foo.example.com"),
		want:     hostkeys.ErrHostCertificate,
		wantText: []string{"signed with disallowed algorithm ssh-rsa", "AllowSHA1CASignatures"},
	})
	add(strictCase{
		name: "certificate signed with ssh-rsa (SHA-1), plain key known",
		known: func(k *testKeys, p string) []string {
			return append(caRSALine(k, p), line("foo.example.com", k.ed25519.PublicKey()))
		},
		server:  sha1Cert,
		address: at22("foo.example.com"),
	})
	add(strictCase{
		name:    "certificate signed with ssh-rsa (SHA-1), explicitly allowed",
		known:   caRSALine,
		server:  sha1Cert,
		address: at22("foo.example.com"),
		config:  func(c *hostkeys.Config) { c.AllowSHA1CASignatures = true },
		sshOpts: []string{"-o", "CASignatureAlgorithms=+ssh-rsa"},
	})
	for _, alg := range []string{ssh.KeyAlgoRSASHA256, ssh.KeyAlgoRSASHA512} {
		add(strictCase{
			name:  "certificate signed with " + alg + " by ssh-keygen",
			known: caRSALine,
			server: func(tb testing.TB, k *testKeys) []ssh.Signer {
				return []ssh.Signer{keygenCert(tb, k, k.ed25519, alg, "foo.example.com")}
			},
			address: at22("foo.example.com"),
		})
	}

	// A @revoked line that cannot be read fails closed for the hosts it
	// names; OpenSSH skips it (a deliberate difference).
	add(strictCase{
		name: "unreadable revoked line naming the host",
		known: func(k *testKeys, _ string) []string {
			return []string{line("foo.example.com", k.ed25519.PublicKey()), "@revoked foo.example.com ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI"}
		},
		server:   ed,
		address:  at22("foo.example.com"),
		want:     hostkeys.ErrHostKeyRevoked,
		openssh:  errAccepted,
		wantText: []string{"known_hosts:2 cannot be read", `no key is accepted for hosts matching "foo.example.com"`, "fix or remove that line"},
	})
	add(strictCase{
		name: "unreadable revoked line with the hashed name of the host",
		known: func(k *testKeys, _ string) []string {
			return []string{line("foo.example.com", k.ed25519.PublicKey()), "@revoked " + knownhosts.HashHostname("foo.example.com") + " ssh-ed25519 !!!"}
		},
		server:  ed,
		address: at22("foo.example.com"),
		want:    hostkeys.ErrHostKeyRevoked,
		openssh: errAccepted,
	})
	add(strictCase{
		name: "unreadable revoked line naming the bare host, non-22 port",
		known: func(k *testKeys, p string) []string {
			return []string{line("[foo.example.com]:"+p, k.ed25519.PublicKey()), "@revoked foo.example.com ssh-ed25519"}
		},
		server:  ed,
		address: at("foo.example.com"),
		want:    hostkeys.ErrHostKeyRevoked,
		openssh: errAccepted,
	})
	add(strictCase{
		name: "unreadable revoked line naming another host",
		known: func(k *testKeys, _ string) []string {
			return []string{line("foo.example.com", k.ed25519.PublicKey()), "@revoked bar.example.com,!foo.example.com ssh-ed25519 !!!"}
		},
		server:  ed,
		address: at22("foo.example.com"),
	})
	add(strictCase{
		// Such a key can never be offered to an x/crypto client.
		name: "revoked key of a type this client cannot use",
		known: func(k *testKeys, _ string) []string {
			return []string{line("foo.example.com", k.ed25519.PublicKey()), "@revoked * ssh-xmss@openssh.com " + xmss}
		},
		server:  ed,
		address: at22("foo.example.com"),
	})

	// Certificates where known_hosts expects keys.
	add(strictCase{
		// OpenSSH loads the line and compares with sshkey_equal, which
		// never equals a plain key: the host is known, its key changed.
		name: "certificate on a plain line",
		known: func(k *testKeys, _ string) []string {
			return []string{line("foo.example.com", oldCert(k))}
		},
		server:  ed,
		address: at22("foo.example.com"),
		want:    hostkeys.ErrHostKeyChanged,
	})
	add(strictCase{
		// OpenSSH trusts the certified key as the CA; hostkeys skips the
		// line (a deliberate difference: it only rejects more).
		name: "certificate on a @cert-authority line",
		known: func(k *testKeys, _ string) []string {
			return []string{line("@cert-authority foo.example.com", certFor(k.ca.PublicKey(), k.ca2))}
		},
		server:  edCert,
		address: at22("foo.example.com"),
		want:    hostkeys.ErrUnknownHost,
		openssh: errAccepted,
	})
	return cases
}

// TestOpenSSHAcceptNewAgrees: under accept-new, OpenSSH and AcceptNew
// accept and record the same servers for the revocation and certificate
// situations where a skipped line would make a host look new.
func TestOpenSSHAcceptNewAgrees(t *testing.T) {
	t.Parallel()
	requireTool(t, "ssh")
	k := keys(t)
	tests := []struct {
		name    string
		known   func(k *testKeys) []string
		server  func(tb testing.TB, k *testKeys) []ssh.Signer
		want    error // nil: accepted and recorded
		openssh error // what OpenSSH does when it differs: errAccepted
	}{
		{
			name: "revoked certificate line",
			known: func(k *testKeys) []string {
				return []string{line("@revoked *", certFor(k.ed25519.PublicKey(), k.ca2, "old"))}
			},
			server: plainServer(func(k *testKeys) []ssh.Signer { return []ssh.Signer{k.ed25519} }),
			want:   hostkeys.ErrHostKeyRevoked,
		},
		{
			name: "revoked key written as rsa-sha2-512",
			known: func(k *testKeys) []string {
				return []string{typedLine("@revoked *", ssh.KeyAlgoRSASHA512, k.rsa.PublicKey())}
			},
			server: plainServer(func(k *testKeys) []ssh.Signer { return []ssh.Signer{k.rsa} }),
			want:   hostkeys.ErrHostKeyRevoked,
		},
		{
			name: "revoked RSA key with leading zeros",
			known: func(k *testKeys) []string {
				return []string{"@revoked * ssh-rsa " + rsaWithLeadingZeros(k.rsa.PublicKey())}
			},
			server: plainServer(func(k *testKeys) []ssh.Signer { return []ssh.Signer{k.rsa} }),
			want:   hostkeys.ErrHostKeyRevoked,
		},
		{
			name:   "certificate on a plain line",
			known:  func(k *testKeys) []string { return []string{line("*", certFor(k.ed25519.PublicKey(), k.ca2, "old"))} },
			server: plainServer(func(k *testKeys) []ssh.Signer { return []ssh.Signer{k.ed25519} }),
			want:   hostkeys.ErrHostKeyChanged,
		},
		{
			name:    "unreadable revoked line naming the host",
			known:   func(*testKeys) []string { return []string{"@revoked [*.example.com]:* ssh-ed25519 !!!"} },
			server:  plainServer(func(k *testKeys) []ssh.Signer { return []ssh.Signer{k.ed25519} }),
			want:    hostkeys.ErrHostKeyRevoked,
			openssh: errAccepted,
		},
		{
			name:   "unreadable revoked line naming another host",
			known:  func(*testKeys) []string { return []string{"@revoked bar.example.com ssh-ed25519 !!!"} },
			server: plainServer(func(k *testKeys) []ssh.Signer { return []ssh.Signer{k.ed25519} }),
		},
		{
			// OpenSSH retries the refused certificate as a plain key and
			// records it; hostkeys never trusts a CA-covered host on first
			// use with an uncertified key.
			name: "certificate signed with ssh-rsa (SHA-1), host covered by the CA",
			known: func(k *testKeys) []string {
				return []string{line("@cert-authority *.example.com,[*.example.com]:*", k.caRSA.PublicKey())}
			},
			server: func(tb testing.TB, k *testKeys) []ssh.Signer {
				return []ssh.Signer{keygenCert(tb, k, k.ed25519, ssh.KeyAlgoRSA, "foo.example.com")}
			},
			want:    hostkeys.ErrHostCertificate,
			openssh: errAccepted,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := startServer(t, tc.server(t, k)...)
			address := "foo.example.com:" + s.port()
			known := tc.known(k)

			theirs := writeFile(t, t.TempDir(), "known_hosts", known...)
			accepted, out := runOpenSSH(t, s, address, theirs, "accept-new")
			wantAccepted := tc.want == nil
			if tc.openssh != nil {
				wantAccepted = tc.openssh == errAccepted
			}
			assert.Equal(t, wantAccepted, accepted, "OpenSSH accepted = %v; it said:\n%s", accepted, out)
			added := 0
			if wantAccepted {
				added = 1
			}
			assert.Len(t, readLines(t, theirs), len(known)+added, "OpenSSH records only what it accepts")

			ours := writeFile(t, t.TempDir(), "known_hosts", known...)
			err := dial(t, s, address, acceptNew(t, ours, false))
			if tc.want == nil {
				assert.NoError(t, err)
				assert.Len(t, readLines(t, ours), len(known)+1)
				return
			}
			assert.ErrorIs(t, err, tc.want)
			assert.Len(t, readLines(t, ours), len(known), "nothing is recorded")
		})
	}
}

// TestRevokedLinesOpenSSHSkipsAreLogged: a @revoked line that OpenSSH
// would skip but hostkeys uses is logged once per read, with the reason
// and what it does instead.
func TestRevokedLinesOpenSSHSkipsAreLogged(t *testing.T) {
	t.Parallel()
	k := keys(t)
	file := writeFile(t, t.TempDir(), "known_hosts",
		"@revoked foo.example.com ssh-ed25519 !!!",
		typedLine("@revoked *", ssh.KeyAlgoRSA, k.ed25519.PublicKey()),
		"@revoked * ssh-ed25519",
	)
	logger, logs := newRecordLogger()
	_, err := hostkeys.New(&hostkeys.Config{Files: []string{file}, Logger: logger})
	require.NoError(t, err)
	msgs := logs.messages()
	require.Len(t, msgs, 3)
	assert.Contains(t, msgs[0], "WARN hostkeys: using a @revoked known_hosts line that OpenSSH would skip")
	assert.Contains(t, msgs[0], "line=1")
	assert.Contains(t, msgs[0], `refusing every key for hosts matching "foo.example.com" until it is fixed or removed`)
	assert.Contains(t, msgs[1], "line=2")
	assert.Contains(t, msgs[1], "the key is revoked all the same")
	assert.Contains(t, msgs[2], "refusing every key for hosts matching \"*\"")
}
