"""Take the README's screenshots: the real window, offscreen, through a short demo run.

    python resources/screenshots/make_screenshots.py [--out resources/screenshots] [--dark] [--size 1024x640]

The machine is the one this runs on (its real detection and recommendation); the run uses the
demo model, so it needs no download and no GPU. Settings, runs and caches go to a temporary
folder; only the PNGs are written to ``--out``.

With ``--size``, the window is that size on a screen of that size, and only the states that need
the most room are taken, as ``laptop-<size>-dataset.png``, ``-advanced``, ``-training`` and
``-samples``: what the app looks like on a laptop.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from PySide6.QtCore import QEventLoop, QItemSelectionModel, QSettings, QTimer

from chroma_studio.base.paths import resources_dir
from chroma_studio.gui import theme
from chroma_studio.gui.app import create_application
from chroma_studio.gui.main_window import MainWindow
from chroma_studio.gui.session import AppSettings

SIZE = (1280, 820)
RUN = {
    "model_flavour": "demo",
    "resolution": 128,
    "mixed_precision": "no",
    "lora_rank": 8,
    "learning_rate": 4e-4,
    "max_train_steps": 120,
    "checkpointing_steps": 40,
    "validation_steps": 30,
    "validation_num_inference_steps": 4,
    "validation_resolution": 64,
    "validation_prompt": ["a photo of sks, an astronaut smiling", "sks, a tabby cat sitting on a chair"],
}


def wait_until(signal, done: Callable[[], bool], timeout_s: float = 300) -> None:
    """Run the event loop until ``done()`` holds, checking whenever ``signal`` fires."""
    if done():
        return
    loop = QEventLoop()

    def check(*_args) -> None:
        if done():
            loop.quit()

    signal.connect(check)
    QTimer.singleShot(int(timeout_s * 1000), loop.quit)
    loop.exec()
    signal.disconnect(check)
    if not done():
        raise TimeoutError(f"gave up after {timeout_s:.0f} s")


def pause(milliseconds: int) -> None:
    loop = QEventLoop()
    QTimer.singleShot(milliseconds, loop.quit)
    loop.exec()


def parse_size(text: str) -> tuple[int, int]:
    width, _, height = text.partition("x")
    try:
        return int(width), int(height)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected WIDTHxHEIGHT, like 1024x640, not {text!r}") from None


def use_screen(size: tuple[int, int], folder: Path) -> None:
    """Make the offscreen platform's only screen ``size`` (read when the QApplication starts)."""
    if os.environ["QT_QPA_PLATFORM"] != "offscreen":
        return
    screen = {"name": "laptop", "x": 0, "y": 0, "width": size[0], "height": size[1]}
    screen.update(logicalDpi=96, logicalBaseDpi=96, dpr=1)
    config = folder / "screens.json"
    config.write_text(json.dumps({"screens": [screen]}))
    os.environ["QT_QPA_PLATFORM"] = f"offscreen:configfile={config}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", default=str(Path(__file__).resolve().parent), help="folder for the PNGs")
    parser.add_argument("--dark", action="store_true", help="use the dark theme")
    parser.add_argument("--size", type=parse_size, help="a laptop's screen, like 1024x640: its four worst states")
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    screens = Path(tempfile.mkdtemp(prefix="chroma-studio-screen-"))
    if args.size:
        use_screen(args.size, screens)
    app = create_application([sys.argv[0]])
    theme.apply_theme(app, dark=args.dark)
    suffix = "-dark" if args.dark else ""
    prefix = f"laptop-{args.size[0]}x{args.size[1]}-" if args.size else ""

    with tempfile.TemporaryDirectory(prefix="chroma-studio-screens-") as tmp:
        work = Path(tmp)
        photos = work / "my photos"
        photos.mkdir()
        for source in sorted((resources_dir() / "demo").iterdir()):
            if source.suffix in (".jpg", ".txt"):
                shutil.copy(source, photos / source.name)
        settings = AppSettings(QSettings(str(work / "settings.ini"), QSettings.Format.IniFormat))
        settings.output_folder = str(work / "runs")
        settings.cache_folder = str(work / "cache")

        window = MainWindow(settings)
        window.resize(*(args.size or SIZE))
        window.show()
        wait_until(window.machine_detected, lambda: window.summary is not None, 60)

        def shot(name: str, laptop_name: str = "") -> None:
            if args.size and not laptop_name:
                return
            pause(150)
            path = out / f"{prefix}{laptop_name if args.size else name}{suffix}.png"
            window.grab().save(str(path))
            print(path)

        shot("01-start")

        page = window.dataset_page
        page.set_folders([str(photos)])
        wait_until(page.images_loaded, lambda: page.image_count() > 0, 60)
        page.set_trigger_word("sks")
        page.wait_for_background(30_000)
        index = page.filter_model.index(0, 0)
        page.grid.selectionModel().setCurrentIndex(index, QItemSelectionModel.SelectionFlag.ClearAndSelect)
        pause(400)
        shot("02-dataset", "dataset")

        window.show_page("machine")
        shot("03-machine")

        window.show_page("train")
        shot("04-train")  # as recommended for this machine

        window.session.update(**RUN)  # a short run: the big button now says it would put back the recommended settings
        train = window.train_page
        train.advanced_toggle.setChecked(True)
        train.form.rows["resolution"].editor.setValue(500)
        train.form.focus_field("resolution")
        shot("05-advanced-validation", "advanced")
        train.form.rows["resolution"].editor.setValue(128)
        train.advanced_toggle.setChecked(False)

        model = window.controller.model
        if not train.start():
            raise RuntimeError("the run did not start")
        wait_until(model.steps_added, lambda: model.step >= 75 or not model.active)
        shot("06-training", "training")

        wait_until(window.controller.run_ended, lambda: not window.controller.running)
        pause(300)
        shot("07-finished")

        window.show_page("samples")
        window.samples_page.compare.set_steps(0, model.step)
        window.samples_page.gallery.model.wait_for_thumbnails()
        pause(300)
        shot("08-samples", "samples")

        started = time.perf_counter()
        window.close()
        page.wait_for_background(10_000)
        print(f"done in {time.perf_counter() - started:.1f} s after the run")
    shutil.rmtree(screens, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
