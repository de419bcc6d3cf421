"""What an ordinary request paints on each kind of device: the sizes offered, the result's size and steps,
the strip's size and steps. The bot's [style] settings and the CLI fall back to these, so the CLI without
size or step options paints exactly the bot's default request. No torch here: the bot reads these.

CPU: a 512 px result and a strip of 128 px tiles; measured at 50.9 s for the default request on a 2-core CPU
(docs/benchmarks.md, "The default request"). GPU: a 1024 px result from 256 px tiles, never measured (no GPU
has run this code; benchmarks/gpu_check.sh is ready for one).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class RequestDefaults:
    sizes: tuple[int, ...]  # the result sizes offered; Upscale paints at the largest
    default_size: int
    steps: Mapping[int, int]  # the result's steps for each size
    strip_size: int
    strip_steps: int


CPU_DEFAULTS = RequestDefaults(sizes=(256, 512), default_size=512, steps={256: 80, 512: 100}, strip_size=128,
                               strip_steps=60)
GPU_DEFAULTS = RequestDefaults(sizes=(512, 768, 1024), default_size=1024, steps={512: 200, 768: 250, 1024: 300},
                               strip_size=256, strip_steps=200)


def defaults_for(device: str) -> RequestDefaults:
    """The defaults for a resolved device ("cpu", "cuda" or "cuda:N")."""
    return GPU_DEFAULTS if device.startswith("cuda") else CPU_DEFAULTS
