package dialer

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/dockssh/dockssh/envsanitize"
	"github.com/dockssh/dockssh/internal/logtext"
)

// proxyShell runs a ProxyCommand. ssh uses $SHELL, falling back to
// /bin/sh (ssh_proxy_connect in sshconnect.c); the dialer always uses
// /bin/sh, so that a user's interactive shell and its start-up files play
// no part in reaching a host.
const proxyShell = "/bin/sh"

// Bounds of a ProxyCommand's end.
const (
	// proxyExitGrace is how long a proxy that closed its standard
	// output has to exit by itself on Close before it gets SIGHUP: it
	// is ending (often after a message on stderr), and its own exit
	// status says more than our signal.
	proxyExitGrace = time.Second
	// proxyHangupGrace is how long a closed proxy has to exit after
	// SIGHUP (what ssh sends it) before its process group gets SIGKILL.
	proxyHangupGrace = 500 * time.Millisecond
	// proxyWaitDelay bounds how long reaping waits for the stderr pipe
	// after the command exited: a child that left the process group may
	// hold it open (exec.Cmd.WaitDelay).
	proxyWaitDelay = time.Second
)

// proxyConn is the transport of an SSH connection through a ProxyCommand:
// the command's standard output is read, its standard input written. The
// command runs in a session of its own, so that Close ends it and
// everything it started, and it has no controlling terminal to prompt on
// (a library never prompts). A counted goroutine reaps it the moment it
// exits, so it never stays a zombie.
type proxyConn struct {
	cmd    *exec.Cmd
	r      *os.File // our end of its standard output
	w      *os.File // our end of its standard input
	stderr tailBuffer
	name   string        // the program, for messages
	exited chan struct{} // closed once the command was reaped
	state  *os.ProcessState
	eof    atomic.Bool // it closed its standard output

	closeOnce sync.Once
}

// startProxy starts ep's ProxyCommand. The context bounds only the start;
// the handshake's context closes the conn when it ends.
func (d *Dialer) startProxy(ctx context.Context, ep *endpoint) (*proxyConn, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	inR, inW, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	outR, outW, err := os.Pipe()
	if err != nil {
		inR.Close()
		inW.Close()
		return nil, err
	}
	p := &proxyConn{r: outR, w: inW, name: proxyName(ep.proxyCommand), exited: make(chan struct{})}
	cmd := exec.Command(proxyShell, "-c", ep.proxyCommand)
	cmd.Env = d.proxyEnv(ep)
	cmd.Dir = "/"
	cmd.Stdin, cmd.Stdout, cmd.Stderr = inR, outW, &p.stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	cmd.WaitDelay = proxyWaitDelay
	p.cmd = cmd
	err = cmd.Start()
	inR.Close() // the child's ends
	outW.Close()
	if err != nil {
		outR.Close()
		inW.Close()
		return nil, err
	}
	// Counted: connect runs in a counted goroutine (see goroutines.add).
	d.gor.start(func() {
		cmd.Wait()
		p.state = cmd.ProcessState
		close(p.exited)
	})
	d.log.Debug("dialer: ProxyCommand started", "url", d.url, "addr", ep.addr(), "program", p.name, "pid", cmd.Process.Pid)
	return p, nil
}

// proxyEnv is the ProxyCommand's environment: the program's own, through
// envsanitize's Helper policy (no dynamic-loader, interpreter or shell
// start-up variables; PATH, HOME, SSH_AUTH_SOCK and proxy settings pass),
// with HOME set to the dialer's home directory and SSH_AUTH_SOCK to the
// agent the dialer uses for the host, so that an "ssh -W" proxy sees the
// same files and keys.
func (d *Dialer) proxyEnv(ep *endpoint) []string {
	p := envsanitize.Helper()
	env, _ := p.Filter(os.Environ())
	env = setEnv(env, "HOME", d.dest.home)
	if ep.agentSocket != "" {
		env = setEnv(env, "SSH_AUTH_SOCK", ep.agentSocket)
	}
	return env
}

// setEnv sets name=value in env, replacing an earlier value.
func setEnv(env []string, name, value string) []string {
	if value == "" {
		return env
	}
	out := env[:0]
	for _, kv := range env {
		if !strings.HasPrefix(kv, name+"=") {
			out = append(out, kv)
		}
	}
	return append(out, name+"="+value)
}

// proxyName is the program a ProxyCommand runs, for messages: its first
// word. The rest is not shown, as it may hold a token or a password.
func proxyName(command string) string {
	f := strings.Fields(strings.TrimPrefix(command, "exec "))
	if len(f) == 0 {
		return "ProxyCommand"
	}
	return logtext.Clip(f[0], 64)
}

func (p *proxyConn) Read(b []byte) (int, error) {
	n, err := p.r.Read(b)
	if err == io.EOF {
		p.eof.Store(true)
	}
	return n, err
}

func (p *proxyConn) Write(b []byte) (int, error) { return p.w.Write(b) }

func (p *proxyConn) LocalAddr() net.Addr  { return proxyAddr(p.cmd.Process.Pid) }
func (p *proxyConn) RemoteAddr() net.Addr { return proxyAddr(p.cmd.Process.Pid) }

func (p *proxyConn) SetDeadline(t time.Time) error {
	return errors.Join(p.r.SetReadDeadline(t), p.w.SetWriteDeadline(t))
}
func (p *proxyConn) SetReadDeadline(t time.Time) error  { return p.r.SetReadDeadline(t) }
func (p *proxyConn) SetWriteDeadline(t time.Time) error { return p.w.SetWriteDeadline(t) }

// Close closes the pipes, ends the command and waits until it has been
// reaped: SIGHUP to its process group, as ssh sends its proxy, and
// SIGKILL after proxyHangupGrace. A command that closed its output first
// gets proxyExitGrace to exit by itself. Close waits at most about
// proxyExitGrace + proxyHangupGrace + proxyWaitDelay.
func (p *proxyConn) Close() error {
	p.closeOnce.Do(func() {
		p.w.Close()
		p.r.Close()
		if p.eof.Load() {
			t := time.NewTimer(proxyExitGrace)
			select {
			case <-p.exited:
			case <-t.C:
			}
			t.Stop()
		}
		if p.signal(syscall.SIGHUP) {
			t := time.NewTimer(proxyHangupGrace)
			defer t.Stop()
			select {
			case <-p.exited:
				return
			case <-t.C:
			}
			p.signal(syscall.SIGKILL)
		}
		<-p.exited
	})
	return nil
}

// signal sends sig to the command's process group while the command has
// not been reaped (after that its number may belong to someone else). It
// reports whether the command was still there.
func (p *proxyConn) signal(sig syscall.Signal) bool {
	select {
	case <-p.exited:
		return false
	default:
	}
	// Setsid made the command the leader of its own process group.
	syscall.Kill(-p.cmd.Process.Pid, sig)
	return true
}

// exitStatus returns the command's exit status (-1 after a signal), once
// it has been reaped.
func (p *proxyConn) exitStatus() (int, bool) {
	select {
	case <-p.exited:
		return p.state.ExitCode(), true
	default:
		return 0, false
	}
}

// proxyAddr is the address of a conn through a ProxyCommand: the
// command's process ID.
type proxyAddr int

func (a proxyAddr) Network() string { return "proxycommand" }
func (a proxyAddr) String() string  { return "proxycommand:pid=" + strconv.Itoa(int(a)) }

// proxyErr is the error of a connection whose ProxyCommand exited before
// the SSH handshake was done: what the command said on stderr is the
// explanation, the handshake's own error (EOF) is not.
func (d *Dialer) proxyErr(ep *endpoint, p *proxyConn, status int, err error) *Error {
	return d.newError(Error{Op: OpProxy, Addr: ep.addr(),
		Err:        fmt.Errorf("%s exited with status %d before the SSH handshake was done: %w", p.name, status, err),
		Hint:       "run the ProxyCommand by hand (ssh -v shows it expanded) and check what it says",
		ExitStatus: status, Stderr: p.stderr.String()})
}
