// Package logtext prepares untrusted values for error messages and log
// lines.
package logtext

import "net"

// Clip returns s cut to at most n bytes, with "..." appended when it was
// cut, so that a hostile input cannot flood a message. It cuts at a byte
// boundary; callers quote the result with %q, which keeps it printable.
func Clip(s string, n int) string {
	if n < 0 {
		n = 0
	}
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}

// Addr returns a.String(), or "" for a nil address (a net.Pipe or a test
// connection may have none).
func Addr(a net.Addr) string {
	if a == nil {
		return ""
	}
	return a.String()
}
