"""The levels of a painting: coarse to fine sizes, how the steps are shared between them, and where each
level starts (the photo, noise, the coarser level's result, or a picture already painted: a warm start).

The picture is first painted at a fraction of the size (cheap VGG passes settle the large structures) and
then refined at full size.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from PIL import Image

from stylizer.images import MIN_PAINTABLE_SIDE, longest_side_size
from stylizer.objective import pil_to_tensor

# Below this relu5_1 is a few pixels wide, and its Gram matrix holds the painting's layout: a coarser first
# level lost the photo's subject to the painting's (docs/benchmarks.md, "Optimisers").
MIN_LEVEL_SIDE = 128


def plan_levels(size: int, steps: int, schedule: Sequence[Sequence[float]],
                too_thin: Callable[[int], bool] = lambda side: False, *,
                coarse_at_cost: bool = False) -> list[tuple[int, int, float]]:
    """(longest side, steps, scale) per level; levels too small, or where ``too_thin(side)`` says an input
    would be too thin for VGG, hand their steps to the next one, and the full-size level always gets at
    least one step (the output is painted at the size it is delivered).

    ``coarse_at_cost``: the coarse steps count by what they cost, (side / size)^2 of a full-size step
    (rounded up), so ``steps`` is a budget of full-size evaluations and the fine level keeps nearly all of
    it: at 512 px and 300 steps, 286 fine steps instead of 225."""
    if not schedule or abs(schedule[-1][0] - 1.0) > 1e-9:
        raise ValueError("the schedule's last level must have scale 1.0 (the output size)")
    total_share = sum(share for _, share in schedule)
    levels: list[tuple[int, int, float]] = []
    cumulative_share, assigned = 0.0, 0
    for number, (scale, share) in enumerate(schedule):
        cumulative_share += share
        side = round(size * scale)
        last = number == len(schedule) - 1
        if not last and (side < MIN_LEVEL_SIDE or too_thin(side)):
            continue
        # Rounding the cumulative count, not each level's, keeps the total exact.
        end = steps if last else min(steps - 1, round(steps * cumulative_share / total_share))
        if end > assigned:
            levels.append((side, end - assigned, scale))
            assigned = end
    if coarse_at_cost and len(levels) > 1:
        coarse_cost = sum(level_steps * (side / size) ** 2 for side, level_steps, _ in levels[:-1])
        side, _, scale = levels[-1]
        levels[-1] = (side, max(1, steps - math.ceil(coarse_cost - 1e-9)), scale)
    return levels


def stage_name(scale: float) -> str:
    if scale >= 1.0:
        return "fine"
    return f"coarse 1/{round(1 / scale)}" if abs(1 / scale - round(1 / scale)) < 1e-6 else f"coarse {scale:g}"


def too_thin_at(content: Image.Image, style_images: list[Image.Image], style_scale: float) -> Callable[[int], bool]:
    def too_thin(side: int) -> bool:
        # A picture fine at the output size can be a few pixels thick at a coarse level, where VGG's
        # pooling would fail; resized exactly as each level resizes each input.
        inputs = [(content.size, side)]
        inputs += [(image.size, max(1, round(side * style_scale))) for image in style_images]
        return any(min(longest_side_size(image_size, longest)) < MIN_PAINTABLE_SIDE for image_size, longest in inputs)

    return too_thin


def start_images(
    previous: torch.Tensor | None,
    previous_content: torch.Tensor | None,
    content: torch.Tensor,
    count: int,
    init: str,
    generator: torch.Generator,
    init_images: Sequence[Image.Image | None] | None = None,
) -> torch.Tensor:
    """Starting pixels of a level: at the first level a variant's ``init_images`` entry, else the content or
    noise; then the coarser result."""
    if previous is None:
        if init == "noise":
            noise = torch.rand((1, *content.shape[1:]), generator=generator, device=content.device)
            start = noise.repeat(count, 1, 1, 1)
        else:
            start = content.repeat(count, 1, 1, 1)
        if init_images is not None:
            if len(init_images) != count:
                raise ValueError(f"init_images needs one entry (or None) per variant: {count}, not {len(init_images)}")
            for index, image in enumerate(init_images):
                if image is not None:
                    start[index] = warm_start(image, content)[0]
        return start.contiguous()
    height, width = content.shape[-2:]
    upsampled = F.interpolate(previous, size=(height, width), mode="bicubic", align_corners=False)
    if init == "content":
        # The coarse pass painted the style onto a blurred photo; put back the detail it never saw.
        blurred = F.interpolate(previous_content, size=(height, width), mode="bicubic", align_corners=False)
        upsampled = upsampled + (content - blurred)
    return upsampled.clamp(0, 1).contiguous()


def warm_start(image: Image.Image, content: torch.Tensor) -> torch.Tensor:
    """A painted picture as the start of a level of ``content``'s size. One painted smaller is upsampled with
    the photo's detail it never saw put back, as between levels; without it an Upscale (256 -> 512 px) ended
    above a fresh paint's loss (docs/benchmarks.md, "Redo")."""
    height, width = content.shape[-2:]
    if image.size == (width, height):
        return pil_to_tensor(image, content.device)
    if image.width >= width:
        return pil_to_tensor(image.convert("RGB").resize((width, height), Image.Resampling.LANCZOS), content.device)
    painted = pil_to_tensor(image, content.device)
    upsampled = F.interpolate(painted, size=(height, width), mode="bicubic", align_corners=False)
    small = F.interpolate(content, size=painted.shape[-2:], mode="bicubic", antialias=True, align_corners=False)
    blurred = F.interpolate(small, size=(height, width), mode="bicubic", align_corners=False)
    return (upsampled + (content - blurred)).clamp(0, 1)
