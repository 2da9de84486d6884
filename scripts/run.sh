#!/usr/bin/env bash
# Builds VRAM Keeper and starts it (the desktop app, or any subcommand given).
# Ollama itself is yours: VRAM Keeper talks to the one at OLLAMA_HOST.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh app
echo ">> building vramkeeper (the first build compiles Fyne's C parts: a few minutes)" >&2
go build -o vramkeeper .
exec ./vramkeeper "$@"
