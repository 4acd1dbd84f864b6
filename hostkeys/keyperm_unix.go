//go:build unix

package hostkeys

import "io/fs"

// checkKeyPermissions refuses a key file that group or others may read,
// write or execute, as sshd's sshkey_perm_ok does (mode & 077).
func checkKeyPermissions(path string, info fs.FileInfo) error {
	if info.Mode().Perm()&0o077 != 0 {
		return &KeyPermissionError{Path: path, Mode: info.Mode().Perm()}
	}
	return nil
}
