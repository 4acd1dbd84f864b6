// Command docker-sshd is an SSH server, SFTP server and web terminal into
// Docker containers: a drop-in replacement for docker-ssh, built from
// dockssh's packages (authn, hostkeys, envsanitize, redact, execbridge,
// sse).
//
//	go run ./examples/docker-sshd -container web1 -auth-mechanism simpleAuth -auth-user u -auth-password p -port 2222
//	ssh -p 2222 u@127.0.0.1
//
// It reads docker-ssh's environment variables (FILTERS, CONTAINER,
// AUTH_MECHANISM, ...) with the same meaning, and flags of the same
// names; -h lists them all. The Docker Engine is found as the Docker CLI
// finds it (DOCKER_HOST, else the local socket). See docs/docker-sshd.md.
//
// Build it static (CGO_ENABLED=0) so that it can serve SFTP into
// containers that have no sftp-server: it copies itself there.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	os.Exit(run(os.Args[1:], envLookup, os.Stderr))
}

// run is main without the process-wide parts, for tests: it returns the
// exit status.
func run(args []string, getenv func(string) (string, bool), stderr io.Writer) int {
	opts, given, err := parseOptions(args, getenv, stderr)
	if errors.Is(err, errHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintf(stderr, "docker-sshd: %v\n", err)
		return exitUsage
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	srv, err := newServer(ctx, opts, given, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "docker-sshd: %v\n", err)
		return 1
	}
	if err := srv.serve(ctx); err != nil {
		fmt.Fprintf(stderr, "docker-sshd: %v\n", err)
		return 1
	}
	return 0
}
