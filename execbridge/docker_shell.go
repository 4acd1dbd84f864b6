package execbridge

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"sync"

	"github.com/moby/moby/client"
)

// maxShellLinks bounds the symbolic links followed to find a shell.
const maxShellLinks = 8

// Shell returns /bin/bash (or /usr/bin/bash) when target has bash, else
// /bin/sh, and remembers the answer per container (up to 1024
// containers). It asks the engine to stat the paths (a HEAD request each;
// no exec), and follows a symbolic link to check that its target is an
// executable file. It fails when the container has neither, as an image
// built FROM scratch without a shell.
func (b *DockerBackend) Shell(ctx context.Context, target Target) (string, error) {
	ref := containerRef(target)
	if ref == "" {
		return "", errors.New("execbridge: find a shell: the target names no container")
	}
	key := target.Endpoint + "\x00" + ref
	if sh, ok := b.shells.get(key); ok {
		return sh, nil
	}
	var last error
	for _, sh := range []string{"/bin/bash", "/usr/bin/bash", "/bin/sh"} {
		err := b.executable(ctx, ref, sh)
		if err == nil {
			b.shells.put(key, sh)
			return sh, nil
		}
		if ctx.Err() != nil {
			return "", fmt.Errorf("execbridge: find a shell in %s: %w", target, engineError(ctx.Err()))
		}
		if err := engineError(err); errors.Is(err, ErrUnavailable) {
			return "", fmt.Errorf("execbridge: find a shell in %s: %w", target, err)
		}
		last = err
	}
	return "", fmt.Errorf("execbridge: container %s has no shell: neither /bin/bash, /usr/bin/bash nor /bin/sh is an executable file: %w", target, last)
}

// executable returns nil when name is an executable file in container ref,
// following symbolic links. The engine resolves links in the directories
// of a path (Debian's /bin -> usr/bin) but not in its last element, whose
// target it reports.
func (b *DockerBackend) executable(ctx context.Context, ref, name string) error {
	p := name
	for range maxShellLinks {
		st, err := b.c.ContainerStatPath(ctx, ref, client.ContainerStatPathOptions{Path: p})
		if err != nil {
			return fmt.Errorf("stat %s: %w", p, err)
		}
		mode := st.Stat.Mode
		switch {
		case mode&fs.ModeSymlink != 0:
			if st.Stat.LinkTarget == "" {
				return fmt.Errorf("%s: a symbolic link without a target", p)
			}
			next := st.Stat.LinkTarget
			if !path.IsAbs(next) {
				next = path.Join(path.Dir(p), next)
			}
			p = next
		case mode.IsRegular() && mode.Perm()&0o111 != 0:
			return nil
		default:
			return fmt.Errorf("%s is not an executable file (%v)", p, mode)
		}
	}
	return fmt.Errorf("%s: more than %d symbolic links", name, maxShellLinks)
}

// shellCache remembers the shell of up to shellCacheMax containers. When
// full, it forgets an arbitrary entry: a miss costs a few HEAD requests.
type shellCache struct {
	mu sync.Mutex        // guards m
	m  map[string]string // endpoint NUL container -> shell path
}

func (c *shellCache) get(key string) (string, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	sh, ok := c.m[key]
	return sh, ok
}

func (c *shellCache) put(key, sh string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = make(map[string]string)
	}
	if _, ok := c.m[key]; !ok && len(c.m) >= shellCacheMax {
		for k := range c.m {
			delete(c.m, k)
			break
		}
	}
	c.m[key] = sh
}

func (c *shellCache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.m)
}
