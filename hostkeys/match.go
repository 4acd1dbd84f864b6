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

	"github.com/dockssh/dockssh/internal/logtext"
	"github.com/dockssh/dockssh/internal/sshmatch"
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
		return "", "", "", fmt.Errorf("hostkeys: address %q has no host", logtext.Clip(address, maxQuoted))
	}
	if strings.ContainsAny(host, "[]") {
		return "", "", "", fmt.Errorf("hostkeys: address %q has a malformed host", logtext.Clip(address, maxQuoted))
	}
	if port == "" {
		port = "22"
	}
	n, err := strconv.ParseUint(port, 10, 16)
	if err != nil || n == 0 {
		return "", "", "", fmt.Errorf("hostkeys: address %q has an invalid port", logtext.Clip(address, maxQuoted))
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
// (match_pattern_list in OpenSSH's match.c), compared without case as
// OpenSSH does for host names. Each pattern is compared with the whole
// known_hosts name, so "*" also covers "[host]:2222", while "*.example.com"
// covers only port 22 of those hosts and "[*.example.com]:*" covers every
// port, exactly as in OpenSSH.
type patternList struct{ sshmatch.List }

func parsePatternList(field string) patternList {
	return patternList{sshmatch.SplitList(field, true)}
}

func (ps patternList) match(name string) bool { return ps.Match(name) }

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
