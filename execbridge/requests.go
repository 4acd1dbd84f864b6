package execbridge

import (
	"errors"
	"fmt"

	"golang.org/x/crypto/ssh"
)

// Payloads of the session requests of RFC 4254, section 6, parsed from
// bytes that a client chose: every parser bounds what it accepts.

// maxCommandLen bounds an exec command. sshd has no limit of its own, but
// the packet size (256 KiB at most in x/crypto) bounds it; Linux accepts
// 128 KiB per argument.
const maxCommandLen = 128 << 10

// maxTermLen bounds the TERM name of a pty-req; terminfo names are short.
const maxTermLen = 256

// maxWindow bounds terminal dimensions: 0 means "unknown" in RFC 4254, and
// no real terminal is wider or taller than this many characters.
const maxWindow = 10000

// ptyRequest is "pty-req" (RFC 4254, section 6.2).
type ptyRequest struct {
	Term          string
	Cols, Rows    uint32
	Width, Height uint32 // pixels; unused
	Modes         string // encoded terminal modes; unused (the engine sets none)
}

// windowChange is "window-change" (section 6.7).
type windowChange struct {
	Cols, Rows    uint32
	Width, Height uint32
}

// envRequest is "env" (section 6.4).
type envRequest struct {
	Name, Value string
}

// execRequest is "exec" (section 6.5); "subsystem" has the same shape.
type execRequest struct {
	Command string
}

// signalRequest is "signal" (section 6.9).
type signalRequest struct {
	Signal string
}

// exitStatus is "exit-status" (section 6.10).
type exitStatus struct {
	Status uint32
}

// exitSignal is "exit-signal" (section 6.10).
type exitSignal struct {
	Signal     string
	CoreDumped bool
	Message    string
	Lang       string
}

var errBadPayload = errors.New("execbridge: malformed request payload")

func parsePTY(p []byte) (ptyRequest, error) {
	var r ptyRequest
	if err := ssh.Unmarshal(p, &r); err != nil {
		return r, errBadPayload
	}
	if len(r.Term) > maxTermLen || !printable(r.Term) {
		return r, fmt.Errorf("execbridge: pty-req: unusable terminal name")
	}
	r.Cols, r.Rows = clampWindow(r.Cols), clampWindow(r.Rows)
	return r, nil
}

func parseWindowChange(p []byte) (windowChange, error) {
	var r windowChange
	if err := ssh.Unmarshal(p, &r); err != nil {
		return r, errBadPayload
	}
	r.Cols, r.Rows = clampWindow(r.Cols), clampWindow(r.Rows)
	return r, nil
}

func parseEnv(p []byte) (envRequest, error) {
	var r envRequest
	if err := ssh.Unmarshal(p, &r); err != nil {
		return r, errBadPayload
	}
	return r, nil
}

func parseExec(p []byte) (string, error) {
	var r execRequest
	if err := ssh.Unmarshal(p, &r); err != nil {
		return "", errBadPayload
	}
	if len(r.Command) > maxCommandLen {
		return "", fmt.Errorf("execbridge: command longer than %d bytes", maxCommandLen)
	}
	return r.Command, nil
}

func parseSignal(p []byte) (string, error) {
	var r signalRequest
	if err := ssh.Unmarshal(p, &r); err != nil {
		return "", errBadPayload
	}
	return r.Signal, nil
}

func clampWindow(v uint32) uint32 {
	return min(v, maxWindow)
}

// printable reports whether s holds only printable ASCII, as terminal
// names do.
func printable(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x21 || s[i] > 0x7e {
			return false
		}
	}
	return true
}
