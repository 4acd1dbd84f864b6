package execbridge

import (
	"context"
	"errors"
	"net"
	"sync"
	"time"

	"github.com/dockssh/dockssh/internal/logtext"
	"golang.org/x/crypto/ssh"
)

// ErrServerClosed is returned by Serve after Shutdown or Close.
var ErrServerClosed = errors.New("execbridge: server closed")

// Server accepts SSH connections and serves them with a Bridge. Set the
// exported fields before the first Serve and do not change them after.
type Server struct {
	// Bridge serves the authenticated connections. Required.
	Bridge *Bridge

	// SSHConfig holds the host keys and the authentication callbacks
	// (authn.Authenticator.Apply fills them). Required.
	SSHConfig *ssh.ServerConfig

	// Allow, if non-nil, is asked about every new connection before any
	// SSH work is spent on it; a non-nil error closes the connection
	// (authn.Authenticator.Allow refuses penalized sources this way).
	Allow func(remote net.Addr) error

	// HandshakeTimeout bounds the SSH handshake and authentication of a
	// connection, as sshd's LoginGraceTime. Zero means 30 seconds.
	HandshakeTimeout time.Duration

	// MaxHandshakes is the most connections that may be in the handshake
	// at once; more are closed at once, as sshd's MaxStartups does, so
	// that a flood of unauthenticated connections cannot exhaust the
	// server. Zero means 64.
	MaxHandshakes int

	mu        sync.Mutex // guards the fields below
	listeners map[net.Listener]struct{}
	conns     map[*serverConn]struct{}
	shutdown  bool
	drain     chan struct{} // closed by Shutdown: no new sessions
	stop      context.CancelFunc
	stopCtx   context.Context
	handshake chan struct{} // semaphore of MaxHandshakes
	wg        sync.WaitGroup
}

type serverConn struct {
	nc net.Conn
}

func (s *Server) init() {
	if s.listeners != nil {
		return
	}
	s.listeners = make(map[net.Listener]struct{})
	s.conns = make(map[*serverConn]struct{})
	s.drain = make(chan struct{})
	s.stopCtx, s.stop = context.WithCancel(context.Background())
	n := s.MaxHandshakes
	if n <= 0 {
		n = 64
	}
	s.handshake = make(chan struct{}, n)
}

// Serve accepts connections on l and serves each in its own goroutine
// until Shutdown or Close; it then returns ErrServerClosed. It closes l.
// A connection that fails its handshake (garbage, a reset, a timeout, a
// failed login) is logged and closed; the listener goes on. Temporary
// accept errors are retried with a backoff.
func (s *Server) Serve(l net.Listener) error {
	if s.Bridge == nil || s.SSHConfig == nil {
		return errors.New("execbridge: Server needs a Bridge and an SSHConfig")
	}
	s.mu.Lock()
	s.init()
	if s.shutdown {
		s.mu.Unlock()
		l.Close()
		return ErrServerClosed
	}
	s.listeners[l] = struct{}{}
	s.wg.Add(1)
	s.mu.Unlock()
	defer s.wg.Done()
	defer func() {
		s.mu.Lock()
		delete(s.listeners, l)
		s.mu.Unlock()
		l.Close()
	}()

	var backoff time.Duration
	for {
		nc, err := l.Accept()
		if err != nil {
			if s.closing() {
				return ErrServerClosed
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() || tooManyFiles(err) {
				backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
				s.Bridge.logger.Warn("execbridge: accept failed; retrying", "err", err, "in", backoff)
				select {
				case <-time.After(backoff):
				case <-s.stopCtx.Done():
				}
				continue
			}
			return err
		}
		backoff = 0
		s.mu.Lock()
		if s.shutdown {
			s.mu.Unlock()
			nc.Close()
			return ErrServerClosed
		}
		sc := &serverConn{nc: nc}
		s.conns[sc] = struct{}{}
		s.wg.Add(1)
		s.mu.Unlock()
		go func() {
			defer s.wg.Done()
			defer func() {
				s.mu.Lock()
				delete(s.conns, sc)
				s.mu.Unlock()
			}()
			s.serve(nc)
		}()
	}
}

func (s *Server) closing() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.shutdown
}

// serve runs the handshake of one connection and hands it to the Bridge.
func (s *Server) serve(nc net.Conn) {
	log := s.Bridge.logger.With("remote", logtext.Addr(nc.RemoteAddr()))
	if s.Allow != nil {
		if err := s.Allow(nc.RemoteAddr()); err != nil {
			log.Info("execbridge: connection refused", "err", err)
			nc.Close()
			return
		}
	}
	select {
	case s.handshake <- struct{}{}:
	default:
		log.Warn("execbridge: connection dropped: too many handshakes in progress", "max", cap(s.handshake))
		nc.Close()
		return
	}
	timeout := s.HandshakeTimeout
	if timeout <= 0 {
		timeout = 30 * time.Second
	}
	nc.SetDeadline(time.Now().Add(timeout))
	sc, chans, reqs, err := ssh.NewServerConn(quickAck(nc), s.SSHConfig)
	<-s.handshake
	if err != nil {
		log.Debug("execbridge: handshake failed", "err", err)
		nc.Close()
		return
	}
	nc.SetDeadline(time.Time{})
	s.Bridge.serveConn(s.stopCtx, s.drain, sc, chans, reqs)
}

// Shutdown stops the server gracefully: it closes the listeners, refuses
// new sessions, closes each connection once its last session has ended,
// and waits. When ctx ends first, it ends the remaining sessions and their
// processes (as Close does), waits for that, and returns ctx's error.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.init()
	first := !s.shutdown
	s.shutdown = true
	if first {
		close(s.drain)
	}
	for l := range s.listeners {
		l.Close()
	}
	// Connections still in the handshake have no session to wait for.
	s.mu.Unlock()

	done := make(chan struct{})
	go func() {
		s.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
		s.stop()
		return nil
	case <-ctx.Done():
		s.stop()
		s.closeHandshakes()
		<-done
		return ctx.Err()
	}
}

// Close stops the server at once: it closes the listeners and every
// connection, ends every session's process, and waits for that.
func (s *Server) Close() error {
	s.mu.Lock()
	s.init()
	if !s.shutdown {
		s.shutdown = true
		close(s.drain)
	}
	for l := range s.listeners {
		l.Close()
	}
	s.mu.Unlock()
	s.stop()
	s.closeHandshakes()
	s.wg.Wait()
	return nil
}

// closeHandshakes closes the connections that are still in the handshake:
// they hold no session, and the handshake would otherwise run to its
// timeout.
func (s *Server) closeHandshakes() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for c := range s.conns {
		c.nc.SetDeadline(time.Now())
	}
}
