package envsanitize_test

import (
	"bytes"
	"os/exec"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dockssh/dockssh/envsanitize"
)

// TestHelperWithRealProcess runs a real child with Filter's output as its
// environment: the child sees exactly the kept variables, and the dynamic
// loader never sees the denied LD_PRELOAD (it would complain on stderr
// that the object cannot be preloaded).
func TestHelperWithRealProcess(t *testing.T) {
	envPath, err := exec.LookPath("env")
	if err != nil {
		t.Skip("no env(1) on this machine")
	}
	environ := []string{
		"PATH=/usr/bin:/bin",
		"HOME=/home/ada",
		"LD_PRELOAD=/nonexistent/evil.so",
		"LD_LIBRARY_PATH=/tmp/_MEIx1y2z3:/opt/vendor/lib",
		"LD_LIBRARY_PATH_ORIG=/opt/vendor/lib",
		"BASH_ENV=/nonexistent/rc",
		"GREETING=() { echo pwned; }",
		"LANG=C.UTF-8",
	}
	p := envsanitize.Helper()
	kept, _ := p.Filter(environ)

	cmd := exec.Command(envPath)
	cmd.Env = kept
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	require.NoError(t, cmd.Run(), "stderr: %s", stderr.String())

	assert.Empty(t, stderr.String(), "the loader saw something it should not have")
	got := strings.Split(strings.TrimSuffix(stdout.String(), "\n"), "\n")
	slices.Sort(got)
	want := []string{"HOME=/home/ada", "LANG=C.UTF-8", "LD_LIBRARY_PATH=/opt/vendor/lib", "PATH=/usr/bin:/bin"}
	assert.Equal(t, want, got)
}

// TestEmptyFilterMeansEmptyEnvironment: when nothing passes, the child
// gets an empty environment, not the parent's (exec.Cmd.Env = nil would
// inherit everything).
func TestEmptyFilterMeansEmptyEnvironment(t *testing.T) {
	envPath, err := exec.LookPath("env")
	if err != nil {
		t.Skip("no env(1) on this machine")
	}
	t.Setenv("ENVSANITIZE_PARENT_ONLY", "leaked")
	var p envsanitize.Policy // allows nothing
	kept, _ := p.Filter([]string{"A=1"})

	cmd := exec.Command(envPath)
	cmd.Env = kept
	out, err := cmd.Output()
	require.NoError(t, err)
	assert.Empty(t, string(out))
}
