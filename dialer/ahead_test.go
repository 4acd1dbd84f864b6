package dialer_test

import (
	"bytes"
	"errors"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dockssh/dockssh/dialer"
)

// echo sends s on c, half-closes it and returns what came back.
func echo(tb testing.TB, c net.Conn, s string) string {
	tb.Helper()
	defer c.Close()
	_, err := io.WriteString(c, s)
	require.NoError(tb, err)
	require.NoError(tb, c.(interface{ CloseWrite() error }).CloseWrite())
	got, err := io.ReadAll(c)
	require.NoError(tb, err)
	return string(got)
}

func TestDialAhead(t *testing.T) {
	srv := newFakeServer(t)
	cfg := srv.Config(t)
	cfg.DialAhead = 1
	var mu sync.Mutex
	var logs bytes.Buffer
	cfg.Logger = newTestLogger(&logs, &mu)
	d := newDialer(t, srv, srv.echoSock, cfg)
	execs := func() int { return srv.count(func() int { return len(srv.execs) }) }
	logged := func(msg string) func() int {
		return func() int {
			mu.Lock()
			defer mu.Unlock()
			return strings.Count(logs.String(), msg)
		}
	}
	taken, ready := logged("conn opened ahead taken"), logged("conn opened ahead of need")

	c, err := d.DialContext(t.Context(), "tcp", "")
	require.NoError(t, err)
	assert.Equal(t, "got:first", echo(t, c, "first"))
	// The first dial opened its own conn, then one more ahead.
	require.Eventually(t, func() bool { return ready() == 1 }, 10*time.Second, time.Millisecond, "a conn is opened ahead")
	assert.Equal(t, 2, execs())
	assert.Zero(t, taken())

	// The next dial takes it, and one more is opened ahead.
	c, err = d.DialContext(t.Context(), "tcp", "")
	require.NoError(t, err)
	assert.Equal(t, 1, taken(), "the second dial used the conn opened ahead")
	assert.Equal(t, "got:second", echo(t, c, "second"))
	require.Eventually(t, func() bool { return ready() == 2 }, 10*time.Second, time.Millisecond, "the spare is replaced")
	assert.Equal(t, 3, execs())
	assert.Never(t, func() bool { return execs() > 3 }, 50*time.Millisecond, time.Millisecond, "one spare, not more")

	// A spare on an SSH connection known to be dead is not used: the dial
	// reconnects and opens its own.
	dialer.MarkConnectionsLost(d, errors.New("test: transport failed"))
	c, err = d.DialContext(t.Context(), "tcp", "")
	require.NoError(t, err)
	assert.Equal(t, 1, taken(), "a spare of a dead connection was used")
	assert.Equal(t, "got:third", echo(t, c, "third"))

	// Close ends the spares with everything else.
	require.Eventually(t, func() bool { return execs() == 5 }, 10*time.Second, time.Millisecond)
	require.NoError(t, d.Close())
	running, parked := dialer.Goroutines(d)
	assert.Zero(t, running, "goroutines the Dialer counts after Close")
	assert.Zero(t, parked)
}

// Without DialAhead, nothing is opened that was not asked for.
func TestNoDialAheadByDefault(t *testing.T) {
	srv := newFakeServer(t)
	d := newDialer(t, srv, srv.echoSock, nil)
	for i := range 3 {
		c, err := d.DialContext(t.Context(), "tcp", "")
		require.NoError(t, err)
		echo(t, c, "x")
		assert.Never(t, func() bool { return srv.count(func() int { return len(srv.execs) }) > i+1 }, 20*time.Millisecond, time.Millisecond)
	}
}
