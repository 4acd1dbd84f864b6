package hostkeys_test

import (
	"crypto/ed25519"
	"encoding/base64"
	"errors"
	"fmt"
	"log"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/crypto/ssh"

	"github.com/dockssh/dockssh/hostkeys"
)

// exampleKey returns a fixed ed25519 public key, so outputs are stable.
func exampleKey(seed byte) ssh.PublicKey {
	s := make([]byte, ed25519.SeedSize)
	s[0] = seed
	k, err := ssh.NewPublicKey(ed25519.NewKeyFromSeed(s).Public())
	if err != nil {
		panic(err)
	}
	return k
}

// The client side: a strict ssh.ClientConfig from the user's known_hosts.
// HostKeyAlgorithms matters as much as HostKeyCallback: without it x/crypto
// may negotiate a key type that known_hosts does not hold for the host.
func ExampleKnownHosts_HostKeyCallback() {
	kh, err := hostkeys.New(nil) // strict; ~/.ssh/known_hosts and /etc/ssh/ssh_known_hosts
	if err != nil {
		log.Fatal(err)
	}
	addr := "docker.example.com:22"
	cfg := &ssh.ClientConfig{
		User:              "deploy",
		Auth:              []ssh.AuthMethod{ /* agent, keys */ },
		HostKeyCallback:   kh.HostKeyCallback(),
		HostKeyAlgorithms: kh.HostKeyAlgorithms(addr),
	}
	client, err := ssh.Dial("tcp", addr, cfg)
	var hkErr *hostkeys.HostKeyError
	if errors.As(err, &hkErr) {
		// The message says what happened and how to fix it; the fields
		// are there for programs.
		log.Fatalf("%v (reason: %v, offered %s %s)", hkErr, hkErr.Reason, hkErr.KeyType, hkErr.Fingerprint)
	}
	if err != nil {
		log.Fatal(err)
	}
	defer client.Close()
}

// The algorithms to offer put the types known_hosts holds for the host
// first, so a host known by its ecdsa key is not asked for its ed25519 key.
func ExampleKnownHosts_HostKeyAlgorithms() {
	dir, _ := os.MkdirTemp("", "hostkeys-example")
	defer os.RemoveAll(dir)
	file := filepath.Join(dir, "known_hosts")
	key := exampleKey(1)
	line := "[git.example.com]:2222 " + key.Type() + " " + base64.StdEncoding.EncodeToString(key.Marshal()) + "\n"
	if err := os.WriteFile(file, []byte(line), 0o600); err != nil {
		log.Fatal(err)
	}

	kh, err := hostkeys.New(&hostkeys.Config{Files: []string{file}})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(kh.HostKeyAlgorithms("git.example.com:2222")[:2])
	fmt.Println(kh.HostKeyAlgorithms("unknown.example.com:22")[:2])
	// Output:
	// [ssh-ed25519-cert-v01@openssh.com ssh-ed25519]
	// [ssh-ed25519-cert-v01@openssh.com ecdsa-sha2-nistp256-cert-v01@openssh.com]
}

// A changed host key is a *HostKeyError that errors.Is and errors.As see,
// also through the wrapping of ssh.Dial.
func ExampleHostKeyError() {
	dir, _ := os.MkdirTemp("", "hostkeys-example")
	defer os.RemoveAll(dir)
	file := filepath.Join(dir, "known_hosts")
	old := exampleKey(1)
	line := "# pinned\nbuild.example.com " + old.Type() + " " + base64.StdEncoding.EncodeToString(old.Marshal()) + "\n"
	if err := os.WriteFile(file, []byte(line), 0o600); err != nil {
		log.Fatal(err)
	}
	kh, err := hostkeys.New(&hostkeys.Config{Files: []string{file}})
	if err != nil {
		log.Fatal(err)
	}

	// What the handshake would present: another key.
	err = kh.HostKeyCallback()("build.example.com:22", &net.TCPAddr{IP: net.IPv4(192, 0, 2, 7), Port: 22}, exampleKey(2))

	fmt.Println(errors.Is(err, hostkeys.ErrHostKeyChanged))
	var hkErr *hostkeys.HostKeyError
	if errors.As(err, &hkErr) {
		fmt.Println(hkErr.Host, hkErr.KeyType, hkErr.Fingerprint)
		fmt.Println(hkErr.Known[0].Line, hkErr.Known[0].Key.Type())
		fmt.Println(strings.Contains(err.Error(), "man-in-the-middle"))
	}
	// Output:
	// true
	// build.example.com ssh-ed25519 SHA256:4+jTG76cc6rfx4vJn1HObI6M6GeUcVmxEOgC8G0qwII
	// 2 ssh-ed25519
	// true
}

// AcceptNew trusts a host on first use and pins it from then on.
func ExampleConfig_acceptNew() {
	dir, _ := os.MkdirTemp("", "hostkeys-example")
	defer os.RemoveAll(dir)
	file := filepath.Join(dir, ".ssh", "known_hosts")
	kh, err := hostkeys.New(&hostkeys.Config{
		Files:        []string{file},
		Policy:       hostkeys.AcceptNew,
		HashNewHosts: true,
		Logger:       slog.New(slog.DiscardHandler),
	})
	if err != nil {
		log.Fatal(err)
	}
	cb := kh.HostKeyCallback()
	remote := &net.TCPAddr{IP: net.IPv4(192, 0, 2, 8), Port: 2222}

	fmt.Println(cb("new.example.com:2222", remote, exampleKey(1))) // first contact: added
	fmt.Println(cb("new.example.com:2222", remote, exampleKey(1))) // known now
	fmt.Println(errors.Is(cb("new.example.com:2222", remote, exampleKey(2)), hostkeys.ErrHostKeyChanged))

	data, _ := os.ReadFile(file)
	fmt.Println(strings.HasPrefix(string(data), "|1|"), strings.Count(string(data), "\n"))
	// Output:
	// <nil>
	// <nil>
	// true
	// true 1
}

// The server side: a persistent host key, created on first start.
func ExampleLoadOrCreateHostKey() {
	dir, _ := os.MkdirTemp("", "hostkeys-example")
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "etc", "host_ed25519_key")

	signer, err := hostkeys.LoadOrCreateHostKey(path, &hostkeys.KeyConfig{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		log.Fatal(err)
	}
	cfg := &ssh.ServerConfig{}
	cfg.AddHostKey(signer)

	info, _ := os.Stat(path)
	fmt.Println(signer.PublicKey().Type(), info.Mode().Perm())

	// The next start loads the same key.
	again, _ := hostkeys.LoadOrCreateHostKey(path, nil)
	fmt.Println(ssh.FingerprintSHA256(again.PublicKey()) == ssh.FingerprintSHA256(signer.PublicKey()))
	// Output:
	// ssh-ed25519 -rw-------
	// true
}

// An encrypted key needs its passphrase; without one the error says so.
func ExampleLoadHostKey() {
	dir, _ := os.MkdirTemp("", "hostkeys-example")
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "key")
	pass := []byte("correct horse battery staple")
	if _, err := hostkeys.LoadOrCreateHostKey(path, &hostkeys.KeyConfig{Passphrase: pass, Logger: slog.New(slog.DiscardHandler)}); err != nil {
		log.Fatal(err)
	}

	_, err := hostkeys.LoadHostKey(path, nil)
	fmt.Println(errors.Is(err, hostkeys.ErrPassphraseRequired))

	signer, err := hostkeys.LoadHostKey(path, &hostkeys.KeyConfig{Passphrase: pass})
	fmt.Println(signer.PublicKey().Type(), err)

	if err := os.Chmod(path, 0o644); err != nil {
		log.Fatal(err)
	}
	_, err = hostkeys.LoadHostKey(path, &hostkeys.KeyConfig{Passphrase: pass})
	var permErr *hostkeys.KeyPermissionError
	fmt.Println(errors.As(err, &permErr), permErr.Mode)
	// Output:
	// true
	// ssh-ed25519 <nil>
	// true -rw-r--r--
}

// ParsePolicy maps ssh_config's StrictHostKeyChecking.
func ExampleParsePolicy() {
	for _, v := range []string{"yes", "accept-new", "no", "ask"} {
		p, _ := hostkeys.ParsePolicy(v)
		fmt.Println(v, "->", p)
	}
	// Output:
	// yes -> yes
	// accept-new -> accept-new
	// no -> no
	// ask -> yes
}

// DefaultFiles are OpenSSH's defaults, under $HOME.
func ExampleDefaultFiles() {
	files, err := hostkeys.DefaultFiles()
	if err != nil {
		log.Fatal(err) // HOME is not set
	}
	fmt.Println(len(files), filepath.Base(files[0]), files[2])
	// Output:
	// 4 known_hosts /etc/ssh/ssh_known_hosts
}
