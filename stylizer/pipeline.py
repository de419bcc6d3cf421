"""A request as users get it: a strip of strengths painted together at a small size (the chooser), then the
chosen strength continued coarse to fine from its tile to the result's size.

Gatys et al. (2017) paint large pictures this way: the coarse picture settles the layout cheaply, the finer
levels only add detail. Every tile is calibrated at the result's size (``StylizeOptions.balance_size``), so a
tile is the coarse level of that strength's result, and the result is that tile grown. The result's levels
double from the strip's size and use the guarded L-BFGS, which refines a picture that is nearly there in fewer
steps than Adam (docs/benchmarks.md, "Redo"); the strip's variants use the hybrid, whose L-BFGS part ends
closest to convergence for the steps it is given (docs/benchmarks.md, "Optimisers").
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from PIL import Image
from torch import nn

from stylizer.calibration import calibrated_style_weights
from stylizer.images import MIN_PAINTABLE_SIDE, resize_longest
from stylizer.levels import too_thin_at
from stylizer.objective import relative_content_errors
from stylizer.options import StylizeOptions
from stylizer.progress import Progress
from stylizer.strength import style_factor
from stylizer.transfer import StylizeResult, stylize

STRIP_OPTIMIZER = "hybrid"
RESULT_OPTIMIZER = "lbfgs"
# The probe: strength 1 and two weaker points on the lattice (each strength doubles the weight), painted at
# half the strip's size for a few steps. A photo whose strength 1 moves its features further than this from
# the photo (a night photo, whose relu4_2 features are faint) has every strength shifted down until its
# strength 1 sits there: 0.3 is what strength 1 does on the photos that balance (chelsea + Van Gogh measured
# 0.30 in the probe; docs/benchmarks.md, "Strength").
PROBE_STRENGTHS = (-7, -3, 1)
PROBE_STEPS = 30
PROBE_TARGET_ERROR = 0.3


@dataclass(frozen=True)
class RequestPlan:
    """The two sizes of a request and the steps of each part."""

    size: int  # the result's longest side
    strip_size: int  # each tile's longest side
    steps: int  # the result's steps, over its levels
    strip_steps: int  # the strip's steps

    def __post_init__(self) -> None:
        if min(self.size, self.strip_size, self.steps, self.strip_steps) < 1:
            raise ValueError("sizes and steps must be positive")
        if self.strip_size > self.size:
            raise ValueError(f"the strip's size {self.strip_size} is larger than the result's {self.size}")

    def result_schedule(self) -> tuple[tuple[float, float], ...]:
        """Levels doubling from twice the strip's size up to the result's, each finer one given as many steps
        as the one before it (fine-only when the result is at most twice the strip's size)."""
        sides = [self.size]
        while sides[-1] / 2 > self.strip_size * 1.5:
            sides.append(round(sides[-1] / 2))
        return tuple((side / self.size, 1.0) for side in reversed(sides))


@dataclass(frozen=True)
class RequestResult:
    tiles: dict[int, Image.Image]  # strength -> its tile at the strip's size, painted now or given
    result: StylizeResult  # the chosen strength at the result's size
    strip: StylizeResult | None  # the strip's painting; None when every tile was given
    strip_weights: list[float]  # the raw style weight of every tile, in strip order (as the result's)


def paint_request(
    content: Image.Image,
    style: Image.Image | Sequence[Image.Image],
    *,
    net: nn.Sequential,
    plan: RequestPlan,
    strength: int,
    strengths: Sequence[int],
    options: StylizeOptions | None = None,
    given: Mapping[int, Image.Image] | None = None,
    starts: Mapping[int, Image.Image] | None = None,
    on_progress: Callable[[Progress], None] | None = None,
    cancel: Callable[[], bool] | None = None,
) -> RequestResult:
    """Paint the strip of ``strengths`` at ``plan.strip_size`` and ``strength`` (one of them) at ``plan.size``.

    ``given``: tiles already painted at the strip's size, taken as they are; ``starts``: for a strength still
    to paint, a painted picture it is warm-started from.
    ``options`` holds the expert settings shared by both parts (content and TV weight, colours, seed, device,
    or a raw ``style_weight`` for ``strength``); its steps, schedule, optimiser and strengths are set here.
    ``on_progress`` hears both parts as one count of steps.
    """
    options = options or StylizeOptions()
    if options.style_weight is None:
        options = dataclasses.replace(options, strength_shift=probe_shift(content, style, net=net, plan=plan,
                                                                          options=options))
    given = dict(given or {})
    starts = starts or {}
    if strength not in strengths:
        raise ValueError(f"strength {strength} is not among the strip's strengths {list(strengths)}")
    to_paint = tuple(s for s in strengths if s not in given)
    progress = _Counter(on_progress, plan.strip_steps if to_paint else 0, plan.steps)
    strip = None
    if to_paint:
        warm = [starts.get(s) for s in to_paint]
        strip_options = dataclasses.replace(
            options, steps=plan.strip_steps, schedule=((1.0, 1.0),), optimizer=STRIP_OPTIMIZER,
            balance_size=plan.size, **_weighting(options, to_paint, strength))
        strip = stylize(content, style, net=net, size=plan.strip_size, strength=_nearest(strength, to_paint),
                        options=strip_options, init_images=warm if any(warm) else None,
                        on_progress=progress.part(0), cancel=cancel)
        given.update(zip(to_paint, strip.images, strict=True))
    result_options = dataclasses.replace(
        options, steps=plan.steps, schedule=plan.result_schedule(), optimizer=RESULT_OPTIMIZER,
        **_weighting(options, (strength,), strength))
    result = stylize(content, style, net=net, size=plan.size, strength=strength, options=result_options,
                     init_images=[given[strength]], on_progress=progress.part(1), cancel=cancel)
    base = result.style_weights[0]
    weights = [base * style_factor(s, strength) for s in strengths]
    return RequestResult(tiles={s: given[s] for s in strengths}, result=result, strip=strip, strip_weights=weights)


def probe_shift(content: Image.Image, style: Image.Image | Sequence[Image.Image], *, net: nn.Sequential,
                plan: RequestPlan, options: StylizeOptions) -> float:
    """How many strengths weaker every strength of this pair must be painted so that strength 1 keeps the
    photo (0 for most photos; never negative). A redo measures it again: the same pictures and options give
    the same shift, except that the first probe of a process came out 0.03 strengths apart from later ones
    (docs/benchmarks.md, "Strength on the result at 512 px"; the cause was not found)."""
    side = max(MIN_PAINTABLE_SIDE * 2, plan.strip_size // 2)
    styles = [style] if isinstance(style, Image.Image) else list(style)
    if too_thin_at(content, styles, options.style_scale)(side):
        side = plan.strip_size  # a long thin picture the strip can still paint
    at_one = calibrated_style_weights(content, style, [1], net=net, size=plan.size,
                                      options=dataclasses.replace(options, strength_shift=0.0))[0]
    factors = [style_factor(k, 1) for k in PROBE_STRENGTHS]
    probe = stylize(content, style, net=net, size=side, options=dataclasses.replace(
        options, steps=PROBE_STEPS, schedule=((1.0, 1.0),), optimizer=STRIP_OPTIMIZER, style_weight=at_one,
        variant_factors=factors, variants=len(factors), strengths=None, preview_size=None, strength_shift=0.0))
    errors = relative_content_errors(net, resize_longest(content.convert("RGB"), side), probe.images)
    if errors[-1] <= PROBE_TARGET_ERROR:
        return 0.0
    points = list(zip(PROBE_STRENGTHS, errors, strict=True))
    for (low, low_error), (high, high_error) in zip(points, points[1:], strict=False):
        if low_error <= PROBE_TARGET_ERROR < high_error:
            crossing = low + (high - low) * (PROBE_TARGET_ERROR - low_error) / (high_error - low_error)
            return 1.0 - crossing
    return float(1 - PROBE_STRENGTHS[0])


def _weighting(options: StylizeOptions, strengths: Sequence[int], strength: int) -> dict:
    """Calibrated strengths, or the expert's raw weight at ``strength`` with the lattice's factors."""
    if options.style_weight is None:
        return {"strengths": list(strengths), "variants": len(strengths), "variant_factors": None}
    return {"strengths": None, "variants": len(strengths),
            "variant_factors": [style_factor(s, strength) for s in strengths]}


def _nearest(strength: int, strengths: Sequence[int]) -> int:
    return min(strengths, key=lambda s: (abs(s - strength), s))


class _Counter:
    """Both parts' progress as one count: the strip's steps, then the result's."""

    def __init__(self, on_progress: Callable[[Progress], None] | None, first: int, second: int):
        self.on_progress = on_progress
        self.offsets = (0, first)
        self.total = first + second

    def part(self, number: int) -> Callable[[Progress], None] | None:
        if self.on_progress is None:
            return None
        offset = self.offsets[number]
        stage_prefix = "strip" if number == 0 else None

        def report(progress: Progress) -> None:
            stage = stage_prefix or progress.stage
            self.on_progress(dataclasses.replace(progress, stage=stage, step=offset + progress.step,
                                                 total=self.total))

        return report
