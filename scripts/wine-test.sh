#!/usr/bin/env bash
# The Windows tier, on Linux: Wine 10 from Debian trixie in a chroot
# (bookworm's Wine 8 cannot run Go >= 1.22 binaries), made once and cached
# in ~/.cache/vramkeeper/trixie-wine.
#   1. the unit tests, compiled for Windows, run under Wine (go test -exec);
#   2. vramkeeper.exe (from scripts/package.sh's dist/) under Wine against
#      the real Linux Ollama: version, serve, status, history; the tray and
#      window on a virtual screen (internal/platformtest);
#   3. the NSIS installer, silent (/S), per user and for all users, and
#      its uninstaller.
# Needs root (chroot, mount). Usage: scripts/wine-test.sh [unit|exe|installer]...
# VRAMKEEPER_WINE_PKGS narrows the unit tests (default ./...).
# `scripts/wine-test.sh prepare` only makes the chroot.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/chroot.sh
source scripts/chroot.sh
R=$CHROOT_CACHE/trixie-wine
parts=("$@")
[ ${#parts[@]} -gt 0 ] || parts=(unit exe installer)
want() { [[ " ${parts[*]} " == *" $1 "* ]]; }
start=$(date +%s)

chroot_lock
chroot_make "$R" trixie wine wine64 xvfb x11-utils xdotool imagemagick libgl1-mesa-dri ca-certificates
[ "${parts[0]}" != prepare ] || exit 0
repo=$(pwd -P)
W() { chroot "$R" env -i HOME=/root PATH=/usr/bin:/bin WINEDEBUG=-all WINEPREFIX=/root/.wine WINEDLLOVERRIDES="mscoree,mshtml=" "$@"; }
cleanup() {
  W wineserver -k 2>/dev/null || true
  chroot_umount "$R"
}
trap cleanup EXIT
chroot_mount "$R"
mkdir -p "$R$repo" "$R/tmp"
mount --bind "$repo" "$R$repo"
# The prefix is made on first use (15 to 40 s); one cut short (an
# interrupted run) is made again. A persistent wineserver starts each test
# binary in about a second instead of five.
W wineboot -i >/dev/null 2>&1 || true
if ! W wine cmd /c exit >/dev/null 2>&1; then
  W wineserver -k 2>/dev/null || true
  rm -rf "$R/root/.wine"
  W wineboot -i >/dev/null 2>&1 || true
fi
W wineserver -p 2>/dev/null || true # one may run already
export VRAMKEEPER_WINE_ROOT=$R

if want unit; then
  echo ">> Windows unit tests under Wine" >&2
  log=$(mktemp)
  # The journal's 100,000-append case opens and closes the file 100,000
  # times: 5 minutes through wineserver; its smaller cases run here.
  if ! GOOS=windows GOARCH=amd64 CGO_ENABLED=1 CC=x86_64-w64-mingw32-gcc \
    go test -exec "$repo/scripts/wine-exec.sh" -count=1 -timeout 20m -v \
    -skip 'TestStaysUnderCap/defaults' ${VRAMKEEPER_WINE_PKGS:-./...} >"$log" 2>&1; then
    grep -E '^(--- FAIL|FAIL|panic)' -A15 "$log" | head -150 >&2
    echo "Windows unit tests failed under Wine (log: $log)" >&2
    exit 1
  fi
  echo ">> Windows unit tests under Wine: $(grep -c '^--- PASS' "$log") tests passed in $(grep -c '^ok ' "$log") packages, $(grep -c -- '--- SKIP' "$log") skipped" >&2
  rm -f "$log"
fi

exe=$repo/dist/build/windows-amd64/vramkeeper.exe
setup=$(ls "$repo"/dist/vramkeeper-*-setup.exe 2>/dev/null | head -1 || true)
if { want exe || want installer; } && { [ ! -f "$exe" ] || [ -z "$setup" ]; }; then
  echo ">> no Windows build in dist/: scripts/package.sh" >&2
  scripts/package.sh
  setup=$(ls "$repo"/dist/vramkeeper-*-setup.exe | head -1)
fi

if want exe; then
  echo ">> vramkeeper.exe under Wine against the real Ollama" >&2
  VRAMKEEPER_WINDOWS_EXE=$exe VRAMKEEPER_REQUIRE_OLLAMA=1 \
    go test -count=1 -v -timeout 15m -run 'TestWindows' ./internal/platformtest 2>&1 |
    grep -E '^(=== RUN|--- |\s+\S+_test.go|ok|FAIL|PASS)' >&2
fi

if want installer; then
  echo ">> the installer: silent, per user and for all users; the uninstaller" >&2
  drive=$R/root/.wine/drive_c
  user=$drive/users/root/AppData/Local/Programs/VRAM\ Keeper
  all=$drive/Program\ Files/VRAM\ Keeper
  # A value an earlier run left would pass the checks below.
  W wine reg delete 'HKCU\Software\Microsoft\Windows\CurrentVersion\Run' /v 'VRAM Keeper' /f >/dev/null 2>&1 || true
  fail() { echo "installer: $*" >&2; exit 1; }
  # An NSIS uninstaller copies itself to %TEMP% and finishes from there
  # (its _?= switch cannot be passed unquoted through wine): wait for it.
  gone() { for _ in $(seq 60); do [ ! -e "$1" ] && return 0; sleep 0.5; done; return 1; }
  W wine "$setup" /S || fail "silent per-user install exited $?"
  [ -f "$user/vramkeeper.exe" ] && [ -f "$user/uninstall.exe" ] || fail "no vramkeeper.exe in $user"
  ls "$drive"/users/root/AppData/Roaming/Microsoft/Windows/Start\ Menu/Programs/VRAM\ Keeper.lnk >/dev/null || fail "no Start menu entry"
  W wine reg query 'HKCU\Software\Microsoft\Windows\CurrentVersion\Run' /v 'VRAM Keeper' | grep -q -- '--hidden' || fail "no start at login"
  W wine reg query 'HKCU\Software\Microsoft\Windows\CurrentVersion\Uninstall\VRAMKeeper' /v UninstallString >/dev/null || fail "not in Apps & features"
  W wine "C:\\users\\root\\AppData\\Local\\Programs\\VRAM Keeper\\vramkeeper.exe" version | grep -q '(windows/amd64' || fail "the installed exe does not run"
  W wine "C:\\users\\root\\AppData\\Local\\Programs\\VRAM Keeper\\uninstall.exe" /S || fail "uninstall exited $?"
  gone "$user/vramkeeper.exe" || fail "the uninstaller left vramkeeper.exe"
  ! W wine reg query 'HKCU\Software\Microsoft\Windows\CurrentVersion\Run' /v 'VRAM Keeper' >/dev/null 2>&1 || fail "the uninstaller left the Run value"
  W wine "$setup" /S /ALLUSERS /NOAUTOSTART || fail "silent all-users install exited $?"
  [ -f "$all/vramkeeper.exe" ] || fail "no vramkeeper.exe in $all"
  ! W wine reg query 'HKCU\Software\Microsoft\Windows\CurrentVersion\Run' /v 'VRAM Keeper' >/dev/null 2>&1 || fail "/NOAUTOSTART still set start at login"
  W wine reg query 'HKLM\Software\Microsoft\Windows\CurrentVersion\Uninstall\VRAMKeeper' /v InstallLocation >/dev/null || fail "all-users install not registered in HKLM"
  W wine "C:\\Program Files\\VRAM Keeper\\uninstall.exe" /S || fail "all-users uninstall exited $?"
  gone "$all/vramkeeper.exe" || fail "the uninstaller left $all/vramkeeper.exe"
  echo ">> installer: per user and all users, silent, uninstalled cleanly" >&2
fi
echo ">> Windows tier passed in $(( $(date +%s) - start ))s" >&2
