package integration

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/url"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/dockssh/dockssh/execbridge"
	"github.com/dockssh/dockssh/integration/internal/harness"
	"github.com/dockssh/dockssh/sse"
)

// BenchmarkSSE measures the web terminal side by side with an SSH pty
// session on the same execbridge Docker backend, in one run:
//
//	go test -run XXX -bench BenchmarkSSE -benchtime 1x -timeout 30m ./integration/
//
// echo: a keystroke's round trip (POST send, then the data event with its
// echo; for SSH, a byte written to the session and its echo read), p50 and
// p99 over 1,000 keystrokes, against a terminal in this process that
// echoes and against `cat` under a real pty in a Debian container.
// stream: 50 MB of output (`head -c 50000000 /dev/zero | tr '\0' x` under
// a pty) through the event stream and through SSH, and from a terminal in
// this process. idle: memory per session with 200 idle sessions, each
// with its stream open. Each sub-benchmark does a fixed amount of work
// whatever b.N is and reports its figures as metrics.
func BenchmarkSSE(b *testing.B) {
	b.Run("echo-inprocess", func(b *testing.B) {
		c := benchSSESession(b, sse.Config{Start: func(context.Context, string, int, int) (sse.Terminal, error) {
			return newPipeTerminal(true), nil
		}})
		reportLatency(b, "sse", sseKeystrokes(b, c, 1000))
	})
	b.Run("stream-inprocess", func(b *testing.B) {
		const total = 50_000_000
		c := benchSSESession(b, sse.Config{Start: func(context.Context, string, int, int) (sse.Terminal, error) {
			t := newPipeTerminal(false)
			go func() {
				chunk := []byte(strings.Repeat("x", 32<<10))
				for n := 0; n < total; n += len(chunk) {
					t.pw.Write(chunk[:min(len(chunk), total-n)])
				}
				t.pw.Close()
			}()
			return t, nil
		}})
		start := time.Now()
		n := sseCount(b, c)
		reportThroughput(b, "sse", n, total, time.Since(start))
	})
	b.Run("idle-200", func(b *testing.B) {
		benchIdleSessions(b, 200)
	})

	// Through a real container: the same Debian target for both.
	targets := startTargets(b)
	deb := targets[0]
	e := startBridge(b, targets, bridgeOpts{})
	sshc := e.dial(b, e.user(deb))
	docker := harness.Docker(b)
	backend := execbridge.NewDockerBackend(docker, &execbridge.DockerConfig{KillGrace: time.Second})
	run := func(argv ...string) sse.StartFunc {
		return func(ctx context.Context, _ string, rows, cols int) (sse.Terminal, error) {
			return backend.Start(ctx, execbridge.ProcessSpec{
				Target: execbridge.Target{ID: deb.ID, Name: deb.Name}, Argv: argv,
				TTY: true, Rows: rows, Cols: cols,
			})
		}
	}

	b.Run("echo-container", func(b *testing.B) {
		c := benchSSESession(b, sse.Config{Start: run("cat")})
		sseTimes := sseKeystrokes(b, c, 1000)
		sshTimes := sshKeystrokes(b, sshc, 1000)
		reportLatency(b, "sse", sseTimes)
		reportLatency(b, "ssh", sshTimes)
		b.ReportMetric(percentile(sseTimes, 50)/percentile(sshTimes, 50), "p50-sse/ssh")
	})
	b.Run("stream-container", func(b *testing.B) {
		const total, rounds = 50_000_000, 2
		cmd := fmt.Sprintf(`head -c %d /dev/zero | tr '\0' x`, total)
		viaSSE := func() time.Duration {
			c := benchSSESession(b, sse.Config{Start: run("/bin/sh", "-c", cmd)})
			start := time.Now()
			if n := sseCount(b, c); n != total {
				b.Fatalf("sse: %d bytes, want %d", n, total)
			}
			return time.Since(start)
		}
		viaSSH := func() time.Duration {
			s, err := sshc.NewSession()
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			if err := s.RequestPty("xterm", 24, 80, ssh.TerminalModes{}); err != nil {
				b.Fatal(err)
			}
			out, _ := s.StdoutPipe()
			start := time.Now()
			if err := s.Start(cmd); err != nil {
				b.Fatal(err)
			}
			if n, _ := io.Copy(io.Discard, out); n != total {
				b.Fatalf("ssh: %d bytes, want %d", n, total)
			}
			s.Wait()
			return time.Since(start)
		}
		// Alternated, so that load on the machine hits both alike.
		var sseTime, sshTime time.Duration
		for i := range rounds {
			if i%2 == 0 {
				sseTime += viaSSE()
				sshTime += viaSSH()
			} else {
				sshTime += viaSSH()
				sseTime += viaSSE()
			}
		}
		reportThroughput(b, "sse", rounds*total, rounds*total, sseTime)
		reportThroughput(b, "ssh", rounds*total, rounds*total, sshTime)
		b.ReportMetric(sshTime.Seconds()/sseTime.Seconds(), "throughput-sse/ssh")
	})
}

// pipeTerminal is a terminal in this process: what is written comes back
// as output when echo is set; otherwise its output is written to pw.
type pipeTerminal struct {
	pr   *io.PipeReader
	pw   *io.PipeWriter
	echo bool
}

func newPipeTerminal(echo bool) *pipeTerminal {
	pr, pw := io.Pipe()
	return &pipeTerminal{pr: pr, pw: pw, echo: echo}
}

func (p *pipeTerminal) Read(b []byte) (int, error) { return p.pr.Read(b) }
func (p *pipeTerminal) Write(b []byte) (int, error) {
	if p.echo {
		return p.pw.Write(b)
	}
	return len(b), nil
}
func (p *pipeTerminal) Resize(context.Context, int, int) error { return nil }
func (p *pipeTerminal) Wait(context.Context) error             { return nil }
func (p *pipeTerminal) Close() error {
	p.pr.Close()
	return p.pw.Close()
}

// benchSSESession serves cfg and opens a session on it.
func benchSSESession(b *testing.B, cfg sse.Config) *sseClient {
	b.Helper()
	cfg.Heartbeat = -1
	cfg.Logger = quietSSELogger()
	_, srv := newSSEServer(b, cfg, "bench", "pw")
	c := &sseClient{base: srv.URL, user: "bench", password: "pw", client: srv.Client()}
	openSSE(b, b.Context(), c, "", "")
	return c
}

// sseKeystrokes sends n keystrokes one at a time and times each until its
// echo arrives as a data event.
func sseKeystrokes(b *testing.B, c *sseClient, n int) []time.Duration {
	b.Helper()
	times := make([]time.Duration, 0, n)
	for i := range n {
		k := string(rune('a' + i%26))
		start := time.Now()
		c.post(b, "send", url.Values{"data": {k}})
		for {
			ev, err := c.next()
			if err != nil {
				b.Fatalf("stream: %v", err)
			}
			if ev.name == "data" && strings.Contains(ev.data, k) {
				break
			}
		}
		times = append(times, time.Since(start))
	}
	return times
}

// sshKeystrokes does the same over an SSH pty session running cat.
func sshKeystrokes(b *testing.B, c *ssh.Client, n int) []time.Duration {
	b.Helper()
	s, err := c.NewSession()
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	if err := s.RequestPty("xterm", 24, 80, ssh.TerminalModes{}); err != nil {
		b.Fatal(err)
	}
	in, _ := s.StdinPipe()
	out, _ := s.StdoutPipe()
	if err := s.Start("cat"); err != nil {
		b.Fatal(err)
	}
	buf := make([]byte, 256)
	times := make([]time.Duration, 0, n)
	for i := range n {
		k := byte('a' + i%26)
		start := time.Now()
		if _, err := in.Write([]byte{k}); err != nil {
			b.Fatal(err)
		}
		for {
			m, err := out.Read(buf)
			if err != nil {
				b.Fatalf("ssh: %v", err)
			}
			if slices.Contains(buf[:m], k) {
				break
			}
		}
		times = append(times, time.Since(start))
	}
	return times
}

// sseCount reads data events until the exit event and returns the number
// of output bytes ('x' only: one byte per JSON character).
func sseCount(b *testing.B, c *sseClient) int {
	b.Helper()
	n := 0
	for {
		ev, err := c.next()
		if err != nil {
			b.Fatalf("stream: %v after %d bytes", err, n)
		}
		switch ev.name {
		case "data":
			n += len(ev.data) - 2
		case "exit":
			return n
		}
	}
}

func percentile(d []time.Duration, p int) float64 {
	s := slices.Clone(d)
	slices.Sort(s)
	i := min(len(s)-1, len(s)*p/100)
	return float64(s[i].Microseconds()) / 1000
}

func reportLatency(b *testing.B, name string, d []time.Duration) {
	b.ReportMetric(percentile(d, 50), "ms-p50-"+name)
	b.ReportMetric(percentile(d, 99), "ms-p99-"+name)
}

func reportThroughput(b *testing.B, name string, n, want int, d time.Duration) {
	if n != want {
		b.Fatalf("%s: %d bytes, want %d", name, n, want)
	}
	b.ReportMetric(float64(n)/d.Seconds()/1e6, "MB/s-"+name)
}

// benchIdleSessions opens n sessions on idle in-process terminals, each
// with its stream open on a raw connection that reads nothing more, and
// reports the server's memory per session.
func benchIdleSessions(b *testing.B, n int) {
	h, srv := newSSEServer(b, sse.Config{
		Start: func(ctx context.Context, _ string, _, _ int) (sse.Terminal, error) {
			return newPipeTerminal(false), nil
		},
		MaxSessions: n, MaxSessionsPerPrincipal: n,
		Logger: quietSSELogger(),
	}, "bench", "pw")
	addr := strings.TrimPrefix(srv.URL, "http://")
	before := memInUse()
	gBefore := runtime.NumGoroutine()
	conns := make([]net.Conn, 0, n)
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for range n {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			b.Fatal(err)
		}
		conns = append(conns, c)
		fmt.Fprintf(c, "GET /api/v1/terminal/stream HTTP/1.1\r\nHost: %s\r\nAuthorization: Basic YmVuY2g6cHc=\r\n\r\n", addr)
	}
	deadline := time.Now().Add(time.Minute)
	for h.Sessions() < n {
		if time.Now().After(deadline) {
			b.Fatalf("%d sessions, want %d", h.Sessions(), n)
		}
		time.Sleep(10 * time.Millisecond)
	}
	after := memInUse()
	b.ReportMetric(float64(after-before)/float64(n)/1024, "KiB/session")
	b.ReportMetric(float64(runtime.NumGoroutine()-gBefore)/float64(n), "goroutines/session")
}

// memInUse returns the heap and stack memory in use after a collection.
func memInUse() uint64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapInuse + m.StackInuse
}
