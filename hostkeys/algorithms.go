package hostkeys

import (
	"strings"

	"golang.org/x/crypto/ssh"
)

// preferredHostKeyAlgorithms returns OpenSSH 9.2's default
// HostKeyAlgorithms, restricted to what x/crypto/ssh implements for host
// keys without security problems: no ssh-rsa (SHA-1 signatures, disabled
// by OpenSSH since 8.8) and no ssh-dss. The sk-* host key types are left
// out because x/crypto cannot verify them as host keys. Each call returns
// a new slice.
func preferredHostKeyAlgorithms() []string {
	return []string{
		ssh.CertAlgoED25519v01,
		ssh.CertAlgoECDSA256v01,
		ssh.CertAlgoECDSA384v01,
		ssh.CertAlgoECDSA521v01,
		ssh.CertAlgoRSASHA512v01,
		ssh.CertAlgoRSASHA256v01,
		ssh.KeyAlgoED25519,
		ssh.KeyAlgoECDSA256,
		ssh.KeyAlgoECDSA384,
		ssh.KeyAlgoECDSA521,
		ssh.KeyAlgoRSASHA512,
		ssh.KeyAlgoRSASHA256,
	}
}

// algorithmKeyType maps a host key algorithm to the type of the key it
// uses: rsa-sha2-256 and rsa-sha2-512 are signature algorithms over an
// "ssh-rsa" key (RFC 8332, section 2), and a certificate algorithm uses the
// certified key's type.
func algorithmKeyType(algo string) (keyType string, isCert bool) {
	switch algo {
	case ssh.KeyAlgoRSASHA256, ssh.KeyAlgoRSASHA512:
		return ssh.KeyAlgoRSA, false
	case ssh.CertAlgoRSASHA256v01, ssh.CertAlgoRSASHA512v01:
		return ssh.KeyAlgoRSA, true
	}
	if strings.Contains(algo, "-cert-v01@openssh.com") {
		return plainKeyType(algo), true
	}
	return algo, false
}

// HostKeyAlgorithms returns the value for ssh.ClientConfig.HostKeyAlgorithms
// when dialing address ("host:port"). It is never empty.
//
// x/crypto/ssh negotiates one host key algorithm, the first of the client's
// list that the server supports, and the callback then sees only that key
// (golang/go#29286). With x/crypto's default list, a server that has both an
// ed25519 and an ecdsa key may present the one known_hosts does not have,
// and a perfectly known host fails. So, like OpenSSH's order_hostkeyalgs,
// the algorithms of the keys known for the host come first: the signature
// algorithms of each known key type (rsa-sha2-512 and rsa-sha2-256 for an
// ssh-rsa key) and their certificate variants, and every certificate
// algorithm when a @cert-authority line covers the host, since a CA of one
// type signs host keys of any type. The other algorithms follow, so that a
// server that no longer has any known key type still reaches the host key
// callback and is reported as a changed key (a typed *HostKeyError), rather
// than failing with x/crypto's untyped "no common algorithm" error; the
// callback accepts only known keys either way.
//
// Within each group the order is OpenSSH's: certificates, ed25519, ecdsa,
// rsa-sha2-512, rsa-sha2-256. For an unknown host that is the whole list.
func (k *KnownHosts) HostKeyAlgorithms(address string) []string {
	name, host, port, err := knownHostsName(address)
	if err != nil {
		return preferredHostKeyAlgorithms()
	}
	db, err := k.current()
	if err != nil {
		// The callback reports the error; offer the default order meanwhile.
		return preferredHostKeyAlgorithms()
	}
	entries := db.lookup(name)
	if len(entries) == 0 && port != "22" {
		// The callback retries a non-22 port under the bare host name, as
		// OpenSSH does; steer towards the keys that retry would accept.
		// (OpenSSH itself orders by the "[host]:port" entries only.)
		entries = db.lookup(host)
	}
	return db.hostKeyAlgorithms(entries)
}

func (db *database) hostKeyAlgorithms(entries []*entry) []string {
	knownTypes := map[string]bool{}
	haveCA := false
	for _, e := range entries {
		if _, revoked := db.revoked[e.blob]; revoked {
			continue // a revoked key can never pass; do not steer towards it
		}
		if e.marker == markerCA {
			haveCA = true
		} else {
			knownTypes[e.key.Type()] = true
		}
	}
	preferred := preferredHostKeyAlgorithms()
	first := make([]string, 0, len(preferred))
	var rest []string
	for _, a := range preferred {
		typ, isCert := algorithmKeyType(a)
		if knownTypes[typ] || (isCert && haveCA) {
			first = append(first, a)
		} else {
			rest = append(rest, a)
		}
	}
	return append(first, rest...)
}
