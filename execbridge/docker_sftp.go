package execbridge

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"path"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/moby/moby/client"

	"github.com/dockssh/dockssh/execbridge/sftphelper"
)

// DockerCopyClient is the part of the Engine API client that copying the
// SFTP helper into a container needs, besides DockerClient: the container's
// image (for its architecture and PATH) and the copy itself.
// *client.Client implements it. DockerConfig.SFTPHelper works only with a
// DockerClient that also implements DockerCopyClient.
type DockerCopyClient interface {
	ContainerInspect(ctx context.Context, containerID string, options client.ContainerInspectOptions) (client.ContainerInspectResult, error)
	ImageInspect(ctx context.Context, imageID string, options ...client.ImageInspectOption) (client.ImageInspectResult, error)
	CopyToContainer(ctx context.Context, containerID string, options client.CopyToContainerOptions) (client.CopyToContainerResult, error)
}

// SFTPServerPaths are where images keep OpenSSH's sftp-server, in the
// order Subsystem looks: Debian and Ubuntu, Alpine and Arch, Fedora and
// RHEL, then the build defaults of other distributions.
func SFTPServerPaths() []string {
	return []string{
		"/usr/lib/openssh/sftp-server",
		"/usr/lib/ssh/sftp-server",
		"/usr/libexec/openssh/sftp-server",
		"/usr/libexec/sftp-server",
		"/usr/lib/sftp-server",
	}
}

// SFTPHelperPrefix starts the name of the SFTP helper in a container:
// the helper is "/" + SFTPHelperPrefix + the first 16 hex digits of its
// SHA-256.
const SFTPHelperPrefix = ".dockssh-sftp-"

// ErrProgramNotFound is what LookPath returns (wrapped) when no directory
// of the container's PATH holds the program.
var ErrProgramNotFound = errors.New("execbridge: program not found")

const (
	// noSFTPServer marks, in the cache of SFTP servers, a container that
	// has none.
	noSFTPServer = "-"
	// defaultPath is the PATH LookPath searches when the container's
	// configuration sets none (Docker's default for Linux containers).
	defaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
	// maxConcurrentCopies bounds the helper copies in flight, each of
	// which holds the helper in memory.
	maxConcurrentCopies = 4
)

// dockerSFTP is the SFTP state of a DockerBackend.
type dockerSFTP struct {
	helper helperFile
	// servers caches, per container, the path of its sftp-server or
	// noSFTPServer; arches caches its image's architecture.
	servers, arches shellCache
	copies          chan struct{} // a slot per copy in flight

	mu      sync.Mutex               // guards copying
	copying map[string]chan struct{} // container key -> closed when its copy ended
}

func newDockerSFTP(helperPath string) dockerSFTP {
	return dockerSFTP{helper: helperFile{path: helperPath}, copies: make(chan struct{}, maxConcurrentCopies)}
}

var _ SubsystemBackend = (*DockerBackend)(nil)

// Subsystem serves the "sftp" subsystem; any other name is an error.
//
// When the container has OpenSSH's sftp-server (in one of SFTPServerPaths,
// found by stat requests and remembered per container), Subsystem returns
// it with "-d %d", so that it starts in the user's home directory as under
// sshd. sftp-server needs an /etc/passwd entry for the user it runs as.
//
// Otherwise, when DockerConfig.SFTPHelper names a helper, it is copied
// into the container on first use (see DockerConfig.SFTPHelper) and
// Subsystem returns it with sftphelper.Arg. Either way the server runs as
// user, so the kernel in the container enforces that user's permissions.
//
// A container that can be served neither way gets a *TargetError that
// says why.
func (b *DockerBackend) Subsystem(ctx context.Context, target Target, name, user string) ([]string, error) {
	if name != "sftp" {
		return nil, &TargetError{Reason: fmt.Sprintf("the subsystem %q is not served", name)}
	}
	ref := containerRef(target)
	if ref == "" {
		return nil, errors.New("execbridge: sftp: the target names no container")
	}
	key := target.Endpoint + "\x00" + ref
	server, err := b.sftpServer(ctx, key, ref)
	if err != nil {
		return nil, fmt.Errorf("execbridge: find an sftp-server in %s: %w", target, engineError(err))
	}
	if server != "" {
		// sftp-server expands %d to the home directory of its user.
		return []string{server, "-d", "%d"}, nil
	}
	helper, err := b.installHelper(ctx, key, ref)
	if err != nil {
		if ctx.Err() != nil {
			return nil, fmt.Errorf("execbridge: copy the SFTP helper into %s: %w", target, ctx.Err())
		}
		return nil, err
	}
	return []string{helper, sftphelper.Arg}, nil
}

// sftpServer returns the path of the container's sftp-server, or "" when
// it has none.
func (b *DockerBackend) sftpServer(ctx context.Context, key, ref string) (string, error) {
	if p, ok := b.sftp.servers.get(key); ok {
		if p == noSFTPServer {
			return "", nil
		}
		return p, nil
	}
	for _, p := range SFTPServerPaths() {
		if b.executable(ctx, ref, p) == nil {
			b.sftp.servers.put(key, p)
			return p, nil
		}
		if err := ctx.Err(); err != nil {
			return "", err
		}
	}
	// Remembered only once the helper is in place: a container that
	// cannot be served is asked again next time.
	return "", nil
}

// installHelper makes sure the helper is in the container and returns its
// path there.
func (b *DockerBackend) installHelper(ctx context.Context, key, ref string) (string, error) {
	if b.sftp.helper.path == "" {
		return "", &TargetError{Reason: "it has no sftp-server, and this server has no SFTP helper to copy into it"}
	}
	cc, ok := b.c.(DockerCopyClient)
	if !ok {
		return "", &TargetError{Reason: "it has no sftp-server, and the SFTP helper cannot be copied into it",
			Err: errors.New("the Docker client implements no DockerCopyClient")}
	}
	info, err := b.sftp.helper.info()
	if err != nil {
		return "", &TargetError{Reason: "it has no sftp-server, and the SFTP helper of this server is unusable", Err: err}
	}
	arch, err := b.helperTarget(ctx, cc, key, ref)
	if err != nil {
		var se *TargetError
		if errors.As(err, &se) {
			return "", err
		}
		return "", &TargetError{Reason: "it has no sftp-server, and the architecture of its image is unknown", Err: err}
	}
	if arch != info.arch {
		return "", &TargetError{Reason: fmt.Sprintf("it has no sftp-server, and the SFTP helper of this server is built for %s, not %s", info.arch, arch)}
	}

	// One copy per container at a time: a second session waits for the
	// first's copy, then finds the helper in place.
	release, err := b.sftp.lockContainer(ctx, key)
	if err != nil {
		return "", err
	}
	defer release()
	dst := info.containerPath()
	if b.helperInPlace(ctx, ref, dst, info.size) {
		b.sftp.servers.put(key, noSFTPServer)
		return dst, nil
	}
	if err := ctx.Err(); err != nil {
		return "", err
	}

	select {
	case b.sftp.copies <- struct{}{}:
		defer func() { <-b.sftp.copies }()
	case <-ctx.Done():
		return "", ctx.Err()
	}
	// What is copied is read now and checked again: the file may have
	// changed since info, and the name must match the contents.
	data, info, err := b.sftp.helper.read()
	if err != nil {
		return "", &TargetError{Reason: "it has no sftp-server, and the SFTP helper of this server is unusable", Err: err}
	}
	if info.arch != arch {
		return "", &TargetError{Reason: fmt.Sprintf("it has no sftp-server, and the SFTP helper of this server is built for %s, not %s", info.arch, arch)}
	}
	dst = info.containerPath()
	archive, err := helperArchive(path.Base(dst), data)
	if err != nil {
		return "", fmt.Errorf("execbridge: archive the SFTP helper: %w", err)
	}
	if _, err := cc.CopyToContainer(ctx, ref, client.CopyToContainerOptions{
		DestinationPath: path.Dir(dst),
		Content:         bytes.NewReader(archive),
	}); err != nil {
		return "", &TargetError{Reason: "it has no sftp-server, and the SFTP helper could not be copied into it (is its root file system read-only?)", Err: err}
	}
	b.sftp.servers.put(key, noSFTPServer)
	return dst, nil
}

// helperInPlace reports whether the container holds the helper at dst: a
// regular file of the expected size, root's (it was copied by the engine)
// and writable by root alone. A copy cut short has another size; one
// whose mode was changed is copied again.
func (b *DockerBackend) helperInPlace(ctx context.Context, ref, dst string, size int64) bool {
	st, err := b.c.ContainerStatPath(ctx, ref, client.ContainerStatPathOptions{Path: dst})
	return err == nil && st.Stat.Mode.IsRegular() && st.Stat.Mode.Perm() == 0o755 && st.Stat.Size == size
}

// helperTarget returns the architecture of the container's image, as
// GOARCH names it ("amd64", "arm64"), once it checked that the container's
// root directory is writable by root alone, which keeps the helper there
// out of other users' reach (a *TargetError when it is not). The
// answer is remembered per container.
func (b *DockerBackend) helperTarget(ctx context.Context, cc DockerCopyClient, key, ref string) (string, error) {
	if a, ok := b.sftp.arches.get(key); ok {
		return a, nil
	}
	ci, err := cc.ContainerInspect(ctx, ref, client.ContainerInspectOptions{})
	if err != nil {
		return "", fmt.Errorf("inspect the container: %w", err)
	}
	ii, err := cc.ImageInspect(ctx, ci.Container.Image)
	if err != nil {
		return "", fmt.Errorf("inspect its image %s: %w", ci.Container.Image, err)
	}
	if ii.Os != "" && ii.Os != "linux" {
		return "", fmt.Errorf("its image is for %s, not linux", ii.Os)
	}
	root, err := b.c.ContainerStatPath(ctx, ref, client.ContainerStatPathOptions{Path: "/"})
	if err != nil {
		return "", fmt.Errorf("stat its root directory: %w", err)
	}
	if root.Stat.Mode.Perm()&0o022 != 0 {
		return "", &TargetError{
			Reason: "it has no sftp-server, and its root directory is writable by other users than root, so the SFTP helper cannot be kept there safely",
			Err:    fmt.Errorf("mode of /: %v", root.Stat.Mode),
		}
	}
	arch := ii.Architecture
	b.sftp.arches.put(key, arch)
	return arch, nil
}

// lockContainer waits until no other session copies the helper into the
// container key, and returns the function that lets the next one in.
func (s *dockerSFTP) lockContainer(ctx context.Context, key string) (release func(), err error) {
	for {
		s.mu.Lock()
		busy, ok := s.copying[key]
		if !ok {
			if s.copying == nil {
				s.copying = make(map[string]chan struct{})
			}
			done := make(chan struct{})
			s.copying[key] = done
			s.mu.Unlock()
			return func() {
				s.mu.Lock()
				delete(s.copying, key)
				s.mu.Unlock()
				close(done)
			}, nil
		}
		s.mu.Unlock()
		select {
		case <-busy:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// helperArchive returns a tar archive holding data as the executable file
// name, root's, mode 0755.
func helperArchive(name string, data []byte) ([]byte, error) {
	var buf bytes.Buffer
	buf.Grow(len(data) + 2048)
	tw := tar.NewWriter(&buf)
	if err := tw.WriteHeader(&tar.Header{
		Typeflag: tar.TypeReg,
		Name:     name,
		Mode:     0o755,
		Size:     int64(len(data)),
		ModTime:  time.Now(), // when it was copied, for whoever lists the directory
		Format:   tar.FormatPAX,
	}); err != nil {
		return nil, err
	}
	if _, err := tw.Write(data); err != nil {
		return nil, err
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// LookPath returns the absolute path of the program name in target's
// container, searched as its shell would: in the directories of the PATH
// in the container's configuration (Docker's default PATH when it sets
// none, or when the client cannot inspect containers), taking the first
// executable file, after symbolic links, named name. A name with a slash
// is checked as it is. The error wraps ErrProgramNotFound when no
// directory has it.
//
// A session can ask before it runs a command that needs a program, such
// as legacy scp ("scp -t"), to tell the user what is missing.
func (b *DockerBackend) LookPath(ctx context.Context, target Target, name string) (string, error) {
	ref := containerRef(target)
	if ref == "" {
		return "", errors.New("execbridge: look up a program: the target names no container")
	}
	if name == "" {
		return "", fmt.Errorf("execbridge: look up a program in %s: empty name: %w", target, ErrProgramNotFound)
	}
	if strings.Contains(name, "/") {
		if !path.IsAbs(name) {
			return "", fmt.Errorf("execbridge: look up %q in %s: a relative path: %w", name, target, ErrProgramNotFound)
		}
		if err := b.executable(ctx, ref, name); err != nil {
			return "", fmt.Errorf("execbridge: look up %q in %s: %w: %w", name, target, ErrProgramNotFound, err)
		}
		return name, nil
	}
	search := defaultPath
	if cc, ok := b.c.(DockerCopyClient); ok {
		ci, err := cc.ContainerInspect(ctx, ref, client.ContainerInspectOptions{})
		if err != nil {
			return "", fmt.Errorf("execbridge: look up %q in %s: inspect the container: %w", name, target, err)
		}
		if ci.Container.Config != nil {
			for _, kv := range ci.Container.Config.Env {
				if v, ok := strings.CutPrefix(kv, "PATH="); ok {
					search = v
				}
			}
		}
	}
	for dir := range strings.SplitSeq(search, ":") {
		if !path.IsAbs(dir) {
			continue // the shell would look relative to its working directory; no safe answer here
		}
		p := path.Join(dir, name)
		if b.executable(ctx, ref, p) == nil {
			return p, nil
		}
		if err := ctx.Err(); err != nil {
			return "", fmt.Errorf("execbridge: look up %q in %s: %w", name, target, err)
		}
	}
	return "", fmt.Errorf("execbridge: look up %q in %s: not in PATH %s: %w", name, target, strconv.Quote(search), ErrProgramNotFound)
}
