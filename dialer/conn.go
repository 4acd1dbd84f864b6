package dialer

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
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

func newConn(d *Dialer, sc *sshConn, ch ssh.Channel, reqs <-chan *ssh.Request, session bool) *conn {
	transport := TransportStreamLocal
	if session {
		transport = TransportDialStdio
	}
	c := &conn{
		d: d, sc: sc, ch: ch, session: session,
		raddr:      &Addr{URL: d.url, Transport: transport},
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
	d.wg.Add(4)
	go c.readLoop()
	go c.writeLoop()
	go c.reqLoop(reqs)
	go c.stderrLoop()
	return c
}

// --- goroutines ---

func (c *conn) readLoop() {
	defer c.d.wg.Done()
	defer close(c.readDone)
	for {
		var buf []byte
		select {
		case buf = <-c.rfree:
		case <-c.stopRead:
			c.discard()
			return
		}
		n, err := c.ch.Read(buf)
		if err != nil {
			err = c.finalReadErr(err)
		}
		select {
		case c.rch <- chunk{buf, n, err}:
		case <-c.stopRead:
			if err == nil {
				c.discard()
			}
			return
		}
		if err != nil {
			return
		}
	}
}

// discard reads and drops what the remote still sends, so it is not stuck
// on a full window and can finish.
func (c *conn) discard() {
	io.Copy(io.Discard, c.ch)
}

func (c *conn) writeLoop() {
	defer c.d.wg.Done()
	defer close(c.writeDone)
	for {
		select {
		case r := <-c.wq:
			if r.eof {
				err := c.writeErr()
				if err == nil {
					err = c.ch.CloseWrite()
				}
				r.done <- err
				continue
			}
			if c.writeErr() == nil {
				if _, err := c.ch.Write(r.buf); err != nil {
					c.setWriteErr(err)
				}
			}
			c.wfree <- r.buf[:cap(r.buf)]
		case <-c.stopWrite:
			return
		}
	}
}

func (c *conn) reqLoop(reqs <-chan *ssh.Request) {
	defer c.d.wg.Done()
	defer close(c.reqDone)
	defer c.markExited()
	for r := range reqs {
		switch r.Type {
		case "exit-status":
			if len(r.Payload) >= 4 {
				c.exitOnce.Do(func() {
					c.exitStatus = int(binary.BigEndian.Uint32(r.Payload))
					c.gotExit = true
					close(c.exited)
				})
			}
		case "exit-signal":
			var msg struct {
				Signal     string
				CoreDumped bool
				Error      string
				Lang       string
			}
			if ssh.Unmarshal(r.Payload, &msg) == nil {
				c.exitOnce.Do(func() {
					c.exitSignal = msg.Signal
					c.gotExit = true
					close(c.exited)
				})
			}
		}
		if r.WantReply {
			r.Reply(false, nil)
		}
	}
}

func (c *conn) markExited() { c.exitOnce.Do(func() { close(c.exited) }) }

func (c *conn) stderrLoop() {
	defer c.d.wg.Done()
	defer close(c.errDone)
	io.Copy(&c.stderr, c.ch.Stderr())
}

// finalReadErr turns the channel's read error into what Read returns: io.EOF
// for a clean end, an error quoting stderr for a failed remote command, or
// ErrConnectionLost when the SSH connection died (x/crypto reports a dead
// connection to a channel reader as a plain io.EOF).
func (c *conn) finalReadErr(err error) error {
	if err != io.EOF {
		return c.opErr(OpRead, err)
	}
	if lost := c.sc.lostErr(); lost != nil {
		return c.opErr(OpRead, lost)
	}
	if !c.session {
		return io.EOF
	}
	t := time.NewTimer(exitWait)
	defer t.Stop()
	select {
	case <-c.exited:
	case <-t.C:
	case <-c.closed:
	}
	if lost := c.sc.lostErr(); lost != nil && !c.gotExitNow() {
		return c.opErr(OpRead, lost)
	}
	if cmdErr := c.commandErr(); cmdErr != nil {
		return cmdErr
	}
	return io.EOF
}

func (c *conn) gotExitNow() bool {
	select {
	case <-c.exited:
		return c.gotExit
	default:
		return false
	}
}

// commandErr returns the error for a remote command that exited with a
// failure, or nil.
func (c *conn) commandErr() error {
	if !c.gotExitNow() || (c.exitStatus == 0 && c.exitSignal == "") {
		return nil
	}
	// The stderr bytes came before the exit status, but the goroutine that
	// copies them may lag; the channel's end-of-file follows the exit
	// status closely.
	t := time.NewTimer(time.Second)
	select {
	case <-c.errDone:
	case <-t.C:
	}
	t.Stop()
	stderr := c.stderr.String()
	e := &Error{Op: OpCommand, URL: c.d.url, ExitStatus: c.exitStatus, Stderr: stderr, scrub: c.d.scrub}
	if c.exitSignal != "" {
		e.Err = fmt.Errorf("%s was killed by signal %s", c.d.dest.command, c.exitSignal)
	} else {
		e.Err = fmt.Errorf("%s exited with status %d", c.d.dest.command, c.exitStatus)
	}
	e.Hint = commandHint(c.exitStatus, stderr, c.d.remoteDocker, c.d.dest.socket)
	return e
}

// commandHint says what to do about a failed remote command.
func commandHint(status int, stderr, docker, socket string) string {
	low := strings.ToLower(stderr)
	switch {
	case status == 127 || strings.Contains(low, "command not found") || strings.Contains(low, "not found") && strings.Contains(low, docker):
		return fmt.Sprintf("the remote shell did not find %q on the PATH of a non-interactive SSH session (it often lacks what a login shell adds); set Config.RemoteDocker to its full path (e.g. /usr/bin/docker, see `command -v docker` on the server), or fix PATH for SSH sessions on the server", docker)
	case status == 126:
		return fmt.Sprintf("the remote shell found %q but may not execute it; check its permissions on the server", docker)
	case strings.Contains(low, "permission denied") && strings.Contains(low, "sock"):
		return "the SSH user may not use the Docker socket; on the server add the user to the docker group (and log in again), or use a user that may"
	case strings.Contains(low, "cannot connect to the docker daemon") || strings.Contains(low, "no such file or directory") && strings.Contains(low, "sock"):
		if socket != "" {
			return fmt.Sprintf("no Docker daemon answers at %s on the server: is dockerd running, and is the socket path in the URL right?", socket)
		}
		return "no Docker daemon answers at the remote CLI's default socket: is dockerd running? For rootless Docker or another socket, put its path in the URL: ssh://user@host/run/user/UID/docker.sock"
	case strings.Contains(low, "unknown command") || strings.Contains(low, "dial-stdio"):
		return "the remote docker CLI does not know `system dial-stdio` (it needs Docker 18.09 or later); upgrade it, or set Config.RemoteDocker to a newer one"
	}
	return "see the remote stderr"
}

// --- net.Conn ---

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

// Close closes the conn at once: pending and later Reads and Writes fail.
// In the background the bytes already accepted are sent, then EOF; the
// remote command gets Config.CloseGrace to exit, then SIGTERM, then
// SIGKILL, and the channel is closed. Close never blocks on the network.
func (c *conn) Close() error {
	c.closeOnce.Do(func() {
		close(c.closed)
		c.stopOnce.Do(func() { close(c.stopRead) })
		c.d.wg.Add(1)
		go c.shutdown()
	})
	return nil
}

// shutdown ends the channel after Close, bounded in time.
func (c *conn) shutdown() {
	defer c.d.wg.Done()
	defer close(c.shutDone)
	c.rdl.stop()
	c.wdl.stop()

	c.wmu.Lock()
	if !c.eofQueued {
		c.eofQueued = true
		c.wq <- wreq{eof: true, done: make(chan error, 1)}
	}
	c.wmu.Unlock()

	grace := time.NewTimer(c.d.closeGrace)
	defer grace.Stop()
	// The remote is done when its command exits (sessions) or it has
	// closed its side (streamlocal: the daemon closes after our EOF).
	remoteDone := c.exited
	if !c.session {
		remoteDone = c.readDone
	}
	select {
	case <-remoteDone:
	case <-c.sc.done:
	case <-grace.C:
		if c.session {
			c.signalUntilExit()
		}
	}
	c.ch.Close()
	close(c.stopWrite)
	// The loops end when the server confirms the close, or when the SSH
	// connection ends (Dialer.Close ends it after a bounded wait).
	<-c.readDone
	<-c.writeDone
	<-c.reqDone
	<-c.errDone
	c.d.release(c)
	c.d.log.Debug("dialer: conn closed", "url", c.d.url, "transport", c.raddr.Transport, "exit_status", c.exitStatus, "exit_signal", c.exitSignal)
}

// signalUntilExit sends SIGTERM, then SIGKILL, a second apart, until the
// remote command exits. sshd (since OpenSSH 7.9) signals the session's
// process group; without it the process lingers until its next write.
func (c *conn) signalUntilExit() {
	for _, sig := range []string{"TERM", "KILL"} {
		c.d.log.Debug("dialer: remote command did not exit after EOF; signalling it", "url", c.d.url, "signal", sig)
		c.ch.SendRequest("signal", false, ssh.Marshal(struct{ Signal string }{sig}))
		t := time.NewTimer(time.Second)
		select {
		case <-c.exited:
			t.Stop()
			return
		case <-c.sc.done:
			t.Stop()
			return
		case <-t.C:
		}
	}
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

// --- errors ---

func (c *conn) writeErr() error {
	c.werrMu.Lock()
	defer c.werrMu.Unlock()
	return c.werr
}

func (c *conn) setWriteErr(err error) {
	c.werrMu.Lock()
	defer c.werrMu.Unlock()
	if c.werr == nil {
		c.werr = err
	}
}

// writeFailure turns a failed channel write into the most useful error: the
// lost connection, the failed remote command, or the raw error.
func (c *conn) writeFailure(err error) error {
	if lost := c.sc.lostErr(); lost != nil {
		return c.opErr(OpWrite, lost)
	}
	if c.session {
		t := time.NewTimer(exitWait)
		select {
		case <-c.exited:
		case <-t.C:
		case <-c.closed:
		}
		t.Stop()
		if cmdErr := c.commandErr(); cmdErr != nil {
			return cmdErr
		}
	}
	return c.opErr(OpWrite, err)
}

func (c *conn) opErr(op Op, err error) error {
	e := &Error{Op: op, URL: c.d.url, Err: err, scrub: c.d.scrub}
	if err == os.ErrDeadlineExceeded {
		return &TimeoutError{e}
	}
	if errors.Is(err, ErrConnectionLost) {
		e.Hint = "in-flight streams on that connection failed; the next DialContext reconnects"
	}
	return e
}
