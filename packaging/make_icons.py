"""Application icons for the installers: PNG, Windows .ico, macOS .icns.

From ``resources/icons/chroma-studio.png`` when the project has one, else a drawn mark (a
colour-wheel ring on a dark rounded square), so the build never depends on a missing file.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

from PIL import Image, ImageDraw

SIZE = 1024


def draw_mark(size: int = SIZE) -> Image.Image:
    image = Image.new("RGBA", (size, size), (0, 0, 0, 0))
    draw = ImageDraw.Draw(image)
    draw.rounded_rectangle((0, 0, size - 1, size - 1), radius=size // 5, fill=(24, 22, 34, 255))
    centre, outer, inner = size / 2, size * 0.36, size * 0.22
    steps = 360
    for step in range(steps):
        if step < 28 or step >= 332:  # the opening of the "C"
            continue
        angle = math.radians(step)
        hue = step / steps
        colour = tuple(int(255 * (0.5 + 0.5 * math.cos(2 * math.pi * (hue + shift)))) for shift in (0, 1 / 3, 2 / 3))
        points = []
        for radius, a in ((outer, angle), (outer, angle + 0.03), (inner, angle + 0.03), (inner, angle)):
            points.append((centre + radius * math.cos(a), centre - radius * math.sin(a)))
        draw.polygon(points, fill=(*colour, 255))
    return image


def make_icons(source: Path | None, out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    image = Image.open(source).convert("RGBA").resize((SIZE, SIZE)) if source else draw_mark()
    image.resize((512, 512), Image.LANCZOS).save(out / "chroma-studio.png")
    image.save(out / "chroma-studio.ico", sizes=[(s, s) for s in (16, 24, 32, 48, 64, 128, 256)])
    image.save(out / "chroma-studio.icns")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--source", type=Path, help="a square PNG (default: resources/icons/chroma-studio.png)")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    default = Path(__file__).resolve().parents[1] / "resources" / "icons" / "chroma-studio.png"
    make_icons(args.source or (default if default.is_file() else None), args.out)


if __name__ == "__main__":
    main()
