package hostkeys

import (
	"bytes"
	"crypto/rand"
	"crypto/sha1"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/dockssh/dockssh/internal/logtext"
)

// addHost implements AcceptNew for a host that has no entry: it appends one
// line to the first known_hosts file. Safe across goroutines and processes:
//
//  1. take an exclusive lock on the file itself (flock; see lockFile), so
//     that concurrent writers wait for each other;
//  2. read every file again under the lock and decide again: another
//     goroutine or process may have added the host meanwhile, with the same
//     key (accept, write nothing) or another one (reject as changed);
//  3. append the line with a single write(2) on an O_APPEND descriptor, so
//     even a writer that ignores the lock (OpenSSH does not lock) cannot
//     interleave inside it.
func (k *KnownHosts) addHost(name, address, host, port string, remote net.Addr, key ssh.PublicKey) error {
	plain := key
	if cert, ok := key.(*ssh.Certificate); ok {
		// OpenSSH never records a certificate: an untrusted one is retried
		// and recorded as its plain key.
		plain = cert.Key
	}
	if err := validNewHostName(name); err != nil {
		return err
	}
	if err := checkKeySize(plain); err != nil {
		// known_hosts lines with such keys are skipped (OpenSSH cannot
		// parse them), so recording it would only write a dead line.
		return fmt.Errorf("hostkeys: not adding %s to known_hosts: %w", name, err)
	}

	k.appendMu.Lock()
	defer k.appendMu.Unlock()

	file := k.files[0]
	if err := os.MkdirAll(filepath.Dir(file), 0o700); err != nil {
		return fmt.Errorf("hostkeys: adding %s to known_hosts: %w", name, err)
	}
	f, err := os.OpenFile(file, os.O_RDWR|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("hostkeys: adding %s to known_hosts: %w", name, err)
	}
	defer f.Close()
	unlock, err := lockFile(f, k.lockTimeout)
	if err != nil {
		return fmt.Errorf("hostkeys: adding %s to known_hosts %s: %w", name, file, err)
	}
	defer unlock()
	// Whatever happens next, the files may have changed.
	defer k.invalidate()

	db, err := k.load()
	if err != nil {
		return err
	}
	v := db.verify(name, host, port, key, k.checkOptions())
	if v.reason == nil {
		return nil // added meanwhile by someone else, with this very key
	}
	if v.reason != ErrUnknownHost {
		return v.hostKeyError(name, address, host, port, file, remote, key)
	}

	// Read the current end of the file through the locked descriptor, to
	// count lines and to add a newline if the last line lacks one.
	existing, err := io.ReadAll(io.NewSectionReader(f, 0, 1<<62))
	if err != nil {
		return fmt.Errorf("hostkeys: adding %s to known_hosts %s: %w", name, file, err)
	}
	line, err := k.knownHostsLine(name, plain)
	if err != nil {
		return err
	}
	var buf bytes.Buffer
	if len(existing) > 0 && existing[len(existing)-1] != '\n' {
		buf.WriteByte('\n')
	}
	buf.WriteString(line)
	buf.WriteByte('\n')
	if _, err := f.Write(buf.Bytes()); err != nil {
		return fmt.Errorf("hostkeys: adding %s to known_hosts %s: %w", name, file, err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("hostkeys: adding %s to known_hosts %s: %w", name, file, err)
	}
	lineNum := bytes.Count(existing, []byte{'\n'}) + 1
	if len(existing) > 0 && existing[len(existing)-1] != '\n' {
		lineNum++
	}
	// OpenSSH: "Warning: Permanently added '[host]:port' (ED25519) to the
	// list of known hosts."
	k.logger.Info("hostkeys: permanently added host to known_hosts",
		"host", name, "remote", logtext.Addr(remote), "key_type", plain.Type(),
		"fingerprint", ssh.FingerprintSHA256(plain), "file", file, "line", lineNum)
	return nil
}

// knownHostsLine formats "name type base64" as OpenSSH's
// add_host_to_hostfile does, with the name hashed when configured.
func (k *KnownHosts) knownHostsLine(name string, key ssh.PublicKey) (string, error) {
	field := name
	if k.hashNew {
		salt := make([]byte, sha1.Size)
		if _, err := rand.Read(salt); err != nil {
			return "", fmt.Errorf("hostkeys: salt for hashed host name: %w", err)
		}
		field = encodeHashedName(salt, name)
	}
	return field + " " + key.Type() + " " + base64.StdEncoding.EncodeToString(key.Marshal()), nil
}

// validNewHostName refuses names that would not read back as the same single
// literal host: a name with blanks or a comma would split the field, and
// one with pattern characters would become a wildcard that covers other
// hosts. x/crypto passes whatever address the caller dialed, so this is
// checked rather than assumed.
func validNewHostName(name string) error {
	if name == "" {
		return errors.New("hostkeys: cannot add an empty host name to known_hosts")
	}
	if i := strings.IndexFunc(name, func(r rune) bool {
		return r <= ' ' || r == 0x7f || strings.ContainsRune(",*?!|#@", r)
	}); i >= 0 {
		return fmt.Errorf("hostkeys: cannot add host %q to known_hosts: it contains %q", logtext.Clip(name, maxQuoted), name[i:i+1])
	}
	return nil
}

// errLockTimeout is returned when the known_hosts lock stays taken.
var errLockTimeout = errors.New("timed out waiting for the lock held by another process")

// pollLock retries try until it succeeds, fails for good, or timeout passes.
func pollLock(try func() (busy bool, err error), timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	wait := time.Millisecond
	for {
		busy, err := try()
		if err != nil || !busy {
			return err
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%w (after %s)", errLockTimeout, timeout)
		}
		time.Sleep(wait)
		if wait < 50*time.Millisecond {
			wait *= 2
		}
	}
}
