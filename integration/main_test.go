package integration

import (
	"os"
	"sync"
	"testing"

	"github.com/dockssh/dockssh/integration/internal/harness"
)

// cleanups run after every test of the package: for what tests share, such
// as a binary built once per test process.
var cleanups struct {
	sync.Mutex
	fns []func()
}

func atExit(fn func()) {
	cleanups.Lock()
	cleanups.fns = append(cleanups.fns, fn)
	cleanups.Unlock()
}

func TestMain(m *testing.M) {
	code := m.Run()
	cleanups.Lock()
	for _, fn := range cleanups.fns {
		fn()
	}
	cleanups.Unlock()
	// What the harness shares between tests (the Kubernetes cluster).
	harness.TearDown()
	os.Exit(code)
}
