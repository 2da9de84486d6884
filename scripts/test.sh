#!/usr/bin/env bash
# Runs every test: installs what they need (Debian packages, the Ollama
# server built from the version go.mod pins), then unit, integration and
# desktop end-to-end tests. Safe to run again: everything is cached.
set -euo pipefail
cd "$(dirname "$0")/.."
start=$(date +%s)

scripts/deps.sh
echo ">> ollama server (built once, then cached)" >&2
VRAMKEEPER_OLLAMA_BIN=$(scripts/ollama-build.sh)
export VRAMKEEPER_OLLAMA_BIN VRAMKEEPER_REQUIRE_OLLAMA=1

echo ">> go vet" >&2
go vet ./...
echo ">> manager must not import the UI" >&2
if go list -deps ./manager/... | grep -q '^fyne.io/'; then
  echo "manager/ imports fyne.io" >&2
  exit 1
fi

echo ">> tests (real Ollama on loopback)" >&2
go test -count=1 -timeout 20m ./...
echo ">> race detector on the manager" >&2
go test -count=1 -race -timeout 10m ./manager/...

if [ -x scripts/e2e-desktop.sh ]; then
  echo ">> desktop end-to-end under Xvfb" >&2
  scripts/e2e-desktop.sh
fi
echo ">> all tests passed in $(( $(date +%s) - start ))s" >&2
