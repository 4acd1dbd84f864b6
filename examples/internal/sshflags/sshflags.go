// Package sshflags holds the SSH client flags that the client examples
// share (-F, the identity file, -accept-new, -streamlocal, -v, -timeout)
// and turns them into a dialer.Config.
package sshflags

import (
	"flag"
	"log/slog"
	"os"
	"time"

	"github.com/dockssh/dockssh/dialer"
	"github.com/dockssh/dockssh/hostkeys"
)

// Flags are the parsed values.
type Flags struct {
	SSHConfig   string
	Identity    string
	AcceptNew   bool
	StreamLocal bool
	Verbose     bool
	Timeout     time.Duration
}

// Register defines the flags on fs: the identity file under the name
// identityFlag ("i" as ssh, or another where -i means something else),
// and -timeout with timeoutHelp.
func Register(fs *flag.FlagSet, identityFlag, timeoutHelp string) *Flags {
	f := &Flags{}
	fs.StringVar(&f.SSHConfig, "F", "", "ssh_config file (default ~/.ssh/config)")
	fs.StringVar(&f.Identity, identityFlag, "", "identity file, tried after the agent's keys (ssh -i)")
	fs.BoolVar(&f.AcceptNew, "accept-new", false, "trust an unknown host on first use and add it to known_hosts")
	fs.BoolVar(&f.StreamLocal, "streamlocal", false, "use direct-streamlocal channels to the socket in the URL (falls back to dial-stdio)")
	fs.BoolVar(&f.Verbose, "v", false, "log each stage of the connection to stderr")
	fs.DurationVar(&f.Timeout, "timeout", 30*time.Second, timeoutHelp)
	return f
}

// Config is the dialer configuration the flags ask for.
func (f *Flags) Config() *dialer.Config {
	// net/http, under the Docker client, does not pass a request's
	// deadline to the dial: a server that does not answer would show
	// only as "context deadline exceeded" at -timeout. With half of it
	// as ConnectTimeout the dialer's own error, which names the stage
	// and the wait, comes first.
	cfg := &dialer.Config{SSHConfigPath: f.SSHConfig, ConnectTimeout: f.Timeout / 2}
	if f.Identity != "" {
		cfg.IdentityFiles = []string{f.Identity}
	}
	if f.AcceptNew {
		cfg.HostKeyPolicy = hostkeys.AcceptNew
	}
	if f.StreamLocal {
		cfg.Transport = dialer.TransportStreamLocal
	}
	if f.Verbose {
		cfg.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return cfg
}
