package procscript

import (
	"fmt"
	"testing"
	"time"
)

func TestParseReports(t *testing.T) {
	for _, tt := range []struct {
		out   string
		pid   int
		found bool
		ok    bool
	}{
		{"dockssh-signal sent 12\n", 12, true, true},
		{"noise\ndockssh-signal sent 12\r\n", 12, true, true},
		{"dockssh-signal none\n", 0, false, true},
		{"dockssh-signal sent\n", 0, false, false},
		{"dockssh-signal sent -1\n", 0, false, false},
		{"dockssh-signal sent +1\n", 0, false, false},
		{"dockssh-signal sent 99999999999\n", 0, false, false},
		{"OCI runtime exec failed\n", 0, false, false},
		{"", 0, false, false},
	} {
		pid, found, err := ParseSignalReport(tt.out)
		if (err == nil) != tt.ok || pid != tt.pid || found != tt.found {
			t.Errorf("ParseSignalReport(%q) = %d, %v, %v; want %d, %v, ok=%v", tt.out, pid, found, err, tt.pid, tt.found, tt.ok)
		}
	}
	for _, tt := range []struct {
		out  string
		want ReapReport
		ok   bool
	}{
		{"dockssh-reap 3 1 0\n", ReapReport{3, 1, 0}, true},
		{"dockssh-reap 0 0 0\n", ReapReport{}, true},
		{"dockssh-reap 1 2\n", ReapReport{}, false},
		{"dockssh-reap a b c\n", ReapReport{}, false},
		{"sh: kill: bad\n", ReapReport{}, false},
	} {
		got, err := ParseReapReport(tt.out)
		if (err == nil) != tt.ok || got != tt.want {
			t.Errorf("ParseReapReport(%q) = %+v, %v; want %+v, ok=%v", tt.out, got, err, tt.want, tt.ok)
		}
	}
}

func FuzzParseReports(f *testing.F) {
	for _, s := range []string{
		"dockssh-signal sent 12\n", "dockssh-signal none\n", "dockssh-reap 3 1 0\n",
		"OCI runtime exec failed: exec failed: unable to start container process\r\n",
		"x\ndockssh-reap 1 1 1", "dockssh-signal sent 0x10",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, out string) {
		if pid, found, err := ParseSignalReport(out); err != nil && (pid != 0 || found) {
			t.Errorf("ParseSignalReport(%q) = %d, %v with error %v", out, pid, found, err)
		} else if pid < 0 {
			t.Errorf("ParseSignalReport(%q) = negative PID %d", out, pid)
		}
		r, err := ParseReapReport(out)
		if err == nil {
			if r.Found < 0 || r.Killed < 0 || r.Left < 0 {
				t.Errorf("ParseReapReport(%q) = %+v: negative", out, r)
			}
			back, err := ParseReapReport(fmt.Sprintf("dockssh-reap %d %d %d\n", r.Found, r.Killed, r.Left))
			if err != nil || back != r {
				t.Errorf("round trip of %+v = %+v, %v", r, back, err)
			}
		} else if r != (ReapReport{}) {
			t.Errorf("ParseReapReport(%q) = %+v with error %v", out, r, err)
		}
	})
}

func TestReapArgvRoundsGraceUp(t *testing.T) {
	for _, tt := range []struct {
		grace time.Duration
		want  string
	}{{1500 * time.Millisecond, "150"}, {time.Millisecond, "1"}, {0, "0"}, {2 * time.Second, "200"}} {
		if got := ReapArgv("M=1", tt.grace)[5]; got != tt.want {
			t.Errorf("ReapArgv(%v) grace = %s, want %s hundredths", tt.grace, got, tt.want)
		}
	}
}
