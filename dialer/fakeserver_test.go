package dialer_test

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/binary"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/dockssh/dockssh/dialer"
)

// fakeServer is an in-process SSH server that behaves like OpenSSH's sshd
// where the dialer cares: sessions that run a fake remote command (a fake
// "docker system dial-stdio" proxying to a fake dockerd on a unix socket),
// MaxSessions refusals, direct-streamlocal and direct-tcpip channels,
// signals, keepalive replies. It records what clients asked for.
type fakeServer struct {
	tb            testing.TB
	hostKey       ssh.Signer
	clientKey     ssh.Signer
	clientKeyPath string
	knownHosts    string // a known_hosts file trusting hostKey
	dockerSock    string // the fake dockerd (HTTP)
	echoSock      string // reads to EOF, answers "got:<data>", closes
	silentSock    string // accepts and never answers
	ln            net.Listener
	addr          string
	port          int

	// Options, set before the first connection.
	password         string // "" = no password auth
	keyAuth          bool   // accept clientKey
	maxSessions      int    // 0 = unlimited, -1 = refuse every session
	allowStreamLocal bool
	allowTCP         bool          // direct-tcpip to 127.0.0.1 only
	authGate         chan struct{} // auth callbacks wait for it when not nil
	openGate         chan struct{} // channel opens wait for it when not nil
	user             string        // "" = any user name; else only this one
	userCA           ssh.PublicKey // not nil: only user certificates it signed
	dropOnOpen       bool          // close the TCP connection on any channel open

	mu          sync.Mutex
	execs       []string
	envs        []string
	signals     []string
	authTries   int
	sessions    int // open now, over all connections
	streamLocal int // streamlocal opens asked for
	refusals    int // sessions refused for MaxSessions
	keepalives  int
	tcpConns    map[net.Conn]struct{}
	closers     []io.Closer
	closed      bool
	stop        chan struct{} // closed by Close

	wg sync.WaitGroup
}

func newFakeServer(tb testing.TB) *fakeServer {
	tb.Helper()
	dir := shortTempDir(tb)
	s := &fakeServer{tb: tb, keyAuth: true, tcpConns: map[net.Conn]struct{}{}, stop: make(chan struct{})}
	_, hpriv, _ := ed25519.GenerateKey(rand.Reader)
	var err error
	s.hostKey, err = ssh.NewSignerFromKey(hpriv)
	if err != nil {
		tb.Fatal(err)
	}
	s.clientKey, s.clientKeyPath = writeClientKey(tb, dir, nil)

	s.dockerSock = filepath.Join(dir, "docker.sock")
	s.echoSock = filepath.Join(dir, "echo.sock")
	s.silentSock = filepath.Join(dir, "silent.sock")
	s.startDockerd()
	s.startRawSocket(s.echoSock, func(c net.Conn) {
		data, _ := io.ReadAll(c)
		c.Write([]byte("got:" + string(data)))
	})
	s.startRawSocket(s.silentSock, func(c net.Conn) {
		<-s.stop // never reads, never answers
	})

	s.ln, err = net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	s.addr = s.ln.Addr().String()
	s.port = s.ln.Addr().(*net.TCPAddr).Port
	s.knownHosts = filepath.Join(dir, "known_hosts")
	line := fmt.Sprintf("[127.0.0.1]:%d %s", s.port, ssh.MarshalAuthorizedKey(s.hostKey.PublicKey()))
	if err := os.WriteFile(s.knownHosts, []byte(line), 0o600); err != nil {
		tb.Fatal(err)
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		for {
			c, err := s.ln.Accept()
			if err != nil {
				return
			}
			s.serveConn(c)
		}
	}()
	tb.Cleanup(s.Close)
	return s
}

// shortTempDir is a temporary directory with a path short enough for unix
// socket names (108 bytes).
func shortTempDir(tb testing.TB) string {
	tb.Helper()
	dir, err := os.MkdirTemp("", "dialer")
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

// writeClientKey writes a new ed25519 key in OpenSSH format, encrypted when
// passphrase is not nil.
func writeClientKey(tb testing.TB, dir string, passphrase []byte) (ssh.Signer, string) {
	tb.Helper()
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	signer, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		tb.Fatal(err)
	}
	var block *pem.Block
	if passphrase != nil {
		block, err = ssh.MarshalPrivateKeyWithPassphrase(priv, "test", passphrase)
	} else {
		block, err = ssh.MarshalPrivateKey(priv, "test")
	}
	if err != nil {
		tb.Fatal(err)
	}
	f, err := os.CreateTemp(dir, "id_")
	if err != nil {
		tb.Fatal(err)
	}
	f.Write(pem.EncodeToMemory(block))
	f.Close()
	os.WriteFile(f.Name()+".pub", ssh.MarshalAuthorizedKey(signer.PublicKey()), 0o600)
	return signer, f.Name()
}

func (s *fakeServer) startDockerd() {
	l, err := net.Listen("unix", s.dockerSock)
	if err != nil {
		s.tb.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/_ping", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Api-Version", "1.41")
		io.WriteString(w, "OK")
	})
	mux.HandleFunc("/version", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"Version":"fake-20.10","ApiVersion":"1.41"}`)
	})
	mux.HandleFunc("/echo", func(w http.ResponseWriter, r *http.Request) {
		io.Copy(w, r.Body)
	})
	mux.HandleFunc("/big", func(w http.ResponseWriter, r *http.Request) {
		n, _ := strconv.Atoi(r.URL.Query().Get("n"))
		buf := make([]byte, 64<<10)
		for i := range buf {
			buf[i] = byte(i)
		}
		for n > 0 {
			k := min(n, len(buf))
			if _, err := w.Write(buf[:k]); err != nil {
				return
			}
			n -= k
		}
	})
	mux.HandleFunc("/stream", func(w http.ResponseWriter, r *http.Request) {
		fl := w.(http.Flusher)
		for i := 0; ; i++ {
			if _, err := fmt.Fprintf(w, "tick %d\n", i); err != nil {
				return
			}
			fl.Flush()
			select {
			case <-r.Context().Done():
				return
			case <-time.After(20 * time.Millisecond):
			}
		}
	})
	srv := &http.Server{Handler: mux}
	s.addCloser(srv)
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		srv.Serve(l)
	}()
}

func (s *fakeServer) startRawSocket(path string, handle func(net.Conn)) {
	l, err := net.Listen("unix", path)
	if err != nil {
		s.tb.Fatal(err)
	}
	s.addCloser(l)
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			s.addCloser(c)
			s.wg.Add(1)
			go func() {
				defer s.wg.Done()
				defer c.Close()
				handle(c)
			}()
		}
	}()
}

// addCloser registers something Close closes before it waits for the
// server's goroutines.
func (s *fakeServer) addCloser(c io.Closer) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		c.Close()
		return
	}
	s.closers = append(s.closers, c)
}

// Close stops the server and waits for its goroutines.
func (s *fakeServer) Close() {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	s.closed = true
	for c := range s.tcpConns {
		c.Close()
	}
	for _, c := range s.closers {
		c.Close()
	}
	s.mu.Unlock()
	s.ln.Close()
	close(s.stop)
	s.wg.Wait()
}

// DropConnections closes every client TCP connection, as a server restart
// does.
func (s *fakeServer) DropConnections() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for c := range s.tcpConns {
		c.Close()
	}
}

// set changes options while the server may be serving.
func (s *fakeServer) set(f func()) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f()
}

// fakeOptions is a snapshot of the options, taken per connection.
type fakeOptions struct {
	password         string
	keyAuth          bool
	clientKey        ssh.Signer
	maxSessions      int
	allowStreamLocal bool
	allowTCP         bool
	authGate         chan struct{}
	openGate         chan struct{}
	user             string
	userCA           ssh.PublicKey
	dropOnOpen       bool
}

func (s *fakeServer) opts() fakeOptions {
	s.mu.Lock()
	defer s.mu.Unlock()
	return fakeOptions{s.password, s.keyAuth, s.clientKey, s.maxSessions, s.allowStreamLocal, s.allowTCP, s.authGate, s.openGate, s.user, s.userCA, s.dropOnOpen}
}

func (s *fakeServer) setPassword(pw string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.password = pw
}

func (s *fakeServer) URL(path string) string {
	return fmt.Sprintf("ssh://tester@127.0.0.1:%d%s", s.port, path)
}

// Config returns a Config that uses nothing of the real ~/.ssh.
func (s *fakeServer) Config(tb testing.TB) *dialer.Config {
	return &dialer.Config{
		HomeDir:         tb.TempDir(),
		IgnoreSSHConfig: true,
		KnownHostsFiles: []string{s.knownHosts},
		IdentityFiles:   []string{s.clientKeyPath},
		AgentSocket:     "none",
		CloseGrace:      300 * time.Millisecond,
	}
}

func (s *fakeServer) stats() (execs, envs, signals []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.execs...), append([]string(nil), s.envs...), append([]string(nil), s.signals...)
}

func (s *fakeServer) count(f func() int) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return f()
}

func (s *fakeServer) serverConfig(o fakeOptions) *ssh.ServerConfig {
	gate := func() {
		if o.authGate != nil {
			select {
			case <-o.authGate:
			case <-s.stop:
			}
		}
	}
	// A user certificate signed by userCA for the principal "tester", as
	// sshd checks one with TrustedUserCAKeys.
	certs := &ssh.CertChecker{IsUserAuthority: func(auth ssh.PublicKey) bool {
		return o.userCA != nil && string(auth.Marshal()) == string(o.userCA.Marshal())
	}}
	cfg := &ssh.ServerConfig{
		PublicKeyCallback: func(c ssh.ConnMetadata, key ssh.PublicKey) (*ssh.Permissions, error) {
			s.mu.Lock()
			s.authTries++
			s.mu.Unlock()
			gate()
			switch {
			case o.user != "" && c.User() != o.user:
				return nil, errors.New("no such user")
			case o.userCA != nil:
				if _, ok := key.(*ssh.Certificate); !ok {
					return nil, errors.New("a certificate is required")
				}
				return certs.Authenticate(c, key)
			case o.keyAuth && string(key.Marshal()) == string(o.clientKey.PublicKey().Marshal()):
				return nil, nil
			}
			return nil, errors.New("unknown key")
		},
		ServerVersion: "SSH-2.0-OpenSSH_9.2p1 fake",
	}
	password := o.password
	if password != "" {
		cfg.PasswordCallback = func(c ssh.ConnMetadata, pw []byte) (*ssh.Permissions, error) {
			s.mu.Lock()
			s.authTries++
			s.mu.Unlock()
			gate()
			if string(pw) == password {
				return nil, nil
			}
			return nil, errors.New("wrong password")
		}
	}
	cfg.AddHostKey(s.hostKey)
	return cfg
}

func (s *fakeServer) serveConn(c net.Conn) {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		c.Close()
		return
	}
	s.tcpConns[c] = struct{}{}
	s.mu.Unlock()
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		defer func() {
			c.Close()
			s.mu.Lock()
			delete(s.tcpConns, c)
			s.mu.Unlock()
		}()
		o := s.opts()
		sc, chans, reqs, err := ssh.NewServerConn(c, s.serverConfig(o))
		if err != nil {
			return
		}
		defer sc.Close()
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			for r := range reqs {
				if r.Type == "keepalive@openssh.com" {
					s.mu.Lock()
					s.keepalives++
					s.mu.Unlock()
				}
				// OpenSSH answers keepalive@openssh.com with a failure.
				if r.WantReply {
					r.Reply(false, nil)
				}
			}
		}()
		var open sync.Mutex // guards sessions of this connection
		sessions := 0
		for nc := range chans {
			if o.dropOnOpen {
				c.Close()
				nc.Reject(ssh.ConnectionFailed, "dropped")
				continue
			}
			if o.openGate != nil {
				select {
				case <-o.openGate:
				case <-s.stop:
					nc.Reject(ssh.ConnectionFailed, "closing")
					continue
				}
			}
			switch nc.ChannelType() {
			case "session":
				open.Lock()
				if o.maxSessions != 0 && sessions >= o.maxSessions {
					open.Unlock()
					s.mu.Lock()
					s.refusals++
					s.mu.Unlock()
					// What OpenSSH's sshd does beyond MaxSessions.
					nc.Reject(ssh.ConnectionFailed, "open failed")
					continue
				}
				sessions++
				open.Unlock()
				ch, creqs, err := nc.Accept()
				if err != nil {
					continue
				}
				s.mu.Lock()
				s.sessions++
				s.mu.Unlock()
				s.wg.Add(1)
				go func() {
					defer s.wg.Done()
					s.serveSession(ch, creqs)
					open.Lock()
					sessions--
					open.Unlock()
					s.mu.Lock()
					s.sessions--
					s.mu.Unlock()
				}()
			case "direct-streamlocal@openssh.com":
				s.mu.Lock()
				s.streamLocal++
				s.mu.Unlock()
				if !o.allowStreamLocal {
					// What OpenSSH says for AllowStreamLocalForwarding no.
					nc.Reject(ssh.ConnectionFailed, "open failed")
					continue
				}
				var msg struct {
					Path string
					R0   string
					R1   uint32
				}
				if err := ssh.Unmarshal(nc.ExtraData(), &msg); err != nil {
					nc.Reject(ssh.ConnectionFailed, "bad payload")
					continue
				}
				s.forward(nc, "unix", msg.Path)
			case "direct-tcpip":
				var msg struct {
					Host  string
					Port  uint32
					OHost string
					OPort uint32
				}
				if !o.allowTCP || ssh.Unmarshal(nc.ExtraData(), &msg) != nil || msg.Host != "127.0.0.1" {
					nc.Reject(ssh.Prohibited, "administratively prohibited")
					continue
				}
				s.forward(nc, "tcp", net.JoinHostPort(msg.Host, strconv.Itoa(int(msg.Port))))
			default:
				nc.Reject(ssh.UnknownChannelType, "unknown channel type")
			}
		}
	}()
}

// forward accepts nc and proxies it to a local address with half-closes,
// as sshd does for forwarded channels.
func (s *fakeServer) forward(nc ssh.NewChannel, network, addr string) {
	target, err := net.Dial(network, addr)
	if err != nil {
		nc.Reject(ssh.ConnectionFailed, "open failed")
		return
	}
	ch, reqs, err := nc.Accept()
	if err != nil {
		target.Close()
		return
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		go ssh.DiscardRequests(reqs)
		proxy(ch, target, s.stop, nil)
		ch.Close()
	}()
}

// proxy copies both ways with half-closes and returns when both directions
// are done, or when stop or kill is closed.
func proxy(ch ssh.Channel, target net.Conn, stop <-chan struct{}, kill <-chan string) (killedBy string) {
	defer target.Close()
	in := make(chan struct{})
	out := make(chan struct{})
	go func() {
		io.Copy(target, ch)
		closeWrite(target)
		close(in)
	}()
	go func() {
		io.Copy(ch, target)
		ch.CloseWrite()
		close(out)
	}()
	select {
	case <-in:
		// Like docker's dial-stdio: after stdin ends, wait for the daemon.
		select {
		case <-out:
		case <-stop:
		case sig := <-kill:
			return sig
		}
	case <-out:
	case <-stop:
	case sig := <-kill:
		return sig
	}
	return ""
}

func closeWrite(c net.Conn) {
	if cw, ok := c.(interface{ CloseWrite() error }); ok {
		cw.CloseWrite()
	}
}

func (s *fakeServer) serveSession(ch ssh.Channel, reqs <-chan *ssh.Request) {
	defer ch.Close()
	signals := make(chan string, 4)
	done := make(chan struct{})
	defer close(done)
	for r := range reqs {
		switch r.Type {
		case "env":
			s.mu.Lock()
			s.envs = append(s.envs, string(r.Payload))
			s.mu.Unlock()
			r.Reply(false, nil)
		case "exec":
			var msg struct{ Command string }
			ssh.Unmarshal(r.Payload, &msg)
			s.mu.Lock()
			s.execs = append(s.execs, msg.Command)
			s.mu.Unlock()
			r.Reply(true, nil)
			s.wg.Add(1)
			go func() {
				defer s.wg.Done()
				for r := range reqs {
					if r.Type == "signal" {
						var sig struct{ Signal string }
						ssh.Unmarshal(r.Payload, &sig)
						s.mu.Lock()
						s.signals = append(s.signals, sig.Signal)
						s.mu.Unlock()
						select {
						case signals <- sig.Signal:
						default:
						}
					}
					if r.WantReply {
						r.Reply(false, nil)
					}
				}
			}()
			s.run(ch, msg.Command, signals)
			return
		default:
			if r.WantReply {
				r.Reply(false, nil)
			}
		}
	}
}

func exitStatus(ch ssh.Channel, status uint32) {
	var b [4]byte
	binary.BigEndian.PutUint32(b[:], status)
	ch.SendRequest("exit-status", false, b[:])
}

func exitSignal(ch ssh.Channel, sig string) {
	ch.SendRequest("exit-signal", false, ssh.Marshal(struct {
		Signal string
		Core   bool
		Msg    string
		Lang   string
	}{Signal: sig}))
}

// run plays the remote command.
func (s *fakeServer) run(ch ssh.Channel, command string, signals <-chan string) {
	args, err := shellSplit(command)
	if err != nil || len(args) == 0 {
		fmt.Fprintf(ch.Stderr(), "sh: syntax error: %v\n", err)
		exitStatus(ch, 2)
		return
	}
	switch filepath.Base(args[0]) {
	case "docker":
		sock := s.dockerSock
		rest := args[1:]
		if len(rest) > 0 && strings.HasPrefix(rest[0], "--host=unix://") {
			sock = strings.TrimPrefix(rest[0], "--host=unix://")
			rest = rest[1:]
		}
		if strings.Join(rest, " ") != "system dial-stdio" {
			fmt.Fprintf(ch.Stderr(), "docker: unknown command %q\n", strings.Join(rest, " "))
			exitStatus(ch, 1)
			return
		}
		target, err := net.Dial("unix", sock)
		if err != nil {
			// What docker system dial-stdio prints.
			fmt.Fprintf(ch.Stderr(), "failed to open the raw stream connection: dial unix %s: connect: %v\n", sock, errors.Unwrap(errors.Unwrap(err)))
			exitStatus(ch, 1)
			return
		}
		if sig := proxy(ch, target, s.stop, signals); sig != "" {
			exitSignal(ch, sig)
			return
		}
		exitStatus(ch, 0)
	case "echo-stdin":
		io.Copy(ch, ch)
		exitStatus(ch, 0)
	case "stubborn":
		// Reads to EOF, then keeps running until signalled.
		io.Copy(io.Discard, ch)
		select {
		case sig := <-signals:
			exitSignal(ch, sig)
		case <-s.stop:
		}
	case "noisy-fail":
		io.WriteString(ch.Stderr(), "FIRST-LINE\n"+strings.Repeat("x", 10000)+"\nLAST-LINE\n")
		exitStatus(ch, 1)
	default:
		fmt.Fprintf(ch.Stderr(), "bash: line 1: %s: command not found\n", args[0])
		exitStatus(ch, 127)
	}
}

// shellSplit splits a command line the way a POSIX shell splits words made
// of plain characters, single quotes and backslash escapes (enough for
// what the dialer sends; anything else is an error).
func shellSplit(s string) ([]string, error) {
	var args []string
	var cur strings.Builder
	inWord := false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == ' ':
			if inWord {
				args = append(args, cur.String())
				cur.Reset()
				inWord = false
			}
		case c == '\'':
			j := strings.IndexByte(s[i+1:], '\'')
			if j < 0 {
				return nil, errors.New("unterminated quote")
			}
			cur.WriteString(s[i+1 : i+1+j])
			i += j + 1
			inWord = true
		case c == '\\' && i+1 < len(s):
			i++
			cur.WriteByte(s[i])
			inWord = true
		case strings.IndexByte("\"$`;&|<>()*?[#~\n\t", c) >= 0:
			return nil, fmt.Errorf("unquoted special character %q", c)
		default:
			cur.WriteByte(c)
			inWord = true
		}
	}
	if inWord {
		args = append(args, cur.String())
	}
	return args, nil
}
