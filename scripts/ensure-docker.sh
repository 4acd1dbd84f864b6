#!/usr/bin/env bash
# Makes sure this machine can run dockssh's integration tests and demo:
# Docker Engine (Debian's docker.io), mmdebstrap, the OpenSSH client,
# openssl, tmux and chromium are installed, and dockerd is running and
# answering `docker info`.
# Safe to run again: it only does what is missing. It prints one line per
# step; the full output of apt-get goes to a log file, named when a step fails
# (scripts/lib/progress.sh).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib/progress.sh"
progress_init ensure-docker

sudo=""
if [ "$(id -u)" -ne 0 ]; then
	command -v sudo >/dev/null || fail "not root and no sudo: run as root"
	sudo="sudo"
fi

need=()
# An engine that already answers (a hosted CI runner, Docker Desktop) is
# used as it is; otherwise Debian's docker.io provides CLI and daemon.
if ! { command -v docker >/dev/null && docker info >/dev/null 2>&1; }; then
	command -v docker >/dev/null && command -v dockerd >/dev/null || need+=(docker.io)
fi
command -v mmdebstrap >/dev/null || [ -n "${DOCKSSH_BASE_IMAGE:-}" ] || need+=(mmdebstrap)
command -v ssh >/dev/null || need+=(openssh-client)
command -v ssh-keygen >/dev/null || need+=(openssh-client)
command -v ssh-keyscan >/dev/null || need+=(openssh-client)
# hostkeys' tests make encrypted PKCS#8 keys with the real openssl.
command -v openssl >/dev/null || need+=(openssl)
# The demo drives the web terminal's API with curl, as docker-ssh's README does.
command -v curl >/dev/null || need+=(curl)
# execbridge's terminal tests drive `ssh -tt` in a real terminal (tmux);
# sse's browser test drives Debian's chromium headless.
command -v tmux >/dev/null || need+=(tmux)
command -v chromium >/dev/null || need+=(chromium)
# The browser test fetches xterm.js with `npm pack` (never committed).
command -v npm >/dev/null || need+=(npm)

if [ ${#need[@]} -gt 0 ]; then
	mapfile -t need < <(printf '%s\n' "${need[@]}" | sort -u)
	command -v apt-get >/dev/null || fail "missing ${need[*]} and no apt-get to install them"
	step "apt-get update" $sudo apt-get update -q
	step "installing ${need[*]} (apt-get)" $sudo env DEBIAN_FRONTEND=noninteractive \
		apt-get install -y -q --no-install-recommends "${need[@]}"
fi

if docker info >/dev/null 2>&1; then
	say "Docker Engine $(docker version --format '{{.Server.Version}}' 2>/dev/null) answers"
	exit 0
fi

if [ -d /run/systemd/system ] && command -v systemctl >/dev/null; then
	say "starting docker with systemctl"
	$sudo systemctl start docker >>"$DOCKSSH_LOG" 2>&1 || true
fi
if ! docker info >/dev/null 2>&1 && ! pgrep -x dockerd >/dev/null; then
	# No systemd (a container or a minimal VM): run dockerd in the background,
	# detached from this shell's stdin and stdout so callers (CI) do not wait
	# on it, with its log in /var/log.
	say "starting dockerd in the background (its log: /var/log/dockssh-dockerd.log)"
	$sudo sh -c 'setsid dockerd >/var/log/dockssh-dockerd.log 2>&1 </dev/null &'
fi

for _ in $(seq 1 120); do
	if docker info >/dev/null 2>&1; then
		say "Docker Engine $(docker version --format '{{.Server.Version}}' 2>/dev/null) answers"
		exit 0
	fi
	sleep 0.5
done
say "dockerd did not answer within 60 s; last lines of /var/log/dockssh-dockerd.log:"
$sudo tail -n 20 /var/log/dockssh-dockerd.log 2>&1 | sed 's/^/    /' >&2 || true
fail "dockerd did not start (its log: /var/log/dockssh-dockerd.log)"
