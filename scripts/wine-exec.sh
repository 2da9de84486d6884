#!/usr/bin/env bash
# go test -exec wrapper for the Windows tier: runs one Windows test binary
# under Wine in the trixie chroot, in the package's folder (which
# scripts/wine-test.sh binds into the chroot at the same path), with a
# clean environment: nothing of the host's test settings reaches it.
set -euo pipefail
R=${VRAMKEEPER_WINE_ROOT:?run through scripts/wine-test.sh}
bin=$1
shift
dir=$(mktemp -d "$R/tmp/vk-test.XXXXXX")
trap 'rm -rf "$dir"' EXIT
cp "$bin" "$dir/"
rc=0
chroot "$R" env -i HOME=/root PATH=/usr/bin:/bin WINEDEBUG=-all WINEPREFIX=/root/.wine \
  WINEDLLOVERRIDES="mscoree,mshtml=" ${VRAMKEEPER_WINE_ENV:-} \
  sh -c 'cd "$1" && shift && exec wine "$@"' sh "$PWD" "${dir#"$R"}/$(basename "$bin")" "$@" || rc=$?
exit "$rc"
