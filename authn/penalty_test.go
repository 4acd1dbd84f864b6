package authn_test

import (
	"errors"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/ssh"

	"github.com/dockssh/dockssh/authn"
)

// clock is an injected clock tests move by hand.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)} }

func (c *clock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func tcpAddr(s string) net.Addr { return net.TCPAddrFromAddrPort(netip.MustParseAddrPort(s)) }

func TestPenalties(t *testing.T) {
	clk := newClock()
	log, logs := newLogger()
	a, err := authn.New(&authn.Config{
		Passwords: &authn.PasswordConfig{Users: []authn.PasswordUser{{Name: "u", Password: "pw"}}},
		Penalties: &authn.PenaltyConfig{Exempt: []string{"198.51.100.0/24"}},
		Logger:    log,
		Now:       clk.now,
	})
	require.NoError(t, err)
	cb := callbacks(a)
	fail := func(remote string) error {
		t.Helper()
		_, err := cb.PasswordCallback(connFrom("u", remote), []byte("wrong"))
		require.Error(t, err)
		cb.AuthLogCallback(connFrom("u", remote), "password", err)
		return err
	}

	// Two failures (5s each) stay under the 15s threshold.
	fail("192.0.2.1:1000")
	fail("192.0.2.1:1001")
	require.NoError(t, a.Allow(tcpAddr("192.0.2.1:2000")))
	// The third reaches it.
	fail("192.0.2.1:1002")
	err = a.Allow(tcpAddr("192.0.2.1:2001"))
	require.Error(t, err)
	assert.True(t, errors.Is(err, authn.ErrPenalized))
	var pe *authn.PenaltyError
	require.True(t, errors.As(err, &pe))
	assert.Equal(t, netip.MustParsePrefix("192.0.2.1/32"), pe.Source)
	assert.Equal(t, 15*time.Second, pe.Remaining)
	assert.NotEmpty(t, logs.find(t, map[string]string{"msg": "authn: source penalized after failed authentication", "source": "192.0.2.1/32"}))

	// Other sources are not affected.
	require.NoError(t, a.Allow(tcpAddr("192.0.2.2:2000")))

	// An attempt on a connection opened before the penalty is refused
	// without being evaluated - even with the right password.
	_, err = cb.PasswordCallback(connFrom("u", "192.0.2.1:1003"), []byte("pw"))
	require.Error(t, err)
	assert.ErrorContains(t, err, "penalized")

	// The penalty runs out.
	clk.advance(14 * time.Second)
	require.Error(t, a.Allow(tcpAddr("192.0.2.1:2002")))
	clk.advance(time.Second)
	require.NoError(t, a.Allow(tcpAddr("192.0.2.1:2003")))
	_, err = cb.PasswordCallback(connFrom("u", "192.0.2.1:1004"), []byte("pw"))
	require.NoError(t, err)

	// IPv6: the whole /64 shares a penalty.
	for i := range 3 {
		_ = i
		fail("[2001:db8:1:2::1]:1000")
	}
	require.Error(t, a.Allow(tcpAddr("[2001:db8:1:2:ffff::9]:1")))
	require.NoError(t, a.Allow(tcpAddr("[2001:db8:1:3::1]:1")))

	// IPv4-mapped IPv6 is the IPv4 address.
	for range 3 {
		fail("[::ffff:192.0.2.77]:1000")
	}
	require.Error(t, a.Allow(tcpAddr("192.0.2.77:1")))

	// Exempt sources are never penalized.
	for range 10 {
		fail("198.51.100.7:1000")
	}
	require.NoError(t, a.Allow(tcpAddr("198.51.100.7:1")))

	// Penalties add up to at most Max (10m).
	for range 1000 {
		fail("192.0.2.9:1000")
	}
	err = a.Allow(tcpAddr("192.0.2.9:1"))
	require.True(t, errors.As(err, &pe))
	assert.Equal(t, 10*time.Minute, pe.Remaining)

	// Non-IP transports are never penalized.
	assert.NoError(t, a.Allow(&net.UnixAddr{Name: "/run/sock", Net: "unix"}))
}

func TestPenaltyKeyRefusals(t *testing.T) {
	// Refused keys cost 1s each: a client offering a few wrong keys is
	// not locked out, one offering dozens is.
	dir := t.TempDir()
	k := keygen(t, dir, "k", "ed25519")
	wrong := keygen(t, dir, "wrong", "ed25519")
	clk := newClock()
	a, err := authn.New(&authn.Config{
		AuthorizedKeys: &authn.AuthorizedKeysConfig{Content: k.line},
		Logger:         discard(),
		Now:            clk.now,
	})
	require.NoError(t, err)
	cb := callbacks(a)
	refuse := func() {
		c := connFrom("u", "192.0.2.5:1")
		_, err := cb.PublicKeyCallback(c, wrong.public)
		require.Error(t, err)
		cb.AuthLogCallback(c, "publickey", err)
	}
	for range 5 {
		refuse()
	}
	require.NoError(t, a.Allow(tcpAddr("192.0.2.5:2")))
	for range 10 {
		refuse()
	}
	require.Error(t, a.Allow(tcpAddr("192.0.2.5:2")))
}

func TestPenaltyMaxSources(t *testing.T) {
	// With room for 4 sources, 100 penalized sources leave at most 4
	// remembered: the memory is bounded, the oldest penalties go first.
	clk := newClock()
	a, err := authn.New(&authn.Config{
		Passwords: &authn.PasswordConfig{Users: []authn.PasswordUser{{Name: "u", Password: "pw"}}},
		Penalties: &authn.PenaltyConfig{MaxSources: 4, AuthFailure: 20 * time.Second},
		Logger:    discard(),
		Now:       clk.now,
	})
	require.NoError(t, err)
	cb := callbacks(a)
	for i := range 100 {
		remote := netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 0, byte(i / 256), byte(i)}), 1).String()
		_, err := cb.PasswordCallback(connFrom("u", remote), []byte("wrong"))
		cb.AuthLogCallback(connFrom("u", remote), "password", err)
		clk.advance(time.Millisecond)
	}
	penalized := 0
	for i := range 100 {
		if a.Allow(tcpAddr(netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 0, byte(i / 256), byte(i)}), 1).String())) != nil {
			penalized++
		}
	}
	assert.Equal(t, 4, penalized)
	for i := 96; i < 100; i++ {
		assert.Error(t, a.Allow(tcpAddr(netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 0, 0, byte(i)}), 1).String())), "newest sources are kept")
	}
}

// TestPenaltiesOverTCP penalizes 127.0.0.2 with real connections while
// 127.0.0.1 keeps logging in.
func TestPenaltiesOverTCP(t *testing.T) {
	requireLocalAddr(t, net.IPv4(127, 0, 0, 2))

	log, logs := newLogger()
	a, err := authn.New(&authn.Config{
		Passwords: &authn.PasswordConfig{Users: []authn.PasswordUser{{Name: "u", Password: "pw"}}},
		Logger:    log,
	})
	require.NoError(t, err)
	s := startServer(t, a)
	cfg := func(pw string) *ssh.ClientConfig {
		return &ssh.ClientConfig{User: "u", Auth: []ssh.AuthMethod{ssh.Password(pw)}}
	}
	// Three failures of 5s reach the 15s threshold, less the time that
	// passes in between; a fourth may be needed on a real clock.
	refused := false
	for i := 0; i < 6 && !refused; i++ {
		_, err := dialFrom(t, "127.0.0.2", s.addr, cfg("wrong"))
		require.Error(t, err)
		select {
		case err := <-s.refused:
			assert.ErrorIs(t, err, authn.ErrPenalized)
			refused = true
			assert.GreaterOrEqual(t, i, 3, "refused before three failures")
		case <-s.results:
		case <-time.After(10 * time.Second):
			t.Fatal("no verdict")
		}
	}
	require.True(t, refused, "source never penalized; log:\n%s", logs.String())
	_, err = dialFrom(t, "127.0.0.2", s.addr, cfg("pw"))
	require.Error(t, err, "penalized source must be refused even with the right password")
	assert.ErrorIs(t, <-s.refused, authn.ErrPenalized)
	c, err := dialFrom(t, "127.0.0.1", s.addr, cfg("pw"))
	require.NoError(t, err)
	c.Close()
	require.NoError(t, s.next(t).err)
}

// TestMaxAuthTries: a client trying many passwords on one connection is
// cut off after MaxAuthTries.
func TestMaxAuthTries(t *testing.T) {
	for _, tt := range []struct{ cfg, want int }{{0, 6}, {3, 3}, {-1, 6}} {
		log, logs := newLogger()
		a, err := authn.New(&authn.Config{
			Passwords:    &authn.PasswordConfig{Users: []authn.PasswordUser{{Name: "u", Password: "pw"}}},
			MaxAuthTries: tt.cfg,
			Penalties:    &authn.PenaltyConfig{Disabled: true},
			Logger:       log,
		})
		require.NoError(t, err)
		s := startServer(t, a)
		tries := 0
		_, err = dial(t, s.addr, "u", ssh.RetryableAuthMethod(ssh.PasswordCallback(func() (string, error) {
			tries++
			return "wrong", nil
		}), 50))
		require.Error(t, err)
		s.next(t)
		got := len(logs.find(t, map[string]string{"method": "password", "result": "failure"}))
		if got != tt.want {
			t.Errorf("MaxAuthTries %d: server evaluated %d passwords, want %d (client tried %d)", tt.cfg, got, tt.want, tries)
		}
	}
}
