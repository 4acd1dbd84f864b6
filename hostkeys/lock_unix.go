//go:build unix

package hostkeys

import (
	"errors"
	"os"
	"syscall"
	"time"
)

// lockFile takes an exclusive flock(2) on f, waiting at most timeout. flock
// locks belong to the open file description, so two descriptors opened
// separately exclude each other even inside one process, and the kernel
// drops the lock when a process dies while holding it.
func lockFile(f *os.File, timeout time.Duration) (unlock func(), err error) {
	fd := int(f.Fd())
	err = pollLock(func() (bool, error) {
		for {
			err := syscall.Flock(fd, syscall.LOCK_EX|syscall.LOCK_NB)
			switch {
			case err == nil:
				return false, nil
			case errors.Is(err, syscall.EINTR):
				continue
			case errors.Is(err, syscall.EWOULDBLOCK):
				return true, nil
			default:
				return false, &os.PathError{Op: "flock", Path: f.Name(), Err: err}
			}
		}
	}, timeout)
	if err != nil {
		return nil, err
	}
	return func() { _ = syscall.Flock(fd, syscall.LOCK_UN) }, nil
}
