package dialer

import (
	"errors"
	"net"
	"os"
	"sync"
	"time"

	"golang.org/x/crypto/ssh"
)

// chunkSize is the size of the read and write buffers, one SSH packet's
// worth (OpenSSH and x/crypto send at most 32 KiB of data per packet).
const chunkSize = 32 << 10

// exitWait bounds how long a read that hit end-of-file waits for the
// remote command's exit status, to tell a clean end from a failed command.
const exitWait = 2 * time.Second

// Addr is the remote address of a conn: the destination's redacted URL.
type Addr struct {
	// URL is the redacted ssh:// URL of the destination.
	URL string
	// Transport is how the conn reaches the daemon: TransportDialStdio,
	// or TransportStreamLocal when the server opened the streamlocal
	// channel (a refused one falls back to dial-stdio).
	Transport Transport
}

// Network returns "ssh".
func (a *Addr) Network() string { return "ssh" }

// String returns the redacted URL.
func (a *Addr) String() string { return a.URL }

// conn is a net.Conn over one SSH channel: a session running
// "docker system dial-stdio", or a direct-streamlocal channel.
//
// Reads come from a goroutine that reads the channel into one of two
// buffers, so a Read can give up at its deadline without losing data.
// Writes are copied into one of two buffers and sent by another goroutine,
// so a Write can give up at its deadline without the caller's slice being
// used afterwards (bytes accepted into a buffer count as written, as bytes
// in a kernel socket buffer do).
type conn struct {
	d       *Dialer
	sc      *sshConn
	ch      ssh.Channel
	session bool // dial-stdio session; false for streamlocal
	raddr   *Addr

	closed    chan struct{} // closed by Close
	closeOnce sync.Once
	stopRead  chan struct{} // closed by CloseRead or Close: the reader discards
	stopOnce  sync.Once
	shutDone  chan struct{} // closed when the background shutdown finished

	// Read side.
	rdl      deadline
	rmu      sync.Mutex // serializes Read; guards cur, curBuf, rerr
	rch      chan chunk
	rfree    chan []byte
	cur      []byte
	curBuf   []byte
	rerr     error
	readDone chan struct{} // closed when readLoop returned

	// Write side.
	wdl       deadline
	wmu       sync.Mutex // serializes Write and CloseWrite; guards eofQueued
	wq        chan wreq
	wfree     chan []byte
	eofQueued bool
	werrMu    sync.Mutex // guards werr
	werr      error
	stopWrite chan struct{} // closed by shutdown: writeLoop returns
	writeDone chan struct{}

	// Remote command (sessions only).
	exitOnce   sync.Once
	exited     chan struct{} // closed once the exit status or signal is known, or the channel ended
	exitStatus int           // valid after exited; -1 unknown
	exitSignal string        // valid after exited
	gotExit    bool          // valid after exited
	reqDone    chan struct{}
	stderr     tailBuffer
	errDone    chan struct{}
}

type chunk struct {
	buf []byte
	n   int
	err error
}

type wreq struct {
	buf  []byte
	eof  bool
	done chan error // for eof
}

// newConn wraps a fresh channel and starts its goroutines. d.mu is held
// and the Dialer is not closed.
func newConn(d *Dialer, sc *sshConn, ch ssh.Channel, reqs <-chan *ssh.Request, session bool) *conn {
	c := &conn{
		d: d, sc: sc, ch: ch, session: session,
		raddr:      &Addr{URL: d.url, Transport: transportOf(session)},
		closed:     make(chan struct{}),
		stopRead:   make(chan struct{}),
		shutDone:   make(chan struct{}),
		rdl:        newDeadline(),
		rch:        make(chan chunk, 1),
		rfree:      make(chan []byte, 2),
		readDone:   make(chan struct{}),
		wdl:        newDeadline(),
		wq:         make(chan wreq, 3),
		wfree:      make(chan []byte, 2),
		stopWrite:  make(chan struct{}),
		writeDone:  make(chan struct{}),
		exited:     make(chan struct{}),
		exitStatus: -1,
		reqDone:    make(chan struct{}),
		errDone:    make(chan struct{}),
	}
	c.rfree <- make([]byte, chunkSize)
	c.rfree <- make([]byte, chunkSize)
	// Write buffers are allocated on first use: many conns only read.
	c.wfree <- nil
	c.wfree <- nil
	// Under d.mu, the Dialer not closed: see goroutines.add.
	d.gor.start(c.readLoop)
	d.gor.start(c.writeLoop)
	d.gor.start(func() { c.reqLoop(reqs) })
	d.gor.start(c.stderrLoop)
	return c
}

func (c *conn) Read(p []byte) (int, error) {
	c.rmu.Lock()
	defer c.rmu.Unlock()
	if isClosed(c.closed) {
		return 0, c.opErr(OpRead, net.ErrClosed)
	}
	if isClosed(c.stopRead) {
		return 0, c.opErr(OpRead, errors.New("read side closed by CloseRead"))
	}
	if isClosed(c.rdl.wait()) {
		return 0, c.opErr(OpRead, os.ErrDeadlineExceeded)
	}
	if len(c.cur) == 0 {
		if c.rerr != nil {
			return 0, c.rerr
		}
		if len(p) == 0 {
			return 0, nil
		}
		select {
		case ck := <-c.rch:
			if ck.n > 0 {
				c.cur, c.curBuf = ck.buf[:ck.n], ck.buf
			} else {
				c.rfree <- ck.buf
			}
			if ck.err != nil {
				c.rerr = ck.err
				if ck.n == 0 {
					return 0, ck.err
				}
			}
		case <-c.rdl.wait():
			return 0, c.opErr(OpRead, os.ErrDeadlineExceeded)
		case <-c.closed:
			return 0, c.opErr(OpRead, net.ErrClosed)
		case <-c.stopRead:
			return 0, c.opErr(OpRead, errors.New("read side closed by CloseRead"))
		}
	}
	n := copy(p, c.cur)
	c.cur = c.cur[n:]
	if len(c.cur) == 0 && c.curBuf != nil {
		c.rfree <- c.curBuf
		c.curBuf = nil
	}
	return n, nil
}

func (c *conn) Write(p []byte) (int, error) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if err := c.writeCheck(); err != nil {
		return 0, err
	}
	n := 0
	for len(p) > 0 {
		var buf []byte
		select {
		case buf = <-c.wfree:
		case <-c.wdl.wait():
			return n, c.opErr(OpWrite, os.ErrDeadlineExceeded)
		case <-c.closed:
			return n, c.opErr(OpWrite, net.ErrClosed)
		}
		if err := c.writeErr(); err != nil {
			c.wfree <- buf
			return n, c.writeFailure(err)
		}
		if buf == nil {
			buf = make([]byte, chunkSize)
		}
		k := copy(buf, p)
		c.wq <- wreq{buf: buf[:k]}
		p = p[k:]
		n += k
	}
	return n, nil
}

// writeCheck is the state check that comes before any byte is accepted.
func (c *conn) writeCheck() error {
	switch {
	case isClosed(c.closed):
		return c.opErr(OpWrite, net.ErrClosed)
	case c.eofQueued:
		return c.opErr(OpWrite, errors.New("write after CloseWrite"))
	case isClosed(c.wdl.wait()):
		return c.opErr(OpWrite, os.ErrDeadlineExceeded)
	}
	if err := c.writeErr(); err != nil {
		return c.writeFailure(err)
	}
	if lost := c.sc.lostErr(); lost != nil {
		return c.opErr(OpWrite, lost)
	}
	return nil
}

// CloseWrite sends end-of-file to the remote side after the bytes written
// so far, and keeps the read side open: the remote command sees EOF on its
// stdin (dial-stdio then half-closes the daemon socket). It returns once the
// EOF is sent, or at the write deadline.
func (c *conn) CloseWrite() error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if isClosed(c.closed) {
		return c.opErr(OpWrite, net.ErrClosed)
	}
	if c.eofQueued {
		return nil
	}
	c.eofQueued = true
	done := make(chan error, 1)
	c.wq <- wreq{eof: true, done: done}
	select {
	case err := <-done:
		if err != nil {
			return c.writeFailure(err)
		}
		return nil
	case <-c.wdl.wait():
		return c.opErr(OpWrite, os.ErrDeadlineExceeded)
	case <-c.closed:
		return c.opErr(OpWrite, net.ErrClosed)
	}
}

// CloseRead stops reading: later Reads fail, and what the remote still
// sends is read and dropped.
func (c *conn) CloseRead() error {
	c.stopOnce.Do(func() { close(c.stopRead) })
	return nil
}

func (c *conn) LocalAddr() net.Addr  { return c.sc.laddr }
func (c *conn) RemoteAddr() net.Addr { return c.raddr }

func (c *conn) SetDeadline(t time.Time) error {
	c.rdl.set(t)
	c.wdl.set(t)
	return nil
}

func (c *conn) SetReadDeadline(t time.Time) error  { c.rdl.set(t); return nil }
func (c *conn) SetWriteDeadline(t time.Time) error { c.wdl.set(t); return nil }
