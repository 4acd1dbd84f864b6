// Package execbridge serves SSH sessions by running them as processes in
// containers: each "session" channel of an x/crypto/ssh server connection
// becomes a `docker exec` (or another engine's exec) in a target container,
// with a pseudo-terminal, environment, signals, stdin end-of-file, separate
// stdout and stderr, the real exit status, and no process left behind when
// the client goes away.
//
// A Bridge holds what every session needs: a Backend that starts processes
// (NewDockerBackend for the Docker Engine), a Resolver that picks the target
// container for a login, and the session policy (shell, user, environment,
// limits). ServeConn serves one authenticated connection; Server accepts
// connections on a listener and shuts down gracefully.
//
//	docker, _ := client.New(client.FromEnv)
//	b, err := execbridge.New(&execbridge.Config{
//		Backend:  execbridge.NewDockerBackend(docker, nil),
//		Resolver: &execbridge.DockerResolver{Client: docker, Container: "web1"},
//	})
//	if err != nil { ... }
//	sc := &ssh.ServerConfig{}
//	auth.Apply(sc) // an authn.Authenticator
//	sc.AddHostKey(hostKey)
//	srv := &execbridge.Server{Bridge: b, SSHConfig: sc, Allow: auth.Allow}
//	go srv.Serve(ln)
//	...
//	srv.Shutdown(ctx)
//
// A Fleet serves containers on several engines through one Bridge: it is
// the Resolver and the Backend over named Endpoints (each a Backend and a
// Resolver, for example of a Docker client that package dialer connects
// over SSH), routes "alice+web1.host-a" to one of them, and fails only the
// sessions of an endpoint that does not answer.
//
// A login's restrictions from authn (forced command, no-pty, environment
// options, the restrict family) are enforced for every session; see
// docs/execbridge.md for the security model and the routing syntax of SSH
// user names ("alice+web1").
package execbridge
