package authn_test

import (
	"net"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
)

// unbindableEnv names the address that TestRequireLocalAddrChild asks
// for; set only by TestRequireLocalAddrFailsUnderCI for its child.
const unbindableEnv = "AUTHN_TEST_UNBINDABLE_ADDR"

// TestRequireLocalAddrChild is run by TestRequireLocalAddrFailsUnderCI
// in a child test binary; on its own it does nothing.
func TestRequireLocalAddrChild(t *testing.T) {
	addr := os.Getenv(unbindableEnv)
	if addr == "" {
		t.Skip("run by TestRequireLocalAddrFailsUnderCI")
	}
	requireLocalAddr(t, net.ParseIP(addr))
	t.Log("connected from", addr)
}

// TestRequireLocalAddrFailsUnderCI: a test that needs a second loopback
// address (TestPenaltiesOverTCP, TestFlood) and cannot have one is
// skipped loudly on a developer's machine, but fails under CI=true or
// DOCKSSH_REQUIRE_DOCKER=1, where a skip would hide that it never ran.
// The child asks for 192.0.2.1 (TEST-NET-1, RFC 5737), which no host
// here holds, so the bind fails before any packet is sent.
func TestRequireLocalAddrFailsUnderCI(t *testing.T) {
	var base []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "CI=") && !strings.HasPrefix(kv, "DOCKSSH_REQUIRE_DOCKER=") {
			base = append(base, kv)
		}
	}
	base = append(base, unbindableEnv+"=192.0.2.1")
	tests := []struct {
		name     string
		env      []string
		wantFail bool
	}{
		{"developer machine", nil, false},
		{"CI=true", []string{"CI=true"}, true},
		{"DOCKSSH_REQUIRE_DOCKER=1", []string{"DOCKSSH_REQUIRE_DOCKER=1"}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cmd := exec.CommandContext(t.Context(), os.Args[0], "-test.run", "^TestRequireLocalAddrChild$", "-test.v", "-test.count=1")
			cmd.Env = append(append([]string{}, base...), tt.env...)
			out, err := cmd.CombinedOutput()
			assert.Contains(t, string(out), "cannot connect from 192.0.2.1", "child output:\n%s", out)
			if tt.wantFail {
				assert.Error(t, err, "child must fail; output:\n%s", out)
				assert.Contains(t, string(out), "--- FAIL: TestRequireLocalAddrChild")
			} else {
				assert.NoError(t, err, "child must pass (skip); output:\n%s", out)
				assert.Contains(t, string(out), "--- SKIP: TestRequireLocalAddrChild")
				assert.Contains(t, string(out), "SKIPPING: ")
			}
		})
	}
}
