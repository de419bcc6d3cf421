"""Labelled strips of every shared pair from the pictures benchmarks/strength_table.py saved (--images).

    .venv/bin/python benchmarks/strength_strips.py /tmp/strength_images docs/images/strength
"""

from __future__ import annotations

import sys
from pathlib import Path

from PIL import Image

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))
import outside  # noqa: E402

SHARED = outside.shared()
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

from strength_table import CONTENTS, STYLES  # noqa: E402

from stylizer.strength import strength_label  # noqa: E402
from stylizer.strip import make_strip  # noqa: E402


def main() -> None:
    images, out = Path(sys.argv[1]), Path(sys.argv[2])
    out.mkdir(parents=True, exist_ok=True)
    for content_name in CONTENTS:
        for style_name in STYLES:
            stem = f"{Path(content_name).stem}_{Path(style_name).stem.split('_')[0]}"
            tiles = sorted(images.glob(f"{stem}_s*.png"))
            if not tiles:
                continue
            strengths = [int(path.stem.rsplit("_s", 1)[1]) for path in tiles]
            pictures = [Image.open(path).convert("RGB") for path in tiles]
            content = Image.open(SHARED / "images" / "content" / content_name).convert("RGB")
            style = Image.open(SHARED / "images" / "style" / style_name).convert("RGB")
            strip = make_strip(pictures, [strength_label(s) for s in strengths], content=content, style=style)
            strip.save(out / f"{stem}.jpg", quality=85)
            print(out / f"{stem}.jpg", strip.size)


if __name__ == "__main__":
    main()
