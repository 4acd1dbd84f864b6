package execbridge

import (
	"cmp"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path"
	"strings"
	"sync/atomic"
	"time"

	"github.com/dockssh/dockssh/envsanitize"
)

// Config configures a Bridge. Backend and Resolver are required; every
// other zero field means the default its doc names.
type Config struct {
	// Backend starts the session processes (NewDockerBackend). Required.
	Backend Backend

	// Resolver picks the target of each session (DockerResolver).
	// Required.
	Resolver Resolver

	// Shell is the shell that runs interactive sessions and commands in
	// the container: an absolute path, or a program name the engine looks
	// up in the container's PATH, as docker exec does (docker-ssh's
	// CONTAINER_SHELL, "bash" there). Empty means the Backend's choice
	// per container: bash when present, otherwise sh.
	Shell string

	// User is the user that session processes run as in the container:
	// a name, a UID or "uid:gid" (docker-ssh's SHELL_USER). Empty means
	// the image's USER.
	User string

	// Dir is the working directory of session processes. Empty means the
	// image's working directory.
	Dir string

	// Env decides which "env" requests reach the process, and which
	// environment= options of a login. nil means envsanitize.SSHSession().
	Env *envsanitize.Policy

	// Banner is shown before the first prompt of an interactive shell
	// with a terminal (the message of the day). It is never shown to a
	// command, or to a shell without a terminal, so their output stays
	// byte for byte what the process wrote. Empty means none.
	Banner string

	// MaxSessions is the most session channels one connection may have
	// open at once; more are refused. Zero means 10, as sshd's
	// MaxSessions.
	MaxSessions int

	// StartTimeout bounds finding the target and starting the process of
	// a session. Zero means 30 seconds.
	StartTimeout time.Duration

	// IdleTimeout closes a connection that has had no open channel for
	// this long, as sshd's UnusedConnectionTimeout. Zero means never.
	IdleTimeout time.Duration

	// KeepAliveInterval is how often a connection that sent nothing is
	// asked for a sign of life (keepalive@openssh.com, as sshd's
	// ClientAliveInterval); after KeepAliveCountMax unanswered requests
	// the connection is closed and its processes are ended. Zero means
	// 15 seconds; negative turns keepalives off.
	KeepAliveInterval time.Duration

	// KeepAliveCountMax is the number of unanswered keepalives that end
	// a connection. Zero means 3, as sshd's ClientAliveCountMax.
	KeepAliveCountMax int

	// Recording, if non-nil, records every session with a terminal as
	// an asciicast v2 file. A session whose recording cannot be created
	// is refused. nil means no recording.
	Recording *Recording

	// Logger receives one record per session (the audit line) and
	// problems. Give it a redacting handler (redact.NewHandler) when
	// commands may hold secrets. nil means slog.Default().
	Logger *slog.Logger

	// Now returns the current time, for durations in the audit records.
	// nil means time.Now.
	Now func() time.Time
}

// Bridge serves SSH sessions as processes in containers. It is safe for
// concurrent use by many connections.
type Bridge struct {
	recordings atomic.Uint64 // recordings made, for unique file names

	cfg    Config
	env    envsanitize.Policy
	logger *slog.Logger
	now    func() time.Time
}

// New checks cfg and returns a Bridge.
func New(cfg *Config) (*Bridge, error) {
	if cfg == nil {
		return nil, errors.New("execbridge: nil Config: Backend and Resolver are required")
	}
	if cfg.Backend == nil || cfg.Resolver == nil {
		return nil, errors.New("execbridge: Config.Backend and Config.Resolver are required")
	}
	if cfg.Shell != "" && !path.IsAbs(cfg.Shell) && strings.Contains(cfg.Shell, "/") {
		return nil, fmt.Errorf("execbridge: Config.Shell %q is neither an absolute path nor a program name", cfg.Shell)
	}
	if cfg.Recording != nil {
		if fi, err := os.Stat(cfg.Recording.Dir); err != nil || !fi.IsDir() {
			return nil, fmt.Errorf("execbridge: Config.Recording.Dir %q is not a directory", cfg.Recording.Dir)
		}
	}
	b := &Bridge{cfg: *cfg}
	b.cfg.MaxSessions = cmp.Or(max(b.cfg.MaxSessions, 0), 10)
	b.cfg.StartTimeout = cmp.Or(max(b.cfg.StartTimeout, 0), 30*time.Second)
	b.cfg.KeepAliveInterval = cmp.Or(b.cfg.KeepAliveInterval, 15*time.Second)
	b.cfg.KeepAliveCountMax = cmp.Or(max(b.cfg.KeepAliveCountMax, 0), 3)
	if cfg.Env != nil {
		b.env = *cfg.Env
	} else {
		b.env = envsanitize.SSHSession()
	}
	b.logger = cmp.Or(cfg.Logger, slog.Default())
	b.now = cfg.Now
	if b.now == nil {
		b.now = time.Now
	}
	return b, nil
}
