#!/usr/bin/env bash
# Runs the whole test suite: installs what it needs, checks formatting and
# lints, then runs every test against real servers on loopback with the race
# detector, and the tests that use an XMPP server once more against ejabberd
# (Prosody is the default). A missing server fails the run instead of
# skipping.
set -euo pipefail
cd "$(dirname "$0")/.."

./scripts/install-deps.sh
PATH="$(go env GOPATH)/bin:$PATH"

echo "== gofmt"
unformatted=$(gofmt -l $(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))
if [ -n "$unformatted" ]; then
	echo "not gofmt-ed:"; echo "$unformatted"; exit 1
fi
echo "== go vet"
go vet ./...
go vet -tags demo ./cmd/...
echo "== staticcheck"
staticcheck ./...

echo "== go test (real servers, race detector)"
export PASSERELLE_REQUIRE_SERVERS=1
PASSERELLE_XMPP_SERVER=prosody go test -race -count=1 -timeout 20m ./...

echo "== go test against ejabberd (the packages that use an XMPP server)"
start=$SECONDS
PASSERELLE_XMPP_SERVER=ejabberd go test -race -count=1 -timeout 20m \
	./gateway/ ./transports/irc/ ./transports/email/ ./cmd/passerelle/
echo "ejabberd pass: $((SECONDS - start)) s"

echo "== benchmarks (short, not timed tests)"
go test -run '^$' -bench . -benchtime 100x -benchmem ./transports/address/ ./registry/ ./transports/irc/ >/dev/null
go test -run '^$' -bench . -benchtime 2x ./transports/email/ >/dev/null
echo "all checks passed"
