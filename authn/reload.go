package authn

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"sync"
	"time"
)

// maxFileSize bounds every file authn reads (authorized_keys, users,
// trusted CA and revocation files). A bigger file is a whole-file error.
const maxFileSize = 16 << 20

// fileStamp tells versions of a file apart, mostly without reading it: a
// new inode (the file was replaced, as editors and config managers do), a
// new size or a new modification time means a new version. An edit that
// keeps the size within the file system's timestamp granularity keeps both
// (git's "racily clean" problem), so a file modified shortly before it was
// read is also compared by the SHA-256 of its contents until its
// modification time is safely older than the last read.
type fileStamp struct {
	info   os.FileInfo
	size   int64
	mtime  time.Time
	sum    [sha256.Size]byte
	readAt time.Time // wall clock when the contents were read
}

// racyWindow is how recent a modification time must be, relative to the
// read, for the stat comparison alone not to be trusted.
const racyWindow = 2 * time.Second

func newFileStamp(fi os.FileInfo, data []byte) fileStamp {
	return fileStamp{info: fi, size: fi.Size(), mtime: fi.ModTime(), sum: sha256.Sum256(data), readAt: time.Now()}
}

// unchanged reports whether fi, from a fresh stat, certainly describes the
// version read (same), or might not although the stat agrees (racy: the
// contents must be compared).
func (s fileStamp) unchanged(fi os.FileInfo) (same, racy bool) {
	if s.info == nil || !os.SameFile(s.info, fi) || s.size != fi.Size() || !s.mtime.Equal(fi.ModTime()) {
		return false, false
	}
	return true, !fi.ModTime().Before(s.readAt.Add(-racyWindow))
}

// fileSource holds the parsed contents of one file and re-reads it when a
// stat on use shows that it changed, so edits take effect without a
// restart and without a watcher goroutine.
//
// A missing file is an empty file: deleting authorized_keys must revoke
// access. A file that cannot be read, or that parse rejects as a whole,
// leaves the last good version in use (and is logged once per version).
type fileSource[T any] struct {
	path  string
	what  string // "authorized_keys file", "users file", ... for logs
	parse func(data []byte) (T, error)
	empty T
	log   *slog.Logger

	mu      sync.Mutex // guards the fields below
	stamp   fileStamp  // version that val (or failed) was read from
	val     T          // last good version
	failed  error      // non-nil when the newest version could not be used
	missing bool       // the file did not exist at the last stat
	loaded  bool       // some version was read
}

func newFileSource[T any](path, what string, empty T, parse func([]byte) (T, error), log *slog.Logger) *fileSource[T] {
	return &fileSource[T]{path: path, what: what, parse: parse, empty: empty, val: empty, log: log}
}

// load reads the file for the first time; unlike get it returns every
// problem so that New can refuse a broken configuration.
func (f *fileSource[T]) load() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	fi, err := os.Stat(f.path)
	if err != nil {
		return fmt.Errorf("authn: %s %s: %w", f.what, f.path, err)
	}
	data, err := f.readData(fi)
	if err != nil {
		return err
	}
	v, err := f.parseData(data)
	if err != nil {
		return err
	}
	f.val, f.stamp, f.loaded = v, newFileStamp(fi, data), true
	return nil
}

// get returns the contents to use now. The error is non-nil when the
// newest version of the file could not be used (the value is then the
// last good version); callers that must fail closed on such errors, like
// the revocation list, check it.
func (f *fileSource[T]) get() (T, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fi, err := os.Stat(f.path)
	if errors.Is(err, fs.ErrNotExist) {
		if !f.missing && f.loaded {
			f.log.Warn("authn: file removed; using no entries from it", "file", f.path, "what", f.what)
		}
		f.missing, f.val, f.stamp, f.failed = true, f.empty, fileStamp{}, nil
		return f.val, nil
	}
	if err != nil {
		// Do not remember a stamp: a transient error is retried next time.
		f.log.Error("authn: cannot stat file; keeping the last good version", "file", f.path, "what", f.what, "err", err)
		return f.val, fmt.Errorf("authn: %s %s: %w", f.what, f.path, err)
	}
	same, racy := f.stamp.unchanged(fi)
	if same && !racy {
		return f.val, f.failed
	}
	data, err := f.readData(fi)
	stamp := newFileStamp(fi, data)
	if err == nil && same && stamp.sum == f.stamp.sum {
		f.stamp = stamp // same contents: only the read time moves on
		return f.val, f.failed
	}
	var v T
	if err == nil {
		v, err = f.parseData(data)
	}
	if err != nil {
		f.log.Error("authn: cannot use new version of file; keeping the last good version", "file", f.path, "what", f.what, "err", err)
		f.stamp, f.failed = stamp, err
		return f.val, err
	}
	switch {
	case !f.loaded:
		f.log.Debug("authn: file loaded", "file", f.path, "what", f.what)
	case f.missing:
		f.log.Info("authn: file is back", "file", f.path, "what", f.what)
	default:
		f.log.Info("authn: file changed; reloaded", "file", f.path, "what", f.what)
	}
	f.val, f.stamp, f.failed, f.missing, f.loaded = v, stamp, nil, false, true
	return f.val, nil
}

func (f *fileSource[T]) readData(fi os.FileInfo) ([]byte, error) {
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("authn: %s %s is not a regular file", f.what, f.path)
	}
	data, err := readFileLimited(f.path)
	if err != nil {
		return nil, fmt.Errorf("authn: %s: %w", f.what, err)
	}
	return data, nil
}

func (f *fileSource[T]) parseData(data []byte) (T, error) {
	v, err := f.parse(data)
	if err != nil {
		var zero T
		return zero, fmt.Errorf("authn: %s %s: %w", f.what, f.path, err)
	}
	return v, nil
}

func readFileLimited(path string) ([]byte, error) {
	fh, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer fh.Close()
	data, err := io.ReadAll(io.LimitReader(fh, maxFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", path, err)
	}
	if len(data) > maxFileSize {
		return nil, fmt.Errorf("%s is larger than %d bytes", path, maxFileSize)
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
