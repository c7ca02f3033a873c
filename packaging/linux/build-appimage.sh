#!/usr/bin/env bash
# Optional: wrap the Linux build as an AppImage (needs appimagetool on PATH, or APPIMAGETOOL=path).
# Run packaging/linux/build.sh first. Output: $OUT/Chroma_Studio-<version>-<arch>.AppImage
# A "wheels" folder next to the .AppImage file is used offline, as with the tarball.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
out=${OUT:-$root/build/packaging}
tool=${APPIMAGETOOL:-appimagetool}
command -v "$tool" >/dev/null || { echo "appimagetool not found (set APPIMAGETOOL)" >&2; exit 2; }
[ -x "$out/dist/chroma-studio/chroma-studio" ] || { echo "run packaging/linux/build.sh first" >&2; exit 2; }
version=$(sed -n 's/.*"app_version": "\(.*\)".*/\1/p' "$out/stage/bundle.json")
appdir=$out/AppDir
rm -rf "$appdir"
mkdir -p "$appdir/usr/lib"
cp -a "$out/dist/chroma-studio" "$appdir/usr/lib/chroma-studio"
cp "$out/icons/chroma-studio.png" "$appdir/chroma-studio.png"
sed 's|"@LAUNCHER@"|chroma-studio|' "$here/chroma-studio.desktop.in" > "$appdir/chroma-studio.desktop"
cat > "$appdir/AppRun" <<'RUN'
#!/bin/sh
here=$(dirname "$(readlink -f "$0")")
exec "$here/usr/lib/chroma-studio/chroma-studio" "$@"
RUN
chmod +x "$appdir/AppRun"
ARCH=$(uname -m) "$tool" "$appdir" "$out/Chroma_Studio-$version-$(uname -m).AppImage"
