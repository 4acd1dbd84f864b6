package main

import (
	"fmt"
	"os"
	"sync"

	"github.com/moby/term"
)

// rawTerminal is the local terminal in raw mode, restored once. A nil
// *rawTerminal (no terminal) does nothing.
type rawTerminal struct {
	fd    uintptr
	state *term.State
	once  sync.Once
}

// makeRaw puts the terminal f in raw mode: keys reach the command as
// typed (ctrl-c included, as a byte) and its output is shown as sent.
func makeRaw(f *os.File) (*rawTerminal, error) {
	state, err := term.SetRawTerminal(f.Fd())
	if err != nil {
		return nil, fmt.Errorf("raw mode for %s: %w", f.Name(), err)
	}
	return &rawTerminal{fd: f.Fd(), state: state}, nil
}

// restore puts the terminal back as it was; later calls do nothing.
func (t *rawTerminal) restore() {
	if t == nil {
		return
	}
	t.once.Do(func() { term.RestoreTerminal(t.fd, t.state) })
}

// restoreOnPanic, deferred first in every goroutine of a session,
// restores the terminal before a panic ends the program (a goroutine's
// panic skips the deferred calls of the others), then panics on.
func (t *rawTerminal) restoreOnPanic() {
	if t == nil {
		return
	}
	if r := recover(); r != nil {
		t.restore()
		panic(r)
	}
}
