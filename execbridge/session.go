package execbridge

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"path"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dockssh/dockssh/envsanitize"
	"golang.org/x/crypto/ssh"
)

// maxQueuedSignals bounds the signals waiting for delivery; a client that
// sends more than this while the engine is slow loses the excess (each is
// logged), rather than growing the server's memory.
const maxQueuedSignals = 16

// session serves one "session" channel (RFC 4254, section 6).
type session struct {
	c      *connState
	ch     ssh.Channel
	logger *slog.Logger

	// ctx ends when the channel closes or the connection ends: the
	// client is gone and the process must not outlive it.
	ctx    context.Context
	cancel context.CancelFunc

	// run owns the goroutine that runs the process and every goroutine
	// it starts (pumps, control).
	run sync.WaitGroup

	// env is touched only by the request loop until the process
	// starts, then only read by the runner.
	env envsanitize.Env

	mu         sync.Mutex // guards the fields below
	pty        *ptyRequest
	rows, cols uint32 // latest terminal size
	sizeSent   bool   // rows, cols reached the process
	started    bool   // shell, exec or subsystem accepted
	proc       Process
	rec        *recorder // nil unless recording
	signals    []string
	wake       chan struct{} // capacity 1: control work is pending

	bytesIn, bytesOut atomic.Int64
}

func newSession(c *connState, ch ssh.Channel) *session {
	s := &session{c: c, ch: ch, logger: c.logger, wake: make(chan struct{}, 1)}
	s.ctx, s.cancel = context.WithCancel(c.ctx)
	s.env.Policy = c.b.env
	return s
}

// serve handles the channel's requests until the client closes it or the
// connection ends, then ends the process and waits for it.
func (s *session) serve(reqs <-chan *ssh.Request) {
	for req := range reqs {
		s.handle(req)
	}
	s.cancel()
	s.run.Wait()
	s.ch.Close()
}

// handle answers one request. A panic is contained: the request is
// answered with a failure and the session goes on.
func (s *session) handle(req *ssh.Request) {
	defer func() {
		if r := recover(); r != nil {
			s.logger.Error("execbridge: panic while handling a request", "type", req.Type, "panic", fmt.Sprint(r), "stack", string(debug.Stack()))
			req.Reply(false, nil)
		}
	}()
	switch req.Type {
	case "pty-req":
		req.Reply(s.ptyReq(req.Payload), nil)
	case "env":
		req.Reply(s.envReq(req.Payload), nil)
	case "shell", "exec", "subsystem":
		s.startReq(req)
	case "window-change":
		s.windowChange(req.Payload)
	case "signal":
		s.signal(req.Payload)
	case "x11-req", "auth-agent-req@openssh.com":
		s.logger.Info("execbridge: refused forwarding request", "type", req.Type)
		req.Reply(false, nil)
	default:
		// "break" (RFC 4335: the engine cannot send a break to a
		// terminal), keepalive@openssh.com and every unknown request:
		// RFC 4254 section 5.4 asks for a failure reply.
		req.Reply(false, nil)
	}
}

func (s *session) ptyReq(payload []byte) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.started || s.pty != nil {
		return false
	}
	if !s.c.grant.PTY {
		s.logger.Info("execbridge: pty refused: the login is not permitted a terminal (no-pty or restrict)")
		return false
	}
	p, err := parsePTY(payload)
	if err != nil {
		s.logger.Info("execbridge: pty refused", "err", err)
		return false
	}
	s.pty = &p
	s.rows, s.cols = p.Rows, p.Cols
	s.env.Policy.PTY = true
	if p.Term != "" {
		if err := s.env.Set("TERM", p.Term); err != nil {
			s.logger.Info("execbridge: TERM not passed", "reason", err)
		}
	}
	return true
}

func (s *session) envReq(payload []byte) bool {
	r, err := parseEnv(payload)
	if err != nil {
		return false
	}
	s.mu.Lock()
	started := s.started
	s.mu.Unlock()
	if started {
		return false
	}
	if err := s.env.Set(r.Name, r.Value); err != nil {
		// The decision names the variable and the rule, never the value.
		s.logger.Info("execbridge: env request refused", "reason", err)
		return false
	}
	return true
}

func (s *session) windowChange(payload []byte) {
	w, err := parseWindowChange(payload)
	if err != nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.pty == nil {
		return
	}
	s.rows, s.cols, s.sizeSent = w.Rows, w.Cols, false
	s.poke()
}

func (s *session) signal(payload []byte) {
	name, err := parseSignal(payload)
	if err != nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.started {
		return
	}
	if len(s.signals) >= maxQueuedSignals {
		s.logger.Warn("execbridge: signal dropped: too many waiting", "signal", name)
		return
	}
	s.signals = append(s.signals, name)
	s.poke()
}

// poke tells the control goroutine that work is pending. Call with s.mu held.
func (s *session) poke() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

func (s *session) startReq(req *ssh.Request) {
	var command string
	switch req.Type {
	case "exec":
		c, err := parseExec(req.Payload)
		if err != nil {
			s.logger.Info("execbridge: exec refused", "err", err)
			req.Reply(false, nil)
			return
		}
		command = c
	case "subsystem":
		name, err := parseExec(req.Payload)
		_, served := s.c.b.cfg.Backend.(SubsystemBackend)
		if err != nil || name != "sftp" || !served {
			s.logger.Info("execbridge: subsystem refused: not supported", "subsystem", name)
			req.Reply(false, nil)
			return
		}
		command = name
	}
	s.mu.Lock()
	if s.started {
		s.mu.Unlock()
		req.Reply(false, nil)
		return
	}
	s.started = true
	pty := s.pty
	if req.Type == "subsystem" {
		pty = nil // a byte stream for a program (sftp): no terminal, as sshd
	}
	s.mu.Unlock()
	req.Reply(true, nil)
	s.run.Go(func() { s.runProcess(req.Type, command, pty) })
}

// audit is what the session record says.
type audit struct {
	kind, command string
	target        Target
	pty           *ptyRequest
	outcome       string
	status        int
	signal        string
	start         time.Time
}

// runProcess resolves the target, starts the process, pumps the streams
// and reports the exit. It owns the process: whatever happens, the
// process is closed before runProcess returns.
func (s *session) runProcess(kind, command string, pty *ptyRequest) {
	a := audit{kind: kind, command: command, pty: pty, start: s.c.b.now(), status: -1}
	defer s.record(&a)
	defer func() {
		if r := recover(); r != nil {
			a.outcome = "panic"
			s.logger.Error("execbridge: panic in session", "panic", fmt.Sprint(r), "stack", string(debug.Stack()))
			s.ch.Close()
		}
	}()

	proc, ok := s.startProcess(kind, command, pty, &a)
	if !ok {
		return
	}
	defer proc.Close()

	var out, in io.Writer = s.ch, proc
	if rc := s.c.b.cfg.Recording; rc != nil && pty != nil {
		rec, err := newRecorder(rc, s.c.b.now, s.c.b.recordings.Add(1), s.c.login, a.target.String(), pty.Term, int(pty.Rows), int(pty.Cols))
		if err != nil {
			s.fail(&a, "session recording is unavailable", err)
			return
		}
		defer func() {
			if err := rec.Close(); err != nil {
				s.logger.Error("execbridge: recording incomplete", "err", err)
			}
		}()
		s.mu.Lock()
		s.rec = rec
		s.mu.Unlock()
		out, in = teeWriter{s.ch, rec.output}, teeWriter{proc, rec.inputEvent}
	}

	runCtx, stop := context.WithCancel(s.ctx)
	defer stop()
	s.goSafe("control", func() { s.control(runCtx, proc) })

	if pty != nil && kind == "shell" && s.c.b.cfg.Banner != "" {
		s.write(out, []byte(crlf(s.c.b.cfg.Banner)))
	}

	s.goSafe("stdin", func() {
		// Client stdin to the process; its end of file closes the
		// process's stdin, and output keeps flowing.
		n, _ := copyBuffer(in, s.ch)
		s.bytesIn.Add(n)
		proc.CloseWrite()
	})
	var outputs sync.WaitGroup
	outputs.Add(1)
	s.goSafe("stdout", func() {
		defer outputs.Done()
		s.pump(out, proc)
	})
	if pty == nil {
		outputs.Add(1)
		s.goSafe("stderr", func() {
			defer outputs.Done()
			s.pump(s.ch.Stderr(), proc.Stderr())
		})
	}
	outDone := make(chan struct{})
	s.goSafe("outputs", func() {
		outputs.Wait()
		close(outDone)
	})

	select {
	case <-outDone:
	case <-s.ctx.Done():
		a.outcome = "client gone"
		proc.Close() // ends the process and its children; unblocks the pumps
		<-outDone
		return
	}

	err := proc.Wait(s.ctx)
	var ee *ExitError
	switch {
	case err == nil:
		a.outcome, a.status = "exited", 0
	case errors.As(err, &ee):
		a.outcome, a.status, a.signal = "exited", ee.Code, ee.Signal
		if ee.TargetStopped {
			a.outcome = "target stopped"
			s.tell(&a, "container "+a.target.String()+" stopped while the session ran")
		}
	case s.ctx.Err() != nil:
		a.outcome = "client gone"
		return
	default:
		a.outcome = "exit status unknown"
		s.logger.Error("execbridge: cannot learn the exit status", "target", a.target.String(), "err", err)
		// No exit-status follows, so ssh exits with 255; say why.
		s.tell(&a, "the exit status is unknown: "+userReason(err))
	}
	s.finish(a.status, a.signal)
}

// startProcess resolves the target and starts the process. On failure it
// tells the client why, on stderr, and ends the channel with status 1.
func (s *session) startProcess(kind, command string, pty *ptyRequest, a *audit) (Process, bool) {
	b := s.c.b
	ctx, cancel := context.WithTimeout(s.ctx, b.cfg.StartTimeout)
	defer cancel()

	force := s.c.grant.ForceCommand
	sftp := kind == "subsystem" && (force == "" || isSFTPServer(force))
	legacySCP := kind == "exec" && force == "" && isLegacySCP(command)
	target, shell, reason, err := b.locate(ctx, Request{Login: s.c.login, Route: s.c.route, Grant: s.c.grant, Remote: s.c.sc.RemoteAddr()}, !sftp && !legacySCP)
	a.target = target
	if err == nil && legacySCP {
		// scp first: its absence is the clearer message when the
		// container has neither (FROM scratch).
		if reason, err = s.checkSCP(ctx, target); err == nil {
			shell, reason, err = b.shell(ctx, target)
		}
	}
	if err != nil {
		s.fail(a, reason, err)
		return nil, false
	}

	spec := ProcessSpec{Target: target, User: b.cfg.User, Dir: b.cfg.Dir, Env: s.environ(command)}
	switch {
	case sftp:
		// SFTP is served by the target (its sftp-server, or the
		// backend's helper), as the session user, so the kernel in the
		// container enforces that user's permissions.
		extra, err := sftpForcedOptions(force)
		if err != nil {
			s.fail(a, err.Error(), err)
			return nil, false
		}
		argv, err := b.cfg.Backend.(SubsystemBackend).Subsystem(ctx, target, command, b.cfg.User)
		if err != nil {
			s.fail(a, "cannot serve "+command+" in container "+target.String()+": "+userReason(err), err)
			return nil, false
		}
		spec.Argv = append(argv, extra...)
	case force != "":
		// The login may run only this command (authorized_keys
		// command= or a certificate's force-command), whatever the
		// client asked; sshd runs it through the shell the same way,
		// also for a subsystem request.
		spec.Argv = []string{shell, "-c", force}
	case kind == "exec":
		spec.Argv = []string{shell, "-c", command}
	default:
		spec.Argv = []string{shell, "-l"}
	}
	a.command = strings.Join(spec.Argv, " ")
	if pty != nil {
		s.mu.Lock()
		spec.TTY, spec.Rows, spec.Cols = true, int(s.rows), int(s.cols)
		s.sizeSent = true
		s.mu.Unlock()
	}

	proc, err := b.cfg.Backend.Start(ctx, spec)
	if err != nil {
		s.fail(a, startFailure("the session", target, err), err)
		return nil, false
	}
	s.mu.Lock()
	s.proc = proc
	if !s.sizeSent {
		s.poke() // the window changed while the process was starting
	}
	s.mu.Unlock()
	return proc, true
}

// environ is the environment added to the container's for the process:
// the accepted "env" requests, the login's environment= options through
// the same policy, and what sshd sets for a session.
func (s *session) environ(command string) []string {
	for _, kv := range s.c.grant.Environment {
		name, value, _ := strings.Cut(kv, "=")
		if err := s.env.Set(name, value); err != nil {
			s.logger.Info("execbridge: environment option of the login refused", "reason", err)
		}
	}
	env := s.env.Environ()
	if ra, ok := s.c.sc.RemoteAddr().(*net.TCPAddr); ok {
		if la, ok := s.c.sc.LocalAddr().(*net.TCPAddr); ok {
			rip, lip := ra.IP.String(), la.IP.String()
			env = append(env,
				"SSH_CLIENT="+rip+" "+strconv.Itoa(ra.Port)+" "+strconv.Itoa(la.Port),
				"SSH_CONNECTION="+rip+" "+strconv.Itoa(ra.Port)+" "+lip+" "+strconv.Itoa(la.Port))
		}
	}
	if s.c.grant.ForceCommand != "" && command != "" {
		// For a subsystem, sshd sets the subsystem's name here.
		env = append(env, "SSH_ORIGINAL_COMMAND="+command)
	}
	return env
}

// control delivers window changes and signals to the running process, in
// order, off the request loop: an engine call can take a while, and a
// blocked request loop would stall the whole connection.
func (s *session) control(ctx context.Context, proc Process) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-s.wake:
		}
		s.mu.Lock()
		resize := s.pty != nil && !s.sizeSent
		rows, cols := s.rows, s.cols
		s.sizeSent = true
		sigs := s.signals
		s.signals = nil
		rec := s.rec
		s.mu.Unlock()
		if resize && rec != nil {
			rec.resize(int(rows), int(cols))
		}
		if resize {
			if err := proc.Resize(ctx, int(rows), int(cols)); err != nil && ctx.Err() == nil {
				s.logger.Debug("execbridge: resize failed", "rows", rows, "cols", cols, "err", err)
			}
		}
		for _, sig := range sigs {
			if err := proc.Signal(ctx, sig); err != nil && ctx.Err() == nil {
				s.logger.Info("execbridge: signal not delivered", "signal", sig, "err", err)
			}
		}
	}
}

// goSafe runs fn in a goroutine owned by s.run. A panic there is
// contained: it is logged and ends this session, never the server.
func (s *session) goSafe(name string, fn func()) {
	s.run.Go(func() {
		defer func() {
			if r := recover(); r != nil {
				s.logger.Error("execbridge: panic in session", "in", name, "panic", fmt.Sprint(r), "stack", string(debug.Stack()))
				s.cancel()
				s.ch.Close()
			}
		}()
		fn()
	})
}

// pump copies the process's output to the client, counting it.
func (s *session) pump(dst io.Writer, src io.Reader) {
	n, _ := copyBuffer(dst, src)
	s.bytesOut.Add(n)
}

func (s *session) write(w io.Writer, p []byte) {
	n, _ := w.Write(p)
	s.bytesOut.Add(int64(n))
}

// finish reports the exit and ends the channel: the exit status, then end
// of output, then the close, the order in which OpenSSH's sshd usually
// sends them (it reports the status when the child exits, then drains).
// The other order (end of output first) makes OpenSSH's ControlMaster lose
// the status of a short command now and then: about 1 in 100 mux clients
// exited 255 with no message (measured with 5 at a time).
func (s *session) finish(status int, signal string) {
	if signal != "" {
		s.ch.SendRequest("exit-signal", false, ssh.Marshal(exitSignal{Signal: signal}))
	} else if status >= 0 {
		s.ch.SendRequest("exit-status", false, ssh.Marshal(exitStatus{Status: uint32(status)}))
	}
	s.ch.CloseWrite()
	s.ch.Close()
}

// fail tells the client why the session cannot run (one line on stderr)
// and ends it with exit status 1; the log gets the detail.
func (s *session) fail(a *audit, reason string, err error) {
	a.outcome, a.status = "refused", 1
	s.logger.Warn("execbridge: session not started", "reason", reason, "err", err)
	s.tell(a, reason)
	s.finish(1, "")
}

// tell writes one line for the user on the session's stderr.
func (s *session) tell(a *audit, msg string) {
	line := "dockssh: " + msg + "\n"
	if a.pty != nil {
		line = crlf(line)
	}
	s.write(s.ch.Stderr(), []byte(line))
}

// record writes the session's audit record.
func (s *session) record(a *audit) {
	attrs := []any{
		"kind", a.kind,
		"target", a.target.String(),
		"container_id", a.target.ID,
		"command", a.command,
		"pty", a.pty != nil,
		"outcome", a.outcome,
		"bytes_in", s.bytesIn.Load(),
		"bytes_out", s.bytesOut.Load(),
		"duration", s.c.b.now().Sub(a.start),
	}
	if a.pty != nil {
		attrs = append(attrs, "term", a.pty.Term)
	}
	if a.status >= 0 {
		attrs = append(attrs, "exit_status", a.status)
	}
	if a.signal != "" {
		attrs = append(attrs, "exit_signal", a.signal)
	}
	s.logger.Info("execbridge: session", attrs...)
}

// crlf turns lone "\n" into "\r\n", for text written to a terminal in raw
// mode.
func crlf(s string) string {
	return strings.ReplaceAll(strings.ReplaceAll(s, "\r\n", "\n"), "\n", "\r\n")
}

// copyBuffer is io.Copy with a buffer of the SSH channel's packet size,
// reporting the bytes written.
func copyBuffer(dst io.Writer, src io.Reader) (int64, error) {
	buf := make([]byte, 32<<10)
	return io.CopyBuffer(struct{ io.Writer }{dst}, struct{ io.Reader }{src}, buf)
}

// sftpForcedOptions returns the options of a forced SFTP server command
// that the served SFTP server must get too: -R (read-only), which both
// OpenSSH's sftp-server and the helper take. A forced command that limits
// requests (-p, -P) or the umask (-u) is refused rather than served
// without its limits; logging options (-e, -f, -l) and a start directory
// (-d) do not restrict anything and are ignored.
func sftpForcedOptions(force string) ([]string, error) {
	fields := strings.Fields(force)
	if len(fields) < 2 {
		return nil, nil
	}
	var extra []string
	for _, f := range fields[1:] {
		switch {
		case f == "-R":
			extra = append(extra, "-R")
		case strings.HasPrefix(f, "-p"), strings.HasPrefix(f, "-P"), strings.HasPrefix(f, "-u"):
			return nil, fmt.Errorf("the forced SFTP command limits requests or the umask (%s), which this server cannot enforce", f)
		}
	}
	return extra, nil
}

// isLegacySCP reports whether command is the remote end of legacy scp
// ("scp -t ..." or "scp -f ...", what `scp -O` runs): the program must
// exist in the container.
func isLegacySCP(command string) bool {
	fields := strings.Fields(command)
	if len(fields) < 2 || path.Base(fields[0]) != "scp" {
		return false
	}
	for _, f := range fields[1:] {
		if f == "--" || !strings.HasPrefix(f, "-") {
			break
		}
		if strings.ContainsAny(f[1:], "tf") {
			return true
		}
	}
	return false
}

// programFinder is the part of a Backend that can tell whether a program
// exists in a target (DockerBackend.LookPath).
type programFinder interface {
	LookPath(ctx context.Context, target Target, name string) (string, error)
}

// checkSCP tells a user of legacy scp (scp -O) that the container lacks
// scp, instead of leaving them with "scp: not found" from a shell, or with
// nothing at all.
func (s *session) checkSCP(ctx context.Context, target Target) (reason string, err error) {
	pf, ok := s.c.b.cfg.Backend.(programFinder)
	if !ok {
		return "", nil
	}
	if _, err := pf.LookPath(ctx, target, "scp"); errors.Is(err, ErrProgramNotFound) {
		return "container " + target.String() + " has no scp, which scp -O (the legacy protocol) runs there; scp without -O speaks SFTP and works", err
	}
	return "", nil
}

// isSFTPServer reports whether a forced command is the SFTP server, which
// sshd then runs as the "sftp" subsystem: "internal-sftp", or a path to
// sftp-server with or without options.
func isSFTPServer(command string) bool {
	prog, _, _ := strings.Cut(strings.TrimSpace(command), " ")
	return prog == "internal-sftp" || path.Base(prog) == "sftp-server"
}

// userReason is the part of a backend error a user may see.
func userReason(err error) string {
	var se *TargetError
	if errors.As(err, &se) {
		return se.Reason
	}
	return "the engine did not answer"
}

// startFailure is what the user is told when what could not start in t:
// the reason of a *TargetError (a Fleet's endpoint that did not answer, or
// its limit) follows; the detail of any other error stays in the log.
func startFailure(what string, t Target, err error) string {
	msg := "cannot start " + what + " in container " + t.String()
	var se *TargetError
	if errors.As(err, &se) {
		msg += ": " + se.Reason
	}
	return msg
}
