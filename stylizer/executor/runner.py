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
from stylizer.calibration import calibrated_style_weights
from stylizer.executor._jobs import CANCELLED
from stylizer.executor.base import ExecutorUnavailable, Job, JobDone, JobFailed, JobOptions, JobProgress
from stylizer.executor.reuse import PaintedTile, ReusePlan, decode_tiles, encode_png, plan_reuse
from stylizer.images import ImageLimits, InvalidImage, check_paintable, load_image, resize_longest
from stylizer.objective import DeviceUnavailable
from stylizer.options import StylizeOptions, choose_seed
from stylizer.progress import Cancelled, Progress
from stylizer.strength import check_strength, strength_label, strip_strengths, style_factor
from stylizer.strip import encode_within, make_strip
from stylizer.style_cache import StyleTargetCache, cached_style_targets
from stylizer.timelapse import FRAME_SIDE, FrameRecorder, encode_timelapse
from stylizer.transfer import StylizeResult, stylize

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
        # Both are resized to the output's longest side, so either can be too thin for VGG's poolings.
        check_paintable(content, size, name=job.content_name)
        check_paintable(style, size, name=job.style_name)

    check_both_paintable(options.size)
    earlier = decode_tiles(job.painted, limits)
    strengths = strip_strengths(check_strength(options.strength), options.variants)
    # A random seed is still reported, so that whoever liked the picture can paint it again.
    seed = choose_seed(options.seed)

    report = _ProgressTap(on_progress, progress_interval, previews, FrameRecorder())

    def paint(size: int) -> tuple[ReusePlan, StylizeResult | None]:
        plan = plan_reuse(strengths, earlier, resize_longest(content, size).size, options.steps)
        if not plan.to_paint:
            return plan, None
        # Finer than the executor's rate: the timelapse takes its frames from the same previews.
        settings = _stylize_options(options, plan, seed=seed, device=str(device),
                                    progress_interval=min(progress_interval, FRAME_INTERVAL_S),
                                    preview_size=min(FRAME_SIDE, size))
        return plan, stylize(content, style, net=net, size=size, strength=_chosen_strength(options, plan.to_paint),
                             options=settings, init_images=plan.starts(earlier), on_progress=report,
                             cancel=cancelled)

    def calibrate(tile_strengths: tuple[int, ...]) -> list[float]:
        settings = StylizeOptions(content_weight=options.content_weight,
                                  preserve_colors=options.preserve_colors, device=str(device))
        return calibrated_style_weights(content, style, tile_strengths, net=net, size=options.size,
                                        options=settings)

    with _preset_statistics(job, net):
        (plan, result), note = _paint_with_memory_retry(paint, check_both_paintable, options.size, job.job_id)
        weights = _style_weights(options, strengths, plan, result, calibrate)
    done = _job_done(job, content, style, strengths, weights, earlier, plan, result, started, note)
    if options.strength not in plan.to_paint:
        return done
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


def _stylize_options(options: JobOptions, plan: ReusePlan, **machine) -> StylizeOptions:
    """The job's options as stylize() takes them, for the tiles ``plan`` still paints: the strengths,
    calibrated by the stylizer for the pair, or an expert's raw style weight at ``options.strength`` with the
    strip's factors around it. ``machine``: the seed, device and progress settings of this worker."""
    if options.style_weight is None:
        weighting = {"strengths": list(plan.to_paint)}
    else:
        weighting = {"style_weight": options.style_weight,
                     "variant_factors": [style_factor(s, options.strength) for s in plan.to_paint]}
    return StylizeOptions(steps=plan.steps, schedule=plan.schedule, optimizer=plan.optimizer,
                          content_weight=options.content_weight, tv_weight=options.tv_weight,
                          preserve_colors=options.preserve_colors, **weighting, **machine)


def _chosen_strength(options: JobOptions, to_paint: tuple[int, ...]) -> int:
    """The strength the preview follows: a redo may paint only strengths around the one asked for, and then
    the nearest of them."""
    if options.style_weight is not None:
        return options.strength
    return min(to_paint, key=lambda s: (abs(s - options.strength), s))


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


def _style_weights(options, strengths: tuple[int, ...], plan: ReusePlan, result: StylizeResult | None,
                   calibrate: Callable[[tuple[int, ...]], list[float]]) -> tuple[float, ...]:
    """The raw style weight of every tile: the lattice doubles it per strength, so the tiles painted now
    give it for the reused ones too; a strip reused whole is calibrated again (one VGG pass)."""
    if options.style_weight is not None:
        return tuple(options.style_weight * style_factor(s, options.strength) for s in strengths)
    if result is None:
        return tuple(calibrate(strengths))
    base = result.style_weights[0] / style_factor(plan.to_paint[0], options.strength)
    return tuple(base * style_factor(s, options.strength) for s in strengths)


def _job_done(job: Job, content: Image.Image, style: Image.Image, strengths: tuple[int, ...],
              style_weights: tuple[float, ...], earlier: dict[int, PaintedTile], plan: ReusePlan,
              result: StylizeResult | None, started: float, note: str | None) -> JobDone:
    """The strip of the tiles given and the tiles painted now, encoded for the user and for a later redo."""
    options = job.options
    new = dict(zip(plan.to_paint, result.images, strict=True)) if result is not None else {}
    images = [new[s] if s in new else earlier[s].image for s in strengths]
    tiles = tuple(encode_png(new[s]) if s in new else earlier[s].png for s in strengths)
    chosen = strengths.index(options.strength)
    strip = make_strip(images, [strength_label(s) for s in strengths], content=content, style=style)
    image_bytes, image_ext = encode_within(images[chosen], options.output_max_bytes)
    strip_bytes, strip_ext = encode_within(strip, options.output_max_bytes)
    params = {
        **dataclasses.asdict(options),
        **(result.params if result is not None else {"steps": 0}),
        "reused": list(plan.reused),
        "warm_from": {str(strength): source for strength, source in plan.warm_from.items()},
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
        style_weights=style_weights,
        chosen=chosen,
        tiles=tiles,
        reused=plan.reused,
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
