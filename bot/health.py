"""A health file for container HEALTHCHECKs: the running bot touches it; ``--healthcheck`` reads its age."""

from __future__ import annotations

import os
import time
from pathlib import Path

TOUCH_EVERY_S = 20.0
STALE_AFTER_S = 90.0


def touch(path: str | Path) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch()
    # touch() alone keeps the old mtime on some filesystems when the file already exists.
    os.utime(path)


def is_fresh(path: str | Path, *, max_age_s: float = STALE_AFTER_S, now: float | None = None) -> bool:
    try:
        modified = Path(path).stat().st_mtime
    except OSError:
        return False
    return (time.time() if now is None else now) - modified <= max_age_s
