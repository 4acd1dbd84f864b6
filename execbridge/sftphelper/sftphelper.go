// Package sftphelper is the SFTP server that execbridge's Docker backend
// copies into a container that has none of its own, and runs there as the
// session user.
//
// The server is github.com/pkg/sftp's Server on the process's standard
// input and output. It serves the container's real file system with the
// process's own credentials, so the kernel in the container decides what
// the session user may read and write, exactly as with OpenSSH's
// sftp-server; nothing is checked or emulated here.
//
// A program becomes the helper by calling Main first thing in its main
// function, before it parses flags:
//
//	func main() {
//		sftphelper.Main() // serves SFTP and exits when started as the helper
//		// ... the program's own work
//	}
//
// Build it as a static Linux executable of the containers' architecture
// (CGO_ENABLED=0 GOOS=linux GOARCH=amd64 go build) and name it in
// execbridge.DockerConfig.SFTPHelper. A program that imports this package
// alone, rather than the whole server, makes a helper of about 3 MB.
package sftphelper

import (
	"cmp"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/pkg/sftp"
)

// Arg is the first argument that makes Main serve SFTP. It is long and
// unusual so that no program's own command line starts with it.
const Arg = "--dockssh-sftp-helper-v1"

// Main serves SFTP on standard input and output and exits the process
// when the first argument is Arg; otherwise it returns at once and does
// nothing. The exit status is 0 when the client ended the session (end
// of file on standard input) and 1 on an error, which is written to
// standard error.
//
// One option may follow Arg: -R serves read-only, as OpenSSH's
// sftp-server -R (Config.ReadOnly). Any other argument is an error.
//
// The server starts in $HOME, which the container runtime sets from the
// user's /etc/passwd entry ("/" without one), so that relative paths and
// "~" (which OpenSSH's sftp and scp clients resolve against the starting
// directory) are the session user's home, as with sshd; when $HOME cannot
// be entered it starts in "/".
func Main() {
	if len(os.Args) < 2 || os.Args[1] != Arg {
		return
	}
	os.Exit(run(os.Args[2:], os.Stdin, os.Stdout, os.Stderr, os.Getenv("HOME")))
}

// run is Main's work, apart from the process, for tests.
func run(args []string, in io.Reader, out io.WriteCloser, errOut io.Writer, home string) int {
	var cfg Config
	for _, a := range args {
		if a != "-R" {
			fmt.Fprintf(errOut, "dockssh sftp helper: unknown argument %q (only -R is known)\n", a)
			return 1
		}
		cfg.ReadOnly = true
	}
	if err := os.Chdir(cmp.Or(home, "/")); err != nil {
		if err := os.Chdir("/"); err != nil {
			fmt.Fprintf(errOut, "dockssh sftp helper: %v\n", err)
			return 1
		}
	}
	if err := Serve(in, out, &cfg); err != nil {
		fmt.Fprintf(errOut, "dockssh sftp helper: %v\n", err)
		return 1
	}
	return 0
}

// Config configures Serve. A nil *Config means the zero Config: read and
// write, as far as the process's credentials allow.
type Config struct {
	// ReadOnly refuses every request that would change the file system
	// with "permission denied", as OpenSSH's sftp-server -R does.
	ReadOnly bool
}

// Serve serves one SFTP session (protocol version 3, with OpenSSH's
// posix-rename, statvfs, hardlink and limits extensions) on in and out until in
// ends, with the file system and credentials of the calling process.
// Relative paths are relative to the process's working directory. It
// closes out when it returns, and returns nil when in ended between two
// requests.
//
// Errors of the file system reach the client as SFTP status codes, as
// from OpenSSH's sftp-server: no such file, permission denied, end of
// file, and failure with the system's message for everything else.
func Serve(in io.Reader, out io.WriteCloser, cfg *Config) error {
	opts := []sftp.ServerOption{sftp.WithMaxTxPacket(maxReadWrite)}
	if cfg != nil && cfg.ReadOnly {
		opts = append(opts, sftp.ReadOnly())
	}
	replies := newReplyWriter(out)
	srv, err := sftp.NewServer(stdio{&requestReader{r: in, replies: replies}, replies}, opts...)
	if err != nil {
		return fmt.Errorf("sftphelper: %w", err)
	}
	err = srv.Serve()
	out.Close()
	if err != nil && !errors.Is(err, io.EOF) {
		return fmt.Errorf("sftphelper: %w", err)
	}
	return nil
}

// stdio joins standard input and output into the io.ReadWriteCloser that
// the server takes.
type stdio struct {
	io.Reader
	w io.WriteCloser
}

func (s stdio) Write(p []byte) (int, error) { return s.w.Write(p) }
func (s stdio) Close() error                { return s.w.Close() }
