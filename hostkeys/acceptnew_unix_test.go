//go:build unix

package hostkeys_test

import (
	"net"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dockssh/dockssh/hostkeys"
)

// TestAcceptNewLockTimeout: a writer that holds the lock on known_hosts
// (another process, here another descriptor) makes AcceptNew wait, then
// fail after LockTimeout rather than hang the handshake; once the lock is
// free the host is added.
func TestAcceptNewLockTimeout(t *testing.T) {
	t.Parallel()
	k := keys(t)
	file := filepath.Join(t.TempDir(), "known_hosts")
	holder, err := os.OpenFile(file, os.O_RDWR|os.O_CREATE, 0o600)
	require.NoError(t, err)
	defer holder.Close()
	require.NoError(t, syscall.Flock(int(holder.Fd()), syscall.LOCK_EX))

	kh, err := hostkeys.New(&hostkeys.Config{Files: []string{file}, Policy: hostkeys.AcceptNew, LockTimeout: 200 * time.Millisecond, Logger: discardLogger()})
	require.NoError(t, err)
	cb := kh.HostKeyCallback()
	remote := &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 22}
	start := time.Now()
	err = cb("locked.example.com:22", remote, k.ed25519.PublicKey())
	assert.ErrorContains(t, err, "timed out waiting for the lock")
	assert.GreaterOrEqual(t, time.Since(start), 200*time.Millisecond)

	require.NoError(t, syscall.Flock(int(holder.Fd()), syscall.LOCK_UN))
	assert.NoError(t, cb("locked.example.com:22", remote, k.ed25519.PublicKey()))
	assert.Len(t, readLines(t, file), 1)
}
