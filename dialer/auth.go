package dialer

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"sync"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/agent"

	"github.com/dockssh/dockssh/internal/logtext"
)

// keyCache holds the identity files a Dialer has loaded, so a passphrase is
// asked at most once per file and reconnects read nothing again.
type keyCache struct {
	mu     sync.Mutex              // guards keys and failed
	keys   map[string][]ssh.Signer // by path; successful loads
	failed map[string]error        // by path; a passphrase that did not open the file
}

// authRecord collects what authentication tried, for the error message.
type authRecord struct {
	mu      sync.Mutex // guards the fields below; x/crypto calls back from its own goroutine
	notes   []string
	offered []string // key fingerprints offered
	pwTried bool
}

func (a *authRecord) note(format string, args ...any) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.notes = append(a.notes, fmt.Sprintf(format, args...))
}

func (a *authRecord) summary() string {
	a.mu.Lock()
	defer a.mu.Unlock()
	var b bytes.Buffer
	if len(a.offered) > 0 {
		fmt.Fprintf(&b, "keys offered: %v", a.offered)
	} else {
		b.WriteString("no key was offered")
	}
	if a.pwTried {
		b.WriteString("; the password was tried")
	}
	for _, n := range a.notes {
		b.WriteString("; ")
		b.WriteString(n)
	}
	return b.String()
}

// authMethods returns the auth methods for ep in the order the issue asks:
// the agent's keys and the identity files (one publickey method, so
// x/crypto tries all of them), then the password when final is true and
// one is available. The returned cleanup closes the agent connection.
func (d *Dialer) authMethods(ctx context.Context, ep *endpoint, final bool, rec *authRecord) ([]ssh.AuthMethod, func()) {
	var agentConn net.Conn
	stopAgent := func() bool { return false }
	cleanup := func() {
		if agentConn != nil {
			stopAgent()
			agentConn.Close()
		}
	}
	signers := func() ([]ssh.Signer, error) {
		var out []ssh.Signer
		seen := map[string]bool{}
		add := func(s ssh.Signer) {
			k := string(s.PublicKey().Marshal())
			if seen[k] {
				return
			}
			seen[k] = true
			out = append(out, s)
			rec.mu.Lock()
			rec.offered = append(rec.offered, s.PublicKey().Type()+" "+ssh.FingerprintSHA256(s.PublicKey()))
			rec.mu.Unlock()
		}
		fileSigners, filePubs := d.loadIdentities(ep, rec)
		if ep.agentSocket == "" {
			rec.note("no SSH agent (SSH_AUTH_SOCK is unset or Config.AgentSocket is \"none\")")
		} else {
			var dl net.Dialer
			c, err := dl.DialContext(ctx, "unix", ep.agentSocket)
			if err != nil {
				rec.note("SSH agent at %s: %v", ep.agentSocket, errors.Unwrap(err))
			} else {
				// An agent that does not answer (one waiting for an
				// ssh-add -c confirmation, or hung) would block the
				// handshake past ctx: closing the raw connection does
				// not interrupt a call to the agent.
				agentConn = c
				stopAgent = context.AfterFunc(ctx, func() { c.Close() })
				as, err := agent.NewClient(c).Signers()
				if err != nil {
					rec.note("SSH agent at %s: %v", ep.agentSocket, err)
				}
				if len(as) == 0 && err == nil {
					rec.note("the SSH agent holds no keys (ssh-add)")
				}
				for _, s := range as {
					if ep.identitiesOnly && !filePubs[string(s.PublicKey().Marshal())] {
						continue
					}
					add(s)
				}
			}
		}
		for _, s := range fileSigners {
			add(s)
		}
		return out, nil
	}
	methods := []ssh.AuthMethod{ssh.PublicKeysCallback(signers)}
	if final {
		methods = append(methods,
			ssh.PasswordCallback(func() (string, error) {
				return d.passwordFor(rec)
			}),
			ssh.KeyboardInteractive(func(name, instruction string, questions []string, echos []bool) ([]string, error) {
				if len(questions) == 0 {
					return nil, nil
				}
				// Only the plain one-question, no-echo password prompt
				// is answered: anything else would be guessing.
				if len(questions) != 1 || echos[0] {
					return nil, errors.New("dialer: keyboard-interactive asks more than a password")
				}
				pw, err := d.passwordFor(rec)
				if err != nil {
					return nil, err
				}
				return []string{pw}, nil
			}),
		)
	}
	return methods, cleanup
}

// errNoPassword makes x/crypto skip the password methods.
var errNoPassword = errors.New("dialer: no password")

// passwordFor returns the URL's password for one authentication attempt.
func (d *Dialer) passwordFor(rec *authRecord) (string, error) {
	d.pwMu.Lock()
	defer d.pwMu.Unlock()
	if d.password == nil {
		if d.passwordUsed {
			rec.note("the URL's password was used for the first connection and then wiped (PasswordOnce); use keys, or PasswordKeep")
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
			rec.note("%v", err)
			continue
		}
		for _, s := range signers {
			pubs[string(s.PublicKey().Marshal())] = true
			if c, ok := s.PublicKey().(*ssh.Certificate); ok {
				pubs[string(c.Key.Marshal())] = true
			}
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
			return nil, fmt.Errorf("identity file %s: not found: %w", path, fs.ErrNotExist)
		}
		return nil, fmt.Errorf("identity file %s: %v", path, errors.Unwrap(err))
	}
	signer, err := ssh.ParsePrivateKey(data)
	var missing *ssh.PassphraseMissingError
	if errors.As(err, &missing) {
		if passphrase == nil {
			return nil, fmt.Errorf("identity file %s is encrypted and Config.Passphrase is nil: skipped (load it into the agent with ssh-add, or set Config.Passphrase)", path)
		}
		pp, perr := passphrase(path)
		if perr != nil {
			return nil, k.fail(path, fmt.Errorf("identity file %s: passphrase: %v", path, perr))
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
