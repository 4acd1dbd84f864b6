package integration

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dockssh/dockssh/execbridge"
	"github.com/dockssh/dockssh/integration/internal/harness"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// sftpTarget is a container that SFTP and scp are tested in.
type sftpTarget struct {
	dockerBackendTarget
	kind string // "debian" (OpenSSH's sftp-server and scp), "busybox" or "scratch" (the helper)
	home string // root's home directory there
}

// sh runs a shell script in the container as root and returns its output.
func (d sftpTarget) sh(tb testing.TB, script string) string {
	tb.Helper()
	if d.kind == "scratch" {
		// busybox's sh runs its applets without links.
		return d.Exec(tb, "/busybox", "sh", "-c", script)
	}
	return d.Exec(tb, "/bin/sh", "-c", script)
}

// startSFTPTargets starts one container of each kind, at once.
func startSFTPTargets(tb testing.TB, prefix string) []sftpTarget {
	tb.Helper()
	var wg sync.WaitGroup
	var deb, bb, sc *harness.Target
	wg.Go(func() { deb = harness.StartDebian(tb, prefix+"-debian") })
	wg.Go(func() { bb = harness.StartTarget(tb, prefix+"-busybox") })
	wg.Go(func() { sc = harness.StartScratch(tb, prefix+"-scratch") })
	wg.Wait()
	if deb == nil || bb == nil || sc == nil {
		tb.FailNow()
	}
	return []sftpTarget{
		{dockerBackendTarget{Target: deb, debian: true}, "debian", "/root"},
		{dockerBackendTarget{Target: bb}, "busybox", "/"},
		{dockerBackendTarget{Target: sc}, "scratch", "/"},
	}
}

// buildSFTPHelper builds the SFTP helper (sftphelper.Main and nothing
// else) as a static executable for the engine's machine.
func buildSFTPHelper(tb testing.TB) string {
	tb.Helper()
	out := filepath.Join(tb.TempDir(), "dockssh-sftp-helper")
	cmd := exec.Command("go", "build", "-trimpath", "-ldflags=-s -w", "-o", out, "./execbridge/sftphelper/testdata/helper")
	cmd.Dir = harness.RepoRoot()
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+runtime.GOARCH)
	if b, err := cmd.CombinedOutput(); err != nil {
		tb.Fatalf("build the SFTP helper: %v\n%s", err, b)
	}
	return out
}

// sftpBridgeOpts configures a bridge whose Docker backend has the helper,
// with user as SHELL_USER ("" for the image's).
func sftpBridgeOpts(tb testing.TB, helper, user string) bridgeOpts {
	return bridgeOpts{config: func(c *execbridge.Config) {
		c.User = user
		c.Backend = execbridge.NewDockerBackend(harness.Docker(tb), &execbridge.DockerConfig{
			Logger: c.Logger, KillGrace: time.Second, SFTPHelper: helper,
		})
	}}
}

// clientOpts are the options of the real scp and sftp clients for this
// bridge: strict host keys, the test key only, no config or agent.
func (e *bridgeEnv) clientOpts() []string {
	return []string{
		"-F", "/dev/null",
		"-o", "IdentityAgent=none",
		"-o", "StrictHostKeyChecking=yes",
		"-o", "UserKnownHostsFile=" + e.knownHosts,
		"-o", "GlobalKnownHostsFile=/dev/null",
		"-o", "ConnectTimeout=20",
		"-o", "BatchMode=yes",
		"-i", e.key, "-o", "IdentitiesOnly=yes",
		"-P", strconv.Itoa(e.port),
	}
}

// remote is "user@127.0.0.1:p" for target d.
func (e *bridgeEnv) remote(d sftpTarget, p string) string {
	return e.user(d.dockerBackendTarget) + "@127.0.0.1:" + p
}

// clientCmd returns the real client (scp or sftp) with the bridge's options
// and args; it is killed when ctx ends.
func (e *bridgeEnv) clientCmd(ctx context.Context, tb testing.TB, client string, args ...string) *exec.Cmd {
	tb.Helper()
	cmd := exec.CommandContext(ctx, client, append(e.clientOpts(), args...)...)
	cmd.Env = cleanEnv(tb)
	return cmd
}

// runClient runs scp or sftp with stdin and returns its output, then its
// standard error, and its exit status; it fails the test when the client
// runs for more than 3 minutes (a hang).
//
// The two go to separate pipes: ssh, which sftp and scp start, makes its
// standard error non-blocking (OpenSSH's ssh_session2_open does so for
// every standard stream that is not a terminal), and when that is the
// pipe sftp's output goes to as well, sftp loses output whenever the pipe
// is full (EAGAIN), as a busy machine showed.
func (e *bridgeEnv) runClient(tb testing.TB, stdin, client string, args ...string) (string, int) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := e.clientCmd(ctx, tb, client, args...)
	cmd.Stdin = strings.NewReader(stdin)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	out := stdout.String() + stderr.String()
	if ctx.Err() != nil {
		tb.Fatalf("%s %q did not finish: %s", client, args, out)
	}
	var ee *exec.ExitError
	switch {
	case err == nil:
		return out, 0
	case errors.As(err, &ee):
		return out, ee.ExitCode()
	}
	tb.Fatalf("%s: %v", client, err)
	return "", -1
}

// batch runs sftp -b with the batch commands for target d.
func (e *bridgeEnv) batch(tb testing.TB, d sftpTarget, commands ...string) (string, int) {
	tb.Helper()
	return e.runClient(tb, strings.Join(commands, "\n")+"\n", "sftp", "-b", "-", e.user(d.dockerBackendTarget)+"@127.0.0.1")
}

func randomFile(tb testing.TB, p string, size int) string {
	tb.Helper()
	data := make([]byte, size)
	rand.Read(data)
	require.NoError(tb, os.WriteFile(p, data, 0o644))
	return fmt.Sprintf("%x", sha256.Sum256(data))
}

func fileSum(tb testing.TB, p string) string {
	tb.Helper()
	data, err := os.ReadFile(p)
	require.NoError(tb, err)
	return fmt.Sprintf("%x", sha256.Sum256(data))
}

// sumIn returns the sha256 of the file p in the container.
func sumIn(tb testing.TB, d sftpTarget, p string) string {
	tb.Helper()
	f := strings.Fields(d.sh(tb, "sha256sum "+p))
	require.NotEmpty(tb, f, "sha256sum %s", p)
	return f[0]
}

// makeTree writes n small files of random contents in dirs subdirectories
// of root and returns their manifest.
func makeTree(tb testing.TB, root string, dirs, n int) string {
	tb.Helper()
	for i := range n {
		dir := filepath.Join(root, fmt.Sprintf("d%02d", i%dirs))
		require.NoError(tb, os.MkdirAll(dir, 0o755))
		size := make([]byte, 1)
		rand.Read(size)
		randomFile(tb, filepath.Join(dir, fmt.Sprintf("f%04d", i)), int(size[0])*8)
	}
	return manifest(tb, root)
}

// manifest lists every regular file under root, sorted, as sha256sum
// prints it for "./relative/path".
func manifest(tb testing.TB, root string) string {
	tb.Helper()
	var lines []string
	err := filepath.WalkDir(root, func(p string, de fs.DirEntry, err error) error {
		if err != nil || !de.Type().IsRegular() {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		lines = append(lines, fileSum(tb, p)+"  ./"+filepath.ToSlash(rel))
		return nil
	})
	require.NoError(tb, err)
	slices.SortFunc(lines, func(a, b string) int { return strings.Compare(a[66:], b[66:]) })
	return strings.Join(lines, "\n") + "\n"
}

// manifestIn is manifest for a directory in the container.
func manifestIn(tb testing.TB, d sftpTarget, dir string) string {
	tb.Helper()
	out := d.sh(tb, "cd "+dir+" && find . -type f | sort | xargs sha256sum")
	return out
}

// TestExecbridgeSFTP drives the bridge's SFTP with OpenSSH's sftp and scp
// clients (SFTP mode unless -O) in a Debian target, which has OpenSSH's
// sftp-server and scp, and in two targets served by the helper: busybox
// alone, and an image with one static executable and nothing else (no
// shell, no /tmp, no /etc/passwd).
func TestExecbridgeSFTP(t *testing.T) {
	t.Parallel()
	helper := buildSFTPHelper(t)
	targets := startSFTPTargets(t, "sftp")
	all := make([]dockerBackendTarget, len(targets))
	for i, d := range targets {
		all[i] = d.dockerBackendTarget
	}
	e := startBridge(t, all, sftpBridgeOpts(t, helper, ""))
	nobody := startBridge(t, all, sftpBridgeOpts(t, helper, "65534:65534"))
	local := t.TempDir()
	each := func(name string, f func(t *testing.T, d sftpTarget)) {
		t.Run(name, func(t *testing.T) {
			for _, d := range targets {
				// The targets are containers of their own: at once.
				t.Run(d.kind, func(t *testing.T) {
					t.Parallel()
					f(t, d)
				})
			}
		})
	}

	each("sftp starts in the home directory", func(t *testing.T, d sftpTarget) {
		out, status := e.batch(t, d, "pwd")
		require.Zero(t, status, out)
		assert.Contains(t, out, "Remote working directory: "+d.home+"\n")
	})

	each("OpenSSH's client uses 255 KiB reads and writes", func(t *testing.T, d sftpTarget) {
		// Both servers answer limits@openssh.com; without it the client
		// falls back to 32 KiB and needs eight times the round trips.
		out, status := e.runClient(t, "pwd\n", "sftp", "-vvv", "-b", "-", e.user(d.dockerBackendTarget)+"@127.0.0.1")
		require.Zero(t, status, out)
		assert.Contains(t, out, "server upload/download buffer sizes 261120 / 261120")
	})

	blob := filepath.Join(local, "blob-100M")
	blobSum := randomFile(t, blob, 100<<20)
	each("scp 100 MB up and down, sha256 equal", func(t *testing.T, d sftpTarget) {
		// A relative path is relative to the home directory.
		out, status := e.runClient(t, "", "scp", blob, e.remote(d, "blob-100M"))
		require.Zero(t, status, out)
		assert.Equal(t, blobSum, sumIn(t, d, path.Join(d.home, "blob-100M")), "sha256 in the container")
		back := filepath.Join(t.TempDir(), "back")
		out, status = e.runClient(t, "", "scp", e.remote(d, "~/blob-100M"), back)
		require.Zero(t, status, out)
		assert.Equal(t, blobSum, fileSum(t, back), "sha256 of the download")
		d.sh(t, "rm "+path.Join(d.home, "blob-100M"))
	})

	tree := filepath.Join(local, "tree")
	treeManifest := makeTree(t, tree, 10, 1000)
	each("scp -r of 1,000 small files both ways", func(t *testing.T, d sftpTarget) {
		dst := path.Join(d.home, "tree-up")
		out, status := e.runClient(t, "", "scp", "-r", tree, e.remote(d, dst))
		require.Zero(t, status, out)
		assert.Equal(t, treeManifest, manifestIn(t, d, dst), "the tree in the container")
		back := filepath.Join(t.TempDir(), "tree-down")
		out, status = e.runClient(t, "", "scp", "-r", e.remote(d, dst), back)
		require.Zero(t, status, out)
		assert.Equal(t, treeManifest, manifest(t, back), "the tree downloaded")
		d.sh(t, "rm -r "+dst)
	})

	each("scp -p keeps mode and times", func(t *testing.T, d sftpTarget) {
		src := filepath.Join(t.TempDir(), "kept")
		randomFile(t, src, 4096)
		require.NoError(t, os.Chmod(src, 0o604))
		mtime := time.Date(2001, 2, 3, 4, 5, 6, 0, time.UTC)
		require.NoError(t, os.Chtimes(src, mtime, mtime))
		dst := path.Join(d.home, "kept-"+randomHex(t, 4))
		out, status := e.runClient(t, "", "scp", "-p", src, e.remote(d, dst))
		require.Zero(t, status, out)
		assert.Equal(t, fmt.Sprintf("604 %d\n", mtime.Unix()), d.sh(t, "stat -c '%a %Y' "+dst))
		back := filepath.Join(t.TempDir(), "back")
		out, status = e.runClient(t, "", "scp", "-p", e.remote(d, dst), back)
		require.Zero(t, status, out)
		fi, err := os.Stat(back)
		require.NoError(t, err)
		assert.Equal(t, fs.FileMode(0o604), fi.Mode().Perm())
		assert.True(t, fi.ModTime().Equal(mtime), "mtime %v, want %v", fi.ModTime(), mtime)
		d.sh(t, "rm "+dst)
	})

	each("sftp -b: mkdir, rename, symlink, hard link, chmod, chown, df, remove, rmdir", func(t *testing.T, d sftpTarget) {
		src := filepath.Join(t.TempDir(), "a")
		sum := randomFile(t, src, 10000)
		dir := path.Join(d.home, "batch-"+randomHex(t, 4))
		out, status := e.batch(t, d,
			"mkdir "+dir,
			"put "+src+" "+dir+"/a",
			"rename "+dir+"/a "+dir+"/b",
			"ln -s b "+dir+"/l",
			"ln "+dir+"/b "+dir+"/h",
			"chmod 600 "+dir+"/b",
			"chown 65534 "+dir+"/b",
			"df "+dir,
			"ls -l "+dir,
		)
		require.Zero(t, status, out)
		assert.Equal(t, "b\n", d.sh(t, "readlink "+dir+"/l"), "a relative link target")
		assert.Equal(t, "600 65534 2\n", d.sh(t, "stat -c '%a %u %h' "+dir+"/b"), "mode, owner, links")
		assert.Equal(t, sum, sumIn(t, d, dir+"/l"), "contents through the link")
		assert.Equal(t, "b\nh\nl\n", d.sh(t, "ls "+dir))
		assert.Contains(t, out, "Avail", "df (statvfs@openssh.com)")

		out, status = e.batch(t, d, "rm "+dir+"/l", "rm "+dir+"/h", "rm "+dir+"/b", "rmdir "+dir)
		require.Zero(t, status, out)
		assert.Equal(t, "gone\n", d.sh(t, "test -e "+dir+" || echo gone"))
	})

	each("sftp reput and reget resume at an offset", func(t *testing.T, d sftpTarget) {
		tmp := t.TempDir()
		full := filepath.Join(tmp, "full")
		sum := randomFile(t, full, 3<<20)
		data, err := os.ReadFile(full)
		require.NoError(t, err)
		part := filepath.Join(tmp, "part")
		require.NoError(t, os.WriteFile(part, data[:1<<20+17], 0o644))
		dst := path.Join(d.home, "resume-"+randomHex(t, 4))
		out, status := e.batch(t, d, "put "+part+" "+dst, "reput "+full+" "+dst)
		require.Zero(t, status, out)
		assert.Equal(t, sum, sumIn(t, d, dst), "after reput")
		out, status = e.batch(t, d, "reget "+dst+" "+part)
		require.Zero(t, status, out)
		assert.Equal(t, sum, fileSum(t, part), "after reget")
		d.sh(t, "rm "+dst)
	})

	each("sftp ls of a directory of 10,000 entries", func(t *testing.T, d sftpTarget) {
		dir := path.Join(d.home, "big-"+randomHex(t, 4))
		d.sh(t, "mkdir "+dir+" && cd "+dir+" && i=0; while [ $i -lt 10000 ]; do : >f$i; i=$((i+1)); done")
		start := time.Now()
		out, status := e.batch(t, d, "ls -1 "+dir)
		took := time.Since(start)
		require.Zero(t, status, out)
		names := strings.Split(strings.TrimSpace(out), "\n")[1:] // after the echoed command
		if len(names) != 10000 {
			listed := make(map[string]bool, len(names))
			for _, n := range names {
				listed[n] = true
			}
			var missing []string
			for i := range 10000 {
				if n := fmt.Sprintf("%s/f%d", dir, i); !listed[n] {
					missing = append(missing, n)
				}
			}
			t.Errorf("listed %d of 10,000 entries (the container has %s); missing %d, the first %q; the output ends %q",
				len(names), strings.TrimSpace(d.sh(t, "ls "+dir+" | wc -l")), len(missing), missing[:min(5, len(missing))], out[max(0, len(out)-300):])
		}
		t.Logf("sftp ls -1 of 10,000 entries in %s: %v", d.kind, took)
		d.sh(t, "rm -r "+dir)
	})

	each("a non-root SHELL_USER gets permission denied where it may not write or read", func(t *testing.T, d sftpTarget) {
		dir := "/ro-" + randomHex(t, 4)
		pub := "/pub-" + randomHex(t, 4)
		d.sh(t, "mkdir "+dir+" && echo secret >"+dir+"/secret && chmod 600 "+dir+"/secret && mkdir "+pub+" && chmod 1777 "+pub)
		src := filepath.Join(t.TempDir(), "src")
		randomFile(t, src, 1000)
		got := filepath.Join(t.TempDir(), "got")
		out, status := nobody.batch(t, d,
			"-put "+src+" "+dir+"/new",
			"-get "+dir+"/secret "+got,
			"-rm "+dir+"/secret",
			"-mkdir "+dir+"/sub",
			"-rename "+dir+"/secret "+pub+"/stolen",
			"put "+src+" "+pub+"/mine",
		)
		require.Zero(t, status, out)
		assert.Equal(t, 5, strings.Count(out, "Permission denied"), out)
		assert.Equal(t, "secret\n", d.sh(t, "ls "+dir), "nothing changed where the user may not write")
		assert.NoFileExists(t, got)
		assert.Equal(t, "65534 65534\n", d.sh(t, "stat -c '%u %g' "+pub+"/mine"), "files are the session user's")
		d.sh(t, "rm -r "+dir+" "+pub)
	})

	each("scp -O, the legacy protocol, needs scp in the container", func(t *testing.T, d sftpTarget) {
		src := filepath.Join(t.TempDir(), "legacy")
		sum := randomFile(t, src, 100000)
		dst := path.Join(d.home, "legacy-"+randomHex(t, 4))
		out, status := e.runClient(t, "", "scp", "-O", src, e.remote(d, dst))
		if d.kind != "debian" {
			assert.NotZero(t, status, "scp -O into a container without scp: %s", out)
			assert.Contains(t, out, "has no scp, which scp -O (the legacy protocol) runs there; scp without -O speaks SFTP and works")
			return
		}
		require.Zero(t, status, out)
		assert.Equal(t, sum, sumIn(t, d, dst))
		back := filepath.Join(t.TempDir(), "back")
		out, status = e.runClient(t, "", "scp", "-O", e.remote(d, dst), back)
		require.Zero(t, status, out)
		assert.Equal(t, sum, fileSum(t, back))
		d.sh(t, "rm "+dst)
	})

	t.Run("only one helper copy per container", func(t *testing.T) {
		for _, d := range targets[1:] {
			out := d.sh(t, "ls -a /")
			n := strings.Count(out, execbridge.SFTPHelperPrefix)
			assert.Equal(t, 1, n, "helpers in %s: %s", d.kind, out)
		}
		assert.NotContains(t, targets[0].sh(t, "ls -a /"), execbridge.SFTPHelperPrefix, "Debian is served by its own sftp-server")
	})

	t.Run("the container stopped mid-transfer", func(t *testing.T) {
		// Fresh containers: these are killed.
		victims := startSFTPTargets(t, "sftp-stop")
		var vs []dockerBackendTarget
		for _, d := range victims {
			vs = append(vs, d.dockerBackendTarget)
		}
		ek := startBridge(t, vs, sftpBridgeOpts(t, helper, ""))
		for _, d := range victims {
			t.Run(d.kind, func(t *testing.T) {
				// A download and an upload at 5 MB/s (scp -l takes
				// Kbit/s), so both are under way when the container dies.
				cp := exec.Command("docker", "cp", blob, d.ID+":/down-src")
				out, err := cp.CombinedOutput()
				require.NoError(t, err, "%s", out)
				ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
				defer cancel()
				down := filepath.Join(t.TempDir(), "down")
				dl := ek.clientCmd(ctx, t, "scp", "-l", "40000", ek.remote(d, "/down-src"), down)
				ul := ek.clientCmd(ctx, t, "scp", "-l", "40000", blob, ek.remote(d, "/up-dst"))
				var dlOut, ulOut bytes.Buffer
				dl.Stdout, dl.Stderr = &dlOut, &dlOut
				ul.Stdout, ul.Stderr = &ulOut, &ulOut
				require.NoError(t, dl.Start())
				require.NoError(t, ul.Start())
				waitUntil(t, "both transfers under way", func() bool {
					fi, err := os.Stat(down)
					if err != nil || fi.Size() < 1<<20 {
						return false
					}
					n, _ := strconv.Atoi(strings.TrimSpace(d.sh(t, "stat -c %s /up-dst 2>/dev/null || echo 0")))
					return n > 1<<20
				})
				start := time.Now()
				out, err = exec.Command("docker", "kill", d.ID).CombinedOutput()
				require.NoError(t, err, "%s", out)
				for name, c := range map[string]*exec.Cmd{"download": dl, "upload": ul} {
					err := c.Wait()
					require.NoError(t, ctx.Err(), "the %s hung", name)
					assert.Error(t, err, "the %s ends with an error", name)
				}
				t.Logf("transfers ended %v after the kill; download: %s; upload: %s", time.Since(start), strings.TrimSpace(dlOut.String()), strings.TrimSpace(ulOut.String()))
			})
		}
		// The server is still up and serves the other containers.
		out, _, status := e.run(t, e.user(targets[1].dockerBackendTarget), nil, nil, "echo alive")
		assert.Zero(t, status)
		assert.Equal(t, "alive\n", string(out))
		out2, status := ek.batch(t, victims[0], "pwd")
		assert.NotZero(t, status, "a session into a stopped container is refused: %s", out2)
	})
}

// waitUntil polls cond until it holds, for up to a minute.
func waitUntil(tb testing.TB, what string, cond func() bool) {
	tb.Helper()
	deadline := time.Now().Add(time.Minute)
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatalf("timed out waiting until %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestExecbridgeSFTPGrant applies authn's restrictions to SFTP as sshd
// does: no-pty (restrict) does not stop SFTP; a forced command replaces
// the subsystem unless it is the SFTP server.
func TestExecbridgeSFTPGrant(t *testing.T) {
	t.Parallel()
	helper := buildSFTPHelper(t)
	d := sftpTarget{dockerBackendTarget{Target: harness.StartTarget(t, "sftp-grant")}, "busybox", "/"}
	for _, tt := range []struct {
		options string
		works   bool
	}{
		{"restrict", true},
		{`restrict,command="internal-sftp"`, true},
		{`restrict,command="echo not sftp"`, false},
	} {
		t.Run(tt.options, func(t *testing.T) {
			o := sftpBridgeOpts(t, helper, "")
			o.keyOptions = tt.options
			e := startBridge(t, []dockerBackendTarget{d.dockerBackendTarget}, o)
			out, status := e.batch(t, d, "pwd")
			if tt.works {
				assert.Zero(t, status, out)
				assert.Contains(t, out, "Remote working directory: /")
			} else {
				assert.NotZero(t, status, out)
			}
		})
	}
}
