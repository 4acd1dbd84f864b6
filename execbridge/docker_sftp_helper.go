package execbridge

import (
	"bytes"
	"crypto/sha256"
	"debug/elf"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"github.com/dockssh/dockssh/internal/filestamp"
)

// maxHelperSize bounds the SFTP helper read into memory to be copied.
const maxHelperSize = 256 << 20

// helperInfo describes one version of the SFTP helper executable.
type helperInfo struct {
	sum  [sha256.Size]byte
	size int64
	arch string // GOARCH name of its machine
}

// containerPath is where the helper lives in a container: named by its
// contents, so that a new helper never meets an old one, in the root
// directory, which only root may write (the engine copies as root; a
// user of the container cannot plant a file of that name there).
func (h helperInfo) containerPath() string {
	return "/" + SFTPHelperPrefix + hex.EncodeToString(h.sum[:8])
}

// helperFile is DockerConfig.SFTPHelper, checked and remembered while the
// file stays the same.
type helperFile struct {
	path string

	mu    sync.Mutex // guards the fields below
	stamp filestamp.Stamp
	last  helperInfo
	ok    bool // last describes the version stamp was made from
}

// info returns the helper's description, reading the file only when it
// changed since the last read.
func (h *helperFile) info() (helperInfo, error) {
	fi, err := os.Stat(h.path)
	if err != nil {
		return helperInfo{}, fmt.Errorf("execbridge: SFTP helper: %w", err)
	}
	h.mu.Lock()
	if h.ok {
		if same, racy := h.stamp.Unchanged(fi); same && !racy {
			defer h.mu.Unlock()
			return h.last, nil
		}
	}
	h.mu.Unlock()
	_, info, err := h.read()
	return info, err
}

// read reads and checks the helper, and remembers what it found.
func (h *helperFile) read() ([]byte, helperInfo, error) {
	f, err := os.Open(h.path)
	if err != nil {
		return nil, helperInfo{}, fmt.Errorf("execbridge: SFTP helper: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, helperInfo{}, fmt.Errorf("execbridge: SFTP helper: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return nil, helperInfo{}, fmt.Errorf("execbridge: SFTP helper %s is not a regular file (%v)", h.path, fi.Mode())
	}
	if fi.Size() > maxHelperSize {
		return nil, helperInfo{}, fmt.Errorf("execbridge: SFTP helper %s is larger than %d MiB", h.path, maxHelperSize>>20)
	}
	readAt := time.Now()
	data, err := io.ReadAll(io.LimitReader(f, maxHelperSize+1))
	if err != nil {
		return nil, helperInfo{}, fmt.Errorf("execbridge: SFTP helper: %w", err)
	}
	if len(data) > maxHelperSize {
		return nil, helperInfo{}, fmt.Errorf("execbridge: SFTP helper %s is larger than %d MiB", h.path, maxHelperSize>>20)
	}
	arch, err := checkHelperELF(data)
	if err != nil {
		return nil, helperInfo{}, fmt.Errorf("execbridge: SFTP helper %s: %w", h.path, err)
	}
	info := helperInfo{sum: sha256.Sum256(data), size: int64(len(data)), arch: arch}
	h.mu.Lock()
	h.stamp, h.last, h.ok = filestamp.New(fi, data, readAt), info, true
	h.mu.Unlock()
	return data, info, nil
}

// errHelperNotStatic is the error of a helper that needs a dynamic loader.
var errHelperNotStatic = errors.New("it is dynamically linked, and a container may lack its loader and libraries; build it statically (for Go: CGO_ENABLED=0)")

// checkHelperELF checks that data is a Linux executable that runs without
// anything else from the container's file system (no program interpreter,
// which is the dynamic loader, and no shared libraries), and returns its
// architecture as GOARCH names it.
func checkHelperELF(data []byte) (string, error) {
	f, err := elf.NewFile(bytes.NewReader(data))
	if err != nil {
		return "", fmt.Errorf("not an ELF executable: %w", err)
	}
	defer f.Close()
	if f.OSABI != elf.ELFOSABI_NONE && f.OSABI != elf.ELFOSABI_LINUX {
		return "", fmt.Errorf("an executable for %v, not Linux", f.OSABI)
	}
	// ET_DYN without an interpreter is a static position-independent
	// executable; a shared library has no entry point.
	if f.Type != elf.ET_EXEC && (f.Type != elf.ET_DYN || f.Entry == 0) {
		return "", fmt.Errorf("not an executable (ELF type %v)", f.Type)
	}
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			return "", errHelperNotStatic
		}
	}
	if libs, err := f.ImportedLibraries(); err == nil && len(libs) > 0 {
		return "", errHelperNotStatic
	}
	arch := elfArch(f.Machine, f.Class, f.Data)
	if arch == "" {
		return "", fmt.Errorf("an executable for %v (%v, %v), which this server does not know", f.Machine, f.Class, f.Data)
	}
	return arch, nil
}

// elfArch is the GOARCH name (which Docker uses for image architectures)
// of an ELF machine, or "" for one this package does not know.
func elfArch(m elf.Machine, c elf.Class, d elf.Data) string {
	is64, le := c == elf.ELFCLASS64, d == elf.ELFDATA2LSB
	switch {
	case m == elf.EM_X86_64 && is64:
		return "amd64"
	case m == elf.EM_386 && !is64:
		return "386"
	case m == elf.EM_AARCH64 && is64:
		return "arm64"
	case m == elf.EM_ARM && !is64:
		return "arm"
	case m == elf.EM_PPC64 && is64 && le:
		return "ppc64le"
	case m == elf.EM_PPC64 && is64:
		return "ppc64"
	case m == elf.EM_S390 && is64:
		return "s390x"
	case m == elf.EM_RISCV && is64:
		return "riscv64"
	case m == elf.EM_LOONGARCH && is64:
		return "loong64"
	case m == elf.EM_MIPS && is64 && le:
		return "mips64le"
	case m == elf.EM_MIPS && is64:
		return "mips64"
	case m == elf.EM_MIPS && le:
		return "mipsle"
	case m == elf.EM_MIPS:
		return "mips"
	}
	return ""
}

// SFTPHelperFile is an SFTP helper program on the server's disk (see
// DockerConfig.SFTPHelper), for a backend that copies it into its targets
// itself. It is checked (a static Linux executable) when read, and read
// again only when the file changed. It is safe for concurrent use.
type SFTPHelperFile struct{ h helperFile }

// NewSFTPHelperFile returns the helper at path; nothing is read yet.
func NewSFTPHelperFile(path string) *SFTPHelperFile {
	return &SFTPHelperFile{h: helperFile{path: path}}
}

// Info returns where the helper belongs in a target ("/" +
// SFTPHelperPrefix + a hash of its contents), its size and its
// architecture as GOARCH names it, reading the file only when it changed.
func (f *SFTPHelperFile) Info() (targetPath string, size int64, arch string, err error) {
	info, err := f.h.info()
	if err != nil {
		return "", 0, "", err
	}
	return info.containerPath(), info.size, info.arch, nil
}

// Read reads and checks the helper, and returns its contents with what
// Info returns for them.
func (f *SFTPHelperFile) Read() (data []byte, targetPath, arch string, err error) {
	data, info, err := f.h.read()
	if err != nil {
		return nil, "", "", err
	}
	return data, info.containerPath(), info.arch, nil
}
