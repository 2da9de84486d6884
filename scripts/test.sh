#!/usr/bin/env bash
# Runs every test: installs what they need (Debian packages, the Ollama
# servers built from their Go modules), then unit, integration and desktop
# end-to-end tests. Safe to run again: everything is cached.
#
# Two servers: the version go.mod pins, for every test, and the newest that
# builds here from the Go module proxy (SECOND_OLLAMA; from v0.30 Ollama
# needs a llama.cpp download to build), for the manager's integration tests.
# The second builds in the background while the tests run on the first, so
# a cold run costs about one build (~10 min on 2 cores) less.
set -euo pipefail
cd "$(dirname "$0")/.."
start=$(date +%s)
SECOND_OLLAMA=${SECOND_OLLAMA:-v0.24.0}

scripts/deps.sh
# The Windows and package tiers need two Debian chroots (debootstrap,
# cached in ~/.cache/vramkeeper/) and the packages (the Windows cgo build is
# the long part the first time): prepared from the start, while the Ollama
# build keeps the cores busy and debootstrap waits on the network, and run
# at the end. They need root for chroot (VRAMKEEPER_PLATFORM_TIERS=0 skips
# them).
plat_pid="" second_pid=""
plat_log=$(mktemp) second_log=$(mktemp) second_out=$(mktemp)
# Background work stops with the script, whatever ends it.
trap '[ -z "$second_pid" ] || kill -- -"$second_pid" 2>/dev/null || true; [ -z "$plat_pid" ] || kill -- -"$plat_pid" 2>/dev/null || true; rm -f "$second_log" "$second_out" "$plat_log"' EXIT
if [ "$(id -u)" -eq 0 ] && [ "${VRAMKEEPER_PLATFORM_TIERS:-1}" = 1 ]; then
  echo ">> Windows build, packages and chroots in the background (log: $plat_log)" >&2
  setsid bash -c 'scripts/wine-test.sh prepare && scripts/deb-test.sh prepare && scripts/package.sh' >"$plat_log" 2>&1 &
  plat_pid=$!
fi
echo ">> ollama server (built once, then cached)" >&2
VRAMKEEPER_OLLAMA_BIN=$(scripts/ollama-build.sh)
export VRAMKEEPER_OLLAMA_BIN VRAMKEEPER_REQUIRE_OLLAMA=1 VRAMKEEPER_REQUIRE_REGISTRY=1
echo ">> the same server without its version stamp, as a source build answers (a relink)" >&2
scripts/ollama-build.sh "" unstamped >/dev/null

echo ">> ollama $SECOND_OLLAMA building in the background (log: $second_log)" >&2
# In its own process group, so a failing test stops the build with its
# compiler processes.
setsid scripts/ollama-build.sh "$SECOND_OLLAMA" >"$second_out" 2>"$second_log" &
second_pid=$!

# The official SDKs the tests run as clients: OpenAI's and Anthropic's
# against the proxy, the TypeScript MCP SDK against the MCP server.
for sdk in manager/api/testdata/sdk tests/clients/testdata/mcp; do
  if [ ! -d "$sdk/node_modules" ] || [ "$sdk/package-lock.json" -nt "$sdk/node_modules" ]; then
    echo ">> npm ci --prefix $sdk" >&2
    npm ci --prefix "$sdk" --no-audit --no-fund --loglevel=error >&2
  fi
done

echo ">> go vet" >&2
go vet ./...
echo ">> macOS: vet every package that builds without cgo" >&2
GOOS=darwin CGO_ENABLED=0 go vet $(GOOS=darwin CGO_ENABLED=0 go list -e -f '{{if not .Error}}{{if not .DepsErrors}}{{.ImportPath}}{{end}}{{end}}' ./...)
echo ">> manager must not import the UI" >&2
if go list -deps ./manager/... | grep -q '^fyne.io/'; then
  echo "manager/ imports fyne.io" >&2
  exit 1
fi

echo ">> tests (real Ollama on loopback)" >&2
go test -count=1 -timeout 20m ./...
echo ">> race detector on the manager" >&2
# -short: the manager's concurrency runs against in-memory servers here (the
# real-Ollama tiers just ran and run again on the second server), which keeps
# a cold run of this script under 30 minutes.
go test -count=1 -race -short -timeout 10m ./manager/...

echo ">> waiting for ollama $SECOND_OLLAMA" >&2
if ! wait "$second_pid"; then
  tail -n 40 "$second_log" >&2
  echo "building ollama $SECOND_OLLAMA failed" >&2
  exit 1
fi
tail -n 1 "$second_log" >&2
second_bin=$(cat "$second_out")
echo ">> manager integration tests on ollama $SECOND_OLLAMA" >&2
VRAMKEEPER_OLLAMA_BIN=$second_bin go test -count=1 -p 1 -timeout 20m ./manager/...

if [ -x scripts/e2e-desktop.sh ]; then
  echo ">> desktop end-to-end under Xvfb" >&2
  scripts/e2e-desktop.sh
fi
if [ -n "$plat_pid" ]; then
  echo ">> waiting for the Windows build, packages and chroots" >&2
  if ! wait "$plat_pid"; then
    tail -n 40 "$plat_log" >&2
    echo "preparing the Windows and package tiers failed" >&2
    exit 1
  fi
  plat_pid=""
  echo ">> Windows vet (mingw-w64 cgo)" >&2
  GOOS=windows GOARCH=amd64 CGO_ENABLED=1 CC=x86_64-w64-mingw32-gcc go vet ./...
  scripts/wine-test.sh
  scripts/deb-test.sh
else
  echo ">> Windows and package tiers skipped (they need root for chroot; VRAMKEEPER_PLATFORM_TIERS=0 was set, or this is not root)" >&2
fi
echo ">> all tests passed in $(( $(date +%s) - start ))s" >&2
