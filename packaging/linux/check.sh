#!/usr/bin/env bash
# End-to-end check of the Linux package. Too slow for CI (a few minutes): run it by hand.
#
#   packaging/linux/check.sh            build, install into a temporary HOME, check, clean up
#   packaging/linux/check.sh --keep     keep the temporary folder for inspection
#
# What it does:
#   1. builds the tarball (packaging/linux/build.sh);
#   2. extracts it and puts an offline "wheels" folder next to the launcher holding the CPU
#      build of PyTorch (from TORCH_INDEX, or a wheel source pip is configured with) and every
#      other dependency (pip download), so setup downloads nothing; without a CPU build of
#      PyTorch the rest is skipped (SKIP, exit 2): PyPI's Linux wheel would bring 3 GB of CUDA;
#   3. first start: the setup window, offscreen (--auto --no-start), installs into a fresh HOME;
#   4. checks that later starts go straight in (--status), that the launcher starts the app and
#      it keeps running, that the main window appears (a screenshot through window_probe.py),
#      and that `chroma-studio doctor` / `doctor --json` work in the installed environment;
#   5. an in-place update: the installed version is made to look old; the next start reinstalls
#      only Chroma Studio into the same environment.
#
# Environment: SOURCE (tree to build; default this checkout), PYTHON (build and app Python,
# 3.10-3.13; default python3), TORCH_SPEC (default torch==2.13.0), TORCH_INDEX (default
# https://download.pytorch.org/whl/cpu), WHEELS (reuse a wheel folder).
# Exit status: 0 all passed; 1 a check failed; 2 nothing failed but a part of the app is not in
# this build yet (reported as SKIP).
set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
python=${PYTHON:-python3}
torch_spec=${TORCH_SPEC:-torch==2.13.0}
torch_index=${TORCH_INDEX:-https://download.pytorch.org/whl/cpu}
keep=${1:-}
work=$(mktemp -d "${TMPDIR:-/tmp}/chroma-studio-check.XXXXXX")
started=$(date +%s)
results=()
failed=0
skipped=0

elapsed() { echo $(($(date +%s) - started)); }
step() { echo; echo "== [$(elapsed)s] $*"; }
pass() { results+=("PASS  $1"); echo "PASS: $1"; }
fail() { results+=("FAIL  $1"); echo "FAIL: $1"; failed=1; }
skip() { results+=("SKIP  $1"); echo "SKIP: $1"; skipped=1; }
finish() {
    echo
    echo "== Summary after $(elapsed)s (work folder: $work)"
    printf '   %s\n' "${results[@]}"
    if [ "$keep" != "--keep" ]; then rm -rf "$work"; fi
    if [ "$failed" = 1 ]; then exit 1; fi
    if [ "$skipped" = 1 ]; then exit 2; fi
    exit 0
}

step "Build the Linux package"
if ! tarball=$(OUT="$work/build" PYTHON="$python" "$here/build.sh" | tail -n 1) || [ ! -f "$tarball" ]; then
    fail "build the tarball"
    finish
fi
pass "build $(basename "$tarball") ($(du -h "$tarball" | cut -f1))"

step "Install into a temporary HOME"
export HOME=$work/home
unset XDG_DATA_HOME XDG_CACHE_HOME XDG_CONFIG_HOME CHROMA_STUDIO_HOME CHROMA_STUDIO_CACHE_DIR VIRTUAL_ENV
mkdir -p "$HOME" "$work/opt"
tar -xzf "$tarball" -C "$work/opt"
folder=$(find "$work/opt" -mindepth 1 -maxdepth 1 -type d | head -n 1)
launcher=$folder/chroma-studio
app_wheel=$(find "$folder/_internal/app" -name 'chroma_studio-*.whl' | head -n 1)
"$folder/install-desktop-entry.sh" >/dev/null && [ -f "$HOME/.local/share/applications/chroma-studio.desktop" ] \
    && pass "desktop entry installed" || fail "desktop entry"

step "Offline wheel folder next to the launcher ($torch_spec, CPU)"
download() { "$python" -m pip download --quiet --disable-pip-version-check --dest "$folder/wheels" "$@"; }
if [ -n "${WHEELS:-}" ]; then
    cp -a "$WHEELS" "$folder/wheels"
else
    download --no-deps --index-url "$torch_index" --timeout 15 --retries 1 "$torch_spec" 2>"$work/pip-download.log"
    cpu_wheel=$(find "$folder/wheels" -name 'torch-*+cpu-*.whl' 2>/dev/null | head -n 1)
    if [ -z "$cpu_wheel" ]; then
        tail -n 3 "$work/pip-download.log"
        skip "setup and the checks after it: no CPU build of PyTorch ($torch_spec) could be fetched from\
 $torch_index or a local wheel source (TORCH_INDEX or WHEELS can point at one)"
        finish
    fi
    if ! download "$cpu_wheel" "$app_wheel" 2>"$work/pip-download.log"; then
        tail -n 20 "$work/pip-download.log"
        fail "prepare the wheel folder"
        finish
    fi
fi
rm -f "$folder/wheels"/chroma_studio-*.whl  # the launcher installs its own bundled copy
ls "$folder/wheels" | grep -E '^torch-' || true
pass "wheel folder: $(ls "$folder/wheels" | wc -l) wheels, $(du -sh "$folder/wheels" | cut -f1)"

step "First start: setup window offscreen (--auto --no-start)"
t0=$(date +%s)
if QT_QPA_PLATFORM=offscreen timeout 1800 "$launcher" --auto --no-start >"$work/setup.out" 2>&1; then
    pass "setup (window, offline, CPU) in $(($(date +%s) - t0))s"
else
    tail -n 40 "$work/setup.out"
    tail -n 40 "$HOME"/.local/share/chroma-studio/logs/setup-*.log 2>/dev/null
    fail "setup exited non-zero"
    finish
fi
data=$HOME/.local/share/chroma-studio
env_python=$data/env/bin/python
grep -E 'works on|Plan:|Detected:' "$data"/logs/setup-*.log | head -n 5

step "Later starts go straight in"
status=$("$launcher" --status)
echo "$status"
echo "$status" | grep -q '"work": "ready"' && pass "installed state is ready (no setup on the next start)" \
    || fail "state after setup is not ready"

step "The launcher starts the app"
QT_QPA_PLATFORM=offscreen "$launcher" >"$work/app.out" 2>&1 &
app_pid=$!
sleep 12
if kill -0 "$app_pid" 2>/dev/null; then
    command_line=$(tr '\0' ' ' <"/proc/$app_pid/cmdline")
    kill "$app_pid"
    wait "$app_pid" 2>/dev/null
    case "$command_line" in
        *"-m chroma_studio"*) pass "app running after 12 s as: $command_line" ;;
        *) fail "process alive but not the app: $command_line" ;;
    esac
else
    wait "$app_pid"
    code=$?
    tail -n 15 "$work/app.out"
    if grep -q "No module named 'chroma_studio.gui" "$work/app.out"; then
        skip "app start: this build has no GUI (chroma_studio.gui.app)"
    else
        fail "app exited within 12 s (exit $code)"
    fi
fi

step "X11 libraries for Qt's xcb plugin (not in the bundle: they come with the desktop)"
# The app checks them before it opens a window on X11 and names the packages to install.
xcb_check='import sys
from chroma_studio.gui.xcb_libraries import check_xcb_libraries
problem = check_xcb_libraries({"DISPLAY": ":0"})
sys.stdout.write(problem or "")
sys.exit(3 if problem else 0)'
"$env_python" -c "$xcb_check" >"$work/xcb.out" 2>&1
case $? in
    0) pass "the X11 libraries Qt needs are installed here" ;;
    3) cat "$work/xcb.out"; pass "missing X11 libraries are named with the packages to install" ;;
    *) tail -n 5 "$work/xcb.out"; fail "the X11 library check did not run" ;;
esac

step "The main window appears (offscreen screenshot)"
shot=$work/window.png
QT_QPA_PLATFORM=offscreen timeout 120 "$env_python" "$here/window_probe.py" "$shot" 5000 >"$work/probe.out" 2>&1
code=$?
grep WINDOW_PROBE "$work/probe.out" || tail -n 15 "$work/probe.out"
if [ "$code" = 0 ] && [ -s "$shot" ]; then
    cp "$shot" "${CHECK_SCREENSHOT:-$root/build/packaging-check-window.png}" 2>/dev/null || true
    pass "main window shown and captured ($(grep -o '"title": "[^"]*"' "$work/probe.out"))"
elif [ "$code" = 4 ]; then
    skip "main window: this build has no GUI (chroma_studio.gui.app)"
else
    fail "main window did not appear (exit $code)"
fi

step "chroma-studio doctor in the installed environment"
doctor() { "$data/env/bin/chroma-studio" doctor "$@" >"$work/doctor.out" 2>&1; }
if doctor; then
    head -n 20 "$work/doctor.out"
    pass "chroma-studio doctor"
    if doctor --json && "$env_python" -c 'import json,sys; json.load(open(sys.argv[1]))' "$work/doctor.out"; then
        pass "chroma-studio doctor --json prints JSON"
    else
        fail "chroma-studio doctor --json"
    fi
    if "$launcher" doctor >/dev/null 2>&1; then pass "launcher passes 'doctor' through to the app"; else
        fail "launcher doctor"; fi
elif grep -q "invalid choice: 'doctor'" "$work/doctor.out"; then
    skip "doctor: this build has no 'doctor' command"
else
    tail -n 15 "$work/doctor.out"
    fail "chroma-studio doctor"
fi

step "Update in place (the installed version made to look old)"
marker=$data/env/.kept-by-update
touch "$marker"
"$env_python" - "$data/install.json" <<'PY'
import json, sys
state = json.load(open(sys.argv[1]))
state["app_version"] = "0.0.0"
json.dump(state, open(sys.argv[1], "w"))
PY
if "$launcher" --status | grep -q '"work": "update"' && "$launcher" --console --no-start >"$work/update.out" 2>&1 \
    && [ -f "$marker" ] && "$launcher" --status | grep -q '"work": "ready"'; then
    grep -E '^\[' "$work/update.out"
    pass "update reused the environment and reinstalled only Chroma Studio"
else
    tail -n 20 "$work/update.out"
    fail "update in place"
fi

finish
