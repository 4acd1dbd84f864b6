//go:build remoteexec_panic

package main

import (
	"bytes"
	"io"
)

// panicWriter is the terminal's output, and panics when it holds
// PANIC-NOW: the integration test builds remote-exec with -tags
// remoteexec_panic to check that a panic restores the terminal.
type panicWriter struct{ io.Writer }

func (w panicWriter) Write(p []byte) (int, error) {
	if bytes.Contains(p, []byte("PANIC-NOW")) {
		panic("remote-exec: PANIC-NOW in the output")
	}
	return w.Writer.Write(p)
}
