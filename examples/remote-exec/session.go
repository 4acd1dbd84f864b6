package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/pkg/stdcopy"
	"github.com/moby/moby/client"
	"github.com/moby/term"

	"github.com/dockssh/dockssh/dialer"
	"github.com/dockssh/dockssh/internal/shquote"
)

// session is one run of a command in a remote container.
type session struct {
	url, container string
	cmd            []string
	user, workdir  string
	tty            bool // a terminal in the container, the local one in raw mode
	interactive    bool // standard input goes to the command
	detachKeys     string
	setup          time.Duration // bounds connecting and starting the command
	dialer         *dialer.Config

	term *rawTerminal // nil without tty
}

// main runs the session and returns the exit status; it prints
// remote-exec's own errors once the terminal is restored.
func (s *session) main(ctx context.Context) int {
	err := s.run(ctx)
	var ee exitError
	if err != nil && !errors.As(err, &ee) {
		fmt.Fprintln(os.Stderr, err)
	}
	return statusOf(err)
}

func (s *session) run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	// SIGINT, SIGTERM and SIGHUP end the session through its normal way
	// out, so the terminal is restored and the connections are closed
	// (which makes the watchdog end the command). Registered before
	// anything else so that none of them kills the program in between.
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
	defer signal.Stop(sigs)

	d, err := dialer.New(s.url, s.dialer)
	if err != nil {
		return err
	}
	defer d.Close()
	// The host in the URL is a placeholder: every connection goes to the
	// dialer's destination.
	cli, err := client.New(client.WithHost("http://docker"), client.WithDialContext(d.DialContext))
	if err != nil {
		return err
	}
	defer cli.Close()

	var winch chan os.Signal
	var size client.ConsoleSize
	if s.tty {
		// Before reading the size, so that no change is missed.
		winch = make(chan os.Signal, 1)
		signal.Notify(winch, syscall.SIGWINCH)
		defer signal.Stop(winch)
		size = s.windowSize()
	}

	// The watchdog runs before the command starts, so that no way
	// out leaves the command running without one.
	type started struct {
		w   *watchdog
		att client.ExecAttachResult
		id  string
		err error
	}
	setupCtx, setupCancel := context.WithTimeout(ctx, s.setup)
	defer setupCancel()
	start := make(chan started, 1)
	go func() {
		token := newToken()
		// Creating the exec starts nothing: it goes beside the
		// watchdog's start, which saves a round trip.
		wch := make(chan *watchdog, 1)
		go func() { wch <- startWatchdog(setupCtx, cli, s.container, token) }()
		id, err := s.create(setupCtx, cli, token, size)
		w := <-wch
		// No container, or one that does not run: s.create says so.
		if w.err != nil && !cerrdefs.IsNotFound(w.err) && !cerrdefs.IsConflict(w.err) {
			fmt.Fprintf(os.Stderr, "remote-exec: warning: %v: if this program or the SSH link dies, the command keeps running\n", w.err)
		}
		if err != nil {
			start <- started{w: w, err: err}
			return
		}
		att, err := cli.ExecAttach(setupCtx, id, client.ExecAttachOptions{TTY: s.tty, ConsoleSize: size})
		if err != nil {
			err = fmt.Errorf("remote-exec: start %s in %s: %w", shquote.Join(s.cmd), s.container, err)
		}
		start <- started{w, att, id, err}
	}()
	var st started
	select {
	case st = <-start:
	case sig := <-sigs:
		return exitError{exitSignal + int(sig.(syscall.Signal))}
	}
	defer st.w.close()
	if st.err != nil {
		return st.err
	}
	defer st.att.Close()
	w := st.w

	if s.tty {
		t, err := makeRaw(os.Stdin)
		if err != nil {
			return fmt.Errorf("remote-exec: %w", err)
		}
		s.term = t
		defer t.restore()
		// A resize between ExecCreate and the start is not in the
		// console size the exec started with.
		s.resize(ctx, cli, st.id)
	}

	outDone := make(chan error, 1)
	go func() {
		defer s.term.restoreOnPanic()
		var err error
		if s.tty {
			_, err = io.Copy(panicWriter{os.Stdout}, st.att.Reader)
		} else {
			_, err = stdcopy.StdCopy(os.Stdout, os.Stderr, st.att.Reader)
		}
		outDone <- err
	}()
	detached := make(chan struct{})
	terminalGone := make(chan error, 1)
	if s.interactive {
		// This goroutine may stay blocked in a read of standard input
		// when the session ends: the program exits then, which ends it.
		go func() {
			defer s.term.restoreOnPanic()
			var in io.Reader = os.Stdin
			if s.tty {
				keys, _ := term.ToBytes(s.detachKeys) // checked in main
				in = term.NewEscapeProxy(in, keys)
			}
			_, err := io.Copy(st.att.Conn, in)
			switch {
			case errors.As(err, new(term.EscapeError)):
				close(detached)
			case s.tty && err != nil:
				// The terminal hung up (EIO) but no SIGHUP came, as
				// under nohup: the session ends all the same.
				terminalGone <- err
			default:
				// End of input: a half-close, so the command reads
				// end of file and can still answer.
				st.att.CloseWrite()
			}
		}()
	}
	if s.tty {
		go func() {
			defer s.term.restoreOnPanic()
			for {
				select {
				case <-winch:
					s.resize(ctx, cli, st.id)
				case <-ctx.Done():
					return
				}
			}
		}()
	}

	select {
	case err := <-outDone:
		if err != nil {
			return fmt.Errorf("remote-exec: the connection to the command broke: %w", err)
		}
		return s.exitStatus(cli, st.id)
	case <-detached:
		w.detach()
		s.term.restore()
		fmt.Fprintf(os.Stderr, "remote-exec: detached; %s still runs in %s (exec %.12s)\n", shquote.Join(s.cmd), s.container, st.id)
		return nil
	case err := <-terminalGone:
		return fmt.Errorf("remote-exec: the terminal is gone: %w", err)
	case sig := <-sigs:
		return exitError{exitSignal + int(sig.(syscall.Signal))}
	}
}

// create creates the exec (ExecAttach starts it).
func (s *session) create(ctx context.Context, cli *client.Client, token string, size client.ConsoleSize) (string, error) {
	created, err := cli.ExecCreate(ctx, s.container, client.ExecCreateOptions{
		User:         s.user,
		WorkingDir:   s.workdir,
		TTY:          s.tty,
		ConsoleSize:  size,
		AttachStdin:  s.interactive,
		AttachStdout: true,
		AttachStderr: true,
		// The engine watches for the detach keys too, with ctrl-p,ctrl-q
		// when none are given: it must know the ones remote-exec uses.
		DetachKeys: s.detachKeys,
		Env:        []string{sessionVar + "=" + token},
		Cmd:        s.cmd,
	})
	switch {
	case cerrdefs.IsNotFound(err):
		return "", cleanError{fmt.Sprintf("remote-exec: no container %q on the remote host", s.container), err}
	case cerrdefs.IsConflict(err):
		return "", cleanError{fmt.Sprintf("remote-exec: container %q is not running", s.container), err}
	case err != nil:
		return "", fmt.Errorf("remote-exec: create the exec in %s: %w", s.container, err)
	}
	return created.ID, nil
}

// exitStatus returns the command's exit status as an exitError (nil for
// 0). The engine records it just after the output ends, so a still
// running exec is asked again for a little while.
func (s *session) exitStatus(cli *client.Client, id string) error {
	ctx, cancel := context.WithTimeout(context.Background(), min(s.setup, 5*time.Second))
	defer cancel()
	for wait := time.Millisecond; ; wait = min(2*wait, 100*time.Millisecond) {
		r, err := cli.ExecInspect(ctx, id, client.ExecInspectOptions{})
		if err != nil {
			return fmt.Errorf("remote-exec: the exit status of %s: %w", shquote.Join(s.cmd), err)
		}
		if !r.Running {
			s.term.restore()
			if r.PID == 0 && r.ExitCode != 0 {
				// The engine's reason is in the output already.
				fmt.Fprintf(os.Stderr, "remote-exec: %s could not be started in %s\n", shquote.Join(s.cmd), s.container)
			}
			if r.ExitCode == 0 {
				return nil
			}
			return exitError{r.ExitCode}
		}
		select {
		case <-time.After(wait):
		case <-ctx.Done():
			// Its output or the connection ended while it runs on: the
			// watchdog ends it when remote-exec exits.
			return fmt.Errorf("remote-exec: the connection to %s ended while it still ran", shquote.Join(s.cmd))
		}
	}
}

// windowSize returns the local terminal's size, zero when unknown.
func (s *session) windowSize() client.ConsoleSize {
	ws, err := term.GetWinsize(os.Stdin.Fd())
	if err != nil {
		return client.ConsoleSize{}
	}
	return client.ConsoleSize{Height: uint(ws.Height), Width: uint(ws.Width)}
}

// resize sends the local terminal's size to the exec.
func (s *session) resize(ctx context.Context, cli *client.Client, id string) {
	size := s.windowSize()
	if size.Height == 0 || size.Width == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, s.setup)
	defer cancel()
	// A failed resize is not worth ending the session for; the next
	// SIGWINCH tries again.
	cli.ExecResize(ctx, id, client.ExecResizeOptions(size))
}

// cleanError says what went wrong in its own words and keeps the
// engine's error for errors.Is/As.
type cleanError struct {
	msg string
	err error
}

func (e cleanError) Error() string { return e.msg }
func (e cleanError) Unwrap() error { return e.err }

func newToken() string {
	b := make([]byte, 16)
	rand.Read(b)
	return hex.EncodeToString(b)
}
