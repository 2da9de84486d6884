#!/usr/bin/env bash
# Installs the Debian packages VRAM Keeper needs.
#   scripts/deps.sh app   building and running the app (scripts/run.sh): cgo,
#                         GL and X11 headers for Fyne
#   scripts/deps.sh       everything the tests and packages need besides:
#                         the headers the Ollama build lacks; Xvfb, a session
#                         bus and screenshot tools for the desktop end-to-end
#                         test; mingw-w64, NSIS and zip for the Windows build
#                         and packages, debootstrap for the chroots of the
#                         Wine and package tiers, rpm to check the .rpm;
#                         prometheus (promtool and the server) as the
#                         metrics' real clients; docker-registry for the
#                         pull tests (they start their own on loopback);
#                         Node.js and npm for the official SDKs the tests run.
# Skips apt entirely when everything is there already.
set -euo pipefail
pkgs=(
  gcc g++ libc6-dev pkg-config git ca-certificates
  libgl1-mesa-dev libx11-dev libxcursor-dev libxrandr-dev libxinerama-dev libxi-dev libxxf86vm-dev
)
if [ "${1:-}" != app ]; then
  pkgs+=(
    nlohmann-json3-dev libstb-dev
    xvfb dbus dbus-x11 x11-utils xdotool imagemagick docker-registry
    gcc-mingw-w64-x86-64 nsis zip debootstrap rpm
    prometheus
  )
  # A machine that has Node.js and npm from elsewhere keeps its own.
  command -v npm >/dev/null 2>&1 || pkgs+=(nodejs npm)
fi
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
echo ">> installing: ${missing[*]}" >&2
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
