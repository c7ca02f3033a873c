#!/usr/bin/env bash
# Build "Chroma Studio.app" and a disk image on an Apple-silicon Mac; sign and notarize when asked.
#
#   packaging/macos/build.sh
#
# Environment:
#   PYTHON             build interpreter, 3.10-3.13 for arm64 (default python3.12, else python3)
#   OUT                output folder (default build/packaging)
#   CODESIGN_IDENTITY  "Developer ID Application: Name (TEAMID)" to sign (PyInstaller signs every
#                      binary with the hardened runtime and a timestamp; see packaging/SIGNING.md)
#   NOTARY_PROFILE     a keychain profile made with `xcrun notarytool store-credentials`; when set,
#                      the app and the disk image are notarized and the tickets stapled
#   OFFLINE_WHEELS     a wheel folder to put on the disk image beside the app (offline edition)
# Output: $OUT/ChromaStudio-<version>-macos-arm64.dmg
set -euo pipefail

[ "$(uname -s)" = Darwin ] || { echo "Build the macOS app on macOS." >&2; exit 2; }
[ "$(uname -m)" = arm64 ] || echo "warning: this Mac is not arm64; the app is for Apple silicon" >&2

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
out=$(mkdir -p "${OUT:-$root/build/packaging}" && cd "${OUT:-$root/build/packaging}" && pwd)
python=${PYTHON:-$(command -v python3.12 || command -v python3)}
venv=$out/build-venv
identity=${CODESIGN_IDENTITY:-}

[ -x "$venv/bin/python" ] || "$python" -m venv "$venv"
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$root/packaging/requirements-build.txt"

CHROMA_STUDIO_CODESIGN_IDENTITY=$identity CHROMA_STUDIO_ENTITLEMENTS=$here/entitlements.plist \
    "$venv/bin/python" "$root/packaging/build_bundle.py" --source "$root" --out "$out"

version=$("$venv/bin/python" -c 'import json,sys; print(json.load(open(sys.argv[1]))["app_version"])' "$out/stage/bundle.json")
app="$out/dist/Chroma Studio.app"
dmg="$out/ChromaStudio-$version-macos-arm64.dmg"

if [ -n "$identity" ]; then
    codesign --verify --deep --strict --verbose=2 "$app"
fi
if [ -n "${NOTARY_PROFILE:-}" ]; then
    [ -n "$identity" ] || { echo "NOTARY_PROFILE needs CODESIGN_IDENTITY" >&2; exit 2; }
    ditto -c -k --keepParent "$app" "$out/ChromaStudio-notarize.zip"
    xcrun notarytool submit "$out/ChromaStudio-notarize.zip" --keychain-profile "$NOTARY_PROFILE" --wait
    xcrun stapler staple "$app"
    rm -f "$out/ChromaStudio-notarize.zip"
fi

staging=$out/dmg
rm -rf "$staging" "$dmg"
mkdir -p "$staging"
ditto "$app" "$staging/Chroma Studio.app"
ln -s /Applications "$staging/Applications"
if [ -n "${OFFLINE_WHEELS:-}" ]; then
    ditto "$OFFLINE_WHEELS" "$staging/wheels"
fi
hdiutil create -volname "Chroma Studio" -srcfolder "$staging" -fs HFS+ -format UDZO -ov "$dmg"

if [ -n "$identity" ]; then
    codesign --sign "$identity" --timestamp "$dmg"
fi
if [ -n "${NOTARY_PROFILE:-}" ]; then
    xcrun notarytool submit "$dmg" --keychain-profile "$NOTARY_PROFILE" --wait
    xcrun stapler staple "$dmg"
    spctl --assess --type open --context context:primary-signature --verbose "$dmg"
fi
echo "$dmg"
