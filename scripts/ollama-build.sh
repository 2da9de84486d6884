#!/usr/bin/env bash
# Builds the Ollama server from the exact module version go.mod pins for the
# api package, so the client we ship and the server we test against match.
# The binary is cached by version; prints its path on stdout, progress on stderr.
set -euo pipefail
cd "$(dirname "$0")/.."

version=$(go list -m -f '{{.Version}}' github.com/ollama/ollama)
cache="${VRAMKEEPER_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/vramkeeper}"
bin="$cache/ollama-$version/ollama"
if [ -x "$bin" ]; then
  echo "$bin"
  exit 0
fi

for h in /usr/include/nlohmann/json.hpp /usr/include/stb/stb_image.h; do
  [ -f "$h" ] || { echo "missing $h: run scripts/deps.sh first" >&2; exit 1; }
done

work=$(mktemp -d)
trap 'chmod -R u+w "$work"; rm -rf "$work"' EXIT

echo ">> fetching ollama $version sources" >&2
go mod download github.com/ollama/ollama
src=$(go list -m -f '{{.Dir}}' github.com/ollama/ollama)
# miniaudio.h ships in malgo's module (not a dependency of ours or Ollama's).
malgo=$(go mod download -json github.com/gen2brain/malgo@v0.11.24 | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
[ -f "$malgo/miniaudio.h" ] || { echo "miniaudio.h not found in malgo ($malgo)" >&2; exit 1; }
cp -r "$src" "$work/ollama"
chmod -R u+w "$work/ollama"
# Module zips drop vendor/ folders: miniaudio comes from malgo (see shared notes).
mkdir -p "$work/inc/miniaudio"
cp "$malgo/miniaudio.h" "$work/inc/miniaudio/miniaudio.h"

echo ">> building ollama $version (cgo, llama.cpp CPU backend): about 9 minutes on 2 cores the first time" >&2
start=$(date +%s)
(
  cd "$work/ollama"
  CGO_ENABLED=1 CGO_CPPFLAGS="-I$work/inc" GOFLAGS=-mod=mod go build -trimpath -o "$work/ollama-bin" . 2>&1 |
    while IFS= read -r line; do echo "   $line" >&2; done
) &
pid=$!
while kill -0 "$pid" 2>/dev/null; do
  sleep 30
  kill -0 "$pid" 2>/dev/null && echo "   ... still building ($(( $(date +%s) - start ))s)" >&2
done
wait "$pid"
[ -x "$work/ollama-bin" ] || { echo "ollama build failed" >&2; exit 1; }
mkdir -p "$(dirname "$bin")"
mv "$work/ollama-bin" "$bin"
echo ">> built $bin in $(( $(date +%s) - start ))s" >&2
echo "$bin"
