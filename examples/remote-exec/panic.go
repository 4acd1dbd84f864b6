//go:build !remoteexec_panic

package main

import "io"

// panicWriter is the terminal's output. Built with -tags
// remoteexec_panic, it panics when the output holds a marker, so that a
// test sees the terminal restored after a panic in a goroutine.
type panicWriter struct{ io.Writer }
