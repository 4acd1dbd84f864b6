package dialer

import (
	"errors"
	"fmt"
	"strings"
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
	return shellJoin(args)
}

// shellJoin quotes each argument for a POSIX shell and joins them with
// spaces. Arguments made only of characters that no shell treats specially
// stay as they are, so the command reads naturally in logs and ps.
func shellJoin(args []string) string {
	quoted := make([]string, len(args))
	for i, a := range args {
		quoted[i] = shellQuote(a)
	}
	return strings.Join(quoted, " ")
}

// shellQuote quotes s for a POSIX shell: inside single quotes nothing is
// special, and each single quote in s is written as a closing quote, a
// backslash-escaped quote and an opening quote.
func shellQuote(s string) string {
	if s == "" {
		return "''"
	}
	safe := true
	for i := 0; i < len(s); i++ {
		if !isShellSafe(s[i]) {
			safe = false
			break
		}
	}
	if safe {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

func isShellSafe(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	}
	return strings.IndexByte("_-./:@%+=,", c) >= 0
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
