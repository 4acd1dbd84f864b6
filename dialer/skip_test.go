package dialer

import (
	"os"
	"testing"
)

// skipOrFail skips a test that cannot run here (no /bin/sh, say), loudly,
// but fails it where skipping is not allowed: on CI (CI=true) and wherever
// DOCKSSH_REQUIRE_DOCKER=1, so that a missing tool cannot turn a suite
// green there.
func skipOrFail(tb testing.TB, reason string) {
	tb.Helper()
	if os.Getenv("CI") == "true" || os.Getenv("DOCKSSH_REQUIRE_DOCKER") == "1" {
		tb.Fatalf("%s (CI=true or DOCKSSH_REQUIRE_DOCKER=1: skipping is not allowed)", reason)
	}
	tb.Skip("SKIPPED: " + reason)
}
