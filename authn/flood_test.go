package authn_test

import (
	"bufio"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/ssh"

	"github.com/dockssh/dockssh/authn"
)

var floodFlag = flag.Bool("authn.flood", false, "run TestFlood: 10,000 failed password attempts from 127.0.0.2 against a server also serving a user on 127.0.0.1")

const (
	floodAttempts = 10000
	floodTimeCap  = 30 * time.Second
	floodWorkers  = 8
	floodUser     = "legit"
	floodPassword = "legit-password"
)

// TestMain lets the test binary double as the flood test's server, so
// that the server's CPU time is measured apart from the clients'.
func TestMain(m *testing.M) {
	if mode := os.Getenv("AUTHN_FLOOD_SERVER"); mode != "" {
		if err := floodServer(mode == "penalties"); err != nil {
			fmt.Fprintln(os.Stderr, "flood server:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

type floodStats struct {
	CPU             time.Duration // user+system time of the server process
	Evaluated       int64         // password attempts whose hash was computed
	RefusedAllow    int64         // connections refused by Allow
	RefusedCallback int64         // attempts refused without evaluation (penalized)
	Busy            int64         // attempts refused because all hash slots were taken
}

// countingHandler counts the authn log records the flood report needs.
type countingHandler struct {
	evaluated, refused, busy *atomic.Int64
}

func (h countingHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h countingHandler) WithAttrs([]slog.Attr) slog.Handler       { return h }
func (h countingHandler) WithGroup(string) slog.Handler            { return h }
func (h countingHandler) Handle(_ context.Context, r slog.Record) error {
	var method, result, reason string
	r.Attrs(func(a slog.Attr) bool {
		switch a.Key {
		case "method":
			method = a.Value.String()
		case "result":
			result = a.Value.String()
		case "reason":
			reason = a.Value.String()
		}
		return true
	})
	if method != "password" {
		return nil
	}
	switch {
	case strings.Contains(reason, "too many password verifications"):
		h.busy.Add(1)
	case result == "refused":
		h.refused.Add(1)
	case result == "failure" || result == "success":
		h.evaluated.Add(1)
	}
	return nil
}

func floodServer(penalties bool) error {
	hash, err := authn.HashArgon2id([]byte(floodPassword), nil) // m=64MiB t=3 p=4
	if err != nil {
		return err
	}
	var evaluated, refusedCB, busy, refusedAllow atomic.Int64
	a, err := authn.New(&authn.Config{
		Passwords: &authn.PasswordConfig{Users: []authn.PasswordUser{{Name: floodUser, Hash: hash}}},
		Penalties: &authn.PenaltyConfig{Disabled: !penalties},
		Logger:    slog.New(countingHandler{&evaluated, &refusedCB, &busy}),
	})
	if err != nil {
		return err
	}
	_, priv, err := ed25519Key()
	if err != nil {
		return err
	}
	cfg := &ssh.ServerConfig{}
	a.Apply(cfg)
	cfg.AddHostKey(priv)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	fmt.Printf("ADDR %s\n", ln.Addr())
	go func() {
		for {
			nc, err := ln.Accept()
			if err != nil {
				return
			}
			if a.Allow(nc.RemoteAddr()) != nil {
				refusedAllow.Add(1)
				nc.Close()
				continue
			}
			go func() {
				defer nc.Close()
				_ = nc.SetDeadline(time.Now().Add(20 * time.Second))
				conn, _, _, err := ssh.NewServerConn(nc, cfg)
				if err == nil {
					conn.Close()
				}
			}()
		}
	}()
	sc := bufio.NewScanner(os.Stdin)
	for sc.Scan() {
		if sc.Text() != "stats" {
			continue
		}
		var ru syscall.Rusage
		if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
			return err
		}
		st := floodStats{
			CPU:             time.Duration(ru.Utime.Nano() + ru.Stime.Nano()),
			Evaluated:       evaluated.Load(),
			RefusedAllow:    refusedAllow.Load(),
			RefusedCallback: refusedCB.Load(),
			Busy:            busy.Load(),
		}
		b, _ := json.Marshal(st)
		fmt.Printf("STATS %s\n", b)
	}
	return nil
}

func ed25519Key() (ssh.PublicKey, ssh.Signer, error) {
	s := newSigner()
	return s.PublicKey(), s, nil
}

// floodChild is the server process of one flood run.
type floodChild struct {
	cmd   *exec.Cmd
	in    io.WriteCloser
	lines chan string
	addr  string
}

func startFloodChild(t *testing.T, penalties bool) *floodChild {
	t.Helper()
	mode := "nopenalties"
	if penalties {
		mode = "penalties"
	}
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "AUTHN_FLOOD_SERVER="+mode)
	cmd.Stderr = os.Stderr
	in, err := cmd.StdinPipe()
	require.NoError(t, err)
	out, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	c := &floodChild{cmd: cmd, in: in, lines: make(chan string, 16)}
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			c.lines <- sc.Text()
		}
		close(c.lines)
	}()
	t.Cleanup(func() {
		in.Close()
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	line := <-c.lines
	addr, ok := strings.CutPrefix(line, "ADDR ")
	require.True(t, ok, "flood server said %q", line)
	c.addr = addr
	return c
}

func (c *floodChild) stats(t *testing.T) floodStats {
	t.Helper()
	_, err := io.WriteString(c.in, "stats\n")
	require.NoError(t, err)
	line := <-c.lines
	js, ok := strings.CutPrefix(line, "STATS ")
	require.True(t, ok, "flood server said %q", line)
	var st floodStats
	require.NoError(t, json.Unmarshal([]byte(js), &st))
	return st
}

// legitLogin logs in as the legitimate user from 127.0.0.1 and returns
// how long the TCP connect, handshake and password check took.
func legitLogin(addr string) (time.Duration, error) {
	start := time.Now()
	nc, err := (&net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)}, Timeout: 20 * time.Second}).Dial("tcp", addr)
	if err != nil {
		return 0, err
	}
	defer nc.Close()
	_ = nc.SetDeadline(time.Now().Add(30 * time.Second))
	c, chans, reqs, err := ssh.NewClientConn(nc, addr, &ssh.ClientConfig{
		User: floodUser, Auth: []ssh.AuthMethod{ssh.Password(floodPassword)},
		HostKeyCallback: ssh.InsecureIgnoreHostKey(), //nolint:gosec // our own in-process test server
	})
	if err != nil {
		return 0, err
	}
	d := time.Since(start)
	ssh.NewClient(c, chans, reqs).Close()
	return d, nil
}

func median(ds []time.Duration) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2]
}

// TestFlood is a measurement, not a pass/fail check (timings are never
// asserted): it sends up to 10,000 failed password attempts (bounded by
// 30s) from 127.0.0.2 with 8 workers, each connection trying up to 6
// passwords, while a legitimate user logs in from 127.0.0.1 every 250ms,
// once with per-source penalties and once without. The server runs in a
// child process so that its CPU time is its own.
//
//	go test -run '^TestFlood$' -authn.flood -v ./authn/
func TestFlood(t *testing.T) {
	if !*floodFlag {
		t.Skip("measurement; run with -authn.flood (about a minute)")
	}
	requireLocalAddr(t, net.IPv4(127, 0, 0, 2))
	var rows []string
	for _, penalties := range []bool{true, false} {
		c := startFloodChild(t, penalties)
		var before []time.Duration
		for range 5 {
			d, err := legitLogin(c.addr)
			require.NoError(t, err)
			before = append(before, d)
		}
		st0 := c.stats(t)

		var attempts, refusedConns, conns atomic.Int64
		stop := make(chan struct{})
		var wg sync.WaitGroup
		start := time.Now()
		for range floodWorkers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for attempts.Load() < floodAttempts && time.Since(start) < floodTimeCap {
					nc, err := (&net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 2)}, Timeout: 5 * time.Second}).Dial("tcp", c.addr)
					if err != nil {
						attempts.Add(1)
						refusedConns.Add(1)
						continue
					}
					conns.Add(1)
					_ = nc.SetDeadline(time.Now().Add(20 * time.Second))
					var tries int64
					_, _, _, err = ssh.NewClientConn(nc, c.addr, &ssh.ClientConfig{
						User: floodUser,
						Auth: []ssh.AuthMethod{ssh.RetryableAuthMethod(ssh.PasswordCallback(func() (string, error) {
							tries++
							attempts.Add(1)
							return fmt.Sprintf("guess-%d", attempts.Load()), nil
						}), 6)},
						HostKeyCallback: ssh.InsecureIgnoreHostKey(), //nolint:gosec // our own test server
					})
					if err == nil {
						t.Errorf("a guess got in")
					}
					if tries == 0 {
						attempts.Add(1)
						refusedConns.Add(1)
					}
					nc.Close()
				}
			}()
		}
		var during []time.Duration
		legitFailures := 0
		var lwg sync.WaitGroup
		lwg.Add(1)
		go func() {
			defer lwg.Done()
			tick := time.NewTicker(250 * time.Millisecond)
			defer tick.Stop()
			for {
				select {
				case <-stop:
					return
				case <-tick.C:
					d, err := legitLogin(c.addr)
					if err != nil {
						legitFailures++
						continue
					}
					during = append(during, d)
				}
			}
		}()
		wg.Wait()
		elapsed := time.Since(start)
		close(stop)
		lwg.Wait()
		st1 := c.stats(t)
		mode := "penalties on (default)"
		if !penalties {
			mode = "penalties off"
		}
		row := fmt.Sprintf("| %s | %d in %.1fs | %d | %d | %d | %d | %.2fs | %.0fms | %.0fms (max %.0fms, n=%d) | %d |",
			mode, attempts.Load(), elapsed.Seconds(),
			st1.Evaluated-st0.Evaluated, st1.RefusedAllow-st0.RefusedAllow, st1.RefusedCallback-st0.RefusedCallback,
			st1.Busy-st0.Busy, (st1.CPU - st0.CPU).Seconds(),
			ms(median(before)), ms(median(during)), ms(slices.Max(append(during, 0))), len(during), legitFailures)
		t.Log(row)
		rows = append(rows, row)
	}
	t.Log("\n| mode | attempts made | evaluated (hash computed) | connections refused by Allow | attempts refused unevaluated | attempts refused busy | server CPU during flood | legit login before (median of 5) | legit login during (median) | legit login failures |\n|---|---|---|---|---|---|---|---|---|---|\n" + strings.Join(rows, "\n"))
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
