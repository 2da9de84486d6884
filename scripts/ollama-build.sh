#!/usr/bin/env bash
# Builds the Ollama server from its Go module at one version, so the server we
# test against is the real one. With no argument it builds the version go.mod
# pins for the api package (client and server match); an argument (v0.24.0)
# builds another server generation for the integration tests.
# The binary is cached by version and reports that version (/api/version); a
# cached binary that reports another one (built before the version was
# stamped) is rebuilt. Prints the binary's path on stdout, progress on stderr.
# A second argument "unstamped" builds the same server without the version
# stamp, as a build from source answers (0.0.0), into ollama-VERSION-unstamped/;
# its cgo parts come from the Go build cache, so after the stamped build it
# only relinks.
set -euo pipefail
cd "$(dirname "$0")/.."

version=${1:-$(go list -m -f '{{.Version}}' github.com/ollama/ollama)}
case "$version" in
  v[0-9]*) ;;
  *) echo "usage: $0 [vX.Y.Z] (got '$version')" >&2; exit 2 ;;
esac
cache="${VRAMKEEPER_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/vramkeeper}"
bin="$cache/ollama-$version/ollama"
stamp="-X github.com/ollama/ollama/version.Version=${version#v}"
want=$version
if [ "${2:-}" = unstamped ]; then
  bin="$cache/ollama-$version-unstamped/ollama"
  stamp=""
  want=v0.0.0
fi

# reported prints the version a built binary reports ("client version is
# 0.17.4" when no server answers on the unroutable host).
reported() {
  OLLAMA_HOST=127.0.0.1:9 timeout 20 "$1" --version 2>&1 | sed -n 's/.*client version is \(.*\)$/v\1/p' | head -1
}
if [ -x "$bin" ]; then
  got=$(reported "$bin" || true)
  if [ "$got" = "$want" ]; then
    echo "$bin"
    exit 0
  fi
  echo ">> cached $bin reports '${got:-nothing}', not $want: rebuilding" >&2
fi

for h in /usr/include/nlohmann/json.hpp /usr/include/stb/stb_image.h; do
  [ -f "$h" ] || { echo "missing $h: run scripts/deps.sh first" >&2; exit 1; }
done

work=$(mktemp -d)
trap 'chmod -R u+w "$work"; rm -rf "$work"' EXIT

echo ">> fetching ollama $version sources" >&2
src=$(go mod download -json "github.com/ollama/ollama@$version" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
[ -d "$src/llama/llama.cpp" ] || {
  # From v0.30 the server builds llama-server from a llama.cpp checkout it
  # downloads: nothing this recipe (module sources only) can build.
  echo "ollama $version does not vendor llama.cpp ($src): it cannot be built here" >&2
  exit 1
}
# miniaudio.h ships in malgo's module (not a dependency of ours or Ollama's).
malgo=$(go mod download -json github.com/gen2brain/malgo@v0.11.24 | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
[ -f "$malgo/miniaudio.h" ] || { echo "miniaudio.h not found in malgo ($malgo)" >&2; exit 1; }
# The sources go to a fixed folder per version: cgo's flags name the
# package's folder (${SRCDIR}), and they are part of the Go build cache's
# key for the cgo parts, so a second build of the version (another stamp)
# relinks instead of compiling llama.cpp again. Copied aside and renamed,
# so an interrupted copy is never taken for a whole one.
srcdir="$cache/src/ollama-$version"
if [ ! -d "$srcdir" ]; then
  mkdir -p "$cache/src"
  cp -r "$src" "$work/ollama"
  chmod -R u+w "$work/ollama"
  mv "$work/ollama" "$srcdir"
fi
# Module zips drop vendor/ folders: miniaudio comes from malgo (see shared notes).
# The include folder has a fixed path too, for the same reason.
inc="$cache/include"
mkdir -p "$inc/miniaudio"
cmp -s "$malgo/miniaudio.h" "$inc/miniaudio/miniaudio.h" || cp "$malgo/miniaudio.h" "$inc/miniaudio/miniaudio.h"

echo ">> building ollama $version (cgo, llama.cpp CPU backend): about 9 minutes on 2 cores the first time" >&2
start=$(date +%s)
(
  cd "$srcdir"
  # version.Version is what /api/version and `ollama --version` report.
  CGO_ENABLED=1 CGO_CPPFLAGS="-I$inc" GOFLAGS=-mod=mod go build -trimpath \
    -ldflags "$stamp" -o "$work/ollama-bin" . 2>&1 |
    while IFS= read -r line; do echo "   $line" >&2; done
) &
pid=$!
while kill -0 "$pid" 2>/dev/null; do
  sleep 30
  kill -0 "$pid" 2>/dev/null && echo "   ... still building ollama $version ($(( $(date +%s) - start ))s)" >&2
done
wait "$pid"
[ -x "$work/ollama-bin" ] || { echo "ollama $version build failed" >&2; exit 1; }
got=$(reported "$work/ollama-bin" || true)
[ "$got" = "$want" ] || { echo "built ollama reports '${got:-nothing}', not $want" >&2; exit 1; }
mkdir -p "$(dirname "$bin")"
mv "$work/ollama-bin" "$bin"
echo ">> built $bin in $(( $(date +%s) - start ))s" >&2
echo "$bin"
