package hostkeys

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"sync"

	"golang.org/x/crypto/ssh"
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

// entry is one valid known_hosts line.
type entry struct {
	marker  marker
	hosts   string      // the host field as written (plain patterns or |1|salt|hash)
	matcher hostMatcher // nil for @revoked lines, which apply to every host
	key     ssh.PublicKey
	blob    string // key.Marshal(), for comparisons
	file    string
	line    int
	order   int // position in the whole database, for stable file:line order
}

func (e *entry) knownKey() KnownKey {
	return KnownKey{Key: e.key, File: e.file, Line: e.line, CertAuthority: e.marker == markerCA}
}

// lineError is a known_hosts line that was skipped because it is malformed
// or uses a key type this package cannot parse. OpenSSH skips such lines
// too, so a single bad line never makes a whole file unusable.
type lineError struct {
	file string
	line int
	err  error
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

// parseLine parses one known_hosts line following OpenSSH's
// hostkeys_foreach (hostfile.c): optional marker, host field, key type, base64
// key, optional comment. It returns (nil, nil) for blank and comment lines.
func parseLine(line string) (*entry, error) {
	line = strings.TrimRight(line, "\r") // tolerate CRLF files; OpenSSH's base64 decoder skips the \r too
	line = strings.TrimLeft(line, " \t")
	if line == "" || line[0] == '#' {
		return nil, nil
	}
	e := &entry{}
	if line[0] == '@' {
		word, rest := nextField(line)
		switch word {
		case markerCAText:
			e.marker = markerCA
		case markerRevokedText:
			e.marker = markerRevoked
		default:
			return nil, fmt.Errorf("unknown marker %q", truncate(word))
		}
		if rest == "" {
			return nil, errors.New("missing host field after " + word)
		}
		line = rest
		if line[0] == '@' {
			return nil, errors.New("only one marker is allowed per line")
		}
	}

	hosts, rest := nextField(line)
	if rest == "" || rest[0] == '#' {
		return nil, errors.New("line ends before the key type")
	}
	e.hosts = hosts
	typ, rest := nextField(rest)
	blob64, _ := nextField(rest) // what follows the key is a comment
	if blob64 == "" {
		return nil, fmt.Errorf("missing key after key type %q", truncate(typ))
	}
	blob, err := base64.StdEncoding.DecodeString(blob64)
	if err != nil {
		return nil, fmt.Errorf("%s key: bad base64: %w", truncate(typ), err)
	}
	key, err := ssh.ParsePublicKey(blob)
	if err != nil {
		return nil, fmt.Errorf("%s key: %w", truncate(typ), err)
	}
	if key.Type() != typ {
		return nil, fmt.Errorf("key type %q does not match the key, which is %q", truncate(typ), key.Type())
	}
	if _, ok := key.(*ssh.Certificate); ok {
		// A certificate is never a known host key: hosts are pinned by their
		// plain key or trusted through a @cert-authority line.
		return nil, fmt.Errorf("%s is a certificate; known_hosts lists plain keys and CA keys", typ)
	}
	e.key = key
	e.blob = string(blob)

	switch {
	case e.marker == markerRevoked:
		// Revocation applies to every host; see database.revoked.
	case strings.HasPrefix(hosts, "|"):
		h, err := parseHashedName(hosts)
		if err != nil {
			return nil, err
		}
		e.matcher = h
	default:
		e.matcher = parsePatternList(hosts)
	}
	return e, nil
}

// truncate shortens untrusted text quoted in an error message.
func truncate(s string) string {
	const max = 64
	if len(s) <= max {
		return s
	}
	return s[:max] + "..."
}

// database is an immutable, parsed view of a set of known_hosts files.
type database struct {
	entries []*entry            // host lines (plain and @cert-authority), in file order
	exact   map[string][]*entry // literal names of lines without wildcards, negation or hashing
	scan    []*entry            // every other host line: matched one by one
	revoked map[string]*entry   // @revoked lines by key blob
	invalid []lineError

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
				db.invalid = append(db.invalid, lineError{file: files[i], line: lineNum, err: err})
				continue
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
	if e.marker == markerRevoked {
		if _, dup := db.revoked[e.blob]; !dup {
			db.revoked[e.blob] = e
		}
		return
	}
	db.entries = append(db.entries, e)
	if pl, ok := e.matcher.(patternList); ok {
		if names, ok := pl.exact(); ok {
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
