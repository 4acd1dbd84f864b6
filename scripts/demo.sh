#!/usr/bin/env bash
# The main job, for a first look: sets up what is missing (Docker Engine, the
# local images), starts the real OpenSSH sshd container wired to this
# machine's dockerd on 127.0.0.1, checks it end to end, and prints how to use
# it. Run it again to replace the demo; remove it with: scripts/demo.sh --stop
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

name=dockssh-demo
port=${DOCKSSH_DEMO_PORT:-2222}
state=${XDG_CACHE_HOME:-$HOME/.cache}/dockssh-demo

if [ "${1:-}" = "--stop" ]; then
	docker rm -f "$name" "$name-target" >/dev/null 2>&1 || true
	echo "demo removed (its keys stay in $state)"
	exit 0
fi

bash scripts/ensure-docker.sh
eval "$(bash scripts/build-images.sh)"

mkdir -p "$state/bin"
chmod 700 "$state"
[ -f "$state/id_ed25519" ] || ssh-keygen -q -t ed25519 -N '' -C "dockssh demo" -f "$state/id_ed25519"

docker rm -f "$name" "$name-target" >/dev/null 2>&1 || true
docker run -d --name "$name" --label dockssh.demo=sshd \
	-p "127.0.0.1:$port:22" \
	-v /var/run/docker.sock:/var/run/docker.sock \
	-e AUTHORIZED_KEYS="$(cat "$state/id_ed25519.pub")" \
	"$DOCKSSH_IMAGE_SSHD" >/dev/null
# Something to look at and exec into.
docker run -d --name "$name-target" --label dockssh.demo=target "$DOCKSSH_IMAGE_TARGET" >/dev/null

# Wait for sshd, then trust exactly the host keys the container has: they are
# read through the local Docker socket, not from the network.
for _ in $(seq 1 100); do
	docker logs "$name" 2>&1 | grep -q "Server listening" && break
	sleep 0.1
done
docker exec "$name" sh -c 'cat /etc/ssh/ssh_host_*_key.pub' |
	awk -v h="[127.0.0.1]:$port" '{print h, $1, $2}' >"$state/known_hosts"

cat >"$state/ssh_config" <<CONF
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
CONF
# The Docker CLI's ssh:// helper runs plain `ssh`; this one reads the demo's
# config, so nothing in ~/.ssh is touched.
cat >"$state/bin/ssh" <<SHIM
#!/bin/sh
exec $(command -v ssh) -F "$state/ssh_config" "\$@"
SHIM
chmod +x "$state/bin/ssh"

echo "== checking the demo end to end"
echo "-- ssh: $(ssh -F "$state/ssh_config" "$name" 'echo "logged in to $(hostname) as $(id -un) via $(ssh -V 2>&1 | cut -d, -f1)"' 2>&1)"
echo "-- docker over ssh://: $(PATH="$state/bin:$PATH" DOCKER_HOST="ssh://$name" docker version --format 'server {{.Server.Version}}, API {{.Server.APIVersion}}' 2>&1)"
echo "-- dockssh's dialer (examples/remote-docker, one multiplexed SSH connection, no ssh process):"
go build -o "$state/bin/remote-docker" ./examples/remote-docker
"$state/bin/remote-docker" -F "$state/ssh_config" "ssh://$name" 2>&1 | sed 's/^/   /'

cat <<MSG

dockssh demo is running: a real OpenSSH sshd on 127.0.0.1:$port, wired to this machine's dockerd.

  Log in:
    ssh -F $state/ssh_config $name
  or, without the config file:
    ssh -i $state/id_ed25519 -o UserKnownHostsFile=$state/known_hosts -o StrictHostKeyChecking=yes -p $port root@127.0.0.1

  Docker over SSH (the Docker CLI's ssh:// helper, using the demo's ssh config):
    PATH=$state/bin:\$PATH DOCKER_HOST=ssh://$name docker ps
    PATH=$state/bin:\$PATH DOCKER_HOST=ssh://$name docker exec $name-target sh -c 'echo hello from \$(hostname)'

  The same from Go, with dockssh's dialer (reads the demo's ssh config, strict known_hosts):
    go run ./examples/remote-docker -F $state/ssh_config ssh://$name
    go run ./examples/remote-docker -F $state/ssh_config -streamlocal -v ssh://$name/var/run/docker.sock

  Stop it:
    scripts/demo.sh --stop
MSG
