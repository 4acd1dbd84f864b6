package dialer

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/agent"

	"github.com/dockssh/dockssh/hostkeys"
	"github.com/dockssh/dockssh/internal/logtext"
)

// keyCache holds the identity files a Dialer has loaded, so a passphrase is
// asked at most once per file and reconnects read nothing again.
type keyCache struct {
	mu     sync.Mutex              // guards keys and failed
	keys   map[string][]ssh.Signer // by path; successful loads
	failed map[string]error        // by path; a passphrase that did not open the file
}

// authRecord collects what authentication tried, for the error message,
// and the advice that goes with it, for the hint.
type authRecord struct {
	mu      sync.Mutex // guards the fields below; x/crypto calls back from its own goroutine
	notes   []string
	advice  []string
	offered []string // the keys offered, described
	seen    map[string]bool
	pwTried bool
}

// note records a fact, and what to do about it when advice is not empty.
func (a *authRecord) note(fact, advice string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.notes = append(a.notes, fact)
	if advice != "" {
		a.advice = append(a.advice, advice)
	}
}

// noteErr records an error, with its hint as the advice.
func (a *authRecord) noteErr(err error) {
	var h *hinted
	advice := ""
	if errors.As(err, &h) {
		advice = h.hint
	}
	a.note(err.Error(), advice)
}

// offer returns signers without duplicates and records what is offered.
func (a *authRecord) offer(signers []ssh.Signer) []ssh.Signer {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.seen == nil {
		a.seen = map[string]bool{}
	}
	var out []ssh.Signer
	for _, s := range signers {
		k := string(s.PublicKey().Marshal())
		if a.seen[k] {
			continue
		}
		a.seen[k] = true
		out = append(out, s)
		a.offered = append(a.offered, describeKey(s.PublicKey()))
	}
	return out
}

// describeKey names a key as ssh -v does, and a certificate with its ID
// and validity, so that an expired or wrong certificate shows.
func describeKey(k ssh.PublicKey) string {
	cert, ok := asCertificate(k)
	if !ok {
		return k.Type() + " " + ssh.FingerprintSHA256(k)
	}
	return fmt.Sprintf("%s %s (certificate %q, principals %q, %s)", cert.Type(), ssh.FingerprintSHA256(cert.Key), cert.KeyId, cert.ValidPrincipals, validity(cert, time.Now()))
}

// validity describes a certificate's validity period at now.
func validity(c *ssh.Certificate, now time.Time) string {
	if c.ValidAfter == 0 && c.ValidBefore == ssh.CertTimeInfinity {
		return "valid forever"
	}
	after, before := time.Unix(int64(c.ValidAfter), 0).UTC(), time.Unix(int64(min(c.ValidBefore, 1<<62)), 0).UTC()
	var span string
	switch {
	case c.ValidBefore == ssh.CertTimeInfinity:
		span = "valid from " + after.Format(time.RFC3339)
	case c.ValidAfter == 0:
		span = "valid until " + before.Format(time.RFC3339)
	default:
		span = fmt.Sprintf("valid from %s to %s", after.Format(time.RFC3339), before.Format(time.RFC3339))
	}
	switch {
	case now.Before(after):
		return span + ", not yet valid"
	case c.ValidBefore != ssh.CertTimeInfinity && !now.Before(before):
		return span + ", expired"
	}
	return span
}

// refused is the error of an authentication that the server refused: who
// was tried as which user (and where that name came from), with what.
func (a *authRecord) refused(ep *endpoint, err error) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	var b strings.Builder
	fmt.Fprintf(&b, "the server accepted none of the credentials for user %q (from %s)", ep.user, ep.userFrom)
	if len(a.offered) > 0 {
		fmt.Fprintf(&b, "; keys offered: %v", a.offered)
	} else {
		b.WriteString("; no key was offered")
	}
	if a.pwTried {
		b.WriteString("; the password was tried")
	}
	for _, n := range a.notes {
		b.WriteString("; ")
		b.WriteString(n)
	}
	return fmt.Errorf("%s: %w", b.String(), err)
}

// hint says what to do about a refused authentication.
func (a *authRecord) hint(ep *endpoint) string {
	a.mu.Lock()
	defer a.mu.Unlock()
	parts := []string{fmt.Sprintf("authorize one of the keys in ~%s/.ssh/authorized_keys on the server, load the right key into the agent (ssh-add), or set Config.IdentityFiles", ep.user)}
	parts = append(parts, a.advice...)
	parts = append(parts, fmt.Sprintf("if %q is not the user to log in as, name the right one in the URL (ssh://USER@host) or with User in ssh_config", ep.user))
	return strings.Join(parts, "; ")
}

// hostKeyHint is the advice for a host key the hostkeys package refused;
// its message holds the details (fingerprints, files, commands).
func hostKeyHint(err error) string {
	switch {
	case errors.Is(err, hostkeys.ErrUnknownHost):
		return "first check the fingerprint with the server's administrator; then add the host with the ssh-keyscan command above, or let the program trust it on first use (Config.HostKeyPolicy = hostkeys.AcceptNew)"
	case errors.Is(err, hostkeys.ErrHostKeyChanged):
		return "do not connect until the server's administrator confirms the change; then replace the old key as the message says"
	case errors.Is(err, hostkeys.ErrHostKeyRevoked):
		return "the host needs a new key; ask its administrator"
	case errors.Is(err, hostkeys.ErrHostCertificate):
		return "the host needs a valid certificate from a trusted CA; ask its administrator"
	}
	return ""
}

// authMethods returns the auth methods for ep: one publickey method (so
// that x/crypto tries every key) with the certificates, the agent's keys
// and the identity files, then, when final is true, the URL's password as
// the password and keyboard-interactive methods. The returned cleanup
// closes the agent connection.
func (d *Dialer) authMethods(ctx context.Context, ep *endpoint, final bool, rec *authRecord) ([]ssh.AuthMethod, func()) {
	ag := &agentClient{ctx: ctx, socket: ep.agentSocket, rec: rec}
	methods := []ssh.AuthMethod{ssh.PublicKeysCallback(func() ([]ssh.Signer, error) {
		return d.signers(ep, ag, rec), nil
	})}
	if final {
		methods = append(methods, ssh.PasswordCallback(func() (string, error) {
			return d.passwordFor(rec)
		}), ssh.KeyboardInteractive(d.keyboardInteractive(rec)))
	}
	return methods, ag.close
}

// signers returns the keys to offer for ep, in OpenSSH's order: the
// certificates (CertificateFile) first, then the agent's keys, then the
// identity files' (ssh -v shows the same).
//
// Under IdentitiesOnly an agent key is offered only when it is one of the
// identity files' keys (a certificate counting for its key, as ssh's
// sshkey_equal_public does); the certificates of CertificateFile are still
// paired with any key of the agent, as ssh finds their private keys there.
func (d *Dialer) signers(ep *endpoint, ag *agentClient, rec *authRecord) []ssh.Signer {
	fileSigners, filePubs := d.loadIdentities(ep, rec)
	agentAll := ag.signers()
	var keys []ssh.Signer
	for _, s := range agentAll {
		if !ep.identitiesOnly || filePubs[string(plainKey(s.PublicKey()).Marshal())] {
			keys = append(keys, s)
		}
	}
	keys = append(keys, fileSigners...)
	certs := d.certificateSigners(ep, append(slices.Clip(fileSigners), agentAll...), rec)
	return rec.offer(append(certs, keys...))
}

// plainKey is the key a certificate certifies, or k itself.
func plainKey(k ssh.PublicKey) ssh.PublicKey {
	if c, ok := asCertificate(k); ok {
		return c.Key
	}
	return k
}

// asCertificate returns k as a certificate when it is one. The agent
// client hands out its keys as *agent.Key, whose blob must be parsed to
// see the certificate in it.
func asCertificate(k ssh.PublicKey) (*ssh.Certificate, bool) {
	if c, ok := k.(*ssh.Certificate); ok {
		return c, true
	}
	if !strings.Contains(k.Type(), "-cert-v01@openssh.com") {
		return nil, false
	}
	p, err := ssh.ParsePublicKey(k.Marshal())
	if err != nil {
		return nil, false
	}
	c, ok := p.(*ssh.Certificate)
	return c, ok
}

// keyboardInteractive answers only the plain one-question, no-echo
// password prompt: anything else would be guessing.
func (d *Dialer) keyboardInteractive(rec *authRecord) ssh.KeyboardInteractiveChallenge {
	return func(name, instruction string, questions []string, echos []bool) ([]string, error) {
		if len(questions) == 0 {
			return nil, nil
		}
		if len(questions) != 1 || echos[0] {
			return nil, errors.New("dialer: keyboard-interactive asks more than a password")
		}
		pw, err := d.passwordFor(rec)
		if err != nil {
			return nil, err
		}
		return []string{pw}, nil
	}
}

// agentClient is the connection to the SSH agent for one handshake.
type agentClient struct {
	ctx    context.Context
	socket string // "" for no agent
	rec    *authRecord
	conn   net.Conn
	stop   func() bool
}

// signers returns the agent's keys and certificates (ssh-add loads a
// certificate found beside a key with it).
func (a *agentClient) signers() []ssh.Signer {
	if a.socket == "" {
		a.rec.note("no SSH agent (SSH_AUTH_SOCK is unset or Config.AgentSocket is \"none\")", "")
		return nil
	}
	var dl net.Dialer
	c, err := dl.DialContext(a.ctx, "unix", a.socket)
	if err != nil {
		a.rec.note(fmt.Sprintf("SSH agent at %s: %v", a.socket, errors.Unwrap(err)), "start the SSH agent, or point Config.AgentSocket (or IdentityAgent) at it")
		return nil
	}
	// An agent that does not answer (one waiting for an ssh-add -c
	// confirmation, or hung) would block the handshake past ctx: closing
	// the raw connection does not interrupt a call to the agent.
	a.conn = c
	a.stop = context.AfterFunc(a.ctx, func() { c.Close() })
	all, err := agent.NewClient(c).Signers()
	if err != nil {
		a.rec.note(fmt.Sprintf("SSH agent at %s: %v", a.socket, err), "")
	}
	if len(all) == 0 && err == nil {
		a.rec.note("the SSH agent holds no keys", "add a key to the agent with ssh-add")
	}
	return all
}

func (a *agentClient) close() {
	if a.conn != nil {
		a.stop()
		a.conn.Close()
	}
}

// certificateSigners pairs each of ep's certificate files with the private
// key it certifies, among keys (agent and identity files). As ssh does, a
// file that holds no user certificate, or whose key is not at hand, is
// skipped with a note.
func (d *Dialer) certificateSigners(ep *endpoint, keys []ssh.Signer, rec *authRecord) []ssh.Signer {
	var out []ssh.Signer
	for _, path := range ep.certificateFiles {
		cert, err := readUserCertificate(path)
		if err != nil {
			rec.noteErr(err)
			continue
		}
		signer := matchingKey(cert, keys)
		if signer == nil {
			rec.note(fmt.Sprintf("CertificateFile %s (certificate %q): its private key is neither in the identity files nor in the agent", path, cert.KeyId),
				fmt.Sprintf("add the key that %s certifies as an IdentityFile, or load it into the agent", path))
			continue
		}
		cs, err := ssh.NewCertSigner(cert, signer)
		if err != nil {
			rec.note(fmt.Sprintf("CertificateFile %s: %v", path, err), "")
			continue
		}
		out = append(out, cs)
	}
	return out
}

// readUserCertificate reads a user certificate in authorized_keys format
// (an id_ed25519-cert.pub as ssh-keygen -s writes it).
func readUserCertificate(path string) (*ssh.Certificate, error) {
	pub, err := readPublicKey(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, withHint(fmt.Errorf("CertificateFile %s: not found", path), "fix the path, or remove the CertificateFile entry")
		}
		return nil, fmt.Errorf("CertificateFile %s: not a certificate (%s)", path, logtext.Clip(err.Error(), 80))
	}
	cert, ok := pub.(*ssh.Certificate)
	switch {
	case !ok:
		return nil, fmt.Errorf("CertificateFile %s holds a plain %s key, not a certificate", path, pub.Type())
	case cert.CertType != ssh.UserCert:
		return nil, fmt.Errorf("CertificateFile %s (certificate %q) is a host certificate, not a user certificate", path, cert.KeyId)
	}
	return cert, nil
}

// matchingKey returns the plain key among keys that cert certifies.
func matchingKey(cert *ssh.Certificate, keys []ssh.Signer) ssh.Signer {
	want := cert.Key.Marshal()
	for _, s := range keys {
		if bytes.Equal(s.PublicKey().Marshal(), want) {
			return s
		}
	}
	return nil
}

// errNoPassword makes x/crypto skip the password methods.
var errNoPassword = errors.New("dialer: no password")

// passwordFor returns the URL's password for one authentication attempt.
func (d *Dialer) passwordFor(rec *authRecord) (string, error) {
	d.pwMu.Lock()
	defer d.pwMu.Unlock()
	if d.password == nil {
		if d.passwordUsed {
			rec.note("the URL's password was used for the first connection and then wiped (PasswordOnce)", "use keys, or Config.PasswordPolicy = PasswordKeep")
		}
		return "", errNoPassword
	}
	rec.mu.Lock()
	rec.pwTried = true
	rec.mu.Unlock()
	return string(d.password), nil
}

// passwordAuthenticated wipes the password after a successful connection
// under PasswordOnce.
func (d *Dialer) passwordAuthenticated() {
	d.pwMu.Lock()
	defer d.pwMu.Unlock()
	if d.password == nil {
		return
	}
	d.passwordUsed = true
	if d.cfg.PasswordPolicy == PasswordOnce {
		clear(d.password)
		d.password = nil
	}
}

// loadIdentities loads ep's identity files. It returns the signers and the
// public keys of every listed file (also of encrypted files that could
// not be loaded, from their .pub file), for IdentitiesOnly.
func (d *Dialer) loadIdentities(ep *endpoint, rec *authRecord) ([]ssh.Signer, map[string]bool) {
	pubs := map[string]bool{}
	var out []ssh.Signer
	for _, f := range ep.identityFiles {
		if pub, err := readPublicKey(f.path + ".pub"); err == nil {
			pubs[string(pub.Marshal())] = true
		}
		signers, err := d.keys.load(f.path, d.cfg.Passphrase)
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) && !f.explicit {
				continue
			}
			rec.noteErr(err)
			continue
		}
		for _, s := range signers {
			pubs[string(plainKey(s.PublicKey()).Marshal())] = true
		}
		out = append(out, signers...)
	}
	return out, pubs
}

// load reads the private key at path (and its certificate at
// path-cert.pub, which comes first). Its errors name the file and never
// contain key material.
func (k *keyCache) load(path string, passphrase PassphraseFunc) ([]ssh.Signer, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if s, ok := k.keys[path]; ok {
		return s, nil
	}
	if err, ok := k.failed[path]; ok {
		return nil, err // the passphrase is not asked again
	}
	data, err := os.ReadFile(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, withHint(fmt.Errorf("identity file %s: not found: %w", path, fs.ErrNotExist), "fix the path in Config.IdentityFiles or IdentityFile")
		}
		return nil, fmt.Errorf("identity file %s: %w", path, errors.Unwrap(err))
	}
	signer, err := ssh.ParsePrivateKey(data)
	var missing *ssh.PassphraseMissingError
	if errors.As(err, &missing) {
		if passphrase == nil {
			return nil, withHint(fmt.Errorf("identity file %s is encrypted and Config.Passphrase is nil: skipped", path),
				fmt.Sprintf("load %s into the agent (ssh-add), or set Config.Passphrase", path))
		}
		pp, perr := passphrase(path)
		if perr != nil {
			return nil, k.fail(path, fmt.Errorf("identity file %s: passphrase: %w", path, perr))
		}
		signer, err = ssh.ParsePrivateKeyWithPassphrase(data, pp)
		clear(pp)
		if err != nil {
			return nil, k.fail(path, fmt.Errorf("identity file %s: wrong passphrase or damaged key", path))
		}
	} else if err != nil {
		return nil, fmt.Errorf("identity file %s: not a usable private key (%s)", path, logtext.Clip(err.Error(), 80))
	}
	clear(data)
	signers := []ssh.Signer{signer}
	if pub, err := readPublicKey(path + "-cert.pub"); err == nil {
		if cert, ok := pub.(*ssh.Certificate); ok && bytes.Equal(cert.Key.Marshal(), signer.PublicKey().Marshal()) {
			if cs, err := ssh.NewCertSigner(cert, signer); err == nil {
				signers = []ssh.Signer{cs, signer}
			}
		}
	}
	if k.keys == nil {
		k.keys = map[string][]ssh.Signer{}
	}
	k.keys[path] = signers
	return signers, nil
}

// fail remembers that asking for path's passphrase did not open it, so
// that reconnects do not ask again. k.mu is held.
func (k *keyCache) fail(path string, err error) error {
	if k.failed == nil {
		k.failed = map[string]error{}
	}
	k.failed[path] = err
	return err
}

func readPublicKey(path string) (ssh.PublicKey, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	pub, _, _, _, err := ssh.ParseAuthorizedKey(data)
	return pub, err
}
