package envsanitize_test

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dockssh/dockssh/envsanitize"
)

func TestEnvZeroValue(t *testing.T) {
	var e envsanitize.Env
	assert.Equal(t, envsanitize.ReasonNotAllowed, reasonOf(t, e.Set("LANG", "C")))
	assert.Equal(t, 0, e.Len())
	env := e.Environ()
	assert.NotNil(t, env, "Environ must never be nil (exec.Cmd.Env = nil inherits everything)")
	assert.Empty(t, env)
}

func TestEnvSSHSession(t *testing.T) {
	e := envsanitize.Env{Policy: envsanitize.SSHSession()}

	require.NoError(t, e.Set("LANG", "en_US.UTF-8"))
	require.NoError(t, e.Set("LC_TIME", "de_DE.UTF-8"))
	assert.Equal(t, envsanitize.ReasonDenied, reasonOf(t, e.Set("LD_PRELOAD", "/tmp/x.so")))
	assert.Equal(t, envsanitize.ReasonDenied, reasonOf(t, e.Set("EDITOR", "vim")), "a client does not pick the session's editor")
	assert.Equal(t, envsanitize.ReasonNotAllowed, reasonOf(t, e.Set("FOO", "1")))
	assert.Equal(t, envsanitize.ReasonNotAllowed, reasonOf(t, e.Set("TERM", "xterm")), "TERM before pty-req")

	// pty-req granted: TERM now passes.
	e.Policy.PTY = true
	require.NoError(t, e.Set("TERM", "xterm-256color"))

	// Last wins; a refused Set keeps the earlier value, as sshd does.
	require.NoError(t, e.Set("LANG", "C.UTF-8"))
	assert.Equal(t, envsanitize.ReasonUnsafeValue, reasonOf(t, e.Set("LANG", "../../x")))

	assert.Equal(t, []string{"LANG=C.UTF-8", "LC_TIME=de_DE.UTF-8", "TERM=xterm-256color"}, e.Environ())
	assert.Equal(t, 3, e.Len())
}

func TestEnvCountLimit(t *testing.T) {
	e := envsanitize.Env{Policy: envsanitize.SSHSession()}
	for i := range envsanitize.DefaultMaxVars {
		require.NoError(t, e.Set(fmt.Sprintf("LC_%d", i), "x"))
	}
	err := e.Set("LC_NEW", "x")
	assert.Equal(t, envsanitize.ReasonTooMany, reasonOf(t, err))
	assert.Contains(t, err.Error(), "128")
	// A name already held can still change.
	require.NoError(t, e.Set("LC_0", "y"))
	assert.Equal(t, envsanitize.DefaultMaxVars, e.Len())
	assert.Equal(t, "LC_0=y", e.Environ()[0])

	// Refused requests never grow the Env, however many arrive.
	for i := range 10000 {
		_ = e.Set(fmt.Sprintf("X%d", i), "x")
	}
	assert.Equal(t, envsanitize.DefaultMaxVars, e.Len())
}

func TestEnvEnvironIsACopy(t *testing.T) {
	e := envsanitize.Env{Policy: envsanitize.Policy{Allow: []string{"*"}}}
	require.NoError(t, e.Set("A", "1"))
	got := e.Environ()
	got[0] = "A=changed"
	assert.Equal(t, []string{"A=1"}, e.Environ())
}
