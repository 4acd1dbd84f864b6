package harness

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/testcontainers/testcontainers-go"
	"github.com/testcontainers/testcontainers-go/wait"
)

var (
	scratchOnce sync.Once
	scratchTag  string
	scratchErr  error
)

// scratchImage returns the tag of the FROM-scratch image, which
// scripts/build-images.sh builds with the others (Require runs it) and
// prints as DOCKSSH_IMAGE_SCRATCH.
func scratchImage() (string, error) {
	scratchOnce.Do(func() {
		script := filepath.Join(RepoRoot(), "scripts", "build-images.sh")
		out, err := exec.Command("bash", script, "--print").Output()
		if err != nil {
			scratchErr = fmt.Errorf("%s --print: %w", script, err)
			return
		}
		sc := bufio.NewScanner(bytes.NewReader(out))
		for sc.Scan() {
			if v, ok := strings.CutPrefix(sc.Text(), "DOCKSSH_IMAGE_SCRATCH="); ok {
				scratchTag = v
			}
		}
		if scratchTag == "" {
			scratchErr = fmt.Errorf("%s --print named no DOCKSSH_IMAGE_SCRATCH: %q", script, out)
		}
	})
	return scratchTag, scratchErr
}

// StartScratch starts a target made of one static executable in an empty
// image: /busybox without its applet links, so the container has no shell,
// no /tmp, no /etc/passwd and no sftp-server. Run its tools as
// "/busybox TOOL ...". Its PID 1 (busybox sleep) ignores SIGTERM, so it is
// removed without the engine's stop timeout. Naming and labels are those
// of StartTarget; it is removed in tb.Cleanup.
func StartScratch(tb testing.TB, name string) *Target {
	tb.Helper()
	Require(tb)
	image, err := scratchImage()
	if err != nil {
		tb.Fatalf("harness: %v", err)
	}
	suffix := make([]byte, 4)
	rand.Read(suffix)
	full := name + "-" + hex.EncodeToString(suffix)

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	ctr, err := testcontainers.Run(ctx, image,
		testcontainers.WithName(full),
		testcontainers.WithLabels(map[string]string{"dockssh.test": "target", "dockssh.target": name}),
		testcontainers.WithWaitStrategy(wait.ForExec([]string{"/busybox", "true"}).WithStartupTimeout(time.Minute)),
	)
	testcontainers.CleanupContainer(tb, ctr, testcontainers.StopTimeout(0))
	if err != nil {
		tb.Fatalf("harness: start scratch target %s: %v", full, err)
	}
	return &Target{ID: ctr.GetContainerID(), Name: full, Label: name, Container: ctr}
}
