package hostkeys

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"slices"
	"sync"
	"time"

	"golang.org/x/crypto/ssh"
)

// KnownHosts checks server host keys against OpenSSH known_hosts files under
// a Policy. It is safe for concurrent use. It notices when a file changes
// (size, modification time, identity, and the contents of a file modified
// in the last seconds) and reads the files again, so a fix made with
// ssh-keyscan or ssh-keygen -R takes effect without a restart.
type KnownHosts struct {
	files       []string
	policy      Policy
	hashNew     bool
	logger      *slog.Logger
	now         func() time.Time
	lockTimeout time.Duration

	// mu guards db and stamps.
	mu     sync.Mutex
	db     *database
	stamps []fileStamp

	// appendMu serializes AcceptNew additions inside this process; the file
	// lock serializes them across processes.
	appendMu sync.Mutex
}

// fileStamp identifies the version of a file that db was parsed from.
type fileStamp struct {
	info   fs.FileInfo // nil when the file did not exist
	sum    [sha256.Size]byte
	readAt time.Time // wall clock when the contents were read
}

// racyWindow is how recent a modification time must be for the stat
// comparison alone not to be trusted: an edit that keeps the size, within
// the file system's timestamp granularity, leaves size and mtime as they
// were (git's "racily clean" problem). Such files are read again and
// compared by content until their mtime is safely older than the read.
const racyWindow = 2 * time.Second

// unchanged reports whether info, from a fresh stat, certainly describes
// the version read; racy reports that it might not and the contents must
// be compared.
func (s fileStamp) unchanged(info fs.FileInfo) (same, racy bool) {
	if s.info == nil || info == nil {
		return s.info == nil && info == nil, false
	}
	if !os.SameFile(s.info, info) || s.info.Size() != info.Size() || !s.info.ModTime().Equal(info.ModTime()) {
		return false, false
	}
	return true, !info.ModTime().Before(s.readAt.Add(-racyWindow))
}

// New reads the known_hosts files of cfg and returns a KnownHosts. A nil
// cfg means defaults: Strict, DefaultFiles. It fails when a file exists but
// cannot be read; a missing file is fine.
func New(cfg *Config) (*KnownHosts, error) {
	if cfg == nil {
		cfg = &Config{}
	}
	switch cfg.Policy {
	case Strict, AcceptNew, Insecure:
	default:
		return nil, fmt.Errorf("hostkeys: unknown policy %d", int(cfg.Policy))
	}
	files, err := resolveFiles(cfg.Files)
	if err != nil {
		return nil, err
	}
	k := &KnownHosts{
		files:       files,
		policy:      cfg.Policy,
		hashNew:     cfg.HashNewHosts,
		logger:      cfg.Logger,
		now:         cfg.Now,
		lockTimeout: cfg.LockTimeout,
	}
	if k.logger == nil {
		k.logger = slog.Default()
	}
	if k.now == nil {
		k.now = time.Now
	}
	if k.lockTimeout <= 0 {
		k.lockTimeout = 10 * time.Second
	}
	if _, err := k.current(); err != nil {
		return nil, err
	}
	return k, nil
}

// Files returns the known_hosts files in use, after defaults and "~/"
// expansion. AcceptNew writes to the first.
func (k *KnownHosts) Files() []string { return slices.Clone(k.files) }

// Policy returns the policy in force.
func (k *KnownHosts) Policy() Policy { return k.policy }

// current returns the database, reading the files again when one changed.
func (k *KnownHosts) current() (*database, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.db != nil && len(k.stamps) == len(k.files) {
		fresh, racy := true, false
		for i, f := range k.files {
			info, err := os.Stat(f)
			if err != nil && !errors.Is(err, fs.ErrNotExist) {
				fresh = false // let the read report the error
				break
			}
			if err != nil {
				info = nil
			}
			same, r := k.stamps[i].unchanged(info)
			if !same {
				fresh = false
				break
			}
			racy = racy || r
		}
		if fresh && !racy {
			return k.db, nil
		}
	}
	contents, stamps, err := k.read()
	if err != nil {
		return nil, err
	}
	if k.db != nil && len(k.stamps) == len(stamps) && sameSums(k.stamps, stamps) {
		k.stamps = stamps // same contents: keep the database and its cache
		return k.db, nil
	}
	k.db, k.stamps = k.parse(contents), stamps
	return k.db, nil
}

func sameSums(a, b []fileStamp) bool {
	for i := range a {
		if a[i].sum != b[i].sum || (a[i].info == nil) != (b[i].info == nil) {
			return false
		}
	}
	return true
}

// invalidate makes the next current read the files again.
func (k *KnownHosts) invalidate() {
	k.mu.Lock()
	k.stamps = nil
	k.mu.Unlock()
}

// load reads and parses every file.
func (k *KnownHosts) load() (*database, error) {
	contents, _, err := k.read()
	if err != nil {
		return nil, err
	}
	return k.parse(contents), nil
}

// read reads every file. A file that does not exist is empty; any other
// error (permission denied, a directory, an I/O error) fails, because
// silently ignoring a known_hosts file could turn a changed key into an
// "unknown" one that AcceptNew would then accept.
func (k *KnownHosts) read() ([][]byte, []fileStamp, error) {
	contents := make([][]byte, len(k.files))
	stamps := make([]fileStamp, len(k.files))
	for i, name := range k.files {
		now := time.Now()
		data, info, err := readKnownHostsFile(name)
		if err != nil {
			return nil, nil, err
		}
		contents[i], stamps[i] = data, fileStamp{info: info, sum: sha256.Sum256(data), readAt: now}
	}
	return contents, stamps, nil
}

func (k *KnownHosts) parse(contents [][]byte) *database {
	db := parseDatabase(k.files, contents)
	for _, le := range db.invalid {
		k.logger.Warn("hostkeys: skipping invalid known_hosts line", "file", le.file, "line", le.line, "error", le.err.Error())
	}
	return db
}

// maxKnownHostsSize bounds what one known_hosts file may hold; real files
// are kilobytes to a few megabytes.
const maxKnownHostsSize = 64 << 20

func readKnownHostsFile(name string) ([]byte, fs.FileInfo, error) {
	f, err := os.Open(name)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil, nil
	}
	if err != nil {
		return nil, nil, fmt.Errorf("hostkeys: reading known_hosts: %w", err)
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return nil, nil, fmt.Errorf("hostkeys: reading known_hosts: %w", err)
	}
	if !info.Mode().IsRegular() && info.Mode()&fs.ModeCharDevice == 0 {
		// /dev/null is fine (a common "no file" setting); a directory is not.
		return nil, nil, fmt.Errorf("hostkeys: reading known_hosts %s: not a regular file (%s)", name, info.Mode().Type())
	}
	data, err := io.ReadAll(io.LimitReader(f, maxKnownHostsSize+1))
	if err != nil {
		return nil, nil, fmt.Errorf("hostkeys: reading known_hosts %s: %w", name, err)
	}
	if len(data) > maxKnownHostsSize {
		return nil, nil, fmt.Errorf("hostkeys: reading known_hosts %s: larger than %d bytes", name, maxKnownHostsSize)
	}
	return data, info, nil
}

// HostKeyCallback returns the callback for ssh.ClientConfig.HostKeyCallback.
// It returns nil for an accepted key and a *HostKeyError for a rejected one
// (errors.As works on the error of ssh.Dial); other errors mean the
// address is malformed, or the known_hosts files could not be read or,
// under AcceptNew, written. Under Insecure it always returns nil.
//
// Which host is checked: the hostname argument x/crypto passes (the address
// given to ssh.Dial or ssh.NewClientConn), or the remote address when that
// is empty; OpenSSH likewise checks the name the user typed, not the IP
// address (CheckHostIP=no, its default since 8.5).
func (k *KnownHosts) HostKeyCallback() ssh.HostKeyCallback {
	return k.check
}

func (k *KnownHosts) check(address string, remote net.Addr, key ssh.PublicKey) error {
	if key == nil {
		return errors.New("hostkeys: no host key to check")
	}
	if address == "" && remote != nil {
		address = remote.String()
	}
	name, host, port, nameErr := knownHostsName(address)
	if k.policy == Insecure {
		k.insecureAccept(name, host, port, address, nameErr, remote, key)
		return nil
	}
	if nameErr != nil {
		return nameErr
	}
	db, err := k.current()
	if err != nil {
		return err
	}
	v := db.verify(name, host, port, key, k.now)
	if v.reason == nil {
		return nil
	}
	if v.reason == ErrUnknownHost && k.policy == AcceptNew {
		return k.addHost(name, address, host, port, remote, key)
	}
	return v.hostKeyError(name, address, host, port, k.files[0], remote, key)
}

// insecureAccept logs what the Insecure policy lets through, and what
// strict checking would have said about it.
func (k *KnownHosts) insecureAccept(name, host, port, address string, nameErr error, remote net.Addr, key ssh.PublicKey) {
	status := "matches known_hosts"
	if nameErr != nil {
		status, name = nameErr.Error(), address
	} else if db, err := k.current(); err != nil {
		status = err.Error()
	} else if v := db.verify(name, host, port, key, k.now); v.reason != nil {
		status = v.reason.Error()
	}
	k.logger.Warn("hostkeys: INSECURE: accepting host key without verification",
		"host", name, "remote", addrString(remote), "key_type", key.Type(),
		"fingerprint", fingerprint(key), "known_hosts", status)
}

// fingerprint is the SHA256 fingerprint OpenSSH prints: of the certified key
// for a certificate.
func fingerprint(key ssh.PublicKey) string {
	if cert, ok := key.(*ssh.Certificate); ok {
		return ssh.FingerprintSHA256(cert.Key)
	}
	return ssh.FingerprintSHA256(key)
}

func addrString(a net.Addr) string {
	if a == nil {
		return ""
	}
	return a.String()
}
