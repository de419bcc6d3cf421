"""What the benchmarks read from outside the repository: ../shared (or STYLIZER_SHARED, a copy elsewhere).

The referee (bench/gatys_reference.py), the stand-in ImageNet weights and the full-size sample images live
there, not in the repository. A benchmark that misses them stops with one line saying what to set.
"""

from __future__ import annotations

import importlib
import os
import sys
from pathlib import Path
from types import ModuleType

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("STYLIZER_SHARED") or REPO / ".." / "shared").resolve()
STAND_IN = SHARED / "weights" / "vgg16_imagenet_as_vgg19.pth"


def need(*paths: Path) -> None:
    """Exit with one line (status 2) unless every path exists."""
    for path in paths:
        if not path.exists():
            script = Path(sys.argv[0]).name
            sys.exit(f"{script}: needs {path} (the project's shared material: referee, stand-in weights, images); "
                     "set STYLIZER_SHARED=/path/to/shared")


def shared() -> Path:
    need(SHARED)
    return SHARED


def referee() -> ModuleType:
    """The referee module, gatys_reference."""
    need(SHARED / "bench" / "gatys_reference.py")
    if str(SHARED / "bench") not in sys.path:
        sys.path.insert(0, str(SHARED / "bench"))
    return importlib.import_module("gatys_reference")
