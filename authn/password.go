package authn

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"runtime"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/dockssh/dockssh/internal/logtext"
)

// PasswordConfig configures password authentication: one user (docker-ssh
// simpleAuth), many users (multiUser), a users file, or both lists.
type PasswordConfig struct {
	// Users are accounts given in the configuration. A name listed here
	// and in File uses the entry from Users.
	Users []PasswordUser

	// File, if not empty, names a users file: one "name:hash" per line,
	// where hash is an argon2id PHC string or a bcrypt hash; blank lines
	// and lines starting with '#' are ignored. Clear passwords are not
	// accepted in the file. The file is re-read when it changes; a line
	// that does not parse is refused and logged with file:line, and a
	// name on more than one line is refused on all of them. While the
	// file cannot be used as a whole (unreadable, mode 000, not a regular
	// file, not text), only the names in Users can log in; a deleted file
	// has no users.
	File string

	// MaxConcurrentHashes bounds how many argon2id or bcrypt computations
	// run at once, so that a flood of attempts cannot use more than this
	// many CPUs and this many times an argon2id memory cost. Zero means
	// runtime.GOMAXPROCS(0).
	MaxConcurrentHashes int

	// HashWait is how long an attempt waits for one of those slots before
	// it fails (as a failed attempt, without any hash computed). Zero
	// means one second; a negative value means attempts never wait.
	HashWait time.Duration
}

// PasswordUser is one account with either a clear password or a hash.
// Its String, GoString and LogValue never show the password or hash.
type PasswordUser struct {
	// Name is the SSH user name.
	Name string
	// Password is the password in clear, compared in constant time.
	// Exactly one of Password and Hash must be set.
	Password string
	// Hash is an argon2id PHC string ("$argon2id$v=19$m=...,t=...,p=...$salt$hash",
	// see HashArgon2id) or a bcrypt hash ("$2b$..."). bcrypt reads only 72
	// bytes of a password; longer passwords are refused, not truncated.
	Hash string
}

// String returns the user name and the kind of credential, never the
// credential itself.
func (u PasswordUser) String() string {
	kind := "no credential"
	switch {
	case u.Password != "" && u.Hash != "":
		kind = "password and hash"
	case u.Password != "":
		kind = "clear password"
	case u.Hash != "":
		kind = "hash"
	}
	return fmt.Sprintf("PasswordUser{Name: %q, %s}", u.Name, kind)
}

// GoString is String, so that %#v does not print the credential either.
func (u PasswordUser) GoString() string { return u.String() }

// LogValue keeps the credential out of log/slog output.
func (u PasswordUser) LogValue() slog.Value { return slog.StringValue(u.String()) }

// checkUserName rejects names no SSH client would send and that would
// make log lines or files ambiguous.
func checkUserName(name string) error {
	if name == "" {
		return errors.New("authn: empty user name")
	}
	if len(name) > 256 {
		return errors.New("authn: user name longer than 256 bytes")
	}
	if !utf8.ValidString(name) {
		return errors.New("authn: user name is not valid UTF-8")
	}
	for _, r := range name {
		if unicode.IsControl(r) {
			return fmt.Errorf("authn: user name %q contains a control character", name)
		}
	}
	return nil
}

// passwordDB is one immutable set of accounts with the dummy verifier for
// names it does not know.
type passwordDB struct {
	users map[string]verifier
	dummy verifier
}

// passwordStore verifies passwords against the configured users and the
// users file, bounding concurrent hash computations.
type passwordStore struct {
	static   map[string]verifier
	staticDB *passwordDB // Users alone: without a file, or while it is unusable
	file     *fileSource[*passwordDB]
	clearKey *[32]byte
	sem      chan struct{}
	wait     time.Duration

	dummyMu sync.Mutex // guards dummies
	dummies map[string]verifier
}

func newPasswordStore(cfg *PasswordConfig, log *slog.Logger) (*passwordStore, error) {
	s := &passwordStore{static: map[string]verifier{}, clearKey: new([32]byte), dummies: map[string]verifier{}}
	if _, err := rand.Read(s.clearKey[:]); err != nil {
		return nil, fmt.Errorf("authn: reading random key: %w", err)
	}
	n := cfg.MaxConcurrentHashes
	if n <= 0 {
		n = runtime.GOMAXPROCS(0)
	}
	s.sem = make(chan struct{}, n)
	switch {
	case cfg.HashWait == 0:
		s.wait = time.Second
	case cfg.HashWait > 0:
		s.wait = cfg.HashWait
	}
	for i, u := range cfg.Users {
		if err := checkUserName(u.Name); err != nil {
			return nil, fmt.Errorf("authn: Passwords.Users[%d]: %w", i, err)
		}
		if _, dup := s.static[u.Name]; dup {
			return nil, fmt.Errorf("authn: Passwords.Users: user %q listed twice", u.Name)
		}
		v, err := s.credential(u)
		if err != nil {
			return nil, fmt.Errorf("authn: Passwords.Users[%d] (%q): %w", i, u.Name, err)
		}
		s.static[u.Name] = v
	}
	if cfg.File == "" && len(s.static) == 0 {
		return nil, errors.New("authn: Passwords has neither Users nor File")
	}
	var err error
	if s.staticDB, err = s.newDB(nil); err != nil {
		return nil, err
	}
	if cfg.File != "" {
		// A deleted users file has no users: the static ones remain.
		s.file = newFileSource(cfg.File, "users file", s.staticDB, true, func(data []byte) (*passwordDB, error) {
			return s.parseUsersFile(cfg.File, data, log)
		}, log)
		if err := s.file.load(); err != nil {
			return nil, err
		}
	}
	return s, nil
}

func (s *passwordStore) credential(u PasswordUser) (verifier, error) {
	switch {
	case u.Password != "" && u.Hash != "":
		return nil, errors.New("authn: set either Password or Hash, not both")
	case u.Hash != "":
		return parseHash(u.Hash)
	case u.Password != "":
		if len(u.Password) > maxPasswordLen {
			return nil, fmt.Errorf("authn: password longer than %d bytes", maxPasswordLen)
		}
		return newClearPassword(s.clearKey, []byte(u.Password)), nil
	}
	return nil, errors.New("authn: empty password (no Password and no Hash)")
}

// newDB merges the static users with those of the file and picks the
// dummy: one of the class most users have, so that an unknown name costs
// what most known names cost.
func (s *passwordStore) newDB(fromFile map[string]verifier) (*passwordDB, error) {
	db := &passwordDB{users: make(map[string]verifier, len(s.static)+len(fromFile))}
	for n, v := range fromFile {
		db.users[n] = v
	}
	for n, v := range s.static {
		db.users[n] = v
	}
	count := map[string]int{}
	var best verifier
	for _, v := range db.users {
		c := v.class()
		count[c]++
		if best == nil || count[c] > count[best.class()] || (count[c] == count[best.class()] && c < best.class()) {
			best = v
		}
	}
	if best == nil {
		// No users at all: every name is unknown. A clear-password dummy
		// keeps the code path uniform.
		best = newClearPassword(s.clearKey, nil)
	}
	s.dummyMu.Lock()
	defer s.dummyMu.Unlock()
	d, ok := s.dummies[best.class()]
	if !ok {
		var err error
		if d, err = dummyFor(best, s.clearKey); err != nil {
			return nil, fmt.Errorf("authn: making dummy hash: %w", err)
		}
		s.dummies[best.class()] = d
	}
	db.dummy = d
	return db, nil
}

// parseUsersFile parses "name:hash" lines. A bad line is refused and
// logged with file:line; the others are used. A name on more than one
// line is refused on all of them, whether or not the other lines parse:
// which one the administrator meant is a guess, and a guess that picks
// the stale line would let an old password in.
func (s *passwordStore) parseUsersFile(path string, data []byte, log *slog.Logger) (*passwordDB, error) {
	users, err := parseUsersLines(path, data, log)
	if err != nil {
		return nil, err
	}
	return s.newDB(users)
}

// parseUsersLines parses the lines of a users file into the accounts it
// grants, as parseUsersFile describes.
func parseUsersLines(path string, data []byte, log *slog.Logger) (map[string]verifier, error) {
	if err := checkText(data); err != nil {
		return nil, err
	}
	users := map[string]verifier{}
	firstLine := map[string]int{} // line of each name's first entry
	refused := func(where string, args ...any) {
		log.Error("authn: users file line refused", append([]any{"at", where}, args...)...)
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 4096), 64<<10)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		where := fmt.Sprintf("%s:%d", path, n)
		// The name is everything before the first ':', the whole line
		// when there is none: "alice" alone still names alice.
		name, hash, ok := strings.Cut(line, ":")
		if first, dup := firstLine[name]; dup {
			msg := fmt.Sprintf("user also listed on line %d; refusing every line of the user", first)
			if ok {
				refused(where, "user", logtext.Clip(name, 64), "err", msg)
			} else {
				// Without a ':' the line may be anything pasted: not logged.
				refused(where, "err", msg)
			}
			users[name] = nil
			continue
		}
		firstLine[name] = n
		if !ok {
			refused(where, "err", "want name:hash")
			continue
		}
		if err := checkUserName(name); err != nil {
			refused(where, "err", err)
			continue
		}
		v, err := parseHash(hash)
		if err != nil {
			refused(where, "user", name, "err", err)
			continue
		}
		users[name] = v
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	maps.DeleteFunc(users, func(_ string, v verifier) bool { return v == nil })
	return users, nil
}

// db returns the accounts to check a password against, or an error when
// the users file cannot be used.
func (s *passwordStore) db() (*passwordDB, error) {
	if s.file == nil {
		return s.staticDB, nil
	}
	return s.file.get()
}

// errBusy: too many hash computations at once; the attempt was not
// evaluated.
var errBusy = errors.New("authn: too many password verifications in progress; attempt not evaluated")

// verify reports whether password is right for user. Known and unknown
// users take the same path and, for the dominant credential class, the
// same time.
func (s *passwordStore) verify(user string, password []byte) (bool, error) {
	if len(password) > maxPasswordLen {
		return false, fmt.Errorf("authn: password longer than %d bytes refused", maxPasswordLen)
	}
	db, fileErr := s.db()
	if fileErr != nil {
		// The file does not govern the names in Users: they still log in.
		// Every other name is refused below.
		db = s.staticDB
	}
	v, known := db.users[user]
	if !known {
		v = db.dummy
	}
	if v.expensive() {
		if !s.acquire() {
			return false, errBusy
		}
		defer func() { <-s.sem }()
	}
	ok := v.verify(password) && known
	if !ok && fileErr != nil {
		// The name might be in the users file, which cannot be read now.
		// Names in Users and the others fail alike, so that the log line
		// does not tell them apart.
		return false, errUsersFileUnusable
	}
	return ok, nil
}

// errUsersFileUnusable: a failed password attempt while the users file
// cannot be used (only PasswordConfig.Users can log in meanwhile). The
// file's problem itself is logged once, when it appears.
var errUsersFileUnusable = errors.New("authn: password refused (wrong password or unknown user) while the users file cannot be used")

func (s *passwordStore) acquire() bool {
	select {
	case s.sem <- struct{}{}:
		return true
	default:
	}
	if s.wait <= 0 {
		return false
	}
	t := time.NewTimer(s.wait)
	defer t.Stop()
	select {
	case s.sem <- struct{}{}:
		return true
	case <-t.C:
		return false
	}
}
