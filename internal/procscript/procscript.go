// Package procscript holds the shell scripts that signal and end the
// processes of a session inside a container, found by a marker in their
// environment, for engines whose exec API cannot signal what it started
// (the Docker Engine's, Kubernetes' pod exec). A backend runs them with a
// second exec, as the process's user.
package procscript

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/dockssh/dockssh/internal/logtext"
)

// SignalArgv is the command that delivers signal sig (a name SignalNumber
// knows) to the process whose environment holds the line marker
// ("NAME=value") and whose parent is outside the container's PID
// namespace; failing that, the process with PID hint (0: none).
func SignalArgv(marker, sig string, hint int) []string {
	return []string{"/bin/sh", "-c", SignalScript, "dockssh-signal", marker, sig, strconv.Itoa(hint)}
}

// ReapArgv is the command that ends every process whose environment holds
// the line marker, and every process in their sessions: hangup, then
// termination, then after grace a kill.
func ReapArgv(marker string, grace time.Duration) []string {
	hundredths := int((grace + 9*time.Millisecond) / (10 * time.Millisecond))
	return []string{"/bin/sh", "-c", ReapScript, "dockssh-reap", marker, strconv.Itoa(hundredths)}
}

// SignalNumber returns the number of the signal named as in RFC 4254
// section 6.10 (without "SIG"), as Linux numbers it on x86 and ARM, and
// whether name is one of them. The list is fixed: a name from the network
// is checked here before it gets anywhere near a shell.
func SignalNumber(name string) (int, bool) {
	switch name {
	case "HUP":
		return 1, true
	case "INT":
		return 2, true
	case "QUIT":
		return 3, true
	case "ILL":
		return 4, true
	case "ABRT":
		return 6, true
	case "FPE":
		return 8, true
	case "KILL":
		return 9, true
	case "USR1":
		return 10, true
	case "SEGV":
		return 11, true
	case "USR2":
		return 12, true
	case "PIPE":
		return 13, true
	case "ALRM":
		return 14, true
	case "TERM":
		return 15, true
	}
	return 0, false
}

// The helper scripts run as `/bin/sh -c SCRIPT NAME ARGS...`. They are
// constants: every value (the marker, a signal name from the allow-list,
// numbers) arrives as a positional parameter, never as script text. They
// need a POSIX sh, grep (-z, or tr) and kill, which busybox has.

// helperPrelude stops at once, without a report, when grep is missing
// (the scan would find nothing and look like success). It defines marked, which prints /proc/PID/environ for every
// process whose environment holds the line in $m, and pstat, which sets S
// (state), PP (parent PID) and SID (session ID) from /proc/PID/stat (its
// command name may hold spaces and parentheses, so fields are counted from
// the last ")").
const helperPrelude = `
command -v grep >/dev/null 2>&1 || { echo "dockssh-helper: no grep in the container"; exit 1; }
if printf 'x\0' | grep -qzxF x 2>/dev/null; then
	marked() { grep -lzxF -e "$m" /proc/[0-9]*/environ 2>/dev/null; }
else
	marked() {
		for f in /proc/[0-9]*/environ; do
			tr '\0' '\n' <"$f" 2>/dev/null | grep -qxF -e "$m" && echo "$f"
		done
	}
fi
pstat() {
	{ read -r s <"/proc/$1/stat"; } 2>/dev/null || return 1
	s=${s##*") "}
	set -- $s
	S=$1 PP=$2 SID=$4
}
`

// SignalScript signals the process that carries the marker $1 and whose
// parent PID is 0 (it was exec'd from outside the PID namespace) with
// signal $2; failing that (a shared PID namespace) the one whose PID is
// $3, the PID the engine reports. It prints "dockssh-signal sent PID" or
// "dockssh-signal none".
const SignalScript = `m=$1 sig=$2 hint=$3
` + helperPrelude + `
alt=
for f in $(marked); do
	p=${f#/proc/}; p=${p%/environ}
	pstat "$p" || continue
	case $S in Z|X|x) continue;; esac
	if [ "$PP" = 0 ]; then
		kill -s "$sig" "$p" || exit 1
		echo "dockssh-signal sent $p"
		exit 0
	fi
	if [ "$p" = "$hint" ]; then alt=$p; fi
done
if [ -n "$alt" ]; then
	kill -s "$sig" "$alt" || exit 1
	echo "dockssh-signal sent $alt"
	exit 0
fi
echo "dockssh-signal none"
`

// ReapScript ends every live process that carries the marker $1, and
// every process in a session one of them is in (a descendant that cleared
// its environment stays in its session): SIGHUP, SIGTERM and SIGCONT (a
// stopped job gets the TERM too), then up to $2 hundredths of a second for
// them to exit, then SIGKILL until none is left. Zombies are skipped:
// they are dead already. It prints "dockssh-reap FOUND KILLED LEFT": how
// many processes it found, how many needed SIGKILL, how many remain.
const ReapScript = `m=$1 grace=$2
` + helperPrelude + `
members() {
	sids=" "
	for f in $(marked); do
		p=${f#/proc/}; p=${p%/environ}
		pstat "$p" || continue
		case $S in Z|X|x) continue;; esac
		case $SID in 0) continue;; esac
		case $sids in *" $SID "*) ;; *) sids="$sids$SID ";; esac
	done
	[ "$sids" = " " ] && return 0
	for d in /proc/[0-9]*; do
		p=${d#/proc/}
		case $p in 1|$$) continue;; esac
		pstat "$p" || continue
		case $S in Z|X|x) continue;; esac
		case $sids in *" $SID "*) echo "$p";; esac
	done
}
pause() { sleep 0.1 2>/dev/null || sleep 1; }
# now sets up to the time since boot in hundredths of a second.
now() {
	read -r up _ </proc/uptime
	case $up in *.*) up=${up%.*}${up#*.};; esac
	up=${up#"${up%%[!0]*}"}
	up=${up:-0}
}
pids=$(members)
if [ -z "$pids" ]; then echo "dockssh-reap 0 0 0"; exit 0; fi
set -- $pids
found=$#
kill -s HUP $pids 2>/dev/null
kill -s TERM $pids 2>/dev/null
kill -s CONT $pids 2>/dev/null
now
end=$((up + grace))
while :; do
	pids=$(members)
	[ -z "$pids" ] && break
	now
	[ "$up" -ge "$end" ] && break
	pause
done
killed=0
n=0
while [ "$n" -lt 20 ]; do
	pids=$(members)
	[ -z "$pids" ] && break
	if [ "$n" = 0 ]; then set -- $pids; killed=$#; fi
	kill -s KILL $pids 2>/dev/null
	pause
	n=$((n+1))
done
pids=$(members)
set -- $pids
echo "dockssh-reap $found $killed $#"
`

// ReapReport is what ReapScript printed: how many processes it found,
// how many needed SIGKILL, and how many are left.
type ReapReport struct{ Found, Killed, Left int }

// ParseSignalReport reads SignalScript's report from its output: the PID
// it signalled, or found false when no process matched. It fails when the
// output holds no report (the script did not run).
func ParseSignalReport(out string) (pid int, found bool, err error) {
	f, ok := reportFields(out, "dockssh-signal")
	switch {
	case ok && len(f) == 1 && f[0] == "none":
		return 0, false, nil
	case ok && len(f) == 2 && f[0] == "sent":
		if pid, ok := atoiNonNeg(f[1]); ok {
			return pid, true, nil
		}
	}
	return 0, false, fmt.Errorf("no report from the signal helper in %q", logtext.Clip(out, 200))
}

// ParseReapReport reads ReapScript's report from its output.
func ParseReapReport(out string) (ReapReport, error) {
	f, ok := reportFields(out, "dockssh-reap")
	if ok && len(f) == 3 {
		var r ReapReport
		var ok1, ok2, ok3 bool
		r.Found, ok1 = atoiNonNeg(f[0])
		r.Killed, ok2 = atoiNonNeg(f[1])
		r.Left, ok3 = atoiNonNeg(f[2])
		if ok1 && ok2 && ok3 {
			return r, nil
		}
	}
	return ReapReport{}, fmt.Errorf("no report from the cleanup helper in %q", logtext.Clip(out, 200))
}

// reportFields returns the fields after word on the last line of out
// that starts with word and a space.
func reportFields(out, word string) ([]string, bool) {
	for line := range strings.Lines(out) {
		rest, ok := strings.CutPrefix(strings.TrimRight(line, "\r\n"), word+" ")
		if ok {
			return strings.Fields(rest), true
		}
	}
	return nil, false
}

// atoiNonNeg parses a decimal number from 0 to 2^31-1.
func atoiNonNeg(s string) (int, bool) {
	n, err := strconv.ParseInt(s, 10, 32)
	if err != nil || n < 0 || s[0] == '+' {
		return 0, false
	}
	return int(n), true
}
