// Package filestamp tells versions of a file apart, mostly without reading
// it, for configuration files that are re-read when they change (known_hosts,
// authorized_keys, users files).
//
// A new inode (the file was replaced, as editors and config managers do), a
// new size, a new modification time, a new mode or owner, or a new inode
// change time means a new version. An edit that keeps the size within the
// file system's timestamp granularity keeps all of those (git's "racily
// clean" problem), so a file modified shortly before it was read is also
// compared by the SHA-256 of its contents until its modification time is
// safely older than the read.
package filestamp

import (
	"crypto/sha256"
	"io/fs"
	"os"
	"time"
)

// RacyWindow is how recent a modification time must be, relative to the
// read, for the stat comparison alone not to be trusted. Two seconds covers
// the coarsest timestamps in use (FAT's two-second mtime).
const RacyWindow = 2 * time.Second

// Stamp identifies one version of a file. The zero Stamp stands for a file
// that does not exist.
type Stamp struct {
	info   fs.FileInfo // nil when the file did not exist
	sum    [sha256.Size]byte
	readAt time.Time
}

// New returns the stamp of the version read as data, whose stat (taken
// before the read) was info, read at readAt. A nil info stands for a missing
// file.
func New(info fs.FileInfo, data []byte, readAt time.Time) Stamp {
	if info == nil {
		return Stamp{}
	}
	return Stamp{info: info, sum: sha256.Sum256(data), readAt: readAt}
}

// Exists reports whether the stamp is of an existing file.
func (s Stamp) Exists() bool { return s.info != nil }

// Unchanged reports whether info, from a fresh stat (nil: the file does
// not exist), certainly describes the version s was made from (same), or
// might not although every stat field agrees (racy: read the file again
// and compare with SameContents).
func (s Stamp) Unchanged(info fs.FileInfo) (same, racy bool) {
	if s.info == nil || info == nil {
		return s.info == nil && info == nil, false
	}
	if !os.SameFile(s.info, info) || s.info.Size() != info.Size() ||
		!s.info.ModTime().Equal(info.ModTime()) || s.info.Mode() != info.Mode() ||
		!sameInode(s.info, info) {
		return false, false
	}
	return true, !info.ModTime().Before(s.readAt.Add(-RacyWindow))
}

// SameContents reports whether s and o are of files with the same contents
// (two missing files count as the same).
func (s Stamp) SameContents(o Stamp) bool {
	return (s.info == nil) == (o.info == nil) && s.sum == o.sum
}
