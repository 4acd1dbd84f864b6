package authn_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/ssh"

	"github.com/dockssh/dockssh/authn"
)

// mustNotSkip reports whether a test that cannot run here must fail
// rather than skip: on CI (CI=true) and wherever DOCKSSH_REQUIRE_DOCKER=1
// says the whole suite is expected to run.
func mustNotSkip() bool {
	return os.Getenv("CI") == "true" || os.Getenv("DOCKSSH_REQUIRE_DOCKER") == "1"
}

// skipOrFail ends a test that cannot run here: loudly skipped, or failed
// where mustNotSkip says so.
func skipOrFail(tb testing.TB, msg string) {
	tb.Helper()
	if mustNotSkip() {
		tb.Fatal(msg + " (and CI=true or DOCKSSH_REQUIRE_DOCKER=1 forbids skipping)")
	}
	tb.Skip("SKIPPING: " + msg)
}

// requireTool returns the path of an OpenSSH tool; without it the test
// is skipped, or fails (skipOrFail).
func requireTool(tb testing.TB, name string) string {
	tb.Helper()
	p, err := exec.LookPath(name)
	if err == nil {
		return p
	}
	skipOrFail(tb, fmt.Sprintf("authn: %s not found in PATH (install openssh-client); this test needs the real OpenSSH %s", name, name))
	return ""
}

// requireLocalAddr checks that a TCP connection from ip to a listener on
// 127.0.0.1 can be made (127.0.0.2 on Linux; other systems route only
// 127.0.0.1 unless an alias is added); without it the test is skipped, or
// fails (skipOrFail).
func requireLocalAddr(tb testing.TB, ip net.IP) {
	tb.Helper()
	probe, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(tb, err)
	defer probe.Close()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: ip}, Timeout: 5 * time.Second}
	c, err := d.Dial("tcp", probe.Addr().String())
	if err != nil {
		skipOrFail(tb, fmt.Sprintf("authn: cannot connect from %s to 127.0.0.1 on this machine: %v", ip, err))
		return
	}
	c.Close()
}

// key is a key pair made by the real ssh-keygen.
type key struct {
	priv, pub string // paths
	public    ssh.PublicKey
	signer    ssh.Signer
	line      string // authorized_keys line, no options
}

func keygen(tb testing.TB, dir, name, typ string) *key {
	tb.Helper()
	kg := requireTool(tb, "ssh-keygen")
	priv := filepath.Join(dir, name)
	args := []string{"-q", "-t", typ, "-N", "", "-C", name + "@test", "-f", priv}
	if typ == "rsa" {
		args = append(args, "-b", "2048")
	}
	out, err := exec.Command(kg, args...).CombinedOutput()
	require.NoError(tb, err, "ssh-keygen: %s", out)
	return loadKey(tb, priv)
}

func loadKey(tb testing.TB, priv string) *key {
	tb.Helper()
	pubData, err := os.ReadFile(priv + ".pub")
	require.NoError(tb, err)
	pub, _, _, _, err := ssh.ParseAuthorizedKey(pubData)
	require.NoError(tb, err)
	privData, err := os.ReadFile(priv)
	require.NoError(tb, err)
	signer, err := ssh.ParsePrivateKey(privData)
	require.NoError(tb, err)
	return &key{priv: priv, pub: priv + ".pub", public: pub, signer: signer, line: strings.TrimSpace(string(pubData))}
}

// certify signs k's public key with ca using ssh-keygen -s, with extra
// options (-n, -V, -O ...), and returns the certificate, which ssh-keygen
// writes next to the key as NAME-cert.pub (where ssh finds it).
func certify(tb testing.TB, ca, k *key, id string, args ...string) *ssh.Certificate {
	tb.Helper()
	kg := requireTool(tb, "ssh-keygen")
	all := append([]string{"-q", "-s", ca.priv, "-I", id}, args...)
	all = append(all, k.pub)
	out, err := exec.Command(kg, all...).CombinedOutput()
	require.NoError(tb, err, "ssh-keygen %v: %s", all, out)
	data, err := os.ReadFile(strings.TrimSuffix(k.pub, ".pub") + "-cert.pub")
	require.NoError(tb, err)
	pk, _, _, _, err := ssh.ParseAuthorizedKey(data)
	require.NoError(tb, err)
	cert, ok := pk.(*ssh.Certificate)
	require.True(tb, ok)
	return cert
}

// logBuffer collects JSON log records.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func (b *logBuffer) records(tb testing.TB) []map[string]any {
	tb.Helper()
	var out []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(b.String()), "\n") {
		if line == "" {
			continue
		}
		var m map[string]any
		require.NoError(tb, json.Unmarshal([]byte(line), &m), "log line %q", line)
		out = append(out, m)
	}
	return out
}

// find returns the records whose attributes include all of want.
func (b *logBuffer) find(tb testing.TB, want map[string]string) []map[string]any {
	tb.Helper()
	var out []map[string]any
next:
	for _, r := range b.records(tb) {
		for k, v := range want {
			if fmt.Sprint(r[k]) != v {
				continue next
			}
		}
		out = append(out, r)
	}
	return out
}

func newLogger() (*slog.Logger, *logBuffer) {
	b := &logBuffer{}
	return slog.New(slog.NewJSONHandler(b, &slog.HandlerOptions{Level: slog.LevelDebug})), b
}

// result is what the test server saw for one connection.
type result struct {
	grant *authn.Grant
	err   error
}

// server is an in-process x/crypto SSH server on 127.0.0.1 that reports
// each connection's outcome and answers an exec request by printing the
// decoded Grant as JSON.
type server struct {
	addr    string
	results chan result
	refused chan error // connections refused by Allow
}

type serverOpts struct {
	noAllow bool // do not call Allow
}

func startServer(tb testing.TB, a *authn.Authenticator, opts ...serverOpts) *server {
	tb.Helper()
	var o serverOpts
	if len(opts) > 0 {
		o = opts[0]
	}
	hostKey := hostSigner(tb)
	cfg := &ssh.ServerConfig{}
	a.Apply(cfg)
	cfg.AddHostKey(hostKey)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(tb, err)
	s := &server{addr: ln.Addr().String(), results: make(chan result, 1000), refused: make(chan error, 100000)}
	var wg sync.WaitGroup
	done := make(chan struct{})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			nc, err := ln.Accept()
			if err != nil {
				return
			}
			if !o.noAllow {
				if err := a.Allow(nc.RemoteAddr()); err != nil {
					nc.Close()
					s.refused <- err
					continue
				}
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				serveConn(nc, cfg, s.results, done)
			}()
		}
	}()
	tb.Cleanup(func() {
		ln.Close()
		close(done)
		wg.Wait()
	})
	return s
}

func serveConn(nc net.Conn, cfg *ssh.ServerConfig, results chan<- result, done <-chan struct{}) {
	defer nc.Close()
	_ = nc.SetDeadline(time.Now().Add(30 * time.Second))
	conn, chans, reqs, err := ssh.NewServerConn(nc, cfg)
	if err != nil {
		results <- result{err: err}
		return
	}
	defer conn.Close()
	go ssh.DiscardRequests(reqs)
	g, err := authn.GrantFrom(conn.Permissions)
	results <- result{grant: g, err: err}
	go func() {
		<-done
		conn.Close()
	}()
	for nch := range chans {
		if nch.ChannelType() != "session" {
			_ = nch.Reject(ssh.UnknownChannelType, "only sessions")
			continue
		}
		ch, creqs, err := nch.Accept()
		if err != nil {
			return
		}
		go func() {
			defer ch.Close()
			for req := range creqs {
				switch req.Type {
				case "exec", "shell":
					_ = req.Reply(true, nil)
					out, _ := json.Marshal(g)
					_, _ = ch.Write(append(out, '\n'))
					_, _ = ch.SendRequest("exit-status", false, ssh.Marshal(struct{ Status uint32 }{0}))
					return
				default:
					_ = req.Reply(req.Type == "env" || req.Type == "pty-req", nil)
				}
			}
		}()
	}
}

var (
	hostKeyOnce sync.Once
	hostKey     ssh.Signer
	hostKeyErr  error
)

func hostSigner(tb testing.TB) ssh.Signer {
	tb.Helper()
	hostKeyOnce.Do(func() {
		kg, err := exec.LookPath("ssh-keygen")
		if err != nil {
			hostKeyErr = err
			return
		}
		dir, err := os.MkdirTemp("", "authn-hostkey")
		if err != nil {
			hostKeyErr = err
			return
		}
		defer os.RemoveAll(dir)
		p := filepath.Join(dir, "host")
		if out, err := exec.Command(kg, "-q", "-t", "ed25519", "-N", "", "-f", p).CombinedOutput(); err != nil {
			hostKeyErr = fmt.Errorf("%v: %s", err, out)
			return
		}
		data, err := os.ReadFile(p)
		if err != nil {
			hostKeyErr = err
			return
		}
		hostKey, hostKeyErr = ssh.ParsePrivateKey(data)
	})
	if hostKeyErr != nil {
		requireTool(tb, "ssh-keygen")
		tb.Fatalf("host key: %v", hostKeyErr)
	}
	return hostKey
}

// next waits for the server's verdict on the next connection.
func (s *server) next(tb testing.TB) result {
	tb.Helper()
	select {
	case r := <-s.results:
		return r
	case <-time.After(30 * time.Second):
		tb.Fatal("no connection result from the server within 30s")
		return result{}
	}
}

// sshRun runs the real OpenSSH client against s as user with the given
// extra options and command, and returns its stdout, stderr and error. A
// password, if any, is answered through SSH_ASKPASS.
type sshRun struct {
	user     string
	password string
	identity string // private key path; its -cert.pub is picked up by ssh
	bind     string // local address to bind
	opts     []string
}

func (s *server) ssh(tb testing.TB, r sshRun) (stdout, stderr string, err error) {
	tb.Helper()
	bin := requireTool(tb, "ssh")
	dir := tb.TempDir()
	host, port, _ := net.SplitHostPort(s.addr)
	args := []string{
		"-F", "/dev/null",
		"-o", "BatchMode=no",
		// Acceptable only here: the server is our own in-process server
		// on 127.0.0.1 with a throwaway host key.
		"-o", "StrictHostKeyChecking=no",
		"-o", "UserKnownHostsFile=/dev/null",
		"-o", "GlobalKnownHostsFile=/dev/null",
		"-o", "LogLevel=ERROR",
		"-o", "IdentityAgent=none",
		"-o", "IdentitiesOnly=yes",
		"-o", "ConnectTimeout=20",
		"-o", "NumberOfPasswordPrompts=1",
		"-T",
		"-p", port,
		"-l", r.user,
	}
	if r.identity != "" {
		args = append(args, "-i", r.identity)
	} else {
		args = append(args, "-o", "PubkeyAuthentication=no")
	}
	if r.password == "" {
		args = append(args, "-o", "PasswordAuthentication=no", "-o", "KbdInteractiveAuthentication=no")
	}
	if r.bind != "" {
		args = append(args, "-b", r.bind)
	}
	args = append(args, r.opts...)
	args = append(args, host, "true")
	cmd := exec.Command(bin, args...)
	askpass := filepath.Join(dir, "askpass.sh")
	require.NoError(tb, os.WriteFile(askpass, []byte("#!/bin/sh\nprintf '%s\\n' \"$AUTHN_TEST_PASSWORD\"\n"), 0o700))
	cmd.Env = []string{
		"HOME=" + dir,
		"PATH=/usr/bin:/bin",
		"SSH_ASKPASS=" + askpass,
		"SSH_ASKPASS_REQUIRE=force",
		"DISPLAY=:0",
		"AUTHN_TEST_PASSWORD=" + r.password,
	}
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	cmd.Stdin = nil
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	go func() {
		<-ctx.Done()
		if cmd.Process != nil {
			_ = cmd.Process.Kill()
		}
	}()
	err = cmd.Run()
	return o.String(), e.String(), err
}

// grantOut decodes the Grant the test server printed.
func grantOut(tb testing.TB, stdout string) *authn.Grant {
	tb.Helper()
	var g authn.Grant
	require.NoError(tb, json.Unmarshal([]byte(strings.TrimSpace(stdout)), &g), "stdout %q", stdout)
	return &g
}

// dial connects with the x/crypto client.
func dial(tb testing.TB, addr, user string, auth ...ssh.AuthMethod) (*ssh.Client, error) {
	tb.Helper()
	return dialFrom(tb, "", addr, &ssh.ClientConfig{User: user, Auth: auth})
}

func dialFrom(tb testing.TB, local, addr string, cfg *ssh.ClientConfig) (*ssh.Client, error) {
	tb.Helper()
	d := net.Dialer{Timeout: 20 * time.Second}
	if local != "" {
		d.LocalAddr = &net.TCPAddr{IP: net.ParseIP(local)}
	}
	nc, err := d.Dial("tcp", addr)
	if err != nil {
		return nil, err
	}
	_ = nc.SetDeadline(time.Now().Add(30 * time.Second))
	// Only our own in-process server's throwaway key is ever seen here.
	cfg.HostKeyCallback = ssh.InsecureIgnoreHostKey() //nolint:gosec
	c, chans, reqs, err := ssh.NewClientConn(nc, addr, cfg)
	if err != nil {
		nc.Close()
		return nil, err
	}
	_ = nc.SetDeadline(time.Time{})
	return ssh.NewClient(c, chans, reqs), nil
}

func writeFile(tb testing.TB, path, content string) string {
	tb.Helper()
	require.NoError(tb, os.WriteFile(path, []byte(content), 0o600))
	return path
}

func isAuthFailure(err error) bool {
	var se *ssh.ServerAuthError
	return errors.As(err, &se)
}
