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

// Target is a running exec target: busybox's POSIX shell in an empty image.
type Target struct {
	ID   string // the container ID
	Name string // the container name: the name given to StartTarget plus a random suffix
	// Label is the value of the container's "dockssh.target" label (the
	// name given to StartTarget), for Docker filters.
	Label string

	Container *testcontainers.DockerContainer
}

// StartTarget starts a target container and returns it once it runs. Its name
// is name plus a random suffix, so parallel tests do not collide; it carries
// the labels dockssh.test=target and dockssh.target=NAME. It is removed in
// tb.Cleanup.
func StartTarget(tb testing.TB, name string) *Target {
	tb.Helper()
	im := Require(tb)
	suffix := make([]byte, 4)
	rand.Read(suffix)
	full := name + "-" + hex.EncodeToString(suffix)

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	ctr, err := testcontainers.Run(ctx, im.Target,
		testcontainers.WithName(full),
		testcontainers.WithLabels(map[string]string{"dockssh.test": "target", "dockssh.target": name}),
		testcontainers.WithWaitStrategy(wait.ForExec([]string{"true"}).WithStartupTimeout(time.Minute)),
	)
	testcontainers.CleanupContainer(tb, ctr)
	if err != nil {
		tb.Fatalf("harness: start target %s: %v", full, err)
	}
	return &Target{ID: ctr.GetContainerID(), Name: full, Label: name, Container: ctr}
}

// Exec runs cmd in the target and returns its combined output; a non-zero
// exit fails the test.
func (t *Target) Exec(tb testing.TB, cmd ...string) string {
	tb.Helper()
	return execIn(tb, t.Container, cmd...)
}
