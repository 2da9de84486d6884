#!/usr/bin/env bash
# Debian chroots for the Windows (Wine) and package tiers, made with
# debootstrap from the archive apt already uses and cached under
# ~/.cache/vramkeeper/. Sourced by the tier scripts:
#
#   chroot_make DIR SUITE PKG...   make DIR once (minbase + PKGs), then reuse it
#   chroot_mount DIR               proc, dev, dev/pts, resolv.conf
#   chroot_umount DIR              undo chroot_mount, and every bind below DIR
#   chroot_rm DIR                  unmount, then remove (never through a mount)
#
# Callers hold chroot_lock while they use a shared chroot: two test runs
# on one machine would mount and unmount under each other.

CHROOT_CACHE=${VRAMKEEPER_CACHE:-$HOME/.cache/vramkeeper}

chroot_mirror() {
  local m=""
  if [ -f /etc/apt/sources.list.d/debian.sources ]; then
    m=$(sed -n 's/^URIs: *//p' /etc/apt/sources.list.d/debian.sources | grep -v security | head -1)
  fi
  if [ -z "$m" ] && [ -f /etc/apt/sources.list ]; then
    m=$(awk '$1=="deb" && $2 !~ /security/ {print $2; exit}' /etc/apt/sources.list)
  fi
  echo "${m:-http://deb.debian.org/debian}"
}

chroot_lock() { # fd 9 holds the lock until the caller exits
  mkdir -p "$CHROOT_CACHE"
  exec 9>"$CHROOT_CACHE/chroot.lock"
  flock 9
}

chroot_mount() {
  local r=$1
  cp /etc/resolv.conf "$r/etc/resolv.conf" 2>/dev/null || true
  mountpoint -q "$r/proc" || mount -t proc proc "$r/proc"
  mountpoint -q "$r/dev" || mount --bind /dev "$r/dev"
  mountpoint -q "$r/dev/pts" || mount --bind /dev/pts "$r/dev/pts"
}

chroot_umount() {
  local r m
  [ -d "$1" ] || return 0
  r=$(readlink -f "$1")
  [ "$r" != / ] || return 1
  # Deepest first: dev/pts before dev, binds inside before their parents.
  for m in $(awk -v r="$r/" 'index($2, r) == 1 {print $2}' /proc/mounts | sort -r); do
    umount "$m" 2>/dev/null || umount -l "$m"
  done
}

chroot_rm() {
  local r=$1
  [ -e "$r" ] || return 0
  chroot_umount "$r"
  if awk -v r="$(readlink -f "$r")/" 'index($2, r) == 1 {found=1} END {exit !found}' /proc/mounts; then
    echo "chroot_rm: $r still has mounts; not removing it" >&2
    return 1
  fi
  rm -rf "$r"
}

# chroot_make DIR SUITE PKG...: a package added to the list is installed
# into the cached chroot; another suite makes it anew.
chroot_make() {
  local r=$1 suite=$2
  shift 2
  local want="$suite $*" have=""
  [ -f "$r/.vramkeeper-ready" ] && have=$(cat "$r/.vramkeeper-ready")
  [ "$have" = "$want" ] && return 0
  if [ "${have%% *}" != "$suite" ]; then
    command -v debootstrap >/dev/null || { echo "chroot_make: debootstrap missing (scripts/deps.sh)" >&2; return 1; }
    chroot_rm "$r" || return 1
    mkdir -p "$(dirname "$r")"
    echo ">> debootstrap $suite into $r (once; cached)" >&2
    debootstrap --variant=minbase "$suite" "$r" "$(chroot_mirror)" >"$r.log" 2>&1 || {
      tail -n 20 "$r.log" >&2
      return 1
    }
  fi
  rm -f "$r/.vramkeeper-ready"
  if [ $# -gt 0 ]; then
    echo ">> installing into the $suite chroot: $*" >&2
    chroot_mount "$r"
    chroot "$r" env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin DEBIAN_FRONTEND=noninteractive \
      sh -c 'apt-get update -qq && apt-get install -y -qq --no-install-recommends "$@"' sh "$@" >>"$r.log" 2>&1 || {
      tail -n 20 "$r.log" >&2
      chroot_umount "$r"
      return 1
    }
    chroot "$r" apt-get clean
    chroot_umount "$r"
  fi
  echo "$want" >"$r/.vramkeeper-ready"
}
