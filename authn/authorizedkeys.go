package authn

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"

	"golang.org/x/crypto/ssh"
)

// AuthorizedKeysConfig configures public key authentication from files in
// OpenSSH's authorized_keys format, options included.
type AuthorizedKeysConfig struct {
	// Files name authorized_keys files whose keys may log in under any
	// user name, as with docker-ssh's AUTHORIZED_KEYS. Each file is
	// stat'ed on every public key attempt and re-read when its inode,
	// size, modification time, mode, owner or change time changed. A
	// file that is missing at New is an error; one deleted later counts
	// as empty. While one of them cannot be used as a whole (unreadable,
	// mode 000, not a regular file, not text), no key logs in through
	// authorized_keys at all: the broken file might have been the one to
	// restrict or remove the key.
	Files []string

	// Content holds authorized_keys lines given in memory (for example
	// AUTHORIZED_KEYS holding the keys themselves). Its keys may log in
	// under any user name. Empty means none.
	Content string

	// UserFile, if non-nil, names the authorized_keys file of a user
	// (OpenSSH's AuthorizedKeysFile): its keys let in only that user.
	// A missing file means no keys. While the file cannot be used as a
	// whole, or cannot even be stat'ed, that user's key logins are
	// refused. See UserFilePattern.
	UserFile UserFileFunc
}

// UserFileFunc returns the path of the authorized_keys file for user, or
// ok false when the user has none. The user name comes from the client:
// an implementation must not let it pick an arbitrary path.
type UserFileFunc func(user string) (path string, ok bool)

// UserFilePattern returns a UserFileFunc that replaces "%u" in pattern
// with the user name, for names made only of ASCII letters, digits, '.',
// '_' and '-' that start with a letter, digit or '_' (at most 64 bytes);
// other names have no file. "%%" stands for '%'.
func UserFilePattern(pattern string) UserFileFunc {
	return func(user string) (string, bool) {
		if !safePathName(user) {
			return "", false
		}
		var b strings.Builder
		for i := 0; i < len(pattern); i++ {
			if pattern[i] == '%' && i+1 < len(pattern) {
				switch pattern[i+1] {
				case 'u':
					b.WriteString(user)
					i++
					continue
				case '%':
					b.WriteByte('%')
					i++
					continue
				}
			}
			b.WriteByte(pattern[i])
		}
		return filepath.Clean(b.String()), true
	}
}

func safePathName(n string) bool {
	if n == "" || len(n) > 64 {
		return false
	}
	for i := 0; i < len(n); i++ {
		c := n[i]
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' ||
			i > 0 && (c == '.' || c == '-')
		if !ok {
			return false
		}
	}
	return true
}

// keyLine is one accepted authorized_keys line.
type keyLine struct {
	key    ssh.PublicKey
	fp     string
	opts   keyOptions
	source string // "file:line", for logs and Grant.Keys
}

// keyDB is one parsed authorized_keys file.
type keyDB struct {
	keys map[string][]*keyLine // plain keys, by wire encoding
	cas  map[string][]*keyLine // cert-authority lines, by CA key wire encoding
}

// isKeyType reports whether typ is a key type name an authorized_keys
// line may start with. "ssh-dss" is one so that such a line parses as a
// key rather than as options; x/crypto's server never accepts DSA
// signatures.
func isKeyType(typ string) bool {
	switch typ {
	case ssh.KeyAlgoRSA, "ssh-dss",
		ssh.KeyAlgoECDSA256, ssh.KeyAlgoECDSA384, ssh.KeyAlgoECDSA521,
		ssh.KeyAlgoED25519, ssh.KeyAlgoSKECDSA256, ssh.KeyAlgoSKED25519:
		return true
	}
	return false
}

// maxLineLen bounds an authorized_keys line (OpenSSH reads keys of up to
// 16 KiB, base64 makes that about 22 KiB, options come on top).
const maxLineLen = 64 << 10

// parseAuthorizedKeys parses an authorized_keys file. Each line that does
// not parse - unknown option, bad value, bad key - is refused and logged
// with name:line, and the other lines are used: a typo in one line never
// keeps removed keys alive, which keeping the whole last version would.
func parseAuthorizedKeys(name string, data []byte, log *slog.Logger) (*keyDB, error) {
	if err := checkText(data); err != nil {
		return nil, err
	}
	db := &keyDB{keys: map[string][]*keyLine{}, cas: map[string][]*keyLine{}}
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 4096), maxLineLen)
	for n := 1; sc.Scan(); n++ {
		where := fmt.Sprintf("%s:%d", name, n)
		l, err := parseAuthorizedKeyLine(sc.Text())
		if err != nil {
			log.Error("authn: authorized_keys line refused", "at", where, "err", err)
			continue
		}
		if l == nil {
			continue
		}
		l.source = where
		k := string(l.key.Marshal())
		if l.opts.certAuthority {
			db.cas[k] = append(db.cas[k], l)
		} else {
			db.keys[k] = append(db.keys[k], l)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("line too long or unreadable: %w", err)
	}
	return db, nil
}

// parseAuthorizedKeyLine parses `[options] keytype base64 [comment]`. It
// returns nil, nil for blank lines and comments.
func parseAuthorizedKeyLine(line string) (*keyLine, error) {
	line = strings.TrimLeft(line, " \t")
	line = strings.TrimRight(line, " \t\r")
	if line == "" || line[0] == '#' {
		return nil, nil
	}
	var optStr string
	typ, rest := cutField(line)
	if strings.HasSuffix(typ, "-cert-v01@openssh.com") {
		return nil, errors.New("certificates cannot be listed in authorized_keys; list their CA with cert-authority")
	}
	if !isKeyType(typ) {
		end, err := optionsEnd(line)
		if err != nil {
			return nil, err
		}
		optStr = line[:end]
		typ, rest = cutField(strings.TrimLeft(line[end:], " \t"))
		if !isKeyType(typ) {
			if strings.HasSuffix(typ, "-cert-v01@openssh.com") {
				return nil, errors.New("certificates cannot be listed in authorized_keys; list their CA with cert-authority")
			}
			return nil, fmt.Errorf("unknown key type %s", quoteName(typ))
		}
	}
	key, err := parseKeyField(typ, rest)
	if err != nil {
		return nil, err
	}
	opts, err := parseKeyOptions(optStr)
	if err != nil {
		return nil, err
	}
	return &keyLine{key: key, fp: ssh.FingerprintSHA256(key), opts: opts}, nil
}

// parseKeyField parses the base64 field at the start of rest (after the
// key type typ) and checks that it holds a key of that type.
func parseKeyField(typ, rest string) (ssh.PublicKey, error) {
	b64, _ := cutField(strings.TrimLeft(rest, " \t"))
	blob, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		return nil, errors.New("key is not valid base64")
	}
	key, err := ssh.ParsePublicKey(blob)
	if err != nil {
		return nil, fmt.Errorf("bad %s key: %v", typ, err)
	}
	if key.Type() != typ {
		return nil, fmt.Errorf("key type %s does not match the key (%s)", typ, key.Type())
	}
	return key, nil
}

func cutField(s string) (field, rest string) {
	if i := strings.IndexAny(s, " \t"); i >= 0 {
		return s[:i], s[i:]
	}
	return s, ""
}

// optionsEnd returns the index of the first space or tab outside double
// quotes, where the options field ends.
func optionsEnd(s string) (int, error) {
	quoted := false
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '\\' && quoted && i+1 < len(s) && s[i+1] == '"':
			i++
		case c == '"':
			quoted = !quoted
		case (c == ' ' || c == '\t') && !quoted:
			return i, nil
		}
	}
	if quoted {
		return 0, errors.New("missing closing quote in options")
	}
	return 0, errors.New("no key after the options")
}
