// Package dialer provides connections to a remote Docker daemon over SSH, as
// net.Conns, from an ssh:// URL.
//
// A Dialer keeps one multiplexed SSH connection per destination (more only
// when the server's MaxSessions refuses a session) and opens a channel per
// DialContext: a session running "docker system dial-stdio" on the server,
// as the Docker CLI's ssh:// helper does, or, with TransportStreamLocal, a
// direct-streamlocal@openssh.com channel to the daemon's socket. It reads
// ~/.ssh/config, authenticates with the SSH agent and key files, checks host
// keys strictly against known_hosts through the hostkeys package, and never
// starts a local process, never sends the local environment (no "env"
// requests) and never prints a password: errors and log lines go through
// the redact package.
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
