package execbridge

import (
	"strings"
	"testing"

	"golang.org/x/crypto/ssh"
)

func TestParsePTY(t *testing.T) {
	p := ssh.Marshal(ptyRequest{Term: "xterm-256color", Cols: 120, Rows: 40})
	r, err := parsePTY(p)
	if err != nil || r.Term != "xterm-256color" || r.Cols != 120 || r.Rows != 40 {
		t.Errorf("parsePTY(xterm 120x40) = %+v, %v", r, err)
	}
	r, err = parsePTY(ssh.Marshal(ptyRequest{Term: "vt100", Cols: 1 << 31, Rows: 5}))
	if err != nil || r.Cols != maxWindow {
		t.Errorf("parsePTY(huge cols) = %+v, %v, want cols clamped to %d", r, err, maxWindow)
	}
	for _, term := range []string{"xterm\x1b]0;pwn\x07", strings.Repeat("x", maxTermLen+1), "a b"} {
		if _, err := parsePTY(ssh.Marshal(ptyRequest{Term: term})); err == nil {
			t.Errorf("parsePTY(term %q) = nil error, want refusal", term)
		}
	}
	if _, err := parsePTY([]byte{0, 0, 0, 9, 'x'}); err == nil {
		t.Errorf("parsePTY(truncated) = nil error")
	}
}

func TestParseExec(t *testing.T) {
	if c, err := parseExec(ssh.Marshal(execRequest{"echo hi"})); err != nil || c != "echo hi" {
		t.Errorf("parseExec(echo hi) = %q, %v", c, err)
	}
	if _, err := parseExec(ssh.Marshal(execRequest{strings.Repeat("x", maxCommandLen+1)})); err == nil {
		t.Errorf("parseExec(too long) = nil error")
	}
	if _, err := parseExec(append(ssh.Marshal(execRequest{"ls"}), 'x')); err == nil {
		t.Errorf("parseExec(trailing junk) = nil error")
	}
}

// FuzzRequestPayloads feeds every session request parser the same hostile
// bytes: none may panic, and what they accept stays within the bounds.
func FuzzRequestPayloads(f *testing.F) {
	f.Add(ssh.Marshal(ptyRequest{Term: "xterm", Cols: 80, Rows: 24}))
	f.Add(ssh.Marshal(windowChange{Cols: 100, Rows: 30}))
	f.Add(ssh.Marshal(envRequest{"LANG", "C.UTF-8"}))
	f.Add(ssh.Marshal(execRequest{"uname -a"}))
	f.Add(ssh.Marshal(signalRequest{"TERM"}))
	f.Add([]byte{0xff, 0xff, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, p []byte) {
		if r, err := parsePTY(p); err == nil && (r.Cols > maxWindow || r.Rows > maxWindow || len(r.Term) > maxTermLen) {
			t.Errorf("parsePTY accepted out-of-bounds %+v", r)
		}
		if r, err := parseWindowChange(p); err == nil && (r.Cols > maxWindow || r.Rows > maxWindow) {
			t.Errorf("parseWindowChange accepted out-of-bounds %+v", r)
		}
		parseEnv(p)
		if c, err := parseExec(p); err == nil && len(c) > maxCommandLen {
			t.Errorf("parseExec accepted %d bytes", len(c))
		}
		parseSignal(p)
	})
}
