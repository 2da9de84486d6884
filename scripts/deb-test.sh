#!/usr/bin/env bash
# The package tier: dist/vramkeeper_*.deb installed with apt into a fresh
# Debian bookworm chroot (a copy of a cached minimal base, thrown away
# after), then the installed `vramkeeper models` against the real Ollama
# of the test tier; and the .rpm, which no reachable distribution installs,
# installed and erased by rpm in an empty root and compared with the .deb
# (internal/platformtest). Needs root (chroot, mount).
# `scripts/deb-test.sh prepare` only makes the cached base.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/chroot.sh
source scripts/chroot.sh
start=$(date +%s)
base=$CHROOT_CACHE/bookworm-base
if [ "${1:-}" = prepare ]; then
  chroot_lock
  chroot_make "$base" bookworm ca-certificates
  exit 0
fi
deb=$(ls dist/vramkeeper_*_amd64.deb 2>/dev/null | head -1 || true)
rpm=$(ls dist/vramkeeper-*.x86_64.rpm 2>/dev/null | head -1 || true)
if [ -z "$deb" ] || [ -z "$rpm" ]; then
  scripts/package.sh
  deb=$(ls dist/vramkeeper_*_amd64.deb | head -1)
  rpm=$(ls dist/vramkeeper-*.x86_64.rpm | head -1)
fi
chroot_lock
chroot_make "$base" bookworm ca-certificates
R=$(mktemp -d "$CHROOT_CACHE/bookworm-fresh.XXXXXX")
cleanup() { chroot_rm "$R"; }
trap cleanup EXIT
cp -a "$base/." "$R/"
chroot_mount "$R"
# Downloaded packages are kept between runs; the chroot itself is new.
mkdir -p "$CHROOT_CACHE/bookworm-apt" "$R/var/cache/apt/archives" "$R/dist"
mount --bind "$CHROOT_CACHE/bookworm-apt" "$R/var/cache/apt/archives"
echo 'Binary::apt::APT::Keep-Downloaded-Packages "true";' >"$R/etc/apt/apt.conf.d/90keep"
cp "$deb" "$R/dist/"
echo ">> apt install ./$(basename "$deb") in a fresh bookworm chroot" >&2
VRAMKEEPER_DEB_ROOT=$R VRAMKEEPER_DEB=/dist/$(basename "$deb") VRAMKEEPER_REQUIRE_OLLAMA=1 \
  go test -count=1 -v -timeout 15m -run TestDebInFreshDebian ./internal/platformtest 2>&1 |
  grep -E '^(=== RUN|--- |\s+\S+_test.go|ok|FAIL|PASS)' >&2
echo ">> $(basename "$rpm"): rpm -K, installed and erased in an empty root, the same files as the .deb" >&2
VRAMKEEPER_RPM_FILE=$PWD/$rpm VRAMKEEPER_DEB_FILE=$PWD/$deb \
  go test -count=1 -v -timeout 5m -run TestRpmMatchesTheDeb ./internal/platformtest 2>&1 |
  grep -E '^(=== RUN|--- |\s+\S+_test.go|ok|FAIL|PASS)' >&2
echo ">> package tier passed in $(( $(date +%s) - start ))s" >&2
