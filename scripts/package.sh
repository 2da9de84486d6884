#!/usr/bin/env bash
# Builds the release packages into dist/:
#   vramkeeper_VERSION_amd64.deb, vramkeeper-VERSION-1.x86_64.rpm  (Linux, nfpm)
#   vramkeeper-VERSION-windows-amd64.zip                            (vramkeeper.exe)
#   vramkeeper-VERSION-setup.exe                                    (NSIS installer)
# The Windows build cross-compiles with mingw-w64 (cgo for Fyne); its first
# run compiles Fyne's C parts for Windows (about 10 minutes on 2 cores).
# No -trimpath: it would compile every cgo part a second time, beside the
# test builds' cache.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
NFPM=github.com/goreleaser/nfpm/v2/cmd/nfpm@v2.48.0
VERSION=${VERSION:-$(sed -n 's/^ *Version *= *"\(.*\)"/\1/p' FyneApp.toml | head -1)}
[ -n "$VERSION" ] || { echo "no Version in FyneApp.toml" >&2; exit 1; }
ldflags="-s -w -X github.com/vramkeeper/vramkeeper/internal/version.Version=$VERSION"
out=dist
build=$out/build
rm -rf "$out"
mkdir -p "$build/linux-amd64" "$build/windows-amd64"
start=$(date +%s)

echo ">> linux/amd64 binary" >&2
CGO_ENABLED=1 go build -ldflags "$ldflags" -o "$build/linux-amd64/vramkeeper" .

echo ">> windows/amd64 binary (mingw-w64)" >&2
# The icon (ICO, up to 256 px) and version go into the .exe through a
# resource object that the Go linker picks up from the main package.
convert assets/icon.png -define icon:auto-resize=256,64,48,32,16 "$build/vramkeeper.ico"
syso=rsrc_windows_amd64.syso
trap 'rm -f "$syso"' EXIT
IFS=. read -r vmaj vmin vpat <<<"$VERSION"
cat >"$build/vramkeeper.rc" <<RC
1 ICON "vramkeeper.ico"
1 VERSIONINFO
FILEVERSION ${vmaj:-0},${vmin:-0},${vpat:-0},0
PRODUCTVERSION ${vmaj:-0},${vmin:-0},${vpat:-0},0
BEGIN
  BLOCK "StringFileInfo"
  BEGIN
    BLOCK "040904b0"
    BEGIN
      VALUE "FileDescription", "VRAM Keeper"
      VALUE "ProductName", "VRAM Keeper"
      VALUE "ProductVersion", "$VERSION"
      VALUE "FileVersion", "$VERSION"
      VALUE "OriginalFilename", "vramkeeper.exe"
    END
  END
  BLOCK "VarFileInfo"
  BEGIN
    VALUE "Translation", 0x409, 1200
  END
END
RC
(cd "$build" && x86_64-w64-mingw32-windres -O coff -i vramkeeper.rc -o "../../$syso")
GOOS=windows GOARCH=amd64 CGO_ENABLED=1 CC=x86_64-w64-mingw32-gcc \
  go build -ldflags "$ldflags -H=windowsgui" -o "$build/windows-amd64/vramkeeper.exe" .
rm -f "$syso"

echo ">> .deb and .rpm (nfpm)" >&2
for p in deb rpm; do
  VERSION=$VERSION go run "$NFPM" package --config packaging/linux/nfpm.yaml --packager "$p" --target "$out/" >&2
done

echo ">> windows zip" >&2
zip -j -q "$out/vramkeeper-$VERSION-windows-amd64.zip" "$build/windows-amd64/vramkeeper.exe"

echo ">> windows installer (NSIS)" >&2
makensis -V2 -DVERSION="$VERSION" -DEXE="$PWD/$build/windows-amd64/vramkeeper.exe" -DICON="$PWD/$build/vramkeeper.ico" \
  -DOUTFILE="$PWD/$out/vramkeeper-$VERSION-setup.exe" packaging/windows/vramkeeper.nsi >&2

echo ">> packages in $out/ ($(( $(date +%s) - start ))s):" >&2
ls -l "$out" | grep -v '^total\|build$' >&2
