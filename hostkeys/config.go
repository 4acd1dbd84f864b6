package hostkeys

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/dockssh/dockssh/internal/logtext"
)

// Policy says what to do with a host that known_hosts does not vouch for.
type Policy int

const (
	// Strict rejects an unknown host, a changed key and a revoked key
	// (OpenSSH StrictHostKeyChecking=yes). It is the zero value.
	Strict Policy = iota
	// AcceptNew appends the key of a host that has no entry at all to the
	// first known_hosts file and accepts it (trust on first use, OpenSSH
	// StrictHostKeyChecking=accept-new). A changed or revoked key is still
	// rejected, and so is a key of another type for a host that is already
	// known (OpenSSH 9.2 too calls that a changed key).
	AcceptNew
	// Insecure accepts every key, even a changed or revoked one, and logs a
	// warning with its fingerprint on every connection. Only for tests and
	// throwaway hosts: it gives up all protection against a
	// man-in-the-middle.
	Insecure
)

// String returns the OpenSSH StrictHostKeyChecking spelling of p.
func (p Policy) String() string {
	switch p {
	case Strict:
		return "yes"
	case AcceptNew:
		return "accept-new"
	case Insecure:
		return "no"
	}
	return fmt.Sprintf("Policy(%d)", int(p))
}

// ParsePolicy maps an OpenSSH StrictHostKeyChecking value (as found in
// ssh_config) to a Policy: "yes" and "ask" (a library cannot ask) are
// Strict, "accept-new" is AcceptNew, "no" and "off" are Insecure. Case is
// ignored, as in ssh_config.
func ParsePolicy(value string) (Policy, error) {
	switch strings.ToLower(strings.TrimSpace(value)) {
	case "yes", "ask":
		return Strict, nil
	case "accept-new":
		return AcceptNew, nil
	case "no", "off":
		return Insecure, nil
	}
	return Strict, fmt.Errorf("hostkeys: unknown StrictHostKeyChecking value %q (want yes, ask, accept-new, no or off)", logtext.Clip(value, maxQuoted))
}

// Config configures a KnownHosts. A nil *Config means all defaults.
type Config struct {
	// Files are the known_hosts files to read, in order. Empty means
	// DefaultFiles. A leading "~/" stands for the home directory ($HOME).
	// A file that does not exist counts as empty; a file that exists but
	// cannot be read is an error. AcceptNew appends new hosts to Files[0],
	// creating it (mode 0600, directory 0700) when needed.
	Files []string
	// Policy is Strict when zero.
	Policy Policy
	// HashNewHosts makes AcceptNew write the host name hashed ("|1|salt|hash",
	// OpenSSH HashKnownHosts=yes) rather than in clear text. Zero writes
	// clear text, as OpenSSH does by default.
	HashNewHosts bool
	// Logger receives the Insecure policy's warnings, AcceptNew's additions
	// and the malformed known_hosts lines that were skipped. Nil means
	// slog.Default(); it is never silent, because an Insecure connection
	// must leave a trace.
	Logger *slog.Logger
	// Now returns the current time, for certificate validity. Nil means
	// time.Now.
	Now func() time.Time
	// LockTimeout bounds how long AcceptNew waits for the lock on Files[0]
	// that another goroutine or process holds. Zero means 10 seconds.
	LockTimeout time.Duration
	// AllowSHA1CASignatures accepts host certificates whose CA signature
	// is ssh-rsa, an RSA signature over SHA-1 (OpenSSH:
	// CASignatureAlgorithms=+ssh-rsa). Zero refuses them, as OpenSSH does
	// by default since 8.2 ("Certificate signed with disallowed
	// algorithm"): SHA-1 is open to chosen-prefix collisions, which let
	// whoever can get one certificate signed forge another. Re-signing the
	// certificates (ssh-keygen -s CA_KEY -t rsa-sha2-512 ...) is the fix;
	// this is for CAs that cannot be changed yet.
	AllowSHA1CASignatures bool
}

// DefaultFiles returns OpenSSH's default UserKnownHostsFile and
// GlobalKnownHostsFile lists: ~/.ssh/known_hosts, ~/.ssh/known_hosts2,
// /etc/ssh/ssh_known_hosts and /etc/ssh/ssh_known_hosts2, with the home
// directory taken from $HOME (os.UserHomeDir). It fails when the home
// directory is unknown, because the first file is where AcceptNew writes.
func DefaultFiles() ([]string, error) {
	home, err := os.UserHomeDir()
	if err != nil {
		return nil, fmt.Errorf("hostkeys: no default known_hosts file: %w; set HOME or Config.Files", err)
	}
	return []string{
		filepath.Join(home, ".ssh", "known_hosts"),
		filepath.Join(home, ".ssh", "known_hosts2"),
		"/etc/ssh/ssh_known_hosts",
		"/etc/ssh/ssh_known_hosts2",
	}, nil
}

// resolveFiles applies the defaults and expands "~/".
func resolveFiles(files []string) ([]string, error) {
	if len(files) == 0 {
		return DefaultFiles()
	}
	out := make([]string, 0, len(files))
	for _, f := range files {
		if f == "" {
			return nil, errors.New("hostkeys: Config.Files has an empty file name")
		}
		if f == "~" || strings.HasPrefix(f, "~/") {
			home, err := os.UserHomeDir()
			if err != nil {
				return nil, fmt.Errorf("hostkeys: cannot expand %q: %w", f, err)
			}
			f = filepath.Join(home, strings.TrimPrefix(f, "~"))
		}
		out = append(out, f)
	}
	return out, nil
}
