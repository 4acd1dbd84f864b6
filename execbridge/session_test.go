package execbridge

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dockssh/dockssh/authn"
	"golang.org/x/crypto/ssh"
)

// echo copies stdin to stdout, then writes "done" and exits with status 0.
func echo(p *fakeProc) error {
	io.Copy(p.stdoutW, p.stdinR)
	p.stdoutW.Write([]byte("done"))
	return nil
}

func TestExecExitStatus(t *testing.T) {
	e := newTestEnv(t, func(p *fakeProc) error { return &ExitError{Code: 3} }, envOpts{})
	s := e.session(t, e.dial(t, "alice"))
	err := s.Run("exit 3")
	var ee *ssh.ExitError
	if !errors.As(err, &ee) || ee.ExitStatus() != 3 {
		t.Fatalf("Run(exit 3) = %v, want exit status 3", err)
	}
	p := e.backend.next(t)
	if want := []string{"/bin/sh", "-c", "exit 3"}; !slices.Equal(p.spec.Argv, want) {
		t.Errorf("argv = %q, want %q", p.spec.Argv, want)
	}
	if p.spec.TTY {
		t.Errorf("TTY = true for an exec without pty-req")
	}
	e.logs.waitLog(t, `"exit_status":3`)
}

func TestExitSignal(t *testing.T) {
	e := newTestEnv(t, func(p *fakeProc) error { return &ExitError{Code: 143, Signal: "TERM"} }, envOpts{})
	s := e.session(t, e.dial(t, "alice"))
	err := s.Run("sleep 100")
	var ee *ssh.ExitError
	if !errors.As(err, &ee) || ee.Signal() != "TERM" {
		t.Fatalf("Run = %v, want death by TERM", err)
	}
}

func TestStdoutStderrApart(t *testing.T) {
	e := newTestEnv(t, func(p *fakeProc) error {
		p.stdoutW.Write([]byte("to stdout"))
		p.stderrW.Write([]byte("to stderr"))
		return nil
	}, envOpts{})
	s := e.session(t, e.dial(t, "alice"))
	var out, errOut bytes.Buffer
	s.Stdout, s.Stderr = &out, &errOut
	if err := s.Run("x"); err != nil {
		t.Fatal(err)
	}
	if out.String() != "to stdout" || errOut.String() != "to stderr" {
		t.Errorf("stdout %q, stderr %q; want them apart", out.String(), errOut.String())
	}
}

// TestStdinEOF checks that the client's end of file reaches the process
// and that output written after it still arrives.
func TestStdinEOF(t *testing.T) {
	e := newTestEnv(t, echo, envOpts{})
	s := e.session(t, e.dial(t, "alice"))
	s.Stdin = strings.NewReader("hello ")
	out, err := s.Output("cat")
	if err != nil {
		t.Fatal(err)
	}
	if string(out) != "hello done" {
		t.Errorf("output = %q, want %q", out, "hello done")
	}
}

// TestBinaryBothWays sends every byte value through stdin and back.
func TestBinaryBothWays(t *testing.T) {
	e := newTestEnv(t, func(p *fakeProc) error {
		_, err := io.Copy(p.stdoutW, p.stdinR)
		return err
	}, envOpts{})
	in := make([]byte, 1<<20)
	for i := range in {
		in[i] = byte(i * 7)
	}
	s := e.session(t, e.dial(t, "alice"))
	s.Stdin = bytes.NewReader(in)
	out, err := s.Output("cat")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(in, out) {
		t.Errorf("got %d bytes back, want the %d sent, unchanged", len(out), len(in))
	}
}

func TestPTYAndWindowChange(t *testing.T) {
	e := newTestEnv(t, func(p *fakeProc) error {
		<-p.killed
		return nil
	}, envOpts{config: func(c *Config) { c.Banner = "welcome\n" }})
	s := e.session(t, e.dial(t, "alice"))
	var out syncBuffer
	s.Stdout = &out
	if err := s.RequestPty("xterm-256color", 40, 120, ssh.TerminalModes{ssh.ECHO: 1}); err != nil {
		t.Fatal(err)
	}
	if err := s.Shell(); err != nil {
		t.Fatal(err)
	}
	p := e.backend.next(t)
	if !p.spec.TTY || p.spec.Rows != 40 || p.spec.Cols != 120 {
		t.Errorf("spec TTY %v %dx%d, want a 40x120 terminal", p.spec.TTY, p.spec.Rows, p.spec.Cols)
	}
	if want := []string{"/bin/sh", "-l"}; !slices.Equal(p.spec.Argv, want) {
		t.Errorf("argv = %q, want %q", p.spec.Argv, want)
	}
	if !slices.Contains(p.spec.Env, "TERM=xterm-256color") {
		t.Errorf("env %q has no TERM", p.spec.Env)
	}
	if err := s.WindowChange(50, 132); err != nil {
		t.Fatal(err)
	}
	select {
	case got := <-p.resizes:
		if got != [2]int{50, 132} {
			t.Errorf("resize %v, want [50 132]", got)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("window-change never reached the process")
	}
	out.waitLog(t, "welcome\r\n")
}

func TestBannerNotOnExec(t *testing.T) {
	e := newTestEnv(t, func(p *fakeProc) error {
		p.stdoutW.Write([]byte("out"))
		return nil
	}, envOpts{config: func(c *Config) { c.Banner = "welcome\n" }})
	s := e.session(t, e.dial(t, "alice"))
	if err := s.RequestPty("xterm", 24, 80, nil); err != nil {
		t.Fatal(err)
	}
	out, err := s.Output("ls")
	if err != nil || string(out) != "out" {
		t.Errorf("Output = %q, %v; want %q alone (no banner on commands)", out, err, "out")
	}
}

func TestSignalDelivered(t *testing.T) {
	e := newTestEnv(t, func(p *fakeProc) error {
		<-p.killed
		return nil
	}, envOpts{})
	s := e.session(t, e.dial(t, "alice"))
	if err := s.Start("sleep 100"); err != nil {
		t.Fatal(err)
	}
	p := e.backend.next(t)
	if err := s.Signal(ssh.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case got := <-p.signals:
		if got != "TERM" {
			t.Errorf("signal %q, want TERM", got)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("signal never reached the process")
	}
}

func TestEnvRequests(t *testing.T) {
	e := newTestEnv(t, nil, envOpts{})
	s := e.session(t, e.dial(t, "alice"))
	if err := s.Setenv("LANG", "C.UTF-8"); err != nil {
		t.Errorf("Setenv(LANG) = %v, want accepted", err)
	}
	if err := s.Setenv("LD_PRELOAD", "/tmp/evil.so"); err == nil {
		t.Errorf("Setenv(LD_PRELOAD) accepted")
	}
	if err := s.Run("true"); err != nil {
		t.Fatal(err)
	}
	p := e.backend.next(t)
	if !slices.Contains(p.spec.Env, "LANG=C.UTF-8") || slices.ContainsFunc(p.spec.Env, func(s string) bool { return strings.HasPrefix(s, "LD_PRELOAD") }) {
		t.Errorf("env = %q, want LANG and no LD_PRELOAD", p.spec.Env)
	}
	if !slices.ContainsFunc(p.spec.Env, func(s string) bool { return strings.HasPrefix(s, "SSH_CONNECTION=127.0.0.1 ") }) {
		t.Errorf("env = %q, want SSH_CONNECTION", p.spec.Env)
	}
	if strings.Contains(e.logs.String(), "/tmp/evil.so") {
		t.Errorf("a refused env value reached the log")
	}
}

func TestForceCommand(t *testing.T) {
	e := newTestEnv(t, nil, envOpts{keyOptions: `command="echo forced",environment="LANG=C"`})
	s := e.session(t, e.dial(t, "alice"))
	if err := s.Run("rm -rf /"); err != nil {
		t.Fatal(err)
	}
	p := e.backend.next(t)
	if want := []string{"/bin/sh", "-c", "echo forced"}; !slices.Equal(p.spec.Argv, want) {
		t.Errorf("argv = %q, want %q", p.spec.Argv, want)
	}
	if !slices.Contains(p.spec.Env, "SSH_ORIGINAL_COMMAND=rm -rf /") {
		t.Errorf("env = %q, want SSH_ORIGINAL_COMMAND", p.spec.Env)
	}
	if !slices.Contains(p.spec.Env, "LANG=C") {
		t.Errorf("env = %q, want the environment= option LANG=C", p.spec.Env)
	}
}

func TestNoPTYGrant(t *testing.T) {
	e := newTestEnv(t, nil, envOpts{keyOptions: "restrict"})
	s := e.session(t, e.dial(t, "alice"))
	if err := s.RequestPty("xterm", 24, 80, nil); err == nil {
		t.Errorf("RequestPty accepted for a restrict login")
	}
	if err := s.Run("true"); err != nil {
		t.Fatalf("Run after a refused pty = %v", err)
	}
	if p := e.backend.next(t); p.spec.TTY {
		t.Errorf("process got a TTY despite restrict")
	}
}

func TestRefusedRequestsAndChannels(t *testing.T) {
	e := newTestEnv(t, func(p *fakeProc) error { <-p.killed; return nil }, envOpts{})
	c := e.dial(t, "alice")
	s := e.session(t, c)
	for _, typ := range []string{"break", "keepalive@openssh.com", "x11-req", "auth-agent-req@openssh.com", "no-such-request@example.com"} {
		if ok, err := s.SendRequest(typ, true, nil); ok || err != nil {
			t.Errorf("session request %s = %v, %v; want a failure reply", typ, ok, err)
		}
	}
	if ok, _, err := c.SendRequest("tcpip-forward", true, ssh.Marshal(struct {
		Addr string
		Port uint32
	}{"127.0.0.1", 0})); ok || err != nil {
		t.Errorf("tcpip-forward = %v, %v; want refused", ok, err)
	}
	if _, err := c.Dial("tcp", "127.0.0.1:1"); err == nil {
		t.Errorf("direct-tcpip accepted")
	}
	if _, _, err := c.OpenChannel("no-such-channel", nil); err == nil {
		t.Errorf("unknown channel type accepted")
	}
	// The connection is still usable.
	if err := s.Start("x"); err != nil {
		t.Fatal(err)
	}
	// A second start request on the same channel is refused.
	if ok, _ := s.SendRequest("exec", true, ssh.Marshal(execRequest{"y"})); ok {
		t.Errorf("a second exec on one channel was accepted")
	}
}

func TestUnknownTarget(t *testing.T) {
	e := newTestEnv(t, nil, envOpts{})
	e.resolver.err = &TargetError{Reason: `no running container "nope" that you may use`}
	s := e.session(t, e.dial(t, "alice+nope"))
	var errOut bytes.Buffer
	s.Stderr = &errOut
	err := s.Run("true")
	var ee *ssh.ExitError
	if !errors.As(err, &ee) || ee.ExitStatus() != 1 {
		t.Errorf("Run = %v, want exit status 1", err)
	}
	if want := "dockssh: no running container \"nope\" that you may use\n"; errOut.String() != want {
		t.Errorf("stderr = %q, want %q", errOut.String(), want)
	}
	if r := e.resolver.reqs[0]; r.Login != "alice" || r.Route != "nope" {
		t.Errorf("resolver saw login %q route %q, want alice, nope", r.Login, r.Route)
	}
}

// TestClientGoneEndsProcess checks that a client that goes away while its
// command runs gets the process closed (and so reaped by the backend).
func TestClientGoneEndsProcess(t *testing.T) {
	for _, how := range []string{"close channel", "close connection"} {
		t.Run(how, func(t *testing.T) {
			e := newTestEnv(t, func(p *fakeProc) error { <-p.killed; return nil }, envOpts{})
			c := e.dial(t, "alice")
			s := e.session(t, c)
			if err := s.Start("sleep 1000"); err != nil {
				t.Fatal(err)
			}
			p := e.backend.next(t)
			if how == "close channel" {
				s.Close()
			} else {
				c.Close()
			}
			p.waitKilled(t)
			e.logs.waitLog(t, `"outcome":"client gone"`)
		})
	}
}

func TestMaxSessions(t *testing.T) {
	e := newTestEnv(t, nil, envOpts{config: func(c *Config) { c.MaxSessions = 2 }})
	c := e.dial(t, "alice")
	e.session(t, c)
	s2 := e.session(t, c)
	if _, err := c.NewSession(); err == nil {
		t.Fatalf("third session accepted with MaxSessions 2")
	}
	s2.Close()
	// Once one closes, a new one is accepted (the server counts closes).
	deadline := time.Now().Add(10 * time.Second)
	for {
		s, err := c.NewSession()
		if err == nil {
			s.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no session accepted after one closed: %v", err)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestPanicContained(t *testing.T) {
	e := newTestEnv(t, nil, envOpts{})
	e.backend.startPanics = true
	c := e.dial(t, "alice")
	s := e.session(t, c)
	if err := s.Run("true"); err == nil {
		t.Errorf("Run with a panicking backend = nil, want an error")
	}
	e.logs.waitLog(t, "panic in session")
	e.backend.startPanics = false
	if err := e.session(t, e.dial(t, "bob")).Run("true"); err != nil {
		t.Errorf("after a panic, a new session failed: %v", err)
	}
}

func TestGarbageDoesNotStopServer(t *testing.T) {
	e := newTestEnv(t, nil, envOpts{})
	for _, junk := range [][]byte{[]byte("GET / HTTP/1.1\r\n\r\n"), bytes.Repeat([]byte{0xff}, 70000), []byte("SSH-2.0-x\r\n\x00\x00\x00\x05garbage")} {
		nc, err := netDial(e.addr)
		if err != nil {
			t.Fatal(err)
		}
		nc.Write(junk)
		nc.Close()
	}
	if err := e.session(t, e.dial(t, "alice")).Run("true"); err != nil {
		t.Fatalf("after garbage, a session failed: %v", err)
	}
}

func TestShutdownWaitsForSessions(t *testing.T) {
	release := make(chan struct{})
	e := newTestEnv(t, func(p *fakeProc) error {
		select {
		case <-release:
		case <-p.killed:
			return errors.New("killed")
		}
		p.stdoutW.Write([]byte("finished"))
		return nil
	}, envOpts{})
	c := e.dial(t, "alice")
	s := e.session(t, c)
	var out syncBuffer
	s.Stdout = &out
	if err := s.Start("work"); err != nil {
		t.Fatal(err)
	}
	e.backend.next(t)
	done := make(chan error, 1)
	go func() { done <- e.server.Shutdown(t.Context()) }()
	// New sessions are refused while draining.
	deadline := time.Now().Add(10 * time.Second)
	for {
		s2, err := c.NewSession()
		if err != nil {
			break
		}
		s2.Close()
		if time.Now().After(deadline) {
			t.Fatal("new sessions still accepted during shutdown")
		}
		time.Sleep(5 * time.Millisecond)
	}
	select {
	case err := <-done:
		t.Fatalf("Shutdown returned %v while a session was running", err)
	default:
	}
	close(release)
	if err := s.Wait(); err != nil {
		t.Errorf("session Wait = %v", err)
	}
	if err := <-done; err != nil {
		t.Errorf("Shutdown = %v", err)
	}
	if out.String() != "finished" {
		t.Errorf("output %q, want finished", out.String())
	}
}

func TestShutdownDeadlineEndsProcesses(t *testing.T) {
	e := newTestEnv(t, func(p *fakeProc) error { <-p.killed; return nil }, envOpts{})
	s := e.session(t, e.dial(t, "alice"))
	if err := s.Start("sleep 1000"); err != nil {
		t.Fatal(err)
	}
	p := e.backend.next(t)
	ctx, cancel := contextWithCancel(t)
	cancel()
	if err := e.server.Shutdown(ctx); err == nil {
		t.Errorf("Shutdown with an ended context = nil, want its error")
	}
	p.waitKilled(t)
}

func TestSessionsIndependent(t *testing.T) {
	// One session whose process never reads or writes must not stall
	// others on the same connection.
	e := newTestEnv(t, func(p *fakeProc) error {
		if p.spec.Argv[2] == "stuck" {
			<-p.killed
			return nil
		}
		p.stdoutW.Write([]byte("ok"))
		return nil
	}, envOpts{})
	c := e.dial(t, "alice")
	stuck := e.session(t, c)
	if err := stuck.Start("stuck"); err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		out, err := e.session(t, c).Output("fine")
		if err != nil || string(out) != "ok" {
			t.Fatalf("session %d: %q, %v", i, out, err)
		}
	}
}

func TestAuditRecord(t *testing.T) {
	e := newTestEnv(t, func(p *fakeProc) error {
		io.Copy(io.Discard, p.stdinR)
		p.stdoutW.Write([]byte("12345"))
		return &ExitError{Code: 2}
	}, envOpts{})
	s := e.session(t, e.dial(t, "alice"))
	s.Stdin = strings.NewReader("abc")
	s.Run("cmd")
	for _, want := range []string{`"msg":"execbridge: session"`, `"user":"alice"`, `"target":"web1"`, `"bytes_in":3`, `"bytes_out":5`, `"exit_status":2`, `"kind":"exec"`} {
		e.logs.waitLog(t, want)
	}
	if n := strings.Count(e.logs.String(), `"msg":"execbridge: session"`); n != 1 {
		t.Errorf("%d session records, want 1", n)
	}
}

func TestStartShell(t *testing.T) {
	e := newTestEnv(t, echo, envOpts{config: func(c *Config) { c.User = "app" }})
	b := e.server.Bridge
	p, err := b.StartShell(t.Context(), ShellRequest{Login: "alice", Route: "web1", Rows: 30, Cols: 100})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	fp := e.backend.next(t)
	if want := []string{"/bin/sh", "-l"}; !slices.Equal(fp.spec.Argv, want) || !fp.spec.TTY || fp.spec.Rows != 30 || fp.spec.Cols != 100 || fp.spec.User != "app" {
		t.Errorf("spec %+v, want a 30x100 login shell as app", fp.spec)
	}
	if !slices.Contains(fp.spec.Env, "TERM=xterm-256color") {
		t.Errorf("env %q, want TERM=xterm-256color", fp.spec.Env)
	}
	if r := e.resolver.reqs[0]; r.Login != "alice" || r.Route != "web1" {
		t.Errorf("resolver saw %+v", r)
	}

	// A grant's forced command and no-pty apply as for SSH.
	p2, err := b.StartShell(t.Context(), ShellRequest{Login: "bob", Grant: &authn.Grant{User: "bob", PTY: true, ForceCommand: "top"}})
	if err != nil {
		t.Fatal(err)
	}
	defer p2.Close()
	if fp := e.backend.next(t); !slices.Equal(fp.spec.Argv, []string{"/bin/sh", "-c", "top"}) {
		t.Errorf("argv %q, want the forced command", fp.spec.Argv)
	}
	if _, err := b.StartShell(t.Context(), ShellRequest{Login: "carol", Grant: &authn.Grant{User: "carol"}}); err == nil {
		t.Errorf("a login without a terminal got a shell")
	}

	e.resolver.err = &TargetError{Reason: "container \"x\" is not running"}
	_, err = b.StartShell(t.Context(), ShellRequest{Login: "alice"})
	var se *TargetError
	if !errors.As(err, &se) || se.Reason != `container "x" is not running` {
		t.Errorf("StartShell with no target = %v, want a TargetError with the resolver's reason", err)
	}
}

// TestIdleTimeout: a connection without an open channel is closed after
// IdleTimeout; one with a session is not.
func TestIdleTimeout(t *testing.T) {
	e := newTestEnv(t, func(p *fakeProc) error { <-p.killed; return nil }, envOpts{config: func(c *Config) { c.IdleTimeout = 200 * time.Millisecond }})
	busy := e.dial(t, "alice")
	s := e.session(t, busy)
	if err := s.Start("sleep 100"); err != nil {
		t.Fatal(err)
	}
	idle := e.dial(t, "bob")
	done := make(chan error, 1)
	go func() { done <- idle.Wait() }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("an idle connection was not closed")
	}
	e.logs.waitLog(t, "closing idle connection")
	// The busy connection still works: it had a session open all along.
	if _, err := busy.NewSession(); err != nil {
		t.Errorf("the connection with a session was closed too: %v", err)
	}
}

// TestHandshakeLimits: a client that never finishes its handshake is
// dropped after HandshakeTimeout, and beyond MaxHandshakes unfinished
// handshakes new connections are closed at once; neither stops the others.
func TestHandshakeLimits(t *testing.T) {
	e := newTestEnv(t, nil, envOpts{server: func(s *Server) {
		s.HandshakeTimeout = 300 * time.Millisecond
		s.MaxHandshakes = 2
	}})
	// Two silent clients fill the handshake slots.
	var silent []net.Conn
	for range 2 {
		c, err := netDial(e.addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		silent = append(silent, c)
	}
	// Wait until the server has taken both (it sends its version line).
	for _, c := range silent {
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		if _, err := bufio.NewReader(c).ReadString('\n'); err != nil {
			t.Fatalf("no version line: %v", err)
		}
	}
	// A third is dropped at once while both slots are taken.
	third, err := netDial(e.addr)
	if err != nil {
		t.Fatal(err)
	}
	third.SetReadDeadline(time.Now().Add(10 * time.Second))
	if line, err := bufio.NewReader(third).ReadString('\n'); err == nil {
		t.Errorf("a connection beyond MaxHandshakes got %q", line)
	}
	third.Close()
	e.logs.waitLog(t, "too many handshakes in progress")
	// The silent ones are dropped after HandshakeTimeout.
	for _, c := range silent {
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		if _, err := io.Copy(io.Discard, c); err != nil {
			t.Errorf("a silent client was not closed by the server: %v", err)
		}
	}
	// Then logins work again.
	if err := e.session(t, e.dial(t, "alice")).Run("true"); err != nil {
		t.Errorf("after the limits, a session failed: %v", err)
	}
}
