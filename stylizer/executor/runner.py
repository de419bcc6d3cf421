"""One job, start to finish, inside whichever worker owns the GPU: bytes in, a JobDone or JobFailed out.

Both executors call ``job_outcome`` in their worker, so decoding, painting, the strip, the byte budget and the
out-of-memory retry behave the same wherever a job runs.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import io
import logging
import time
from collections.abc import Callable

import torch
from PIL import Image

from stylizer import objective
from stylizer.executor._jobs import CANCELLED
from stylizer.executor.base import ExecutorUnavailable, Job, JobDone, JobFailed, JobOptions, JobProgress
from stylizer.executor.reuse import PaintedTile, ReusePlan, decode_tiles, encode_png, plan_reuse
from stylizer.images import ImageLimits, InvalidImage, check_paintable, load_image, resize_longest
from stylizer.objective import DeviceUnavailable
from stylizer.options import StylizeOptions, choose_seed
from stylizer.pipeline import RequestPlan, RequestResult, paint_request
from stylizer.progress import Cancelled, Progress
from stylizer.strength import check_strength, strength_label, strip_strengths
from stylizer.strip import encode_within, make_strip
from stylizer.style_cache import StyleTargetCache, cached_style_targets
from stylizer.timelapse import FRAME_SIDE, FrameRecorder, encode_timelapse

logger = logging.getLogger(__name__)

PREVIEW_MAX_SIDE = 160
# After running out of GPU memory the job is tried once more with each side scaled by this.
OOM_RETRY_SCALE = 0.75
# How often the timelapse may take a frame (the recorder keeps a few dozen of them, evenly spread).
FRAME_INTERVAL_S = 0.25
# The presets' style statistics, kept for the worker's life (bounded; see stylizer.style_cache).
PRESET_STYLE_TARGETS = StyleTargetCache()


def resolve_device(device: str) -> str:
    """``objective.resolve_device`` for a worker: a device it cannot use means the executor is unavailable."""
    try:
        return str(objective.resolve_device(device))
    except DeviceUnavailable as error:
        raise ExecutorUnavailable(str(error)) from error


def job_outcome(job: Job, net: torch.nn.Sequential, **run_options) -> JobDone | JobFailed:
    """``run_job`` with its ``run_options``, but a failure comes back as the JobFailed to tell the user."""
    try:
        return run_job(job, net, **run_options)
    except Exception as error:  # noqa: BLE001 - every failure is reported as a JobFailed
        return job_failure(error)


def run_job(
    job: Job,
    net: torch.nn.Sequential,
    *,
    device: str | torch.device,
    on_progress: Callable[[JobProgress], None] | None = None,
    cancelled: Callable[[], bool] | None = None,
    progress_interval: float = 0.5,
    previews: bool = True,
) -> JobDone:
    """Paint ``job`` with ``net``; raises InvalidImage, Cancelled or torch.cuda.OutOfMemoryError."""
    options = job.options
    started = time.perf_counter()
    limits = ImageLimits(max_pixels=options.max_pixels, max_side=options.max_input_side)
    content = load_image(job.content, name=job.content_name, limits=limits)
    style = load_image(job.style, name=job.style_name, limits=limits)

    def check_both_paintable(size: int) -> None:
        # Both are resized to the strip's longest side (the smallest painted), so either can be too thin for
        # VGG's poolings there.
        side = min(options.strip_size, size)
        check_paintable(content, side, name=job.content_name)
        check_paintable(style, side, name=job.style_name)

    check_both_paintable(options.size)
    earlier = decode_tiles(job.painted, limits)
    strengths = strip_strengths(check_strength(options.strength), options.variants)
    # A random seed is still reported, so that whoever liked the picture can paint it again.
    seed = choose_seed(options.seed)

    report = _ProgressTap(on_progress, progress_interval, previews, FrameRecorder())

    def paint(size: int) -> tuple[ReusePlan, RequestResult]:
        strip_size = min(options.strip_size, size)
        reuse = plan_reuse(strengths, earlier, resize_longest(content, strip_size).size, options.strip_steps)
        plan = RequestPlan(size=size, strip_size=strip_size, steps=options.steps, strip_steps=max(1, reuse.steps))
        # Finer than the executor's rate: the timelapse takes its frames from the same previews.
        settings = _stylize_options(options, seed=seed, device=str(device),
                                    progress_interval=min(progress_interval, FRAME_INTERVAL_S),
                                    preview_size=min(FRAME_SIDE, size))
        return reuse, paint_request(
            content, style, net=net, plan=plan, strength=options.strength, strengths=strengths, options=settings,
            given={s: earlier[s].image for s in reuse.reused},
            starts={s: earlier[source].image for s, source in reuse.warm_from.items()},
            on_progress=report, cancel=cancelled)

    with _preset_statistics(job, net):
        (reuse, painted), note = _paint_with_memory_retry(paint, check_both_paintable, options.size, job.job_id)
    done = _job_done(job, content, style, strengths, earlier, reuse, painted, started, note)
    return dataclasses.replace(done, timelapse=_timelapse(report.recorder, done, options.output_max_bytes))


class _ProgressTap:
    """stylize()'s progress callback: every preview may become a timelapse frame; the executor hears at
    its own rate, with a preview small enough for a progress message."""

    def __init__(self, on_progress: Callable[[JobProgress], None] | None, interval: float, previews: bool,
                 recorder: FrameRecorder):
        self.on_progress = on_progress
        self.interval = interval
        self.previews = previews
        self.recorder = recorder
        self._last = float("-inf")

    def __call__(self, progress: Progress) -> None:
        if progress.preview is not None:
            self.recorder.offer(progress.preview)
        now = time.perf_counter()
        if self.on_progress is None or (now - self._last < self.interval and progress.step < progress.total):
            return
        self._last = now
        preview = None
        if self.previews and progress.preview is not None:
            preview = _encode_preview(resize_longest(progress.preview, PREVIEW_MAX_SIDE))
        self.on_progress(JobProgress(stage=progress.stage, step=progress.step, total=progress.total,
                                     elapsed=progress.elapsed, preview=preview))


def _preset_statistics(job: Job, net: torch.nn.Sequential) -> contextlib.AbstractContextManager:
    """For a preset, its style statistics come from (and go to) the worker's cache: the painting's own bytes
    and colour mode name them, with the network, which a worker keeps for its life."""
    if job.preset is None:
        return contextlib.nullcontext()
    key = (hashlib.sha256(job.style).hexdigest(), job.options.preserve_colors, id(net))
    return cached_style_targets(PRESET_STYLE_TARGETS, key)


def _timelapse(recorder: FrameRecorder, done: JobDone, max_bytes: int) -> bytes:
    """The chosen strength forming, ending on the very picture delivered; empty (and logged) if it cannot
    be made within the budget: the result matters more than its timelapse."""
    with Image.open(io.BytesIO(done.image)) as delivered:
        result = delivered.convert("RGB")
    try:
        return encode_timelapse(recorder.frames, result, max_bytes=max_bytes)
    except ValueError:
        logger.warning("no timelapse fits in %d bytes", max_bytes, exc_info=True)
        return b""


def _stylize_options(options: JobOptions, **machine) -> StylizeOptions:
    """The job's expert settings as the stylizer takes them (the pipeline sets the steps and strengths).
    ``machine``: the seed, device and progress settings of this worker."""
    return StylizeOptions(style_weight=options.style_weight, content_weight=options.content_weight,
                          tv_weight=options.tv_weight, preserve_colors=options.preserve_colors, **machine)


def _paint_with_memory_retry(paint, check_both_paintable, size: int, job_id: str):
    """``(paint(size), None)``, or after running out of GPU memory ``(paint(smaller), note for the user)``."""
    try:
        return paint(size), None
    except torch.cuda.OutOfMemoryError:
        pass
    # Retried outside the except block, so the failed attempt's tensors (held by the traceback) are freed.
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
    smaller = max(1, round(size * OOM_RETRY_SCALE))
    try:
        check_both_paintable(smaller)
    except InvalidImage as too_thin:
        # The pictures were fine at the size asked for: the user should hear about memory, not about them.
        raise torch.cuda.OutOfMemoryError(f"out of memory at {size} px; {too_thin}") from too_thin
    logger.warning("job %s ran out of GPU memory at %d px; retrying at %d px", job_id, size, smaller)
    note = f"Rendered at {smaller} px instead of {size} px: the GPU ran out of memory."
    return paint(smaller), note


def _job_done(job: Job, content: Image.Image, style: Image.Image, strengths: tuple[int, ...],
              earlier: dict[int, PaintedTile], reuse: ReusePlan, painted: RequestResult, started: float,
              note: str | None) -> JobDone:
    """The result and the strip of the tiles given and painted now, encoded for the user and for a later redo."""
    options = job.options
    images = [painted.tiles[s] for s in strengths]
    tiles = tuple(earlier[s].png if s in reuse.reused else encode_png(painted.tiles[s]) for s in strengths)
    strip = make_strip(images, [strength_label(s) for s in strengths], content=content, style=style)
    image_bytes, image_ext = encode_within(painted.result.images[0], options.output_max_bytes)
    strip_bytes, strip_ext = encode_within(strip, options.output_max_bytes)
    params = {
        **dataclasses.asdict(options),
        **painted.result.params,
        "strip": painted.strip.params if painted.strip is not None else {"steps": 0},
        "reused": list(reuse.reused),
        "warm_from": {str(strength): source for strength, source in reuse.warm_from.items()},
    }
    return JobDone(
        image=image_bytes,
        image_ext=image_ext,
        strip=strip_bytes,
        strip_ext=strip_ext,
        # What the user receives: encode_within may have had to shrink an image to fit the budget.
        image_size=_encoded_size(image_bytes),
        strip_size=_encoded_size(strip_bytes),
        strengths=strengths,
        style_weights=tuple(painted.strip_weights),
        chosen=strengths.index(options.strength),
        tiles=tiles,
        reused=reuse.reused,
        seconds=time.perf_counter() - started,
        params=params,
        note=note,
    )


def job_failure(error: BaseException) -> JobFailed:
    """The JobFailed for an exception raised by ``run_job``: its kind, and a detail for the log (bot.messages
    words it for the user by kind). Unexpected ones are logged here with their traceback."""
    if isinstance(error, InvalidImage):
        # stylizer.images writes this one for people: it names the picture and what is wrong with it.
        return JobFailed("invalid_image", str(error))
    if isinstance(error, Cancelled):
        return CANCELLED
    if isinstance(error, torch.cuda.OutOfMemoryError):
        return JobFailed("oom", "Out of memory, also at the smaller size of the retry.")
    logger.error("job failed unexpectedly", exc_info=error)
    # The exception's text stays in the worker's log: it may hold paths or other internals.
    return JobFailed("internal", f"Unexpected {type(error).__name__}; the traceback is in the worker's log.")


def _encode_preview(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.convert("RGB").save(buffer, format="JPEG", quality=75)
    return buffer.getvalue()


def _encoded_size(data: bytes) -> tuple[int, int]:
    with Image.open(io.BytesIO(data)) as image:
        return image.size
