package dialer

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/dockssh/dockssh/internal/logtext"
	"github.com/dockssh/dockssh/redact"
)

// target is a parsed ssh:// URL.
type target struct {
	user     string // "" when the URL names none
	password []byte // nil when the URL has none
	host     string // as written, without brackets; the ssh_config alias
	port     int    // 0 when the URL names none
	socket   string // remote daemon socket path; "" for the remote CLI's default
}

// parseURL parses ssh://[user[:password]@]host[:port][/socket/path]. Its
// errors never contain the raw input, which may hold a password.
func parseURL(raw string) (*target, error) {
	// An '@' after the host means a '/', '?' or '#' typed into a password
	// ended the authority early. net/url then sees another URL, or none,
	// and may take a part of the password for the path or the port.
	if rest, ok := afterScheme(raw); ok {
		if end := strings.IndexAny(rest, "/?#"); end >= 0 && strings.Contains(rest[end:], "@") {
			return nil, errAtAfterHost
		}
	}
	u, err := url.Parse(raw)
	if err != nil {
		// url.Error quotes the whole input; keep only the reason, and
		// even that may quote a fragment of the input (an invalid port
		// can be a password typed after a colon), so it is generic.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return nil, fmt.Errorf("not a valid URL (%s)", describeURLErr(err))
	}
	if u.Scheme != "ssh" {
		return nil, errors.New(`scheme must be "ssh"`)
	}
	if u.Opaque != "" {
		return nil, errors.New("want ssh://host, not ssh:host")
	}
	if u.RawQuery != "" || u.ForceQuery {
		return nil, errors.New("query parameters are not allowed")
	}
	if u.Fragment != "" || strings.Contains(raw, "#") {
		return nil, errors.New("fragments are not allowed")
	}
	t := &target{host: u.Hostname()}
	if t.host == "" {
		return nil, errors.New("host is empty")
	}
	if strings.ContainsAny(t.host, " \t\r\n\x00/\\%") || strings.HasPrefix(t.host, "-") {
		return nil, errors.New("host contains characters no host name has")
	}
	if strings.Contains(t.host, ":") && !strings.HasPrefix(u.Host, "[") {
		return nil, withHint(errors.New("an IPv6 address must be in brackets"), "write ssh://[::1]:22")
	}
	if p := u.Port(); p != "" {
		n, err := strconv.Atoi(p)
		if err != nil || n < 1 || n > 65535 {
			return nil, errors.New("port must be a number from 1 to 65535")
		}
		t.port = n
	} else if strings.HasSuffix(u.Host, ":") {
		return nil, errors.New("port is empty")
	}
	if u.User != nil {
		t.user = u.User.Username()
		if err := checkUser(t.user); err != nil {
			return nil, err
		}
		if pw, ok := u.User.Password(); ok {
			t.password = []byte(pw)
		}
	}
	if strings.Trim(u.Path, "/") != "" {
		if err := checkRemoteArg("socket path", u.Path); err != nil {
			return nil, err
		}
		t.socket = u.Path
	}
	return t, nil
}

// errAtAfterHost is the parse error of a URL with an '@' after the host.
var errAtAfterHost = withHint(errors.New("dialer: '@' after the host (an unescaped '/', '?' or '#' in a password?)"),
	"percent-encode '/', '?' and '#' in a password (%2F, %3F, %23), or better, leave the password out and use a key")

// urlHint is the advice for a URL that parseURL refused.
func urlHint(err error) string {
	var h *hinted
	if errors.As(err, &h) {
		return h.hint
	}
	return "want ssh://[user@]host[:port][/path/to/docker.sock]"
}

// afterScheme returns what follows "://" in raw.
func afterScheme(raw string) (string, bool) {
	_, rest, ok := strings.Cut(raw, "://")
	return rest, ok
}

// rejectedURL is how a URL that parseURL refused may be shown. Where its
// user info ends is unknown (a '/', '?' or '#' in a password cuts it
// short), so everything between "://" and the last '@' is masked before
// any message is built; sensitive query values are masked too, control
// characters replaced and the length bounded.
func rejectedURL(raw string) string {
	s := raw
	if rest, ok := afterScheme(raw); ok {
		if at := strings.LastIndexByte(rest, '@'); at >= 0 {
			s = raw[:len(raw)-len(rest)] + redact.DefaultMask + rest[at:]
		}
	} else if at := strings.LastIndexByte(raw, '@'); at >= 0 {
		s = redact.DefaultMask + raw[at:]
	}
	s = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f || r == utf8.RuneError {
			return '?'
		}
		return r
	}, redact.URL(s))
	return logtext.Clip(s, maxShownURL)
}

// maxShownURL bounds a rejected URL in messages.
const maxShownURL = 200

// describeURLErr names what net/url disliked without quoting the input.
func describeURLErr(err error) string {
	msg := err.Error()
	switch {
	case strings.Contains(msg, "invalid port"):
		return "invalid port"
	case strings.Contains(msg, "userinfo"):
		return "invalid user or password characters; percent-encode them"
	case strings.Contains(msg, "escape"):
		return "invalid percent-encoding"
	case strings.Contains(msg, "control character"):
		return "control character in URL"
	case strings.Contains(msg, "IPv6") || strings.Contains(msg, "bracket"):
		return "invalid IPv6 literal"
	case strings.Contains(msg, "missing protocol scheme"):
		return "missing ssh:// scheme"
	}
	return "malformed"
}

func checkUser(user string) error {
	for _, r := range user {
		if r < 0x20 || r == 0x7f {
			return errors.New("user name contains a control character")
		}
	}
	return nil
}

// redacted returns the URL as it may be shown: the password, if any, is
// replaced by "xxxxx" (as net/url's URL.Redacted does).
func (t *target) redacted() string {
	var b strings.Builder
	b.WriteString("ssh://")
	if t.user != "" || t.password != nil {
		b.WriteString(url.PathEscape(t.user))
		if t.password != nil {
			b.WriteString(":xxxxx")
		}
		b.WriteString("@")
	}
	host := t.host
	if strings.Contains(host, ":") {
		host = "[" + host + "]"
	}
	b.WriteString(host)
	if t.port != 0 {
		b.WriteString(":" + strconv.Itoa(t.port))
	}
	b.WriteString(t.socket)
	return b.String()
}

// hostPort joins host and port for dialing and for known_hosts.
func hostPort(host string, port int) string {
	return net.JoinHostPort(host, strconv.Itoa(port))
}
