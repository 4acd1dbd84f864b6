package hostkeys_test

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/ssh"

	"github.com/dockssh/dockssh/hostkeys"
)

func acceptNew(tb testing.TB, file string, hash bool) *hostkeys.KnownHosts {
	tb.Helper()
	kh, err := hostkeys.New(&hostkeys.Config{Files: []string{file}, Policy: hostkeys.AcceptNew, HashNewHosts: hash, Logger: discardLogger()})
	require.NoError(tb, err)
	return kh
}

func readLines(tb testing.TB, file string) []string {
	tb.Helper()
	data, err := os.ReadFile(file)
	require.NoError(tb, err)
	require.True(tb, len(data) == 0 || data[len(data)-1] == '\n', "file ends with a newline: %q", data)
	return strings.Split(strings.TrimSuffix(string(data), "\n"), "\n")
}

func TestAcceptNew(t *testing.T) {
	t.Parallel()
	k := keys(t)
	s := startServer(t, k.ed25519, k.ecdsa256)
	dir := filepath.Join(t.TempDir(), "home", ".ssh")
	file := filepath.Join(dir, "known_hosts")
	logger, logs := newRecordLogger()
	kh, err := hostkeys.New(&hostkeys.Config{Files: []string{file}, Policy: hostkeys.AcceptNew, Logger: logger})
	require.NoError(t, err)
	address := "foo.example.com:" + s.port()

	require.NoError(t, dial(t, s, address, kh), "an unknown host is added")
	lines := readLines(t, file)
	require.Equal(t, []string{line("[foo.example.com]:"+s.port(), k.ed25519.PublicKey())}, lines,
		"the ed25519 key is recorded: OpenSSH's preference order, not x/crypto's")

	info, err := os.Stat(file)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o600), info.Mode().Perm())
	info, err = os.Stat(dir)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o700), info.Mode().Perm())

	msgs := logs.messages()
	require.Len(t, msgs, 1)
	assert.Contains(t, msgs[0], "INFO hostkeys: permanently added host to known_hosts")
	assert.Contains(t, msgs[0], "fingerprint="+ssh.FingerprintSHA256(k.ed25519.PublicKey()))
	assert.Contains(t, msgs[0], "line=1")

	require.NoError(t, dial(t, s, address, kh), "the host is known now")
	assert.Len(t, readLines(t, file), 1)

	// A changed key is still an error.
	s2 := startServer(t, k.ed25519b)
	err = dial(t, s2, address, kh)
	assert.ErrorIs(t, err, hostkeys.ErrHostKeyChanged)
	// So is a key of a new type for a known host.
	s3 := startServer(t, k.ecdsa256)
	err = dial(t, s3, address, kh)
	assert.ErrorIs(t, err, hostkeys.ErrHostKeyChanged)
	assert.Len(t, readLines(t, file), 1)

	// A second host goes below the first.
	require.NoError(t, dial(t, s, "127.0.0.1:"+s.port(), kh))
	assert.Equal(t, line("[127.0.0.1]:"+s.port(), k.ed25519.PublicKey()), readLines(t, file)[1])
}

func TestAcceptNewHashed(t *testing.T) {
	t.Parallel()
	k := keys(t)
	s := startServer(t, k.ed25519)
	file := filepath.Join(t.TempDir(), "known_hosts")
	kh := acceptNew(t, file, true)
	require.NoError(t, dial(t, s, "foo.example.com:"+s.port(), kh))
	lines := readLines(t, file)
	require.Len(t, lines, 1)
	assert.True(t, strings.HasPrefix(lines[0], "|1|"), "hashed: %q", lines[0])
	assert.NotContains(t, lines[0], "foo.example.com")
	require.NoError(t, dial(t, s, "foo.example.com:"+s.port(), acceptNew(t, file, true)), "a new reader finds the hashed host")

	// The real OpenSSH finds the host in what we wrote.
	keygen := requireTool(t, "ssh-keygen")
	out, err := exec.Command(keygen, "-F", "[foo.example.com]:"+s.port(), "-f", file).CombinedOutput()
	require.NoError(t, err, "ssh-keygen -F: %s", out)
	assert.Contains(t, string(out), "found: line 1")
}

func TestAcceptNewAddsMissingNewline(t *testing.T) {
	t.Parallel()
	k := keys(t)
	s := startServer(t, k.ed25519)
	file := filepath.Join(t.TempDir(), "known_hosts")
	first := line("bar.example.com", k.ed25519b.PublicKey())
	require.NoError(t, os.WriteFile(file, []byte(first), 0o600)) // no final newline
	logger, logs := newRecordLogger()
	kh, err := hostkeys.New(&hostkeys.Config{Files: []string{file}, Policy: hostkeys.AcceptNew, Logger: logger})
	require.NoError(t, err)
	require.NoError(t, dial(t, s, "foo.example.com:22", kh))
	assert.Equal(t, []string{first, line("foo.example.com", k.ed25519.PublicKey())}, readLines(t, file))
	assert.Contains(t, logs.messages()[0], "line=2")
}

func TestAcceptNewRefusesUnsafeNames(t *testing.T) {
	t.Parallel()
	k := keys(t)
	file := filepath.Join(t.TempDir(), "known_hosts")
	cb := acceptNew(t, file, false).HostKeyCallback()
	remote := &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 22}
	for _, name := range []string{"*:22", "a,b:22", "a b:22", "h?st:22", "!x:22", "|1|x:22", "#x:22", "@x:22", "a\nb:22"} {
		err := cb(name, remote, k.ed25519.PublicKey())
		if err == nil || !strings.Contains(err.Error(), "cannot add host") {
			t.Errorf("callback(%q) = %v, want a refusal", name, err)
		}
	}
	_, err := os.Stat(file)
	assert.ErrorIs(t, err, os.ErrNotExist, "nothing was written")
}

func TestAcceptNewCertificateRecordsPlainKey(t *testing.T) {
	t.Parallel()
	k := keys(t)
	s := startServer(t, validNow(t, k.ed25519, k.ca, "foo.example.com"))
	file := filepath.Join(t.TempDir(), "known_hosts")
	require.NoError(t, dial(t, s, "foo.example.com:22", acceptNew(t, file, false)))
	assert.Equal(t, []string{line("foo.example.com", k.ed25519.PublicKey())}, readLines(t, file),
		"an untrusted certificate is recorded as its plain key, as OpenSSH does")
}

func TestAcceptNewCAOnlyHostIsNotNew(t *testing.T) {
	t.Parallel()
	k := keys(t)
	s := startServer(t, k.ed25519)
	file := writeFile(t, t.TempDir(), "known_hosts", line("@cert-authority foo.example.com", k.ca.PublicKey()))
	err := dial(t, s, "foo.example.com:22", acceptNew(t, file, false))
	assert.ErrorIs(t, err, hostkeys.ErrHostKeyChanged, "an uncertified key for a CA-trusted host is never trusted on first use")
	assert.Len(t, readLines(t, file), 1)
}

// TestAcceptNewConcurrentSameHost: many goroutines, each with its own
// KnownHosts or sharing one, meet the same unknown host at once. One line
// is written and every connection succeeds.
func TestAcceptNewConcurrentSameHost(t *testing.T) {
	t.Parallel()
	k := keys(t)
	s := startServer(t, k.ed25519)
	file := filepath.Join(t.TempDir(), "known_hosts")
	shared := acceptNew(t, file, false)
	khs := make([]*hostkeys.KnownHosts, 24)
	for i := range khs {
		khs[i] = shared
		if i%2 == 0 {
			khs[i] = acceptNew(t, file, i%4 == 0)
		}
	}
	var wg sync.WaitGroup
	for i, kh := range khs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := dial(t, s, "foo.example.com:"+s.port(), kh); err != nil {
				t.Errorf("dial %d: %v", i, err)
			}
		}()
	}
	wg.Wait()
	assert.Len(t, readLines(t, file), 1)
}

// TestAcceptNewConcurrentDifferentKeys: two keys race for the same name.
// The first writer wins; the other key is then a changed key.
func TestAcceptNewConcurrentDifferentKeys(t *testing.T) {
	t.Parallel()
	k := keys(t)
	file := filepath.Join(t.TempDir(), "known_hosts")
	remote := &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 22}
	candidates := []ssh.PublicKey{k.ed25519.PublicKey(), k.ed25519b.PublicKey()}
	results := make([]error, 32)
	cbs := make([]ssh.HostKeyCallback, len(results))
	for i := range cbs {
		cbs[i] = acceptNew(t, file, false).HostKeyCallback()
	}
	var wg sync.WaitGroup
	for i := range results {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i] = cbs[i]("race.example.com:22", remote, candidates[i%2])
		}()
	}
	wg.Wait()
	lines := readLines(t, file)
	require.Len(t, lines, 1)
	winner := 0
	if lines[0] == line("race.example.com", candidates[1]) {
		winner = 1
	} else {
		require.Equal(t, line("race.example.com", candidates[0]), lines[0])
	}
	for i, err := range results {
		if i%2 == winner {
			assert.NoError(t, err, "goroutine %d offered the winning key", i)
		} else {
			assert.ErrorIs(t, err, hostkeys.ErrHostKeyChanged, "goroutine %d offered the losing key", i)
		}
	}
}

// TestAcceptNewConcurrentProcesses: several processes (this test binary,
// re-executed) and their goroutines add the same set of hosts to one file.
// Every host ends up exactly once, and no line is torn.
func TestAcceptNewConcurrentProcesses(t *testing.T) {
	t.Parallel()
	k := keys(t)
	exe, err := os.Executable()
	require.NoError(t, err)
	file := filepath.Join(t.TempDir(), "known_hosts")
	const procs, hosts = 4, 20
	pub := base64.StdEncoding.EncodeToString(k.ed25519.PublicKey().Marshal())

	var wg sync.WaitGroup
	for p := range procs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cmd := exec.Command(exe, "-test.run=^$")
			cmd.Env = append(os.Environ(),
				"HOSTKEYS_TEST_ACCEPTNEW="+file,
				"HOSTKEYS_TEST_KEY="+pub,
				"HOSTKEYS_TEST_HOSTS="+strconv.Itoa(hosts),
				"HOSTKEYS_TEST_HASH="+strconv.FormatBool(p%2 == 1))
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Errorf("child %d: %v: %s", p, err, out)
			}
		}()
	}
	wg.Wait()

	lines := readLines(t, file)
	assert.Len(t, lines, hosts, "each host exactly once")
	kh, err := hostkeys.New(&hostkeys.Config{Files: []string{file}, Logger: discardLogger()})
	require.NoError(t, err)
	cb := kh.HostKeyCallback()
	remote := &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 22}
	for h := range hosts {
		assert.NoError(t, cb(fmt.Sprintf("host%d.example.com:2222", h), remote, k.ed25519.PublicKey()))
	}
	for _, l := range lines {
		fields := strings.Fields(l)
		require.Len(t, fields, 3, "torn line %q", l)
		assert.Equal(t, pub, fields[2])
	}
}

// runAcceptNewChild is the child side of TestAcceptNewConcurrentProcesses:
// 8 goroutines, each with its own KnownHosts, add every host.
func runAcceptNewChild() int {
	file := os.Getenv("HOSTKEYS_TEST_ACCEPTNEW")
	blob, err := base64.StdEncoding.DecodeString(os.Getenv("HOSTKEYS_TEST_KEY"))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	key, err := ssh.ParsePublicKey(blob)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	hosts, _ := strconv.Atoi(os.Getenv("HOSTKEYS_TEST_HOSTS"))
	hash := os.Getenv("HOSTKEYS_TEST_HASH") == "true"
	remote := &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 2222}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var errs bytes.Buffer
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			kh, err := hostkeys.New(&hostkeys.Config{Files: []string{file}, Policy: hostkeys.AcceptNew, HashNewHosts: hash, Logger: discardLogger()})
			if err != nil {
				mu.Lock()
				fmt.Fprintln(&errs, err)
				mu.Unlock()
				return
			}
			cb := kh.HostKeyCallback()
			for i := range hosts {
				h := (i + g) % hosts
				if err := cb(fmt.Sprintf("host%d.example.com:2222", h), remote, key); err != nil {
					mu.Lock()
					fmt.Fprintln(&errs, err)
					mu.Unlock()
				}
			}
		}()
	}
	wg.Wait()
	if errs.Len() > 0 {
		os.Stderr.Write(errs.Bytes())
		return 1
	}
	return 0
}
