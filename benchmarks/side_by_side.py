"""The crowsonkb/style-transfer-pytorch reference picture beside ours, same pair, same size, labelled.

    .venv/bin/python benchmarks/side_by_side.py OURS.png "ours: 100 steps, 13 s" docs/images/reference_vs_ours.jpg
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

from stylizer.strip import make_strip  # noqa: E402


def main() -> None:
    ours, label, out = Path(sys.argv[1]), sys.argv[2], Path(sys.argv[3])
    reference = Image.open(SHARED / "reference" / "crowsonkb_chelsea_vangogh_256.png").convert("RGB")
    sheet = make_strip([reference, Image.open(ours).convert("RGB")],
                       ["crowsonkb defaults: 2000 iterations, 1164 s", label])
    sheet.save(out, quality=90)
    print(out, sheet.size)


if __name__ == "__main__":
    main()
