package authn

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"strconv"
	"strings"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/dockssh/dockssh/internal/logtext"
)

// Method names an SSH user authentication method (RFC 4252).
type Method string

// The methods authn implements.
const (
	// MethodNone is the "none" method, used only by
	// Config.InsecureNoAuthentication.
	MethodNone Method = "none"
	// MethodPassword is password authentication.
	MethodPassword Method = "password"
	// MethodPublicKey is public key authentication, with plain keys from
	// authorized_keys files and with user certificates.
	MethodPublicKey Method = "publickey"
)

// Config configures an Authenticator. At least one mechanism must be set:
// authn never lets anyone in by default, so New(nil) is an error.
type Config struct {
	// InsecureNoAuthentication lets every client in, under any user
	// name, without any credential (docker-ssh's noAuth). It cannot be
	// combined with another mechanism. New logs an error when it is set,
	// and every login is logged as a warning.
	InsecureNoAuthentication bool

	// Passwords, if non-nil, enables password authentication.
	Passwords *PasswordConfig

	// AuthorizedKeys, if non-nil, enables public key authentication
	// from authorized_keys files.
	AuthorizedKeys *AuthorizedKeysConfig

	// Certificates, if non-nil, enables user certificates signed by
	// trusted CAs. Without it, certificates are accepted only through
	// cert-authority lines of authorized_keys files.
	Certificates *CertificateConfig

	// RevokedKeys are keys refused whatever else allows them: SHA256
	// fingerprints ("SHA256:...") or public keys in authorized_keys
	// format without options. A certificate is refused when its key or
	// its CA key is revoked.
	RevokedKeys []string

	// RevokedKeysFile, if not empty, names a file in the format of
	// RevokedKeys, one entry per line, re-read when it changes. If it
	// cannot be read, is removed or a line does not parse, every public
	// key is refused until it is fixed (as sshd does with RevokedKeys).
	RevokedKeysFile string

	// Methods lists the sequences of methods that complete a login, as
	// sshd's AuthenticationMethods: {{"publickey", "password"}} requires
	// a public key and then a password; {{"publickey"}, {"password"}}
	// accepts either. A method repeated in a sequence must be satisfied
	// again (a second publickey needs a different key). nil means each
	// configured mechanism on its own.
	Methods [][]Method

	// MaxAuthTries is the number of failed attempts allowed on one
	// connection (ssh.ServerConfig.MaxAuthTries). Zero or negative means
	// 6, sshd's default; authn never allows unlimited attempts.
	MaxAuthTries int

	// Penalties configures per-source penalties. nil means the defaults
	// of PenaltyConfig; set Disabled to turn them off.
	Penalties *PenaltyConfig

	// Logger receives one line per authentication attempt (user, source
	// address, method, key fingerprint, result) and configuration
	// problems. It never receives a password or private key. nil means
	// slog.Default().
	Logger *slog.Logger

	// Now returns the current time, for certificate validity,
	// expiry-time= and penalties. nil means time.Now.
	Now func() time.Time

	// AccountName maps the user name a client sends to the account
	// that authenticates: the name passwords, authorized_keys user files
	// and certificate principals are checked against, and Grant.User. A
	// server that lets the user name carry more than the account (such
	// as execbridge's "alice+web1", see execbridge.SplitUser) strips it
	// here, so that "alice+web1" needs alice's credentials. nil means
	// the user name as sent.
	AccountName func(user string) string
}

// Authenticator implements the configured authentication as callbacks of
// an ssh.ServerConfig. It is safe for concurrent use by many connections.
type Authenticator struct {
	log       *slog.Logger
	account   func(string) string
	now       func() time.Time
	none      bool
	passwords *passwordStore
	keys      *keyStore
	chains    [][]Method
	maxTries  int
	penalties *penaltyBox
}

// New checks cfg and loads the files it names.
func New(cfg *Config) (*Authenticator, error) {
	if cfg == nil {
		return nil, errors.New("authn: nil Config: no authentication mechanism configured")
	}
	a := &Authenticator{log: cmp.Or(cfg.Logger, slog.Default()), account: cfg.AccountName, now: cfg.Now, maxTries: cfg.MaxAuthTries}
	if a.now == nil {
		a.now = time.Now
	}
	if a.maxTries <= 0 {
		a.maxTries = 6
	}
	var err error
	if a.penalties, err = newPenaltyBox(cfg.Penalties, a.now, a.log); err != nil {
		return nil, err
	}
	hasKeys := cfg.AuthorizedKeys != nil || cfg.Certificates != nil
	if cfg.InsecureNoAuthentication {
		if cfg.Passwords != nil || hasKeys || cfg.Methods != nil {
			return nil, errors.New("authn: InsecureNoAuthentication cannot be combined with other mechanisms or Methods")
		}
		a.none = true
		a.log.Error("authn: authentication is DISABLED (InsecureNoAuthentication): anyone who reaches this server logs in as any user")
		return a, nil
	}
	if cfg.Passwords != nil {
		if a.passwords, err = newPasswordStore(cfg.Passwords, a.log); err != nil {
			return nil, err
		}
	}
	if hasKeys {
		if a.keys, err = newKeyStore(cfg, a.log, a.now); err != nil {
			return nil, err
		}
	}
	if a.passwords == nil && a.keys == nil {
		return nil, errors.New("authn: no authentication mechanism configured (set Passwords, AuthorizedKeys or Certificates)")
	}
	enabled := map[Method]bool{MethodPassword: a.passwords != nil, MethodPublicKey: a.keys != nil}
	if cfg.Methods == nil {
		for _, m := range []Method{MethodPublicKey, MethodPassword} {
			if enabled[m] {
				a.chains = append(a.chains, []Method{m})
			}
		}
	} else {
		if len(cfg.Methods) == 0 {
			return nil, errors.New("authn: Methods is empty")
		}
		for i, chain := range cfg.Methods {
			if len(chain) == 0 {
				return nil, fmt.Errorf("authn: Methods[%d] is empty", i)
			}
			for _, m := range chain {
				if !enabled[m] {
					return nil, fmt.Errorf("authn: Methods[%d] uses %q, which is not configured", i, m)
				}
			}
			a.chains = append(a.chains, slices.Clone(chain))
		}
	}
	return a, nil
}

// Apply sets the authentication fields of sc to this Authenticator's
// callbacks: NoClientAuth, NoClientAuthCallback, PasswordCallback,
// PublicKeyCallback, VerifiedPublicKeyCallback,
// KeyboardInteractiveCallback (cleared), GSSAPIWithMICConfig (cleared),
// MaxAuthTries and AuthLogCallback. Other fields, host keys included, are
// left to the caller.
//
// After a successful handshake, ssh.ServerConn.Permissions holds the
// Grant (see GrantFrom); the session handler must enforce it.
func (a *Authenticator) Apply(sc *ssh.ServerConfig) {
	sc.NoClientAuth = a.none
	sc.NoClientAuthCallback = nil
	sc.KeyboardInteractiveCallback = nil
	sc.GSSAPIWithMICConfig = nil
	sc.MaxAuthTries = a.maxTries
	sc.AuthLogCallback = a.authLog
	if a.none {
		sc.NoClientAuthCallback = a.noAuth
		sc.PasswordCallback, sc.PublicKeyCallback, sc.VerifiedPublicKeyCallback = nil, nil, nil
		return
	}
	cb := a.callbacks(&progress{lim: unlimited()})
	sc.PasswordCallback = cb.PasswordCallback
	sc.PublicKeyCallback = cb.PublicKeyCallback
	sc.VerifiedPublicKeyCallback = a.verifiedPublicKey
}

// Allow reports whether a new connection from remote may proceed: it
// returns a *PenaltyError (errors.Is ErrPenalized) while the source
// serves a penalty, and nil otherwise. Call it right after Accept and
// close the connection on error, before any SSH work is spent on it.
func (a *Authenticator) Allow(remote net.Addr) error {
	if a.penalties == nil {
		return nil
	}
	if err := a.penalties.check(remote); err != nil {
		a.log.Debug("authn: connection refused: source penalized", "remote", logtext.Addr(remote))
		return err
	}
	return nil
}

// progress is the state of one connection's authentication: the steps
// done so far. Values are immutable; each step makes a new one.
type progress struct {
	methods []Method
	keys    []KeyInfo
	lim     limits
}

// next returns the methods that continue some chain.
func (a *Authenticator) next(p *progress) []Method {
	var ms []Method
	for _, c := range a.chains {
		if len(c) > len(p.methods) && slices.Equal(c[:len(p.methods)], p.methods) && !slices.Contains(ms, c[len(p.methods)]) {
			ms = append(ms, c[len(p.methods)])
		}
	}
	return ms
}

func (a *Authenticator) complete(p *progress) bool {
	return slices.ContainsFunc(a.chains, func(c []Method) bool { return slices.Equal(c, p.methods) })
}

// callbacks returns the callbacks for the methods that may come next.
// They close over p, so the state of a chain lives in the callbacks that
// x/crypto holds for this connection (ssh.PartialSuccessError.Next).
func (a *Authenticator) callbacks(p *progress) ssh.ServerAuthCallbacks {
	var cb ssh.ServerAuthCallbacks
	for _, m := range a.next(p) {
		switch m {
		case MethodPassword:
			cb.PasswordCallback = func(c ssh.ConnMetadata, pw []byte) (*ssh.Permissions, error) {
				return a.password(c, pw, p)
			}
		case MethodPublicKey:
			cb.PublicKeyCallback = func(c ssh.ConnMetadata, key ssh.PublicKey) (*ssh.Permissions, error) {
				return a.publicKey(c, key, p)
			}
		}
	}
	return cb
}

// failure is an authentication failure as authn returns it to x/crypto:
// never with a secret in it. penalty says what it costs the source.
type failure struct {
	msg     string
	penalty time.Duration
}

func (f *failure) Error() string { return f.msg }

func (a *Authenticator) authFailurePenalty() time.Duration {
	if a.penalties == nil {
		return 0
	}
	return a.penalties.authFailure
}

func (a *Authenticator) keyRefusedPenalty() time.Duration {
	if a.penalties == nil {
		return 0
	}
	return a.penalties.keyRefused
}

// penalized refuses an attempt without evaluating it when its source is
// under penalty (a connection opened before the penalty started). The
// attempt still adds to the penalty: the source keeps trying.
func (a *Authenticator) penalized(c ssh.ConnMetadata, m Method) error {
	if a.penalties == nil {
		return nil
	}
	if err := a.penalties.check(c.RemoteAddr()); err != nil {
		a.attemptLog(slog.LevelInfo, c, m, "refused", nil, "reason", "source penalized")
		pen := a.penalties.keyRefused
		if m == MethodPassword {
			pen = a.penalties.authFailure
		}
		return &failure{msg: err.Error(), penalty: pen}
	}
	return nil
}

func (a *Authenticator) password(c ssh.ConnMetadata, pw []byte, p *progress) (*ssh.Permissions, error) {
	if err := a.penalized(c, MethodPassword); err != nil {
		return nil, err
	}
	ok, err := a.passwords.verify(a.user(c), pw)
	if err != nil {
		if errors.Is(err, errBusy) {
			// Not evaluated; the client learned nothing: no penalty.
			a.attemptLog(slog.LevelWarn, c, MethodPassword, "refused", nil, "reason", err.Error())
			return nil, &failure{msg: err.Error()}
		}
		a.attemptLog(slog.LevelWarn, c, MethodPassword, "failure", nil, "reason", err.Error())
		return nil, &failure{msg: err.Error(), penalty: a.authFailurePenalty()}
	}
	if !ok {
		// Unknown user and wrong password look the same, in the log too:
		// the log line must not become an oracle for valid names.
		a.attemptLog(slog.LevelWarn, c, MethodPassword, "failure", nil, "reason", "wrong password or unknown user")
		return nil, &failure{msg: "authn: password refused", penalty: a.authFailurePenalty()}
	}
	return a.advance(c, p, MethodPassword, nil, unlimited())
}

// pendingKey carries a public key that PublicKeyCallback accepted to
// VerifiedPublicKeyCallback, which x/crypto calls only once the client
// proved it holds the private key. Only then does the key count.
type pendingKey struct {
	progress *progress
	blob     []byte
	info     *KeyInfo
	lim      limits
}

type pendingKeyID struct{}

func (a *Authenticator) publicKey(c ssh.ConnMetadata, key ssh.PublicKey, p *progress) (*ssh.Permissions, error) {
	if err := a.penalized(c, MethodPublicKey); err != nil {
		return nil, err
	}
	ip, hasIP := remoteIP(c.RemoteAddr())
	info, lim, err := a.keys.check(a.user(c), ip, hasIP, key)
	if err == nil && slices.ContainsFunc(p.keys, func(k KeyInfo) bool { return k.Fingerprint == info.Fingerprint }) {
		err = &keyDenied{reason: "key already used for an earlier step"}
	}
	if err == nil {
		// Refuse now a key whose limits clash with earlier steps; advance
		// merges them for real once the key is verified.
		_, err = p.lim.merge(lim)
	}
	if err != nil {
		// Clients offer keys before signing with one; a refusal is
		// routine and logged at info level.
		a.attemptLog(slog.LevelInfo, c, MethodPublicKey, "refused", describeKey(key), "reason", err.Error())
		return nil, &failure{msg: err.Error(), penalty: a.keyRefusedPenalty()}
	}
	a.attemptLog(slog.LevelDebug, c, MethodPublicKey, "acceptable", info)
	perms := &ssh.Permissions{
		CriticalOptions: map[string]string{},
		Extensions:      map[string]string{},
		ExtraData:       map[any]any{pendingKeyID{}: &pendingKey{progress: p, blob: key.Marshal(), info: info, lim: lim}},
	}
	if lim.noTouchRequired {
		// Read by x/crypto when it verifies a security key signature.
		perms.Extensions[extNoTouchRequired] = ""
	}
	if lim.sourceAddress != "" {
		perms.CriticalOptions[OptSourceAddress] = lim.sourceAddress
	}
	return perms, nil
}

// describeKey is the KeyInfo of a key that was not (yet) accepted.
func describeKey(key ssh.PublicKey) *KeyInfo {
	if cert, ok := key.(*ssh.Certificate); ok {
		return &KeyInfo{Type: cert.Type(), Fingerprint: ssh.FingerprintSHA256(cert.Key), CertKeyID: cert.KeyId,
			CertSerial: cert.Serial, CAFingerprint: ssh.FingerprintSHA256(cert.SignatureKey)}
	}
	return &KeyInfo{Type: key.Type(), Fingerprint: ssh.FingerprintSHA256(key)}
}

// verifiedPublicKey runs after the client signed with key. The identity
// comes from the Permissions that PublicKeyCallback returned for this
// very key - never from an earlier query for another key
// (CVE-2024-45337) - and is checked against the verified key once more.
func (a *Authenticator) verifiedPublicKey(c ssh.ConnMetadata, key ssh.PublicKey, perms *ssh.Permissions, _ string) (*ssh.Permissions, error) {
	var pk *pendingKey
	if perms != nil {
		pk, _ = perms.ExtraData[pendingKeyID{}].(*pendingKey)
	}
	if pk == nil || string(pk.blob) != string(key.Marshal()) {
		a.attemptLog(slog.LevelError, c, MethodPublicKey, "failure", nil, "reason", "verified key does not match the accepted key")
		return nil, &failure{msg: "authn: internal error: verified key does not match the accepted key"}
	}
	return a.advance(c, pk.progress, MethodPublicKey, pk.info, pk.lim)
}

// advance records a successful step and either completes the login or
// asks for the next step with a partial success.
func (a *Authenticator) advance(c ssh.ConnMetadata, p *progress, m Method, key *KeyInfo, lim limits) (*ssh.Permissions, error) {
	np := &progress{methods: append(slices.Clip(p.methods), m), keys: slices.Clip(p.keys)}
	if key != nil {
		np.keys = append(np.keys, *key)
	}
	var err error
	if np.lim, err = p.lim.merge(lim); err != nil {
		a.attemptLog(slog.LevelWarn, c, m, "failure", key, "reason", err.Error())
		return nil, &failure{msg: "authn: " + err.Error(), penalty: a.keyRefusedPenalty()}
	}
	if a.complete(np) {
		perms, err := np.lim.permissions(a.user(c), np.methods, np.keys, false)
		if err != nil {
			return nil, err
		}
		a.attemptLog(slog.LevelInfo, c, m, "success", key, "methods", methodList(np.methods))
		return perms, nil
	}
	a.attemptLog(slog.LevelInfo, c, m, "partial", key, "next", methodList(a.next(np)))
	return nil, &ssh.PartialSuccessError{Next: a.callbacks(np)}
}

func methodList(ms []Method) string {
	s := make([]string, len(ms))
	for i, m := range ms {
		s[i] = string(m)
	}
	return strings.Join(s, ",")
}

func (a *Authenticator) noAuth(c ssh.ConnMetadata) (*ssh.Permissions, error) {
	a.attemptLog(slog.LevelWarn, c, MethodNone, "success", nil, "reason", "InsecureNoAuthentication: no credential checked")
	return unlimited().permissions(a.user(c), []Method{MethodNone}, nil, true)
}

// authLog applies penalties; x/crypto calls it after every attempt.
func (a *Authenticator) authLog(c ssh.ConnMetadata, method string, err error) {
	if err == nil || a.penalties == nil || method == string(MethodNone) {
		return
	}
	var ps *ssh.PartialSuccessError
	if errors.As(err, &ps) {
		return
	}
	var f *failure
	if errors.As(err, &f) {
		a.penalties.add(c.RemoteAddr(), f.penalty)
		return
	}
	// An error from x/crypto itself: a method that is not offered, an
	// algorithm that is not accepted. Probing, not guessing.
	a.attemptLog(slog.LevelDebug, c, Method(method), "failure", nil, "reason", err.Error())
	a.penalties.add(c.RemoteAddr(), a.penalties.keyRefused)
}

// user returns the account that c authenticates as (Config.AccountName).
func (a *Authenticator) user(c ssh.ConnMetadata) string {
	if a.account == nil {
		return c.User()
	}
	return a.account(c.User())
}

// attemptLog writes the one line per attempt: user, source address,
// method, result, and key fingerprint when there is a key.
func (a *Authenticator) attemptLog(level slog.Level, c ssh.ConnMetadata, m Method, result string, key *KeyInfo, extra ...any) {
	attrs := []any{
		"user", logtext.Clip(a.user(c), 128),
		"remote", logtext.Addr(c.RemoteAddr()),
		"method", string(m),
		"result", result,
	}
	if a.account != nil && c.User() != a.user(c) {
		attrs = append(attrs, "ssh_user", logtext.Clip(c.User(), 128))
	}
	if key != nil {
		attrs = append(attrs, "key_type", key.Type, "fingerprint", key.Fingerprint)
		if key.Source != "" {
			attrs = append(attrs, "key_source", key.Source)
		}
		if key.CertKeyID != "" || key.CAFingerprint != "" {
			attrs = append(attrs, "cert_key_id", logtext.Clip(key.CertKeyID, 128),
				"cert_serial", strconv.FormatUint(key.CertSerial, 10), "ca_fingerprint", key.CAFingerprint)
		}
	}
	attrs = append(attrs, extra...)
	a.log.Log(context.Background(), level, "authn: "+result, attrs...)
}
