"""Gatys et al. neural style transfer: paint the pixels of several style-weight variants of one picture at once.

``stylize()`` prepares a run (calibration.py: what a strength weighs; levels.py: the sizes coarse to fine)
and paints level after level: the objective (objective.py) through VGG in one batch, the optimiser and its
StepGuard (optimizers.py) per level, progress and cancelling (progress.py). The expert settings are one
``StylizeOptions`` (options.py).

Adam stays the default optimiser: strength is calibrated on it, and at 128 px a converged picture copies the
painting's layout. The hybrid (Adam's first steps, then L-BFGS) reached the lowest losses on the pairs
measured; L-BFGS alone stalled on several (docs/benchmarks.md, "Optimisers").
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import torch
from PIL import Image
from torch import nn

from stylizer.calibration import Balance, Styles, balance_of
from stylizer.images import resize_longest, with_chroma_of
from stylizer.levels import plan_levels, stage_name, start_images, too_thin_at
from stylizer.objective import (
    DEFAULT_CONTENT_LAYERS,
    DEFAULT_STYLE_LAYERS,
    Objective,
    Precision,
    chunks,
    default_max_batch_pixels,
    net_on,
    pil_to_tensor,
    resolve_device,
    tensor_to_pil,
)
from stylizer.optimizers import StepGuard, make_optimiser
from stylizer.options import DEFAULT_SIZE, StylizeOptions, VariantPlan, choose_seed, per_variant
from stylizer.progress import Cancelled, Progress, Reporter
from stylizer.strength import DEFAULT_STRENGTH

# A bf16 loss this close above its target is scored again without autocast before the variant may freeze,
# and that fp32 score decides: a variant frozen on its bf16 loss alone can end above the loss it aimed for.
# Five times the bf16 error measured on CPU (docs/benchmarks.md, "Precision").
FREEZE_CHECK_BAND = 0.01


@dataclass
class StylizeResult:
    images: list[Image.Image]  # one per variant, in style_weights order
    style_weights: list[float]
    chosen: int  # index of the variant painted with the requested strength or style weight
    # Per variant, of the delivered 8-bit image, in fp32: "content" (= content_weight * MSE), "style"
    # (= its style weight * Gram MSE sum), "tv" (= tv_weight * total variation) and "total" (their sum, the
    # referee's loss when tv_weight is 0).
    losses: list[dict[str, float]]
    timings: dict[str, float]  # seconds per stage, plus "total"
    params: dict = field(default_factory=dict)  # JSON-able, everything needed to reproduce the images
    strengths: list[int] | None = None  # per variant, when the weights came from strengths (not a raw weight)


def stylize(
    content: Image.Image,
    styles: Image.Image | Sequence[Image.Image],
    *,
    net: nn.Sequential,
    size: int = DEFAULT_SIZE,
    strength: int = DEFAULT_STRENGTH,
    options: StylizeOptions | None = None,
    init_images: Sequence[Image.Image | None] | None = None,
    on_progress: Callable[[Progress], None] | None = None,
    cancel: Callable[[], bool] | None = None,
) -> StylizeResult:
    """Paint ``content`` in the style of ``styles`` at longest side ``size``, once per variant, in one batch.

    The variants are strengths (1..10) around ``strength``, their style weights calibrated for the pair:
    strength 1 paints the least, 5 balances the photo and the painting, 10 is mostly the painting, on any
    pair; ``chosen`` is the variant painted at ``strength``. ``options`` holds everything else (see
    ``StylizeOptions``); the same options and seed on the same device repaint the same pixels.

    ``init_images`` (one per variant, None for a cold start) warm-starts variants from a picture already
    painted: the first level that runs starts from it, resized to that level; with ``schedule=((1.0, 1.0),)``
    that is a fine-only refinement of it. ``on_progress`` gets a ``Progress`` at most every
    ``options.progress_interval`` seconds and always once at the end. ``cancel`` is polled before every step
    and raises ``Cancelled``.
    """
    started = time.perf_counter()
    run = _prepare(content, styles, net, size, strength, options or StylizeOptions(), started)
    run.init_images, run.cancel, run.reporter.on_progress = init_images, cancel, on_progress
    timings: dict[str, float] = {"prepare": time.perf_counter() - started}
    generator = torch.Generator(device=run.device).manual_seed(run.seed)
    x = previous_content = None
    with run.mode.backends():
        for side, level_steps, scale in run.levels:
            level_started = time.perf_counter()
            x, previous_content = _paint_level(run, side, level_steps, scale, x, previous_content, generator)
            timings[stage_name(scale)] = time.perf_counter() - level_started

    finish_started = time.perf_counter()
    images = [tensor_to_pil(image) for image in x]
    if run.options.preserve_colors:
        images = [with_chroma_of(image, run.output) for image in images]
    with run.mode.backends(exact=True), torch.no_grad():
        final_losses = _score(run, images)
    timings["finish"] = time.perf_counter() - finish_started
    timings["total"] = time.perf_counter() - started
    return StylizeResult(images=images, style_weights=run.weights, chosen=run.plan.chosen,
                         strengths=run.plan.strengths, losses=final_losses, timings=timings,
                         params=_params_record(run, strength))


@dataclass
class _Run:
    """What every level of one stylize() call shares, and what the levels count between them."""

    options: StylizeOptions
    net: nn.Sequential
    mode: Precision
    device: torch.device
    content: Image.Image
    output: Image.Image  # the content at the output size
    styles: Styles
    size: int
    plan: VariantPlan
    balance: Balance | None
    weights: list[float]
    style_weights: torch.Tensor  # the weights on the device
    targets: torch.Tensor | None
    levels: list[tuple[int, int, float]]
    seed: int
    max_batch_pixels: int
    reporter: Reporter
    init_images: Sequence[Image.Image | None] | None = None  # per variant, for the first level that runs
    cancel: Callable[[], bool] | None = None
    step_number: int = 0
    evaluations: float = 0.0  # in full-size steps: a step at half the side costs a quarter
    picture_evaluations: int = 0  # pictures through VGG forward + backward, over all levels
    history_used: list[int] = field(default_factory=list)
    undone_steps: list[list[int]] = field(default_factory=list)  # per level, per variant

    @property
    def total_steps(self) -> int:
        return self.reporter.total


def _prepare(content, styles, net, size, strength, options: StylizeOptions, started: float) -> _Run:
    """Everything a run decides before its first step: the variants and their weights, the levels, the seed."""
    style_set = Styles.of(styles, options)
    options.check(size)
    plan = VariantPlan.of(options, strength)
    targets = per_variant(options.target_loss, len(plan.factors))
    device = resolve_device(options.device)
    mode = Precision(device, options.precision)
    net = net_on(net, device, mode.channels_last)
    content = content.convert("RGB")
    output = resize_longest(content, size)
    balance = None
    if options.style_weight is None:
        balance_side = options.balance_size or size
        balance_image = output if balance_side == size else resize_longest(content, balance_side)
        balance = balance_of(net, balance_image, style_set, balance_side, options)
        weights = [balance.style_weight(s, options.content_weight, options.strength_shift) for s in plan.strengths]
    else:
        weights = [options.style_weight * factor for factor in plan.factors]
    # With a target the run ends on the loss, and ``steps`` is only the cap: counted in full-size evaluations
    # so that the coarse levels do not take a quarter of it. Without one, ``steps`` is what the user asked
    # for and sees in the progress.
    too_thin = too_thin_at(content, style_set.images, options.style_scale)
    levels = plan_levels(size, options.steps, options.schedule, too_thin, coarse_at_cost=targets is not None)
    total_steps = sum(level_steps for _, level_steps, _ in levels)
    return _Run(
        options=options, net=net, mode=mode, device=device, content=content, output=output, styles=style_set,
        size=size, plan=plan, balance=balance, weights=weights,
        style_weights=torch.tensor(weights, dtype=torch.float32, device=device),
        targets=torch.tensor(targets, dtype=torch.float32, device=device) if targets is not None else None,
        levels=levels, seed=choose_seed(options.seed),
        max_batch_pixels=options.max_batch_pixels or default_max_batch_pixels(device),
        reporter=Reporter(None, options.progress_interval, options.preview_size, plan.chosen, total_steps, started),
    )


def _objective_at(run: _Run, side: int, *, exact: bool = False) -> tuple[Objective, torch.Tensor]:
    """The objective with the content and styles resized for a level of longest side ``side``, and that
    content as a tensor; ``exact`` scores in fp32 whatever the run paints in."""
    content_image = resize_longest(run.content, side) if side != run.size else run.output
    content = pil_to_tensor(content_image, run.device)
    objective = Objective(
        run.net, content, run.styles.tensors(side, run.device), run.styles.blend,
        content_layers=run.options.content_layers, style_layers=run.options.style_layers,
        content_weight=run.options.content_weight, style_weights=run.style_weights,
        tv_weight=run.options.tv_weight, precision=Precision(run.device, "fp32") if exact else run.mode,
    )
    return objective, content


@dataclass
class _Level:
    """One level's painting state: its pictures, objective, optimiser and guard, and which variants froze."""

    stage: str
    side: int
    freezes: bool  # variants freeze at their target loss (full-size level of a run with targets)
    objective: Objective
    x: torch.Tensor
    optimiser: object
    guard: StepGuard | None
    # ``active`` lives on the device for the optimiser; ``frozen`` is its host mirror, so that no step waits
    # for the device to say which chunks still move (one read per step, only while freezing).
    active: torch.Tensor
    frozen: list[bool]
    chunks: list[slice]


def _paint_level(run: _Run, side: int, level_steps: int, scale: float, x, previous_content, generator):
    """One level of the schedule: its objective, its own optimiser and StepGuard, up to ``level_steps``
    steps; returns the pictures (each at its best point) and this level's content, for the next level."""
    level, level_content = _start_level(run, side, level_steps, scale, x, previous_content, generator)
    for _ in range(level_steps):
        if run.cancel is not None and run.cancel():
            raise Cancelled("stylize() was cancelled")
        if not _step(run, level):
            break
    if level.guard is not None:
        # The last step was never evaluated: each variant leaves the level at its best point.
        level.x.data.copy_(level.guard.best)
        run.undone_steps.append(level.guard.undone.tolist())
    return level.x, level_content


def _start_level(run: _Run, side, level_steps, scale, x, previous_content, generator) -> tuple[_Level, torch.Tensor]:
    objective, level_content = _objective_at(run, side)
    count = len(run.weights)
    from_photo = x is None and run.init_images is None
    x = start_images(x, previous_content, level_content, count, run.options.init, generator, run.init_images)
    optimiser, history = make_optimiser(run.options, x, level_steps, from_photo=from_photo)
    if history is not None:
        run.history_used.append(history)
    level = _Level(
        stage=stage_name(scale), side=side, freezes=run.targets is not None and scale >= 1.0,
        objective=objective, x=x, optimiser=optimiser, guard=StepGuard(x) if run.options.safeguard else None,
        active=torch.ones(count, dtype=torch.bool, device=run.device), frozen=[False] * count,
        chunks=chunks(count, x.shape[-1] * x.shape[-2], run.max_batch_pixels),
    )
    return level, level_content


def _step(run: _Run, level: _Level) -> bool:
    """One evaluation and, unless every variant froze, one optimiser step; False when the level is done."""
    x = level.x
    grad, losses = _evaluate(run, level.objective, x, level.chunks, level.frozen)
    step_scale = undone = None
    if level.guard is not None:
        grad, undone = level.guard.judge(x, grad, losses, level.active)
        losses, step_scale = level.guard.best_loss.clone(), level.guard.scale
    if level.freezes:
        newly = _reached_target(level.objective, x, losses, run.targets, level.frozen, run.mode.bf16,
                                run.max_batch_pixels)
        if newly:
            for index in newly:
                level.frozen[index] = True
            level.active[newly] = False
    run.step_number += 1
    run.evaluations += (level.side / run.size) ** 2
    if level.freezes and all(level.frozen):
        run.reporter.report(level.stage, run.step_number, losses, x, final=True)
        return False
    level.optimiser.step(grad, level.active, step_scale, undone)
    run.reporter.report(level.stage, run.step_number, losses, x, final=run.step_number == run.total_steps)
    return True


def _evaluate(run: _Run, objective: Objective, x: torch.Tensor, parts: list[slice], frozen: list[bool]):
    """Each picture's objective and its gradient, a chunk of pictures per VGG pass; frozen chunks skipped."""
    grad = torch.zeros_like(x)
    losses = torch.zeros(x.shape[0], device=x.device)
    indices = torch.arange(x.shape[0], device=x.device)
    for chunk in parts:
        if all(frozen[chunk]):
            continue
        part = x[chunk].detach().requires_grad_(True)
        total = objective.terms(part, indices[chunk])["total"]
        total.sum().backward()
        grad[chunk] = part.grad
        losses[chunk] = total.detach()
        run.picture_evaluations += part.shape[0]
    return grad, losses


def _reached_target(
    objective: Objective,
    x: torch.Tensor,
    losses: torch.Tensor,
    targets: torch.Tensor,
    frozen: list[bool],
    losses_are_bf16: bool,
    max_batch_pixels: int | None,
) -> list[int]:
    """The variants, not yet frozen, whose loss is at or below their target.

    bf16 losses only nominate: those within ``FREEZE_CHECK_BAND`` above the target are scored again without
    autocast, and that score decides, so a variant never freezes on its bf16 rounding alone.
    """
    band = 1 + FREEZE_CHECK_BAND if losses_are_bf16 else 1
    near = (losses <= targets * band).tolist()  # the one host read per fine step, only with targets
    candidates = [index for index, is_near in enumerate(near) if is_near and not frozen[index]]
    if not candidates or not losses_are_bf16:
        return candidates
    indices = torch.tensor(candidates, device=x.device)
    exact = torch.empty(len(candidates), device=x.device)
    with torch.no_grad():
        for chunk in chunks(len(candidates), x.shape[-1] * x.shape[-2], max_batch_pixels):
            exact[chunk] = objective.terms(x[indices[chunk]], indices[chunk], autocast=False)["total"]
    below = (exact <= targets[indices]).tolist()
    return [index for index, reached in zip(candidates, below, strict=True) if reached]


def _score(run: _Run, images: list[Image.Image]) -> list[dict[str, float]]:
    """The delivered 8-bit images scored in fp32 at full size, as the referee would."""
    objective, _ = _objective_at(run, run.size, exact=True)
    batch = torch.cat([pil_to_tensor(image, run.device) for image in images])
    losses: list[dict[str, float]] = []
    for chunk in chunks(len(images), run.output.width * run.output.height, run.max_batch_pixels):
        indices = torch.arange(len(images), device=run.device)[chunk]
        terms = objective.terms(batch[chunk], indices)
        for row in range(len(indices)):
            losses.append({name: float(value[row]) for name, value in terms.items()})
    return losses


def _params_record(run: _Run, strength: int) -> dict:
    """Everything needed to paint the same pictures again, JSON-able."""
    options = run.options
    adam = options.optimizer == "adam"
    return {
        "size": run.size,
        "output_size": list(run.output.size),
        "steps": run.total_steps,
        "steps_taken": run.step_number,
        "full_size_evaluations": round(run.evaluations, 2),
        "evaluations": run.picture_evaluations,
        "levels": [{"side": side, "steps": steps, "stage": stage_name(scale)} for side, steps, scale in run.levels],
        "schedule": [list(level) for level in options.schedule],
        "style_weights": run.weights,
        "content_weight": options.content_weight,
        "tv_weight": options.tv_weight,
        "style_blend": run.styles.blend,
        "style_scale": options.style_scale,
        "balance_size": options.balance_size or run.size,
        "strength_shift": options.strength_shift,
        "content_layers": list(options.content_layers or DEFAULT_CONTENT_LAYERS),
        "style_layers": list(options.style_layers or DEFAULT_STYLE_LAYERS),
        "device": str(run.device),
        "precision": run.mode.name,
        "optimizer": options.optimizer,
        "learning_rate": options.learning_rate if adam else None,
        "final_rate": options.final_rate if adam else None,
        "history_size": run.history_used or None,
        "safeguard": options.safeguard,
        "undone_steps": run.undone_steps if options.safeguard else None,
        "max_batch_pixels": run.max_batch_pixels,
        # A TorchVersion would pickle as a torch class and load torch into the bot that unpickles the result.
        "torch": str(torch.__version__),
        "style_weight": options.style_weight if options.style_weight is not None else run.weights[run.plan.chosen],
        "strength": strength if run.plan.strengths is not None else None,
        "strengths": run.plan.strengths,
        "balance": dataclasses.asdict(run.balance) if run.balance is not None else None,
        "variant_factors": run.plan.factors,
        "init": options.init,
        "seed": run.seed,
        "preserve_colors": options.preserve_colors,
        "target_loss": per_variant(options.target_loss, len(run.weights)),
    }
