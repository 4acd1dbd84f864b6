package authn

import (
	"errors"
	"fmt"
	"strings"

	"github.com/dockssh/dockssh/internal/logtext"
)

// LookupFunc looks up a configuration variable, as os.LookupEnv does.
type LookupFunc func(key string) (value string, ok bool)

// ConfigFromEnv builds a Config from docker-ssh's environment variables,
// read through lookup (pass os.LookupEnv to use the process environment):
//
//   - AUTH_MECHANISM: noAuth, simpleAuth, multiUser or publicKey; required.
//   - AUTH_USER, AUTH_PASSWORD: the one user of simpleAuth.
//   - AUTH_TUPLES: the users of multiUser, "user:password;user2:password2";
//     see ParseAuthTuples for escaping ':' ';' and '\'.
//   - AUTHORIZED_KEYS: for publicKey, the path of an authorized_keys file
//     as in docker-ssh; a value that holds a newline or starts with a key
//     type and a space ("ssh-ed25519 AAAA...") is taken as the file
//     content instead.
//
// noAuth maps to InsecureNoAuthentication. Passwords from the environment
// are in clear, as in docker-ssh. The caller sets Logger, Now and the
// rest of the returned Config. Errors never contain a password.
func ConfigFromEnv(lookup LookupFunc) (*Config, error) {
	if lookup == nil {
		return nil, errors.New("authn: ConfigFromEnv: nil lookup")
	}
	get := func(k string) (string, error) {
		v, ok := lookup(k)
		if !ok || v == "" {
			return "", fmt.Errorf("authn: %s is required", k)
		}
		return v, nil
	}
	mech, ok := lookup("AUTH_MECHANISM")
	if !ok || mech == "" {
		return nil, errors.New("authn: AUTH_MECHANISM is not set (want noAuth, simpleAuth, multiUser or publicKey)")
	}
	switch mech {
	case "noAuth":
		return &Config{InsecureNoAuthentication: true}, nil
	case "simpleAuth":
		user, err := get("AUTH_USER")
		if err != nil {
			return nil, err
		}
		pw, err := get("AUTH_PASSWORD")
		if err != nil {
			return nil, err
		}
		return &Config{Passwords: &PasswordConfig{Users: []PasswordUser{{Name: user, Password: pw}}}}, nil
	case "multiUser":
		t, err := get("AUTH_TUPLES")
		if err != nil {
			return nil, err
		}
		users, err := ParseAuthTuples(t)
		if err != nil {
			return nil, err
		}
		return &Config{Passwords: &PasswordConfig{Users: users}}, nil
	case "publicKey":
		v, err := get("AUTHORIZED_KEYS")
		if err != nil {
			return nil, err
		}
		if looksLikeKeys(v) {
			return &Config{AuthorizedKeys: &AuthorizedKeysConfig{Content: v}}, nil
		}
		return &Config{AuthorizedKeys: &AuthorizedKeysConfig{Files: []string{v}}}, nil
	}
	return nil, fmt.Errorf("authn: unknown AUTH_MECHANISM %q (want noAuth, simpleAuth, multiUser or publicKey)", logtext.Clip(mech, 40))
}

// looksLikeKeys tells authorized_keys content from a path.
func looksLikeKeys(v string) bool {
	if strings.Contains(v, "\n") {
		return true
	}
	typ, rest := cutField(strings.TrimSpace(v))
	return isKeyType(typ) && rest != ""
}

// ParseAuthTuples parses docker-ssh's AUTH_TUPLES:
// "user:password;user2:password2". Each tuple is split at its first
// unescaped ':'. A backslash escapes the next character, which must be
// ':', ';' or '\': write "a\:b" for a user name with a colon and "p\;w"
// for a password with a semicolon (a ':' inside the password needs no
// escape, but may have one). Empty tuples (";;", a trailing ';') are
// skipped. A tuple without ':', an empty user or password, a repeated
// user or any other backslash sequence is an error that names the tuple
// by its position, never by its content.
func ParseAuthTuples(s string) ([]PasswordUser, error) {
	var users []PasswordUser
	seen := map[string]bool{}
	var field strings.Builder
	var user string
	inPassword := false
	n := 1
	flush := func() error {
		if !inPassword {
			if field.Len() == 0 {
				return nil // empty tuple
			}
			return fmt.Errorf("authn: AUTH_TUPLES tuple %d has no ':' between user and password", n)
		}
		pw := field.String()
		switch {
		case user == "":
			return fmt.Errorf("authn: AUTH_TUPLES tuple %d has an empty user", n)
		case pw == "":
			return fmt.Errorf("authn: AUTH_TUPLES tuple %d has an empty password", n)
		case seen[user]:
			return fmt.Errorf("authn: AUTH_TUPLES tuple %d repeats user %q", n, logtext.Clip(user, 64))
		}
		if err := checkUserName(user); err != nil {
			return fmt.Errorf("authn: AUTH_TUPLES tuple %d: %w", n, err)
		}
		seen[user] = true
		users = append(users, PasswordUser{Name: user, Password: pw})
		return nil
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '\\':
			if i+1 >= len(s) {
				return nil, fmt.Errorf("authn: AUTH_TUPLES tuple %d ends with a lone backslash", n)
			}
			switch s[i+1] {
			case ':', ';', '\\':
				field.WriteByte(s[i+1])
				i++
			default:
				return nil, fmt.Errorf(`authn: AUTH_TUPLES tuple %d: a backslash must be followed by ':', ';' or '\'`, n)
			}
		case c == ':' && !inPassword:
			user, inPassword = field.String(), true
			field.Reset()
		case c == ';':
			if err := flush(); err != nil {
				return nil, err
			}
			field.Reset()
			user, inPassword = "", false
			n++
		default:
			field.WriteByte(c)
		}
	}
	if err := flush(); err != nil {
		return nil, err
	}
	if len(users) == 0 {
		return nil, errors.New("authn: AUTH_TUPLES holds no user")
	}
	return users, nil
}
