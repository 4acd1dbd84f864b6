package hostkeys

import (
	"cmp"
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

	"github.com/dockssh/dockssh/internal/filestamp"
	"github.com/dockssh/dockssh/internal/logtext"
)

// KnownHosts checks server host keys against OpenSSH known_hosts files under
// a Policy. It is safe for concurrent use. It notices when a file changes
// (identity, size, modification time, mode, owner, and the contents of a
// file modified in the last seconds) and reads the files again, so a fix
// made with ssh-keyscan or ssh-keygen -R takes effect without a restart.
type KnownHosts struct {
	files       []string
	policy      Policy
	hashNew     bool
	logger      *slog.Logger
	now         func() time.Time
	lockTimeout time.Duration
	allowSHA1CA bool

	// mu guards db and stamps.
	mu     sync.Mutex
	db     *database
	stamps []filestamp.Stamp

	// appendMu serializes AcceptNew additions inside this process; the file
	// lock serializes them across processes.
	appendMu sync.Mutex
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
		lockTimeout: cfg.LockTimeout,
		allowSHA1CA: cfg.AllowSHA1CASignatures,
		logger:      cmp.Or(cfg.Logger, slog.Default()),
		now:         cfg.Now,
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
			same, r := k.stamps[i].Unchanged(info)
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
	if k.db != nil && len(k.stamps) == len(stamps) && sameContents(k.stamps, stamps) {
		k.stamps = stamps // same contents: keep the database and its cache
		return k.db, nil
	}
	k.db, k.stamps = k.parse(contents), stamps
	return k.db, nil
}

func sameContents(a, b []filestamp.Stamp) bool {
	for i := range a {
		if !a[i].SameContents(b[i]) {
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
func (k *KnownHosts) read() ([][]byte, []filestamp.Stamp, error) {
	contents := make([][]byte, len(k.files))
	stamps := make([]filestamp.Stamp, len(k.files))
	for i, name := range k.files {
		readAt := time.Now()
		data, info, err := readKnownHostsFile(name)
		if err != nil {
			return nil, nil, err
		}
		contents[i], stamps[i] = data, filestamp.New(info, data, readAt)
	}
	return contents, stamps, nil
}

func (k *KnownHosts) parse(contents [][]byte) *database {
	db := parseDatabase(k.files, contents)
	for _, le := range db.invalid {
		msg := "hostkeys: skipping invalid known_hosts line"
		if le.used {
			msg = "hostkeys: using a @revoked known_hosts line that OpenSSH would skip"
		}
		k.logger.Warn(msg, "file", le.file, "line", le.line, "error", le.err.Error())
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
	v := db.verify(name, host, port, key, k.checkOptions())
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
	} else if v := db.verify(name, host, port, key, k.checkOptions()); v.reason != nil {
		status = v.reason.Error()
	}
	k.logger.Warn("hostkeys: INSECURE: accepting host key without verification",
		"host", name, "remote", logtext.Addr(remote), "key_type", key.Type(),
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

// checkOptions returns what a check needs from the configuration.
func (k *KnownHosts) checkOptions() checkOptions {
	return checkOptions{now: k.now, allowSHA1CA: k.allowSHA1CA}
}
