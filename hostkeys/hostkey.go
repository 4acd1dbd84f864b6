package hostkeys

import (
	"cmp"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"

	"golang.org/x/crypto/ssh"

	"github.com/dockssh/dockssh/internal/shquote"
)

// KeyConfig configures LoadHostKey and LoadOrCreateHostKey. A nil *KeyConfig
// means all defaults.
type KeyConfig struct {
	// Passphrase decrypts an encrypted key file (OpenSSH format, or legacy
	// PEM with Proc-Type: 4,ENCRYPTED); an unencrypted file loads whether or
	// not it is set. LoadOrCreateHostKey encrypts a key it creates with it.
	// Nil means no passphrase: an encrypted file is then
	// ErrPassphraseRequired. The passphrase never appears in errors or logs.
	Passphrase []byte
	// Logger is told when LoadOrCreateHostKey creates a key, with its
	// fingerprint. Nil means slog.Default().
	Logger *slog.Logger
}

var (
	// ErrPassphraseRequired: the key file is encrypted and
	// KeyConfig.Passphrase is nil.
	ErrPassphraseRequired = errors.New("hostkeys: private key is encrypted and no passphrase was given")
	// ErrWrongPassphrase: KeyConfig.Passphrase does not decrypt the key.
	ErrWrongPassphrase = errors.New("hostkeys: wrong passphrase for private key")
)

// KeyPermissionError reports a private key file that group or others may
// access. sshd refuses such keys ("UNPROTECTED PRIVATE KEY FILE!"), and so
// do LoadHostKey and LoadOrCreateHostKey.
type KeyPermissionError struct {
	Path string
	Mode fs.FileMode // the permission bits found
}

func (e *KeyPermissionError) Error() string {
	return fmt.Sprintf("hostkeys: permissions %04o for %s are too open: a private host key must not be accessible by group or others; fix with: chmod 600 %s",
		uint32(e.Mode.Perm()), e.Path, shquote.Quote(absPath(e.Path)))
}

// maxKeyFileSize bounds the bytes read from a key file; an 16384-bit RSA
// key in PEM is about 13 KiB.
const maxKeyFileSize = 1 << 20

// LoadHostKey reads the private host key at path: OpenSSH format
// ("OPENSSH PRIVATE KEY", encrypted or not), PKCS#1 or SEC 1 PEM
// ("RSA PRIVATE KEY", "EC PRIVATE KEY", also with legacy PEM encryption),
// or unencrypted PKCS#8 ("PRIVATE KEY"). Encrypted PKCS#8
// ("ENCRYPTED PRIVATE KEY") is refused with the command that converts it;
// docs/hostkeys.md says why. It refuses a file that is not a regular file
// or that group or others may access (*KeyPermissionError; on Unix only,
// where permission bits mean that).
func LoadHostKey(path string, cfg *KeyConfig) (ssh.Signer, error) {
	if cfg == nil {
		cfg = &KeyConfig{}
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("hostkeys: host key: %w", err)
	}
	defer f.Close()
	// Check the opened file, not the path, so the file checked is the file read.
	info, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("hostkeys: host key: %w", err)
	}
	if !info.Mode().IsRegular() {
		return nil, fmt.Errorf("hostkeys: host key %s is not a regular file (%s)", path, info.Mode().Type())
	}
	if err := checkKeyPermissions(path, info); err != nil {
		return nil, err
	}
	data, err := io.ReadAll(io.LimitReader(f, maxKeyFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("hostkeys: host key %s: %w", path, err)
	}
	if len(data) > maxKeyFileSize {
		return nil, fmt.Errorf("hostkeys: host key %s: larger than %d bytes, not a private key", path, maxKeyFileSize)
	}
	signer, err := parseHostKey(data, cfg.Passphrase)
	switch {
	case errors.Is(err, ErrPassphraseRequired):
		return nil, fmt.Errorf("%w: %s (set KeyConfig.Passphrase, or remove the passphrase with: ssh-keygen -p -N '' -f %s)", ErrPassphraseRequired, path, shquote.Quote(absPath(path)))
	case errors.Is(err, errEncryptedPKCS8):
		q := shquote.Quote(absPath(path))
		return nil, fmt.Errorf("hostkeys: host key %s: %w; convert it to the OpenSSH format, which keeps the passphrase: ssh-keygen -p -f %s (RSA and ECDSA keys), or decrypt it: openssl pkey -in %s -out NEW_FILE",
			path, err, q, q)
	case errors.Is(err, ErrWrongPassphrase):
		return nil, fmt.Errorf("%w: %s", ErrWrongPassphrase, path)
	case err != nil:
		return nil, fmt.Errorf("hostkeys: host key %s: %w", path, err)
	}
	return signer, nil
}

// errEncryptedPKCS8 refuses an ENCRYPTED PRIVATE KEY block: neither the
// standard library nor x/crypto decrypts one (docs/hostkeys.md).
var errEncryptedPKCS8 = errors.New("encrypted PKCS#8 keys are not supported")

// parseHostKey parses a PEM private key, decrypting it when needed. Its
// errors never quote the key material.
func parseHostKey(data, passphrase []byte) (ssh.Signer, error) {
	block, _ := pem.Decode(data)
	if block == nil {
		return nil, errors.New("no PEM private key found (a public key, or not a key file?)")
	}
	if block.Type == "ENCRYPTED PRIVATE KEY" {
		return nil, errEncryptedPKCS8
	}
	raw, err := ssh.ParseRawPrivateKey(data)
	var missing *ssh.PassphraseMissingError
	if errors.As(err, &missing) {
		if passphrase == nil {
			return nil, ErrPassphraseRequired
		}
		raw, err = ssh.ParseRawPrivateKeyWithPassphrase(data, passphrase)
		if errors.Is(err, x509.IncorrectPasswordError) {
			return nil, ErrWrongPassphrase
		}
	}
	if err != nil {
		return nil, err
	}
	return ssh.NewSignerFromKey(raw)
}

// LoadOrCreateHostKey loads the private host key at path like LoadHostKey or,
// when no file exists there, creates a new ed25519 key: the directory with
// mode 0700 when missing, the file with mode 0600 in OpenSSH format
// (encrypted when KeyConfig.Passphrase is set). It never overwrites a file.
//
// Creation is race-safe: the key is written completely to a temporary file
// in the same directory and then hard-linked to path, which fails if path
// exists; a process that loses the race loads the winner's key. On file
// systems without hard links it falls back to O_CREATE|O_EXCL.
func LoadOrCreateHostKey(path string, cfg *KeyConfig) (ssh.Signer, error) {
	if cfg == nil {
		cfg = &KeyConfig{}
	}
	signer, err := LoadHostKey(path, cfg)
	if !errors.Is(err, fs.ErrNotExist) {
		return signer, err
	}
	created, err := createHostKey(path, cfg.Passphrase)
	if errors.Is(err, fs.ErrExist) {
		return LoadHostKey(path, cfg) // another process created it first
	}
	if err != nil {
		return nil, err
	}
	logger := cmp.Or(cfg.Logger, slog.Default())
	logger.Info("hostkeys: created new host key", "path", path,
		"key_type", created.PublicKey().Type(), "fingerprint", ssh.FingerprintSHA256(created.PublicKey()))
	return created, nil
}

func createHostKey(path string, passphrase []byte) (ssh.Signer, error) {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("hostkeys: generating host key: %w", err)
	}
	var block *pem.Block
	if passphrase != nil {
		block, err = ssh.MarshalPrivateKeyWithPassphrase(priv, "", passphrase)
	} else {
		block, err = ssh.MarshalPrivateKey(priv, "")
	}
	if err != nil {
		return nil, fmt.Errorf("hostkeys: encoding host key: %w", err)
	}
	data := pem.EncodeToMemory(block)
	signer, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		return nil, fmt.Errorf("hostkeys: host key: %w", err)
	}

	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("hostkeys: creating host key directory: %w", err)
	}
	tmp, err := os.CreateTemp(dir, ".hostkey-*.tmp") // mode 0600
	if err != nil {
		return nil, fmt.Errorf("hostkeys: creating host key: %w", err)
	}
	tmpName := tmp.Name()
	defer os.Remove(tmpName)
	if err := writeAndSync(tmp, data); err != nil {
		return nil, fmt.Errorf("hostkeys: creating host key %s: %w", path, err)
	}
	err = os.Link(tmpName, path)
	if errors.Is(err, fs.ErrExist) {
		return nil, err
	}
	if err != nil {
		// No hard links here (some FUSE and network file systems): create
		// the file exclusively instead. A concurrent loser might then read
		// it while it is being written, a window the link avoids.
		f, ferr := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if ferr != nil {
			if errors.Is(ferr, fs.ErrExist) {
				return nil, ferr
			}
			return nil, fmt.Errorf("hostkeys: creating host key %s: %w", path, ferr)
		}
		if err := writeAndSync(f, data); err != nil {
			os.Remove(path)
			return nil, fmt.Errorf("hostkeys: creating host key %s: %w", path, err)
		}
	}
	syncDir(dir)
	return signer, nil
}

func writeAndSync(f *os.File, data []byte) error {
	_, err := f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// syncDir makes a new directory entry durable; best effort, as not every
// platform can fsync a directory.
func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		d.Close()
	}
}
