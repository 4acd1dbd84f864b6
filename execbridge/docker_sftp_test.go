package execbridge

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"debug/elf"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/image"
	"github.com/moby/moby/client"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dockssh/dockssh/execbridge/sftphelper"
)

// sftpFakeDocker is the fake engine with what the SFTP helper needs: a
// file system per container that stat requests and copies share, the
// image of each container, and a count of copies.
type sftpFakeDocker struct {
	*fakeDocker
	arch    string   // the architecture of every image
	env     []string // the configured environment of every container
	copyErr error    // what CopyToContainer fails with, if not nil

	mu     sync.Mutex                               // guards the fields below
	files  map[string]map[string]container.PathStat // container -> path -> stat
	data   map[string][]byte                        // container NUL path -> contents
	copies int
	calls  map[string]int
}

func newSFTPFake() *sftpFakeDocker {
	return &sftpFakeDocker{
		fakeDocker: newFakeDocker(),
		arch:       "amd64",
		files:      map[string]map[string]container.PathStat{},
		data:       map[string][]byte{},
		calls:      map[string]int{},
	}
}

func (f *sftpFakeDocker) count(name string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls[name]++
}

func (f *sftpFakeDocker) callsOf(name string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls[name]
}

// put adds a file to container ref.
func (f *sftpFakeDocker) put(ref, p string, st container.PathStat) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.files[ref] == nil {
		f.files[ref] = map[string]container.PathStat{"/": {Name: "/", Mode: fs.ModeDir | 0o755}}
	}
	st.Name = path.Base(p)
	f.files[ref][p] = st
}

func (f *sftpFakeDocker) ContainerStatPath(ctx context.Context, ref string, o client.ContainerStatPathOptions) (client.ContainerStatPathResult, error) {
	f.count("ContainerStatPath")
	if err := ctx.Err(); err != nil {
		return client.ContainerStatPathResult{}, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	files := f.files[ref]
	if files == nil {
		files = map[string]container.PathStat{"/": {Name: "/", Mode: fs.ModeDir | 0o755}}
	}
	st, ok := files[o.Path]
	if !ok {
		return client.ContainerStatPathResult{}, fmt.Errorf("Error: request returned 404 Not Found for %s", o.Path)
	}
	return client.ContainerStatPathResult{Stat: st}, nil
}

func (f *sftpFakeDocker) ContainerInspect(ctx context.Context, ref string, o client.ContainerInspectOptions) (client.ContainerInspectResult, error) {
	f.count("ContainerInspect")
	var r client.ContainerInspectResult
	r.Container.ID = ref
	r.Container.Image = "sha256:image-of-" + ref
	r.Container.Config = &container.Config{Env: f.env}
	return r, nil
}

func (f *sftpFakeDocker) ImageInspect(ctx context.Context, id string, o ...client.ImageInspectOption) (client.ImageInspectResult, error) {
	f.count("ImageInspect")
	return client.ImageInspectResult{InspectResponse: image.InspectResponse{ID: id, Os: "linux", Architecture: f.arch}}, nil
}

func (f *sftpFakeDocker) CopyToContainer(ctx context.Context, ref string, o client.CopyToContainerOptions) (client.CopyToContainerResult, error) {
	f.count("CopyToContainer")
	if f.copyErr != nil {
		return client.CopyToContainerResult{}, f.copyErr
	}
	tr := tar.NewReader(o.Content)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return client.CopyToContainerResult{}, err
		}
		data, err := io.ReadAll(tr)
		if err != nil {
			return client.CopyToContainerResult{}, err
		}
		p := path.Join(o.DestinationPath, h.Name)
		f.put(ref, p, container.PathStat{Size: int64(len(data)), Mode: fs.FileMode(h.Mode) & fs.ModePerm, Mtime: h.ModTime})
		f.mu.Lock()
		f.data[ref+"\x00"+p] = data
		f.copies++
		f.mu.Unlock()
	}
	return client.CopyToContainerResult{}, nil
}

var _ DockerCopyClient = (*sftpFakeDocker)(nil)

// elfSpec describes a minimal ELF file for checkHelperELF.
type elfSpec struct {
	class   elf.Class
	data    elf.Data
	osabi   elf.OSABI
	typ     elf.Type
	machine elf.Machine
	entry   uint64
	interp  bool // has a PT_INTERP segment (dynamically linked)
}

func staticAMD64() elfSpec {
	return elfSpec{class: elf.ELFCLASS64, data: elf.ELFDATA2LSB, typ: elf.ET_EXEC, machine: elf.EM_X86_64, entry: 0x401000}
}

// makeELF returns the bytes of an ELF file with program headers only: a
// PT_LOAD of the whole file and, when asked, a PT_INTERP naming the loader.
func makeELF(tb testing.TB, s elfSpec) []byte {
	tb.Helper()
	var order binary.ByteOrder = binary.LittleEndian
	if s.data == elf.ELFDATA2MSB {
		order = binary.BigEndian
	}
	const loader = "/lib64/ld-linux-x86-64.so.2\x00"
	nprog := 1
	if s.interp {
		nprog = 2
	}
	ident := [elf.EI_NIDENT]byte{0x7f, 'E', 'L', 'F', byte(s.class), byte(s.data), byte(elf.EV_CURRENT), byte(s.osabi)}
	var buf bytes.Buffer
	w := func(v any) { require.NoError(tb, binary.Write(&buf, order, v)) }
	if s.class == elf.ELFCLASS64 {
		hsize, psize := 64, 56
		interpOff := uint64(hsize + nprog*psize)
		total := interpOff + uint64(len(loader))
		w(elf.Header64{Ident: ident, Type: uint16(s.typ), Machine: uint16(s.machine), Version: uint32(elf.EV_CURRENT),
			Entry: s.entry, Phoff: uint64(hsize), Ehsize: uint16(hsize), Phentsize: uint16(psize), Phnum: uint16(nprog), Shentsize: 64})
		w(elf.Prog64{Type: uint32(elf.PT_LOAD), Flags: uint32(elf.PF_R | elf.PF_X), Vaddr: 0x400000, Paddr: 0x400000, Filesz: total, Memsz: total, Align: 0x1000})
		if s.interp {
			w(elf.Prog64{Type: uint32(elf.PT_INTERP), Flags: uint32(elf.PF_R), Off: interpOff, Vaddr: 0x400000 + interpOff, Filesz: uint64(len(loader)), Memsz: uint64(len(loader)), Align: 1})
		}
	} else {
		hsize, psize := 52, 32
		interpOff := uint32(hsize + nprog*psize)
		total := interpOff + uint32(len(loader))
		w(elf.Header32{Ident: ident, Type: uint16(s.typ), Machine: uint16(s.machine), Version: uint32(elf.EV_CURRENT),
			Entry: uint32(s.entry), Phoff: uint32(hsize), Ehsize: uint16(hsize), Phentsize: uint16(psize), Phnum: uint16(nprog), Shentsize: 40})
		w(elf.Prog32{Type: uint32(elf.PT_LOAD), Flags: uint32(elf.PF_R | elf.PF_X), Vaddr: 0x8048000, Paddr: 0x8048000, Filesz: total, Memsz: total, Align: 0x1000})
		if s.interp {
			w(elf.Prog32{Type: uint32(elf.PT_INTERP), Flags: uint32(elf.PF_R), Off: interpOff, Vaddr: 0x8048000 + interpOff, Filesz: uint32(len(loader)), Memsz: uint32(len(loader)), Align: 1})
		}
	}
	buf.WriteString(loader)
	return buf.Bytes()
}

func TestCheckHelperELF(t *testing.T) {
	with := func(f func(*elfSpec)) elfSpec {
		s := staticAMD64()
		f(&s)
		return s
	}
	for _, tt := range []struct {
		name     string
		spec     elfSpec
		wantArch string
		wantErr  string
	}{
		{"static amd64", staticAMD64(), "amd64", ""},
		{"static PIE", with(func(s *elfSpec) { s.typ = elf.ET_DYN }), "amd64", ""},
		{"Linux OSABI", with(func(s *elfSpec) { s.osabi = elf.ELFOSABI_LINUX }), "amd64", ""},
		{"arm64", with(func(s *elfSpec) { s.machine = elf.EM_AARCH64 }), "arm64", ""},
		{"ppc64le", with(func(s *elfSpec) { s.machine = elf.EM_PPC64 }), "ppc64le", ""},
		{"s390x", with(func(s *elfSpec) { s.machine = elf.EM_S390; s.data = elf.ELFDATA2MSB }), "s390x", ""},
		{"386", with(func(s *elfSpec) { s.class = elf.ELFCLASS32; s.machine = elf.EM_386 }), "386", ""},
		{"arm", with(func(s *elfSpec) { s.class = elf.ELFCLASS32; s.machine = elf.EM_ARM }), "arm", ""},
		{"dynamically linked", with(func(s *elfSpec) { s.interp = true }), "", "dynamically linked"},
		{"dynamically linked PIE", with(func(s *elfSpec) { s.typ = elf.ET_DYN; s.interp = true }), "", "dynamically linked"},
		{"shared library", with(func(s *elfSpec) { s.typ = elf.ET_DYN; s.entry = 0 }), "", "not an executable"},
		{"object file", with(func(s *elfSpec) { s.typ = elf.ET_REL }), "", "not an executable"},
		{"FreeBSD", with(func(s *elfSpec) { s.osabi = elf.ELFOSABI_FREEBSD }), "", "not Linux"},
		{"unknown machine", with(func(s *elfSpec) { s.machine = elf.EM_SPARCV9 }), "", "does not know"},
		{"32-bit x86-64 machine", with(func(s *elfSpec) { s.class = elf.ELFCLASS32 }), "", "does not know"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			arch, err := checkHelperELF(makeELF(t, tt.spec))
			if tt.wantErr != "" {
				require.Error(t, err)
				assert.Contains(t, err.Error(), tt.wantErr)
				assert.Empty(t, arch)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.wantArch, arch)
		})
	}
	for _, data := range [][]byte{nil, []byte("#!/bin/sh\nexec sftp-server\n"), []byte("\x7fELF")} {
		if _, err := checkHelperELF(data); err == nil || !strings.Contains(err.Error(), "not an ELF executable") {
			t.Errorf("checkHelperELF(%q) = %v, want not an ELF executable", data, err)
		}
	}
}

// TestCheckHelperELFRealFiles checks executables of this machine: a
// dynamically linked one (every distribution's /bin/ls) is refused.
func TestCheckHelperELFRealFiles(t *testing.T) {
	data, err := os.ReadFile("/bin/ls")
	if err != nil {
		t.Skipf("no /bin/ls here: %v", err)
	}
	if _, err := checkHelperELF(data); !errors.Is(err, errHelperNotStatic) {
		t.Errorf("checkHelperELF(/bin/ls) = %v, want %v", err, errHelperNotStatic)
	}
}

func FuzzCheckHelperELF(f *testing.F) {
	f.Add(makeELF(f, staticAMD64()))
	s := staticAMD64()
	s.interp = true
	f.Add(makeELF(f, s))
	s = staticAMD64()
	s.class, s.machine = elf.ELFCLASS32, elf.EM_386
	f.Add(makeELF(f, s))
	f.Add([]byte("\x7fELF\x02\x01\x01"))
	f.Fuzz(func(t *testing.T, data []byte) {
		arch, err := checkHelperELF(data)
		if (err == nil) == (arch == "") {
			t.Fatalf("checkHelperELF = %q, %v: want an architecture or an error", arch, err)
		}
	})
}

// writeHelper writes an ELF helper into a temporary directory and returns
// its path and contents.
func writeHelper(tb testing.TB, s elfSpec) (string, []byte) {
	tb.Helper()
	data := makeELF(tb, s)
	p := filepath.Join(tb.TempDir(), "helper")
	require.NoError(tb, os.WriteFile(p, data, 0o755))
	return p, data
}

func helperPathFor(data []byte) string {
	sum := sha256.Sum256(data)
	return "/" + SFTPHelperPrefix + hex.EncodeToString(sum[:8])
}

func sftpBackend(f DockerClient, helper string) *DockerBackend {
	return NewDockerBackend(f, &DockerConfig{Logger: slog.New(slog.DiscardHandler), SFTPHelper: helper})
}

func TestSubsystemFindsTheSFTPServer(t *testing.T) {
	exe := container.PathStat{Mode: 0o755, Size: 1000}
	for _, tt := range []struct {
		name  string
		files map[string]container.PathStat
		want  string
	}{
		{"Debian", map[string]container.PathStat{"/usr/lib/openssh/sftp-server": exe}, "/usr/lib/openssh/sftp-server"},
		{"Alpine", map[string]container.PathStat{"/usr/lib/ssh/sftp-server": exe}, "/usr/lib/ssh/sftp-server"},
		{"Fedora", map[string]container.PathStat{"/usr/libexec/openssh/sftp-server": exe}, "/usr/libexec/openssh/sftp-server"},
		{"a symbolic link to it", map[string]container.PathStat{
			"/usr/lib/openssh/sftp-server": {Mode: fs.ModeSymlink | 0o777, LinkTarget: "../ssh/sftp-server"},
			"/usr/lib/ssh/sftp-server":     exe,
		}, "/usr/lib/openssh/sftp-server"},
		{"not executable: the next place", map[string]container.PathStat{
			"/usr/lib/openssh/sftp-server": {Mode: 0o644},
			"/usr/libexec/sftp-server":     exe,
		}, "/usr/libexec/sftp-server"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			f := newSFTPFake()
			for p, st := range tt.files {
				f.put("c0ffee", p, st)
			}
			b := sftpBackend(f, "")
			argv, err := b.Subsystem(t.Context(), testTarget(), "sftp", "app")
			require.NoError(t, err)
			assert.Equal(t, []string{tt.want, "-d", "%d"}, argv)

			stats := f.callsOf("ContainerStatPath")
			argv, err = b.Subsystem(t.Context(), testTarget(), "sftp", "app")
			require.NoError(t, err)
			assert.Equal(t, tt.want, argv[0])
			assert.Equal(t, stats, f.callsOf("ContainerStatPath"), "the second session asks the engine nothing")
		})
	}
}

func TestSubsystemRefusals(t *testing.T) {
	helper, _ := writeHelper(t, staticAMD64())
	arm := staticAMD64()
	arm.machine = elf.EM_AARCH64
	armHelper, _ := writeHelper(t, arm)
	dynamic := staticAMD64()
	dynamic.interp = true
	dynHelper, _ := writeHelper(t, dynamic)

	for _, tt := range []struct {
		name   string
		name2  string // subsystem name; "" is sftp
		helper string
		setup  func(f *sftpFakeDocker)
		client func(f *sftpFakeDocker) DockerClient
		want   string
	}{
		{name: "another subsystem", name2: "netconf", want: `the subsystem "netconf" is not served`},
		{name: "no helper", want: "it has no sftp-server, and this server has no SFTP helper to copy into it"},
		{name: "missing helper file", helper: filepath.Join(t.TempDir(), "nothing"), want: "the SFTP helper of this server is unusable"},
		{name: "dynamically linked helper", helper: dynHelper, want: "the SFTP helper of this server is unusable"},
		{name: "helper of another architecture", helper: armHelper, want: "the SFTP helper of this server is built for arm64, not amd64"},
		{name: "image of another architecture", helper: helper, setup: func(f *sftpFakeDocker) { f.arch = "s390x" },
			want: "the SFTP helper of this server is built for amd64, not s390x"},
		{name: "root directory writable by others", helper: helper, setup: func(f *sftpFakeDocker) {
			f.put("c0ffee", "/", container.PathStat{Mode: fs.ModeDir | 0o777})
		}, want: "its root directory is writable by other users than root"},
		{name: "read-only root file system", helper: helper, setup: func(f *sftpFakeDocker) {
			f.copyErr = errors.New("Error response from daemon: container rootfs is marked read-only")
		}, want: "could not be copied into it (is its root file system read-only?)"},
		{name: "client cannot copy", helper: helper, client: func(f *sftpFakeDocker) DockerClient { return f.fakeDocker },
			want: "the SFTP helper cannot be copied into it"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			f := newSFTPFake()
			if tt.setup != nil {
				tt.setup(f)
			}
			var c DockerClient = f
			if tt.client != nil {
				c = tt.client(f)
			}
			b := sftpBackend(c, tt.helper)
			argv, err := b.Subsystem(t.Context(), testTarget(), cmpOr(tt.name2, "sftp"), "")
			var se *TargetError
			require.ErrorAs(t, err, &se, "argv %q", argv)
			assert.Nil(t, argv)
			assert.Contains(t, se.Reason, tt.want)
			assert.Zero(t, f.copies, "nothing copied")
		})
	}
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

func TestSubsystemCopiesTheHelperOnce(t *testing.T) {
	helper, data := writeHelper(t, staticAMD64())
	f := newSFTPFake()
	b := sftpBackend(f, helper)
	want := helperPathFor(data)

	// Many sessions at once into a container without an SFTP server: one
	// copy, and every session gets the helper.
	var wg sync.WaitGroup
	for range 20 {
		wg.Go(func() {
			argv, err := b.Subsystem(t.Context(), testTarget(), "sftp", "")
			if assert.NoError(t, err) {
				assert.Equal(t, []string{want, sftphelper.Arg}, argv)
			}
		})
	}
	wg.Wait()
	assert.Equal(t, 1, f.copies)
	f.mu.Lock()
	st := f.files["c0ffee"][want]
	got := f.data["c0ffee\x00"+want]
	f.mu.Unlock()
	assert.Equal(t, data, got, "the helper's contents")
	assert.Equal(t, fs.FileMode(0o755), st.Mode)
	assert.Equal(t, "/", path.Dir(want), "in the root directory, which only root may write")

	// The next session finds it with one stat request: no inspect, no copy.
	f.mu.Lock()
	clear(f.calls)
	f.mu.Unlock()
	_, err := b.Subsystem(t.Context(), testTarget(), "sftp", "")
	require.NoError(t, err)
	assert.Equal(t, map[string]int{"ContainerStatPath": 1, "ContainerInspect": 0, "ImageInspect": 0, "CopyToContainer": 0}, map[string]int{
		"ContainerStatPath": f.callsOf("ContainerStatPath"), "ContainerInspect": f.callsOf("ContainerInspect"),
		"ImageInspect": f.callsOf("ImageInspect"), "CopyToContainer": f.callsOf("CopyToContainer"),
	})

	// Another container gets its own copy.
	_, err = b.Subsystem(t.Context(), Target{ID: "beef"}, "sftp", "")
	require.NoError(t, err)
	assert.Equal(t, 2, f.copies)
}

func TestSubsystemCopiesAgain(t *testing.T) {
	for _, tt := range []struct {
		name   string
		change func(f *sftpFakeDocker, p string)
	}{
		{"removed", func(f *sftpFakeDocker, p string) {
			f.mu.Lock()
			delete(f.files["c0ffee"], p)
			f.mu.Unlock()
		}},
		{"cut short", func(f *sftpFakeDocker, p string) {
			f.mu.Lock()
			st := f.files["c0ffee"][p]
			st.Size /= 2
			f.files["c0ffee"][p] = st
			f.mu.Unlock()
		}},
		{"writable by others", func(f *sftpFakeDocker, p string) {
			f.mu.Lock()
			st := f.files["c0ffee"][p]
			st.Mode = 0o777
			f.files["c0ffee"][p] = st
			f.mu.Unlock()
		}},
		{"a directory", func(f *sftpFakeDocker, p string) {
			f.put("c0ffee", p, container.PathStat{Mode: fs.ModeDir | 0o755})
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			helper, data := writeHelper(t, staticAMD64())
			f := newSFTPFake()
			b := sftpBackend(f, helper)
			_, err := b.Subsystem(t.Context(), testTarget(), "sftp", "")
			require.NoError(t, err)
			tt.change(f, helperPathFor(data))
			_, err = b.Subsystem(t.Context(), testTarget(), "sftp", "")
			require.NoError(t, err)
			assert.Equal(t, 2, f.copies)
		})
	}
}

// TestSubsystemNewHelperVersion: a helper replaced on disk is read again
// and lands under its own name; the old copy is left alone.
func TestSubsystemNewHelperVersion(t *testing.T) {
	helper, data := writeHelper(t, staticAMD64())
	f := newSFTPFake()
	b := sftpBackend(f, helper)
	argv, err := b.Subsystem(t.Context(), testTarget(), "sftp", "")
	require.NoError(t, err)
	assert.Equal(t, helperPathFor(data), argv[0])

	s := staticAMD64()
	s.entry = 0x402000
	newData := makeELF(t, s)
	require.NoError(t, os.WriteFile(helper+".new", newData, 0o755))
	require.NoError(t, os.Rename(helper+".new", helper)) // a new inode, as a deployment would
	argv, err = b.Subsystem(t.Context(), testTarget(), "sftp", "")
	require.NoError(t, err)
	assert.Equal(t, helperPathFor(newData), argv[0])
	assert.NotEqual(t, helperPathFor(data), argv[0])
	assert.Equal(t, 2, f.copies)
}

// TestSubsystemWaitHonoursContext: a session waiting for another's copy
// gives up when its context ends.
func TestSubsystemWaitHonoursContext(t *testing.T) {
	helper, _ := writeHelper(t, staticAMD64())
	f := newSFTPFake()
	b := sftpBackend(f, helper)
	release, err := b.sftp.lockContainer(t.Context(), "\x00c0ffee")
	require.NoError(t, err)
	defer release()
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	_, err = b.Subsystem(ctx, testTarget(), "sftp", "")
	require.ErrorIs(t, err, context.DeadlineExceeded)
	assert.Zero(t, f.copies)
}

func TestSFTPCachesAreBounded(t *testing.T) {
	helper, _ := writeHelper(t, staticAMD64())
	f := newSFTPFake()
	b := sftpBackend(f, helper)
	for i := range shellCacheMax + 10 {
		ref := "c" + strconv.Itoa(i)
		if i%2 == 0 {
			f.put(ref, "/usr/lib/openssh/sftp-server", container.PathStat{Mode: 0o755})
		}
		_, err := b.Subsystem(t.Context(), Target{ID: ref}, "sftp", "")
		require.NoError(t, err)
	}
	assert.Equal(t, shellCacheMax, b.sftp.servers.len())
	assert.LessOrEqual(t, b.sftp.arches.len(), shellCacheMax)
	b.sftp.mu.Lock()
	assert.Empty(t, b.sftp.copying, "no copy left in flight")
	b.sftp.mu.Unlock()
}

func TestLookPath(t *testing.T) {
	exe := container.PathStat{Mode: 0o755}
	for _, tt := range []struct {
		name    string
		env     []string
		files   map[string]container.PathStat
		program string
		want    string
	}{
		{"default PATH", nil, map[string]container.PathStat{"/usr/bin/scp": exe}, "scp", "/usr/bin/scp"},
		{"container's PATH", []string{"PATH=/opt/bin:/bin"}, map[string]container.PathStat{"/opt/bin/scp": exe, "/usr/bin/scp": exe}, "scp", "/opt/bin/scp"},
		{"first in PATH wins", []string{"PATH=/usr/local/bin:/usr/bin"}, map[string]container.PathStat{"/usr/local/bin/scp": exe, "/usr/bin/scp": exe}, "scp", "/usr/local/bin/scp"},
		{"symbolic link", nil, map[string]container.PathStat{"/bin/scp": {Mode: fs.ModeSymlink | 0o777, LinkTarget: "/bin/busybox"}, "/bin/busybox": exe}, "scp", "/bin/scp"},
		{"not executable is skipped", nil, map[string]container.PathStat{"/usr/local/bin/scp": {Mode: 0o644}, "/bin/scp": exe}, "scp", "/bin/scp"},
		{"absolute name", nil, map[string]container.PathStat{"/busybox": exe}, "/busybox", "/busybox"},
		{"missing", nil, nil, "scp", ""},
		{"relative PATH entries are skipped", []string{"PATH=.:bin"}, map[string]container.PathStat{"/bin/scp": exe}, "scp", ""},
		{"relative name", nil, map[string]container.PathStat{"/bin/scp": exe}, "bin/scp", ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			f := newSFTPFake()
			f.env = tt.env
			for p, st := range tt.files {
				f.put("c0ffee", p, st)
			}
			got, err := sftpBackend(f, "").LookPath(t.Context(), testTarget(), tt.program)
			if tt.want == "" {
				assert.ErrorIs(t, err, ErrProgramNotFound)
				assert.Empty(t, got)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
		})
	}
}
