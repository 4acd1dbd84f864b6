package authn

import (
	"cmp"
	"container/heap"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"time"
)

// PenaltyConfig configures per-source penalties in the spirit of OpenSSH
// 9.8's PerSourcePenalties: failed attempts from an address, or from the
// network block it belongs to, add up to a penalty during which new
// connections from there are refused by Authenticator.Allow and further
// attempts on open connections are refused without being evaluated.
//
// A penalty adds to what is left of the previous one and starts to
// apply once the total reaches Threshold; it then lasts until it runs
// out, at most Max.
type PenaltyConfig struct {
	// Disabled turns penalties off.
	Disabled bool

	// AuthFailure is added for each failed password attempt (wrong
	// password or unknown user). Zero means 5s (OpenSSH authfail).
	AuthFailure time.Duration

	// KeyRefused is added for each public key refused. Clients offer
	// several keys as a matter of course, so it is smaller. Zero means 1s.
	KeyRefused time.Duration

	// Threshold is the accumulated penalty at which refusals start. Zero
	// means 15s (OpenSSH's min): three failed passwords in a row.
	Threshold time.Duration

	// Max caps a penalty. Zero means 10m (OpenSSH's max).
	Max time.Duration

	// IPv4Prefix and IPv6Prefix are the sizes of the network blocks that
	// share one penalty. Zero means 32 and 64: OpenSSH uses 128 for IPv6,
	// but a single host usually controls a whole /64.
	IPv4Prefix, IPv6Prefix int

	// MaxSources bounds the number of blocks tracked. When full, the
	// block whose penalty ends first is forgotten. Zero means 65536.
	MaxSources int

	// Exempt lists addresses and CIDR blocks that are never penalized.
	Exempt []string
}

// ErrPenalized is matched (errors.Is) by the *PenaltyError that Allow
// returns for a source under penalty.
var ErrPenalized = errors.New("authn: source is penalized")

// PenaltyError reports a refused connection from a penalized source.
type PenaltyError struct {
	// Source is the penalized network block.
	Source netip.Prefix
	// Remaining is how long the penalty still lasts.
	Remaining time.Duration
}

func (e *PenaltyError) Error() string {
	return fmt.Sprintf("authn: source %s is penalized for another %s after failed authentication", e.Source, e.Remaining.Round(time.Second))
}

// Is makes errors.Is(err, ErrPenalized) true.
func (e *PenaltyError) Is(target error) bool { return target == ErrPenalized }

type penaltyBox struct {
	authFailure, keyRefused time.Duration
	threshold, max          time.Duration
	v4bits, v6bits          int
	maxSources              int
	exempt                  []netip.Prefix
	now                     func() time.Time
	log                     *slog.Logger

	mu      sync.Mutex // guards entries and queue
	entries map[netip.Prefix]*penaltyEntry
	queue   penaltyQueue // min-heap by until, for expiry and eviction
}

type penaltyEntry struct {
	source netip.Prefix
	until  time.Time
	active bool
	index  int
}

func newPenaltyBox(cfg *PenaltyConfig, now func() time.Time, log *slog.Logger) (*penaltyBox, error) {
	var c PenaltyConfig
	if cfg != nil {
		c = *cfg
	}
	if c.Disabled {
		return nil, nil
	}
	b := &penaltyBox{
		authFailure: cmp.Or(c.AuthFailure, 5*time.Second),
		keyRefused:  cmp.Or(c.KeyRefused, time.Second),
		threshold:   cmp.Or(c.Threshold, 15*time.Second),
		max:         cmp.Or(c.Max, 10*time.Minute),
		v4bits:      c.IPv4Prefix,
		v6bits:      c.IPv6Prefix,
		maxSources:  c.MaxSources,
		now:         now,
		log:         log,
		entries:     map[netip.Prefix]*penaltyEntry{},
	}
	if b.v4bits == 0 {
		b.v4bits = 32
	}
	if b.v6bits == 0 {
		b.v6bits = 64
	}
	if b.maxSources == 0 {
		b.maxSources = 65536
	}
	switch {
	case b.v4bits < 0 || b.v4bits > 32:
		return nil, fmt.Errorf("authn: Penalties.IPv4Prefix %d outside 1..32", c.IPv4Prefix)
	case b.v6bits < 0 || b.v6bits > 128:
		return nil, fmt.Errorf("authn: Penalties.IPv6Prefix %d outside 1..128", c.IPv6Prefix)
	case b.maxSources < 0:
		return nil, errors.New("authn: Penalties.MaxSources is negative")
	case b.authFailure < 0 || b.keyRefused < 0 || b.threshold < 0 || b.max < 0:
		return nil, errors.New("authn: negative penalty duration")
	}
	for _, e := range c.Exempt {
		p, err := parseAddrOrPrefix(e)
		if err != nil {
			return nil, fmt.Errorf("authn: Penalties.Exempt entry %q: %v", e, err)
		}
		b.exempt = append(b.exempt, p)
	}
	return b, nil
}

// source maps a remote address to its network block; ok is false for
// non-IP transports and exempt addresses, which are never penalized.
func (b *penaltyBox) source(addr net.Addr) (netip.Prefix, bool) {
	ip, ok := remoteIP(addr)
	if !ok {
		return netip.Prefix{}, false
	}
	for _, e := range b.exempt {
		if e.Contains(ip) {
			return netip.Prefix{}, false
		}
	}
	bits := b.v6bits
	if ip.Is4() {
		bits = b.v4bits
	}
	p, err := ip.Prefix(bits)
	return p, err == nil
}

// expire drops entries whose penalty ran out. Callers hold b.mu.
func (b *penaltyBox) expire(now time.Time) {
	for len(b.queue) > 0 && !b.queue[0].until.After(now) {
		e := heap.Pop(&b.queue).(*penaltyEntry)
		delete(b.entries, e.source)
	}
}

// check returns a *PenaltyError if addr is under an active penalty.
func (b *penaltyBox) check(addr net.Addr) error {
	src, ok := b.source(addr)
	if !ok {
		return nil
	}
	now := b.now()
	b.mu.Lock()
	defer b.mu.Unlock()
	b.expire(now)
	if e := b.entries[src]; e != nil && e.active {
		return &PenaltyError{Source: src, Remaining: e.until.Sub(now)}
	}
	return nil
}

// add records a penalty of d for addr.
func (b *penaltyBox) add(addr net.Addr, d time.Duration) {
	if d <= 0 {
		return
	}
	src, ok := b.source(addr)
	if !ok {
		return
	}
	now := b.now()
	b.mu.Lock()
	defer b.mu.Unlock()
	b.expire(now)
	e := b.entries[src]
	if e == nil {
		if b.maxSources == 0 {
			return
		}
		for len(b.entries) >= b.maxSources {
			// Forget the penalty that would end first.
			old := heap.Pop(&b.queue).(*penaltyEntry)
			delete(b.entries, old.source)
		}
		e = &penaltyEntry{source: src, until: now}
		b.entries[src] = e
		heap.Push(&b.queue, e)
	}
	e.until = e.until.Add(d)
	if e.until.Sub(now) > b.max {
		e.until = now.Add(b.max)
	}
	heap.Fix(&b.queue, e.index)
	if !e.active && e.until.Sub(now) >= b.threshold {
		e.active = true
		b.log.Warn("authn: source penalized after failed authentication",
			"source", src.String(), "duration", e.until.Sub(now).Round(time.Second).String())
	}
}

func (b *penaltyBox) size() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.entries)
}

type penaltyQueue []*penaltyEntry

func (q penaltyQueue) Len() int           { return len(q) }
func (q penaltyQueue) Less(i, j int) bool { return q[i].until.Before(q[j].until) }
func (q penaltyQueue) Swap(i, j int) {
	q[i], q[j] = q[j], q[i]
	q[i].index, q[j].index = i, j
}
func (q *penaltyQueue) Push(x any) {
	e := x.(*penaltyEntry)
	e.index = len(*q)
	*q = append(*q, e)
}
func (q *penaltyQueue) Pop() any {
	old := *q
	e := old[len(old)-1]
	old[len(old)-1] = nil
	*q = old[:len(old)-1]
	e.index = -1
	return e
}
