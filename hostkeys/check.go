package hostkeys

import (
	"errors"
	"fmt"
	"net"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/dockssh/dockssh/internal/logtext"
)

// verdict is the outcome of checking one offered key against a database.
type verdict struct {
	reason    error  // nil when the key is accepted
	matched   *entry // the line that accepted the key
	known     []*entry
	revoked   *entry // the @revoked line that refused the key
	revokedCA bool
	certErr   error
	ca        *entry // the trusted CA of a certificate that failed its checks
}

// checkOptions are the settings a check depends on.
type checkOptions struct {
	now         func() time.Time // for certificate validity
	allowSHA1CA bool             // Config.AllowSHA1CASignatures
}

// check decides whether key is acceptable for the known_hosts name; host is
// the bare host name that host certificates must list as a principal.
//
// The order of the steps follows OpenSSH's check_host_key (sshconnect.c),
// with three deliberate differences that only ever reject more:
//   - a @revoked line revokes its key for every host, whatever its host
//     field says (sshd(8): "must not ever be accepted");
//   - a @revoked line whose key cannot be read refuses every key for the
//     hosts it names, where OpenSSH skips it;
//   - a host matched only by @cert-authority lines counts as known, so an
//     uncertified key for it is a changed key, never a new one.
//
// Keys are compared as parsed keys (see entry.blob), never as the bytes of
// the file.
func (db *database) check(name, host string, key ssh.PublicKey, opts checkOptions) verdict {
	plain := key
	cert, isCert := key.(*ssh.Certificate)
	if isCert {
		plain = cert.Key
	}
	known := db.lookup(name)
	plainBlob := string(plain.Marshal())

	if r := db.unreadableRevocation(name, host); r != nil {
		return verdict{reason: ErrHostKeyRevoked, known: known, revoked: r}
	}
	if r := db.revoked[plainBlob]; r != nil {
		return verdict{reason: ErrHostKeyRevoked, known: known, revoked: r}
	}
	if isCert {
		if r := db.revoked[string(cert.SignatureKey.Marshal())]; r != nil {
			return verdict{reason: ErrHostKeyRevoked, known: known, revoked: r, revokedCA: true}
		}
	}

	var certErr error
	caTrusted := false
	var ca *entry
	if isCert {
		caBlob := string(cert.SignatureKey.Marshal())
		for _, e := range known {
			if e.marker == markerCA && e.blob == caBlob {
				ca = e
				break
			}
		}
		switch {
		case ca == nil:
			certErr = fmt.Errorf("signed by CA %s %s, which known_hosts does not trust for %s",
				cert.SignatureKey.Type(), ssh.FingerprintSHA256(cert.SignatureKey), name)
		case cert.CertType != ssh.HostCert:
			caTrusted = true
			certErr = fmt.Errorf("certificate type %d is not a host certificate", cert.CertType)
		default:
			caTrusted = true
			if err := checkHostCert(host, cert, opts); err != nil {
				certErr = err
			} else {
				return verdict{matched: ca, known: known}
			}
		}
		// Like OpenSSH: a certificate that does not establish trust is
		// retried as its plain key.
	}

	for _, e := range known {
		if e.marker == markerNone && e.blob == plainBlob {
			return verdict{matched: e, known: known}
		}
	}
	v := verdict{known: known, certErr: certErr}
	switch {
	case len(known) == 0:
		v.reason = ErrUnknownHost
	case caTrusted:
		v.reason = ErrHostCertificate
		v.ca = ca
	default:
		v.reason = ErrHostKeyChanged
	}
	return v
}

// checkHostCert checks a host certificate signed by a trusted CA the way
// OpenSSH's sshkey_cert_check_host does: the CA's signature algorithm, and
// with x/crypto's CertChecker the CA signature, the principals (the bare
// host, as OpenSSH checks), the validity interval and that no critical
// option is present (host certificates define none).
func checkHostCert(host string, cert *ssh.Certificate, opts checkOptions) error {
	if err := checkCASignatureAlgorithm(cert.Signature, opts.allowSHA1CA); err != nil {
		return err
	}
	if err := checkKeySize(cert.Key); err != nil {
		return fmt.Errorf("certified key: %w", err)
	}
	checker := ssh.CertChecker{Clock: opts.now}
	return checker.CheckCert(host, cert)
}

// errDisallowedCASignature is the CertErr of a host certificate whose CA
// signature algorithm is not allowed.
var errDisallowedCASignature = errors.New("certificate signed with disallowed algorithm")

// checkCASignatureAlgorithm allows the signature algorithms of OpenSSH
// 9.2's default CASignatureAlgorithms (SSH_ALLOWED_CA_SIGALGS in
// myproposal.h), plus ssh-rsa (RSA with SHA-1) when allowSHA1 is set.
func checkCASignatureAlgorithm(sig *ssh.Signature, allowSHA1 bool) error {
	if sig == nil {
		return fmt.Errorf("%w: none", errDisallowedCASignature)
	}
	switch sig.Format {
	case ssh.KeyAlgoED25519, ssh.KeyAlgoECDSA256, ssh.KeyAlgoECDSA384, ssh.KeyAlgoECDSA521,
		ssh.KeyAlgoSKED25519, ssh.KeyAlgoSKECDSA256, ssh.KeyAlgoRSASHA512, ssh.KeyAlgoRSASHA256:
		return nil
	case ssh.KeyAlgoRSA:
		if allowSHA1 {
			return nil
		}
		return fmt.Errorf("%w %s (RSA with SHA-1, refused by default as OpenSSH's CASignatureAlgorithms does; re-sign it with ssh-keygen -s CA_KEY -t rsa-sha2-512, or set Config.AllowSHA1CASignatures)",
			errDisallowedCASignature, sig.Format)
	}
	return fmt.Errorf("%w %q", errDisallowedCASignature, logtext.Clip(sig.Format, maxQuoted))
}

// verify is check plus OpenSSH's retry without the port: when a non-22
// port's "[host]:port" name has no plain key at all (OpenSSH's HOST_NEW;
// since OpenSSH 8.x any non-matching plain key of any type makes
// HOST_CHANGED instead), OpenSSH checks the key against the bare host name
// and accepts it if that name knows it ("checking without port
// identifier", check_host_key in sshconnect.c). The verdict for the port
// name is kept when the retry does not accept, so errors name what the user
// dialed.
func (db *database) verify(name, host, port string, key ssh.PublicKey, opts checkOptions) verdict {
	v := db.check(name, host, key, opts)
	if v.reason == nil || v.reason == ErrHostKeyRevoked || port == "22" || v.hasPlainKey() {
		return v
	}
	if bare := db.check(host, host, key, opts); bare.reason == nil {
		return bare
	}
	return v
}

// hasPlainKey reports whether a plain (not @cert-authority) key is known.
func (v *verdict) hasPlainKey() bool {
	for _, e := range v.known {
		if e.marker == markerNone {
			return true
		}
	}
	return false
}

// hostKeyError turns a rejecting verdict into the error the callback returns.
func (v *verdict) hostKeyError(name, address, host, port, file string, remote net.Addr, key ssh.PublicKey) *HostKeyError {
	fpKey := key
	if cert, ok := key.(*ssh.Certificate); ok {
		fpKey = cert.Key
	}
	e := &HostKeyError{
		Reason:         v.reason,
		Host:           name,
		Address:        address,
		Remote:         remote,
		KeyType:        key.Type(),
		Fingerprint:    ssh.FingerprintSHA256(fpKey),
		CertErr:        v.certErr,
		KnownHostsFile: file,
		port:           port,
		hostOnly:       host,
		revokedCA:      v.revokedCA,
	}
	for _, k := range v.known {
		e.Known = append(e.Known, k.knownKey())
	}
	if v.revoked != nil {
		r := v.revoked.knownKey()
		e.Revoked = &r
		e.revokedUnreadable = v.revoked.unreadable
		e.revokedHosts = v.revoked.scope()
	}
	if v.ca != nil {
		ca := v.ca.knownKey()
		e.trustedCA = &ca
	}
	return e
}
