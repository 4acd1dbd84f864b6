package execbridge

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dockssh/dockssh/authn"
	"golang.org/x/crypto/ssh"
)

// fakeBackend starts fakeProcs that run a Go function as the "process".
type fakeBackend struct {
	shell    string
	shellErr error
	startErr error
	// program is the process; it returns what Wait will. nil: exit 0.
	program func(p *fakeProc) error
	// startPanics makes Start panic, to test containment.
	startPanics bool
	// subsystemErr is what Subsystem returns.
	subsystemErr error

	mu    sync.Mutex
	procs []*fakeProc
	added chan *fakeProc
}

func newFakeBackend(program func(p *fakeProc) error) *fakeBackend {
	return &fakeBackend{shell: "/bin/sh", program: program, added: make(chan *fakeProc, 64)}
}

func (b *fakeBackend) Shell(ctx context.Context, t Target) (string, error) {
	return b.shell, b.shellErr
}

func (b *fakeBackend) Start(ctx context.Context, spec ProcessSpec) (Process, error) {
	if b.startPanics {
		panic("fake backend: Start panics")
	}
	if b.startErr != nil {
		return nil, b.startErr
	}
	p := &fakeProc{spec: spec, killed: make(chan struct{}), exited: make(chan struct{}), signals: make(chan string, 16), resizes: make(chan [2]int, 16)}
	p.stdinR, p.stdinW = io.Pipe()
	p.stdoutR, p.stdoutW = io.Pipe()
	p.stderrR, p.stderrW = io.Pipe()
	b.mu.Lock()
	b.procs = append(b.procs, p)
	b.mu.Unlock()
	b.added <- p
	go func() {
		var err error
		if b.program != nil {
			err = b.program(p)
		}
		p.exitErr = err
		p.stdoutW.Close()
		p.stderrW.Close()
		close(p.exited)
	}()
	return p, nil
}

// next returns the next process started, waiting for it.
func (b *fakeBackend) next(tb testing.TB) *fakeProc {
	tb.Helper()
	select {
	case p := <-b.added:
		return p
	case <-time.After(10 * time.Second):
		tb.Fatal("no process was started")
		return nil
	}
}

type fakeProc struct {
	spec            ProcessSpec
	stdinR, stdoutR *io.PipeReader
	stderrR         *io.PipeReader
	stdinW, stdoutW *io.PipeWriter
	stderrW         *io.PipeWriter
	exitErr         error
	exited          chan struct{}
	signals         chan string
	resizes         chan [2]int
	closeOnce       sync.Once
	killed          chan struct{} // closed by Close
}

func (p *fakeProc) Read(b []byte) (int, error)  { return p.stdoutR.Read(b) }
func (p *fakeProc) Write(b []byte) (int, error) { return p.stdinW.Write(b) }
func (p *fakeProc) Stderr() io.Reader {
	if p.spec.TTY {
		return bytes.NewReader(nil)
	}
	return p.stderrR
}
func (p *fakeProc) CloseWrite() error { return p.stdinW.Close() }
func (p *fakeProc) Resize(ctx context.Context, rows, cols int) error {
	if !p.spec.TTY {
		return errors.New("no tty")
	}
	p.resizes <- [2]int{rows, cols}
	return nil
}
func (p *fakeProc) Signal(ctx context.Context, name string) error {
	p.signals <- name
	return nil
}
func (p *fakeProc) Wait(ctx context.Context) error {
	select {
	case <-p.exited:
		return p.exitErr
	case <-ctx.Done():
		return ctx.Err()
	}
}
func (p *fakeProc) Close() error {
	p.closeOnce.Do(func() {
		close(p.killed)
		err := errors.New("fake process closed")
		p.stdinR.CloseWithError(err)
		p.stdoutR.CloseWithError(err)
		p.stderrR.CloseWithError(err)
	})
	return nil
}

// waitKilled waits until the process was closed.
func (p *fakeProc) waitKilled(tb testing.TB) {
	tb.Helper()
	select {
	case <-p.killed:
	case <-time.After(10 * time.Second):
		tb.Fatal("the process was not closed")
	}
}

// fixedResolver returns one target, or an error.
type fixedResolver struct {
	target Target
	err    error
	mu     sync.Mutex
	reqs   []Request
}

func (r *fixedResolver) Resolve(ctx context.Context, req Request) (Target, error) {
	r.mu.Lock()
	r.reqs = append(r.reqs, req)
	r.mu.Unlock()
	return r.target, r.err
}

// testEnv is a Server on 127.0.0.1 with authn in front and a fake backend.
type testEnv struct {
	backend  *fakeBackend
	resolver *fixedResolver
	server   *Server
	addr     string
	signer   ssh.Signer
	logs     *syncBuffer
}

type envOpts struct {
	keyOptions string // authorized_keys options for the client key
	config     func(*Config)
	server     func(*Server)
}

func newTestEnv(tb testing.TB, program func(p *fakeProc) error, o envOpts) *testEnv {
	tb.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		tb.Fatal(err)
	}
	signer, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		tb.Fatal(err)
	}
	line := strings.TrimSpace(string(ssh.MarshalAuthorizedKey(signer.PublicKey())))
	if o.keyOptions != "" {
		line = o.keyOptions + " " + line
	}
	logs := &syncBuffer{}
	logger := slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	auth, err := authn.New(&authn.Config{
		AuthorizedKeys: &authn.AuthorizedKeysConfig{Content: line},
		Penalties:      &authn.PenaltyConfig{Disabled: true},
		Logger:         logger,
	})
	if err != nil {
		tb.Fatal(err)
	}
	_, hostPriv, _ := ed25519.GenerateKey(rand.Reader)
	hostSigner, _ := ssh.NewSignerFromKey(hostPriv)
	sc := &ssh.ServerConfig{}
	auth.Apply(sc)
	sc.AddHostKey(hostSigner)

	be := newFakeBackend(program)
	res := &fixedResolver{target: Target{ID: "0123456789abcdef0123", Name: "web1"}}
	cfg := &Config{Backend: be, Resolver: res, Logger: logger}
	if o.config != nil {
		o.config(cfg)
	}
	b, err := New(cfg)
	if err != nil {
		tb.Fatal(err)
	}
	srv := &Server{Bridge: b, SSHConfig: sc}
	if o.server != nil {
		o.server(srv)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	tb.Cleanup(func() {
		srv.Close()
		if err := <-served; !errors.Is(err, ErrServerClosed) {
			tb.Errorf("Serve = %v, want ErrServerClosed", err)
		}
	})
	return &testEnv{backend: be, resolver: res, server: srv, addr: ln.Addr().String(), signer: signer, logs: logs}
}

func (e *testEnv) dial(tb testing.TB, user string) *ssh.Client {
	tb.Helper()
	c, err := ssh.Dial("tcp", e.addr, &ssh.ClientConfig{
		User:            user,
		Auth:            []ssh.AuthMethod{ssh.PublicKeys(e.signer)},
		HostKeyCallback: ssh.InsecureIgnoreHostKey(), // an in-process test server with a key made just now
		Timeout:         10 * time.Second,
	})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { c.Close() })
	return c
}

func (e *testEnv) session(tb testing.TB, c *ssh.Client) *ssh.Session {
	tb.Helper()
	s, err := c.NewSession()
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { s.Close() })
	return s
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// waitLog waits until the log holds substr.
func (s *syncBuffer) waitLog(tb testing.TB, substr string) {
	tb.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(s.String(), substr) {
		if time.Now().After(deadline) {
			tb.Fatalf("log never contained %q; log:\n%s", substr, s.String())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func netDial(addr string) (net.Conn, error) { return net.DialTimeout("tcp", addr, 10*time.Second) }

func contextWithCancel(tb testing.TB) (context.Context, context.CancelFunc) {
	return context.WithCancel(context.Background())
}

// Subsystem makes fakeBackend a SubsystemBackend: "sftp" runs a fake
// sftp-server, unless subsystemErr is set.
func (b *fakeBackend) Subsystem(ctx context.Context, t Target, name, user string) ([]string, error) {
	if b.subsystemErr != nil {
		return nil, b.subsystemErr
	}
	return []string{"/usr/lib/openssh/sftp-server", "-u", user}, nil
}

// plainBackend hides fakeBackend's Subsystem method.
type plainBackend struct{ b *fakeBackend }

func (p plainBackend) Start(ctx context.Context, spec ProcessSpec) (Process, error) {
	return p.b.Start(ctx, spec)
}
func (p plainBackend) Shell(ctx context.Context, t Target) (string, error) { return p.b.Shell(ctx, t) }
