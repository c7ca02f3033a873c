#!/usr/bin/env bash
# Build the Linux package: a tarball with the launcher, uv, the Chroma Studio wheel and a
# desktop entry installer. Output: $OUT/chroma-studio-<version>-linux-<arch>.tar.gz
#
#   packaging/linux/build.sh
#
# Environment: OUT (default build/packaging), PYTHON (build interpreter, 3.10-3.13; default
# python3), SOURCE (the tree to build the wheel from; default this checkout),
# ALLOW_INCOMPLETE_WHEEL=1 (warn instead of failing when the wheel lacks resources/).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
out=$(mkdir -p "${OUT:-$root/build/packaging}" && cd "${OUT:-$root/build/packaging}" && pwd)
python=${PYTHON:-python3}
venv=$out/build-venv

if [ ! -x "$venv/bin/python" ]; then
    "$python" -m venv "$venv"
fi
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$root/packaging/requirements-build.txt"

extra=()
[ "${ALLOW_INCOMPLETE_WHEEL:-}" = 1 ] && extra+=(--allow-incomplete-wheel)
"$venv/bin/python" "$root/packaging/build_bundle.py" --source "${SOURCE:-$root}" --out "$out" "${extra[@]}"

version=$("$venv/bin/python" -c 'import json,sys; print(json.load(open(sys.argv[1]))["app_version"])' "$out/stage/bundle.json")
name=chroma-studio-$version-linux-$(uname -m)
folder=$out/linux/$name
rm -rf "$folder"
mkdir -p "$folder"
cp -a "$out/dist/chroma-studio/." "$folder/"
cp "$out/icons/chroma-studio.png" "$folder/"
cp "$here/chroma-studio.desktop.in" "$here/install-desktop-entry.sh" "$here/README.txt" "$folder/"
chmod +x "$folder/install-desktop-entry.sh" "$folder/chroma-studio"
tar -C "$out/linux" -czf "$out/$name.tar.gz" "$name"
echo "$out/$name.tar.gz"
