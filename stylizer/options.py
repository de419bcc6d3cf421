"""The expert settings of one stylize() call, in one object; the CLI and the executor's JobOptions take their
defaults from here. No torch here: the bot imports JobOptions, which reads these defaults.

Ordinary callers need none of it: ``stylize(content, style, net=net, size=512, strength=5)`` paints five
strengths around 5, calibrated for the pair. ``StylizeOptions(steps=..., optimizer=...)`` changes the rest.
"""

from __future__ import annotations

import math
import secrets
from collections.abc import Sequence
from dataclasses import dataclass

from stylizer.strength import check_strength, strip_strengths, style_factor

DEFAULT_SIZE = 512
# (fraction of the output size, fraction of the steps); levels smaller than levels.MIN_LEVEL_SIDE are skipped.
DEFAULT_SCHEDULE = ((0.25, 0.1), (0.5, 0.15), (1.0, 0.75))
# Adam at 100 steps is what strength was calibrated on, and what keeps the photo at 128 px (docs/benchmarks.md).
DEFAULT_OPTIMIZER = "adam"
OPTIMIZERS = ("adam", "lbfgs", "hybrid")
INITS = ("content", "noise")


@dataclass(frozen=True)
class StylizeOptions:
    """How stylize() paints; every field has the default an ordinary request uses.

    Variants: by default the ``variants`` strengths of ``strip_strengths(strength, variants)`` (or the
    ``strengths`` given), their style weights calibrated for the pair (``calibration.Balance``). Experts give
    a raw ``style_weight`` instead (the referee's objective, uncalibrated): variant ``i`` then uses
    ``style_weight * factors[i]``, factors ``variant_factors`` or ``variant_factors_for(variants)``.

    Objective: ``content_weight``, ``tv_weight``; several styles blend their Gram targets with ``style_blend``
    (normalised; equal shares when None); ``style_scale`` sizes each style relative to the output's longest
    side; ``content_layers`` / ``style_layers`` (None: ``weights.CONTENT_LAYERS`` / ``STYLE_LAYERS``).
    ``preserve_colors``: the Gram targets come from the styles' luminance and each result keeps the content's
    chroma.

    ``balance_size``: the longest side the strengths are calibrated at (None: ``size``). A strip painted small
    as the preview of a larger result takes the result's size, so that each tile is that strength's picture.
    ``strength_shift``: every strength painted this many strengths weaker (the pipeline's probe measures it
    for photos whose features are faint, such as a night photo: ``pipeline.probe_shift``).

    Start: ``init`` "content" or "noise" (seeded by ``seed``; None picks one and records it in params).

    Steps: ``steps`` optimiser steps over the levels of ``schedule`` (pairs of fraction of the size and share
    of the steps, coarse to fine, ending at 1.0). ``target_loss`` (one value or one per variant) freezes a
    variant at the first full-size step at or below it; ``steps`` is then a cap in full-size evaluations.

    Optimiser: ``optimizer`` "adam" (``learning_rate`` in pixel units; ``final_rate`` < 1 decays it along a
    cosine over each level), "lbfgs" (``history_size`` curvature pairs per variant, lowered to fit memory) or
    "hybrid" (Adam's first steps, then L-BFGS). ``safeguard`` undoes any step that raised a variant's
    objective (``optimizers.StepGuard``); off only to measure what it prevents.

    Machine: ``device`` ("auto": CUDA when there is one), ``precision`` ("auto": bf16 autocast on CUDA and on
    CPUs with native bf16), ``max_batch_pixels`` (images x pixels of one VGG pass; None: chosen from the
    device). Progress: at most every ``progress_interval`` seconds, with a preview of the chosen variant at
    ``preview_size`` (None: no preview).
    """

    steps: int = 300
    variants: int = 5
    strengths: Sequence[int] | None = None
    style_weight: float | None = None
    variant_factors: Sequence[float] | None = None
    content_weight: float = 1.0
    tv_weight: float = 0.0
    style_blend: Sequence[float] | None = None
    style_scale: float = 1.0
    balance_size: int | None = None
    strength_shift: float = 0.0
    content_layers: Sequence[str] | None = None
    style_layers: Sequence[str] | None = None
    preserve_colors: bool = False
    init: str = "content"
    seed: int | None = 0
    schedule: Sequence[Sequence[float]] = DEFAULT_SCHEDULE
    target_loss: float | Sequence[float] | None = None
    optimizer: str = DEFAULT_OPTIMIZER
    learning_rate: float = 0.05
    final_rate: float = 1.0
    history_size: int = 100
    safeguard: bool = True
    device: str = "auto"
    precision: str = "auto"
    max_batch_pixels: int | None = None
    progress_interval: float = 0.5
    preview_size: int | None = None

    def check(self, size: int) -> None:
        """Raise ValueError for a choice stylize() cannot paint, before any work."""
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"optimizer must be 'adam', 'lbfgs' or 'hybrid', got {self.optimizer!r}")
        if self.init not in INITS:
            raise ValueError(f"init must be 'content' or 'noise', got {self.init!r}")
        if self.steps < 1 or size < 1:
            raise ValueError("steps and size must be positive")


@dataclass(frozen=True)
class VariantPlan:
    """What the variants of one call are: their strengths (None for a raw style weight), each one's style
    weight relative to the chosen variant's, and which variant is the chosen one."""

    strengths: list[int] | None
    factors: list[float]
    chosen: int

    @classmethod
    def of(cls, options: StylizeOptions, strength: int) -> VariantPlan:
        if options.style_weight is None:
            if options.variant_factors is not None:
                raise ValueError("variant_factors go with a raw style_weight; calibrated variants are strengths")
            given = options.strengths or strip_strengths(strength, options.variants)
            strengths = [check_strength(s) for s in given]
            if check_strength(strength) not in strengths:
                raise ValueError(f"strength {strength} is not among the strengths painted {strengths}")
            return cls(strengths, [style_factor(s, strength) for s in strengths], strengths.index(strength))
        if options.strengths is not None:
            raise ValueError("strengths are calibrated for the pair: give them without a raw style_weight")
        factors = (list(options.variant_factors) if options.variant_factors is not None
                   else variant_factors_for(options.variants))
        return cls(None, factors, min(range(len(factors)), key=lambda i: (abs(math.log(factors[i])), i)))


def variant_factors_for(variants: int) -> list[float]:
    """Style-weight factors spaced by powers of two around 1: 5 -> 1/4, 1/2, 1, 2, 4.

    Integer exponents keep the factor 1 (the weight the user asked for) in the set for even counts too:
    4 -> 1/2, 1, 2, 4.
    """
    if variants < 1:
        raise ValueError(f"variants must be at least 1, got {variants}")
    return [2.0 ** (i - (variants - 1) // 2) for i in range(variants)]


def choose_seed(seed: int | None) -> int:
    """``seed``, or a random one when None: a painting always knows its seed, so it can be painted again."""
    return secrets.randbelow(2**31) if seed is None else seed


def per_variant(value: float | Sequence[float] | None, count: int) -> list[float] | None:
    """``target_loss`` as one value per variant."""
    if value is None:
        return None
    values = [float(value)] * count if isinstance(value, int | float) else [float(v) for v in value]
    if len(values) != count:
        raise ValueError(f"target_loss needs one value or {count}, got {len(values)}")
    return values
