// Package envsanitize provides the environment policy that decides which
// variables pass into a spawned helper process or an SSH session.
//
// A deny list always wins: dynamic-loader variables (LD_*, DYLD_*, ...),
// the rest of glibc's unsecure list and sudo's env_delete list, interpreter
// paths and options, shell start-up files and exported bash functions, the
// OpenSSL trust store, the commands and configuration tools such as git,
// less and vim run at start-up, and, for variables from anyone but the
// user (Policy.OwnEnvironment), the pager and editor a user picks and what
// an SSH server sets for a session (PATH, HOME, SSH_ORIGINAL_COMMAND).
// After it come OpenSSH AcceptEnv-style allow patterns, name and value
// checks and limits. Every dropped variable comes with a Decision that
// says why, never with its value.
//
// Two callers, two ready policies. A program spawning ssh or docker from
// its user's environment:
//
//	p := envsanitize.Helper()
//	cmd := exec.Command("ssh", "--", host, "docker", "system", "dial-stdio")
//	cmd.Env, _ = p.Filter(os.Environ())
//
// An SSH server deciding "env" requests for a session:
//
//	env := envsanitize.Env{Policy: envsanitize.SSHSession()}
//	// on "pty-req": env.Policy.PTY = true; env.Set("TERM", term)
//	// on "env":     ok := env.Set(name, value) == nil
//	// at "exec":    use env.Environ()
//
// The deny list, with the reason and source of every entry, is in
// docs/envsanitize.md and DenyList.
package envsanitize
