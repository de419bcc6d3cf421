"""A health file for container HEALTHCHECKs: the running bot touches it; ``--healthcheck`` reads its age.

The file also says how late the event loop woke up at worst since the last touch: a loop blocked for seconds
misses gateway heartbeats and the 3 s interaction deadline long before anything else looks wrong.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import time
from pathlib import Path

logger = logging.getLogger(__name__)

TOUCH_EVERY_S = 20.0
STALE_AFTER_S = 90.0
LAG_PROBE_EVERY_S = 0.5
# Discord's deadline for answering an interaction is 3 s; a loop this late is worth a line in the log.
LAG_WARNING_S = 1.0


def touch(path: str | Path, loop_lag_max_s: float | None = None) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"loop_lag_max_s": loop_lag_max_s}) + "\n")
    # write_text alone keeps the old mtime on some filesystems when the content is unchanged.
    os.utime(path)


def loop_lag_of(path: str | Path) -> float | None:
    """The worst event-loop lag the bot wrote into its health file, or None."""
    try:
        return json.loads(Path(path).read_text())["loop_lag_max_s"]
    except (OSError, ValueError, KeyError, TypeError):
        return None


def is_fresh(path: str | Path, *, max_age_s: float = STALE_AFTER_S, now: float | None = None) -> bool:
    try:
        modified = Path(path).stat().st_mtime
    except OSError:
        return False
    return (time.time() if now is None else now) - modified <= max_age_s


class LoopLag:
    """How much later than asked the event loop woke a sleeping probe, at worst since the last ``take``."""

    def __init__(self) -> None:
        self.worst_s = 0.0

    async def probe_forever(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            asked = loop.time()
            await asyncio.sleep(LAG_PROBE_EVERY_S)
            lag = max(0.0, loop.time() - asked - LAG_PROBE_EVERY_S)
            if lag >= LAG_WARNING_S:
                logger.warning("the event loop was blocked for %.1f s", lag)
            self.worst_s = max(self.worst_s, lag)

    def take(self) -> float:
        worst, self.worst_s = self.worst_s, 0.0
        return worst
