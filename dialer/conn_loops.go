package dialer

import (
	"encoding/binary"
	"io"

	"golang.org/x/crypto/ssh"
)

// The four goroutines of a conn, started by newConn and counted by the
// Dialer. readLoop reads the channel into the read buffers; writeLoop sends
// the write buffers; reqLoop takes the remote command's exit status or
// signal; stderrLoop keeps the tail of its stderr.

func (c *conn) readLoop() {
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
	defer close(c.errDone)
	io.Copy(&c.stderr, c.ch.Stderr())
}
