package integration

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"maps"
	"math/big"
	"net"
	"net/http"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dockssh/dockssh/integration/internal/harness"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// fleetEnv is docker-sshd serving four endpoints of one Docker Engine:
// "local" (the socket), "host-a" and "host-b" (two OpenSSH sshd containers
// reached through package dialer, with dial-stdio and direct-streamlocal) and "tls" (tcp:// with client
// certificates, through a TLS proxy to the socket). Each endpoint's filters
// let it see its own target and the shared one, so where a session ran
// tells which endpoint served it.
type fleetEnv struct {
	p            *sshdProc
	sshdA, sshdB *harness.SSHD
	// targets by endpoint: local, host-a, host-b, and shared (seen by all).
	local, a, b, shared *harness.Target
	password            string
	login               []string
}

func startFleet(tb testing.TB) *fleetEnv {
	tb.Helper()
	e := &fleetEnv{password: "fleet-Pw-canary-" + randomHex(tb, 4)}
	tok := "fleet" + randomHex(tb, 3)
	var wg sync.WaitGroup
	// sshd logs a line per session channel at VERBOSE: "Starting session".
	opts := &harness.SSHDOptions{ExtraConfig: "LogLevel VERBOSE"}
	wg.Go(func() { e.sshdA = harness.StartSSHD(tb, opts) })
	wg.Go(func() { e.sshdB = harness.StartSSHD(tb, opts) })
	wg.Go(func() { e.local = harness.StartTarget(tb, tok+"-local") })
	wg.Go(func() { e.a = harness.StartTarget(tb, tok+"-a") })
	wg.Go(func() { e.b = harness.StartTarget(tb, tok+"-b") })
	wg.Go(func() { e.shared = harness.StartTarget(tb, tok+"-shared") })
	wg.Wait()
	if e.sshdA == nil || e.sshdB == nil || e.local == nil || e.a == nil || e.b == nil || e.shared == nil {
		tb.FailNow()
	}
	tlsAddr, tlsFiles := startTLSDockerProxy(tb)

	sshConfig := sshClientConfig(tb, map[string]*harness.SSHD{"host-a": e.sshdA, "host-b": e.sshdB})
	see := func(own string) map[string][]string {
		return map[string][]string{"name": {"^/" + own + "-", "^/" + tok + "-shared-"}}
	}
	endpoints := map[string]any{"endpoints": []map[string]any{
		{"name": "local", "url": "local", "filters": see(tok + "-local")},
		{"name": "host-a", "url": "ssh://host-a", "filters": see(tok + "-a")},
		// host-b reaches the socket with direct-streamlocal channels,
		// host-a with docker system dial-stdio: both transports.
		{"name": "host-b", "url": "ssh://host-b/var/run/docker.sock", "streamLocal": true, "filters": see(tok + "-b")},
		// tls selects by label, the others by name.
		{"name": "tls", "url": "tcp://" + tlsAddr, "tls": tlsFiles, "filters": map[string][]string{"label": {"dockssh.target=" + tok + "-shared"}}},
	}}
	js, err := json.Marshal(endpoints)
	require.NoError(tb, err)
	e.p = startDockerSSHD(tb, map[string]string{
		"ENDPOINTS_FILE":  writeFile(tb, "endpoints.json", string(js)),
		"ROUTING":         "any",
		"SSH_CONFIG":      sshConfig,
		"SSH_KNOWN_HOSTS": e.sshdA.WriteKnownHosts(tb) + "," + e.sshdB.WriteKnownHosts(tb),
		"AUTH_MECHANISM":  "simpleAuth",
		"AUTH_USER":       "u",
		"AUTH_PASSWORD":   e.password,
	})
	e.login = passwordLogin(tb, e.password)
	return e
}

// longSessionCommand prints "started" and runs until it is ended.
const longSessionCommand = "echo started; exec sleep 120"

// longSession is an ssh client running longSessionCommand, for tests that
// take its target away under it.
type longSession struct {
	cmd    *exec.Cmd
	stderr strings.Builder
	done   chan error
}

// startLongSession starts c (running longSessionCommand) and returns once
// the command runs in its target.
func startLongSession(tb testing.TB, c *exec.Cmd) *longSession {
	tb.Helper()
	l := &longSession{cmd: c, done: make(chan error, 1)}
	stdout, err := c.StdoutPipe()
	require.NoError(tb, err)
	c.Stderr = &l.stderr
	require.NoError(tb, c.Start())
	line := make([]byte, len("started\n"))
	_, err = io.ReadFull(stdout, line)
	require.NoError(tb, err)
	go func() { io.Copy(io.Discard, stdout); l.done <- c.Wait() }()
	return l
}

// wait waits up to 60 s for the session to end (because what took its
// target away) and returns the client's exit status and stderr.
func (l *longSession) wait(tb testing.TB, because string) (int, string) {
	tb.Helper()
	select {
	case <-l.done:
		return l.cmd.ProcessState.ExitCode(), l.stderr.String()
	case <-time.After(60 * time.Second):
		l.cmd.Process.Kill()
		<-l.done
		tb.Fatalf("the session did not end when %s", because)
		return 0, ""
	}
}

// sshClientConfig writes an ssh_config with one Host alias per sshd, with
// HostName 127.0.0.1 and the sshd's port, user and client key.
func sshClientConfig(tb testing.TB, hosts map[string]*harness.SSHD) string {
	tb.Helper()
	var b strings.Builder
	for _, alias := range slices.Sorted(maps.Keys(hosts)) {
		s := hosts[alias]
		fmt.Fprintf(&b, "Host %s\n  HostName 127.0.0.1\n  Port %d\n  User %s\n  IdentityFile %s\n  IdentitiesOnly yes\n", alias, s.Port, s.User, s.ClientKeyPath)
	}
	return writeFile(tb, "ssh_config", b.String())
}

// run runs cmd as user through the real ssh client.
func (e *fleetEnv) run(tb testing.TB, user, cmd string) (stdout, stderr string, status int) {
	tb.Helper()
	return runCmd(tb, e.p.ssh(tb, user, e.login, nil, cmd), nil)
}

// hostname is what /etc/hostname holds in target: its short ID.
func hostname(t *harness.Target) string { return t.ID[:12] + "\n" }

// sessions counts the session channels sshd started so far.
func sessions(tb testing.TB, sshd *harness.SSHD) int {
	tb.Helper()
	return strings.Count(sshdLogs(tb, sshd), "Starting session:")
}

func TestDockerSSHDFleet(t *testing.T) {
	t.Parallel()
	e := startFleet(t)
	assert.Contains(t, e.p.logs.String(), "endpoint answers", "each endpoint is checked at start")

	t.Run("routes by endpoint, and by discovery on every endpoint", func(t *testing.T) {
		for _, c := range []struct {
			route string
			want  *harness.Target
		}{
			{e.a.Name, e.a}, // found on host-a only
			{e.b.Name, e.b},
			{e.local.Name, e.local},
			{e.b.Name + ".host-b", e.b},
			{e.shared.Name + ".tls", e.shared},
			{e.shared.Name + ".local", e.shared},
		} {
			out, errOut, status := e.run(t, "u+"+c.route, "cat /etc/hostname")
			assert.Zero(t, status, "%s: %s", c.route, errOut)
			assert.Equal(t, hostname(c.want), out, c.route)
		}
		// A session routed to host-a goes through host-a's sshd, and not
		// through host-b's.
		beforeA, beforeB := sessions(t, e.sshdA), sessions(t, e.sshdB)
		out, errOut, status := e.run(t, "u+"+e.shared.Name+".host-a", "cat /etc/hostname")
		require.Zero(t, status, errOut)
		assert.Equal(t, hostname(e.shared), out)
		waitUntil(t, "host-a's sshd to log the session", func() bool { return sessions(t, e.sshdA) > beforeA })
		assert.Equal(t, beforeB, sessions(t, e.sshdB), "host-b's sshd served a session routed to host-a")
	})

	t.Run("ambiguity names the candidates", func(t *testing.T) {
		_, errOut, status := e.run(t, "u+"+e.shared.Name, "true")
		assert.Equal(t, 1, status)
		assert.Regexp(t, `^dockssh: found on several endpoints: `+e.shared.Name+` on local, `+e.shared.Name+` on host-a, `+e.shared.Name+` on host-b, `+e.shared.Name+` on tls; add the endpoint to the user name, as in \+`+e.shared.Name+`\.local\n$`, errOut)
		_, errOut, status = e.run(t, "u+"+e.a.Name+".host-b", "true")
		assert.Equal(t, 1, status)
		assert.Equal(t, fmt.Sprintf("dockssh: no running container %q that you may use\n", e.a.Name), errOut)
	})

	t.Run("SFTP and the web terminal route the same way", func(t *testing.T) {
		local := filepath.Join(t.TempDir(), "hostname")
		_, errOut, status := runCmd(t, sftpCmd(t, e.p, "u+"+e.b.Name+".host-b", e.login), []byte("get /etc/hostname "+local+"\n"))
		require.Zero(t, status, errOut)
		assert.Equal(t, hostname(e.b), readFile(t, local), "the file came from host-b's target")

		base := fmt.Sprintf("http://127.0.0.1:%d", e.p.httpPort)
		c := &sseClient{base: base, user: "u+" + e.a.Name + ".host-a", password: e.password, client: &http.Client{}}
		openSSE(t, t.Context(), c, "", "")
		c.send(t, "echo web-$(cat /etc/hostname)\n")
		c.readUntil(t, regexp.MustCompile(`web-`+e.a.ID[:12]))
		c.send(t, "exit\n")
		c.readUntil(t, nil)
	})

	t.Run("30 concurrent sessions over the endpoints", func(t *testing.T) {
		routes := []struct {
			user string
			want *harness.Target
		}{
			{"u+" + e.local.Name + ".local", e.local},
			{"u+" + e.a.Name + ".host-a", e.a},
			{"u+" + e.b.Name + ".host-b", e.b},
		}
		var wg sync.WaitGroup
		for i := range 30 {
			r := routes[i%len(routes)]
			wg.Go(func() {
				out, errOut, status := e.run(t, r.user, fmt.Sprintf("cat /etc/hostname; echo %d", i))
				assert.Zero(t, status, "%s: %s", r.user, errOut)
				assert.Equal(t, fmt.Sprintf("%s%d\n", hostname(r.want), i), out, r.user)
			})
		}
		wg.Wait()
	})

	t.Run("an endpoint that stops fails only its sessions, and serves again", func(t *testing.T) {
		// A session in use on host-b when its sshd stops.
		long := startLongSession(t, e.p.ssh(t, "u+"+e.b.Name+".host-b", e.login, nil, longSessionCommand))
		e.sshdB.Stop(t)
		status, stderr := long.wait(t, "its sshd stopped")
		assert.Equal(t, 255, status, "no exit status can be known")
		assert.Contains(t, stderr, "dockssh: the exit status is unknown: endpoint host-b did not answer")

		_, errOut, status := e.run(t, "u+"+e.b.Name+".host-b", "true")
		assert.Equal(t, 1, status)
		assert.Equal(t, "dockssh: endpoint host-b did not answer; try again later\n", errOut)
		_, errOut, status = e.run(t, "u+"+e.b.Name, "true")
		assert.Equal(t, 1, status)
		assert.Equal(t, fmt.Sprintf("dockssh: no running container %q that you may use (endpoint host-b did not answer)\n", e.b.Name), errOut)
		for _, tg := range []*harness.Target{e.a, e.local} {
			out, errOut, status := e.run(t, "u+"+tg.Name, "cat /etc/hostname")
			assert.Zero(t, status, errOut)
			assert.Equal(t, hostname(tg), out)
		}

		e.sshdB.Start(t)
		waitUntil(t, "host-b to serve again", func() bool {
			out, _, status := e.run(t, "u+"+e.b.Name+".host-b", "cat /etc/hostname")
			return status == 0 && out == hostname(e.b)
		})
		logs := e.p.logs.String()
		assert.Contains(t, logs, "endpoint is down")
		assert.Contains(t, logs, "endpoint answers again")
	})
	assert.NotContains(t, e.p.logs.String(), e.password)
}

// sftpCmd is the real sftp client for docker-sshd p, reading commands from
// standard input.
func sftpCmd(tb testing.TB, p *sshdProc, user string, login []string) *exec.Cmd {
	tb.Helper()
	ssh := p.ssh(tb, user, login, nil)
	// Reuse ssh's options and environment: everything between "ssh" and
	// "--".
	args := ssh.Args[1:]
	var opts []string
	for i := 0; i < len(args) && args[i] != "--"; i++ {
		switch args[i] {
		case "-p":
			opts = append(opts, "-P", args[i+1])
			i++
		case "-l":
			i++ // the user goes into the destination
		default:
			opts = append(opts, args[i])
		}
	}
	// Not -b: it implies BatchMode, which refuses password logins;
	// sftp reads commands from a standard input that is not a terminal
	// all the same.
	cmd := exec.Command("sftp", append(opts, user+"@127.0.0.1")...)
	cmd.Env = ssh.Env
	return cmd
}

// startTLSDockerProxy serves the local Docker socket on 127.0.0.1 over TLS
// with client certificates, as a dockerd started with --tlsverify does, and
// returns its address and the client's files (ca, cert, key).
func startTLSDockerProxy(tb testing.TB) (string, map[string]string) {
	tb.Helper()
	sock := strings.TrimPrefix(harness.Docker(tb).DaemonHost(), "unix://")
	caKey, caCert, caPEM := newCert(tb, nil, nil, &x509.Certificate{
		Subject: pkix.Name{CommonName: "dockssh test CA"}, IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign,
	})
	srvKey, _, srvPEM := newCert(tb, caCert, caKey, &x509.Certificate{
		Subject: pkix.Name{CommonName: "127.0.0.1"}, IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, KeyUsage: x509.KeyUsageDigitalSignature,
	})
	cliKey, _, cliPEM := newCert(tb, caCert, caKey, &x509.Certificate{
		Subject:     pkix.Name{CommonName: "docker-sshd"},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}, KeyUsage: x509.KeyUsageDigitalSignature,
	})
	srv, err := tls.X509KeyPair(srvPEM, keyPEM(tb, srvKey))
	require.NoError(tb, err)
	pool := x509.NewCertPool()
	pool.AddCert(caCert)
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{
		Certificates: []tls.Certificate{srv}, ClientCAs: pool, ClientAuth: tls.RequireAndVerifyClientCert, MinVersion: tls.VersionTLS12,
	})
	require.NoError(tb, err)
	var wg sync.WaitGroup
	tb.Cleanup(func() { ln.Close(); wg.Wait() })
	wg.Go(func() {
		var conns sync.WaitGroup
		defer conns.Wait()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			conns.Go(func() { proxyTo(c, sock) })
		}
	})
	return ln.Addr().String(), map[string]string{
		"ca":   writeFile(tb, "ca.pem", string(caPEM)),
		"cert": writeFile(tb, "cert.pem", string(cliPEM)),
		"key":  writeFile(tb, "key.pem", string(keyPEM(tb, cliKey))),
	}
}

// proxyTo copies c to and from the unix socket at sock, passing on each
// side's end of file (a hijacked exec half-closes), and closes both.
func proxyTo(c net.Conn, sock string) {
	defer c.Close()
	u, err := net.Dial("unix", sock)
	if err != nil {
		return
	}
	defer u.Close()
	done := make(chan struct{})
	go func() {
		defer close(done)
		io.Copy(u, c)
		u.(*net.UnixConn).CloseWrite()
	}()
	io.Copy(c, u)
	c.(*tls.Conn).CloseWrite()
	<-done
}

func newCert(tb testing.TB, parent *x509.Certificate, parentKey *ecdsa.PrivateKey, tmpl *x509.Certificate) (*ecdsa.PrivateKey, *x509.Certificate, []byte) {
	tb.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(tb, err)
	serial, err := rand.Int(rand.Reader, big.NewInt(1<<62))
	require.NoError(tb, err)
	tmpl.SerialNumber = serial
	tmpl.NotBefore, tmpl.NotAfter = time.Now().Add(-time.Hour), time.Now().Add(time.Hour)
	if parent == nil {
		parent, parentKey = tmpl, key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, parentKey)
	require.NoError(tb, err)
	cert, err := x509.ParseCertificate(der)
	require.NoError(tb, err)
	return key, cert, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

func keyPEM(tb testing.TB, key *ecdsa.PrivateKey) []byte {
	tb.Helper()
	der, err := x509.MarshalPKCS8PrivateKey(key)
	require.NoError(tb, err)
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
}
