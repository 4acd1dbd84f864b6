package hostkeys_test

import (
	"fmt"
	"net"
	"os"
	"testing"
	"time"

	"golang.org/x/crypto/ssh/knownhosts"

	"github.com/dockssh/dockssh/hostkeys"
)

// benchFile writes a known_hosts file of n hosts, hashed or not, and
// returns it with the name of its last host (the worst case for a scan).
func benchFile(b *testing.B, n int, hash bool) (string, string) {
	b.Helper()
	k := keys(b)
	lines := make([]string, n)
	last := ""
	for i := range lines {
		name := fmt.Sprintf("host%d.example.com", i)
		field := name
		if hash {
			field = knownhosts.HashHostname(name)
		}
		lines[i] = line(field, k.ed25519.PublicKey())
		last = name
	}
	file := writeFile(b, b.TempDir(), "known_hosts", lines...)
	// An old mtime, as real files have: a file modified in the last
	// seconds is compared by content on every call (filestamp.RacyWindow).
	old := time.Now().Add(-time.Hour)
	if err := os.Chtimes(file, old, old); err != nil {
		b.Fatal(err)
	}
	return file, last
}

func BenchmarkCallback(b *testing.B) {
	k := keys(b)
	remote := &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 22}
	for _, tc := range []struct {
		name string
		n    int
		hash bool
	}{
		{"plain-1k", 1000, false},
		{"hashed-1k", 1000, true},
		{"hashed-10k", 10000, true},
	} {
		file, last := benchFile(b, tc.n, tc.hash)
		address := last + ":22"

		b.Run("hostkeys/"+tc.name, func(b *testing.B) {
			kh, err := hostkeys.New(&hostkeys.Config{Files: []string{file}, Logger: discardLogger()})
			if err != nil {
				b.Fatal(err)
			}
			cb := kh.HostKeyCallback()
			b.ReportAllocs()
			for b.Loop() {
				if err := cb(address, remote, k.ed25519.PublicKey()); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run("x-crypto-knownhosts/"+tc.name, func(b *testing.B) {
			cb, err := knownhosts.New(file)
			if err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			for b.Loop() {
				if err := cb(address, remote, k.ed25519.PublicKey()); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkHostKeyAlgorithms(b *testing.B) {
	file, last := benchFile(b, 1000, false)
	kh, err := hostkeys.New(&hostkeys.Config{Files: []string{file}, Logger: discardLogger()})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if len(kh.HostKeyAlgorithms(last+":22")) == 0 {
			b.Fatal("no algorithms")
		}
	}
}

// BenchmarkLoad measures New, which parses every file once.
func BenchmarkLoad(b *testing.B) {
	for _, n := range []int{1000, 10000} {
		file, _ := benchFile(b, n, true)
		b.Run(fmt.Sprintf("hashed-%d/hostkeys", n), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := hostkeys.New(&hostkeys.Config{Files: []string{file}, Logger: discardLogger()}); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(fmt.Sprintf("hashed-%d/x-crypto-knownhosts", n), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := knownhosts.New(file); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkAcceptNew measures adding one new host to a file of 1000 hosts:
// lock, re-read, append, fsync. The file is reset between iterations,
// outside the timer.
func BenchmarkAcceptNew(b *testing.B) {
	k := keys(b)
	remote := &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 22}
	file, _ := benchFile(b, 1000, false)
	orig, err := os.ReadFile(file)
	if err != nil {
		b.Fatal(err)
	}
	kh, err := hostkeys.New(&hostkeys.Config{Files: []string{file}, Policy: hostkeys.AcceptNew, Logger: discardLogger()})
	if err != nil {
		b.Fatal(err)
	}
	cb := kh.HostKeyCallback()
	for b.Loop() {
		if err := cb("new.example.com:22", remote, k.ed25519.PublicKey()); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		if err := os.WriteFile(file, orig, 0o600); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
	}
}
