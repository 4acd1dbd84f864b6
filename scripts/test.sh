#!/usr/bin/env bash
# The whole test suite: installs and starts Docker Engine when missing, builds
# the test images (cached by a hash of their inputs), checks formatting, vet
# and staticcheck, then runs every unit and integration test with the race
# detector. Integration tests are required here: a missing Docker fails, never
# skips. Setup steps print one line each; their full output goes to the log
# file named when one fails.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
source scripts/lib/progress.sh
progress_init test

if ! command -v go >/dev/null && [ -x /usr/local/go/bin/go ]; then
	export PATH="$PATH:/usr/local/go/bin"
fi
command -v go >/dev/null || fail "Go is not installed (https://go.dev/doc/install)"

bash scripts/ensure-docker.sh
bash scripts/build-images.sh >/dev/null
# kube-apiserver and kubelet for the Kubernetes tests, built once per
# machine and version (cached outside the repository; minutes, cold) before
# the tests start rather than inside the first one.
bash scripts/kube-cluster.sh build

# staticcheck, pinned: a new release may add checks, and a run must not fail
# because a tool moved on. 0.8.2 (2026.2.2) is the release that knows Go 1.26.
staticcheck_version=0.8.2
# staticcheck_bin returns the path of the pinned staticcheck, installing it with
# go install into GOBIN (or GOPATH/bin) unless that version is already there,
# built by a Go at least as new as this one (staticcheck refuses code for a
# newer Go than the one it was built with).
staticcheck_bin() {
	local dir bin built
	dir=$(go env GOBIN)
	[ -n "$dir" ] || dir="$(go env GOPATH | cut -d: -f1)/bin"
	bin="$dir/staticcheck"
	if [ -x "$bin" ] && [[ "$("$bin" -version 2>/dev/null)" == *"($staticcheck_version)" ]]; then
		built=$(go version "$bin" | awk '{print $2}')
		if [ "$(printf '%s\n' "$(go env GOVERSION)" "$built" | sort -V | head -n1)" = "$(go env GOVERSION)" ]; then
			echo "$bin"
			return
		fi
	fi
	# GOTOOLCHAIN=auto: staticcheck 0.8.2 needs Go 1.26 to build; an older
	# local Go fetches it through the module proxy.
	# go install overwrites only a Go binary; whatever else is there goes.
	rm -f "$bin"
	step "installing staticcheck $staticcheck_version into $dir" \
		env GOTOOLCHAIN=auto go install "honnef.co/go/tools/cmd/staticcheck@v$staticcheck_version"
	echo "$bin"
}

echo "== gofmt"
unformatted=$(gofmt -l $(git ls-files '*.go' 2>/dev/null || find . -name '*.go' -not -path './.cache/*'))
if [ -n "$unformatted" ]; then
	echo "not gofmt'ed:" $unformatted >&2
	exit 1
fi

echo "== go vet ./... (and with -tags kube: docker-sshd's Kubernetes support)"
go vet ./...
go vet -tags kube ./examples/docker-sshd

sc=$(staticcheck_bin)
echo "== staticcheck ./... ($("$sc" -version))"
"$sc" ./...
"$sc" -tags kube ./examples/docker-sshd

echo "== go test -race ./..."
export DOCKSSH_REQUIRE_DOCKER=1
# Integration tests wait on containers and the network more than on the
# CPU, so four run at once (they are t.Parallel and share nothing).
go test -race -count=1 -timeout 60m -parallel 4 "$@" ./...
