package harness

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"testing"
	"time"

	"github.com/testcontainers/testcontainers-go"
	"github.com/testcontainers/testcontainers-go/wait"
)

// StartDebian starts a Debian bookworm target (the Base image: bash,
// procps, busybox) that runs `sleep infinity`, with the same naming and
// labels as StartTarget. Its PID 1 reaps no orphans, as in many real
// containers, so zombies of ended sessions stay listed (state Z). It is
// removed in tb.Cleanup.
func StartDebian(tb testing.TB, name string) *Target {
	tb.Helper()
	im := Require(tb)
	if im.Base == "" {
		tb.Fatalf("harness: scripts/build-images.sh printed no base image tag")
	}
	suffix := make([]byte, 4)
	rand.Read(suffix)
	full := name + "-" + hex.EncodeToString(suffix)

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	ctr, err := testcontainers.Run(ctx, im.Base,
		testcontainers.WithName(full),
		testcontainers.WithCmd("sleep", "infinity"),
		testcontainers.WithLabels(map[string]string{"dockssh.test": "target", "dockssh.target": name}),
		testcontainers.WithWaitStrategy(wait.ForExec([]string{"true"}).WithStartupTimeout(time.Minute)),
	)
	// sleep as PID 1 ignores SIGTERM: remove the container without
	// waiting for the engine's 10-second stop timeout.
	testcontainers.CleanupContainer(tb, ctr, testcontainers.StopTimeout(0))
	if err != nil {
		tb.Fatalf("harness: start Debian target %s: %v", full, err)
	}
	return &Target{ID: ctr.GetContainerID(), Name: full, Label: name, Container: ctr}
}
