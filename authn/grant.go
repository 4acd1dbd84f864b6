package authn

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"

	"golang.org/x/crypto/ssh"
)

// Keys of ssh.Permissions that authn fills on success. The session handler
// must enforce them; GrantFrom decodes them all.
//
// The "permit-*" extensions use the names of OpenSSH certificate
// extensions: present means permitted, absent means refused, so a handler
// that forgets one fails closed. Values of list-valued keys are JSON
// arrays of strings.
const (
	// OptForceCommand (CriticalOptions) holds the command the session must
	// run instead of the one the client asks for: authorized_keys
	// command= or the certificate's force-command.
	OptForceCommand = "force-command"
	// OptSourceAddress (CriticalOptions) holds a certificate's
	// source-address list; authn and x/crypto both enforced it already.
	OptSourceAddress = "source-address"

	// ExtPermitPTY (Extensions) is present when the session may allocate
	// a pseudo-terminal (no restrict/no-pty; certificate permit-pty).
	ExtPermitPTY = "permit-pty"
	// ExtPermitPortForwarding is present when TCP forwarding is allowed.
	ExtPermitPortForwarding = "permit-port-forwarding"
	// ExtPermitAgentForwarding is present when agent forwarding is allowed.
	ExtPermitAgentForwarding = "permit-agent-forwarding"
	// ExtPermitX11Forwarding is present when X11 forwarding is allowed.
	ExtPermitX11Forwarding = "permit-X11-forwarding"
	// ExtPermitUserRC is present when ~/.ssh/rc may run.
	ExtPermitUserRC = "permit-user-rc"

	// ExtUser holds the authenticated user name.
	ExtUser = "user@dockssh"
	// ExtMethods holds the methods that succeeded, in order, joined by
	// commas ("publickey,password").
	ExtMethods = "methods@dockssh"
	// ExtKeys holds a JSON array of KeyInfo objects, one per public key
	// step, in order.
	ExtKeys = "keys@dockssh"
	// ExtEnvironment holds a JSON array of "NAME=value" from
	// authorized_keys environment= options. Like sshd's
	// PermitUserEnvironment, a handler should pass them through its own
	// environment policy.
	ExtEnvironment = "environment@dockssh"
	// ExtPermitOpen, when present, restricts local forwarding (direct-tcpip)
	// to a JSON array of "host:port" (port may be "*"); an empty array
	// permits no destination. Absent: any destination, if
	// ExtPermitPortForwarding is present.
	ExtPermitOpen = "permitopen@dockssh"
	// ExtPermitListen, when present, restricts remote forwarding
	// (tcpip-forward) to a JSON array of "[host:]port".
	ExtPermitListen = "permitlisten@dockssh"
	// ExtTunnel holds the tun device number forced by tunnel=.
	ExtTunnel = "tunnel@dockssh"
	// ExtNoAuthentication is present when the login was let in by
	// Config.InsecureNoAuthentication.
	ExtNoAuthentication = "no-authentication@dockssh"
)

const (
	optForceCommand    = OptForceCommand
	optSourceAddress   = OptSourceAddress
	extNoTouchRequired = "no-touch-required"
)

// KeyInfo describes one public key or certificate that authenticated.
type KeyInfo struct {
	// Type is the key or certificate type ("ssh-ed25519",
	// "ssh-ed25519-cert-v01@openssh.com").
	Type string `json:"type"`
	// Fingerprint is the SHA256 fingerprint of the key; for a
	// certificate, of the certified key.
	Fingerprint string `json:"fingerprint"`
	// Source is the authorized_keys "file:line" that allowed the key,
	// empty for certificates of Certificates.TrustedCAKeys.
	Source string `json:"source,omitempty"`
	// CertKeyID is the certificate's key ID; empty for plain keys.
	CertKeyID string `json:"cert_key_id,omitempty"`
	// CertSerial is the certificate's serial number.
	CertSerial uint64 `json:"cert_serial,omitempty"`
	// CAFingerprint is the SHA256 fingerprint of the signing CA key.
	CAFingerprint string `json:"ca_fingerprint,omitempty"`
	// Principal is the certificate principal that matched.
	Principal string `json:"principal,omitempty"`
}

// Grant is what a successful authentication established: who logged in,
// how, and what the session may do. Obtain it with GrantFrom.
type Grant struct {
	// User is the authenticated user name.
	User string
	// Methods are the methods that succeeded, in order.
	Methods []Method
	// Keys describe the public keys or certificates used, in order.
	Keys []KeyInfo
	// NoAuthentication reports a login let in by InsecureNoAuthentication.
	NoAuthentication bool

	// ForceCommand, if not empty, must run instead of the command or
	// shell the client asks for.
	ForceCommand string
	// PTY, PortForwarding, AgentForwarding, X11Forwarding and UserRC
	// report whether each feature is permitted.
	PTY, PortForwarding, AgentForwarding, X11Forwarding, UserRC bool
	// Environment holds "NAME=value" pairs from environment= options.
	Environment []string
	// PermitOpen, if non-nil, lists the only "host:port" destinations of
	// local forwarding (see MayOpen).
	PermitOpen []string
	// PermitListen, if non-nil, lists the only "[host:]port" of remote
	// forwarding (see MayListen).
	PermitListen []string
	// Tunnel is the tun device forced by tunnel=, or empty.
	Tunnel string
	// SourceAddress is the certificate's source-address list, already
	// enforced.
	SourceAddress string
}

// ErrNoGrant is returned by GrantFrom for Permissions that authn did not
// produce.
var ErrNoGrant = errors.New("authn: permissions carry no authn grant")

// GrantFrom decodes the Grant that authn stored in the Permissions of a
// successful authentication (ssh.ServerConn.Permissions).
func GrantFrom(p *ssh.Permissions) (*Grant, error) {
	if p == nil {
		return nil, ErrNoGrant
	}
	user, ok := p.Extensions[ExtUser]
	if !ok {
		return nil, ErrNoGrant
	}
	g := &Grant{User: user}
	for _, m := range strings.Split(p.Extensions[ExtMethods], ",") {
		if m != "" {
			g.Methods = append(g.Methods, Method(m))
		}
	}
	if len(g.Methods) == 0 {
		return nil, fmt.Errorf("authn: permissions lack %s", ExtMethods)
	}
	_, g.NoAuthentication = p.Extensions[ExtNoAuthentication]
	g.ForceCommand = p.CriticalOptions[OptForceCommand]
	g.SourceAddress = p.CriticalOptions[OptSourceAddress]
	_, g.PTY = p.Extensions[ExtPermitPTY]
	_, g.PortForwarding = p.Extensions[ExtPermitPortForwarding]
	_, g.AgentForwarding = p.Extensions[ExtPermitAgentForwarding]
	_, g.X11Forwarding = p.Extensions[ExtPermitX11Forwarding]
	_, g.UserRC = p.Extensions[ExtPermitUserRC]
	g.Tunnel = p.Extensions[ExtTunnel]
	if v, ok := p.Extensions[ExtKeys]; ok {
		if err := json.Unmarshal([]byte(v), &g.Keys); err != nil {
			return nil, fmt.Errorf("authn: decoding %s: %w", ExtKeys, err)
		}
	}
	for key, dst := range map[string]*[]string{ExtEnvironment: &g.Environment, ExtPermitOpen: &g.PermitOpen, ExtPermitListen: &g.PermitListen} {
		if v, ok := p.Extensions[key]; ok {
			var l []string
			if err := json.Unmarshal([]byte(v), &l); err != nil {
				return nil, fmt.Errorf("authn: decoding %s: %w", key, err)
			}
			if l == nil {
				l = []string{}
			}
			*dst = l
		}
	}
	return g, nil
}

// MayOpen reports whether local forwarding to host:port is permitted:
// port forwarding is on and, when permitopen= lists destinations, one of
// them matches (host compared case-insensitively, port "*" matches any).
func (g *Grant) MayOpen(host string, port int) bool {
	if !g.PortForwarding {
		return false
	}
	if g.PermitOpen == nil {
		return true
	}
	return slices.ContainsFunc(g.PermitOpen, func(e string) bool { return hostPortMatch(e, host, port, true) })
}

// MayListen reports whether remote forwarding on host:port is permitted;
// a permitlisten= entry without a host matches only "localhost" and
// loopback listeners, as in OpenSSH.
func (g *Grant) MayListen(host string, port int) bool {
	if !g.PortForwarding {
		return false
	}
	if g.PermitListen == nil {
		return true
	}
	return slices.ContainsFunc(g.PermitListen, func(e string) bool { return hostPortMatch(e, host, port, false) })
}

func hostPortMatch(entry, host string, port int, open bool) bool {
	eh, ep := "", entry
	if i := strings.LastIndexByte(entry, ':'); i >= 0 {
		eh, ep = entry[:i], entry[i+1:]
	}
	if ep != "*" && ep != strconv.Itoa(port) {
		return false
	}
	eh = strings.TrimSuffix(strings.TrimPrefix(eh, "["), "]")
	h := strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	switch {
	case eh == "*":
		return true
	case eh == "" && !open:
		if h == "localhost" || h == "" {
			return true
		}
		ip := net.ParseIP(h)
		return ip != nil && ip.IsLoopback()
	}
	return strings.EqualFold(eh, h)
}

// limits are what one authentication step lets the session do.
type limits struct {
	permits         permits
	forceCommand    string
	environment     []string
	permitOpen      []string // nil: unrestricted
	permitListen    []string // nil: unrestricted
	tunnel          string
	sourceAddress   string
	noTouchRequired bool
}

func unlimited() limits { return limits{permits: allPermits()} }

func limitsFromOptions(o keyOptions) limits {
	return limits{
		permits:         o.permits,
		forceCommand:    o.command,
		environment:     o.environment,
		permitOpen:      o.permitOpen,
		permitListen:    o.permitListen,
		tunnel:          o.tunnel,
		noTouchRequired: o.noTouchRequired,
	}
}

// merge combines the limits of two steps (or of a certificate and its
// cert-authority line): the result allows only what both allow. Two
// different forced commands or tunnels are an error, as in OpenSSH.
func (l limits) merge(m limits) (limits, error) {
	r := limits{permits: l.permits.and(m.permits), noTouchRequired: l.noTouchRequired && m.noTouchRequired}
	switch {
	case l.forceCommand != "" && m.forceCommand != "" && l.forceCommand != m.forceCommand:
		return limits{}, errors.New("forced commands differ (certificate and authorized_keys, or two keys)")
	case l.forceCommand != "":
		r.forceCommand = l.forceCommand
	default:
		r.forceCommand = m.forceCommand
	}
	switch {
	case l.tunnel != "" && m.tunnel != "" && l.tunnel != m.tunnel:
		return limits{}, errors.New("tunnel= values differ")
	case l.tunnel != "":
		r.tunnel = l.tunnel
	default:
		r.tunnel = m.tunnel
	}
	r.environment = append(slices.Clip(l.environment), m.environment...)
	r.permitOpen = intersect(l.permitOpen, m.permitOpen)
	r.permitListen = intersect(l.permitListen, m.permitListen)
	r.sourceAddress = l.sourceAddress
	if r.sourceAddress == "" {
		r.sourceAddress = m.sourceAddress
	}
	return r, nil
}

// intersect treats nil as "everything".
func intersect(a, b []string) []string {
	switch {
	case a == nil:
		return b
	case b == nil:
		return a
	}
	r := []string{}
	for _, x := range a {
		if slices.Contains(b, x) {
			r = append(r, x)
		}
	}
	return r
}

// permissions encodes a grant in the documented form.
func (l limits) permissions(user string, methods []Method, keys []KeyInfo, noAuth bool) (*ssh.Permissions, error) {
	p := &ssh.Permissions{CriticalOptions: map[string]string{}, Extensions: map[string]string{}}
	ms := make([]string, len(methods))
	for i, m := range methods {
		ms[i] = string(m)
	}
	p.Extensions[ExtUser] = user
	p.Extensions[ExtMethods] = strings.Join(ms, ",")
	if noAuth {
		p.Extensions[ExtNoAuthentication] = ""
	}
	for name, on := range map[string]bool{
		ExtPermitPTY: l.permits.pty, ExtPermitPortForwarding: l.permits.portForwarding,
		ExtPermitAgentForwarding: l.permits.agentForwarding, ExtPermitX11Forwarding: l.permits.x11Forwarding,
		ExtPermitUserRC: l.permits.userRC,
	} {
		if on {
			p.Extensions[name] = ""
		}
	}
	if l.forceCommand != "" {
		p.CriticalOptions[OptForceCommand] = l.forceCommand
	}
	if l.sourceAddress != "" {
		p.CriticalOptions[OptSourceAddress] = l.sourceAddress
	}
	if l.tunnel != "" {
		p.Extensions[ExtTunnel] = l.tunnel
	}
	set := func(key string, v any) error {
		b, err := json.Marshal(v)
		if err != nil {
			return fmt.Errorf("authn: encoding %s: %w", key, err)
		}
		p.Extensions[key] = string(b)
		return nil
	}
	if len(keys) > 0 {
		if err := set(ExtKeys, keys); err != nil {
			return nil, err
		}
	}
	if len(l.environment) > 0 {
		if err := set(ExtEnvironment, l.environment); err != nil {
			return nil, err
		}
	}
	if l.permitOpen != nil {
		if err := set(ExtPermitOpen, l.permitOpen); err != nil {
			return nil, err
		}
	}
	if l.permitListen != nil {
		if err := set(ExtPermitListen, l.permitListen); err != nil {
			return nil, err
		}
	}
	return p, nil
}
