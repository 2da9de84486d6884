#!/usr/bin/env bash
# Desktop end-to-end test: the real vramkeeper binary on a private X server
# (Xvfb) and a private session bus (dbus-run-session), against the real
# Ollama with generated models. internal/e2e's TestDesktop plays the desktop:
# it owns the tray watcher and notification daemon names, clicks the tray
# menu over D-Bus and the window's tabs with xdotool, and takes screenshots.
#
# Usage: scripts/e2e-desktop.sh
#   VRAMKEEPER_OLLAMA_BIN     ollama binary (default: the cached build)
#   VRAMKEEPER_E2E_SHOTS      where screenshots go (default: a temp dir, kept
#                             and printed)
#   VRAMKEEPER_E2E_REALISTIC  1: the realistic scenario instead of the quick
#                             one (two tiny models, 1 GiB card, seconds):
#                             generated models of released sizes (qwen2.5-coder:7b,
#                             llama3.2:3b and :1b, nomic-embed-text; 7.7 GB in
#                             a temp dir, removed, under 9 GB while one is
#                             pushed) on a claimed 8 GiB card; loads from the
#                             tray and the command line, an eviction, Give GPU
#                             back and Restore models. About 7 minutes on 2
#                             cores with the default hold.
#   VRAMKEEPER_E2E_RUN        which tests (default: all four):
#                             TestFirstRun plays a first run on a desktop
#                             without a tray (no Ollama, Start Ollama, a
#                             model pulled from a local docker-registry, a
#                             download cancelled); TestAddressTaken a second
#                             instance on the first one's listen address,
#                             TestAddressTakenWithATray the same where tray
#                             icons show (its menu says so)
#   VRAMKEEPER_E2E_HOLD       realistic: how long each state is held so the
#                             chart has a shape (default 30s, at most 15m;
#                             there are six).
# The README's pictures:
#   VRAMKEEPER_E2E_REALISTIC=1 VRAMKEEPER_E2E_HOLD=3m \
#     VRAMKEEPER_E2E_SHOTS=docs/screenshots scripts/e2e-desktop.sh
#   VRAMKEEPER_E2E_RUN='TestFirstRun|TestAddressTaken' \
#     VRAMKEEPER_E2E_SHOTS=docs/screenshots scripts/e2e-desktop.sh
# Exits non-zero when any check fails. Needs xvfb dbus x11-utils xdotool
# imagemagick docker-registry (scripts/deps.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
start=$(date +%s)

for tool in Xvfb dbus-run-session xdotool import xdpyinfo; do
  command -v "$tool" >/dev/null || { echo "e2e-desktop: $tool missing: run scripts/deps.sh" >&2; exit 1; }
done

run=${VRAMKEEPER_E2E_RUN:-TestDesktop|TestFirstRun|TestAddressTaken|TestAddressTakenWithATray}
# docs/screenshots holds the README's pictures of realistic models; the
# quick scenario's toys must not replace them. The first-run pictures
# (first-run-*.png) are the same in both.
case "${VRAMKEEPER_E2E_SHOTS:-}" in
  docs/screenshots | docs/screenshots/ | "$(pwd)/docs/screenshots" | "$(pwd)/docs/screenshots/")
    if [ "${VRAMKEEPER_E2E_REALISTIC:-}" != 1 ] && [[ "|$run|" == *"|TestDesktop|"* ]]; then
      echo "e2e-desktop: docs/screenshots is for the realistic scenario's pictures: set VRAMKEEPER_E2E_REALISTIC=1" >&2
      exit 2
    fi
    ;;
esac

work=$(mktemp -d "${TMPDIR:-/tmp}/vramkeeper-e2e.XXXXXX")
shots=${VRAMKEEPER_E2E_SHOTS:-$work/screenshots}
mkdir -p "$shots"
shots=$(cd "$shots" && pwd)
xvfb_pid=""
test_pid=""
cleanup() {
  rc=$?
  if [ -n "$test_pid" ] && kill -0 "$test_pid" 2>/dev/null; then
    kill -TERM -- "-$test_pid" 2>/dev/null || true
    wait "$test_pid" 2>/dev/null || true
  fi
  # The test stops the app and Ollama itself (the kernel kills them if it
  # dies); dbus-run-session stops its bus when the test exits; Xvfb is ours.
  if [ -n "$xvfb_pid" ]; then
    kill "$xvfb_pid" 2>/dev/null || true
    wait "$xvfb_pid" 2>/dev/null || true
  fi
  if [ "$rc" -ne 0 ] && [ -s "$work/xvfb.log" ]; then
    echo "--- Xvfb log" >&2; tail -n 20 "$work/xvfb.log" >&2
  fi
  # Keep the screenshots when they went to the temp dir; drop the rest.
  find "$work" -mindepth 1 -maxdepth 1 ! -name screenshots -exec rm -rf {} +
  [ "$shots" = "$work/screenshots" ] || rmdir "$work" 2>/dev/null || true
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

echo ">> building vramkeeper" >&2
go build -o "$work/vramkeeper" .

# -displayfd makes Xvfb pick a free display and print its number, so runs
# next to each other (or a developer's :99) never collide.
exec 3>"$work/display"
Xvfb -displayfd 3 -screen 0 1280x800x24 -nolisten tcp -nolisten unix >"$work/xvfb.log" 2>&1 &
xvfb_pid=$!
exec 3>&-
for _ in $(seq 1 300); do
  [ -s "$work/display" ] && break
  kill -0 "$xvfb_pid" 2>/dev/null || { echo "e2e-desktop: Xvfb exited" >&2; exit 1; }
  sleep 0.1
done
display=":$(tr -dc 0-9 <"$work/display")"
[ "$display" != ":" ] || { echo "e2e-desktop: Xvfb gave no display in 30s" >&2; exit 1; }
export DISPLAY=$display
xdpyinfo >/dev/null || { echo "e2e-desktop: cannot open display $DISPLAY" >&2; exit 1; }
echo ">> Xvfb on $DISPLAY" >&2

export VRAMKEEPER_E2E=1 VRAMKEEPER_E2E_BIN="$work/vramkeeper" VRAMKEEPER_E2E_SHOTS="$shots"
export VRAMKEEPER_REQUIRE_OLLAMA=1 VRAMKEEPER_REQUIRE_REGISTRY=1 LANG=en_US.UTF-8
# The test must not see the developer's bus or desktop session.
unset DBUS_SESSION_BUS_ADDRESS XDG_SESSION_TYPE WAYLAND_DISPLAY
echo ">> desktop test (private session bus)" >&2
# In a process group of its own (set -m), so cleanup can stop the bus, go
# test and the test binary together if this script is interrupted; the test
# binary's children (app, Ollama) die with it (PR_SET_PDEATHSIG).
set -m
# The realistic scenario holds six states for up to 15 minutes each.
timeout=10m
[ "${VRAMKEEPER_E2E_REALISTIC:-}" = 1 ] && timeout=2h
dbus-run-session -- go test -count=1 -timeout "$timeout" -run "^(${run})\$" -v ./internal/e2e &
test_pid=$!
set +m
wait "$test_pid"
test_pid=""
echo ">> desktop end-to-end passed in $(( $(date +%s) - start ))s; screenshots in $shots" >&2
