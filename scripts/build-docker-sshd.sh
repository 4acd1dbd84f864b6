#!/usr/bin/env bash
# Builds the docker-sshd image offline: the static binary with the local Go,
# then examples/docker-sshd/Dockerfile (FROM scratch) around it. Prints the
# image tag, dockssh/docker-sshd:<hash of the binary>, also tagged :latest.
# A repeat with the same sources reuses the image.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib/progress.sh"
progress_init build-docker-sshd
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

if ! command -v go >/dev/null && [ -x /usr/local/go/bin/go ]; then
	export PATH="$PATH:/usr/local/go/bin"
fi
command -v go >/dev/null || fail "Go is not installed (https://go.dev/doc/install)"

ctx=$(mktemp -d)
trap 'rm -rf "$ctx"' EXIT
build() { cd "$root" && CGO_ENABLED=0 go build -trimpath -o "$ctx/docker-sshd" ./examples/docker-sshd; }
step "building the static docker-sshd binary" build
cp "$root/examples/docker-sshd/Dockerfile" "$ctx/"
tag="dockssh/docker-sshd:$(cat "$ctx/docker-sshd" "$ctx/Dockerfile" | sha256sum | cut -c1-16)"
if ! docker image inspect "$tag" >/dev/null 2>&1; then
	step "building $tag" env DOCKER_BUILDKIT=0 docker build -q --force-rm -t "$tag" "$ctx"
	# Keep one image: older tags of the repository go.
	docker image ls --format '{{.Repository}}:{{.Tag}}' dockssh/docker-sshd | while read -r t; do
		case "$t" in "$tag" | dockssh/docker-sshd:latest) ;; *) docker image rm "$t" >/dev/null 2>&1 || true ;; esac
	done
fi
docker tag "$tag" dockssh/docker-sshd:latest
echo "$tag"
