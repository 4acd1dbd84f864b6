package dialer

import (
	"strconv"
	"time"

	"golang.org/x/crypto/ssh"
)

// closeSignalTime is how long a closed conn's shutdown may take after
// Config.CloseGrace: SIGTERM, SIGKILL a second later, the channel closed a
// second after that, and half a second for the server to confirm. Dialer.Close
// waits that long at most before it closes the SSH connections.
const closeSignalTime = 2*time.Second + 500*time.Millisecond

// Close closes the conn at once: pending and later Reads and Writes fail.
// In the background the bytes already accepted are sent, then EOF; the
// remote command gets Config.CloseGrace to exit, then SIGTERM, then
// SIGKILL a second later, and a second after that the channel is closed
// regardless. Close never blocks on the network.
func (c *conn) Close() error {
	c.closeOnce.Do(func() {
		close(c.closed)
		c.stopOnce.Do(func() { close(c.stopRead) })
		// Not under Dialer.mu, and yet before Dialer.Close can wait:
		// a conn whose Close has not run is in Dialer.live, and
		// Dialer.Close calls Close on each of those, which waits for
		// this Once.
		c.d.gor.start(c.shutdown)
	})
	return nil
}

// shutdown ends the channel after Close, bounded in time.
func (c *conn) shutdown() {
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
	ended := "the remote side finished"
	var signals []string
	select {
	case <-remoteDone:
	case <-c.sc.done:
		ended = "the SSH connection ended"
	case <-grace.C:
		ended = "Config.CloseGrace ran out"
		if c.session {
			signals = c.signalUntilExit()
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
	attrs := []any{"url", c.d.url, "conn", c.sc.id, "transport", c.raddr.Transport, "ended", ended}
	if c.session {
		attrs = append(attrs, "command", c.d.dest.command, "exit", c.exitDescription())
		if len(signals) > 0 {
			attrs = append(attrs, "signals_sent", signals)
		}
	} else {
		attrs = append(attrs, "socket", c.d.dest.socket)
	}
	c.d.log.Debug("dialer: conn closed", attrs...)
}

// exitDescription says how the remote command ended, once reqLoop is done.
func (c *conn) exitDescription() string {
	switch {
	case !c.gotExitNow():
		return "none reported (the channel closed first)"
	case c.exitSignal != "":
		return "killed by signal " + c.exitSignal
	}
	return "status " + strconv.Itoa(c.exitStatus)
}

// signalUntilExit sends SIGTERM, then SIGKILL, a second apart, until the
// remote command exits, and returns the signals it sent. sshd (since
// OpenSSH 7.9) signals the session's process group; without it the process
// lingers until its next write.
func (c *conn) signalUntilExit() []string {
	var sent []string
	for _, sig := range []string{"TERM", "KILL"} {
		c.d.log.Debug("dialer: remote command did not exit after EOF; signalling it", "url", c.d.url, "conn", c.sc.id, "signal", sig)
		c.ch.SendRequest("signal", false, ssh.Marshal(struct{ Signal string }{sig}))
		sent = append(sent, sig)
		t := time.NewTimer(time.Second)
		select {
		case <-c.exited:
			t.Stop()
			return sent
		case <-c.sc.done:
			t.Stop()
			return sent
		case <-t.C:
		}
	}
	return sent
}
