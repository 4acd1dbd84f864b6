package hostkeys

import (
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"strings"

	"golang.org/x/crypto/ssh"

	"github.com/dockssh/dockssh/internal/shquote"
)

// The reasons a host key is rejected. A *HostKeyError wraps exactly one of
// them, so errors.Is(err, ErrHostKeyChanged) works on the error returned by
// ssh.Dial.
var (
	// ErrUnknownHost: known_hosts has no key and no @cert-authority for the
	// host. Under AcceptNew such a host is added instead.
	ErrUnknownHost = errors.New("hostkeys: host is not in known_hosts")
	// ErrHostKeyChanged: known_hosts has keys or CAs for the host, and the
	// server's key is none of them. A man-in-the-middle attack is possible.
	ErrHostKeyChanged = errors.New("hostkeys: host key does not match known_hosts")
	// ErrHostKeyRevoked: the server's key, or the CA that signed its
	// certificate, is listed in a @revoked line; or a @revoked line that
	// names the host cannot be read, so any key might be the one it
	// revokes (HostKeyError.Revoked then has a nil Key).
	ErrHostKeyRevoked = errors.New("hostkeys: host key is revoked")
	// ErrHostCertificate: the server presented a certificate signed by a CA
	// trusted for the host, but the certificate is not valid (expired, not
	// yet valid, wrong principal, bad signature, unsupported critical
	// option), and its plain key is not known either.
	ErrHostCertificate = errors.New("hostkeys: host certificate is not valid")
)

// KnownKey is one key line of a known_hosts file.
type KnownKey struct {
	// Key is the key of the line: a host key, a CA key, or the key a
	// @revoked line revokes. A plain line may hold a certificate, which
	// never matches a plain key. Nil for a @revoked line that cannot be
	// read.
	Key  ssh.PublicKey
	File string // the known_hosts file, as configured
	Line int    // 1-based line number in File
	// CertAuthority reports whether the line is a @cert-authority line: Key
	// is then a CA that signs host certificates, not a host key.
	CertAuthority bool
}

// String returns "file:line: type SHA256:fingerprint", with a
// "@cert-authority " prefix before the type for CA lines. For a
// certificate the fingerprint is of the certified key, as OpenSSH prints
// it.
func (k KnownKey) String() string {
	m := ""
	if k.CertAuthority {
		m = "@cert-authority "
	}
	if k.Key == nil {
		return fmt.Sprintf("%s:%d: %sunreadable key", k.File, k.Line, m)
	}
	return fmt.Sprintf("%s:%d: %s%s %s", k.File, k.Line, m, k.Key.Type(), fingerprint(k.Key))
}

// HostKeyError reports why a host key was rejected, with what a caller or a
// user needs to fix it. Get it with errors.As from the error of ssh.Dial or
// ssh.NewClientConn.
type HostKeyError struct {
	// Reason is ErrUnknownHost, ErrHostKeyChanged, ErrHostKeyRevoked or
	// ErrHostCertificate.
	Reason error
	// Host is the name looked up in known_hosts: the lowercased host for
	// port 22, "[host]:port" otherwise (as OpenSSH writes it).
	Host string
	// Address is the "host:port" the client dialed (the hostname argument of
	// the ssh.HostKeyCallback), or the remote address when that was empty.
	Address string
	// Remote is the network address of the server; it may differ from
	// Address, for example when Address is a DNS name.
	Remote net.Addr
	// KeyType is the type of the key the server offered, e.g. "ssh-ed25519"
	// or "ssh-ed25519-cert-v01@openssh.com" for a certificate.
	KeyType string
	// Fingerprint is the SHA256 fingerprint of the offered key in OpenSSH's
	// form ("SHA256:" and unpadded base64). For a certificate it is the
	// fingerprint of the certified key, as OpenSSH prints it.
	Fingerprint string
	// Known lists the known_hosts lines (host keys and @cert-authority keys)
	// that match Host, in file and line order. Empty for ErrUnknownHost.
	Known []KnownKey
	// Revoked is the @revoked line that rejected the key, for
	// ErrHostKeyRevoked.
	Revoked *KnownKey
	// CertErr, when the server offered a certificate, says why the
	// certificate did not establish trust (untrusted CA, expired, wrong
	// principal, ...). errors.Is and errors.As see through it.
	CertErr error
	// KnownHostsFile is the file that new host keys go to (Config.Files[0]);
	// the fix in the message names it.
	KnownHostsFile string

	port, hostOnly    string    // for the fix-it commands
	revokedCA         bool      // Revoked is the CA of the offered certificate
	revokedUnreadable error     // why the Revoked line cannot be read, if it cannot
	revokedHosts      string    // the hosts an unreadable Revoked line names
	trustedCA         *KnownKey // for ErrHostCertificate: the CA line that signed it
}

// Unwrap returns Reason and, when set, CertErr.
func (e *HostKeyError) Unwrap() []error {
	if e.CertErr != nil {
		return []error{e.Reason, e.CertErr}
	}
	return []error{e.Reason}
}

// Error says what happened, in the words OpenSSH uses for the same
// situation, and how to fix it. It is one line, so it survives logs.
func (e *HostKeyError) Error() string {
	var b strings.Builder
	where := e.Host
	if e.Remote != nil && e.Remote.String() != e.Address {
		where += " (remote " + e.Remote.String() + ")"
	}
	offered := fmt.Sprintf("%s key %s", e.KeyType, e.Fingerprint)
	switch e.Reason {
	case ErrUnknownHost:
		fmt.Fprintf(&b, "hostkeys: no host key is known for %s and you have requested strict checking; the server offered %s", where, offered)
		e.writeCertErr(&b)
		fmt.Fprintf(&b, "; host key verification failed; if that fingerprint is the server's (check it with its administrator: ssh-keygen -lf on the server's host key), add the host with: %s", e.keyscanCommand())
	case ErrHostKeyChanged:
		fmt.Fprintf(&b, "hostkeys: WARNING: REMOTE HOST IDENTIFICATION HAS CHANGED for %s: someone could be eavesdropping on you right now (man-in-the-middle attack), or the host key has just been changed; the server offered %s", where, offered)
		e.writeCertErr(&b)
		switch {
		case !e.plainKnown():
			b.WriteString(", but known_hosts trusts only host certificates for this host, signed by: ")
		case e.sameTypeKnown():
			b.WriteString(", but known_hosts has for this host: ")
		default:
			b.WriteString(", but known_hosts has only keys of other types for this host: ")
		}
		e.writeKnown(&b)
		b.WriteString("; host key verification failed; if the change is expected (check with the server's administrator), ")
		if e.plainKnown() {
			fmt.Fprintf(&b, "remove the offending lines with: %s, then add the correct key with: %s", e.removeCommands(), e.keyscanCommand())
		} else {
			fmt.Fprintf(&b, "give the host a certificate from that CA (ssh-keygen -s CA_KEY -h -n %s HOST_KEY.pub)", shquote.Quote(e.hostOnly))
		}
	case ErrHostKeyRevoked:
		if e.revokedUnreadable != nil && e.Revoked != nil {
			fmt.Fprintf(&b, "hostkeys: WARNING: the @revoked line at %s:%d cannot be read (%v): it might revoke the %s offered by %s, so no key is accepted for %s; host key verification failed; fix or remove that line",
				e.Revoked.File, e.Revoked.Line, e.revokedUnreadable, offered, where, e.revokedHosts)
			break
		}
		fmt.Fprintf(&b, "hostkeys: WARNING: REVOKED HOST KEY DETECTED: the %s offered by %s is marked as revoked", offered, where)
		if e.Revoked != nil {
			what := "key"
			if e.revokedCA {
				what = "CA that signed its certificate"
			}
			fmt.Fprintf(&b, " (the %s is @revoked at %s:%d)", what, e.Revoked.File, e.Revoked.Line)
		}
		b.WriteString("; this could mean that a stolen key is being used to impersonate this host; host key verification failed; the host needs a new key")
	case ErrHostCertificate:
		fmt.Fprintf(&b, "hostkeys: host certificate for %s is not valid", where)
		if e.CertErr != nil {
			fmt.Fprintf(&b, ": %v", e.CertErr)
		}
		fmt.Fprintf(&b, "; the server offered %s", offered)
		if ca := e.trustedCA; ca != nil {
			fmt.Fprintf(&b, ", signed by the CA %s %s trusted at %s:%d", ca.Key.Type(), ssh.FingerprintSHA256(ca.Key), ca.File, ca.Line)
		}
		b.WriteString("; host key verification failed; the host needs a valid certificate (ssh-keygen -s CA_KEY -h -n " + shquote.Quote(e.hostOnly) + " HOST_KEY.pub)")
	default:
		fmt.Fprintf(&b, "hostkeys: host key for %s rejected: %v", where, e.Reason)
	}
	return b.String()
}

func (e *HostKeyError) writeCertErr(b *strings.Builder) {
	if e.CertErr != nil {
		fmt.Fprintf(b, " (its certificate was not accepted: %v)", e.CertErr)
	}
}

func (e *HostKeyError) writeKnown(b *strings.Builder) {
	for i, k := range e.Known {
		if i > 0 {
			b.WriteString(", ")
		}
		if k.CertAuthority {
			b.WriteString("@cert-authority ")
		}
		fmt.Fprintf(b, "%s %s at %s:%d", k.Key.Type(), fingerprint(k.Key), k.File, k.Line)
	}
}

// plainKnown reports whether a plain (not @cert-authority) key is known.
func (e *HostKeyError) plainKnown() bool {
	for _, k := range e.Known {
		if !k.CertAuthority {
			return true
		}
	}
	return false
}

// sameTypeKnown reports whether a known plain key has the offered key's type.
func (e *HostKeyError) sameTypeKnown() bool {
	t := plainKeyType(e.KeyType)
	for _, k := range e.Known {
		if !k.CertAuthority && k.Key.Type() == t {
			return true
		}
	}
	return false
}

// keyscanCommand is the fix for an unknown host, as OpenSSH users know it.
func (e *HostKeyError) keyscanCommand() string {
	port := ""
	if e.port != "" && e.port != "22" {
		port = "-p " + e.port + " "
	}
	file := "~/.ssh/known_hosts" // unquoted: the shell expands it
	if e.KnownHostsFile != "" {
		file = shquote.Quote(absPath(e.KnownHostsFile))
	}
	return fmt.Sprintf("ssh-keyscan -H %s%s >> %s", port, shquote.Quote(e.hostOnly), file)
}

// absPath returns p as an absolute path, for commands a user runs in
// another directory. p is returned as it is when that fails.
func absPath(p string) string {
	if a, err := filepath.Abs(p); err == nil {
		return a
	}
	return p
}

// removeCommands is OpenSSH's "remove with: ssh-keygen -f FILE -R HOST", once
// per file that holds an offending line, plus the lines themselves.
func (e *HostKeyError) removeCommands() string {
	var cmds, lines []string
	seen := map[string]bool{}
	for _, k := range e.Known {
		if k.CertAuthority {
			continue // ssh-keygen -R keeps @cert-authority lines; so do we
		}
		lines = append(lines, fmt.Sprintf("%s:%d", k.File, k.Line))
		if !seen[k.File] {
			seen[k.File] = true
			cmds = append(cmds, fmt.Sprintf("ssh-keygen -f %s -R %s", doubleQuote(absPath(k.File)), doubleQuote(e.Host)))
		}
	}
	return strings.Join(cmds, " and ") + " (offending lines: " + strings.Join(lines, ", ") + ")"
}

// plainKeyType maps a certificate type to the type of the key it certifies.
func plainKeyType(t string) string {
	switch t {
	case ssh.CertAlgoRSAv01:
		return ssh.KeyAlgoRSA
	case ssh.CertAlgoECDSA256v01:
		return ssh.KeyAlgoECDSA256
	case ssh.CertAlgoECDSA384v01:
		return ssh.KeyAlgoECDSA384
	case ssh.CertAlgoECDSA521v01:
		return ssh.KeyAlgoECDSA521
	case ssh.CertAlgoED25519v01:
		return ssh.KeyAlgoED25519
	case ssh.CertAlgoSKECDSA256v01:
		return ssh.KeyAlgoSKECDSA256
	case ssh.CertAlgoSKED25519v01:
		return ssh.KeyAlgoSKED25519
	case "ssh-dss-cert-v01@openssh.com": // DSA: named, never offered
		return "ssh-dss"
	}
	return t
}

// doubleQuote quotes s the way OpenSSH prints its ssh-keygen -R hint, when
// that is safe for a shell, and falls back to single quotes.
func doubleQuote(s string) string {
	if strings.ContainsAny(s, "\"$`\\!\n") {
		return shquote.Quote(s)
	}
	return `"` + s + `"`
}
