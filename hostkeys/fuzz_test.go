package hostkeys

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/pem"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
)

// seedKey is a fixed ed25519 public key for seed corpora.
func seedKey(tb testing.TB) ssh.PublicKey {
	tb.Helper()
	pub := ed25519.NewKeyFromSeed(make([]byte, ed25519.SeedSize)).Public()
	k, err := ssh.NewPublicKey(pub)
	if err != nil {
		tb.Fatal(err)
	}
	return k
}

// knownHostsSeeds are lines as OpenSSH tools write them.
func knownHostsSeeds(tb testing.TB) []string {
	k := seedKey(tb)
	b64 := base64.StdEncoding.EncodeToString(k.Marshal())
	return []string{
		"github.com ssh-ed25519 " + b64,
		"[gitlab.example.com]:2222,[10.0.0.7]:2222 ssh-ed25519 " + b64 + " root@host",
		encodeHashedName(make([]byte, 20), "[example.com]:2222") + " ssh-ed25519 " + b64,
		"@cert-authority *.example.com,!bad.example.com ssh-ed25519 " + b64,
		"@revoked * ssh-ed25519 " + b64,
		"@revoked * ssh-ed25519-cert-v01@openssh.com AAAAIHNzaC1lZDI1NTE5LWNlcnQtdjAxQG9wZW5zc2guY29t",
		"@revoked foo.example.com rsa-sha2-512 AAAAB3NzaC1yc2EAAAADAQAB",
		"@REVOKED * ssh-ed25519 " + b64,
		"@revoked |1|bad|hash ssh-ed25519 !!!",
		"@revoked",
		"host rsa-sha2-256 AAAAB3NzaC1yc2EAAAADAQAB",
		"host 1024 35 1234567",
		"# comment",
		"   ",
		"@bogus x ssh-ed25519 " + b64,
		"host ssh-rsa AAAA",
		"[*.example.com]:* ssh-ed25519 " + b64 + "\r",
	}
}

func FuzzParseLine(f *testing.F) {
	for _, s := range knownHostsSeeds(f) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, line string) {
		e, err := parseLine(line)
		if err != nil || e == nil {
			return
		}
		if e.unreadable != nil {
			if e.marker != markerRevoked || e.key != nil {
				t.Fatalf("parseLine(%q): an unreadable line that is not a @revoked line without a key", line)
			}
			return
		}
		if e.key == nil || string(e.key.Marshal()) != e.blob {
			t.Fatalf("parseLine(%q): blob differs from the key", line)
		}
		if _, isCert := e.key.(*ssh.Certificate); isCert && e.marker != markerNone {
			t.Fatalf("parseLine(%q) kept a certificate on a %v line", line, e.marker)
		}
		if e.hosts == "" || strings.ContainsAny(e.hosts, " \t") {
			t.Fatalf("parseLine(%q): host field %q", line, e.hosts)
		}
		// Writing the entry back and parsing it again gives the same entry.
		prefix := ""
		switch e.marker {
		case markerCA:
			prefix = markerCAText + " "
		case markerRevoked:
			prefix = markerRevokedText + " "
		}
		again, err := parseLine(prefix + e.hosts + " " + e.key.Type() + " " + base64.StdEncoding.EncodeToString(e.key.Marshal()))
		if err != nil || again == nil || again.marker != e.marker || again.hosts != e.hosts || again.blob != e.blob {
			t.Fatalf("parseLine(%q) does not round-trip: %v", line, err)
		}
		// An RSA key's type may be written as its signature algorithms.
		if e.key.Type() == ssh.KeyAlgoRSA {
			for _, typ := range []string{ssh.KeyAlgoRSASHA256, ssh.KeyAlgoRSASHA512} {
				alias, err := parseLine(prefix + e.hosts + " " + typ + " " + base64.StdEncoding.EncodeToString(e.key.Marshal()))
				if err != nil || alias == nil || alias.blob != e.blob {
					t.Fatalf("parseLine(%q) with type %s: %v", line, typ, err)
				}
			}
		}
	})
}

func FuzzDatabase(f *testing.F) {
	f.Add([]byte(strings.Join(knownHostsSeeds(f), "\n")), "example.com:2222")
	f.Add([]byte(strings.Join(knownHostsSeeds(f), "\r\n")), "github.com")
	f.Add([]byte("a,b,c ssh-ed25519 AAAA\n\n\n"), "b:22")
	key := seedKey(f)
	f.Fuzz(func(t *testing.T, data []byte, address string) {
		db := parseDatabase([]string{"f"}, [][]byte{data})
		name, host, port, err := knownHostsName(address)
		if err != nil {
			return
		}
		entries := db.lookup(name)
		for i, e := range entries {
			if !e.matcher.match(name) {
				t.Fatalf("lookup(%q) returned a line that does not match", name)
			}
			if i > 0 && entries[i-1].order >= e.order {
				t.Fatalf("lookup(%q) out of order or duplicated", name)
			}
		}
		algos := db.hostKeyAlgorithms(entries)
		if preferred := preferredHostKeyAlgorithms(); len(algos) != len(preferred) || !sameSet(algos, preferred) {
			t.Fatalf("hostKeyAlgorithms(%q) = %v, not a permutation of the preferred list", name, algos)
		}
		v := db.verify(name, host, port, key, checkOptions{now: time.Now})
		if v.reason == nil && v.matched == nil {
			t.Fatalf("verify(%q) accepted without a matching line", name)
		}
		if v.reason == nil && v.matched.blob != string(key.Marshal()) {
			t.Fatalf("verify(%q) accepted a key through a line with another key", name)
		}
		if _, revoked := db.revoked[string(key.Marshal())]; revoked && v.reason != ErrHostKeyRevoked {
			t.Fatalf("verify(%q) = %v for a revoked key", name, v.reason)
		}
		// No key passes a host that an unreadable @revoked line names.
		if db.unreadableRevocation(name, host) != nil && v.reason != ErrHostKeyRevoked {
			t.Fatalf("verify(%q) = %v under an unreadable @revoked line", name, v.reason)
		}
	})
}

func sameSet(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(a, b)
}

func FuzzKnownHostsName(f *testing.F) {
	for _, s := range []string{"example.com:22", "Example.com:2222", "[::1]:22", "::1", "[fe80::1%eth0]:22", "host", ":22", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, address string) {
		name, host, port, err := knownHostsName(address)
		if err != nil {
			return
		}
		if name != strings.ToLower(name) {
			t.Fatalf("knownHostsName(%q) = %q, not lowercased", address, name)
		}
		again, _, _, err := knownHostsName(net.JoinHostPort(host, port))
		if err != nil || again != name {
			t.Fatalf("knownHostsName(%q) = %q, but for %q it is %q (%v)", address, name, net.JoinHostPort(host, port), again, err)
		}
	})
}

func FuzzParseHostKey(f *testing.F) {
	for _, name := range []string{"pkcs8-aes256-ed25519.pem", "pkcs8-scrypt-ecdsa.pem", "openssh-encrypted-ed25519"} {
		data, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data, []byte("s3cret-pass"))
		f.Add(data, []byte(nil))
		f.Add(data, []byte("Xq9-nope"))
	}
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	block, err := ssh.MarshalPrivateKey(priv, "")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(pem.EncodeToMemory(block), []byte(nil))
	f.Add([]byte("-----BEGIN ENCRYPTED PRIVATE KEY-----\nMAA=\n-----END ENCRYPTED PRIVATE KEY-----\n"), []byte("x"))
	f.Fuzz(func(t *testing.T, data, passphrase []byte) {
		signer, err := parseHostKey(data, passphrase)
		if (signer == nil) == (err == nil) {
			t.Fatalf("parseHostKey = %v, %v: want exactly one of a signer and an error", signer, err)
		}
		// A passphrase that cannot occur in any message by chance never
		// shows up in the error either.
		marked := append([]byte("\x01pw\x02"), passphrase...)
		if _, err := parseHostKey(data, marked); err != nil && strings.Contains(err.Error(), "\x01pw\x02") {
			t.Fatalf("parseHostKey error %q contains the passphrase", err)
		}
	})
}

func FuzzParsePolicy(f *testing.F) {
	for _, s := range []string{"yes", "no", "ask", "accept-new", "off", " YES ", "maybe", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p, err := ParsePolicy(s)
		if err != nil {
			if p != Strict {
				t.Fatalf("ParsePolicy(%q) = %v with an error; want the safe Strict", s, p)
			}
			return
		}
		if again, err := ParsePolicy(p.String()); err != nil || again != p {
			t.Fatalf("ParsePolicy(%q) = %v, which does not round-trip: %v, %v", s, p, again, err)
		}
	})
}
