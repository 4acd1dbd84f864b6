package execbridge

import "strings"

// RouteSep separates the login from the target in an SSH user name:
// "alice+web1" logs in as alice and asks for the container web1. '+' can
// appear in no Docker container, Swarm service or Kubernetes object name,
// and OpenSSH, scp and sftp pass it through unquoted.
const RouteSep = "+"

// SplitUser splits an SSH user name into the login (the account that
// authenticates) and the route (the target the user asks for, "" when
// none): "alice+web1" is ("alice", "web1"), "alice" is ("alice", "").
// Only the first '+' separates; the route's own syntax belongs to the
// Resolver.
//
// Use it for authentication too (authn.Config.AccountName), so that
// "alice+web1" checks alice's password and keys.
func SplitUser(user string) (login, route string) {
	login, route, _ = strings.Cut(user, RouteSep)
	return login, route
}
