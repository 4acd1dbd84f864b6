package execbridge

import (
	"io"

	"github.com/moby/moby/api/pkg/stdcopy"
)

// copyMultiplexed splits the engine's multiplexed stream of a process
// without a terminal into stdout and stderr (Docker's 8-byte frame
// headers: stream, 3 zero bytes, big-endian length). It returns at the end
// of src, on an error the engine sent in the stream, or when a
// destination fails. It holds at most one frame (Docker writes at most
// 32 KiB per frame) and gives it to its writer before it reads on, so a
// writer that blocks stops the reading.
func copyMultiplexed(stdout, stderr io.Writer, src io.Reader) (int64, error) {
	return stdcopy.StdCopy(stdout, stderr, src)
}

// emptyReader is Stderr of a process with a terminal.
type emptyReader struct{}

func (emptyReader) Read([]byte) (int, error) { return 0, io.EOF }
