"""A timelapse of a picture forming: a few dozen frames kept while it is painted, then one short animated WebP
that ends on the result and holds it.

Animated WebP because Discord plays it inline in a message as an attachment (an MP4 waits for a click), and
Pillow writes it without any other dependency. No torch here: frames come from the stylizer's progress
previews (``Progress.preview``, the chosen variant).
"""

from __future__ import annotations

import io
from collections.abc import Sequence

from PIL import Image

from stylizer.images import resize_longest

# A few dozen frames at a modest size: at most 36 × 256² RGB pixels (7 MB) held per job.
MAX_FRAMES = 36
FRAME_SIDE = 256
# Seconds the animation spends on the painting forming, then on the finished result.
FORMING_S = 3.5
HOLD_S = 1.5
# Tried in order until the animation fits the byte budget: (quality, longest side).
_ENCODINGS = ((80, FRAME_SIDE), (60, FRAME_SIDE), (50, 192), (40, 128), (30, 96))


class FrameRecorder:
    """Keeps at most ``max_frames`` frames spread evenly over however many are offered, in bounded memory:
    when full it drops every other frame and from then on keeps only every other offer."""

    def __init__(self, max_frames: int = MAX_FRAMES, side: int = FRAME_SIDE):
        if max_frames < 2:
            raise ValueError("a timelapse needs at least 2 frames")
        self.max_frames = max_frames
        self.side = side
        self._frames: list[Image.Image] = []
        self._stride = 1
        self._offered = 0

    def offer(self, image: Image.Image) -> None:
        if self._offered % self._stride == 0:
            self._frames.append(_fit_longest(image.convert("RGB"), self.side))
            if len(self._frames) > self.max_frames:
                self._frames = self._frames[::2]
                self._stride *= 2
        self._offered += 1

    @property
    def frames(self) -> list[Image.Image]:
        return list(self._frames)


def encode_timelapse(frames: Sequence[Image.Image], result: Image.Image, *, max_bytes: int) -> bytes:
    """An animated WebP, looping: ``frames`` over ``FORMING_S`` seconds, then ``result`` held ``HOLD_S``
    seconds; every frame at the result's aspect ratio. Smaller or coarser until it fits ``max_bytes``;
    ValueError if nothing does."""
    for quality, side in _ENCODINGS:
        final = _fit_longest(result.convert("RGB"), side)
        sequence = [image.convert("RGB").resize(final.size, Image.Resampling.LANCZOS) for image in frames]
        durations = [round(FORMING_S * 1000 / max(1, len(sequence)))] * len(sequence) + [round(HOLD_S * 1000)]
        sequence.append(final)
        buffer = io.BytesIO()
        sequence[0].save(buffer, format="WEBP", save_all=True, append_images=sequence[1:], duration=durations,
                         loop=0, quality=quality, method=4)
        if buffer.tell() <= max_bytes:
            return buffer.getvalue()
    raise ValueError(f"no timelapse fits in {max_bytes} bytes")


def _fit_longest(image: Image.Image, side: int) -> Image.Image:
    """``image`` with its longest side at most ``side`` (never enlarged)."""
    if max(image.size) <= side:
        return image.copy()
    return resize_longest(image, side)
