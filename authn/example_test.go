package authn_test

import (
	"crypto/ed25519"
	"crypto/rand"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/dockssh/dockssh/authn"
)

// demoLogin runs one SSH handshake over 127.0.0.1 between an x/crypto
// client and a server configured by a, and returns the grant the
// server's session handler would see.
func demoLogin(a *authn.Authenticator, user string, auth ...ssh.AuthMethod) (*authn.Grant, error) {
	_, hostPriv, _ := ed25519.GenerateKey(rand.Reader)
	host, _ := ssh.NewSignerFromKey(hostPriv)
	cfg := &ssh.ServerConfig{}
	a.Apply(cfg)
	cfg.AddHostKey(host)

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	defer ln.Close()
	done := make(chan struct{})
	go func() {
		defer close(done)
		c, err := ssh.Dial("tcp", ln.Addr().String(), &ssh.ClientConfig{
			User: user, Auth: auth, HostKeyCallback: ssh.FixedHostKey(host.PublicKey()),
		})
		if err == nil {
			c.Close()
		}
	}()
	defer func() { <-done }()
	nc, err := ln.Accept()
	if err != nil {
		return nil, err
	}
	defer nc.Close()
	if err := a.Allow(nc.RemoteAddr()); err != nil {
		return nil, err
	}
	conn, _, _, err := ssh.NewServerConn(nc, cfg)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	return authn.GrantFrom(conn.Permissions)
}

func newSigner() ssh.Signer {
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	s, _ := ssh.NewSignerFromKey(priv)
	return s
}

// quietLogger prints log lines without the time, for stable output.
func quietLogger() *slog.Logger {
	return slog.New(slog.NewTextHandler(os.Stdout, &slog.HandlerOptions{
		ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
			if a.Key == slog.TimeKey || a.Key == "remote" {
				return slog.Attr{}
			}
			return a
		},
	}))
}

// docker-ssh's noAuth: everyone gets in, and the logs say so.
func ExampleNew_insecureNoAuthentication() {
	a, err := authn.New(&authn.Config{InsecureNoAuthentication: true, Logger: quietLogger()})
	if err != nil {
		fmt.Println(err)
		return
	}
	g, err := demoLogin(a, "anyone")
	fmt.Println(g.User, g.NoAuthentication, err)
	// Output:
	// level=ERROR msg="authn: authentication is DISABLED (InsecureNoAuthentication): anyone who reaches this server logs in as any user"
	// level=WARN msg="authn: success" user=anyone method=none result=success reason="InsecureNoAuthentication: no credential checked"
	// anyone true <nil>
}

// docker-ssh's simpleAuth: one user with a password in clear, compared in
// constant time.
func ExampleNew_oneUser() {
	a, err := authn.New(&authn.Config{
		Passwords: &authn.PasswordConfig{Users: []authn.PasswordUser{{Name: "jeroen", Password: "1234"}}},
		Logger:    slog.New(slog.DiscardHandler),
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	g, err := demoLogin(a, "jeroen", ssh.Password("1234"))
	fmt.Println(g.User, g.Methods, err)
	_, err = demoLogin(a, "jeroen", ssh.Password("12345"))
	fmt.Println(err != nil)
	// Output:
	// jeroen [password] <nil>
	// true
}

// docker-ssh's multiUser with hashed passwords: argon2id and bcrypt.
func ExampleNew_manyUsers() {
	lukeHash, _ := authn.HashArgon2id([]byte("theforce"), nil)
	a, err := authn.New(&authn.Config{
		Passwords: &authn.PasswordConfig{
			Users: []authn.PasswordUser{
				{Name: "luke", Hash: lukeHash},
				{Name: "leia", Hash: "$2a$10$450/POeHH9P2Xb2QTe1csObWxftLS5LgPmqCTE/dyvjyoo89DnBfO"}, // bcrypt of "alderaan"
			},
			MaxConcurrentHashes: 2,               // at most two hashes at once
			HashWait:            time.Second / 2, // then fail the attempt
		},
		Logger: slog.New(slog.DiscardHandler),
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, u := range []struct{ name, pw string }{{"leia", "alderaan"}, {"luke", "theforce"}, {"luke", "wrong"}} {
		g, err := demoLogin(a, u.name, ssh.Password(u.pw))
		if err != nil {
			fmt.Println(u.name, "refused")
			continue
		}
		fmt.Println(g.User, "in")
	}
	// Output:
	// leia in
	// luke in
	// luke refused
}

// A users file holds one "name:hash" per line and is re-read when it
// changes.
func ExampleNew_usersFile() {
	dir, _ := os.MkdirTemp("", "authn-example")
	defer os.RemoveAll(dir)
	h, _ := authn.HashArgon2id([]byte("pw"), &authn.Argon2Params{Memory: 19 * 1024, Time: 2, Threads: 1})
	path := filepath.Join(dir, "users")
	_ = os.WriteFile(path, []byte("# name:hash\nalice:"+h+"\n"), 0o600)

	a, err := authn.New(&authn.Config{
		Passwords: &authn.PasswordConfig{File: path},
		Logger:    slog.New(slog.DiscardHandler),
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	g, err := demoLogin(a, "alice", ssh.Password("pw"))
	fmt.Println(g.User, err)
	// Output: alice <nil>
}

// authorized_keys with OpenSSH options; the session handler enforces what
// the Grant says.
func ExampleNew_authorizedKeys() {
	user := newSigner()
	line := `restrict,pty,command="uptime",from="10.0.0.0/8,127.0.0.1" ` + string(ssh.MarshalAuthorizedKey(user.PublicKey()))
	a, err := authn.New(&authn.Config{
		// Files: []string{"/etc/dockssh/authorized_keys"} re-reads a file when it changes.
		AuthorizedKeys: &authn.AuthorizedKeysConfig{Content: line},
		Logger:         slog.New(slog.DiscardHandler),
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	g, err := demoLogin(a, "deploy", ssh.PublicKeys(user))
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(g.User, g.Methods, g.Keys[0].Fingerprint == ssh.FingerprintSHA256(user.PublicKey()))
	fmt.Printf("force-command=%q pty=%v port-forwarding=%v\n", g.ForceCommand, g.PTY, g.PortForwarding)
	// Output:
	// deploy [publickey] true
	// force-command="uptime" pty=true port-forwarding=false
}

// User certificates signed by a trusted CA; the certificate must name the
// user as a principal.
func ExampleNew_certificates() {
	ca, user := newSigner(), newSigner()
	cert := &ssh.Certificate{
		Key:             user.PublicKey(),
		CertType:        ssh.UserCert,
		KeyId:           "alice@laptop",
		ValidPrincipals: []string{"alice"},
		ValidAfter:      uint64(time.Now().Add(-time.Minute).Unix()),
		ValidBefore:     uint64(time.Now().Add(time.Hour).Unix()),
		Permissions: ssh.Permissions{
			CriticalOptions: map[string]string{"force-command": "/usr/bin/backup"},
			Extensions:      map[string]string{"permit-pty": ""},
		},
	}
	_ = cert.SignCert(rand.Reader, ca)
	certSigner, _ := ssh.NewCertSigner(cert, user)

	a, err := authn.New(&authn.Config{
		Certificates: &authn.CertificateConfig{TrustedCAKeys: []ssh.PublicKey{ca.PublicKey()}},
		Logger:       slog.New(slog.DiscardHandler),
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	g, err := demoLogin(a, "alice", ssh.PublicKeys(certSigner))
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(g.User, g.Keys[0].CertKeyID, g.ForceCommand, g.PTY, g.AgentForwarding)
	_, err = demoLogin(a, "bob", ssh.PublicKeys(certSigner))
	fmt.Println("bob:", err != nil)
	// Output:
	// alice alice@laptop /usr/bin/backup true false
	// bob: true
}

// A chain like sshd's "AuthenticationMethods publickey,password".
func ExampleNew_chain() {
	user := newSigner()
	a, err := authn.New(&authn.Config{
		AuthorizedKeys: &authn.AuthorizedKeysConfig{Content: string(ssh.MarshalAuthorizedKey(user.PublicKey()))},
		Passwords:      &authn.PasswordConfig{Users: []authn.PasswordUser{{Name: "ops", Password: "second factor"}}},
		Methods:        [][]authn.Method{{authn.MethodPublicKey, authn.MethodPassword}},
		Logger:         slog.New(slog.DiscardHandler),
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	g, err := demoLogin(a, "ops", ssh.PublicKeys(user), ssh.Password("second factor"))
	fmt.Println(g.Methods, err)
	_, err = demoLogin(a, "ops", ssh.PublicKeys(user))
	fmt.Println("key alone:", err != nil)
	// Output:
	// [publickey password] <nil>
	// key alone: true
}

// docker-ssh's environment variables, read through an injected lookup
// (os.LookupEnv in a real program).
func ExampleConfigFromEnv() {
	env := map[string]string{
		"AUTH_MECHANISM": "multiUser",
		"AUTH_TUPLES":    `jeroen:thefather;luke:the\;force`,
	}
	cfg, err := authn.ConfigFromEnv(func(k string) (string, bool) { v, ok := env[k]; return v, ok })
	if err != nil {
		fmt.Println(err)
		return
	}
	cfg.Logger = slog.New(slog.DiscardHandler)
	a, err := authn.New(cfg)
	if err != nil {
		fmt.Println(err)
		return
	}
	g, err := demoLogin(a, "luke", ssh.Password("the;force"))
	fmt.Println(g.User, err)
	// Output: luke <nil>
}

func ExampleParseAuthTuples() {
	users, err := authn.ParseAuthTuples(`alice:pa\;ss:word;dom\:bob:x\\y`)
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, u := range users {
		fmt.Printf("%q %q\n", u.Name, u.Password)
	}
	// Output:
	// "alice" "pa;ss:word"
	// "dom:bob" "x\\y"
}

// The session handler reads the grant from the connection's Permissions.
func ExampleGrantFrom() {
	user := newSigner()
	a, _ := authn.New(&authn.Config{
		AuthorizedKeys: &authn.AuthorizedKeysConfig{Content: `restrict,port-forwarding,permitopen="db:5432",environment="ROLE=ro" ` + string(ssh.MarshalAuthorizedKey(user.PublicKey()))},
		Logger:         slog.New(slog.DiscardHandler),
	})
	// In a server: conn, chans, reqs, err := ssh.NewServerConn(nc, cfg)
	//              g, err := authn.GrantFrom(conn.Permissions)
	g, err := demoLogin(a, "app", ssh.PublicKeys(user))
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("pty:", g.PTY)
	fmt.Println("open db:5432:", g.MayOpen("db", 5432))
	fmt.Println("open db:22:", g.MayOpen("db", 22))
	fmt.Println("env:", g.Environment)
	// Output:
	// pty: false
	// open db:5432: true
	// open db:22: false
	// env: [ROLE=ro]
}

// Allow turns away sources under penalty right after Accept.
func ExampleAuthenticator_Allow() {
	a, err := authn.New(&authn.Config{
		Passwords: &authn.PasswordConfig{Users: []authn.PasswordUser{{Name: "u", Password: "pw"}}},
		Penalties: &authn.PenaltyConfig{Exempt: []string{"10.0.0.0/8"}}, // nil means defaults
		Logger:    slog.New(slog.DiscardHandler),
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer ln.Close()
	go func() {
		nc, err := net.Dial("tcp", ln.Addr().String())
		if err == nil {
			nc.Close()
		}
	}()
	nc, err := ln.Accept()
	if err != nil {
		fmt.Println(err)
		return
	}
	if err := a.Allow(nc.RemoteAddr()); err != nil {
		nc.Close() // penalized: no SSH work spent on it
		return
	}
	fmt.Println("allowed")
	nc.Close()
	// Output: allowed
}

func ExampleHashArgon2id() {
	h, err := authn.HashArgon2id([]byte("correct horse battery staple"), nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(strings.Join(strings.Split(h, "$")[:4], "$"))
	// Output: $argon2id$v=19$m=65536,t=3,p=4
}

func ExampleUserFilePattern() {
	f := authn.UserFilePattern("/etc/dockssh/keys/%u")
	fmt.Println(f("alice"))
	fmt.Println(f("../../etc/shadow"))
	// Output:
	// /etc/dockssh/keys/alice true
	//  false
}

func ExamplePasswordUser_String() {
	u := authn.PasswordUser{Name: "alice", Password: "hunter2"}
	fmt.Println(u)
	fmt.Printf("%#v\n", u)
	// Output:
	// PasswordUser{Name: "alice", clear password}
	// PasswordUser{Name: "alice", clear password}
}
