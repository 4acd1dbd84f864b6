package hostkeys

import (
	"crypto/hmac"
	"crypto/sha1"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
)

// knownHostsName returns the name OpenSSH looks up in known_hosts for a
// "host:port" address: the lowercased host alone for port 22, and
// "[host]:port" otherwise (put_host_port in OpenSSH's misc.c; ssh.c and
// ssh-keyscan lowercase the host first). An address without a port means
// port 22. host is returned without brackets, for certificate principals and
// for the fix-it commands in errors.
func knownHostsName(address string) (name, host, port string, err error) {
	host, port, err = net.SplitHostPort(address)
	if err != nil {
		// No port: the whole address is the host ("example.com", "::1", "[::1]").
		host, port = address, ""
	}
	if len(host) >= 2 && host[0] == '[' && host[len(host)-1] == ']' {
		host = host[1 : len(host)-1]
	}
	if host == "" {
		return "", "", "", fmt.Errorf("hostkeys: address %q has no host", truncate(address))
	}
	if strings.ContainsAny(host, "[]") {
		return "", "", "", fmt.Errorf("hostkeys: address %q has a malformed host", truncate(address))
	}
	if port == "" {
		port = "22"
	}
	n, err := strconv.ParseUint(port, 10, 16)
	if err != nil || n == 0 {
		return "", "", "", fmt.Errorf("hostkeys: address %q has an invalid port", truncate(address))
	}
	port = strconv.FormatUint(n, 10) // "022" is port 22
	host = strings.ToLower(host)
	if port == "22" {
		return host, host, port, nil
	}
	return "[" + host + "]:" + port, host, port, nil
}

// hostMatcher decides whether the host field of a known_hosts line covers a
// known_hosts name.
type hostMatcher interface {
	match(name string) bool
}

// patternList is a comma-separated list of OpenSSH patterns
// (match_pattern_list in OpenSSH's match.c): '*' matches any run of bytes,
// '?' exactly one byte, a leading '!' negates. A name matches when at least
// one positive pattern matches and no negated pattern does. Each pattern is
// compared with the whole known_hosts name, so "*" also covers
// "[host]:2222", while "*.example.com" covers only port 22 of those hosts
// and "[*.example.com]:*" covers every port, exactly as in OpenSSH.
type patternList []pattern

type pattern struct {
	negate bool
	glob   string // lowercased, as OpenSSH lowercases patterns for host matching
}

func parsePatternList(field string) patternList {
	var ps patternList
	for p := range strings.SplitSeq(field, ",") {
		neg := strings.HasPrefix(p, "!")
		if neg {
			p = p[1:]
		}
		ps = append(ps, pattern{negate: neg, glob: strings.ToLower(p)})
	}
	return ps
}

func (ps patternList) match(name string) bool {
	matched := false
	for _, p := range ps {
		if !globMatch(p.glob, name) {
			continue
		}
		if p.negate {
			return false
		}
		matched = true
	}
	return matched
}

// exact returns the single literal name that ps matches, if ps is exactly
// one positive pattern without wildcards; such lines are looked up by map.
func (ps patternList) exact() (names []string, ok bool) {
	for _, p := range ps {
		if p.negate || strings.ContainsAny(p.glob, "*?") {
			return nil, false
		}
		names = append(names, p.glob)
	}
	return names, len(names) > 0
}

// globMatch reports whether s matches the OpenSSH pattern p, where '*'
// matches any run of bytes (including none) and '?' any single byte. It
// gives the same answers as OpenSSH's recursive match_pattern but runs in
// O(len(p)*len(s)) at worst, because it only ever backtracks to the most
// recent '*'.
func globMatch(p, s string) bool {
	pi, si := 0, 0
	starP, starS := -1, 0
	for si < len(s) {
		switch {
		case pi < len(p) && p[pi] == '*':
			starP, starS = pi, si
			pi++
		case pi < len(p) && (p[pi] == '?' || p[pi] == s[si]):
			pi++
			si++
		case starP >= 0:
			starS++
			si = starS
			pi = starP + 1
		default:
			return false
		}
	}
	for pi < len(p) && p[pi] == '*' {
		pi++
	}
	return pi == len(p)
}

// hashedName is a host field written by "ssh-keygen -H", "ssh-keyscan -H" or
// HashKnownHosts: "|1|" base64(salt) "|" base64(HMAC-SHA1(salt, name)).
type hashedName struct {
	salt, sum []byte
}

const hashMagic = "|1|"

func parseHashedName(field string) (*hashedName, error) {
	rest, ok := strings.CutPrefix(field, hashMagic)
	if !ok {
		return nil, errors.New("hashed host does not start with |1|")
	}
	saltB64, sumB64, ok := strings.Cut(rest, "|")
	if !ok {
		return nil, errors.New("hashed host has no hash after the salt")
	}
	salt, err := base64.StdEncoding.DecodeString(saltB64)
	if err != nil {
		return nil, fmt.Errorf("hashed host salt: %w", err)
	}
	sum, err := base64.StdEncoding.DecodeString(sumB64)
	if err != nil {
		return nil, fmt.Errorf("hashed host hash: %w", err)
	}
	// OpenSSH's extract_salt insists on a salt as long as the HMAC-SHA1 output.
	if len(salt) != sha1.Size || len(sum) != sha1.Size {
		return nil, fmt.Errorf("hashed host salt and hash must be %d bytes, got %d and %d", sha1.Size, len(salt), len(sum))
	}
	return &hashedName{salt: salt, sum: sum}, nil
}

func (h *hashedName) match(name string) bool {
	return hmac.Equal(hashName(h.salt, name), h.sum)
}

func hashName(salt []byte, name string) []byte {
	mac := hmac.New(sha1.New, salt)
	mac.Write([]byte(name))
	return mac.Sum(nil)
}

func encodeHashedName(salt []byte, name string) string {
	return hashMagic + base64.StdEncoding.EncodeToString(salt) + "|" +
		base64.StdEncoding.EncodeToString(hashName(salt, name))
}
