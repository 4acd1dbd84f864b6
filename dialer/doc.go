// Package dialer provides connections to a remote Docker daemon over SSH, as
// net.Conns, from an ssh:// URL.
//
// A Dialer keeps one multiplexed SSH connection per destination (more only
// when the server's MaxSessions refuses a session) and opens a channel per
// DialContext: a session running "docker system dial-stdio" on the server,
// as the Docker CLI's ssh:// helper does, or, with TransportStreamLocal, a
// direct-streamlocal@openssh.com channel to the daemon's socket. It reads
// ~/.ssh/config and /etc/ssh/ssh_config, authenticates with the SSH agent
// and key files, checks host keys strictly against known_hosts through the
// hostkeys package, never sends the local environment (no "env" requests)
// and never prints a password: errors and log lines go through the redact
// package.
//
// The only local process it starts is a ProxyCommand from ssh_config, run
// as ssh runs it: "exec COMMAND" under /bin/sh -c with %h, %p, %r, %n, %k
// and %% expanded, its standard input and output as the transport. It runs
// in a session of its own with the program's environment filtered by
// envsanitize.Helper (no LD_PRELOAD and the like) plus HOME and
// SSH_AUTH_SOCK as the dialer uses them; the last 4 KiB of its stderr,
// redacted, are quoted when it fails; it is ended (SIGHUP, then SIGKILL to
// its process group) and reaped when its SSH connection closes or its
// handshake fails. Config.RefuseProxyCommand forbids it.
//
//	d, err := dialer.New("ssh://docker@build-host", nil)
//	if err != nil { ... }
//	defer d.Close()
//	cli, err := client.New(client.WithHost("http://docker"), client.WithDialContext(d.DialContext))
//
// The same DialContext fits http.Transport.DialContext. The conns support
// CloseWrite (hijacked attach and exec streams need it), CloseRead, and
// deadlines that time out with os.ErrDeadlineExceeded. See docs/dialer.md
// for every option, the errors and their fixes, and benchmarks.
package dialer
