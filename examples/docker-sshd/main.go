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
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/dockssh/dockssh/authn"
	"github.com/dockssh/dockssh/execbridge/sftphelper"
)

func main() {
	// In a container without an sftp-server, this very binary serves SFTP
	// (copied there by the Docker backend): it does nothing else then.
	sftphelper.Main()
	os.Exit(run(os.Args[1:], envLookup, os.Stderr))
}

// run is main without the process-wide parts, for tests: it returns the
// exit status.
func run(args []string, getenv func(string) (string, bool), stderr io.Writer) int {
	if len(args) > 0 && args[0] == "hash-password" {
		return hashPassword(os.Stdin, os.Stdout, stderr)
	}
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

// hashPassword reads a password (one line) from in and prints its argon2id
// hash, for AUTH_USERS_FILE lines: `docker-sshd hash-password`.
func hashPassword(in io.Reader, out, stderr io.Writer) int {
	line, err := bufio.NewReader(in).ReadString('\n')
	if err != nil && err != io.EOF {
		fmt.Fprintf(stderr, "docker-sshd: reading the password: %v\n", err)
		return 1
	}
	pw := strings.TrimRight(line, "\r\n")
	if pw == "" {
		fmt.Fprintln(stderr, "docker-sshd: hash-password reads the password from standard input; it was empty")
		return 1
	}
	h, err := authn.HashArgon2id([]byte(pw), nil)
	if err != nil {
		fmt.Fprintf(stderr, "docker-sshd: %v\n", err)
		return 1
	}
	fmt.Fprintln(out, h)
	return 0
}
