package hostkeys_test

import (
	"bytes"
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dockssh/dockssh/hostkeys"
)

// runOpenSSH runs the real ssh client against s as if it were address
// (through a ProxyCommand, so any host name works while the TCP connection
// goes to 127.0.0.1), with the given known_hosts file and
// StrictHostKeyChecking value. It reports whether ssh connected, and what
// it printed.
func runOpenSSH(tb testing.TB, s *server, address, knownHosts, strict string, extra ...string) (bool, string) {
	tb.Helper()
	sshPath := requireTool(tb, "ssh")
	exe, err := os.Executable()
	require.NoError(tb, err)
	host, port, err := net.SplitHostPort(address)
	require.NoError(tb, err)
	args := []string{
		"-F", "/dev/null",
		"-o", "UserKnownHostsFile=" + knownHosts,
		"-o", "GlobalKnownHostsFile=/dev/null",
		"-o", "StrictHostKeyChecking=" + strict,
		"-o", "BatchMode=yes",
		"-o", "UpdateHostKeys=no",
		"-o", "CheckHostIP=no",
		"-o", "PasswordAuthentication=no",
		"-o", "KbdInteractiveAuthentication=no",
		"-o", "PubkeyAuthentication=no",
		"-o", "ConnectTimeout=10",
		"-p", port,
	}
	if host != "127.0.0.1" {
		// OpenSSH connects directly to 127.0.0.1; every other name goes
		// through this test binary as ProxyCommand.
		args = append(args, "-o", "ProxyCommand="+exe+" -test.run=^$")
	}
	args = append(args, extra...)
	args = append(args, host, "true")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, sshPath, args...)
	home := tb.TempDir()
	cmd.Env = append(os.Environ(), "HOSTKEYS_TEST_PROXY="+s.addr, "HOME="+home)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	err = cmd.Run()
	return err == nil, stderr.String()
}

// TestOpenSSHAgrees runs every strictCases situation through the real
// OpenSSH client too: both must accept or reject alike, except where a
// case documents a deliberate difference. With -v it prints what OpenSSH
// says next to our error (the comparison in docs/hostkeys.md).
func TestOpenSSHAgrees(t *testing.T) {
	t.Parallel()
	requireTool(t, "ssh")
	k := keys(t)
	for _, tc := range strictCases() {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := startServer(t, tc.server(t, k)...)
			file := writeFile(t, t.TempDir(), "known_hosts", tc.known(k, s.port())...)
			address := tc.address(s.port())

			accepted, out := runOpenSSH(t, s, address, file, "yes", tc.sshOpts...)
			wantAccepted := tc.want == nil
			if tc.openssh != nil {
				wantAccepted = tc.openssh == errAccepted
			}
			assert.Equal(t, wantAccepted, accepted, "OpenSSH accepted = %v; it said:\n%s", accepted, out)
			if !accepted {
				assert.Contains(t, out, "Host key verification failed.")
			}

			ours := dial(t, s, address, tc.newKnownHosts(t, file))
			assert.Equal(t, tc.want == nil, ours == nil, "hostkeys accepted = %v (%v)", ours == nil, ours)
			t.Logf("OpenSSH:\n%s\nhostkeys:\n%v", strings.TrimSpace(out), ours)
		})
	}
}

// TestOpenSSHAcceptNewInterop: with StrictHostKeyChecking=accept-new,
// OpenSSH and AcceptNew write the same line for the same server, and each
// reads what the other wrote, hashed or not.
func TestOpenSSHAcceptNewInterop(t *testing.T) {
	t.Parallel()
	requireTool(t, "ssh")
	k := keys(t)
	s := startServer(t, k.ed25519, k.ecdsa256, k.rsa)
	address := "foo.example.com:" + s.port()

	for _, hash := range []bool{false, true} {
		dir := t.TempDir()
		theirs := filepath.Join(dir, "openssh")
		ours := filepath.Join(dir, "hostkeys")
		hashOpt := "HashKnownHosts=no"
		if hash {
			hashOpt = "HashKnownHosts=yes"
		}
		accepted, out := runOpenSSH(t, s, address, theirs, "accept-new", "-o", hashOpt)
		require.True(t, accepted, "OpenSSH accept-new: %s", out)
		require.NoError(t, dial(t, s, address, acceptNew(t, ours, hash)))

		theirLines, ourLines := readLines(t, theirs), readLines(t, ours)
		require.Len(t, theirLines, 1)
		require.Len(t, ourLines, 1)
		if !hash {
			assert.Equal(t, theirLines, ourLines, "the same line, byte for byte")
		} else {
			assert.True(t, strings.HasPrefix(theirLines[0], "|1|") && strings.HasPrefix(ourLines[0], "|1|"))
			// Salts differ; the key part must not.
			assert.Equal(t, strings.SplitN(theirLines[0], " ", 2)[1], strings.SplitN(ourLines[0], " ", 2)[1])
		}

		// Each reads the other's file in strict mode.
		kh, err := hostkeys.New(&hostkeys.Config{Files: []string{theirs}, Logger: discardLogger()})
		require.NoError(t, err)
		assert.NoError(t, dial(t, s, address, kh), "hostkeys reads OpenSSH's file (hash=%v)", hash)
		accepted, out = runOpenSSH(t, s, address, ours, "yes")
		assert.True(t, accepted, "OpenSSH reads our file (hash=%v): %s", hash, out)
	}
}

// TestOpenSSHAcceptNewCAOnlyHost documents a deliberate difference: for a
// host that known_hosts trusts only through a @cert-authority line, OpenSSH
// accept-new records any uncertified key (a MITM that simply offers no
// certificate is trusted on first use); AcceptNew rejects it as changed.
func TestOpenSSHAcceptNewCAOnlyHost(t *testing.T) {
	t.Parallel()
	requireTool(t, "ssh")
	k := keys(t)
	s := startServer(t, k.ed25519)
	address := "foo.example.com:" + s.port()
	caLine := line("@cert-authority *.example.com,[*.example.com]:*", k.ca.PublicKey())

	theirs := writeFile(t, t.TempDir(), "known_hosts", caLine)
	accepted, out := runOpenSSH(t, s, address, theirs, "accept-new")
	assert.True(t, accepted, "OpenSSH accept-new trusts the plain key: %s", out)
	assert.Len(t, readLines(t, theirs), 2, "and appends it")

	ours := writeFile(t, t.TempDir(), "known_hosts", caLine)
	assert.ErrorIs(t, dial(t, s, address, acceptNew(t, ours, false)), hostkeys.ErrHostKeyChanged)
	assert.Len(t, readLines(t, ours), 1)
}
