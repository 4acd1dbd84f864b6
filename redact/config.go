package redact

import (
	"errors"
	"fmt"
	"log/slog"
)

// DefaultMask is the text that replaces a secret when Config.Mask is empty.
const DefaultMask = "[REDACTED]"

// DefaultMinSecretLen is the shortest secret Add accepts without applying
// Config.ShortSecrets. Shorter strings occur by chance in ordinary output
// (masking "abc" everywhere garbles it), and their absence from a masked
// line tells a reader where they were.
const DefaultMinSecretLen = 8

// Config configures a Redactor. A nil *Config and the zero Config mean the
// defaults described on each field.
type Config struct {
	// Secrets are literal secrets registered by New, exactly as if passed
	// to Add. Nil means none: the built-in patterns still apply.
	Secrets []string

	// Mask is the text that replaces a secret. Empty means DefaultMask.
	Mask string

	// Fingerprint, when true, replaces a secret with the mask carrying a
	// short keyed fingerprint instead of the bare mask: "[REDACTED:1f9a02c4]"
	// (the fingerprint goes before a closing "]" of the mask, or after the
	// mask and a ":" when it has none). The fingerprint is the first 32
	// bits of HMAC-SHA256(key, secret), so one secret prints the same
	// fingerprint in every line of one Redactor and two lines can be
	// correlated, while nobody without the key can test guesses against it.
	// An encoded form of a literal secret prints the secret's fingerprint.
	// False means the bare mask.
	Fingerprint bool

	// FingerprintKey keys the fingerprint. Nil or empty means 32 random
	// bytes drawn by New, so fingerprints differ between Redactors and
	// between runs. Set it only to compare fingerprints across processes or
	// in tests: whoever holds it can confirm a guessed secret.
	FingerprintKey []byte

	// MinSecretLen is the shortest literal secret accepted without
	// ShortSecrets applying. Zero or negative means DefaultMinSecretLen.
	MinSecretLen int

	// ShortSecrets says what Add does with a secret shorter than
	// MinSecretLen. The zero value, RefuseShort, makes Add return a
	// *ShortSecretError and register nothing.
	ShortSecrets ShortSecretPolicy

	// LiteralOnly, when true, matches only the bytes of each literal
	// secret. False (the zero value) also matches its encoded forms:
	// base64 (standard and URL alphabets, at each of the three byte
	// offsets, with and without padding), percent-encoding (upper and lower
	// case hex, query and path escaping) and JSON string escaping.
	LiteralOnly bool

	// NoPatterns, when true, turns the built-in patterns off (PEM private
	// key blocks, Authorization credentials, URL user info, password=-style
	// pairs) so only literal secrets are masked, for example in binary
	// streams. False (the zero value) keeps them on.
	NoPatterns bool

	// Logger receives the warning for each short secret accepted under
	// WarnShort. Nil means slog.Default().
	Logger *slog.Logger
}

// ShortSecretPolicy says what to do with a literal secret shorter than
// Config.MinSecretLen. None of them drops a secret silently.
type ShortSecretPolicy int

const (
	// RefuseShort makes Add return a *ShortSecretError and register none of
	// the secrets passed in that call.
	RefuseShort ShortSecretPolicy = iota
	// WarnShort registers the secret and logs a warning at level Warn
	// (without the secret) that it may mask unrelated text. Its encoded
	// forms shorter than 4 bytes are not registered, and the warning says
	// so.
	WarnShort
)

// String returns the policy's name.
func (p ShortSecretPolicy) String() string {
	switch p {
	case RefuseShort:
		return "RefuseShort"
	case WarnShort:
		return "WarnShort"
	}
	return fmt.Sprintf("ShortSecretPolicy(%d)", int(p))
}

// ErrEmptySecret is returned by Add and New for an empty secret, under any
// policy: an empty string cannot be masked.
var ErrEmptySecret = errors.New("redact: empty secret")

// ErrClosed is returned by a Writer used after Close.
var ErrClosed = errors.New("redact: Writer is closed")

// ShortSecretError reports a secret refused because it is shorter than the
// minimum. It never holds the secret itself.
type ShortSecretError struct {
	// Index is the secret's position among the arguments of Add (or in
	// Config.Secrets).
	Index int
	// Len is the secret's length in bytes.
	Len int
	// Min is the minimum length in force.
	Min int
}

func (e *ShortSecretError) Error() string {
	return fmt.Sprintf("redact: secret #%d is %d bytes, shorter than the minimum of %d (set Config.ShortSecrets to WarnShort to accept it)", e.Index, e.Len, e.Min)
}

// minFormLen is the shortest encoded form registered for a short secret
// under WarnShort: shorter forms would mask unrelated text everywhere.
const minFormLen = 4
