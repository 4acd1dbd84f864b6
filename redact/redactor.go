package redact

import (
	"cmp"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
)

// Redactor masks registered literal secrets, their encoded forms and the
// built-in credential patterns in strings, errors, URLs, log records and
// byte streams. It is safe for concurrent use; Add may be called at any
// time, also while Writers are streaming.
type Redactor struct {
	mask        string
	maskPrefix  string // mask up to the place of the fingerprint
	maskSuffix  string // mask after the fingerprint
	fingerprint bool
	key         []byte
	minLen      int
	policy      ShortSecretPolicy
	literalOnly bool
	noPatterns  bool
	logger      *slog.Logger

	// mu serializes Add, which builds a new snapshot from the current one.
	// Readers never take it: they load snap.
	mu   sync.Mutex
	snap atomic.Pointer[snapshot]
}

// snapshot is the immutable set of literal secrets and its automaton.
// Add replaces it as a whole (copy on write), so a Write or String works on
// one consistent set without locking.
type snapshot struct {
	gen     uint64
	secrets []string
	// masks[i] is the replacement for secrets[i] (its fingerprint in
	// fingerprint mode, else the bare mask).
	masks    [][]byte
	patterns []pattern
	auto     *automaton

	// valueForms is the fmt renderings of the secrets (fmtForms), built
	// on first use by valueText: only text fmt made of Go values is
	// searched for them.
	valueOnce  sync.Once
	valueForms *snapshot
}

// values returns the snapshot of s's secrets as fmt renders them, building
// it on first use. Its masks are s's: a rendering prints the mask (and
// fingerprint) of its secret.
func (s *snapshot) values(r *Redactor) *snapshot {
	s.valueOnce.Do(func() {
		v := &snapshot{gen: s.gen, secrets: s.secrets, masks: s.masks}
		if !r.literalOnly {
			for i, secret := range s.secrets {
				for _, f := range fmtForms(secret) {
					if len(secret) < r.minLen && len(f) < minFormLen {
						continue
					}
					v.patterns = append(v.patterns, pattern{text: f, secret: int32(i)})
				}
			}
		}
		v.auto = buildAutomaton(v.patterns)
		s.valueForms = v
	})
	return s.valueForms
}

// New returns a Redactor configured by cfg; nil means the defaults. It
// returns an error when a secret in cfg.Secrets is empty or refused as too
// short.
func New(cfg *Config) (*Redactor, error) {
	if cfg == nil {
		cfg = &Config{}
	}
	r := &Redactor{
		mask:        cmp.Or(cfg.Mask, DefaultMask),
		fingerprint: cfg.Fingerprint,
		minLen:      cfg.MinSecretLen,
		policy:      cfg.ShortSecrets,
		literalOnly: cfg.LiteralOnly,
		noPatterns:  cfg.NoPatterns,
		logger:      cmp.Or(cfg.Logger, slog.Default()),
	}
	if strings.HasSuffix(r.mask, "]") {
		r.maskPrefix, r.maskSuffix = r.mask[:len(r.mask)-1]+":", "]"
	} else {
		r.maskPrefix = r.mask + ":"
	}
	if r.minLen <= 0 {
		r.minLen = DefaultMinSecretLen
	}
	if r.policy != RefuseShort && r.policy != WarnShort {
		return nil, fmt.Errorf("redact: unknown ShortSecretPolicy %d", int(r.policy))
	}
	if r.fingerprint {
		if len(cfg.FingerprintKey) > 0 {
			r.key = append([]byte(nil), cfg.FingerprintKey...)
		} else {
			r.key = make([]byte, 32)
			if _, err := rand.Read(r.key); err != nil {
				return nil, fmt.Errorf("redact: fingerprint key: %w", err)
			}
		}
	}
	r.snap.Store(&snapshot{})
	if err := r.Add(cfg.Secrets...); err != nil {
		return nil, err
	}
	return r, nil
}

// Add registers literal secrets. From its return on, every String, Error,
// URL, log record and Writer of r masks them (a Writer from its next
// Write; see Writer). Secrets registered before are kept; adding one twice
// is harmless.
//
// Add registers all of its arguments or none: it returns ErrEmptySecret
// for an empty one and, under RefuseShort, a *ShortSecretError for one
// shorter than Config.MinSecretLen.
func (r *Redactor) Add(secrets ...string) error {
	if len(secrets) == 0 {
		return nil
	}
	var short []int
	for i, s := range secrets {
		if s == "" {
			return fmt.Errorf("%w (#%d)", ErrEmptySecret, i)
		}
		if len(s) < r.minLen {
			if r.policy == RefuseShort {
				return &ShortSecretError{Index: i, Len: len(s), Min: r.minLen}
			}
			short = append(short, i)
		}
	}

	r.mu.Lock()
	defer r.mu.Unlock()
	old := r.snap.Load()
	next := &snapshot{
		gen:      old.gen + 1,
		secrets:  append([]string(nil), old.secrets...),
		masks:    append([][]byte(nil), old.masks...),
		patterns: append([]pattern(nil), old.patterns...),
	}
	known := make(map[string]bool, len(next.secrets)+len(secrets))
	for _, s := range next.secrets {
		known[s] = true
	}
	added := false
	for _, s := range secrets {
		if known[s] {
			continue
		}
		known[s] = true
		added = true
		idx := int32(len(next.secrets))
		next.secrets = append(next.secrets, s)
		next.masks = append(next.masks, r.appendMask(nil, []byte(s)))
		next.patterns = append(next.patterns, pattern{text: s, secret: idx})
		if r.literalOnly {
			continue
		}
		for _, f := range encodedForms(s) {
			if len(s) < r.minLen && len(f) < minFormLen {
				continue
			}
			next.patterns = append(next.patterns, pattern{text: f, secret: idx})
		}
	}
	if !added {
		return nil
	}
	next.auto = buildAutomaton(next.patterns)
	r.snap.Store(next)

	for _, i := range short {
		// Never the secret itself: its length and position are enough
		// to find it in the caller's configuration.
		r.logger.Warn("redact: accepted a short secret; it may also mask unrelated text, and its encoded forms shorter than 4 bytes are not masked",
			slog.Int("index", i), slog.Int("len", len(secrets[i])), slog.Int("min", r.minLen))
	}
	return nil
}

// Len returns the number of distinct literal secrets registered.
func (r *Redactor) Len() int { return len(r.snap.Load().secrets) }

// appendMask appends the replacement for the secret value v: the bare
// mask, or the mask with v's fingerprint.
func (r *Redactor) appendMask(dst, v []byte) []byte {
	if !r.fingerprint {
		return append(dst, r.mask...)
	}
	m := hmac.New(sha256.New, r.key)
	m.Write(v)
	var sum [sha256.Size]byte
	return r.appendFingerprint(dst, m.Sum(sum[:0]))
}

// appendFingerprint appends the mask carrying the first 4 bytes of sum.
func (r *Redactor) appendFingerprint(dst, sum []byte) []byte {
	dst = append(dst, r.maskPrefix...)
	dst = hex.AppendEncode(dst, sum[:4])
	return append(dst, r.maskSuffix...)
}

// isMask reports whether b is exactly a replacement this Redactor prints,
// so that text redacted once is not redacted again (which would change a
// fingerprint).
func (r *Redactor) isMask(b []byte) bool {
	if !r.fingerprint {
		return string(b) == r.mask
	}
	n := len(r.maskPrefix) + 8 + len(r.maskSuffix)
	if len(b) != n || string(b[:len(r.maskPrefix)]) != r.maskPrefix || string(b[n-len(r.maskSuffix):]) != r.maskSuffix {
		return false
	}
	for _, c := range b[len(r.maskPrefix) : len(r.maskPrefix)+8] {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

// isMaskPrefix reports whether b could be the start of a replacement.
func (r *Redactor) isMaskPrefix(b []byte) bool {
	if !r.fingerprint {
		return len(b) <= len(r.mask) && string(b) == r.mask[:len(b)]
	}
	p := r.maskPrefix
	if len(b) <= len(p) {
		return string(b) == p[:len(b)]
	}
	if string(b[:len(p)]) != p {
		return false
	}
	rest := b[len(p):]
	for i, c := range rest {
		if i < 8 {
			if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
				return false
			}
			continue
		}
		j := i - 8
		if j >= len(r.maskSuffix) || c != r.maskSuffix[j] {
			return false
		}
	}
	return true
}

// String returns s with every registered secret, each encoded form and
// (unless Config.NoPatterns) every built-in pattern masked. It returns s
// itself when nothing matched.
func (r *Redactor) String(s string) string {
	return r.redactString(s, !r.noPatterns)
}

// Bytes is String for a byte slice. It returns a new slice; b is not
// modified.
func (r *Redactor) Bytes(b []byte) []byte {
	e := newEngine(r, !r.noPatterns)
	e.write(b)
	e.finish()
	return e.out
}

func (r *Redactor) redactString(s string, patterns bool) string {
	if s == "" {
		return s
	}
	e := newEngine(r, patterns)
	e.write([]byte(s))
	e.finish()
	if string(e.out) == s {
		return s
	}
	return string(e.out)
}

// valueText redacts text that fmt made of a Go value (an slog attribute of
// kind Any, an error message): as String does, and then the fmt renderings
// of the secrets, which String does not look for because they would slow
// every stream down. fmt prints a []byte, [N]byte or []rune as decimal
// numbers ("[104 117 ...]") inside any struct, map or slice printed with
// %v, and as hex with %x.
func (r *Redactor) valueText(s string) string {
	s = r.String(s)
	v := r.snap.Load().values(r)
	if v.auto == nil || s == "" {
		return s
	}
	e := engine{r: r, snap: v}
	e.scan([]byte(s))
	e.flush()
	if string(e.out) == s {
		return s
	}
	return string(e.out)
}
