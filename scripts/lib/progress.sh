# Sourced by the scripts in scripts/ (not run on its own): one progress line
# per step on stderr, the full output of every step in one log file, and a
# failure that names the step, shows the end of its output and names the log.
#
# DOCKSSH_LOG names the log file. The first script of a run (demo.sh,
# test.sh, or ensure-docker.sh and build-images.sh run on their own) finds it
# unset, starts a new log and exports it, so the scripts it runs append to the
# same file.

# progress_init NAME [LOG]: NAME prefixes every line; LOG is where a new log
# starts when DOCKSSH_LOG is unset (default ~/.cache/dockssh/NAME.log).
progress_init() {
	progress_name=$1
	if [ -z "${DOCKSSH_LOG:-}" ]; then
		DOCKSSH_LOG=${2:-${XDG_CACHE_HOME:-$HOME/.cache}/dockssh/$1.log}
		mkdir -p "$(dirname "$DOCKSSH_LOG")"
		: >"$DOCKSSH_LOG"
		export DOCKSSH_LOG
	fi
}

# say MESSAGE: one line on stderr.
say() { echo "$progress_name: $*" >&2; }

# fail MESSAGE: names what failed and the log, then exits 1.
fail() {
	echo "$progress_name: FAILED: $*" >&2
	echo "$progress_name: full log: $DOCKSSH_LOG" >&2
	exit 1
}

# step DESCRIPTION COMMAND [ARGS...]: runs one command with its stdout and
# stderr in the log and prints "DESCRIPTION ... done (N s)". When the command
# fails, prints the last lines of its output and the log's name, and exits
# with the command's status. COMMAND must be a single command (or a function
# that checks each of its own commands): errexit does not apply inside it.
step() {
	local what=$1 start=$SECONDS rc=0 mark
	shift
	printf '%s: %s ... ' "$progress_name" "$what" >&2
	{
		echo "=== $(date -u +%Y-%m-%dT%H:%M:%SZ) $progress_name: $what"
		echo "+ $*"
	} >>"$DOCKSSH_LOG"
	mark=$(wc -l <"$DOCKSSH_LOG")
	"$@" >>"$DOCKSSH_LOG" 2>&1 </dev/null || rc=$?
	if [ "$rc" -eq 0 ]; then
		echo "done ($((SECONDS - start)) s)" >&2
		return 0
	fi
	echo "FAILED (exit $rc)" >&2
	echo "$progress_name: last lines of its output:" >&2
	tail -n +"$((mark + 1))" "$DOCKSSH_LOG" | tail -n 15 | sed 's/^/    /' >&2
	echo "$progress_name: full log: $DOCKSSH_LOG" >&2
	exit "$rc"
}
