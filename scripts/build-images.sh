#!/usr/bin/env bash
# Builds the test images locally and prints their tags, one KEY=TAG per line:
#
#   DOCKSSH_IMAGE_BASE=dockssh-test/base:<hash>
#   DOCKSSH_IMAGE_SSHD=dockssh-test/sshd:<hash>
#   DOCKSSH_IMAGE_TARGET=dockssh-test/target:<hash>
#   DOCKSSH_IMAGE_SCRATCH=dockssh-test/scratch:<hash>
#
# Each tag is a hash of the image's inputs, so a change rebuilds the image and
# a repeat reuses it. No container registry is needed: the base image is a
# Debian bookworm root filesystem made by mmdebstrap from this machine's own
# apt sources. Where a registry is reachable, set DOCKSSH_BASE_IMAGE (for
# example to debian:bookworm-slim) and the same Dockerfiles build on it.
#
# It prints one progress line per step on stderr; the output of mmdebstrap and
# docker goes to a log file, named when a step fails (scripts/lib/progress.sh).
#
# Usage: scripts/build-images.sh [--print]
#   --print  only print the tags (no build); the Go harness uses this.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib/progress.sh"

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/.." && pwd)
images="$root/integration/images"

# What goes into the base root filesystem. bash and procps for the tests'
# shells, openssh-server for sshd, docker.io for the Docker CLI (the sshd
# container runs `docker system dial-stdio` against the host's dockerd through
# the mounted socket), busybox-static for the FROM-scratch target image.
base_packages="openssh-server,docker.io,procps,bash,busybox-static,ca-certificates"

hash_of() { sha256sum | cut -c1-16; }

if [ -n "${DOCKSSH_BASE_IMAGE:-}" ]; then
	base_tag="$DOCKSSH_BASE_IMAGE"
else
	base_tag="dockssh-test/base:$( { echo "mmdebstrap bookworm minbase v1"; echo "$base_packages"; } | hash_of)"
fi
# Hash the build context of each image together with the base it builds on.
ctx_hash() { { echo "$base_tag"; (cd "$images/$1" && find . -type f | LC_ALL=C sort | xargs sha256sum); } | hash_of; }
sshd_tag="dockssh-test/sshd:$(ctx_hash sshd)"
target_tag="dockssh-test/target:$(ctx_hash target)"
scratch_tag="dockssh-test/scratch:$(ctx_hash scratch)"

print_tags() {
	echo "DOCKSSH_IMAGE_BASE=$base_tag"
	echo "DOCKSSH_IMAGE_SSHD=$sshd_tag"
	echo "DOCKSSH_IMAGE_TARGET=$target_tag"
	echo "DOCKSSH_IMAGE_SCRATCH=$scratch_tag"
}
if [ "${1:-}" = "--print" ]; then
	print_tags
	exit 0
fi

progress_init build-images
have_image() { docker image inspect "$1" >/dev/null 2>&1; }

# apt sources of this machine, pasted into the root filesystem's sources.list.
host_sources() {
	local f
	for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources; do
		[ -s "$f" ] && grep -qv '^\s*\(#\|$\)' "$f" && echo "$f"
	done
	return 0
}

build_base() {
	if have_image "$base_tag"; then
		return
	fi
	if [ -n "${DOCKSSH_BASE_IMAGE:-}" ]; then
		step "pulling $base_tag" docker pull "$base_tag"
		return
	fi
	command -v mmdebstrap >/dev/null ||
		fail "mmdebstrap is missing: run scripts/ensure-docker.sh (it installs it) or set DOCKSSH_BASE_IMAGE"
	grep -q '^ID=debian' /etc/os-release ||
		fail "this machine is not Debian, so its apt sources cannot build a bookworm root filesystem; set DOCKSSH_BASE_IMAGE=debian:bookworm-slim"
	mapfile -t sources < <(host_sources)
	[ ${#sources[@]} -gt 0 ] || fail "no apt sources found in /etc/apt; cannot run mmdebstrap"
	local tmp
	tmp=$(mktemp -d)
	trap 'rm -rf "$tmp"' RETURN
	step "building the Debian bookworm base image with mmdebstrap from ${sources[*]} (a few minutes, once)" \
		mmdebstrap --variant=minbase --include="$base_packages" \
		--aptopt='APT::Install-Recommends "false"' \
		--dpkgopt='path-exclude=/usr/share/doc/*' \
		--dpkgopt='path-exclude=/usr/share/man/*' \
		--dpkgopt='path-exclude=/usr/share/locale/*' \
		bookworm "$tmp/rootfs.tar" "${sources[@]}"
	step "importing it as $base_tag" docker import --change 'CMD ["/bin/bash"]' "$tmp/rootfs.tar" "$base_tag"
}

build_ctx() { # name tag
	if have_image "$2"; then
		return
	fi
	# The legacy builder needs no buildx plugin and is enough for these
	# files; its deprecation notice goes to the log with the rest.
	step "building $2" env DOCKER_BUILDKIT=0 docker build -q --force-rm --build-arg "BASE=$base_tag" -t "$2" "$images/$1"
}

# Older tags of our own repositories are left behind when inputs change;
# remove them so the cache does not grow without bound.
prune_old() { # repo keep-tag
	docker image ls --format '{{.Repository}}:{{.Tag}}' "$1" | while read -r t; do
		[ "$t" = "$2" ] || docker image rm "$t" >/dev/null 2>&1 || true
	done
}

if have_image "$base_tag" && have_image "$sshd_tag" && have_image "$target_tag" && have_image "$scratch_tag"; then
	say "reusing $sshd_tag, $target_tag and $scratch_tag"
fi
build_base
build_ctx sshd "$sshd_tag"
build_ctx target "$target_tag"
build_ctx scratch "$scratch_tag"
prune_old dockssh-test/sshd "$sshd_tag"
prune_old dockssh-test/target "$target_tag"
prune_old dockssh-test/scratch "$scratch_tag"
[ -n "${DOCKSSH_BASE_IMAGE:-}" ] || prune_old dockssh-test/base "$base_tag"
print_tags
