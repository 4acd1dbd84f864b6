package authn

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/dockssh/dockssh/internal/logtext"
)

// permits are the session features OpenSSH lets a key or certificate
// switch off; all are on by default for a key without options.
type permits struct {
	pty, portForwarding, agentForwarding, x11Forwarding, userRC bool
}

func allPermits() permits { return permits{true, true, true, true, true} }

func (p permits) and(q permits) permits {
	return permits{
		pty:             p.pty && q.pty,
		portForwarding:  p.portForwarding && q.portForwarding,
		agentForwarding: p.agentForwarding && q.agentForwarding,
		x11Forwarding:   p.x11Forwarding && q.x11Forwarding,
		userRC:          p.userRC && q.userRC,
	}
}

// keyOptions are the parsed options of one authorized_keys line
// (sshd(8) "AUTHORIZED_KEYS FILE FORMAT").
type keyOptions struct {
	certAuthority   bool
	permits         permits
	command         string // forced command; "" when none
	environment     []string
	expiry          time.Time // zero: no expiry-time
	from            addrPatternList
	principals      []string
	permitOpen      []string // nil: any destination
	permitListen    []string // nil: any listen address
	tunnel          string
	noTouchRequired bool
	verifyRequired  bool
}

const (
	maxOptionValues = 1024 // environment/permitopen/permitlisten entries per line
	maxOptionValue  = 8192 // bytes in one option value
)

// parseKeyOptions parses the options field of an authorized_keys line,
// e.g. `restrict,pty,command="uptime",from="10.0.0.0/8"`. Option names are
// case-insensitive and values must be double-quoted; inside quotes, \"
// stands for '"' (the only escape, as in OpenSSH). Any unknown option,
// malformed value or repeated single-valued option is an error: the line
// is refused, never half-applied.
func parseKeyOptions(s string) (keyOptions, error) {
	o := keyOptions{permits: allPermits()}
	if s == "" {
		return o, nil
	}
	seen := map[string]bool{}
	for {
		// name: up to '=', ',' or the end
		end := strings.IndexAny(s, "=,")
		if end < 0 {
			end = len(s)
		}
		name := strings.ToLower(s[:end])
		s = s[end:]
		if name == "" {
			return o, errors.New("empty option name")
		}
		var value string
		hasValue := strings.HasPrefix(s, "=")
		if hasValue {
			var err error
			value, s, err = dequote(s[1:])
			if err != nil {
				return o, fmt.Errorf("option %s: %w", quoteName(name), err)
			}
		}
		if err := o.apply(name, value, hasValue, seen); err != nil {
			return o, err
		}
		if s == "" {
			break
		}
		if s[0] != ',' {
			return o, fmt.Errorf("unexpected %q after option %s", s[0], quoteName(name))
		}
		s = s[1:]
		if s == "" {
			return o, errors.New("trailing comma in options")
		}
	}
	if len(o.principals) > 0 && !o.certAuthority {
		return o, errors.New(`principals= is only valid with cert-authority`)
	}
	return o, nil
}

// quoteName quotes an option name for an error, shortened: it comes from
// a file an attacker may not control, but logs should stay one line.
func quoteName(n string) string {
	if len(n) > 40 {
		n = n[:40] + "..."
	}
	return strconv.Quote(n)
}

// dequote reads `"value"` from the start of s and returns the value and
// what follows the closing quote.
func dequote(s string) (value, rest string, err error) {
	if !strings.HasPrefix(s, `"`) {
		return "", "", errors.New("value must be in double quotes")
	}
	var b strings.Builder
	for i := 1; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '\\' && i+1 < len(s) && s[i+1] == '"':
			b.WriteByte('"')
			i++
		case c == '"':
			if b.Len() > maxOptionValue {
				return "", "", fmt.Errorf("value longer than %d bytes", maxOptionValue)
			}
			return b.String(), s[i+1:], nil
		case c < ' ' || c == 0x7f:
			return "", "", errors.New("control character in value")
		default:
			b.WriteByte(c)
		}
	}
	return "", "", errors.New("missing closing quote")
}

func (o *keyOptions) apply(name, value string, hasValue bool, seen map[string]bool) error {
	flag := func(set func(bool), on bool) error {
		if hasValue {
			return fmt.Errorf("option %s takes no value", quoteName(name))
		}
		set(on)
		return nil
	}
	needValue := func() error {
		if !hasValue {
			return fmt.Errorf("option %s needs a value", quoteName(name))
		}
		return nil
	}
	once := func() error {
		if err := needValue(); err != nil {
			return err
		}
		if seen[name] {
			return fmt.Errorf("option %s given twice", quoteName(name))
		}
		seen[name] = true
		return nil
	}
	p := &o.permits
	switch name {
	case "restrict":
		return flag(func(bool) { *p = permits{} }, true)
	case "pty", "no-pty":
		return flag(func(v bool) { p.pty = v }, name == "pty")
	case "port-forwarding", "no-port-forwarding":
		return flag(func(v bool) { p.portForwarding = v }, name == "port-forwarding")
	case "agent-forwarding", "no-agent-forwarding":
		return flag(func(v bool) { p.agentForwarding = v }, name == "agent-forwarding")
	case "x11-forwarding", "no-x11-forwarding":
		return flag(func(v bool) { p.x11Forwarding = v }, name == "x11-forwarding")
	case "user-rc", "no-user-rc":
		return flag(func(v bool) { p.userRC = v }, name == "user-rc")
	case "no-touch-required", "touch-required":
		return flag(func(v bool) { o.noTouchRequired = v }, name == "no-touch-required")
	case "verify-required":
		return flag(func(v bool) { o.verifyRequired = v }, true)
	case "cert-authority":
		return flag(func(v bool) { o.certAuthority = v }, true)
	case "command":
		if err := once(); err != nil {
			return err
		}
		if value == "" {
			return errors.New(`empty command=""`)
		}
		o.command = value
	case "environment":
		if err := needValue(); err != nil {
			return err
		}
		n, _, ok := strings.Cut(value, "=")
		if !ok || !validEnvName(n) {
			return fmt.Errorf(`environment=%q: want NAME=value with NAME of letters, digits and '_'`, logtext.Clip(value, 40))
		}
		if len(o.environment) >= maxOptionValues {
			return errors.New("too many environment= options")
		}
		o.environment = append(o.environment, value)
	case "expiry-time":
		if err := needValue(); err != nil {
			return err
		}
		t, err := parseExpiryTime(value)
		if err != nil {
			return err
		}
		// Several: the earliest wins, as in OpenSSH.
		if o.expiry.IsZero() || t.Before(o.expiry) {
			o.expiry = t
		}
	case "from":
		if err := once(); err != nil {
			return err
		}
		l, err := parseAddrPatterns(value)
		if err != nil {
			return fmt.Errorf("from=: %w", err)
		}
		o.from = l
	case "principals":
		if err := once(); err != nil {
			return err
		}
		for _, pr := range strings.Split(value, ",") {
			if pr == "" {
				return errors.New("principals=: empty principal")
			}
			o.principals = append(o.principals, pr)
		}
		if len(o.principals) > maxOptionValues {
			return errors.New("principals=: too many principals")
		}
	case "permitopen":
		if err := needValue(); err != nil {
			return err
		}
		if err := checkHostPort(value, true); err != nil {
			return fmt.Errorf("permitopen=%q: %w", logtext.Clip(value, 80), err)
		}
		if len(o.permitOpen) >= maxOptionValues {
			return errors.New("too many permitopen= options")
		}
		o.permitOpen = append(o.permitOpen, value)
	case "permitlisten":
		if err := needValue(); err != nil {
			return err
		}
		if err := checkHostPort(value, false); err != nil {
			return fmt.Errorf("permitlisten=%q: %w", logtext.Clip(value, 80), err)
		}
		if len(o.permitListen) >= maxOptionValues {
			return errors.New("too many permitlisten= options")
		}
		o.permitListen = append(o.permitListen, value)
	case "tunnel":
		if err := once(); err != nil {
			return err
		}
		if _, err := strconv.ParseUint(value, 10, 31); err != nil {
			return fmt.Errorf("tunnel=%q: want a device number", logtext.Clip(value, 20))
		}
		o.tunnel = value
	default:
		return fmt.Errorf("unknown option %s", quoteName(name))
	}
	return nil
}

func validEnvName(n string) bool {
	if n == "" || len(n) > 256 {
		return false
	}
	for i := 0; i < len(n); i++ {
		c := n[i]
		if !(c == '_' || c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || i > 0 && c >= '0' && c <= '9') {
			return false
		}
	}
	return true
}

// checkHostPort validates permitopen="host:port" (needHost) and
// permitlisten="[host:]port". port may be "*"; an IPv6 host is written in
// brackets.
func checkHostPort(v string, needHost bool) error {
	host, port := "", v
	if i := strings.LastIndexByte(v, ':'); i >= 0 {
		host, port = v[:i], v[i+1:]
		if strings.HasPrefix(host, "[") {
			if !strings.HasSuffix(host, "]") || len(host) < 3 {
				return errors.New("unbalanced brackets")
			}
		} else if strings.Contains(host, ":") {
			return errors.New("IPv6 addresses must be in brackets")
		}
		if host == "" {
			return errors.New("empty host")
		}
	} else if needHost {
		return errors.New("want host:port")
	}
	if strings.ContainsFunc(host, func(r rune) bool { return r <= ' ' || r == 0x7f }) {
		return errors.New("space or control character in host")
	}
	if port == "*" {
		return nil
	}
	n, err := strconv.ParseUint(port, 10, 16)
	if err != nil || (needHost && n == 0) {
		return errors.New("port must be a number in 1..65535 or *")
	}
	return nil
}

// parseExpiryTime parses OpenSSH's YYYYMMDD[HHMM[SS]][Z]; without the Z
// the time is local (time.Local), as sshd reads it.
func parseExpiryTime(v string) (time.Time, error) {
	loc := time.Local
	s := v
	if strings.HasSuffix(s, "Z") || strings.HasSuffix(s, "z") {
		loc, s = time.UTC, s[:len(s)-1]
	}
	var layout string
	switch len(s) {
	case 8:
		layout = "20060102"
	case 12:
		layout = "200601021504"
	case 14:
		layout = "20060102150405"
	default:
		return time.Time{}, fmt.Errorf("expiry-time=%q: want YYYYMMDD[HHMM[SS]][Z]", logtext.Clip(v, 20))
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return time.Time{}, fmt.Errorf("expiry-time=%q: want YYYYMMDD[HHMM[SS]][Z]", logtext.Clip(v, 20))
		}
	}
	t, err := time.ParseInLocation(layout, s, loc)
	if err != nil {
		return time.Time{}, fmt.Errorf("expiry-time=%q: %v", logtext.Clip(v, 20), err)
	}
	return t, nil
}
