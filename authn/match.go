package authn

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"

	"github.com/dockssh/dockssh/internal/sshmatch"
)

// addrPattern is one entry of an OpenSSH address pattern list: an address,
// a CIDR block or a wildcard pattern ('*', '?'), optionally negated by '!'.
type addrPattern struct {
	negate bool
	prefix netip.Prefix // valid for addresses and CIDR blocks
	glob   string       // otherwise: a lower-case wildcard pattern
}

// addrPatternList is OpenSSH's from="pattern-list". authn never resolves
// names (like sshd with UseDNS no): a wildcard pattern is matched against
// the textual client address, so host name patterns never match, and
// negated host name patterns never deny.
type addrPatternList []addrPattern

const maxPatterns = 256

func parseAddrPatterns(s string) (addrPatternList, error) {
	if s == "" {
		return nil, errors.New("empty pattern list")
	}
	entries := strings.Split(s, ",")
	if len(entries) > maxPatterns {
		return nil, fmt.Errorf("more than %d patterns", maxPatterns)
	}
	var l addrPatternList
	for _, e := range entries {
		var p addrPattern
		if strings.HasPrefix(e, "!") {
			p.negate, e = true, e[1:]
		}
		if e == "" {
			return nil, errors.New("empty pattern")
		}
		if strings.ContainsFunc(e, func(r rune) bool { return r <= ' ' || r == 0x7f || r == '"' }) {
			return nil, fmt.Errorf("pattern %q contains a space or control character", e)
		}
		if pfx, err := parseAddrOrPrefix(e); err == nil {
			p.prefix = pfx
		} else if strings.Contains(e, "/") || (!strings.ContainsAny(e, "*?") && looksNumeric(e)) {
			// Meant as an address or CIDR block but malformed (for
			// example host bits set): refuse rather than never match.
			return nil, fmt.Errorf("malformed address or CIDR block %q: %v", e, err)
		} else {
			p.glob = strings.ToLower(e)
		}
		l = append(l, p)
	}
	return l, nil
}

// looksNumeric reports whether s has only characters of IP addresses, so a
// parse failure means a typo rather than a host name pattern.
func looksNumeric(s string) bool {
	hasDigitOrColon := false
	for _, r := range s {
		switch {
		case r >= '0' && r <= '9', r == ':':
			hasDigitOrColon = true
		case r == '.':
		case r >= 'a' && r <= 'f', r >= 'A' && r <= 'F':
			// hex digits only count inside IPv6 (with a colon)
		default:
			return false
		}
	}
	return hasDigitOrColon && (strings.Contains(s, ":") || !strings.ContainsAny(s, "abcdefABCDEF"))
}

// parseAddrOrPrefix parses "192.0.2.1", "2001:db8::/32" and the like. A
// CIDR block with host bits set is an error, as in OpenSSH.
func parseAddrOrPrefix(s string) (netip.Prefix, error) {
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return netip.Prefix{}, err
		}
		if p.Addr().Zone() != "" {
			return netip.Prefix{}, errors.New("zones are not supported")
		}
		if p.Masked() != p {
			return netip.Prefix{}, errors.New("host bits set in CIDR block")
		}
		if p.Addr().Is4In6() {
			return netip.Prefix{}, errors.New("IPv4-mapped CIDR blocks are not supported")
		}
		return p, nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, err
	}
	if a.Zone() != "" {
		return netip.Prefix{}, errors.New("zones are not supported")
	}
	a = a.Unmap()
	return netip.PrefixFrom(a, a.BitLen()), nil
}

// match reports whether ip is allowed: some entry matches it and no
// negated entry does.
func (l addrPatternList) match(ip netip.Addr) bool {
	ip = ip.Unmap().WithZone("")
	text := ip.String()
	found := false
	for _, p := range l {
		var m bool
		if p.prefix.IsValid() {
			m = p.prefix.Contains(ip)
		} else {
			m = sshmatch.Glob(p.glob, text)
		}
		if m && p.negate {
			return false
		}
		found = found || m
	}
	return found
}

// parseCIDRList parses a certificate's source-address option: a comma
// separated list of addresses and CIDR blocks.
func parseCIDRList(s string) ([]netip.Prefix, error) {
	var l []netip.Prefix
	for _, e := range strings.Split(s, ",") {
		p, err := parseAddrOrPrefix(e)
		if err != nil {
			return nil, fmt.Errorf("source-address entry %q: %v", e, err)
		}
		l = append(l, p)
	}
	if len(l) > maxPatterns {
		return nil, fmt.Errorf("more than %d source addresses", maxPatterns)
	}
	return l, nil
}

// remoteIP returns the IP address of a connection's remote end; ok is
// false for non-IP transports (a Unix socket, net.Pipe).
func remoteIP(a net.Addr) (netip.Addr, bool) {
	switch a := a.(type) {
	case *net.TCPAddr:
		ip, ok := netip.AddrFromSlice(a.IP)
		return ip.Unmap(), ok
	case *net.UDPAddr:
		ip, ok := netip.AddrFromSlice(a.IP)
		return ip.Unmap(), ok
	case nil:
		return netip.Addr{}, false
	}
	ap, err := netip.ParseAddrPort(a.String())
	if err != nil {
		return netip.Addr{}, false
	}
	return ap.Addr().Unmap().WithZone(""), true
}
