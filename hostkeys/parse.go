package hostkeys

import (
	"bytes"
	"crypto/rsa"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"sync"

	"golang.org/x/crypto/ssh"

	"github.com/dockssh/dockssh/internal/logtext"
)

// marker is the optional first word of a known_hosts line.
type marker int

const (
	markerNone    marker = iota
	markerCA             // @cert-authority: the key is a CA trusted to sign host certificates
	markerRevoked        // @revoked: the key must never be accepted
)

const (
	markerCAText      = "@cert-authority"
	markerRevokedText = "@revoked"
)

// entry is one known_hosts line that takes part in checks.
type entry struct {
	marker  marker
	hosts   string      // the host field as written (plain patterns or |1|salt|hash)
	matcher hostMatcher // for a @revoked line, used only when its key cannot be read
	key     ssh.PublicKey
	// blob is what an offered key is compared with: the Marshal() of the
	// parsed key, never the bytes of the file, so that an RSA key whose e
	// or n carries extra leading zero bytes is the same key, as OpenSSH
	// compares parsed keys (sshkey_equal_public). For @revoked lines it is
	// the plain key even when the line holds a certificate; on a plain
	// line a certificate stays a certificate, which no offered plain key
	// equals (OpenSSH's sshkey_equal compares types first).
	blob string
	// unreadable is set on a @revoked line whose key cannot be read: the
	// line then refuses every key for the hosts it names (matcher, or
	// every host when its host field cannot be read either).
	unreadable error
	file       string
	line       int
	order      int // position in the whole database, for stable file:line order
}

func (e *entry) knownKey() KnownKey {
	return KnownKey{Key: e.key, File: e.file, Line: e.line, CertAuthority: e.marker == markerCA}
}

// lineError is a known_hosts line that was skipped because it is malformed
// or uses a key type this package cannot parse (OpenSSH skips such lines
// too, so a single bad line never makes a whole file unusable), or a line
// that is used although OpenSSH would skip it (used is true: a @revoked line
// honoured or failing closed).
type lineError struct {
	file string
	line int
	err  error
	used bool
}

// nextField splits s at the first run of spaces or tabs: OpenSSH's
// known_hosts parser separates fields by those only.
func nextField(s string) (field, rest string) {
	i := strings.IndexAny(s, " \t")
	if i < 0 {
		return s, ""
	}
	return s[:i], strings.TrimLeft(s[i:], " \t")
}

// maxQuoted bounds the untrusted text quoted in an error message.
const maxQuoted = 64

// parseLine parses one known_hosts line following OpenSSH's
// hostkeys_foreach_file (hostfile.c): optional marker, host field, key
// type, base64 key, optional comment. It returns (nil, nil) for blank and
// comment lines and (nil, err) for a line to skip. A @revoked line is never
// skipped when that could accept a key it might revoke: it returns an entry
// and, when the line is one OpenSSH would skip, an error saying why it is
// used anyway (see parseRevoked).
func parseLine(line string) (*entry, error) {
	line = strings.TrimRight(line, "\r") // tolerate CRLF files; OpenSSH's base64 decoder skips the \r too
	line = strings.TrimLeft(line, " \t")
	if line == "" || line[0] == '#' {
		return nil, nil
	}
	e := &entry{}
	rest := line
	if line[0] == '@' {
		word, r := nextField(line)
		switch {
		case word == markerCAText:
			e.marker = markerCA
		case strings.EqualFold(word, markerRevokedText):
			return parseRevoked(word, r)
		default:
			return nil, fmt.Errorf("unknown marker %q", logtext.Clip(word, maxQuoted))
		}
		if r == "" {
			return nil, errors.New("missing host field after " + word)
		}
		if r[0] == '@' {
			return nil, errors.New("only one marker is allowed per line")
		}
		rest = r
	}

	hosts, rest := nextField(rest)
	if rest == "" || rest[0] == '#' {
		return nil, errors.New("line ends before the key type")
	}
	e.hosts = hosts
	typ, rest := nextField(rest)
	blob64, _ := nextField(rest) // what follows the key is a comment
	if isSSH1Key(typ) {
		return nil, errors.New("an SSH protocol 1 key, which SSH-2 never uses")
	}
	key, err := parseKey(typ, blob64)
	if err != nil {
		return nil, err
	}
	if want := keyTypeOfName(typ); want != key.Type() {
		return nil, fmt.Errorf("key type %q does not match the key, which is %q", logtext.Clip(typ, maxQuoted), key.Type())
	}
	cert, isCert := key.(*ssh.Certificate)
	if isCert && e.marker == markerCA {
		// OpenSSH would trust the certified key as the CA, but only after
		// verifying the certificate's own signature, which x/crypto does
		// not expose; skipping the line only ever rejects more.
		return nil, errors.New("a certificate on a @cert-authority line; list the CA's public key (the .pub of the key given to ssh-keygen -s)")
	}
	plain := key
	if isCert {
		plain = cert.Key
	}
	if err := checkKeySize(plain); err != nil {
		return nil, err
	}
	e.key = key
	e.blob = string(key.Marshal())

	if strings.HasPrefix(hosts, "|") {
		h, err := parseHashedName(hosts)
		if err != nil {
			return nil, err
		}
		e.matcher = h
	} else {
		e.matcher = parsePatternList(hosts)
	}
	return e, nil
}

// parseRevoked parses what follows the marker of a @revoked line. A
// skipped @revoked line could let a revoked key in, so:
//   - whatever key the line holds is revoked, whatever its host field (see
//     database.check), when the key can be parsed at all: also a
//     certificate (its certified key is revoked, as OpenSSH's
//     check_key_not_revoked does), a key whose type field does not match
//     it, and an RSA key OpenSSH finds too short;
//   - a key type that x/crypto does not implement is skipped: such a key
//     can never be offered to this client;
//   - any other line whose key cannot be read refuses every key for the
//     hosts its host field names, or for every host when that cannot be
//     read either (fail closed; OpenSSH skips the line).
//
// The marker itself is matched without regard to case ("@REVOKED"), which
// OpenSSH would skip as an unknown marker.
func parseRevoked(marker, rest string) (*entry, error) {
	e := &entry{marker: markerRevoked}
	var notes []string
	if marker != markerRevokedText {
		notes = append(notes, fmt.Sprintf("marker %q is not spelled %s", logtext.Clip(marker, maxQuoted), markerRevokedText))
	}
	unreadable := func(err error) (*entry, error) {
		e.unreadable = err
		return e, fmt.Errorf("@revoked line cannot be read (%w): refusing every key for %s until it is fixed or removed", err, e.scope())
	}
	if rest == "" || rest[0] == '@' {
		return unreadable(errors.New("no host field"))
	}
	hosts, rest := nextField(rest)
	e.hosts = hosts
	if strings.HasPrefix(hosts, "|") {
		if h, err := parseHashedName(hosts); err == nil {
			e.matcher = h
		} // else: nil, every host
	} else {
		e.matcher = parsePatternList(hosts)
	}
	if rest == "" || rest[0] == '#' {
		return unreadable(errors.New("line ends before the key type"))
	}
	typ, rest := nextField(rest)
	blob64, _ := nextField(rest)
	if isSSH1Key(typ) {
		return nil, errors.New("an SSH protocol 1 key, which SSH-2 never uses")
	}
	key, err := parseKey(typ, blob64)
	if errors.Is(err, errUnsupportedKeyType) {
		return nil, fmt.Errorf("%w; such a key can never be offered to this client", err)
	}
	if err != nil {
		return unreadable(err)
	}
	if want := keyTypeOfName(typ); want != key.Type() {
		notes = append(notes, fmt.Sprintf("key type %q does not match the key, which is %q", logtext.Clip(typ, maxQuoted), key.Type()))
	}
	plain := key
	if cert, ok := key.(*ssh.Certificate); ok {
		plain = cert.Key
	}
	if err := checkKeySize(plain); err != nil {
		notes = append(notes, err.Error())
	}
	e.key, e.blob = plain, string(plain.Marshal())
	if len(notes) > 0 {
		return e, fmt.Errorf("%s; the key is revoked all the same (OpenSSH would skip the line)", strings.Join(notes, "; "))
	}
	return e, nil
}

// scope describes the hosts an unreadable @revoked line refuses.
func (e *entry) scope() string {
	if e.matcher == nil {
		return "every host"
	}
	return fmt.Sprintf("hosts matching %q", logtext.Clip(e.hosts, maxQuoted))
}

// errUnsupportedKeyType marks a well-formed key of a type x/crypto cannot
// parse.
var errUnsupportedKeyType = errors.New("key type not supported")

// parseKey decodes and parses the key field of a line; typ is only for
// messages.
func parseKey(typ, blob64 string) (ssh.PublicKey, error) {
	if blob64 == "" {
		return nil, fmt.Errorf("missing key after key type %q", logtext.Clip(typ, maxQuoted))
	}
	blob, err := base64.StdEncoding.DecodeString(blob64)
	if err != nil {
		return nil, fmt.Errorf("%s key: bad base64: %w", logtext.Clip(typ, maxQuoted), err)
	}
	key, err := ssh.ParsePublicKey(blob)
	if err == nil {
		return key, nil
	}
	var named keyBlob
	if ssh.Unmarshal(blob, &named) == nil {
		if alias := keyTypeOfName(named.Name); alias != named.Name {
			// OpenSSH's sshkey_from_blob_internal takes the rsa-sha2
			// names inside a key blob as well; x/crypto does not.
			named.Name = alias
			if key, err := ssh.ParsePublicKey(ssh.Marshal(named)); err == nil {
				return key, nil
			}
		} else if named.Name == typ && !knownKeyType(typ) {
			// A consistent line of an algorithm x/crypto does not
			// implement (not a corrupt blob, whose name would differ).
			return nil, fmt.Errorf("%w: %q", errUnsupportedKeyType, logtext.Clip(typ, maxQuoted))
		}
	}
	return nil, fmt.Errorf("%s key: %w", logtext.Clip(typ, maxQuoted), err)
}

// keyBlob is the wire form of a public key: its type, then the rest.
type keyBlob struct {
	Name string
	Rest []byte `ssh:"rest"`
}

// knownKeyType reports whether x/crypto parses public keys of type t
// ("ssh-dss" too: it still parses DSA keys, and never negotiates them).
func knownKeyType(t string) bool {
	switch plainKeyType(t) {
	case ssh.KeyAlgoRSA, "ssh-dss", ssh.KeyAlgoECDSA256, ssh.KeyAlgoECDSA384, ssh.KeyAlgoECDSA521,
		ssh.KeyAlgoSKECDSA256, ssh.KeyAlgoED25519, ssh.KeyAlgoSKED25519:
		return true
	}
	return false
}

// keyTypeOfName returns the key type that the key type field name stands
// for: rsa-sha2-256 and rsa-sha2-512 (and their certificate forms) are
// signature algorithms over an ssh-rsa key, and OpenSSH's sshkey_read
// accepts them as names of that key type (keyimpls in ssh-rsa.c).
func keyTypeOfName(name string) string {
	switch name {
	case ssh.KeyAlgoRSASHA256, ssh.KeyAlgoRSASHA512:
		return ssh.KeyAlgoRSA
	case ssh.CertAlgoRSASHA256v01, ssh.CertAlgoRSASHA512v01:
		return ssh.CertAlgoRSAv01
	}
	return name
}

// isSSH1Key reports whether a key type field is the bit count of an SSH
// protocol 1 RSA key, which OpenSSH's hostkeys_foreach_file recognises as
// "a short decimal number".
func isSSH1Key(typ string) bool {
	return typ != "" && len(typ) < 8 && strings.Trim(typ, "0123456789") == ""
}

// minRSABits is OpenSSH's SSH_RSA_MINIMUM_MODULUS_SIZE (sshkey.h): it
// refuses shorter RSA keys when it parses them, in known_hosts and from a
// server alike.
const minRSABits = 1024

// checkKeySize refuses an RSA key shorter than OpenSSH accepts.
func checkKeySize(key ssh.PublicKey) error {
	ck, ok := key.(ssh.CryptoPublicKey)
	if !ok {
		return nil
	}
	if pub, ok := ck.CryptoPublicKey().(*rsa.PublicKey); ok && pub.N.BitLen() < minRSABits {
		return fmt.Errorf("RSA key of %d bits is shorter than the %d bits OpenSSH requires", pub.N.BitLen(), minRSABits)
	}
	return nil
}

// database is an immutable, parsed view of a set of known_hosts files.
type database struct {
	entries []*entry            // host lines (plain and @cert-authority), in file order
	exact   map[string][]*entry // literal names of lines without wildcards, negation or hashing
	scan    []*entry            // every other host line: matched one by one
	revoked map[string]*entry   // @revoked lines by key blob
	// unreadable are the @revoked lines whose key cannot be read.
	unreadable []*entry
	invalid    []lineError

	// cacheMu guards cache, the lookup results by name: hashed lines cost
	// one HMAC each per lookup, and a program asks about the same few
	// hosts again and again. A reload replaces the whole database, cache
	// included.
	cacheMu sync.Mutex
	cache   map[string][]*entry
}

// maxLookupCache bounds the cache; past it the cache starts over.
const maxLookupCache = 1024

// parseDatabase parses the contents of known_hosts files given in order;
// files[i] names contents[i] in KnownKey and errors.
func parseDatabase(files []string, contents [][]byte) *database {
	db := &database{exact: map[string][]*entry{}, revoked: map[string]*entry{}}
	order := 0
	for i, data := range contents {
		lineNum := 0
		for len(data) > 0 {
			var raw []byte
			if j := bytes.IndexByte(data, '\n'); j >= 0 {
				raw, data = data[:j], data[j+1:]
			} else {
				raw, data = data, nil
			}
			lineNum++
			e, err := parseLine(string(raw))
			if err != nil {
				db.invalid = append(db.invalid, lineError{file: files[i], line: lineNum, err: err, used: e != nil})
			}
			if e == nil {
				continue
			}
			e.file, e.line, e.order = files[i], lineNum, order
			order++
			db.add(e)
		}
	}
	return db
}

func (db *database) add(e *entry) {
	if e.unreadable != nil {
		db.unreadable = append(db.unreadable, e)
		return
	}
	if e.marker == markerRevoked {
		if _, dup := db.revoked[e.blob]; !dup {
			db.revoked[e.blob] = e
		}
		return
	}
	db.entries = append(db.entries, e)
	if pl, ok := e.matcher.(patternList); ok {
		if names, ok := pl.Literals(); ok {
			for _, n := range names {
				if l := db.exact[n]; len(l) == 0 || l[len(l)-1] != e { // "a,a" lists a line once
					db.exact[n] = append(l, e)
				}
			}
			return
		}
	}
	db.scan = append(db.scan, e)
}

// unreadableRevocation returns the first @revoked line whose key cannot be
// read and that names the known_hosts name or the bare host (whose lines
// take part in the check of a non-22 port), or nil.
func (db *database) unreadableRevocation(name, host string) *entry {
	for _, e := range db.unreadable {
		if e.matcher == nil || e.matcher.match(name) || e.matcher.match(host) {
			return e
		}
	}
	return nil
}

// lookup returns the host lines (plain keys and CAs) whose host field
// matches the known_hosts name, in file and line order. The result is
// shared: callers must not modify it.
func (db *database) lookup(name string) []*entry {
	db.cacheMu.Lock()
	got, ok := db.cache[name]
	db.cacheMu.Unlock()
	if ok {
		return got
	}
	got = db.scanLookup(name)
	db.cacheMu.Lock()
	if db.cache == nil || len(db.cache) >= maxLookupCache {
		db.cache = make(map[string][]*entry)
	}
	db.cache[name] = got
	db.cacheMu.Unlock()
	return got
}

func (db *database) scanLookup(name string) []*entry {
	exact := db.exact[name]
	var out []*entry
	for _, e := range db.scan {
		if e.matcher.match(name) {
			out = append(out, e)
		}
	}
	if len(out) == 0 {
		return exact
	}
	if len(exact) == 0 {
		return out
	}
	// Merge the two ordered lists.
	merged := make([]*entry, 0, len(exact)+len(out))
	i, j := 0, 0
	for i < len(exact) || j < len(out) {
		if j == len(out) || (i < len(exact) && exact[i].order < out[j].order) {
			merged = append(merged, exact[i])
			i++
		} else {
			merged = append(merged, out[j])
			j++
		}
	}
	return merged
}
