#!/usr/bin/env sh
# Add Chroma Studio to the applications menu (and `chroma-studio` to ~/.local/bin).
#   ./install-desktop-entry.sh           install, pointing at this folder
#   ./install-desktop-entry.sh --remove  remove the menu entry, icon and command
#                                        (the environment stays in ~/.local/share/chroma-studio)
set -eu
here=$(cd "$(dirname "$0")" && pwd)
data=${XDG_DATA_HOME:-$HOME/.local/share}
entry=$data/applications/chroma-studio.desktop
icon=$data/icons/hicolor/512x512/apps/chroma-studio.png
command=$HOME/.local/bin/chroma-studio

if [ "${1:-}" = "--remove" ]; then
    rm -f "$entry" "$icon"
    [ -L "$command" ] && rm -f "$command"
    echo "Removed. To delete the downloaded environment too: rm -rf \"$data/chroma-studio\""
    exit 0
fi
mkdir -p "$(dirname "$entry")" "$(dirname "$icon")" "$(dirname "$command")"
cp "$here/chroma-studio.png" "$icon"
sed "s|@LAUNCHER@|$here/chroma-studio|g" "$here/chroma-studio.desktop.in" > "$entry"
chmod +x "$entry"
ln -sf "$here/chroma-studio" "$command"
command -v update-desktop-database >/dev/null 2>&1 && update-desktop-database "$data/applications" || true
echo "Chroma Studio is in the applications menu; 'chroma-studio' starts it from a terminal."
