package authn

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/dockssh/dockssh/internal/filestamp"
)

// maxFileSize bounds every file authn reads (authorized_keys, users,
// trusted CA and revocation files). A bigger file is a whole-file error.
const maxFileSize = 16 << 20

// fileSource holds the parsed contents of one file and re-reads it when a
// stat on use shows that it changed (a new inode, size, modification
// time, mode, owner or change time; see internal/filestamp), so edits
// take effect without a restart and without a watcher goroutine.
//
// A version that cannot be used as a whole - the file cannot be stat'ed
// or read, its mode grants read permission to nobody, it is not a regular
// file, it is too large or not text - makes get fail until a usable
// version appears, and the callers refuse every login that would consult
// the file. This is what sshd does with an authorized_keys or RevokedKeys
// file it cannot read: keeping the last good version instead would keep
// alive the keys an edit removed, for as long as the file stays broken.
// The problem is logged once per change, not on every use.
//
// A missing file is an empty file when missingOK (deleting
// authorized_keys must revoke access), and a problem otherwise (a
// revocation list that is gone revokes nothing we can know of).
type fileSource[T any] struct {
	path      string
	what      string // "authorized_keys file", "users file", ... for logs
	parse     func(data []byte) (T, error)
	empty     T    // the value of a missing file, when missingOK
	missingOK bool // a missing file is empty rather than a problem
	log       *slog.Logger

	mu     sync.Mutex      // guards the fields below
	stamp  filestamp.Stamp // version that val (or failed) was read from
	val    T               // the usable version, when failed is nil
	failed error           // why the newest version cannot be used
	logged string          // failed's text when it was logged
	state  fileState
}

// fileState is what a fileSource last saw, so that transitions are
// logged once.
type fileState int

const (
	fileUnread fileState = iota
	fileGood
	fileMissing
	fileFailed
)

func newFileSource[T any](path, what string, empty T, missingOK bool, parse func([]byte) (T, error), log *slog.Logger) *fileSource[T] {
	return &fileSource[T]{path: path, what: what, parse: parse, empty: empty, missingOK: missingOK, val: empty, log: log}
}

// load reads the file for the first time; unlike get it returns every
// problem, a missing file included, so that New can refuse a broken
// configuration.
func (f *fileSource[T]) load() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	info, err := os.Stat(f.path)
	if err != nil {
		return f.errorf(err)
	}
	readAt := time.Now()
	data, err := f.readData(info)
	if err != nil {
		return err
	}
	v, err := f.parseData(data)
	if err != nil {
		return err
	}
	f.val, f.stamp, f.state = v, filestamp.New(info, data, readAt), fileGood
	return nil
}

// get returns the contents to use now, or an error when the newest
// version of the file cannot be used; callers then refuse what the file
// would have decided (fail closed).
func (f *fileSource[T]) get() (T, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	info, err := os.Stat(f.path)
	if errors.Is(err, fs.ErrNotExist) && f.missingOK {
		if f.state != fileMissing && f.state != fileUnread {
			f.log.Warn("authn: file removed; using no entries from it", "file", f.path, "what", f.what)
		}
		f.state, f.val, f.stamp, f.failed, f.logged = fileMissing, f.empty, filestamp.Stamp{}, nil, ""
		return f.val, nil
	}
	if err != nil {
		// No stamp: the next use stats again.
		f.stamp = filestamp.Stamp{}
		return f.fail(f.errorf(err), false)
	}
	same, racy := f.stamp.Unchanged(info)
	if same && !racy {
		return f.current()
	}
	readAt := time.Now()
	data, err := f.readData(info)
	if err != nil {
		// No stamp either: what failed (a read error, an unreadable
		// mode) is retried on the next use; the log stays quiet unless
		// the problem changes.
		f.stamp = filestamp.Stamp{}
		return f.fail(err, false)
	}
	stamp := filestamp.New(info, data, readAt)
	if same && stamp.SameContents(f.stamp) {
		f.stamp = stamp // same contents: only the read time moves on
		return f.current()
	}
	f.stamp = stamp
	v, err := f.parseData(data)
	if err != nil {
		return f.fail(err, true)
	}
	switch f.state {
	case fileUnread:
		f.log.Debug("authn: file loaded", "file", f.path, "what", f.what)
	case fileMissing:
		f.log.Info("authn: file is back", "file", f.path, "what", f.what)
	case fileFailed:
		f.log.Info("authn: file is usable again; reloaded", "file", f.path, "what", f.what)
	default:
		f.log.Info("authn: file changed; reloaded", "file", f.path, "what", f.what)
	}
	f.val, f.failed, f.logged, f.state = v, nil, "", fileGood
	return f.val, nil
}

// current returns what the last look at the file found.
func (f *fileSource[T]) current() (T, error) {
	if f.failed != nil {
		var zero T
		return zero, f.failed
	}
	return f.val, nil
}

// fail records that the file cannot be used and logs why: once for each
// new version read (newVersion) and otherwise only when the reason
// changes, so that a broken file does not log on every login attempt.
func (f *fileSource[T]) fail(err error, newVersion bool) (T, error) {
	if msg := err.Error(); newVersion || msg != f.logged {
		f.log.Error("authn: file cannot be used; refusing the logins it governs until it is fixed",
			"file", f.path, "what", f.what, "err", err)
		f.logged = msg
	}
	var zero T
	f.val, f.failed, f.state = zero, err, fileFailed
	return zero, err
}

// readData reads the version described by info. Besides the errors of
// the read itself, it refuses a file that is not a regular file and one
// whose mode grants read permission to nobody: a process running as root
// could still read such a file (CAP_DAC_OVERRIDE), but "chmod 000" is how
// an administrator takes a file away, and it must take effect as it
// would for any other user.
func (f *fileSource[T]) readData(info fs.FileInfo) ([]byte, error) {
	if !info.Mode().IsRegular() {
		return nil, f.errorf(fmt.Errorf("not a regular file (%s)", info.Mode().Type()))
	}
	if info.Mode().Perm()&0o444 == 0 {
		return nil, f.errorf(fmt.Errorf("mode %04o grants read permission to nobody", info.Mode().Perm()))
	}
	data, err := readFileLimited(f.path)
	if err != nil {
		return nil, f.errorf(err)
	}
	return data, nil
}

func (f *fileSource[T]) parseData(data []byte) (T, error) {
	v, err := f.parse(data)
	if err != nil {
		var zero T
		return zero, f.errorf(err)
	}
	return v, nil
}

func (f *fileSource[T]) errorf(err error) error {
	return &fileError{what: f.what, path: f.path, err: err}
}

// fileError is why a file named in the configuration cannot be used.
type fileError struct {
	what string // "authorized_keys file", ...
	path string
	err  error
}

func (e *fileError) Error() string { return "authn: " + e.what + " " + e.path + ": " + e.err.Error() }
func (e *fileError) Unwrap() error { return e.err }

func readFileLimited(path string) ([]byte, error) {
	fh, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer fh.Close()
	data, err := io.ReadAll(io.LimitReader(fh, maxFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("reading: %w", err)
	}
	if len(data) > maxFileSize {
		return nil, fmt.Errorf("larger than %d bytes", maxFileSize)
	}
	return data, nil
}

// checkText rejects data that is not a text file at all (a NUL byte: the
// wrong file was named, or a write was torn), as a whole-file error.
func checkText(data []byte) error {
	if bytes.IndexByte(data, 0) >= 0 {
		return errors.New("contains a NUL byte; not a text file")
	}
	return nil
}
