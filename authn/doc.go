// Package authn provides SSH server authentication for
// golang.org/x/crypto/ssh: no authentication (explicitly), passwords in
// clear or hashed (argon2id, bcrypt), authorized_keys files with OpenSSH's
// options, user certificates, AuthenticationMethods-style chains,
// per-source penalties and docker-ssh's environment configuration.
//
// An Authenticator fills the authentication callbacks of an
// ssh.ServerConfig. The identity and the restrictions of a login (forced
// command, no-pty, environment, forwarding limits) travel in the
// connection's ssh.Permissions; GrantFrom decodes them for the session
// handler, which must enforce them.
//
//	a, err := authn.New(&authn.Config{
//		AuthorizedKeys: &authn.AuthorizedKeysConfig{Files: []string{"/etc/dockssh/authorized_keys"}},
//		Logger:         logger,
//	})
//	if err != nil { ... }
//	cfg := &ssh.ServerConfig{}
//	a.Apply(cfg)
//	cfg.AddHostKey(hostKey)
//	for {
//		nc, err := ln.Accept()
//		if err != nil { ... }
//		if a.Allow(nc.RemoteAddr()) != nil { // source under penalty
//			nc.Close()
//			continue
//		}
//		go func() {
//			conn, chans, reqs, err := ssh.NewServerConn(nc, cfg)
//			if err != nil { ... }
//			grant, err := authn.GrantFrom(conn.Permissions)
//			...
//		}()
//	}
//
// The identity of a login is taken only from the callback that succeeded,
// after x/crypto verified the client's signature (VerifiedPublicKeyCallback),
// so a client that asks about one key and signs with another is the
// other (CVE-2024-45337). No password, hash or private key reaches a log
// line or an error.
package authn
