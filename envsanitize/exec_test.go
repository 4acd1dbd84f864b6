package envsanitize_test

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
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

// TestDeniedNamesNeverReachChild runs a real child, env(1), with Filter's
// output for an environment holding every name of codeLoadingNames and
// remoteOnlyNames. Under Allow: ["*"] the child sees none of them; under
// Helper, for the user's own environment, it sees exactly the remote-only
// ones.
func TestDeniedNamesNeverReachChild(t *testing.T) {
	envPath := lookPathOrSkip(t, "env")
	var environ []string
	for _, n := range append(append([]string{}, codeLoadingNames...), remoteOnlyNames...) {
		environ = append(environ, n+"=/nonexistent/"+strings.ToLower(n))
	}
	environ = append(environ, "HARMLESS=1")

	for _, tt := range []struct {
		name string
		p    envsanitize.Policy
		want []string
	}{
		{"Allow *", envsanitize.Policy{Allow: []string{"*"}}, []string{"HARMLESS=1"}},
		{"Helper", envsanitize.Helper(), func() []string {
			w := []string{"HARMLESS=1"}
			for _, n := range remoteOnlyNames {
				w = append(w, n+"=/nonexistent/"+strings.ToLower(n))
			}
			return w
		}()},
	} {
		t.Run(tt.name, func(t *testing.T) {
			kept, _ := tt.p.Filter(environ)
			got := runEnv(t, envPath, kept)
			want := slices.Clone(tt.want)
			slices.Sort(want)
			assert.Equal(t, want, got)
		})
	}
}

// runEnv runs env(1) with exactly environ and returns what it prints,
// sorted.
func runEnv(tb testing.TB, envPath string, environ []string) []string {
	tb.Helper()
	cmd := exec.CommandContext(tb.Context(), envPath)
	cmd.Env = environ
	out, err := cmd.Output()
	require.NoError(tb, err)
	got := strings.Split(strings.TrimSuffix(string(out), "\n"), "\n")
	if len(out) == 0 {
		got = nil
	}
	slices.Sort(got)
	return got
}

// TestDeniedNamesDisarmRealPrograms shows, with the real programs, that
// some of the names run code, and that Filter under Allow: ["*"] stops
// them: each program, started with the raw environment, creates a marker
// file through the variable; started with the filtered one, it does not.
func TestDeniedNamesDisarmRealPrograms(t *testing.T) {
	tests := []struct {
		name    string
		program string
		args    []string
		env     func(dir string) []string
		setup   func(tb testing.TB, dir string)
	}{
		{"GIT_CONFIG_* alias", "git", []string{"pwn"}, func(string) []string {
			return []string{"GIT_CONFIG_COUNT=1", "GIT_CONFIG_KEY_0=alias.pwn", "GIT_CONFIG_VALUE_0=!touch marker"}
		}, nil},
		{"GIT_SSH_COMMAND", "git", []string{"ls-remote", "ssh://127.0.0.1/x"}, func(string) []string {
			return []string{"GIT_SSH_COMMAND=touch marker; false"}
		}, nil},
		{"VIMINIT", "vim", []string{"-X", "-n", "--not-a-term", "-c", "qa!"}, func(string) []string {
			return []string{`VIMINIT=call writefile([], "marker") | qa!`}
		}, nil},
		{"LESSOPEN", "less", []string{"file"}, func(string) []string {
			return []string{"LESSOPEN=|touch marker; cat %s"}
		}, func(tb testing.TB, dir string) {
			require.NoError(tb, os.WriteFile(filepath.Join(dir, "file"), []byte("text\n"), 0o600))
		}},
		{"npm_config_script_shell", "npm", []string{"run", "-s", "x"}, func(dir string) []string {
			return []string{"HOME=" + dir, "npm_config_script_shell=" + filepath.Join(dir, "sh")}
		}, func(tb testing.TB, dir string) {
			require.NoError(tb, os.WriteFile(filepath.Join(dir, "package.json"), []byte(`{"name":"x","version":"1.0.0","scripts":{"x":"true"}}`), 0o600))
			require.NoError(tb, os.WriteFile(filepath.Join(dir, "sh"), []byte("#!/bin/sh\ntouch marker\n"), 0o700))
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			program := lookPathOrSkip(t, tt.program)
			// PATH for the programs' own helpers (npm's node, git's sh):
			// under Allow * it is denied too, so it is given after Filter.
			path := "PATH=" + filepath.Dir(program) + ":/usr/bin:/bin"
			// run starts the program in a fresh directory with the raw
			// environment, or with what Filter keeps of it under Allow
			// *, and reports whether the marker appeared.
			run := func(filter bool) (bool, []string) {
				dir := t.TempDir()
				if tt.setup != nil {
					tt.setup(t, dir)
				}
				env := tt.env(dir)
				if filter {
					p := envsanitize.Policy{Allow: []string{"*"}}
					env, _ = p.Filter(env)
				}
				cmd := exec.CommandContext(t.Context(), program, tt.args...)
				cmd.Dir = dir
				cmd.Env = append(env, path)
				_ = cmd.Run() // the programs fail in various ways; the marker is what counts
				_, err := os.Stat(filepath.Join(dir, "marker"))
				return err == nil, env
			}
			ran, _ := run(false)
			require.True(t, ran, "the raw environment did not run the code: the test proves nothing on this machine")
			ran, kept := run(true)
			assert.False(t, ran, "the filtered environment %q still ran the code", kept)
		})
	}
}

// lookPathOrSkip finds a program, or skips loudly; under CI=true or
// DOCKSSH_REQUIRE_DOCKER=1 a missing program fails instead, so that a
// skip never hides that a test did not run.
func lookPathOrSkip(tb testing.TB, name string) string {
	tb.Helper()
	p, err := exec.LookPath(name)
	if err == nil {
		return p
	}
	msg := fmt.Sprintf("%s is not installed: %v", name, err)
	if os.Getenv("CI") == "true" || os.Getenv("DOCKSSH_REQUIRE_DOCKER") == "1" {
		tb.Fatal(msg + " (and CI=true or DOCKSSH_REQUIRE_DOCKER=1 forbids skipping)")
	}
	tb.Skip("SKIPPED: " + msg)
	return ""
}
