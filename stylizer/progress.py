"""What a painting tells its caller while it runs, and how it is told to stop."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch
from PIL import Image

from stylizer.images import resize_longest
from stylizer.objective import tensor_to_pil


@dataclass
class Progress:
    stage: str  # "coarse 1/2", "fine", ...
    step: int  # 1-based, counted over every stage
    total: int
    losses: list[float]  # per variant, the objective at this step
    elapsed: float  # seconds since stylize() started
    preview: Image.Image | None = None  # the chosen variant, longest side preview_size


class Cancelled(Exception):
    """Raised by stylize() when its ``cancel`` callable returned True."""


class Reporter:
    """Hands ``on_progress`` a Progress at most every ``interval`` seconds, and always the final one."""

    def __init__(self, on_progress: Callable[[Progress], None] | None, interval: float,
                 preview_size: int | None, chosen: int, total: int, started: float):
        self.on_progress = on_progress
        self.interval = interval
        self.preview_size = preview_size
        self.chosen = chosen
        self.total = total
        self.started = started
        self.last = -math.inf

    def report(self, stage: str, step: int, losses: torch.Tensor, images: torch.Tensor, *, final: bool):
        if self.on_progress is None:
            return
        now = time.perf_counter()
        if not final and now - self.last < self.interval:
            return
        self.last = now
        preview = None
        if self.preview_size:
            preview = resize_longest(tensor_to_pil(images[self.chosen]), self.preview_size)
        self.on_progress(Progress(stage=stage, step=step, total=self.total, losses=losses.tolist(),
                                  elapsed=now - self.started, preview=preview))
