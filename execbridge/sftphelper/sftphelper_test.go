package sftphelper

import (
	"bytes"
	"crypto/rand"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/pkg/sftp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestMain lets the test binary be the helper, as a program that calls
// Main first thing: TestMainServes starts it with Arg.
func TestMain(m *testing.M) {
	Main()
	os.Exit(m.Run())
}

// client serves one session with Serve on pipes and returns a client of
// it; the server's result arrives on done once the client closed.
func client(t *testing.T, cfg *Config) (c *sftp.Client, done <-chan error) {
	t.Helper()
	inR, inW := io.Pipe()
	outR, outW := io.Pipe()
	errc := make(chan error, 1)
	go func() { errc <- Serve(inR, outW, cfg) }()
	c, err := sftp.NewClientPipe(outR, inW)
	require.NoError(t, err)
	t.Cleanup(func() { c.Close() })
	return c, errc
}

func TestServe(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	c, done := client(t, nil)

	// Relative paths and "." are the working directory.
	wd, err := c.Getwd()
	require.NoError(t, err)
	assert.Equal(t, dir, wd)

	data := make([]byte, 1<<20+123)
	rand.Read(data)
	f, err := c.Create("a")
	require.NoError(t, err)
	_, err = f.Write(data)
	require.NoError(t, err)
	require.NoError(t, f.Close())
	got, err := os.ReadFile(filepath.Join(dir, "a"))
	require.NoError(t, err)
	assert.True(t, bytes.Equal(data, got), "written contents")

	// Reads at random offsets, as reget and parallel reads do.
	rf, err := c.Open("a")
	require.NoError(t, err)
	buf := make([]byte, 1000)
	for _, off := range []int64{0, 777777, int64(len(data)) - 1000, 4096} {
		n, err := rf.ReadAt(buf, off)
		require.NoError(t, err)
		assert.Equal(t, data[off:off+int64(n)], buf[:n], "at %d", off)
	}
	require.NoError(t, rf.Close())

	require.NoError(t, c.Mkdir("d"))
	require.NoError(t, c.Rename("a", "d/b"))
	require.NoError(t, c.Symlink("b", "d/l"))
	target, err := c.ReadLink("d/l")
	require.NoError(t, err)
	assert.Equal(t, "b", target, "a relative link target stays relative")
	st, err := c.Lstat("d/l")
	require.NoError(t, err)
	assert.Equal(t, fs.ModeSymlink, st.Mode().Type())
	st, err = c.Stat("d/l")
	require.NoError(t, err)
	assert.Equal(t, int64(len(data)), st.Size())

	mtime := time.Date(2001, 2, 3, 4, 5, 6, 0, time.UTC)
	require.NoError(t, c.Chmod("d/b", 0o640))
	require.NoError(t, c.Chtimes("d/b", mtime, mtime))
	fi, err := os.Stat(filepath.Join(dir, "d", "b"))
	require.NoError(t, err)
	assert.Equal(t, fs.FileMode(0o640), fi.Mode().Perm())
	assert.True(t, fi.ModTime().Equal(mtime), "mtime %v, want %v", fi.ModTime(), mtime)

	entries, err := c.ReadDir("d")
	require.NoError(t, err)
	assert.Len(t, entries, 2)

	// Errors arrive as status codes the client maps back.
	_, err = c.Open("no-such-file")
	assert.ErrorIs(t, err, os.ErrNotExist)
	err = c.RemoveDirectory("d")
	var se *sftp.StatusError
	require.ErrorAs(t, err, &se, "rmdir of a directory that is not empty")
	assert.Equal(t, uint32(4), se.Code, "SSH_FX_FAILURE")

	// Renames of a missing file say so (permission errors of renames are
	// TestStatusFixer's, and the integration tests' as a non-root user).
	err = c.Rename("no-such-file", "d/c")
	assert.ErrorIs(t, err, os.ErrNotExist, "rename of a missing file")
	err = c.PosixRename("no-such-file", "d/c")
	assert.ErrorIs(t, err, os.ErrNotExist, "posix-rename of a missing file")

	require.NoError(t, c.Remove("d/l"))
	require.NoError(t, c.Remove("d/b"))
	require.NoError(t, c.RemoveDirectory("d"))
	_, err = os.Stat(filepath.Join(dir, "d"))
	assert.ErrorIs(t, err, fs.ErrNotExist)

	require.NoError(t, c.Close())
	select {
	case err := <-done:
		assert.NoError(t, err, "the client's end of the session is a clean end")
	case <-time.After(10 * time.Second):
		t.Fatal("Serve did not return after the client closed")
	}
}

func TestServePermissionDenied(t *testing.T) {
	if os.Geteuid() == 0 {
		t.Skip("root may read and write everything: the integration tests check this with a non-root user in a container")
	}
	dir := t.TempDir()
	t.Chdir(dir)
	require.NoError(t, os.WriteFile("secret", []byte("x"), 0o000))
	c, _ := client(t, nil)
	_, err := c.Open("secret")
	assert.ErrorIs(t, err, os.ErrPermission)
}

// TestMainServes runs the helper as a process, as the container does:
// this test binary with Arg.
func TestMainServes(t *testing.T) {
	for _, tt := range []struct {
		name, home, want string
	}{
		{"starts in HOME", t.TempDir(), ""},
		{"HOME that does not exist", filepath.Join(t.TempDir(), "nonexistent"), "/"},
		{"no HOME", "", "/"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cmd := exec.Command(os.Args[0], Arg)
			cmd.Env = []string{"HOME=" + tt.home}
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			in, err := cmd.StdinPipe()
			require.NoError(t, err)
			out, err := cmd.StdoutPipe()
			require.NoError(t, err)
			require.NoError(t, cmd.Start())
			c, err := sftp.NewClientPipe(out, in)
			require.NoError(t, err)
			wd, err := c.Getwd()
			require.NoError(t, err)
			want := tt.want
			if want == "" {
				want = tt.home
			}
			assert.Equal(t, want, wd)
			require.NoError(t, c.Close()) // closes the helper's stdin
			assert.NoError(t, cmd.Wait(), "exit status after the client's end; stderr: %s", stderr.String())
			assert.Empty(t, stderr.String())
		})
	}
}

// TestMainReturns: without Arg, Main leaves the program alone (this
// test binary, whose first argument is a -test flag, got here).
func TestMainReturns(t *testing.T) {
	Main()
}

func TestRunReportsErrors(t *testing.T) {
	t.Chdir(t.TempDir())
	// A packet of an unknown type (99) where SSH_FXP_INIT belongs: the
	// server stops, and run says why on stderr with exit status 1.
	var out, stderr bytes.Buffer
	in := bytes.NewReader([]byte("\x00\x00\x00\x05\x63\x00\x00\x00\x01"))
	code := run(nil, in, nopCloser{&out}, &stderr, t.TempDir())
	assert.Equal(t, 1, code)
	assert.Contains(t, stderr.String(), "dockssh sftp helper: sftphelper:")
}

type nopCloser struct{ io.Writer }

func (nopCloser) Close() error { return nil }

func TestServeReadOnly(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	require.NoError(t, os.WriteFile("f", []byte("data"), 0o644))
	c, _ := client(t, &Config{ReadOnly: true})
	got, err := c.Open("f")
	require.NoError(t, err, "reading is allowed")
	got.Close()
	for name, op := range map[string]func() error{
		"create": func() error { _, err := c.Create("new"); return err },
		"remove": func() error { return c.Remove("f") },
		"mkdir":  func() error { return c.Mkdir("d") },
		"rename": func() error { return c.Rename("f", "g") },
		"chmod":  func() error { return c.Chmod("f", 0o600) },
	} {
		assert.ErrorIs(t, op(), os.ErrPermission, name)
	}
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	assert.Len(t, entries, 1, "nothing changed")
}

func TestRunArguments(t *testing.T) {
	t.Chdir(t.TempDir())
	var stderr bytes.Buffer
	assert.Equal(t, 1, run([]string{"-w"}, bytes.NewReader(nil), nopCloser{io.Discard}, &stderr, ""))
	assert.Contains(t, stderr.String(), `unknown argument "-w"`)
	stderr.Reset()
	assert.Equal(t, 0, run([]string{"-R"}, bytes.NewReader(nil), nopCloser{io.Discard}, &stderr, ""), "-R, then the client's end at once")
	assert.Empty(t, stderr.String())
}
