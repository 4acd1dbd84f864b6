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
//		HostKeyAlgorithms: kh.HostKeyAlgorithms(addr), // do not skip this
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
// # Policies
//
// Strict, the zero value, rejects unknown hosts, changed keys and revoked
// keys. AcceptNew (OpenSSH StrictHostKeyChecking=accept-new) appends a host
// that has no entry at all to the first known_hosts file, safely when many
// goroutines or processes do so at once (flock on the file, a re-read under
// the lock, one O_APPEND write), and rejects everything Strict rejects.
// Insecure accepts any key and logs a warning with its fingerprint on every
// connection.
//
// # What is read
//
// Everything OpenSSH 9.2 reads and writes in known_hosts: hashed names
// ("|1|salt|hash"), "[host]:port" for ports other than 22, several names per
// line, "*" and "?" wildcards and "!" negation (matched against the whole
// name, "[host]:port" included, exactly as OpenSSH's match_pattern does),
// several keys per host of one or several types, @cert-authority lines
// (host certificates: CA signature, principals, validity period) and
// @revoked lines. A non-22 port that has no plain key of its own is
// retried under the bare host name, as OpenSSH does ("checking without port
// identifier"). Malformed lines are skipped with a logged warning, as
// OpenSSH skips them. Files are read again when they change.
//
// # Algorithm negotiation (golang/go#29286)
//
// x/crypto/ssh negotiates a single host key algorithm before the callback
// runs, choosing the first of ClientConfig.HostKeyAlgorithms that the
// server supports. With the default list, a server holding ed25519 and
// ecdsa keys may present one that known_hosts does not list, and a known
// host is rejected. HostKeyAlgorithms puts the algorithms of the known keys
// first (rsa-sha2-512 and rsa-sha2-256 for an ssh-rsa key; every
// certificate algorithm when a @cert-authority line covers the host), the
// way OpenSSH orders them, then the rest, so that a server that lost the
// known key types still reaches the callback and gets a typed error.
//
// # Why not x/crypto/ssh/knownhosts or github.com/skeema/knownhosts
//
// This package parses known_hosts itself rather than wrapping either; it
// does what skeema/knownhosts does for algorithms, and more:
//   - x/crypto rejects a whole file for one malformed line; OpenSSH, and
//     this package, skip the line.
//   - x/crypto matches host and port separately, so "*" does not cover
//     "[host]:2222" (golang/go#52056); skeema works around it for wildcard
//     lines only, while OpenSSH retries every port-22 entry for a non-22
//     port ("checking without port identifier"), as this package does.
//   - skeema offers the certificate algorithm of the CA's key type, but a
//     CA of one type signs host keys of any type; OpenSSH, and this
//     package, offer all certificate algorithms.
//   - x/crypto accepts a CA key presented as a plain host key, and does not
//     fall back to the plain key when a certificate's CA is unknown.
//   - neither returns the file:line, fingerprint and fix-it text a user
//     needs, nor writes new hosts safely across processes.
//
// # Deliberate differences from OpenSSH
//
// Both only ever reject more: a @revoked key is refused for every host,
// whatever its host field (sshd(8): "must not ever be accepted"); and under
// AcceptNew a host that a @cert-authority line covers is never trusted on
// first use with an uncertified key (OpenSSH accept-new would record it).
// ssh-rsa (SHA-1) and ssh-dss are never offered, as in OpenSSH 9.2's
// defaults.
package hostkeys
