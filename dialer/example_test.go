package dialer_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"time"

	"github.com/dockssh/dockssh/dialer"
	"github.com/dockssh/dockssh/hostkeys"
)

// The Docker client takes the DialContext as it is:
//
//	cli, err := client.New(client.WithHost("http://docker"), client.WithDialContext(d.DialContext))
//
// This example uses a plain http.Client, which is what the Docker client
// does underneath.
func ExampleNew() {
	d, err := dialer.New("ssh://docker@build-host.example", nil) // defaults from ~/.ssh
	if err != nil {
		fmt.Println(err)
		return
	}
	defer d.Close()
	hc := &http.Client{Transport: &http.Transport{DialContext: d.DialContext}}
	resp, err := hc.Get("http://docker/_ping")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	fmt.Println(string(body))
}

// New checks the URL before anything connects; its errors never show a
// password.
func ExampleNew_invalidURL() {
	_, err := dialer.New("ssh://admin:hunter2-secret@host:22?socket=/x", nil)
	fmt.Println(err)
	// Output:
	// dialer: ssh://[REDACTED]@host:22?socket=/x: parse URL: query parameters are not allowed; want ssh://[user@]host[:port][/path/to/docker.sock]
}

// A Config for a program that brings its own files and logs each stage.
func ExampleConfig() {
	cfg := &dialer.Config{
		IgnoreSSHConfig:   true,
		KnownHostsFiles:   []string{"/etc/myapp/known_hosts"},
		IdentityFiles:     []string{"/etc/myapp/id_ed25519"},
		AgentSocket:       "none",
		RemoteDocker:      "/usr/bin/docker",
		KeepAliveInterval: 10 * time.Second,
		Logger:            slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug})),
	}
	// A socket path in the URL names the remote daemon (rootless Docker
	// here); TransportStreamLocal then reaches it without a remote process
	// per connection.
	cfg.Transport = dialer.TransportStreamLocal
	d, err := dialer.New("ssh://builder@ci.example:2222/run/user/1000/docker.sock", cfg)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer d.Close()
	fmt.Println("ready")
	// Output: ready
}

// Errors say which stage failed; typed errors from hostkeys come through.
func ExampleError() {
	d, err := dialer.New("ssh://docker@build-host.example", nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer d.Close()
	conn, err := d.DialContext(context.Background(), "tcp", "")
	var de *dialer.Error
	switch {
	case errors.Is(err, hostkeys.ErrHostKeyChanged):
		fmt.Println("the server's host key changed: refusing to connect")
	case errors.As(err, &de) && de.Op == dialer.OpCommand:
		fmt.Printf("docker failed on the server (exit %d): %s\n", de.ExitStatus, de.Stderr)
	case err != nil:
		fmt.Println(err)
	default:
		conn.Close()
	}
}

// Conns have working deadlines and half-close, as the Docker client's
// hijacked attach and exec streams need.
func ExampleDialer_DialContext() {
	d, err := dialer.New("ssh://docker@build-host.example/var/run/docker.sock", nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer d.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := d.DialContext(ctx, "tcp", "docker:2375")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(5 * time.Second))
	io.WriteString(conn, "GET /_ping HTTP/1.1\r\nHost: docker\r\nConnection: close\r\n\r\n")
	conn.(interface{ CloseWrite() error }).CloseWrite()
	reply, err := io.ReadAll(conn)
	var netErr interface{ Timeout() bool }
	if errors.As(err, &netErr) && netErr.Timeout() {
		fmt.Println("no answer within 5s")
		return
	}
	fmt.Printf("%s\n", reply)
}
