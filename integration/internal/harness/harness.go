// Package harness starts the real systems dockssh's integration tests meet:
// an OpenSSH sshd container wired to the local dockerd, small target
// containers, and a Docker Engine API client.
//
// Every container is removed in tb.Cleanup, also when the test fails. Tests
// reach containers only through ports published on 127.0.0.1.
//
// When no Docker Engine answers, the calling test is skipped with a loud
// reason, unless CI=true or DOCKSSH_REQUIRE_DOCKER=1 is set: then it fails.
package harness

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/moby/moby/client"
)

// Images names the locally built test images (see scripts/build-images.sh).
type Images struct {
	Base   string // Debian bookworm root filesystem
	SSHD   string // OpenSSH server with the Docker CLI
	Target string // busybox in an empty image
}

var (
	setupOnce sync.Once
	setupErr  error
	images    Images
)

// setDefaultEnv sets testcontainers-go's settings for this workplace when the
// caller has not: no reaper (its image cannot be pulled here; every test
// removes its own containers) and 127.0.0.1 as the host (these machines are
// themselves containers or VMs; without it testcontainers dials the default
// gateway). testcontainers-go reads them once, so this runs before its first
// use.
func setDefaultEnv() {
	for k, v := range map[string]string{
		"TESTCONTAINERS_RYUK_DISABLED": "true",
		"TESTCONTAINERS_HOST_OVERRIDE": "127.0.0.1",
	} {
		if _, ok := os.LookupEnv(k); !ok {
			os.Setenv(k, v)
		}
	}
}

// Required reports whether a missing Docker Engine must fail the tests
// instead of skipping them.
func Required() bool {
	return os.Getenv("CI") == "true" || os.Getenv("DOCKSSH_REQUIRE_DOCKER") == "1"
}

// RepoRoot returns the root of the dockssh checkout.
func RepoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Clean(filepath.Join(filepath.Dir(file), "..", "..", ".."))
}

// setup checks that Docker answers and that the test images exist, building
// them when they do not. It runs once per test binary.
func setup() error {
	setupOnce.Do(func() {
		setDefaultEnv()
		cli, err := client.New(client.FromEnv)
		if err != nil {
			setupErr = fmt.Errorf("docker client: %w", err)
			return
		}
		defer cli.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if _, err := cli.Ping(ctx, client.PingOptions{}); err != nil {
			setupErr = fmt.Errorf("no Docker Engine answers: %w", err)
			return
		}
		images, setupErr = buildImages()
	})
	return setupErr
}

// buildImages runs scripts/build-images.sh, which reuses cached images, and
// reads the tags it prints.
func buildImages() (Images, error) {
	script := filepath.Join(RepoRoot(), "scripts", "build-images.sh")
	cmd := exec.Command("bash", script)
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if err != nil {
		return Images{}, fmt.Errorf("%s: %w", script, err)
	}
	var im Images
	sc := bufio.NewScanner(strings.NewReader(string(out)))
	for sc.Scan() {
		k, v, _ := strings.Cut(sc.Text(), "=")
		switch k {
		case "DOCKSSH_IMAGE_BASE":
			im.Base = v
		case "DOCKSSH_IMAGE_SSHD":
			im.SSHD = v
		case "DOCKSSH_IMAGE_TARGET":
			im.Target = v
		}
	}
	if im.SSHD == "" || im.Target == "" {
		return Images{}, fmt.Errorf("%s printed no image tags: %q", script, out)
	}
	return im, nil
}

// Require makes sure Docker answers and the test images exist, or ends the
// test: a loud skip, or a failure when [Required] reports true.
func Require(tb testing.TB) Images {
	tb.Helper()
	if err := setup(); err != nil {
		if Required() {
			tb.Fatalf("Docker is required here (CI=true or DOCKSSH_REQUIRE_DOCKER=1) but not usable: %v; run scripts/ensure-docker.sh", err)
		}
		msg := fmt.Sprintf("SKIPPING INTEGRATION TEST %s: Docker is not usable: %v. "+
			"Run scripts/ensure-docker.sh (or scripts/test.sh) to install and start it; set DOCKSSH_REQUIRE_DOCKER=1 to make this a failure.", tb.Name(), err)
		fmt.Fprintln(os.Stderr, "!!! "+msg)
		tb.Skip(msg)
	}
	return images
}

// Docker returns a Docker Engine API client for the local dockerd, closed in
// tb.Cleanup.
func Docker(tb testing.TB) *client.Client {
	tb.Helper()
	Require(tb)
	cli, err := client.New(client.FromEnv)
	if err != nil {
		tb.Fatalf("docker client: %v", err)
	}
	tb.Cleanup(func() { cli.Close() })
	return cli
}
