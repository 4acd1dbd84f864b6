package dialer

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/dockssh/dockssh/hostkeys"
)

// Config configures a Dialer. A nil *Config, like the zero Config, means:
// read ~/.ssh/config, check host keys strictly against ~/.ssh/known_hosts
// (and the system file), authenticate with the SSH agent at $SSH_AUTH_SOCK
// and then the default identity files, run "docker system dial-stdio"
// remotely, and keep up to 8 SSH connections alive with keepalives.
//
// A Config must not be modified after it is passed to New.
type Config struct {
	// HomeDir is the local user's home directory, where ~ in paths and the
	// default ~/.ssh files are looked up. "" means os.UserHomeDir() (which
	// reads $HOME).
	HomeDir string

	// SSHConfigPath is the OpenSSH client configuration file to read,
	// like ssh -F: it must exist, and (as with ssh -F) the system-wide
	// file is then not read unless SystemSSHConfigPath names it. ""
	// means ~/.ssh/config, which may be missing (an unreadable one is an
	// error).
	SSHConfigPath string
	// SystemSSHConfigPath is the system-wide ssh_config, read after the
	// user's file as ssh does: a value set in either file first wins.
	// "" means DefaultSystemSSHConfig (/etc/ssh/ssh_config, which may be
	// missing) when SSHConfigPath is "", and no system file otherwise;
	// "none" means no system file; any other path must exist. Relative
	// Include paths in it are taken from /etc/ssh.
	SystemSSHConfigPath string
	// IgnoreSSHConfig, when true, reads no ssh_config file at all: only
	// the URL and this Config count.
	IgnoreSSHConfig bool
	// RefuseProxyCommand, when true, makes New fail for a destination
	// (or first ProxyJump host) whose ssh_config sets a ProxyCommand, for
	// programs that must never start a local process. false runs the
	// command as ssh does: see the package documentation.
	RefuseProxyCommand bool

	// KnownHostsFiles are the known_hosts files host keys are checked
	// against. nil means the UserKnownHostsFile and GlobalKnownHostsFile
	// of the host's ssh_config entry, or else OpenSSH's defaults
	// (~/.ssh/known_hosts, ~/.ssh/known_hosts2, /etc/ssh/ssh_known_hosts,
	// /etc/ssh/ssh_known_hosts2). Missing files count as empty.
	KnownHostsFiles []string
	// HostKeyPolicy decides what happens to an unknown host. The zero
	// value, hostkeys.Strict, refuses it; hostkeys.AcceptNew trusts it
	// on first use and appends its key to the first known_hosts file;
	// hostkeys.Insecure accepts any key, changed or revoked ones too,
	// with a warning. StrictHostKeyChecking in ssh_config is
	// deliberately not read: the program chooses.
	HostKeyPolicy hostkeys.Policy
	// HostKeyCheck replaces the known_hosts check. nil means the hostkeys
	// package with KnownHostsFiles and HostKeyPolicy. Use it to pin a key
	// the program stores itself.
	HostKeyCheck HostKeyFunc

	// IdentityFiles are private key files to try, in order, after the
	// agent's keys and before the IdentityFile entries of the host's
	// ssh_config entry (as ssh -i comes before them). When neither names
	// a file, ~/.ssh/id_ed25519, id_ecdsa and id_rsa are tried. Missing
	// default files are skipped silently, missing named ones with a note
	// in the authentication error. A certificate at PATH-cert.pub is
	// offered with its key. ~ and ssh_config %-tokens are expanded.
	IdentityFiles []string
	// CertificateFiles are user certificates (ssh-keygen -s ... -I ID
	// id.pub makes one) to offer, before those of the host's ssh_config
	// CertificateFile entries and, as ssh does, before every plain key.
	// Each is offered with the private key whose public key it
	// certifies, from the identity files or the agent; one without such
	// a key, or that is no user certificate, is skipped with a note in
	// the authentication error. ~ and ssh_config %-tokens are expanded.
	// (A certificate at PATH-cert.pub beside an identity file is offered
	// with it without being listed.)
	CertificateFiles []string
	// Passphrase is asked for the passphrase of an encrypted identity
	// file, at most once per file per Dialer. nil means encrypted files
	// are skipped, with a note in the authentication error. The dialer
	// itself never prompts on a terminal.
	Passphrase PassphraseFunc
	// AgentSocket is the SSH agent's socket. "" means IdentityAgent from
	// ssh_config, or else $SSH_AUTH_SOCK; "none" means no agent.
	AgentSocket string
	// PasswordPolicy decides what a password in the URL may do. The zero
	// value, PasswordOnce, uses it for the first SSH connection only.
	PasswordPolicy PasswordPolicy

	// RemoteDocker is the docker CLI on the remote host. "" means
	// "docker", looked up in the remote PATH of a non-interactive SSH
	// session (often shorter than a login shell's).
	RemoteDocker string
	// Transport chooses how a conn reaches the remote daemon. The zero
	// value, TransportDialStdio, runs "docker system dial-stdio".
	Transport Transport
	// DialAhead is how many dial-stdio conns the Dialer keeps open ahead
	// of need, once a first DialContext succeeded, so that the next one
	// finds the remote docker process already started rather than
	// waiting about 90 ms for it (every exec attach, and every request
	// that needs a new connection, pays that wait). Each spare holds a
	// session on the server (counted against its MaxSessions) and an idle
	// docker process; one unused for 30 seconds is replaced when next
	// needed. It does not apply to TransportStreamLocal, whose conns open
	// in one round trip. 0 means none.
	DialAhead int

	// MaxConnections bounds the SSH connections kept to the destination.
	// One connection serves many conns; another is opened only when the
	// server refuses a new session (sshd MaxSessions, 10 by default). 0
	// (or negative) means 8.
	MaxConnections int
	// ConnectTimeout bounds TCP connect, handshake and authentication of
	// one SSH connection (all ProxyJump hops included), on top of the
	// DialContext context. 0 means 30 seconds; negative means only the
	// context bounds it.
	ConnectTimeout time.Duration
	// KeepAliveInterval is how often an idle-or-not SSH connection sends
	// a keepalive@openssh.com request. 0 means 15 seconds; negative
	// disables keepalives (a dead link is then noticed only by TCP).
	KeepAliveInterval time.Duration
	// KeepAliveCountMax is how many intervals a keepalive may go
	// unanswered before the connection is declared dead, its conns fail
	// and the next DialContext reconnects (OpenSSH's ServerAliveCountMax).
	// 0 (or negative) means 3.
	KeepAliveCountMax int
	// CloseGrace is how long a closed conn lets the remote command finish
	// after end-of-file before it is sent SIGTERM (a second later SIGKILL,
	// and a second after that its channel is closed regardless). Close
	// itself never waits. 0 means 2 seconds; negative means SIGTERM right
	// after EOF.
	CloseGrace time.Duration

	// Logger receives warnings (a password in the URL, a dead SSH
	// connection, an insecure host key policy) and, at level Debug, a
	// line for each stage, all through a redacting handler. nil means
	// slog.Default(), whose default handler prints Info and above, so the
	// debug lines stay silent; slog.New(slog.DiscardHandler) silences
	// everything.
	Logger *slog.Logger
	// DialTCP opens the TCP connection to the SSH server (or the first
	// ProxyJump hop), unless a ProxyCommand reaches it. nil means a
	// net.Dialer. Tests use it to count or
	// break connections.
	DialTCP DialFunc
}

// DialFunc has the signature of net.Dialer.DialContext.
type DialFunc func(ctx context.Context, network, addr string) (net.Conn, error)

// PassphraseFunc returns the passphrase for the encrypted private key file
// at path. An error skips the file; the error is noted in the
// authentication error.
type PassphraseFunc func(path string) ([]byte, error)

// HostKeyFunc returns the host key callback for the SSH server at hostport
// ("host:port", as it is dialed and written in known_hosts), and the host
// key algorithms to offer, most preferred first (nil means x/crypto's
// defaults). knownHosts are the files the Config or ssh_config name for
// that host.
type HostKeyFunc func(hostport string, knownHosts []string) (ssh.HostKeyCallback, []string, error)

// PasswordPolicy decides what a password in the URL may do. The dialer
// keeps it in a byte slice that it zeroes when it is no longer needed; Go
// cannot wipe the caller's URL string or the copies x/crypto makes.
type PasswordPolicy int

const (
	// PasswordOnce uses the URL's password for the first SSH connection
	// and then wipes it: reconnects and extra connections must succeed
	// with keys. A warning is logged once.
	PasswordOnce PasswordPolicy = iota
	// PasswordKeep keeps the password for every connection until Close.
	// A warning is logged once.
	PasswordKeep
	// PasswordRefuse makes New fail on a URL that contains a password.
	PasswordRefuse
)

// String returns "once", "keep" or "refuse".
func (p PasswordPolicy) String() string {
	switch p {
	case PasswordOnce:
		return "once"
	case PasswordKeep:
		return "keep"
	case PasswordRefuse:
		return "refuse"
	}
	return fmt.Sprintf("PasswordPolicy(%d)", int(p))
}

// Transport chooses how a conn reaches the remote Docker daemon.
type Transport int

const (
	// TransportDialStdio opens an SSH session per conn running
	// "docker system dial-stdio", as the Docker CLI does. It works with
	// any sshd that lets the user run docker; each session counts
	// against sshd's MaxSessions.
	TransportDialStdio Transport = iota
	// TransportStreamLocal opens a direct-streamlocal@openssh.com channel
	// to the socket path named in the URL: no remote process per conn,
	// and such channels do not count against MaxSessions. It falls back
	// to dial-stdio when the URL names no socket or the server refuses
	// the channel (AllowStreamLocalForwarding no, or no socket there:
	// OpenSSH does not say which); after a refusal, dials use dial-stdio
	// for a minute before streamlocal is tried again.
	TransportStreamLocal
)

// String returns "dial-stdio" or "streamlocal".
func (t Transport) String() string {
	switch t {
	case TransportDialStdio:
		return "dial-stdio"
	case TransportStreamLocal:
		return "streamlocal"
	}
	return fmt.Sprintf("Transport(%d)", int(t))
}

// Defaults for zero Config fields.
const (
	defaultMaxConnections    = 8
	defaultConnectTimeout    = 30 * time.Second
	defaultKeepAliveInterval = 15 * time.Second
	defaultKeepAliveCountMax = 3
	defaultCloseGrace        = 2 * time.Second
	defaultRemoteDocker      = "docker"
)
