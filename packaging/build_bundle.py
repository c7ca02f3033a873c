"""Stage and freeze the launcher for the current system (shared by the Windows, macOS and Linux builds).

1. builds Chroma Studio's wheel from the source tree (``uv build --wheel``) and checks that the
   shipped ``resources/`` are inside it;
2. copies the ``uv`` binary of the build environment (the ``uv`` package on PyPI carries it);
3. writes ``bundle.json`` (names and versions the launcher reads) and the icons;
4. freezes the launcher with PyInstaller (``launcher/launcher.spec``).

Run it with the build environment's Python (``pip install -r packaging/requirements-build.txt``);
the per-OS scripts do. Output under ``--out``: ``stage/``, ``icons/``, ``dist/`` (the frozen app).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
REQUIRED_IN_WHEEL = "chroma_studio/resources/models/transformer/config.json"


def build_wheel(source: Path, out: Path, uv: Path) -> Path:
    for old in out.glob("chroma_studio-*.whl"):
        old.unlink()
    subprocess.run([str(uv), "build", "--wheel", "--out-dir", str(out), str(source)], check=True)
    wheels = sorted(out.glob("chroma_studio-*.whl"))
    if len(wheels) != 1:
        sys.exit(f"expected one chroma_studio wheel in {out}, found {[w.name for w in wheels]}")
    return wheels[0]


def check_wheel(wheel: Path) -> list[str]:
    """Problems that would make the installed app fail (empty when the wheel is complete)."""
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
    problems = []
    if REQUIRED_IN_WHEEL not in names:
        problems.append(
            f"{wheel.name} lacks {REQUIRED_IN_WHEEL}: the resources/ folder is not packaged "
            "(see packaging/README.md, 'The wheel must carry resources/')."
        )
    if not any(n.endswith("entry_points.txt") for n in names):
        problems.append(f"{wheel.name} has no entry points (the chroma-studio command).")
    return problems


def wheel_version(wheel: Path) -> str:
    return wheel.name.split("-")[1]


def find_uv() -> Path:
    try:
        import uv
    except ImportError:
        sys.exit("uv is not installed in this Python: pip install -r packaging/requirements-build.txt")
    return Path(uv.find_uv_bin())


def stage(source: Path, out: Path, allow_incomplete: bool) -> dict:
    staging = out / "stage"
    (staging / "app").mkdir(parents=True, exist_ok=True)
    uv = find_uv()
    wheel = build_wheel(source, staging / "app", uv)
    problems = check_wheel(wheel)
    for problem in problems:
        print(f"{'warning' if allow_incomplete else 'error'}: {problem}", file=sys.stderr)
    if problems and not allow_incomplete:
        sys.exit(1)
    uv_name = "uv.exe" if os.name == "nt" else "uv"
    shutil.copy2(uv, staging / uv_name)
    uv_version = subprocess.run([str(uv), "--version"], capture_output=True, text=True, check=True).stdout.split()[1]
    manifest = {
        "app_version": wheel_version(wheel),
        "app_wheel": f"app/{wheel.name}",
        "uv": uv_name,
        "uv_version": uv_version,
        "platform": sys.platform,
    }
    (staging / "bundle.json").write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    return manifest


def freeze(out: Path) -> None:
    env = dict(os.environ, CHROMA_STUDIO_STAGE=str(out / "stage"), CHROMA_STUDIO_ICONS=str(out / "icons"))
    command = [sys.executable, "-m", "PyInstaller", str(HERE / "launcher" / "launcher.spec"), "--noconfirm"]
    command += ["--distpath", str(out / "dist"), "--workpath", str(out / "pyinstaller"), "--log-level", "WARN"]
    subprocess.run(command, check=True, env=env)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--source", type=Path, default=REPO, help="the Chroma Studio source tree")
    parser.add_argument("--out", type=Path, default=REPO / "build" / "packaging")
    parser.add_argument("--no-freeze", action="store_true", help="stage only (a bundle for --bundle)")
    parser.add_argument("--allow-incomplete-wheel", action="store_true", help="warn instead of failing")
    args = parser.parse_args()
    out = args.out.resolve()
    manifest = stage(args.source.resolve(), out, args.allow_incomplete_wheel)
    sys.path.insert(0, str(HERE))
    from make_icons import make_icons

    icon = args.source / "resources" / "icons" / "chroma-studio.png"
    make_icons(icon if icon.is_file() else None, out / "icons")
    if not args.no_freeze:
        freeze(out)
    print(json.dumps({"out": str(out), **manifest}))


if __name__ == "__main__":
    main()
