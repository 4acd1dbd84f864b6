package execbridge

import (
	"cmp"
	"context"
	"errors"
	"net"
	"strings"

	"github.com/dockssh/dockssh/authn"
	"github.com/dockssh/dockssh/internal/logtext"
)

// locate finds the target of a session and, with needShell, the shell to
// use there (SFTP needs none: a FROM scratch container has no shell and
// still gets SFTP). On failure, reason is the one line the user may see;
// err has the detail.
func (b *Bridge) locate(ctx context.Context, req Request, needShell bool) (t Target, shell, reason string, err error) {
	t, err = b.cfg.Resolver.Resolve(ctx, req)
	if err != nil {
		var te *TargetError
		if errors.As(err, &te) {
			return Target{}, "", te.Reason, err
		}
		return Target{}, "", "no container is available for this session", err
	}
	if !needShell {
		return t, "", "", nil
	}
	shell, reason, err = b.shell(ctx, t)
	return t, shell, reason, err
}

// shell is Config.Shell, or the Backend's choice for t.
func (b *Bridge) shell(ctx context.Context, t Target) (shell, reason string, err error) {
	if b.cfg.Shell != "" {
		return b.cfg.Shell, "", nil
	}
	if shell, err = b.cfg.Backend.Shell(ctx, t); err != nil {
		return "", "cannot find a shell in container " + t.String(), err
	}
	return shell, "", nil
}

// ShellRequest asks for an interactive shell, as a web terminal does.
type ShellRequest struct {
	// Login and Route are as in Request: the account, and the target it
	// asks for ("" for the default).
	Login, Route string
	// Grant restricts the shell as it restricts an SSH session: a forced
	// command runs instead of the shell, and a login without a terminal
	// (no-pty, restrict) gets none. nil means no restrictions.
	Grant *authn.Grant
	// Remote is the client's address, for the resolver and the log.
	Remote net.Addr
	// Term is the terminal type (TERM); empty means xterm-256color.
	Term string
	// Rows and Cols are the initial terminal size.
	Rows, Cols int
}

// StartShell starts the interactive login shell of req with a terminal, in
// the container the Resolver picks, as the shell of an SSH session with a
// pty would run (Config's Shell, User, Dir and Banner-free): the entry point
// of a web terminal (sse) or any other front end. The returned Process
// belongs to the caller, who must Close it. ctx bounds the start only.
func (b *Bridge) StartShell(ctx context.Context, req ShellRequest) (Process, error) {
	grant := req.Grant
	if grant == nil {
		grant = unrestricted(req.Login)
	}
	if !grant.PTY {
		return nil, &TargetError{Reason: "this login may not have a terminal", Err: errors.New("the grant refuses a pty")}
	}
	ctx, cancel := context.WithTimeout(ctx, b.cfg.StartTimeout)
	defer cancel()
	t, shell, reason, err := b.locate(ctx, Request{Login: req.Login, Route: req.Route, Grant: grant, Remote: req.Remote}, true)
	if err != nil {
		return nil, &TargetError{Reason: reason, Err: err}
	}
	env := []string{"TERM=" + cmp.Or(req.Term, "xterm-256color")}
	argv := []string{shell, "-l"}
	if grant.ForceCommand != "" {
		argv = []string{shell, "-c", grant.ForceCommand}
	}
	p, err := b.cfg.Backend.Start(ctx, ProcessSpec{
		Target: t, Argv: argv, Env: env, User: b.cfg.User, Dir: b.cfg.Dir,
		TTY: true, Rows: req.Rows, Cols: req.Cols,
	})
	if err != nil {
		return nil, &TargetError{Reason: startFailure("a shell", t, err), Err: err}
	}
	b.logger.Info("execbridge: shell started", "user", req.Login, "remote", logtext.Addr(req.Remote), "target", t.String(), "container_id", t.ID, "command", strings.Join(argv, " "))
	return p, nil
}

// unrestricted is the grant of a login authenticated without authn.
func unrestricted(user string) *authn.Grant {
	return &authn.Grant{User: user, PTY: true, PortForwarding: true, AgentForwarding: true, X11Forwarding: true, UserRC: true}
}
