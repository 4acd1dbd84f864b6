package execbridge

import (
	"context"
	"fmt"

	"github.com/dockssh/dockssh/internal/logtext"
	"github.com/dockssh/dockssh/internal/procscript"
)

// Signal delivers signal name (RFC 4254, without "SIG") to the process,
// and to it only, with a second short exec in the container (see
// DockerBackend). It costs one exec inspect and one exec. It fails for a
// name outside RFC 4254's list, when the process is gone, and when the
// target has no /bin/sh.
func (p *dockerProcess) Signal(ctx context.Context, name string) error {
	num, ok := procscript.SignalNumber(name)
	if !ok {
		return fmt.Errorf("execbridge: signal %q: not a signal name of RFC 4254", logtext.Clip(name, 32))
	}
	p.mu.Lock()
	gone := p.closed || p.exited
	p.mu.Unlock()
	if gone {
		return fmt.Errorf("execbridge: signal %s to the process in %s: %w", name, p.target, errNotRunning)
	}
	in, err := p.waitStarted(ctx)
	if err != nil {
		return fmt.Errorf("execbridge: signal %s to the process in %s: %w", name, p.target, err)
	}
	if !in.Running {
		return fmt.Errorf("execbridge: signal %s to the process in %s: %w", name, p.target, errNotRunning)
	}
	// Noted before it is sent: the process may die of it, and Wait see
	// that, before the helper's report arrives.
	isNew := p.noteSignal(num, name)
	out, errOut, err := p.b.runHelper(ctx, containerRef(p.target), p.user,
		procscript.SignalArgv(MarkerEnv+"="+p.marker, name, in.PID))
	if err == nil {
		var found bool
		if _, found, err = procscript.ParseSignalReport(out); err == nil && !found {
			err = errNotRunning
		}
	}
	if err != nil {
		if isNew {
			p.forgetSignal(num)
		}
		if errOut != "" {
			return fmt.Errorf("execbridge: signal %s to the process in %s: %w (helper stderr: %q)", name, p.target, err, logtext.Clip(errOut, 200))
		}
		return fmt.Errorf("execbridge: signal %s to the process in %s: %w", name, p.target, err)
	}
	return nil
}

// reap ends the process and its descendants with reapScript.
func (p *dockerProcess) reap(ctx context.Context) error {
	// HUP and TERM go to all of them, KILL maybe: noted for Wait.
	p.noteSignal(1, "HUP")
	p.noteSignal(15, "TERM")
	out, errOut, err := p.b.runHelper(ctx, containerRef(p.target), p.user,
		procscript.ReapArgv(MarkerEnv+"="+p.marker, p.b.killGrace))
	var r procscript.ReapReport
	if err == nil {
		r, err = procscript.ParseReapReport(out)
	}
	if err != nil {
		if errOut != "" {
			return fmt.Errorf("execbridge: end the processes of %s in %s: %w (helper stderr: %q)", p.execID, p.target, err, logtext.Clip(errOut, 200))
		}
		return fmt.Errorf("execbridge: end the processes of %s in %s: %w", p.execID, p.target, err)
	}
	if r.Killed > 0 {
		p.noteSignal(9, "KILL")
	}
	if r.Left > 0 {
		return fmt.Errorf("execbridge: end the processes of %s in %s: %d of %d still running after SIGKILL", p.execID, p.target, r.Left, r.Found)
	}
	p.b.logger.Debug("execbridge: processes ended", "target", p.target.String(), "exec", p.execID, "found", r.Found, "killed", r.Killed)
	return nil
}
