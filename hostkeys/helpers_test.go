package hostkeys_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"fmt"
	"io"
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

	"github.com/dockssh/dockssh/hostkeys"
)

// TestMain lets the test binary double as a helper process: an OpenSSH
// ProxyCommand (so the real ssh can use any host name while connecting to
// 127.0.0.1), an AcceptNew writer and a host key creator for the
// multi-process tests.
func TestMain(m *testing.M) {
	if addr := os.Getenv("HOSTKEYS_TEST_PROXY"); addr != "" {
		os.Exit(runProxy(addr))
	}
	if path := os.Getenv("HOSTKEYS_TEST_CREATEKEY"); path != "" {
		os.Exit(runCreateKeyChild(path))
	}
	if os.Getenv("HOSTKEYS_TEST_ACCEPTNEW") != "" {
		os.Exit(runAcceptNewChild())
	}
	os.Exit(m.Run())
}

// runProxy copies stdin to a TCP connection to addr and the connection to
// stdout, as "ssh -W" or "nc" would.
func runProxy(addr string) int {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		fmt.Fprintln(os.Stderr, "proxy:", err)
		return 1
	}
	go func() {
		_, _ = io.Copy(c, os.Stdin)
		c.(*net.TCPConn).CloseWrite()
	}()
	_, _ = io.Copy(os.Stdout, c)
	return 0
}

// requireTool returns the path of an OpenSSH tool. Without it the test
// fails on CI (CI=true or DOCKSSH_REQUIRE_DOCKER=1) and is skipped, loudly,
// elsewhere.
func requireTool(tb testing.TB, name string) string {
	tb.Helper()
	p, err := exec.LookPath(name)
	if err == nil {
		return p
	}
	pkg, what := "openssh-client", "the real OpenSSH "+name
	if name == "openssl" {
		pkg, what = "openssl", "the real openssl"
	}
	msg := fmt.Sprintf("hostkeys: %s not found in PATH (install %s, or run scripts/ensure-docker.sh); this test needs %s", name, pkg, what)
	if os.Getenv("CI") == "true" || os.Getenv("DOCKSSH_REQUIRE_DOCKER") == "1" {
		tb.Fatal(msg)
	}
	tb.Skip("SKIPPING: " + msg)
	return ""
}

// testKeys holds one signer per host key type, made once per test binary:
// RSA generation is slow under -race.
type testKeys struct {
	ed25519, ecdsa256, ecdsa384, ecdsa521, rsa ssh.Signer
	ed25519b, ecdsa256b                        ssh.Signer      // second keys of the same types
	ca, ca2, caECDSA, caRSA                    ssh.Signer      // certificate authorities
	caRSAPriv                                  *rsa.PrivateKey // caRSA's private key, for ssh-keygen -s
}

var keysOnce = sync.OnceValues(func() (*testKeys, error) {
	var k testKeys
	var err error
	mk := func(dst *ssh.Signer, gen func() (any, error)) {
		if err != nil {
			return
		}
		var priv any
		if priv, err = gen(); err == nil {
			*dst, err = ssh.NewSignerFromKey(priv)
		}
	}
	ed := func() (any, error) { _, p, err := ed25519.GenerateKey(rand.Reader); return p, err }
	ec := func(c elliptic.Curve) func() (any, error) {
		return func() (any, error) { return ecdsa.GenerateKey(c, rand.Reader) }
	}
	mk(&k.ed25519, ed)
	mk(&k.ed25519b, ed)
	mk(&k.ecdsa256, ec(elliptic.P256()))
	mk(&k.ecdsa256b, ec(elliptic.P256()))
	mk(&k.ecdsa384, ec(elliptic.P384()))
	mk(&k.ecdsa521, ec(elliptic.P521()))
	mk(&k.rsa, func() (any, error) { return rsa.GenerateKey(rand.Reader, 2048) })
	mk(&k.ca, ed)
	mk(&k.ca2, ed)
	mk(&k.caECDSA, ec(elliptic.P256()))
	mk(&k.caRSA, func() (any, error) {
		p, err := rsa.GenerateKey(rand.Reader, 2048)
		k.caRSAPriv = p
		return p, err
	})
	return &k, err
})

func keys(tb testing.TB) *testKeys {
	tb.Helper()
	k, err := keysOnce()
	require.NoError(tb, err)
	return k
}

// line returns "pattern type base64" for a known_hosts file.
func line(pattern string, key ssh.PublicKey) string {
	return pattern + " " + key.Type() + " " + base64.StdEncoding.EncodeToString(key.Marshal())
}

// hostCert signs a host certificate for signer's key with ca and returns a
// signer that presents it.
func hostCert(tb testing.TB, signer, ca ssh.Signer, principals []string, after, before time.Time) ssh.Signer {
	tb.Helper()
	cert := &ssh.Certificate{
		Key:             signer.PublicKey(),
		Serial:          42,
		CertType:        ssh.HostCert,
		KeyId:           "test host",
		ValidPrincipals: principals,
		ValidAfter:      uint64(after.Unix()),
		ValidBefore:     uint64(before.Unix()),
	}
	require.NoError(tb, cert.SignCert(rand.Reader, ca))
	cs, err := ssh.NewCertSigner(cert, signer)
	require.NoError(tb, err)
	return cs
}

// writeFile writes lines to a new file in dir and returns its path.
func writeFile(tb testing.TB, dir, name string, lines ...string) string {
	tb.Helper()
	p := filepath.Join(dir, name)
	data := strings.Join(lines, "\n")
	if len(lines) > 0 {
		data += "\n"
	}
	require.NoError(tb, os.WriteFile(p, []byte(data), 0o600))
	return p
}

// server is an in-process x/crypto SSH server on 127.0.0.1 that accepts any
// client ("none" authentication) and answers every exec request with exit
// status 0, enough for both x/crypto and the OpenSSH client to finish.
type server struct {
	addr string
	ln   net.Listener
	wg   sync.WaitGroup
}

func startServer(tb testing.TB, hostKeys ...ssh.Signer) *server {
	tb.Helper()
	cfg := &ssh.ServerConfig{NoClientAuth: true}
	for _, k := range hostKeys {
		cfg.AddHostKey(k)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(tb, err)
	s := &server{addr: ln.Addr().String(), ln: ln}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s.wg.Add(1)
			go func() {
				defer s.wg.Done()
				serveConn(c, cfg)
			}()
		}
	}()
	tb.Cleanup(func() {
		ln.Close()
		s.wg.Wait()
	})
	return s
}

func (s *server) port() string {
	_, p, _ := net.SplitHostPort(s.addr)
	return p
}

func serveConn(c net.Conn, cfg *ssh.ServerConfig) {
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(30 * time.Second))
	conn, chans, reqs, err := ssh.NewServerConn(c, cfg)
	if err != nil {
		return
	}
	defer conn.Close()
	go ssh.DiscardRequests(reqs)
	for nc := range chans {
		if nc.ChannelType() != "session" {
			_ = nc.Reject(ssh.UnknownChannelType, "only sessions")
			continue
		}
		ch, creqs, err := nc.Accept()
		if err != nil {
			return
		}
		for r := range creqs {
			ok := r.Type == "exec" || r.Type == "env"
			if r.WantReply {
				_ = r.Reply(ok, nil)
			}
			if r.Type == "exec" {
				_, _ = ch.SendRequest("exit-status", false, ssh.Marshal(struct{ Status uint32 }{0}))
				ch.Close()
				break
			}
		}
		ch.Close()
	}
}

// dial connects to s as address (the name known_hosts is checked against)
// with kh's callback and algorithms, the way a client of this package does.
// It is safe to call from a goroutine.
func dial(tb testing.TB, s *server, address string, kh *hostkeys.KnownHosts) error {
	tb.Helper()
	c, err := net.DialTimeout("tcp", s.addr, 10*time.Second)
	if err != nil {
		return err // no require: dial runs in goroutines too
	}
	cfg := &ssh.ClientConfig{
		User:              "test",
		HostKeyCallback:   kh.HostKeyCallback(),
		HostKeyAlgorithms: kh.HostKeyAlgorithms(address),
		Timeout:           10 * time.Second,
	}
	sc, chans, reqs, err := ssh.NewClientConn(c, address, cfg)
	if err != nil {
		return err
	}
	client := ssh.NewClient(sc, chans, reqs)
	return client.Close()
}

// discardLogger returns a logger that drops everything.
func discardLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }

// logRecords keeps the records of a logger made by newRecordLogger.
type logRecords struct {
	mu      sync.Mutex // guards records
	records []slog.Record
}

func newRecordLogger() (*slog.Logger, *logRecords) {
	r := &logRecords{}
	return slog.New(recordHandler{r}), r
}

type recordHandler struct{ r *logRecords }

func (h recordHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h recordHandler) WithAttrs([]slog.Attr) slog.Handler       { return h }
func (h recordHandler) WithGroup(string) slog.Handler            { return h }
func (h recordHandler) Handle(_ context.Context, r slog.Record) error {
	h.r.mu.Lock()
	defer h.r.mu.Unlock()
	h.r.records = append(h.r.records, r.Clone())
	return nil
}

// messages returns "LEVEL msg key=value ..." for each record.
func (l *logRecords) messages() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
	for _, r := range l.records {
		var b strings.Builder
		b.WriteString(r.Level.String() + " " + r.Message)
		r.Attrs(func(a slog.Attr) bool {
			b.WriteString(" " + a.Key + "=" + a.Value.String())
			return true
		})
		out = append(out, b.String())
	}
	return out
}
