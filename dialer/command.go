package dialer

import (
	"errors"
	"fmt"
	"strings"

	"github.com/dockssh/dockssh/internal/shquote"
)

// remoteCommand returns the command line that sshd hands to the remote
// user's shell: dockerBin system dial-stdio, with --host=unix://SOCKET
// first when the URL names a socket (as the Docker CLI's ssh helper does, so
// rootless and non-default daemons work). Every argument is quoted for a
// POSIX shell.
func remoteCommand(dockerBin, socket string) string {
	args := []string{dockerBin}
	if socket != "" {
		args = append(args, "--host=unix://"+socket)
	}
	args = append(args, "system", "dial-stdio")
	return shquote.Join(args)
}

// checkRemoteArg rejects what no quoting makes safe everywhere: control
// characters (a newline ends the command in csh and friends; NUL truncates
// it in sshd) and backslashes (fish and csh treat them specially even
// inside single quotes). A leading '-' would turn a path into an option.
func checkRemoteArg(what, s string) error {
	if s == "" {
		return fmt.Errorf("%s is empty", what)
	}
	if strings.HasPrefix(s, "-") {
		return fmt.Errorf("%s must not start with '-'", what)
	}
	for _, r := range s {
		if r < 0x20 || r == 0x7f {
			return fmt.Errorf("%s contains a control character", what)
		}
	}
	if strings.ContainsRune(s, '\\') {
		return errors.New(what + " contains a backslash")
	}
	return nil
}
