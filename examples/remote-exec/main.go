// Command remote-exec runs a command in a container on a remote Docker
// host, over SSH, with the dialer package: `docker -H ssh://... exec -it`,
// in Go.
//
//	go run ./examples/remote-exec ssh://user@host CONTAINER            # a shell (sh)
//	go run ./examples/remote-exec ssh://user@host CONTAINER top -b -n1
//	echo hi | go run ./examples/remote-exec -i ssh://user@host CONTAINER cat
//
// When its standard input is a terminal (and -T is not given) it runs the
// command on a terminal in the container, as docker exec -it does: the
// local terminal is put in raw mode and restored on every way out (the
// command's end, an error, a panic, SIGINT, SIGTERM, SIGHUP); the window
// size is sent at the start and on every SIGWINCH; the detach keys
// (-detach-keys, ctrl-p,ctrl-q by default, as in the Docker CLI) leave the
// command running and exit 0. Without a terminal, -i streams standard
// input to the command, ending it with a half-close on end of file, and
// keeps the command's stdout and stderr apart, as docker exec -i does.
//
// It exits with the command's exit status. Its own failures exit 255, as
// ssh does, so they do not pass for the command's; usage errors exit 2; a
// signal that ends it exits 128 plus the signal number.
//
// Like examples/remote-docker it reads ~/.ssh/config (or -F), checks the
// host key against ~/.ssh/known_hosts (strictly, unless -accept-new) and
// authenticates with the SSH agent and the usual identity files (or
// -identity: -i is docker exec's "interactive" here).
//
// # Nothing left running
//
// The Docker Engine does not end an exec when its attach connection
// closes (moby/moby#9098): the engine keeps the command's terminal open
// (it closes a command's standard input then only when there is no
// terminal), so no hangup reaches the command, and it runs on with nobody
// attached. Tried with Docker 20.10: `docker exec -it` killed with
// SIGKILL leaves its shell and the shell's `sleep` running. So when the
// local terminal closes (SIGHUP), remote-exec is killed, or the SSH link
// dies, the engine would leave the command running.
//
// remote-exec ends it itself. The command runs with
// DOCKSSH_EXEC_SESSION=<random token> in its environment, and before it
// starts, a watchdog exec (sh -c in the container, without a terminal)
// starts and waits on its standard input, which the engine closes when
// the watchdog's attach connection ends, whichever way it ends: remote-exec
// exits or is killed, or sshd or the network drops the SSH connection.
// Then, unless remote-exec said "detach" first, the watchdog runs the
// reaper execbridge runs after its sessions (internal/procscript): SIGHUP,
// as a terminal hangup would, SIGTERM and SIGCONT to every process that
// carries the token and to every process in their sessions (a child that
// cleared its environment stays in its session), then, a second later,
// SIGKILL to those still there. The same happens when the command exits
// while children it started still run. A container without sh and grep
// cannot run the watchdog: remote-exec says so and runs the command
// without it.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"

	"github.com/moby/term"

	"github.com/dockssh/dockssh/examples/internal/sshflags"
)

// Exit statuses of remote-exec itself, as ssh and the shells use them.
const (
	exitUsage  = 2
	exitFailed = 255
	exitSignal = 128 // plus the signal number
)

// defaultDetachKeys are the Docker CLI's.
const defaultDetachKeys = "ctrl-p,ctrl-q"

func main() {
	var (
		ssh         = sshflags.Register(flag.CommandLine, "identity", "give up connecting and starting the command after this long")
		interactive = flag.Bool("i", false, "keep standard input open without a terminal (docker exec -i)")
		noTTY       = flag.Bool("T", false, "no terminal in the container, even when standard input is one")
		detachKeys  = flag.String("detach-keys", defaultDetachKeys, "key sequence that detaches from the command, leaving it running")
		user        = flag.String("u", "", "user (name or UID[:GID]) to run the command as")
		workdir     = flag.String("w", "", "working directory in the container")
	)
	flag.Usage = func() {
		fmt.Fprintf(flag.CommandLine.Output(), "usage: %s [flags] ssh://[user@]host[:port][/path/to/docker.sock] CONTAINER [COMMAND [ARG...]]\n", os.Args[0])
		flag.PrintDefaults()
	}
	flag.Parse()
	if flag.NArg() < 2 {
		flag.Usage()
		os.Exit(exitUsage)
	}
	keys, err := term.ToBytes(*detachKeys)
	if err != nil || len(keys) == 0 {
		fmt.Fprintf(os.Stderr, "remote-exec: -detach-keys %q: want keys like ctrl-p,ctrl-q (a-z, ctrl-@ to ctrl-_, DEL)\n", *detachKeys)
		os.Exit(exitUsage)
	}
	cfg := ssh.Config()
	cmd := flag.Args()[2:]
	if len(cmd) == 0 {
		cmd = []string{"sh"}
	}
	_, stdinIsTerminal := term.GetFdInfo(os.Stdin)
	s := &session{
		url:         flag.Arg(0),
		container:   flag.Arg(1),
		cmd:         cmd,
		user:        *user,
		workdir:     *workdir,
		tty:         stdinIsTerminal && !*noTTY,
		interactive: *interactive || (stdinIsTerminal && !*noTTY),
		detachKeys:  *detachKeys,
		setup:       ssh.Timeout,
		dialer:      cfg,
	}
	os.Exit(s.main(context.Background()))
}

// exitError is an error that ends remote-exec with a status of its own.
type exitError struct{ status int }

func (e exitError) Error() string { return fmt.Sprintf("exit status %d", e.status) }

// statusOf returns the exit status for the outcome of run.
func statusOf(err error) int {
	var ee exitError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &ee):
		return ee.status
	default:
		return exitFailed
	}
}
