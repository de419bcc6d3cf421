"""One request's options, in the one shape every path reads: intake builds it, the journal stores it, the job
service turns it into the executor's JobOptions, and the buttons step it (Less/More, Upscale, Retry).

The bot decides no style weight: a request carries a strength on stylizer.strength's lattice and the stylizer
balances the pair of pictures itself.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from bot.config import Config
from stylizer.executor.base import JobOptions
from stylizer.strength import check_strength, step_strength, strip_spacing


@dataclass(frozen=True)
class Request:
    strength: int
    size: int
    seed: int
    preserve_colors: bool
    variants: int
    content_name: str
    style_name: str
    # Bytes each result image may take: half of what the interaction may upload (two images, one message).
    output_max_bytes: int
    # The job this one repaints (Less/More, Upscale, Retry), whose tiles the journal keeps: the painter reuses
    # them or starts from them (stylizer.executor.reuse). None for a fresh /stylize.
    parent_job: str | None = None
    # The shipped painting (stylizer.presets name) used as the style instead of an upload; its credit is shown
    # with the result. None when the style is a picture someone gave.
    preset: str | None = None

    def __post_init__(self) -> None:
        check_strength(self.strength)

    def stepped(self, direction: int, *, parent_job: str) -> Request | None:
        """The same pictures one strip spacing less (-1) or more (+1) style, the neighbouring tile of the same
        strip (same seed, size, variants); None past either end."""
        strength = step_strength(self.strength, direction * strip_spacing(self.variants))
        if strength is None:
            return None
        return dataclasses.replace(self, strength=strength, parent_job=parent_job)

    def upscaled(self, strength: int, size: int, *, parent_job: str) -> Request:
        """One tile of the strip painted as the result at ``size`` (the largest offered); the strip is kept."""
        return dataclasses.replace(self, strength=check_strength(strength), size=size, parent_job=parent_job)

    def retried(self, *, parent_job: str) -> Request:
        return dataclasses.replace(self, parent_job=parent_job)

    def job_options(self, config: Config) -> JobOptions:
        style, limits = config.style, config.limits
        return JobOptions(
            strength=self.strength,
            content_weight=style.content_weight,
            tv_weight=style.tv_weight,
            variants=self.variants,
            size=self.size,
            steps=config.steps_for(self.size),
            strip_size=style.strip_size,  # the painter keeps it within the result's size
            strip_steps=style.strip_steps,
            seed=self.seed,
            preserve_colors=self.preserve_colors,
            output_max_bytes=self.output_max_bytes,
            max_pixels=limits.max_pixels,
            max_input_side=limits.max_input_side,
        )

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Request:
        # Keys a newer version no longer writes (an older row's style_weight) are ignored, missing ones default.
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{key: value for key, value in data.items() if key in names})
