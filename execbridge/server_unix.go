//go:build unix

package execbridge

import (
	"errors"
	"syscall"
)

// tooManyFiles reports an accept error of a process out of file
// descriptors: it passes once connections close, so Serve retries.
func tooManyFiles(err error) bool {
	return errors.Is(err, syscall.EMFILE) || errors.Is(err, syscall.ENFILE)
}
