package authn

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/netip"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/dockssh/dockssh/internal/logtext"
)

// CertificateConfig configures OpenSSH user certificates signed by
// trusted CAs (sshd's TrustedUserCAKeys). Certificates can also be
// accepted through cert-authority lines in authorized_keys files.
type CertificateConfig struct {
	// TrustedCAKeys are CA public keys whose user certificates are
	// accepted for the user names the certificate lists as principals.
	TrustedCAKeys []ssh.PublicKey

	// TrustedCAKeysFile, if not empty, names a file of CA public keys,
	// one per line in authorized_keys format without options; '#' starts
	// a comment. It is re-read when it changes; a line that does not
	// parse is refused and logged. While the file cannot be used as a
	// whole (unreadable, mode 000, not a regular file, not text), every
	// certificate whose CA is not in TrustedCAKeys is refused; a deleted
	// file trusts no CA.
	TrustedCAKeysFile string
}

// keyStore answers whether a public key or certificate may log in.
type keyStore struct {
	log       *slog.Logger
	now       func() time.Time
	shared    []*fileSource[*keyDB]
	inline    *keyDB
	userFiles *userFiles
	cas       map[string]bool
	caFile    *fileSource[map[string]bool]
	revoked   map[string]bool
	revFile   *fileSource[map[string]bool]
}

func newKeyStore(cfg *Config, log *slog.Logger, now func() time.Time) (*keyStore, error) {
	s := &keyStore{log: log, now: now, cas: map[string]bool{}}
	if ak := cfg.AuthorizedKeys; ak != nil {
		for _, f := range ak.Files {
			src := newFileSource(f, "authorized_keys file", &keyDB{}, true, func(data []byte) (*keyDB, error) {
				return parseAuthorizedKeys(f, data, log)
			}, log)
			if err := src.load(); err != nil {
				return nil, err
			}
			s.shared = append(s.shared, src)
		}
		if ak.Content != "" {
			db, err := parseAuthorizedKeys("AuthorizedKeys.Content", []byte(ak.Content), log)
			if err != nil {
				return nil, fmt.Errorf("authn: AuthorizedKeys.Content: %w", err)
			}
			s.inline = db
		}
		if ak.UserFile != nil {
			s.userFiles = &userFiles{fn: ak.UserFile, log: log, m: map[string]*fileSource[*keyDB]{}}
		}
	}
	if cc := cfg.Certificates; cc != nil {
		for i, k := range cc.TrustedCAKeys {
			if k == nil {
				return nil, fmt.Errorf("authn: Certificates.TrustedCAKeys[%d] is nil", i)
			}
			if _, isCert := k.(*ssh.Certificate); isCert {
				return nil, fmt.Errorf("authn: Certificates.TrustedCAKeys[%d] is a certificate, not a CA key", i)
			}
			s.cas[string(k.Marshal())] = true
		}
		if cc.TrustedCAKeysFile != "" {
			path := cc.TrustedCAKeysFile
			s.caFile = newFileSource(path, "trusted CA keys file", map[string]bool{}, true, func(data []byte) (map[string]bool, error) {
				return parseCAKeys(path, data, log)
			}, log)
			if err := s.caFile.load(); err != nil {
				return nil, err
			}
		}
	}
	var err error
	if s.revoked, err = parseRevoked("RevokedKeys", []byte(strings.Join(cfg.RevokedKeys, "\n"))); err != nil {
		return nil, err
	}
	if cfg.RevokedKeysFile != "" {
		path := cfg.RevokedKeysFile
		s.revFile = newFileSource(path, "revoked keys file", map[string]bool{}, false, func(data []byte) (map[string]bool, error) {
			return parseRevoked(path, data)
		}, log)
		if err := s.revFile.load(); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// parseCAKeys parses a TrustedUserCAKeys-style file.
func parseCAKeys(name string, data []byte, log *slog.Logger) (map[string]bool, error) {
	if err := checkText(data); err != nil {
		return nil, err
	}
	m := map[string]bool{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 4096), maxLineLen)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		k, err := parsePlainKeyLine(line)
		if err != nil {
			log.Error("authn: trusted CA key line refused", "at", fmt.Sprintf("%s:%d", name, n), "err", err)
			continue
		}
		m[string(k.Marshal())] = true
	}
	return m, sc.Err()
}

// parsePlainKeyLine parses "keytype base64 [comment]" with no options.
func parsePlainKeyLine(line string) (ssh.PublicKey, error) {
	typ, rest := cutField(line)
	if !isKeyType(typ) {
		return nil, fmt.Errorf("unknown key type %s (options are not allowed here)", quoteName(typ))
	}
	return parseKeyField(typ, rest)
}

// parseRevoked parses a revocation list: SHA256 fingerprints
// ("SHA256:...") or public keys, one per line. Unlike the other files,
// any bad line fails the whole list: a revocation we cannot read must
// not be skipped.
func parseRevoked(name string, data []byte) (map[string]bool, error) {
	if err := checkText(data); err != nil {
		return nil, err
	}
	m := map[string]bool{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 4096), maxLineLen)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		if fp, ok := strings.CutPrefix(line, "SHA256:"); ok {
			fp, _ = cutField(fp)
			if b, err := base64.RawStdEncoding.DecodeString(fp); err != nil || len(b) != 32 {
				return nil, fmt.Errorf("authn: %s:%d: malformed SHA256 fingerprint", name, n)
			}
			m["SHA256:"+fp] = true
			continue
		}
		k, err := parsePlainKeyLine(line)
		if err != nil {
			return nil, fmt.Errorf("authn: %s:%d: %w", name, n, err)
		}
		m[ssh.FingerprintSHA256(k)] = true
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("authn: %s: %w", name, err)
	}
	return m, nil
}

// userFiles caches per-user authorized_keys files. Only files that exist
// are cached, and at most maxUserFiles of them, so that clients making
// up user names cannot grow it.
type userFiles struct {
	fn  UserFileFunc
	log *slog.Logger

	mu sync.Mutex // guards m
	m  map[string]*fileSource[*keyDB]
}

const maxUserFiles = 1024

// get returns user's authorized_keys database: nil when the user has no
// file, and an error when the file exists but cannot be used (or cannot
// even be stat'ed), in which case the user's key logins are refused.
func (u *userFiles) get(user string) (*keyDB, error) {
	path, ok := u.fn(user)
	if !ok || path == "" {
		return nil, nil
	}
	u.mu.Lock()
	src := u.m[path]
	if src == nil {
		if _, err := os.Stat(path); err != nil {
			u.mu.Unlock()
			if errors.Is(err, fs.ErrNotExist) {
				return nil, nil
			}
			return nil, &fileError{what: "authorized_keys file", path: path, err: err}
		}
		if len(u.m) >= maxUserFiles {
			for p := range u.m {
				delete(u.m, p)
				break
			}
		}
		src = newFileSource(path, "authorized_keys file", &keyDB{}, true, func(data []byte) (*keyDB, error) {
			return parseAuthorizedKeys(path, data, u.log)
		}, u.log)
		u.m[path] = src
	}
	u.mu.Unlock()
	return src.get()
}

// dbsFor returns the authorized_keys databases that apply to user, or an
// error when one of them cannot be used: then no key may log in through
// authorized_keys for user, since the broken file might have been the
// one to restrict (from=, command=, expiry-time=) or to drop the key.
func (s *keyStore) dbsFor(user string) ([]*keyDB, error) {
	var dbs []*keyDB
	for _, src := range s.shared {
		db, err := src.get()
		if err != nil {
			return nil, err
		}
		dbs = append(dbs, db)
	}
	if s.inline != nil {
		dbs = append(dbs, s.inline)
	}
	if s.userFiles != nil {
		db, err := s.userFiles.get(user)
		if err != nil {
			return nil, err
		}
		if db != nil {
			dbs = append(dbs, db)
		}
	}
	return dbs, nil
}

// unusable is the refusal for a login that needs a file which cannot be
// used now. The reason names the file, not the problem: that is logged
// once, when it appears, by the fileSource.
func unusable(err error) *keyDenied {
	var fe *fileError
	if errors.As(err, &fe) {
		return &keyDenied{reason: fe.what + " " + fe.path + " cannot be used; refusing until it is fixed"}
	}
	return &keyDenied{reason: "a key file cannot be used; refusing until it is fixed"}
}

// keyDenied is why a key was refused, for logs and the error.
type keyDenied struct {
	reason string
	source string // file:line of the line that matched but did not allow, if any
}

func (e *keyDenied) Error() string {
	if e.source != "" {
		return "authn: public key refused: " + e.reason + " (" + e.source + ")"
	}
	return "authn: public key refused: " + e.reason
}

// check decides whether key may log in as user from ip and returns what
// the resulting session may do.
func (s *keyStore) check(user string, ip netip.Addr, hasIP bool, key ssh.PublicKey) (*KeyInfo, limits, error) {
	if err := s.checkRevoked(key); err != nil {
		return nil, limits{}, err
	}
	if cert, ok := key.(*ssh.Certificate); ok {
		return s.checkCert(user, ip, hasIP, cert)
	}
	dbs, err := s.dbsFor(user)
	if err != nil {
		return nil, limits{}, unusable(err)
	}
	blob := key.Marshal()
	var denied *keyDenied
	for _, db := range dbs {
		for _, l := range db.keys[string(blob)] {
			if err := s.lineAllows(l, ip, hasIP); err != nil {
				denied = err
				continue
			}
			info := &KeyInfo{Type: key.Type(), Fingerprint: l.fp, Source: l.source}
			return info, limitsFromOptions(l.opts), nil
		}
	}
	if denied != nil {
		return nil, limits{}, denied
	}
	return nil, limits{}, &keyDenied{reason: "not in any authorized_keys file"}
}

func (s *keyStore) checkRevoked(key ssh.PublicKey) error {
	var fromFile map[string]bool
	if s.revFile != nil {
		var err error
		if fromFile, err = s.revFile.get(); err != nil {
			// Fail closed, as sshd does when it cannot read a RevokedKeys
			// file, a missing one included (auth_key_is_revoked in
			// OpenSSH's auth.c treats every error as revoked).
			return &keyDenied{reason: "revocation list unavailable; refusing all keys"}
		}
	}
	if len(s.revoked) == 0 && len(fromFile) == 0 {
		return nil
	}
	for _, fp := range revokedFingerprints(key) {
		if s.revoked[fp] || fromFile[fp] {
			return &keyDenied{reason: "key " + fp + " is revoked"}
		}
	}
	return nil
}

// revokedFingerprints returns the fingerprints whose revocation refuses
// key: its own, or for a certificate those of its key and its CA.
func revokedFingerprints(key ssh.PublicKey) []string {
	if cert, ok := key.(*ssh.Certificate); ok {
		return []string{ssh.FingerprintSHA256(cert.Key), ssh.FingerprintSHA256(cert.SignatureKey)}
	}
	return []string{ssh.FingerprintSHA256(key)}
}

// lineAllows applies the options of a matching line that restrict who may
// use it (expiry-time, from, verify-required).
func (s *keyStore) lineAllows(l *keyLine, ip netip.Addr, hasIP bool) *keyDenied {
	if l.opts.verifyRequired {
		// x/crypto does not expose the FIDO user-verification flag, so
		// the option cannot be enforced: refuse rather than ignore it.
		return &keyDenied{reason: "verify-required is not supported", source: l.source}
	}
	if !l.opts.expiry.IsZero() && !s.now().Before(l.opts.expiry) {
		return &keyDenied{reason: "expired (expiry-time)", source: l.source}
	}
	if l.opts.from != nil && (!hasIP || !l.opts.from.match(ip)) {
		return &keyDenied{reason: "client address not allowed by from=", source: l.source}
	}
	return nil
}

// checkCert accepts a user certificate signed by a trusted CA or by a CA
// of a cert-authority line.
func (s *keyStore) checkCert(user string, ip netip.Addr, hasIP bool, cert *ssh.Certificate) (*KeyInfo, limits, error) {
	if cert.CertType != ssh.UserCert {
		return nil, limits{}, &keyDenied{reason: "not a user certificate"}
	}
	if cert.Signature == nil || cert.Signature.Format == ssh.KeyAlgoRSA {
		// SHA-1 signatures: sshd refuses them by default too
		// (CASignatureAlgorithms, OpenSSH 8.2).
		return nil, limits{}, &keyDenied{reason: "certificate signed with ssh-rsa (SHA-1)"}
	}
	if len(cert.ValidPrincipals) == 0 {
		// OpenSSH accepts these for any user; an unrestricted
		// certificate is almost always a mistake, so it is refused.
		return nil, limits{}, &keyDenied{reason: "certificate has no principals"}
	}
	info := &KeyInfo{
		Type:          cert.Type(),
		Fingerprint:   ssh.FingerprintSHA256(cert.Key),
		CertKeyID:     cert.KeyId,
		CertSerial:    cert.Serial,
		CAFingerprint: ssh.FingerprintSHA256(cert.SignatureKey),
	}
	ca := cert.SignatureKey.Marshal()
	var denied *keyDenied
	trusted := s.cas[string(ca)]
	if !trusted && s.caFile != nil {
		m, err := s.caFile.get()
		if err != nil {
			return nil, limits{}, unusable(err)
		}
		trusted = m[string(ca)]
	}
	if trusted {
		lim, err := s.certLimits(cert, user, ip, hasIP)
		if err == nil {
			info.Principal = user
			return info, lim, nil
		}
		denied = err
	}
	dbs, err := s.dbsFor(user)
	if err != nil {
		return nil, limits{}, unusable(err)
	}
	for _, db := range dbs {
		for _, l := range db.cas[string(ca)] {
			if err := s.lineAllows(l, ip, hasIP); err != nil {
				denied = err
				continue
			}
			principal := user
			if len(l.opts.principals) > 0 {
				principal = ""
				for _, p := range l.opts.principals {
					if slices.Contains(cert.ValidPrincipals, p) {
						principal = p
						break
					}
				}
				if principal == "" {
					denied = &keyDenied{reason: "no certificate principal is listed in principals=", source: l.source}
					continue
				}
			}
			lim, err := s.certLimits(cert, principal, ip, hasIP)
			if err != nil {
				err.source = l.source
				denied = err
				continue
			}
			merged, mergeErr := lim.merge(limitsFromOptions(l.opts))
			if mergeErr != nil {
				denied = &keyDenied{reason: mergeErr.Error(), source: l.source}
				continue
			}
			info.Principal, info.Source = principal, l.source
			return info, merged, nil
		}
	}
	if denied != nil {
		return nil, limits{}, denied
	}
	return nil, limits{}, &keyDenied{reason: "certificate signed by an untrusted CA " + info.CAFingerprint}
}

// certLimits checks the certificate itself (signature, principal,
// validity window against the injected clock, critical options) and
// returns what it allows.
func (s *keyStore) certLimits(cert *ssh.Certificate, principal string, ip netip.Addr, hasIP bool) (limits, *keyDenied) {
	if !slices.Contains(cert.ValidPrincipals, principal) {
		return limits{}, &keyDenied{reason: fmt.Sprintf("principal %q not in certificate", logtext.Clip(principal, 64))}
	}
	checker := ssh.CertChecker{
		Clock:                    s.now,
		SupportedCriticalOptions: []string{optForceCommand, optSourceAddress},
	}
	if err := checker.CheckCert(principal, cert); err != nil {
		return limits{}, &keyDenied{reason: strings.TrimPrefix(err.Error(), "ssh: ")}
	}
	lim := limits{permits: permits{
		pty:             hasExt(cert, "permit-pty"),
		portForwarding:  hasExt(cert, "permit-port-forwarding"),
		agentForwarding: hasExt(cert, "permit-agent-forwarding"),
		x11Forwarding:   hasExt(cert, "permit-X11-forwarding"),
		userRC:          hasExt(cert, "permit-user-rc"),
	}, noTouchRequired: hasExt(cert, extNoTouchRequired)}
	if cmd, ok := cert.CriticalOptions[optForceCommand]; ok {
		if cmd == "" {
			return limits{}, &keyDenied{reason: "empty force-command in certificate"}
		}
		lim.forceCommand = cmd
	}
	if sa, ok := cert.CriticalOptions[optSourceAddress]; ok {
		l, err := parseCIDRList(sa)
		if err != nil {
			return limits{}, &keyDenied{reason: "certificate " + err.Error()}
		}
		if !hasIP || !slices.ContainsFunc(l, func(p netip.Prefix) bool { return p.Contains(ip) }) {
			return limits{}, &keyDenied{reason: "client address not allowed by the certificate's source-address"}
		}
		lim.sourceAddress = sa
	}
	return lim, nil
}

func hasExt(cert *ssh.Certificate, name string) bool {
	_, ok := cert.Extensions[name]
	return ok
}
