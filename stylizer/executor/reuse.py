"""Redo without repainting: which tiles of a job's strip are already painted, and where the others start from.

A Less/More redo (one strip spacing) and an Upscale keep the strip they came from (strength.strip_strengths):
only their result is painted again, from its tile. The job carries what was painted (``Job.painted``:
strength -> lossless PNG); a tile at the strip's size is taken as it is, every other strength is painted
fine-only, warm-started from the nearest painted strength (resized to the strip's size), with a share of the
strip's steps measured to reach a fresh paint's loss (docs/benchmarks.md, "Redo").
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from PIL import Image

from stylizer.images import ImageLimits, InvalidImage, load_image

# Shares of the job's steps for a warm start: enough fine-only steps to reach a fresh paint's referee loss, as
# measured with real ImageNet features (docs/benchmarks.md, "Redo"). From the neighbouring strength at the
# same size:
NEIGHBOUR_STEPS_SHARE = 0.4
# From the same strength at half the size (Upscale), started from the tile upsampled with the photo's detail
# put back; kept under half of a fresh paint's cost, most of which is spent at full size.
UPSCALED_STEPS_SHARE = 0.35


@dataclass(frozen=True)
class PaintedTile:
    image: Image.Image
    png: bytes  # handed back as it came: it is lossless already


@dataclass(frozen=True)
class ReusePlan:
    reused: tuple[int, ...]  # strengths taken as they are
    to_paint: tuple[int, ...]  # strengths to paint, in strip order
    warm_from: dict[int, int]  # strength to paint -> the painted strength it starts from
    steps: int  # the strip's steps for ``to_paint``: all of them cold, a share of them warm


def decode_tiles(painted: Sequence[tuple[int, bytes]], limits: ImageLimits) -> dict[int, PaintedTile]:
    """The job's painted tiles by strength. Raises ValueError for one that is not a decodable PNG: the caller's
    fault, not the user's pictures' (an InvalidImage would be shown to the user as a problem with them)."""
    tiles = {}
    for strength, data in painted:
        name = f"the painted tile at strength {strength}"
        try:
            image = load_image(data, name=name, limits=limits)
        except InvalidImage as error:
            raise ValueError(str(error)) from error
        with Image.open(io.BytesIO(data)) as probe:
            if probe.format != "PNG":
                raise ValueError(f"{name} is not a PNG: only lossless tiles can be reused")
        tiles[strength] = PaintedTile(image.convert("RGB"), data)
    return tiles


def plan_reuse(
    strengths: Sequence[int], tiles: Mapping[int, PaintedTile], output_size: tuple[int, int], steps: int
) -> ReusePlan:
    """What a job painting ``strengths`` at ``output_size`` with ``steps`` must still paint, given ``tiles``."""
    reused = tuple(s for s in strengths if s in tiles and tiles[s].image.size == output_size)
    to_paint = tuple(s for s in strengths if s not in reused)
    if not tiles or not to_paint:
        return ReusePlan(reused, to_paint, {}, steps if to_paint else 0)
    warm_from, share = {}, 0.0
    for strength in to_paint:
        # The nearest strength; among equals the largest tile, which has the most detail to keep.
        source = min(tiles, key=lambda s: (abs(s - strength), -tiles[s].image.width, s))
        warm_from[strength] = source
        distance = abs(source - strength)
        resized = tiles[source].image.size != output_size
        share = max(share, min(1.0, NEIGHBOUR_STEPS_SHARE * distance), UPSCALED_STEPS_SHARE if resized else 0.0)
    return ReusePlan(reused, to_paint, warm_from, max(1, round(steps * share)))


def encode_png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()
