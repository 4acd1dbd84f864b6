#!/usr/bin/env bash
# The main job, for a first look: sets up what is missing (Docker Engine, the
# local images), then starts, on 127.0.0.1 only:
#   - docker-sshd (examples/docker-sshd, dockssh's server side) in front of a
#     demo container: ssh, sftp and a web terminal into a container that has
#     no SSH server;
#   - a real OpenSSH sshd wired to this machine's dockerd, for dockssh's
#     client side (Docker over SSH);
# checks all of it end to end, and prints how to use it. A check that fails stops the script with the failure and a non-zero
# exit status. Setup prints one line per step; the full output of every step
# goes to a log file (~/.cache/dockssh-demo/demo.log), named when one fails.
#
# Usage (from any directory):
#   bash scripts/demo.sh                  start the demo, or replace a running one
#   bash scripts/demo.sh --stop           remove its containers; keep the images
#                                         (about 445 MB on disk) and dockerd for next time
#   bash scripts/demo.sh --stop --purge   also remove the images and the demo's
#                                         keys (the test suite builds the same
#                                         images again when it next runs)
#
# The demo's sshd lets root in by key, and this machine's Docker socket is
# mounted in it: whoever logs in is root on this machine. It listens on
# 127.0.0.1 only.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
repo=$(pwd)
self="$repo/scripts/demo.sh"

name=dockssh-demo
port=${DOCKSSH_DEMO_PORT:-2222}
gw_port=${DOCKSSH_DEMO_GATEWAY_PORT:-2223}
http_port=${DOCKSSH_DEMO_HTTP_PORT:-8022}
state=${XDG_CACHE_HOME:-$HOME/.cache}/dockssh-demo

source scripts/lib/progress.sh

stop=false purge=false
for arg in "$@"; do
	case $arg in
	--stop) stop=true ;;
	--purge) purge=true ;;
	*)
		echo "usage: bash $self [--stop [--purge]]" >&2
		exit 2
		;;
	esac
done
if $purge && ! $stop; then
	echo "demo: --purge goes with --stop: bash $self --stop --purge" >&2
	exit 2
fi

if $stop; then
	progress_name=demo
	docker rm -f "$name" "$name-target" "$name-gateway" >/dev/null 2>&1 || true
	if ! $purge; then
		echo "demo: removed the demo's containers."
		echo "demo: kept the test images (about 445 MB on disk, reused by the next run and by scripts/test.sh), dockerd, and the demo's keys in $state."
		echo "demo: to remove the images and keys too: bash $self --stop --purge"
		exit 0
	fi
	# Every tag of the repositories scripts/build-images.sh makes, old ones
	# included. dockerd stays: other containers may use it.
	mapfile -t refs < <(docker image ls --format '{{.Repository}}:{{.Tag}}' |
		grep -E '^(dockssh-test/(base|sshd|target|scratch)|dockssh/docker-sshd):' || true)
	if [ ${#refs[@]} -gt 0 ]; then
		docker image rm "${refs[@]}" >/dev/null || fail "could not remove ${refs[*]} (a container still uses them?)"
	fi
	rm -rf "$state"
	echo "demo: removed the demo's containers, its keys ($state) and the images: ${refs[*]:-none were left}."
	echo "demo: dockerd keeps running (other containers may use it)."
	exit 0
fi

mkdir -p "$state/bin"
chmod 700 "$state"
progress_init demo "$state/demo.log"

bash scripts/ensure-docker.sh
tags=$(bash scripts/build-images.sh) || fail "building the images (see above)"
eval "$tags"

[ -f "$state/id_ed25519" ] ||
	step "creating the demo's client key $state/id_ed25519" ssh-keygen -q -t ed25519 -N '' -C "dockssh demo" -f "$state/id_ed25519"

docker rm -f "$name" "$name-target" "$name-gateway" >>"$DOCKSSH_LOG" 2>&1 || true
for p in "DOCKSSH_DEMO_PORT=$port" "DOCKSSH_DEMO_GATEWAY_PORT=$gw_port" "DOCKSSH_DEMO_HTTP_PORT=$http_port"; do
	if (exec 3<>"/dev/tcp/127.0.0.1/${p#*=}") 2>/dev/null; then
		fail "something else listens on 127.0.0.1:${p#*=}; choose another port: ${p%%=*}=$((${p#*=} + 10)) bash $self"
	fi
done
gateway_image=$(bash scripts/build-docker-sshd.sh) || fail "building the docker-sshd image (see above)"
step "starting sshd ($name) on 127.0.0.1:$port" \
	docker run -d --name "$name" --label dockssh.demo=sshd \
	-p "127.0.0.1:$port:22" \
	-v /var/run/docker.sock:/var/run/docker.sock \
	-e AUTHORIZED_KEYS="$(cat "$state/id_ed25519.pub")" \
	"$DOCKSSH_IMAGE_SSHD"
# Something to look at and exec into.
step "starting a target container ($name-target: busybox, no SSH server)" \
	docker run -d --name "$name-target" --label dockssh.demo=target "$DOCKSSH_IMAGE_TARGET"
# dockssh's server side in front of it, as docker-ssh users run it. The
# host key is kept in $state/gateway, so known_hosts stays right across runs.
mkdir -p "$state/gateway"
step "starting docker-sshd ($name-gateway) in front of it on 127.0.0.1:$gw_port (ssh, sftp) and :$http_port (web)" \
	docker run -d --name "$name-gateway" --label dockssh.demo=gateway \
	-p "127.0.0.1:$gw_port:22" -p "127.0.0.1:$http_port:$http_port" \
	-v /var/run/docker.sock:/var/run/docker.sock \
	-v "$state/gateway:/var/lib/dockssh" \
	-e CONTAINER="$name-target" \
	-e AUTH_MECHANISM=publicKey -e AUTHORIZED_KEYS="$(cat "$state/id_ed25519.pub")" \
	-e HTTP_PORT="$http_port" \
	-e BANNER="dockssh demo: a shell in $name-target, a container without an SSH server" \
	"$gateway_image"

# wait_sshd waits up to 20 s for sshd's "Server listening" line.
wait_sshd() {
	local i
	for i in $(seq 1 200); do
		if docker logs "$name" 2>&1 | grep -q "Server listening"; then
			return 0
		fi
		if [ "$(docker inspect -f '{{.State.Running}}' "$name" 2>/dev/null)" != true ]; then
			echo "the container stopped; its log:"
			docker logs "$name" 2>&1 | tail -n 20
			return 1
		fi
		sleep 0.1
	done
	echo "no 'Server listening' line after 20 s; the container's log:"
	docker logs "$name" 2>&1 | tail -n 20
	return 1
}
step "waiting for sshd" wait_sshd

# wait_gateway waits up to 30 s for docker-sshd's "listening" line.
wait_gateway() {
	local i
	for i in $(seq 1 300); do
		if docker logs "$name-gateway" 2>&1 | grep -q "docker-sshd: listening"; then
			return 0
		fi
		if [ "$(docker inspect -f '{{.State.Running}}' "$name-gateway" 2>/dev/null)" != true ]; then
			echo "docker-sshd stopped; its log:"
			docker logs "$name-gateway" 2>&1 | tail -n 20
			return 1
		fi
		sleep 0.1
	done
	echo "docker-sshd did not start in 30 s; its log:"
	docker logs "$name-gateway" 2>&1 | tail -n 20
	return 1
}
step "waiting for docker-sshd" wait_gateway

# Trust exactly the host keys the containers have: they are read through the
# local Docker socket and the gateway's key directory, not from the network.
write_known_hosts() {
	local keys
	keys=$(docker exec "$name" sh -c 'cat /etc/ssh/ssh_host_*_key.pub') || return 1
	[ -n "$keys" ] || { echo "no host keys in the container"; return 1; }
	awk -v h="[127.0.0.1]:$port" '{print h, $1, $2}' <<<"$keys" >"$state/known_hosts"
	keys=$(ssh-keygen -y -f "$state/gateway/ssh_host_ed25519_key") || return 1
	echo "[127.0.0.1]:$gw_port $keys" >>"$state/known_hosts"
}
step "writing its host keys to $state/known_hosts" write_known_hosts

cat >"$state/ssh_config" <<CONF
Host $name-gateway
	HostName 127.0.0.1
	Port $gw_port
	User demo
	IdentityFile $state/id_ed25519
	IdentitiesOnly yes
	IdentityAgent none
	UserKnownHostsFile $state/known_hosts
	GlobalKnownHostsFile /dev/null
	StrictHostKeyChecking yes
	BatchMode yes

Host $name
	HostName 127.0.0.1
	Port $port
	User root
	IdentityFile $state/id_ed25519
	IdentitiesOnly yes
	IdentityAgent none
	UserKnownHostsFile $state/known_hosts
	GlobalKnownHostsFile /dev/null
	StrictHostKeyChecking yes
	BatchMode yes
CONF
# The Docker CLI's ssh:// helper runs plain `ssh`; this one reads the demo's
# config, so nothing in ~/.ssh is touched.
cat >"$state/bin/ssh" <<SHIM
#!/bin/sh
exec $(command -v ssh) -F "$state/ssh_config" "\$@"
SHIM
chmod +x "$state/bin/ssh"

# A complete program using the dialer against the demo, with the Config
# fields the demo needs (its key and known_hosts are outside ~/.ssh). It is
# built and run below, so what is printed is what was checked.
mkdir -p "$state/dialer-example"
cat >"$state/dialer-example/main.go" <<GO
// Lists the containers of the demo's dockerd through dockssh's dialer.
package main

import (
	"context"
	"fmt"
	"log"

	"github.com/moby/moby/client"

	"github.com/dockssh/dockssh/dialer"
)

func main() {
	d, err := dialer.New("ssh://root@127.0.0.1:$port", &dialer.Config{
		IdentityFiles:   []string{"$state/id_ed25519"},
		KnownHostsFiles: []string{"$state/known_hosts"},
		AgentSocket:     "none", // only the demo's key
		IgnoreSSHConfig: true,   // ~/.ssh/config plays no part
	})
	if err != nil {
		log.Fatal(err)
	}
	defer d.Close()

	// The host in this URL is a placeholder: every connection goes through d.
	cli, err := client.New(client.WithHost("http://docker"), client.WithDialContext(d.DialContext))
	if err != nil {
		log.Fatal(err)
	}
	defer cli.Close()

	list, err := cli.ContainerList(context.Background(), client.ContainerListOptions{})
	if err != nil {
		log.Fatal(err)
	}
	for _, c := range list.Items {
		fmt.Println(c.ID[:12], c.Image, c.Names)
	}
}
GO
step "building examples/remote-docker (minutes the first time: it compiles the Docker client)" \
	go build -o "$state/bin/remote-docker" ./examples/remote-docker
step "building the dialer example ($state/dialer-example/main.go)" \
	go build -o "$state/bin/dialer-example" "$state/dialer-example/main.go"

# check DESCRIPTION COMMAND [ARGS...]: runs one check; prints its output
# indented, or stops the demo with the failure.
check() {
	local what=$1 out rc=0
	shift
	echo "demo: check: $what" >&2
	out=$("$@" 2>&1 </dev/null) || rc=$?
	{
		echo "=== check: $what"
		echo "+ $*"
		echo "$out"
	} >>"$DOCKSSH_LOG"
	if [ "$rc" -ne 0 ]; then
		echo "demo: check FAILED (exit $rc): $what" >&2
		echo "$out" | tail -n 15 | sed 's/^/    /' >&2
		echo "demo: the demo is NOT usable. Its containers are left for a look (docker logs $name); remove them with: bash $self --stop" >&2
		fail "check: $what"
	fi
	echo "$out" | sed 's/^/    /' >&2
}

target_host=$(docker inspect -f '{{.Config.Hostname}}' "$name-target")
check "docker-sshd: ssh into $name-target (exit status and stderr pass through)" \
	sh -c 'out=$(ssh -F "$1" "$2" "echo hello from \$(hostname); echo to-stderr >&2; exit 3" 2>"$3"); rc=$?
		[ "$out" = "hello from $4" ] && [ "$(cat "$3")" = to-stderr ] && [ $rc = 3 ] &&
		echo "$out (stderr apart, exit status 3)"' sh "$state/ssh_config" "$name-gateway" "$state/stderr.out" "$target_host"

# sftp into a container that has no sftp-server: docker-sshd copies itself
# there once and serves it.
sftp_check() {
	head -c 1048576 /dev/urandom >"$state/sftp-up" || return 1
	printf 'put %s /demo-file\nget /demo-file %s\nrm /demo-file\n' "$state/sftp-up" "$state/sftp-down" >"$state/sftp-batch"
	sftp -F "$state/ssh_config" -b "$state/sftp-batch" "$name-gateway" >/dev/null || return 1
	cmp "$state/sftp-up" "$state/sftp-down" || return 1
	echo "1 MiB up and down, byte for byte"
	rm -f "$state/sftp-up" "$state/sftp-down"
}
check "docker-sshd: sftp put and get" sftp_check

# The web terminal's API, as docker-ssh's README drives it with curl, with
# the login token docker-sshd printed at start.
web_url=$(docker logs "$name-gateway" 2>&1 | sed -n 's/.*web terminal login (keep it secret; valid until restart): //p' | tail -n 1)
web_token=${web_url##*#token=}
web_check() {
	local base="http://127.0.0.1:$http_port" out="$state/web-stream" pid id i
	[ -n "$web_token" ] || { echo "docker-sshd printed no login URL"; return 1; }
	curl -sN --max-time 30 -H "Authorization: Bearer $web_token" "$base/api/v1/terminal/stream" >"$out" &
	pid=$!
	for i in $(seq 1 100); do
		id=$(sed -n '/^event: connectionId/{n;s/^data: //p;}' "$out")
		[ -n "$id" ] && break
		sleep 0.1
	done
	[ -n "$id" ] || { kill $pid; echo "no connectionId event"; return 1; }
	curl -sf -H "Authorization: Bearer $web_token" -X POST "$base/api/v1/terminal/send/$id" --data-urlencode $'data=echo web-$((6*7))\n' || { kill $pid; return 1; }
	for i in $(seq 1 100); do
		grep -q 'web-42' "$out" && break
		sleep 0.1
	done
	curl -sf -H "Authorization: Bearer $web_token" -X POST "$base/api/v1/terminal/send/$id" --data-urlencode $'data=exit\n' >/dev/null
	kill $pid 2>/dev/null
	wait $pid 2>/dev/null
	grep -q 'web-42' "$out" || { echo "the terminal did not answer; stream:"; cat "$out"; return 1; }
	echo "echo \$((6*7)) typed through the API came back as web-42"
}
check "docker-sshd: the web terminal" web_check

check "the OpenSSH client logs in" \
	ssh -F "$state/ssh_config" "$name" 'echo "logged in to $(hostname) as $(id -un) with $(ssh -V 2>&1 | cut -d, -f1)"'
check "the Docker CLI over ssh:// reaches this machine's dockerd" \
	env PATH="$state/bin:$PATH" DOCKER_HOST="ssh://$name" \
	docker version --format 'server {{.Server.Version}}, API {{.Server.APIVersion}}'
check "examples/remote-docker: dockssh's dialer, one SSH connection, no ssh process" \
	"$state/bin/remote-docker" -F "$state/ssh_config" "ssh://$name"
check "the dialer example below ($state/dialer-example/main.go)" \
	"$state/bin/dialer-example"

cat <<MSG

dockssh demo is running, on 127.0.0.1 only (this machine).

SERVER SIDE: docker-sshd ($name-gateway) gives ssh, sftp and a web terminal
into $name-target, a busybox container with no SSH server in it.

  ssh -F $state/ssh_config $name-gateway
  ssh -F $state/ssh_config $name-gateway 'ls -l /; exit 3'; echo "status \$?"
  sftp -F $state/ssh_config $name-gateway
  Browser: $web_url
  (the same without the config file:
   ssh -i $state/id_ed25519 -o IdentitiesOnly=yes -o UserKnownHostsFile=$state/known_hosts -p $gw_port demo@127.0.0.1)

CLIENT SIDE: a real OpenSSH sshd ($name) on 127.0.0.1:$port, wired to this
machine's dockerd, for Docker over SSH. It lets root in by key, and this
machine's Docker socket is mounted in it (as it is in docker-sshd): whoever
logs in is root here.

  Log in:
    ssh -F $state/ssh_config $name
  or, without the config file:
    ssh -i $state/id_ed25519 -o IdentitiesOnly=yes -o UserKnownHostsFile=$state/known_hosts -o StrictHostKeyChecking=yes -p $port root@127.0.0.1

  Docker over SSH (the Docker CLI's ssh:// helper, using the demo's ssh config):
    PATH=$state/bin:\$PATH DOCKER_HOST=ssh://$name docker ps
    PATH=$state/bin:\$PATH DOCKER_HOST=ssh://$name docker exec $name-target sh -c 'echo hello from \$(hostname)'

  The same with dockssh's dialer (examples/remote-docker; reads the demo's ssh config, strict known_hosts):
    $state/bin/remote-docker -F $state/ssh_config ssh://$name
    cd $repo && go run ./examples/remote-docker -F $state/ssh_config -streamlocal -v ssh://$name/var/run/docker.sock

  From your own Go program: the dialer with the Config fields this demo needs
  (in your module: go get github.com/dockssh/dockssh/dialer github.com/moby/moby/client;
  see $repo/README.md for a local checkout). Checked above; the file is
  $state/dialer-example/main.go:

$(sed 's/^./    &/' "$state/dialer-example/main.go")

  Stop it (keeps the images, about 445 MB on disk, and dockerd):
    bash $self --stop
  Stop it and remove the images and the demo's keys too:
    bash $self --stop --purge

  Full log of this run: $DOCKSSH_LOG
MSG
