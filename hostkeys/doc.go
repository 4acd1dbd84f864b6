// Package hostkeys provides strict OpenSSH known_hosts checking for SSH
// clients and loading or creating host keys for SSH servers.
//
// Client side:
//
//	kh, err := hostkeys.New(nil) // Strict, ~/.ssh/known_hosts and /etc/ssh/ssh_known_hosts
//	if err != nil { ... }
//	cfg := &ssh.ClientConfig{
//		User:              "deploy",
//		Auth:              auth,
//		HostKeyCallback:   kh.HostKeyCallback(),
//		HostKeyAlgorithms: kh.HostKeyAlgorithms(addr), // do not skip this (golang/go#29286)
//	}
//	client, err := ssh.Dial("tcp", addr, cfg)
//	var hkErr *hostkeys.HostKeyError
//	if errors.As(err, &hkErr) { ... } // host, fingerprint, known keys with file:line
//
// Server side:
//
//	signer, err := hostkeys.LoadOrCreateHostKey("/var/lib/app/ssh_host_ed25519_key", nil)
//	serverConfig.AddHostKey(signer)
//
// It reads what OpenSSH 9.2 reads in known_hosts (hashed names,
// "[host]:port", patterns, @cert-authority and @revoked lines) and decides
// as OpenSSH's ssh does, checked against the real client; where it differs
// it only rejects more. docs/hostkeys.md in the repository has the details:
// the policies, the matching rules, how @revoked lines OpenSSH would skip
// are handled, the differences from OpenSSH and why this package does not
// wrap x/crypto/ssh/knownhosts.
package hostkeys
