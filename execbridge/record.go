package execbridge

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"
	"unicode/utf8"
)

// Recording configures asciicast v2 recordings of terminal sessions
// (https://docs.asciinema.org/manual/asciicast/v2/), replayable with
// `asciinema play` and the asciinema web player. Only sessions with a
// terminal are recorded: a command without one is a data transfer, not a
// screen.
type Recording struct {
	// Dir is the directory the recordings are written to, one file per
	// session, named "<UTC time>-<login>-<container>-<n>.cast", with mode
	// 0600. It must exist. Required.
	Dir string

	// Input also records what the user typed ("i" events). It holds
	// passwords typed at prompts, so it is off unless set.
	Input bool
}

// recorder writes one asciicast v2 file. Its methods are safe for
// concurrent use (output and input arrive on different goroutines).
type recorder struct {
	mu    sync.Mutex // guards the fields below
	f     *os.File
	w     *bufio.Writer
	start time.Time
	now   func() time.Time
	input bool
	// pending holds the start of a UTF-8 sequence split across reads, per
	// stream, so that events carry whole characters.
	pendingOut, pendingIn []byte
	err                   error
	closed                bool
}

// newRecorder creates the recording file of a session; n makes its name
// unique within the Bridge.
func newRecorder(cfg *Recording, now func() time.Time, n uint64, login, target, term string, rows, cols int) (*recorder, error) {
	t := now()
	name := fmt.Sprintf("%s-%s-%s-%d.cast", t.UTC().Format("20060102T150405Z"), fileSafe(login), fileSafe(target), n)
	f, err := os.OpenFile(filepath.Join(cfg.Dir, name), os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, fmt.Errorf("execbridge: recording: %w", err)
	}
	r := &recorder{f: f, w: bufio.NewWriter(f), start: t, now: now, input: cfg.Input}
	header := struct {
		Version   int               `json:"version"`
		Width     int               `json:"width"`
		Height    int               `json:"height"`
		Timestamp int64             `json:"timestamp"`
		Title     string            `json:"title,omitempty"`
		Env       map[string]string `json:"env,omitempty"`
	}{2, max(cols, 1), max(rows, 1), t.Unix(), login + "@" + target, map[string]string{"TERM": term}}
	r.line(header)
	return r, r.err
}

// line writes one JSON line. Call with r.mu held (or before sharing r).
func (r *recorder) line(v any) {
	if r.err != nil || r.closed {
		return
	}
	b, err := json.Marshal(v)
	if err == nil {
		b = append(b, '\n')
		_, err = r.w.Write(b)
	}
	r.err = err
}

func (r *recorder) event(kind string, pending *[]byte, p []byte) {
	r.mu.Lock()
	defer r.mu.Unlock()
	data := append(*pending, p...)
	// Keep an incomplete UTF-8 sequence at the end for the next event.
	cut := len(data)
	for i := len(data) - 1; i >= 0 && i >= len(data)-utf8.UTFMax; i-- {
		if utf8.RuneStart(data[i]) {
			if !utf8.FullRune(data[i:]) {
				cut = i
			}
			break
		}
	}
	*pending = append([]byte(nil), data[cut:]...)
	if cut == 0 {
		return
	}
	t := r.now().Sub(r.start).Seconds()
	// json.Marshal turns bytes that are not UTF-8 into U+FFFD, as
	// asciinema does when it records.
	r.line([]any{float64(int64(t*1e6)) / 1e6, kind, string(data[:cut])})
}

func (r *recorder) output(p []byte) { r.event("o", &r.pendingOut, p) }

func (r *recorder) inputEvent(p []byte) {
	if r.input {
		r.event("i", &r.pendingIn, p)
	}
}

func (r *recorder) resize(rows, cols int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	t := r.now().Sub(r.start).Seconds()
	r.line([]any{float64(int64(t*1e6)) / 1e6, "r", fmt.Sprintf("%dx%d", cols, rows)})
}

// Close flushes and closes the file; later events are dropped (the
// client's stdin may still deliver keystrokes after the process ended).
func (r *recorder) Close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return r.err
	}
	r.closed = true
	if err := r.w.Flush(); r.err == nil {
		r.err = err
	}
	if err := r.f.Close(); r.err == nil {
		r.err = err
	}
	return r.err
}

// teeWriter shows writes to fn, then passes them on to w. Showing first
// keeps the recording in order with what the write causes (the process's
// echo of typed input), whenever the writer's goroutine gets to run.
type teeWriter struct {
	w  io.Writer
	fn func([]byte)
}

func (t teeWriter) Write(p []byte) (int, error) {
	t.fn(p)
	return t.w.Write(p)
}

// fileSafe keeps a name usable in a file name.
func fileSafe(s string) string {
	s = strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.' {
			return r
		}
		return '_'
	}, s)
	if len(s) > 64 {
		s = s[:64]
	}
	if s == "" || s[0] == '.' {
		s = "_" + s
	}
	return s
}
