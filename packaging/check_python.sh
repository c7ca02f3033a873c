#!/usr/bin/env bash
# Install Chroma Studio into a fresh virtual environment of the given Python, as README.md says,
# and run the fast tests there: the check that a Python version (e.g. a new system Python) works.
#
#   packaging/check_python.sh [PYTHON] [PYTEST ARGS...]
#   packaging/check_python.sh python3.13
#   packaging/check_python.sh ~/.pyenv/versions/3.13.0/bin/python3 tests/packaging
#
# PYTHON defaults to python3. It downloads what pip needs (with CUDA wheels where the PyTorch
# index cannot be reached: several GB). Environment: VENV (the environment's folder; default a
# temporary one, removed at the end), KEEP=1 (keep it).
# Exit status: pytest's; 3 when the installation failed.
set -uo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
python=${1:-python3}
[ $# -gt 0 ] && shift
started=$(date +%s)
venv=${VENV:-$(mktemp -d "${TMPDIR:-/tmp}/chroma-studio-python-check.XXXXXX")}
export PIP_PROGRESS_BAR=off

elapsed() { echo $(($(date +%s) - started)); }
step() { echo; echo "== [$(elapsed)s] $*"; }
cleanup() { if [ "${KEEP:-}" != 1 ] && [ -z "${VENV:-}" ]; then rm -rf "$venv"; fi; }
trap cleanup EXIT

cd "$root" || exit 3
version=$("$python" -c 'import sys; print(sys.version.split()[0], sys.executable)') || exit 3
step "Python $version"
step "Fresh environment in $venv"
"$python" -m venv --clear "$venv" || exit 3
# shellcheck disable=SC1091
. "$venv/bin/activate"

step "python packaging/install_torch.py"
python packaging/install_torch.py || { echo "FAIL: installing PyTorch"; exit 3; }
step 'pip install -e ".[test]"'
pip install -e ".[test]" || { echo "FAIL: installing Chroma Studio"; exit 3; }
installed=$(elapsed)
size=$(du -sh "$venv" | cut -f1)
torch=$(python -c 'import importlib.metadata as m; print(m.version("torch"))')
echo "Installed in ${installed}s: torch $torch, $(pip list 2>/dev/null | tail -n +3 | wc -l) packages, $size"

step 'python -m pytest -q -m "not slow"' "$@"
test_started=$(date +%s)
python -m pytest -q -m "not slow" "$@"
code=$?
echo
echo "== Summary: Python $(python -c 'import sys; print(sys.version.split()[0])'), torch $torch," \
    "environment $size, install ${installed}s, tests $(($(date +%s) - test_started))s, pytest exit $code"
exit "$code"
