package authn

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"golang.org/x/crypto/argon2"
	"golang.org/x/crypto/bcrypt"
)

// Argon2Params are the argon2id parameters used by [HashArgon2id]. Every
// zero field takes the value of RFC 9106's second recommended option.
type Argon2Params struct {
	// Memory is the memory cost in KiB; zero means 65536 (64 MiB).
	Memory uint32
	// Time is the number of passes; zero means 3.
	Time uint32
	// Threads is the degree of parallelism; zero means 4.
	Threads uint8
	// SaltLen is the salt length in bytes; zero means 16.
	SaltLen uint32
	// KeyLen is the length of the derived key in bytes; zero means 32.
	KeyLen uint32
}

// Limits on argon2id parameters read from a hash. They keep a mistyped or
// hostile users file from making one verification use gigabytes of memory
// or minutes of CPU; the number of verifications at once is bounded
// separately (PasswordConfig.MaxConcurrentHashes).
const (
	maxArgon2Memory  = 1 << 20 // KiB, 1 GiB
	maxArgon2Time    = 1 << 10
	minArgon2SaltLen = 8
	maxArgon2SaltLen = 64
	minArgon2KeyLen  = 16
	maxArgon2KeyLen  = 128

	// bcryptMaxPassword is the number of password bytes bcrypt reads; it
	// silently ignores the rest, so longer passwords are refused.
	bcryptMaxPassword = 72

	// maxPasswordLen bounds the password bytes authn will look at, for
	// every user and every kind of credential. OpenSSH has no such limit
	// apart from the packet size; nobody types 1 KiB passwords.
	maxPasswordLen = 1024
)

func (p *Argon2Params) withDefaults() Argon2Params {
	var q Argon2Params
	if p != nil {
		q = *p
	}
	if q.Memory == 0 {
		q.Memory = 64 * 1024
	}
	if q.Time == 0 {
		q.Time = 3
	}
	if q.Threads == 0 {
		q.Threads = 4
	}
	if q.SaltLen == 0 {
		q.SaltLen = 16
	}
	if q.KeyLen == 0 {
		q.KeyLen = 32
	}
	return q
}

// HashArgon2id returns password hashed with argon2id in the PHC string
// format ("$argon2id$v=19$m=65536,t=3,p=4$salt$hash") that users files and
// PasswordUser.Hash accept. A nil p means the defaults of [Argon2Params].
func HashArgon2id(password []byte, p *Argon2Params) (string, error) {
	q := p.withDefaults()
	h := &argon2Hash{memory: q.Memory, time: q.Time, threads: q.Threads}
	if err := h.checkParams(int(q.SaltLen), int(q.KeyLen)); err != nil {
		return "", err
	}
	h.salt = make([]byte, q.SaltLen)
	if _, err := rand.Read(h.salt); err != nil {
		return "", fmt.Errorf("authn: reading random salt: %w", err)
	}
	h.key = argon2.IDKey(password, h.salt, h.time, h.memory, h.threads, q.KeyLen)
	return h.String(), nil
}

// verifier checks a password against one stored credential.
type verifier interface {
	// verify reports whether password matches. Its running time must not
	// depend on how much of the password matches.
	verify(password []byte) bool
	// class identifies the cost of verify: two verifiers of the same
	// class take the same time, which is what the dummy for unknown users
	// relies on.
	class() string
	// expensive reports whether verify is a deliberately slow hash whose
	// concurrency must be bounded.
	expensive() bool
}

// argon2Hash is a parsed argon2id PHC string.
type argon2Hash struct {
	memory  uint32
	time    uint32
	threads uint8
	salt    []byte
	key     []byte
}

func (h *argon2Hash) checkParams(saltLen, keyLen int) error {
	switch {
	case h.memory > maxArgon2Memory:
		return fmt.Errorf("authn: argon2id memory %d KiB above the limit of %d KiB", h.memory, maxArgon2Memory)
	case h.threads == 0:
		return errors.New("authn: argon2id parallelism must be at least 1")
	case h.memory < 8*uint32(h.threads):
		return fmt.Errorf("authn: argon2id memory %d KiB below 8*parallelism", h.memory)
	case h.time == 0 || h.time > maxArgon2Time:
		return fmt.Errorf("authn: argon2id time %d outside 1..%d", h.time, maxArgon2Time)
	case saltLen < minArgon2SaltLen || saltLen > maxArgon2SaltLen:
		return fmt.Errorf("authn: argon2id salt of %d bytes outside %d..%d", saltLen, minArgon2SaltLen, maxArgon2SaltLen)
	case keyLen < minArgon2KeyLen || keyLen > maxArgon2KeyLen:
		return fmt.Errorf("authn: argon2id hash of %d bytes outside %d..%d", keyLen, minArgon2KeyLen, maxArgon2KeyLen)
	}
	return nil
}

func (h *argon2Hash) String() string {
	enc := base64.RawStdEncoding
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version,
		h.memory, h.time, h.threads, enc.EncodeToString(h.salt), enc.EncodeToString(h.key))
}

func (h *argon2Hash) verify(password []byte) bool {
	k := argon2.IDKey(password, h.salt, h.time, h.memory, h.threads, uint32(len(h.key)))
	return subtle.ConstantTimeCompare(k, h.key) == 1
}

func (h *argon2Hash) class() string {
	return fmt.Sprintf("argon2id m=%d t=%d p=%d s=%d k=%d", h.memory, h.time, h.threads, len(h.salt), len(h.key))
}

func (h *argon2Hash) expensive() bool { return true }

// parseArgon2id parses "$argon2id$v=19$m=..,t=..,p=..$salt$hash". Errors
// never quote the input: a hash is not a password, but it is still
// material for an offline guessing attack.
func parseArgon2id(s string) (*argon2Hash, error) {
	parts := strings.Split(s, "$")
	// "", "argon2id", "v=19", "m=..,t=..,p=..", salt, hash
	if len(parts) != 6 || parts[0] != "" || parts[1] != "argon2id" {
		return nil, errors.New("authn: malformed argon2id hash (want $argon2id$v=19$m=M,t=T,p=P$salt$hash)")
	}
	if parts[2] != "v=19" {
		return nil, errors.New("authn: unsupported argon2id version (want v=19)")
	}
	h := &argon2Hash{}
	seen := map[string]bool{}
	for _, kv := range strings.Split(parts[3], ",") {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || seen[k] {
			return nil, errors.New("authn: malformed argon2id parameters")
		}
		seen[k] = true
		n, err := strconv.ParseUint(v, 10, 32)
		if err != nil {
			return nil, errors.New("authn: malformed argon2id parameters")
		}
		switch k {
		case "m":
			h.memory = uint32(n)
		case "t":
			h.time = uint32(n)
		case "p":
			if n > 255 {
				return nil, errors.New("authn: argon2id parallelism above 255")
			}
			h.threads = uint8(n)
		default:
			return nil, errors.New("authn: unsupported argon2id parameter")
		}
	}
	if !seen["m"] || !seen["t"] || !seen["p"] {
		return nil, errors.New("authn: argon2id hash lacks one of m, t, p")
	}
	var err error
	if h.salt, err = decodePHCBase64(parts[4]); err != nil {
		return nil, errors.New("authn: malformed argon2id salt")
	}
	if h.key, err = decodePHCBase64(parts[5]); err != nil {
		return nil, errors.New("authn: malformed argon2id hash value")
	}
	if err := h.checkParams(len(h.salt), len(h.key)); err != nil {
		return nil, err
	}
	return h, nil
}

// decodePHCBase64 decodes the PHC format's unpadded standard base64, and
// tolerates padding since some tools emit it.
func decodePHCBase64(s string) ([]byte, error) {
	return base64.RawStdEncoding.DecodeString(strings.TrimRight(s, "="))
}

// bcryptHash is a bcrypt hash ($2a$, $2b$, $2y$).
type bcryptHash struct {
	hash []byte
	cost int
}

func parseBcrypt(s string) (*bcryptHash, error) {
	cost, err := bcrypt.Cost([]byte(s))
	if err != nil {
		return nil, errors.New("authn: malformed bcrypt hash")
	}
	return &bcryptHash{hash: []byte(s), cost: cost}, nil
}

// verify refuses passwords longer than bcrypt's 72 bytes instead of
// letting bcrypt ignore the tail (which would let "anything" + 72 correct
// bytes in). It still runs one bcrypt so that the refusal takes the same
// time as a wrong password.
func (h *bcryptHash) verify(password []byte) bool {
	if len(password) > bcryptMaxPassword {
		_ = bcrypt.CompareHashAndPassword(h.hash, password[:bcryptMaxPassword])
		return false
	}
	return bcrypt.CompareHashAndPassword(h.hash, password) == nil
}

func (h *bcryptHash) class() string   { return "bcrypt cost=" + strconv.Itoa(h.cost) }
func (h *bcryptHash) expensive() bool { return true }

// clearPassword is a password configured in clear. Only an HMAC of it
// under a per-Authenticator random key is kept, so that comparison takes
// the same time whatever the lengths and contents of both passwords.
type clearPassword struct {
	key *[32]byte
	mac []byte
}

func newClearPassword(key *[32]byte, password []byte) *clearPassword {
	m := hmac.New(sha256.New, key[:])
	m.Write(password)
	return &clearPassword{key: key, mac: m.Sum(nil)}
}

func (c *clearPassword) verify(password []byte) bool {
	m := hmac.New(sha256.New, c.key[:])
	m.Write(password)
	return hmac.Equal(m.Sum(nil), c.mac)
}

func (c *clearPassword) class() string   { return "clear" }
func (c *clearPassword) expensive() bool { return false }

// parseHash parses a stored password hash of a supported kind.
func parseHash(s string) (verifier, error) {
	switch {
	case strings.HasPrefix(s, "$argon2id$"):
		return parseArgon2id(s)
	case strings.HasPrefix(s, "$2a$"), strings.HasPrefix(s, "$2b$"), strings.HasPrefix(s, "$2y$"):
		return parseBcrypt(s)
	case strings.HasPrefix(s, "$argon2i$"), strings.HasPrefix(s, "$argon2d$"):
		return nil, errors.New("authn: only the argon2id variant of argon2 is supported")
	}
	return nil, errors.New("authn: unsupported password hash (want argon2id PHC string or bcrypt)")
}

// dummyFor returns a verifier that costs the same as v and matches no
// password: it stands in for unknown users so that they take as long as
// known ones.
func dummyFor(v verifier, clearKey *[32]byte) (verifier, error) {
	switch v := v.(type) {
	case *argon2Hash:
		d := &argon2Hash{memory: v.memory, time: v.time, threads: v.threads,
			salt: make([]byte, len(v.salt)), key: make([]byte, len(v.key))}
		// A random target: no password derives it (but for a 2^-128 chance).
		if _, err := rand.Read(d.salt); err != nil {
			return nil, err
		}
		if _, err := rand.Read(d.key); err != nil {
			return nil, err
		}
		return d, nil
	case *bcryptHash:
		var pw [32]byte
		if _, err := rand.Read(pw[:]); err != nil {
			return nil, err
		}
		h, err := bcrypt.GenerateFromPassword(pw[:], v.cost)
		if err != nil {
			return nil, err
		}
		return &bcryptHash{hash: h, cost: v.cost}, nil
	case *clearPassword:
		mac := make([]byte, len(v.mac))
		if _, err := rand.Read(mac); err != nil {
			return nil, err
		}
		return &clearPassword{key: clearKey, mac: mac}, nil
	}
	return nil, fmt.Errorf("authn: no dummy for %T", v)
}
