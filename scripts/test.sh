#!/usr/bin/env bash
# The whole test suite: installs and starts Docker Engine when missing, builds
# the test images (cached by a hash of their inputs), checks formatting and
# vet, then runs every unit and integration test with the race detector.
# Integration tests are required here: a missing Docker fails, never skips.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

if ! command -v go >/dev/null && [ -x /usr/local/go/bin/go ]; then
	export PATH="$PATH:/usr/local/go/bin"
fi
command -v go >/dev/null || { echo "test.sh: Go is not installed (https://go.dev/doc/install)" >&2; exit 1; }

bash scripts/ensure-docker.sh
bash scripts/build-images.sh >/dev/null

echo "== gofmt"
unformatted=$(gofmt -l $(git ls-files '*.go' 2>/dev/null || find . -name '*.go' -not -path './.cache/*'))
if [ -n "$unformatted" ]; then
	echo "not gofmt'ed:" $unformatted >&2
	exit 1
fi

echo "== go vet ./..."
go vet ./...

echo "== go test -race ./..."
export DOCKSSH_REQUIRE_DOCKER=1
go test -race -count=1 -timeout 60m "$@" ./...
