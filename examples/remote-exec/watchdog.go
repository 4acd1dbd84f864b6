package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/moby/moby/api/pkg/stdcopy"
	"github.com/moby/moby/client"

	"github.com/dockssh/dockssh/internal/logtext"
	"github.com/dockssh/dockssh/internal/procscript"
)

// sessionVar marks the processes of a session: the command gets it in
// its environment and its children inherit it.
const sessionVar = "DOCKSSH_EXEC_SESSION"

// watchdogScript runs in the container with a reaper's command line as
// its arguments. Once it knows the reaper can run (it needs grep), it
// says "ready" and reads one line: "detach" lets the session's
// processes run on; anything else, or end of file (the engine closes the
// exec's standard input when its attach connection ends, however it
// ends), runs the reaper.
const watchdogScript = `command -v grep >/dev/null 2>&1 || { echo "no grep in the container"; exit 1; }
echo ready
read -r line && [ "$line" = detach ] && exit 0
exec "$@"`

// reapGrace is how long the session's processes have between SIGHUP (and
// SIGTERM) and SIGKILL.
const reapGrace = time.Second

// watchdog is the exec that ends a session's processes when the session
// ends without a detach.
type watchdog struct {
	att  client.ExecAttachResult
	done chan struct{} // closed when the watchdog's output ends
	err  error         // why there is no watchdog
}

// startWatchdog starts the watchdog for the processes marked with token
// and waits until it runs.
func startWatchdog(ctx context.Context, cli *client.Client, container, token string) *watchdog {
	created, err := cli.ExecCreate(ctx, container, client.ExecCreateOptions{
		AttachStdin: true, AttachStdout: true, AttachStderr: true,
		// procscript's reaper, the one execbridge runs after a session:
		// SIGHUP, as a terminal hangup sends, SIGTERM and SIGCONT to
		// every process that carries the marker and to the rest of
		// their sessions, then SIGKILL to those left after reapGrace.
		Cmd: append([]string{"/bin/sh", "-c", watchdogScript, "remote-exec-watchdog"}, procscript.ReapArgv(sessionVar+"="+token, reapGrace)...),
	})
	if err != nil {
		return &watchdog{err: fmt.Errorf("no watchdog in %s: %w", container, err)}
	}
	att, err := cli.ExecAttach(ctx, created.ID, client.ExecAttachOptions{})
	if err != nil {
		return &watchdog{err: fmt.Errorf("no watchdog in %s: %w", container, err)}
	}
	w := &watchdog{att: att, done: make(chan struct{})}
	out := &lineWaiter{want: "ready\n", seen: make(chan struct{})}
	go func() {
		defer close(w.done)
		stdcopy.StdCopy(out, out, att.Reader)
	}()
	select {
	case <-out.seen:
		return w
	case <-w.done:
		w.err = fmt.Errorf("no watchdog in %s (it needs sh and grep): %q", container, logtext.Clip(strings.TrimSpace(out.text()), 200))
	case <-ctx.Done():
		w.err = fmt.Errorf("no watchdog in %s: %w", container, ctx.Err())
	}
	att.Close()
	return w
}

// detach tells the watchdog to leave the session's processes running
// and waits (a little) until it has read that.
func (w *watchdog) detach() {
	if w.err != nil {
		return
	}
	io.WriteString(w.att.Conn, "detach\n")
	w.att.CloseWrite()
	select {
	case <-w.done:
	case <-time.After(5 * time.Second):
	}
}

// close ends the watchdog's attach connection: unless it was told to
// detach, it hangs up what is left of the session.
func (w *watchdog) close() {
	if w.err == nil {
		w.att.Close()
	}
}

// lineWaiter collects output and closes seen once it holds want.
type lineWaiter struct {
	want string
	seen chan struct{}
	mu   sync.Mutex // guards buf and once
	buf  bytes.Buffer
	once bool
}

func (l *lineWaiter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.buf.Len() < 4096 {
		l.buf.Write(p)
	}
	if !l.once && strings.Contains(l.buf.String(), l.want) {
		l.once = true
		close(l.seen)
	}
	return len(p), nil
}

func (l *lineWaiter) text() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}
