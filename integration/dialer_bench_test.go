package integration

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/moby/moby/client"

	"github.com/dockssh/dockssh/dialer"
	"github.com/dockssh/dockssh/envsanitize"
	"github.com/dockssh/dockssh/integration/internal/harness"
)

// BenchmarkDialer measures the dialer against the alternatives side by
// side, in one run, against one real sshd and the local dockerd:
//
//	go test -run XXX -bench BenchmarkDialer -benchtime 3s -timeout 30m ./integration/
//
// Sub-benchmarks that belong together start with the same name:
// ps/..., newconn/..., ping/..., imagesave/..., coldstart/...
func BenchmarkDialer(b *testing.B) {
	im := harness.Require(b)
	sshd := harness.StartSSHD(b, nil)
	local := harness.Docker(b)
	knownHosts := sshd.WriteKnownHosts(b)
	url := sshURL(sshd, "")
	sockURL := sshURL(sshd, "/var/run/docker.sock")
	ctx := context.Background()

	newClient := func(b *testing.B, url string, transport dialer.Transport) (*dialer.Dialer, *client.Client) {
		cfg := dialerConfig(b, sshd)
		cfg.Transport = transport
		d, err := dialer.New(url, cfg)
		if err != nil {
			b.Fatal(err)
		}
		cli, err := client.New(client.WithHost("http://docker"), client.WithDialContext(d.DialContext))
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { cli.Close(); d.Close() })
		return d, cli
	}

	// The Docker CLI's ssh:// helper runs `ssh` from PATH; this shim gives
	// it the test's key and known_hosts, like scripts/demo.sh does.
	cliEnv := dockerCLIEnv(b, sshd, knownHosts)

	b.Run("ps/docker-cli-ssh", func(b *testing.B) {
		for b.Loop() {
			runDockerCLI(b, cliEnv, "-H", "ssh://"+sshd.User+"@"+sshd.Addr(), "ps", "-q")
		}
	})
	b.Run("ps/docker-cli-local", func(b *testing.B) {
		for b.Loop() {
			runDockerCLI(b, cliEnv, "ps", "-q")
		}
	})
	b.Run("ps/dialer-warm", func(b *testing.B) {
		_, cli := newClient(b, url, dialer.TransportDialStdio)
		if _, err := cli.ContainerList(ctx, client.ContainerListOptions{}); err != nil {
			b.Fatal(err)
		}
		for b.Loop() {
			if _, err := cli.ContainerList(ctx, client.ContainerListOptions{}); err != nil {
				b.Fatal(err)
			}
		}
	})

	// A new conn on an established SSH connection, up to the first
	// response: one GET /_ping on a fresh conn, then Close.
	newConn := func(transport dialer.Transport) func(b *testing.B) {
		return func(b *testing.B) {
			d, _ := newClient(b, sockURL, transport)
			pingOnNewConn(b, d) // connects SSH
			for b.Loop() {
				pingOnNewConn(b, d)
			}
		}
	}
	b.Run("newconn/dial-stdio", newConn(dialer.TransportDialStdio))
	b.Run("newconn/streamlocal", newConn(dialer.TransportStreamLocal))

	b.Run("ping/dialer-warm", func(b *testing.B) {
		_, cli := newClient(b, url, dialer.TransportDialStdio)
		for b.Loop() {
			if _, err := cli.Ping(ctx, client.PingOptions{}); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("ping/dialer-streamlocal-warm", func(b *testing.B) {
		_, cli := newClient(b, sockURL, dialer.TransportStreamLocal)
		for b.Loop() {
			if _, err := cli.Ping(ctx, client.PingOptions{}); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("ping/local-socket", func(b *testing.B) {
		for b.Loop() {
			if _, err := local.Ping(ctx, client.PingOptions{}); err != nil {
				b.Fatal(err)
			}
		}
	})

	// ImageSave of the sshd image (about 400 MB), drained.
	save := func(b *testing.B, cli *client.Client) {
		rc, err := cli.ImageSave(ctx, []string{im.SSHD})
		if err != nil {
			b.Fatal(err)
		}
		n, err := io.Copy(io.Discard, rc)
		rc.Close()
		if err != nil {
			b.Fatal(err)
		}
		b.SetBytes(n)
	}
	b.Run("imagesave/local-socket", func(b *testing.B) {
		for b.Loop() {
			save(b, local)
		}
	})
	b.Run("imagesave/dialer", func(b *testing.B) {
		_, cli := newClient(b, url, dialer.TransportDialStdio)
		for b.Loop() {
			save(b, cli)
		}
	})
	b.Run("imagesave/dialer-streamlocal", func(b *testing.B) {
		_, cli := newClient(b, sockURL, dialer.TransportStreamLocal)
		for b.Loop() {
			save(b, cli)
		}
	})
	b.Run("imagesave/openssh-docker-save", func(b *testing.B) {
		for b.Loop() {
			cmd := exec.Command("ssh", append(sshd.SSHArgs(knownHosts), "docker", "save", im.SSHD)...)
			cmd.Env = cliEnv
			out, err := cmd.StdoutPipe()
			if err != nil {
				b.Fatal(err)
			}
			var stderr strings.Builder
			cmd.Stderr = &stderr
			if err := cmd.Start(); err != nil {
				b.Fatal(err)
			}
			n, err := io.Copy(io.Discard, out)
			if werr := cmd.Wait(); err != nil || werr != nil {
				b.Fatalf("ssh docker save: %v %v: %s", err, werr, stderr.String())
			}
			b.SetBytes(n)
		}
	})

	b.Run("coldstart/dialer", func(b *testing.B) {
		for b.Loop() {
			cfg := dialerConfig(b, sshd)
			d, err := dialer.New(url, cfg)
			if err != nil {
				b.Fatal(err)
			}
			cli, err := client.New(client.WithHost("http://docker"), client.WithDialContext(d.DialContext))
			if err != nil {
				b.Fatal(err)
			}
			if _, err := cli.Ping(ctx, client.PingOptions{}); err != nil {
				b.Fatal(err)
			}
			cli.Close()
			d.Close()
		}
	})
}

// pingOnNewConn opens a conn, sends GET /_ping and reads the answer.
func pingOnNewConn(b *testing.B, d *dialer.Dialer) {
	c, err := d.DialContext(context.Background(), "tcp", "")
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	if _, err := io.WriteString(c, "GET /_ping HTTP/1.1\r\nHost: docker\r\n\r\n"); err != nil {
		b.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		b.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b.Fatalf("ping: %s", resp.Status)
	}
}

// dockerCLIEnv is the environment for the docker CLI and ssh: the user's
// environment through envsanitize's helper policy, a HOME of its own (so
// ~/.docker is not touched) and a PATH whose `ssh` uses a config with the
// test's key and known_hosts.
func dockerCLIEnv(tb testing.TB, sshd *harness.SSHD, knownHosts string) []string {
	tb.Helper()
	dir := tb.TempDir()
	cfg := filepath.Join(dir, "ssh_config")
	conf := fmt.Sprintf("Host %s\n  IdentityFile %s\n  IdentitiesOnly yes\n  IdentityAgent none\n  BatchMode yes\n  StrictHostKeyChecking yes\n  UserKnownHostsFile %s\n  GlobalKnownHostsFile /dev/null\n",
		sshd.Host, sshd.ClientKeyPath, knownHosts)
	if err := os.WriteFile(cfg, []byte(conf), 0o600); err != nil {
		tb.Fatal(err)
	}
	sshPath, err := exec.LookPath("ssh")
	if err != nil {
		tb.Skip("no ssh client")
	}
	bin := filepath.Join(dir, "bin")
	if err := os.MkdirAll(bin, 0o755); err != nil {
		tb.Fatal(err)
	}
	shim := fmt.Sprintf("#!/bin/sh\nexec %s -F %s \"$@\"\n", sshPath, cfg)
	if err := os.WriteFile(filepath.Join(bin, "ssh"), []byte(shim), 0o755); err != nil {
		tb.Fatal(err)
	}
	policy := envsanitize.Helper()
	env, _ := policy.Filter(os.Environ())
	var out []string
	for _, kv := range env {
		if k, _, _ := strings.Cut(kv, "="); k == "PATH" || k == "HOME" || k == "DOCKER_HOST" || k == "DOCKER_CONTEXT" || k == "SSH_AUTH_SOCK" {
			continue
		}
		out = append(out, kv)
	}
	home := filepath.Join(dir, "home")
	if err := os.MkdirAll(home, 0o700); err != nil {
		tb.Fatal(err)
	}
	return append(out, "PATH="+bin+":"+os.Getenv("PATH"), "HOME="+home)
}

func runDockerCLI(b *testing.B, env []string, args ...string) {
	cmd := exec.Command("docker", args...)
	cmd.Env = env
	if out, err := cmd.CombinedOutput(); err != nil {
		b.Fatalf("docker %v: %v: %s", args, err, out)
	}
}
