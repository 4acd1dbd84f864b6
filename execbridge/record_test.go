package execbridge

import (
	"bufio"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestRecording(t *testing.T) {
	for _, input := range []bool{false, true} {
		t.Run(map[bool]string{false: "output only", true: "with input"}[input], func(t *testing.T) {
			dir := t.TempDir()
			resized := make(chan struct{})
			e := newTestEnv(t, func(p *fakeProc) error {
				buf := make([]byte, 3)
				p.stdinR.Read(buf) // wait for the user's keystrokes
				// "é" is two bytes; split it across two writes.
				p.stdoutW.Write([]byte("h\xc3"))
				p.stdoutW.Write([]byte("\xa9llo\r\n"))
				<-resized
				return nil
			}, envOpts{config: func(c *Config) { c.Recording = &Recording{Dir: dir, Input: input} }})
			s := e.session(t, e.dial(t, "alice"))
			stdin, err := s.StdinPipe()
			if err != nil {
				t.Fatal(err)
			}
			if err := s.RequestPty("xterm", 24, 80, nil); err != nil {
				t.Fatal(err)
			}
			if err := s.Shell(); err != nil {
				t.Fatal(err)
			}
			p := e.backend.next(t)
			stdin.Write([]byte("pw\n"))
			if err := s.WindowChange(30, 100); err != nil {
				t.Fatal(err)
			}
			<-p.resizes
			close(resized)
			if err := s.Wait(); err != nil {
				t.Fatal(err)
			}
			e.logs.waitLog(t, `"msg":"execbridge: session"`)

			files, _ := filepath.Glob(filepath.Join(dir, "*.cast"))
			if len(files) != 1 {
				t.Fatalf("recordings: %q, want one", files)
			}
			fi, _ := os.Stat(files[0])
			if fi.Mode().Perm() != 0o600 {
				t.Errorf("recording mode %v, want 0600", fi.Mode().Perm())
			}
			f, _ := os.Open(files[0])
			defer f.Close()
			sc := bufio.NewScanner(f)
			sc.Scan()
			var header map[string]any
			if err := json.Unmarshal(sc.Bytes(), &header); err != nil || header["version"] != 2.0 || header["width"] != 80.0 || header["height"] != 24.0 {
				t.Errorf("header %s: %v", sc.Bytes(), err)
			}
			var out, in strings.Builder
			resizes := 0
			last := -1.0
			for sc.Scan() {
				var ev []any
				if err := json.Unmarshal(sc.Bytes(), &ev); err != nil || len(ev) != 3 {
					t.Fatalf("event %s: %v", sc.Bytes(), err)
				}
				ts := ev[0].(float64)
				if ts < last {
					t.Errorf("time goes back: %v after %v", ts, last)
				}
				last = ts
				switch ev[1] {
				case "o":
					out.WriteString(ev[2].(string))
				case "i":
					in.WriteString(ev[2].(string))
				case "r":
					resizes++
					if ev[2] != "100x30" {
						t.Errorf("resize event %q, want 100x30", ev[2])
					}
				}
			}
			if out.String() != "héllo\r\n" {
				t.Errorf("recorded output %q, want %q", out.String(), "héllo\r\n")
			}
			if resizes != 1 {
				t.Errorf("%d resize events, want 1", resizes)
			}
			if want := map[bool]string{false: "", true: "pw\n"}[input]; in.String() != want {
				t.Errorf("recorded input %q, want %q", in.String(), want)
			}
		})
	}
}

func TestRecordingDirMustExist(t *testing.T) {
	_, err := New(&Config{Backend: newFakeBackend(nil), Resolver: &fixedResolver{}, Recording: &Recording{Dir: filepath.Join(t.TempDir(), "missing")}})
	if err == nil {
		t.Errorf("New with a missing recording directory = nil error")
	}
}

func TestFileSafe(t *testing.T) {
	for in, want := range map[string]string{"alice": "alice", "../../etc": "_.._.._etc", "": "_", "a b/c": "a_b_c"} {
		if got := fileSafe(in); got != want {
			t.Errorf("fileSafe(%q) = %q, want %q", in, got, want)
		}
	}
}
