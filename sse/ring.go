package sse

// ring holds a window of a session's output: the bytes at absolute offsets
// [start, end) of everything the terminal wrote. Its storage grows on
// demand up to max bytes; past that, writing discards the oldest bytes. The
// caller decides how much may be written (see session.room), so that bytes
// not yet sent are never discarded.
type ring struct {
	buf        []byte
	base       int64 // offset that maps to buf[0]: index(off) = (off-base) mod len(buf)
	start, end int64
	max        int
}

// initialRing is the storage a session starts with: enough for a prompt
// and a screenful, so that idle sessions stay small.
const initialRing = 4 << 10

func (r *ring) len() int { return int(r.end - r.start) }

func (r *ring) index(off int64) int { return int((off - r.base) % int64(len(r.buf))) }

// write appends p, growing the storage or discarding the oldest bytes.
// len(p) must not exceed r.max.
func (r *ring) write(p []byte) {
	if len(p) == 0 {
		return
	}
	need := r.len() + len(p)
	if need > len(r.buf) && len(r.buf) < r.max {
		size := max(len(r.buf), initialRing)
		for size < need && size < r.max {
			size *= 2
		}
		nb := make([]byte, min(size, r.max))
		r.copyAt(nb, r.start)
		r.buf, r.base = nb, r.start
	}
	if over := need - len(r.buf); over > 0 {
		r.start += int64(over)
	}
	for len(p) > 0 {
		i := r.index(r.end)
		n := copy(r.buf[i:], p)
		p = p[n:]
		r.end += int64(n)
	}
}

// copyAt copies the bytes from offset off (start <= off <= end) into dst
// and returns how many it copied.
func (r *ring) copyAt(dst []byte, off int64) int {
	n := 0
	for n < len(dst) && off < r.end {
		i := r.index(off)
		c := copy(dst[n:], r.buf[i:min(len(r.buf), i+int(r.end-off))])
		n += c
		off += int64(c)
	}
	return n
}
