"""Gatys et al. neural style transfer: optimise the pixels of several style-weight variants at once.

The objective is the referee's (``shared/bench/gatys_reference.py``): ImageNet mean/std normalisation,
content MSE at relu4_2, style = sum over relu1_1..relu5_1 of the MSE between Gram matrices normalised by
C*H*W, total = content_weight * content + style_weight * style (+ tv_weight * total variation, off by
default).

Every variant differs only by its style weight, so all of them share one content target and one set of Gram
targets and travel through VGG in one batch. The optimiser never couples variants: Adam (the default) is
element-wise, and the L-BFGS offered beside it keeps each variant's curvature pairs and step apart (one
``torch.optim.LBFGS`` over the whole batch would couple them through a shared history and line search).
Pixels are kept in [0, 1] throughout (projected steps), because that is the image the referee scores and the
user gets. A StepGuard undoes and shortens, per variant, any step that raised the objective. On real ImageNet
features the guarded L-BFGS reached lower losses on chelsea + Van Gogh but stalled on other pairs; the hybrid
(Adam's first steps, then L-BFGS) is lowest on every pair measured. Adam stays the default: strength is
calibrated on it, and at 128 px a converged picture copies the painting's layout (docs/benchmarks.md).

Speed: the picture is first painted at a fraction of the size (cheap VGG passes settle the large structures)
and then refined at full size. On CUDA, and on CPUs with native bf16 (AVX-512 BF16 or AMX), the VGG pass runs
in bf16 autocast with channels-last tensors (TF32 matmuls on CUDA); Gram matrices and losses stay fp32.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import random
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

from stylizer.images import MIN_PAINTABLE_SIDE
from stylizer.strength import DEFAULT_STRENGTH, check_strength, strip_strengths, style_factor
from stylizer.style_cache import style_targets
from stylizer.weights import CONTENT_LAYERS, LAYER_INDEX, STYLE_LAYERS

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
DEFAULT_CONTENT_LAYERS = tuple(CONTENT_LAYERS)
DEFAULT_STYLE_LAYERS = tuple(STYLE_LAYERS)
# (fraction of the output size, fraction of the steps); levels smaller than MIN_LEVEL_SIDE are skipped.
DEFAULT_SCHEDULE = ((0.25, 0.1), (0.5, 0.15), (1.0, 0.75))
HISTORY_BUDGET_BYTES = 2 * 2**30
# Adam at 100 steps is what strength was calibrated on, and what keeps the photo at 128 px (docs/benchmarks.md).
DEFAULT_OPTIMIZER = "adam"
HYBRID_ADAM_STEPS = 20
HYBRID_WARM_ADAM_STEPS = 5
MIN_HISTORY = 3  # fewer pairs and L-BFGS degenerates into scaled gradient descent
# The style weight at DEFAULT_STRENGTH in units of the pair's balance (see Balance): measured on the 16 shared
# pairs with the stand-in ImageNet weights (docs/benchmarks.md, benchmarks/strength_table.py).
BALANCED_RELATIVE_STYLE_WEIGHT = 100.0
# Below this relu5_1 is a few pixels wide, and its Gram matrix holds the painting's layout: a 64 px level first
# (hybrid optimiser, 200 steps at 128 px) lowered the loss but chelsea + Van Gogh lost the cat to the wheat
# field at strength 5, also with the balance calibrated again at 64 px.
MIN_LEVEL_SIDE = 128
# A bf16 loss this close above its target is scored again without autocast before the variant may freeze,
# and that fp32 score decides: a variant frozen on its bf16 loss alone can end above the loss it aimed for.
# Measured with CPU bf16 autocast at 128 px (real and random weights): bf16 within 0.2 % of fp32; the band
# is five times that (not yet measured on a GPU).
FREEZE_CHECK_BAND = 0.01


@dataclass
class Progress:
    stage: str  # "coarse 1/2", "fine", ...
    step: int  # 1-based, counted over every stage
    total: int
    losses: list[float]  # per variant, the objective at this step
    elapsed: float  # seconds since stylize() started
    preview: Image.Image | None = None  # the chosen variant, longest side preview_size


class Cancelled(Exception):
    """Raised by stylize() when its ``cancel`` callable returned True."""


@dataclass(frozen=True)
class Balance:
    """What makes a strength mean the same on every content/style pair and every network scale.

    ``content_energy`` is the mean square of the content's features (the denominator of the relative content
    error) and ``start_style_loss`` the style loss of the unpainted photo, both at the output size. Their
    ratio converts a relative weight (content error relative to the photo's features against style error
    relative to how far the photo starts from the painting) into the raw Gatys style weight; scaling the
    network's features by K scales the first by K^2 and the second by K^4, so the raw weight follows.
    """

    content_energy: float
    start_style_loss: float

    def style_weight(self, strength: int, content_weight: float = 1.0) -> float:
        relative = BALANCED_RELATIVE_STYLE_WEIGHT * style_factor(check_strength(strength))
        return content_weight * relative * self.content_energy / max(self.start_style_loss, 1e-30)


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


def variant_factors_for(variants: int) -> list[float]:
    """Style-weight factors spaced by powers of two around 1: 5 -> 1/4, 1/2, 1, 2, 4.

    Integer exponents keep the factor 1 (the weight the user asked for) in the set for even counts too:
    4 -> 1/2, 1, 2, 4.
    """
    if variants < 1:
        raise ValueError(f"variants must be at least 1, got {variants}")
    return [2.0 ** (i - (variants - 1) // 2) for i in range(variants)]


def resolve_device(device: str | torch.device) -> torch.device:
    if str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def _longest_resized(size: tuple[int, int], side: int) -> tuple[int, int]:
    scale = side / max(size)
    return max(1, round(size[0] * scale)), max(1, round(size[1] * scale))


def resize_longest(image: Image.Image, side: int) -> Image.Image:
    """Resize so the longest side is ``side``, rounding like the referee so both see the same pixels."""
    new_size = _longest_resized(image.size, side)
    if new_size == image.size:
        return image
    return image.resize(new_size, Image.Resampling.LANCZOS)


def pil_to_tensor(image: Image.Image, device: torch.device) -> torch.Tensor:
    """1x3xHxW float in [0, 1]."""
    data = torch.frombuffer(bytearray(image.convert("RGB").tobytes()), dtype=torch.uint8)
    pixels = data.view(image.height, image.width, 3).permute(2, 0, 1).unsqueeze(0)
    return pixels.to(device).float().div(255).contiguous()


def tensor_to_pil(image: torch.Tensor) -> Image.Image:
    """3xHxW float -> 8-bit RGB, clamped to [0, 1] as the referee scores it."""
    data = image.detach().float().clamp(0, 1).mul(255).round().to(torch.uint8).permute(1, 2, 0).cpu()
    return Image.fromarray(data.contiguous().numpy(), "RGB")


def gram(features: torch.Tensor) -> torch.Tensor:
    n, c, h, w = features.shape
    flat = features.float().reshape(n, c, h * w)
    return flat @ flat.transpose(1, 2) / (c * h * w)


def total_variation(images: torch.Tensor) -> torch.Tensor:
    """Mean squared difference between neighbouring pixels, one value per image."""
    dx = (images[..., :, 1:] - images[..., :, :-1]).square().flatten(1).mean(1)
    dy = (images[..., 1:, :] - images[..., :-1, :]).square().flatten(1).mean(1)
    return dx + dy


def luminance_only(image: Image.Image) -> Image.Image:
    """The image's luminance as grey RGB: a style's texture without its palette."""
    return image.convert("L").convert("RGB")


def with_chroma_of(image: Image.Image, colour_source: Image.Image) -> Image.Image:
    """``image``'s luminance with ``colour_source``'s chroma (YCbCr)."""
    luma = image.convert("YCbCr").getchannel("Y")
    _, cb, cr = colour_source.resize(image.size, Image.Resampling.LANCZOS).convert("YCbCr").split()
    return Image.merge("YCbCr", (luma, cb, cr)).convert("RGB")


def cpu_has_native_bf16() -> bool:
    """True where the CPU multiplies bf16 in hardware (AVX-512 BF16 or AMX), as torch's cpuinfo reports it.

    Elsewhere oneDNN emulates bf16 and it is slower than fp32, so it is never assumed.
    """
    try:
        capabilities = torch.cpu.get_capabilities()
    except (AttributeError, RuntimeError):
        return False
    return bool(capabilities.get("avx512_bf16") or capabilities.get("amx_bf16"))


class _Precision:
    """What the VGG pass runs in. "auto": bf16 autocast and channels-last on CUDA (with TF32) and on CPUs
    with native bf16; fp32 elsewhere. "fp32" and "bf16" force one. Gram matrices and losses stay fp32."""

    def __init__(self, device: torch.device, precision: str):
        if precision not in ("auto", "fp32", "bf16"):
            raise ValueError(f"precision must be auto, fp32 or bf16, got {precision!r}")
        self.cuda = device.type == "cuda"
        self.device_type = device.type
        native = self.cuda or (device.type == "cpu" and cpu_has_native_bf16())
        self.bf16 = precision == "bf16" or (precision == "auto" and native)
        # Measured on a 2-core EPYC: channels-last alone gains little on CPU, with bf16 it is the faster layout.
        self.channels_last = self.cuda or self.bf16
        self.name = "bf16" if self.bf16 else "fp32"

    def autocast(self):
        if self.bf16:
            return torch.autocast(self.device_type, dtype=torch.bfloat16)
        return contextlib.nullcontext()

    @contextlib.contextmanager
    def backends(self, *, exact: bool = False) -> Iterator[None]:
        """TF32 for the optimisation (off when ``exact``: final scores are fp32 like the referee's);
        deterministic cuDNN so that the same seed repaints the same picture; no cuDNN autotuning, whose
        workspace trials spike memory and which re-runs at every new level size."""
        if not self.cuda:
            yield
            return
        cuda_matmul, cudnn = torch.backends.cuda.matmul, torch.backends.cudnn
        saved = cuda_matmul.allow_tf32, cudnn.allow_tf32, cudnn.deterministic, cudnn.benchmark
        cuda_matmul.allow_tf32 = cudnn.allow_tf32 = not exact
        cudnn.deterministic, cudnn.benchmark = True, False
        try:
            yield
        finally:
            cuda_matmul.allow_tf32, cudnn.allow_tf32, cudnn.deterministic, cudnn.benchmark = saved


class _Objective:
    """The referee's loss for a batch of variants at one resolution; targets are computed once, shared."""

    def __init__(
        self,
        net: nn.Sequential,
        content: torch.Tensor,
        styles: list[torch.Tensor],
        blend: list[float],
        *,
        content_layers: Sequence[str],
        style_layers: Sequence[str],
        content_weight: float,
        style_weights: torch.Tensor,
        tv_weight: float,
        precision: _Precision,
    ):
        unknown = [name for name in (*content_layers, *style_layers) if name not in LAYER_INDEX]
        if unknown:
            raise ValueError(f"unknown VGG layers {unknown}; known: {sorted(LAYER_INDEX)}")
        self.content_indices = [LAYER_INDEX[name] for name in content_layers]
        self.style_indices = [LAYER_INDEX[name] for name in style_layers]
        self.net = net[: max(self.content_indices + self.style_indices) + 1]
        self.precision = precision
        self.content_weight = content_weight
        self.style_weights = style_weights
        self.tv_weight = tv_weight
        device = content.device
        self.mean = torch.tensor(IMAGENET_MEAN, device=device).view(1, 3, 1, 1)
        self.std = torch.tensor(IMAGENET_STD, device=device).view(1, 3, 1, 1)
        with torch.no_grad():
            features = self.features(content)
            self.content_targets = [features[i].float() for i in self.content_indices]
            detail = (tuple(tuple(s.shape) for s in styles), tuple(blend), tuple(self.style_indices), precision.name,
                      str(device))
            self.style_targets = style_targets(lambda: self._style_targets(styles, blend), detail)

    def _style_targets(self, styles: list[torch.Tensor], blend: list[float]) -> list[torch.Tensor]:
        targets = [torch.zeros(()) for _ in self.style_indices]
        for style, share in zip(styles, blend, strict=True):
            features = self.features(style)
            targets = [target + share * gram(features[i]) for target, i in zip(targets, self.style_indices, strict=True)]
        return targets

    def features(self, images: torch.Tensor, *, autocast: bool = True) -> dict[int, torch.Tensor]:
        x = (images - self.mean) / self.std
        if self.precision.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        wanted = set(self.content_indices) | set(self.style_indices)
        out = {}
        with self.precision.autocast() if autocast else contextlib.nullcontext():
            for index, layer in enumerate(self.net):
                x = layer(x)
                if index in wanted:
                    out[index] = x
        return out

    def terms(
        self, images: torch.Tensor, variant_index: torch.Tensor, *, autocast: bool = True
    ) -> dict[str, torch.Tensor]:
        """Weighted loss terms per image; ``variant_index`` says which style weight each image carries.
        ``autocast=False`` runs the VGG pass in fp32 (TF32 where the backends allow it) even on bf16 runs."""
        features = self.features(images, autocast=autocast)
        content = sum(
            (features[i].float() - target).square().flatten(1).mean(1)
            for i, target in zip(self.content_indices, self.content_targets, strict=True)
        )
        style = sum(
            (gram(features[i]) - target).square().flatten(1).mean(1)
            for i, target in zip(self.style_indices, self.style_targets, strict=True)
        )
        terms = {"content": self.content_weight * content, "style": self.style_weights[variant_index] * style}
        terms["tv"] = (
            self.tv_weight * total_variation(images) if self.tv_weight else torch.zeros_like(content)
        )
        terms["total"] = terms["content"] + terms["style"] + terms["tv"]
        return terms


class StepGuard:
    """Never lets a variant end worse than the best point it has been evaluated at.

    A step that raised a variant's objective is undone: the variant goes back to its best point and its next
    step is half as long (a backtracking step, per variant); every accepted step doubles the length back,
    up to the optimiser's own. Measured on real features, projected L-BFGS without this can turn a picture
    into noise (docs/benchmarks.md); each undone step costs the one evaluation that found it worse.
    """

    def __init__(self, images: torch.Tensor):
        batch = images.shape[0]
        self.best = images.detach().clone()
        self.best_grad = torch.zeros_like(images, dtype=torch.float32)
        self.best_loss = torch.full((batch,), math.inf, device=images.device)
        self.scale = torch.ones(batch, device=images.device)
        self.undone = torch.zeros(batch, dtype=torch.long, device=images.device)

    def judge(self, x: torch.Tensor, grad: torch.Tensor, losses: torch.Tensor, evaluated: torch.Tensor):
        """Accept or undo the evaluated variants' last steps; returns (the gradient at each variant's point
        now, the mask of variants whose step was undone)."""
        undone = evaluated & (losses > self.best_loss)
        accepted = evaluated & ~undone
        keep = accepted.view(-1, *([1] * (x.dim() - 1)))
        back = undone.view_as(keep)
        self.best = torch.where(keep, x.detach(), self.best)
        self.best_grad = torch.where(keep, grad.float(), self.best_grad)
        self.best_loss = torch.where(accepted, losses, self.best_loss)
        x.data.copy_(torch.where(back, self.best, x.data))
        grown = (self.scale * 2).clamp(max=1.0)
        self.scale = torch.where(undone, self.scale * 0.5, torch.where(accepted, grown, self.scale))
        self.undone += undone
        return self.best_grad, undone


class BatchedLBFGS:
    """``torch.optim.LBFGS`` (no line search, lr 1) run independently for each image of a batch, in a box.

    Each image has its own curvature pairs, its own Hessian scaling and its own first step, exactly as if
    it were optimised alone; the batch only shares the memory slots. One difference from torch: when an
    image rejects a pair (s·y <= 1e-10) it still uses up that slot, so its history holds one pair fewer for
    a while.

    Pixels are kept in [low, high] by projection: the referee scores clamped images, and an unconstrained
    optimiser wanders out of range (on random VGG weights the baseline ends with ~5% of its pixels outside,
    which clamping turns into a third more loss). Gradient components that push a pixel already at a bound
    further out are ignored, the step is clamped, and the curvature pairs use the step actually taken.
    """

    def __init__(
        self, images: torch.Tensor, history_size: int = 100, bounds: tuple[float, float] = (0.0, 1.0)
    ):
        self.x = images
        batch = images.shape[0]
        self.history_size = history_size
        self.low, self.high = bounds
        self.dirs = images.new_zeros((history_size, batch, images[0].numel()))  # y: gradient differences
        self.steps = torch.zeros_like(self.dirs)  # s: steps taken
        self.rho = images.new_zeros((history_size, batch))  # 1 / y·s, 0 where the slot holds nothing
        self.filled = 0
        self.head = 0
        self.h_diag = images.new_ones(batch)
        self.last_step = images.new_zeros((batch, images[0].numel()))
        self.prev_grad: torch.Tensor | None = None
        self.started = torch.zeros(batch, dtype=torch.bool, device=images.device)

    def step(
        self,
        grad: torch.Tensor,
        active: torch.Tensor,
        scale: torch.Tensor | None = None,
        undone: torch.Tensor | None = None,
    ) -> None:
        """Move every active image along its L-BFGS direction; ``grad`` is d(loss)/d(images). ``scale``
        shortens each image's step; ``undone`` marks images put back at their previous point (StepGuard):
        they learn no curvature pair and retry the same direction, shorter."""
        flat_x = self.x.data.view(self.x.shape[0], -1)
        g = grad.reshape(grad.shape[0], -1).float()
        pinned = ((flat_x <= self.low) & (g > 0)) | ((flat_x >= self.high) & (g < 0))
        g = g.masked_fill(pinned, 0.0)
        retried = undone if undone is not None else torch.zeros_like(active)
        if self.prev_grad is not None:
            self._remember(g, active & self.started & ~retried)
        # An image whose very first step was undone has no curvature yet: it retries the first kind of step.
        has_pairs = (self.rho != 0).any(0)
        first = active & (~self.started | (retried & ~has_pairs))
        # torch's first step: the raw gradient, scaled so its L1 norm is at most 1.
        direction = torch.where(first[:, None], -g, self._two_loop(g))
        step_size = torch.where(first, (1.0 / g.abs().sum(1)).clamp(max=1.0), torch.ones_like(self.h_diag))
        if scale is not None:
            step_size = step_size * scale
        step_size = torch.where(active, step_size, torch.zeros_like(step_size))
        before = flat_x.clone()
        flat_x.add_(direction * step_size[:, None]).clamp_(self.low, self.high)
        self.last_step = flat_x - before
        self.started |= active
        self.prev_grad = g if self.prev_grad is None else torch.where(active[:, None], g, self.prev_grad)

    def _remember(self, g: torch.Tensor, active: torch.Tensor) -> None:
        y = g - self.prev_grad
        s = self.last_step
        ys = torch.linalg.vecdot(y, s)
        accept = active & (ys > 1e-10)
        if not bool(accept.any()):
            return
        slot = self.head
        self.dirs[slot] = torch.where(accept[:, None], y, torch.zeros_like(y))
        self.steps[slot] = torch.where(accept[:, None], s, torch.zeros_like(s))
        self.rho[slot] = torch.where(accept, 1.0 / ys.clamp(min=1e-10), torch.zeros_like(ys))
        self.head = (self.head + 1) % self.history_size
        self.filled = min(self.filled + 1, self.history_size)
        self.h_diag = torch.where(accept, ys / torch.linalg.vecdot(y, y).clamp(min=1e-30), self.h_diag)

    def _two_loop(self, g: torch.Tensor) -> torch.Tensor:
        newest_first = [(self.head - 1 - k) % self.history_size for k in range(self.filled)]
        q = -g
        alphas = []
        for slot in newest_first:
            alpha = self.rho[slot] * torch.linalg.vecdot(self.steps[slot], q)
            q = q - alpha[:, None] * self.dirs[slot]
            alphas.append(alpha)
        r = q * self.h_diag[:, None]
        for slot, alpha in zip(reversed(newest_first), reversed(alphas), strict=True):
            beta = self.rho[slot] * torch.linalg.vecdot(self.dirs[slot], r)
            r = r + (alpha - beta)[:, None] * self.steps[slot]
        return r


class BatchedAdam:
    """Adam on the pixels, kept in [low, high] by clamping after each step.

    Adam is element-wise, so the images of a batch never influence each other; ``active`` only decides which
    of them move. It reaches the baseline's referee loss in about half of L-BFGS's evaluations on the
    shared images (docs/benchmarks.md), and its step is in pixel units whatever the loss weights.
    """

    def __init__(
        self,
        images: torch.Tensor,
        learning_rate: float,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        bounds: tuple[float, float] = (0.0, 1.0),
        steps: int | None = None,
        final_rate: float = 1.0,
    ):
        self.x = images
        self.learning_rate = learning_rate
        self.steps = steps
        self.final_rate = final_rate
        self.beta1, self.beta2 = betas
        self.eps = eps
        self.low, self.high = bounds
        self.mean = torch.zeros_like(images, dtype=torch.float32)
        self.square = torch.zeros_like(images, dtype=torch.float32)
        self.count = 0

    def step(
        self,
        grad: torch.Tensor,
        active: torch.Tensor,
        scale: torch.Tensor | None = None,
        undone: torch.Tensor | None = None,
    ) -> None:
        """``scale`` shortens each image's step; ``undone`` images were put back at their previous point
        (StepGuard), whose gradient the moments already hold: they retry the same step, shorter."""
        self.count += 1
        shape = (-1, *([1] * (grad.dim() - 1)))
        moving = active.view(shape)
        learning = active if undone is None else active & ~undone
        g = grad.float()
        self.mean = torch.where(learning.view(shape), self.mean * self.beta1 + g * (1 - self.beta1), self.mean)
        decayed_square = self.square * self.beta2 + g.square() * (1 - self.beta2)
        self.square = torch.where(learning.view(shape), decayed_square, self.square)
        mean_hat = self.mean / (1 - self.beta1**self.count)
        square_hat = self.square / (1 - self.beta2**self.count)
        rate = self.learning_rate * self._decay()
        rate = rate if scale is None else rate * scale.view(shape)
        update = rate * mean_hat / (square_hat.sqrt() + self.eps)
        self.x.data.sub_(torch.where(moving, update, torch.zeros_like(update)).to(self.x.dtype))
        self.x.data.clamp_(self.low, self.high)

    def _decay(self) -> float:
        """Cosine from 1 at the first step to ``final_rate`` at the last of ``steps``."""
        if self.steps is None or self.steps <= 1 or self.final_rate == 1.0:
            return 1.0
        progress = min(1.0, (self.count - 1) / (self.steps - 1))
        return self.final_rate + (1 - self.final_rate) * 0.5 * (1 + math.cos(math.pi * progress))


class AdamThenLBFGS:
    """Adam's first steps, then L-BFGS: Adam's pixel-sized steps move every variant off the photo steadily,
    where L-BFGS's first steps overshoot by orders of magnitude; L-BFGS then converges faster from there."""

    def __init__(self, adam: BatchedAdam, lbfgs: BatchedLBFGS, adam_steps: int):
        self.adam, self.lbfgs, self.adam_steps = adam, lbfgs, adam_steps
        self.count = 0

    def step(self, grad, active, scale=None, undone=None) -> None:
        self.count += 1
        optimiser = self.adam if self.count <= self.adam_steps else self.lbfgs
        optimiser.step(grad, active, scale, undone)


def _levels(size: int, steps: int, schedule: Sequence[Sequence[float]],
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


def _stage_name(scale: float) -> str:
    if scale >= 1.0:
        return "fine"
    return f"coarse 1/{round(1 / scale)}" if abs(1 / scale - round(1 / scale)) < 1e-6 else f"coarse {scale:g}"


def _chunks(batch: int, pixels: int, max_batch_pixels: int | None) -> list[slice]:
    per_chunk = batch if not max_batch_pixels else max(1, max_batch_pixels // pixels)
    return [slice(start, min(batch, start + per_chunk)) for start in range(0, batch, per_chunk)]


def stylize(
    content: Image.Image,
    styles: Image.Image | Sequence[Image.Image],
    *,
    net: nn.Sequential,
    size: int = 512,
    steps: int = 300,
    strength: int = DEFAULT_STRENGTH,
    strengths: Sequence[int] | None = None,
    style_weight: float | None = None,
    content_weight: float = 1.0,
    tv_weight: float = 0.0,
    variants: int = 5,
    variant_factors: Sequence[float] | None = None,
    style_blend: Sequence[float] | None = None,
    style_scale: float = 1.0,
    init: str = "content",
    seed: int | None = 0,
    preserve_colors: bool = False,
    content_layers: Sequence[str] = DEFAULT_CONTENT_LAYERS,
    style_layers: Sequence[str] = DEFAULT_STYLE_LAYERS,
    device: str | torch.device = "auto",
    on_progress: Callable[[Progress], None] | None = None,
    progress_interval: float = 0.5,
    preview_size: int | None = None,
    cancel: Callable[[], bool] | None = None,
    schedule: Sequence[Sequence[float]] = DEFAULT_SCHEDULE,
    optimizer: str = DEFAULT_OPTIMIZER,
    learning_rate: float = 0.05,
    final_rate: float = 1.0,
    iterate_average: float = 0.0,
    history_size: int = 100,
    target_loss: float | Sequence[float] | None = None,
    precision: str = "auto",
    max_batch_pixels: int | None = None,
    safeguard: bool = True,
    init_images: Sequence[Image.Image | None] | None = None,
) -> StylizeResult:
    """Paint ``content`` in the style of ``styles``, once per style-weight variant, all in one batch.

    ``steps`` counts optimiser steps (one VGG forward and backward of the batch each) over all levels of
    ``schedule``: pairs (fraction of ``size``, share of the steps), coarse to fine, ending at scale 1. A coarse
    level under ``MIN_LEVEL_SIDE``, or where the content or a style would be thinner than
    ``MIN_PAINTABLE_SIDE``, is skipped and its steps go to the next level.
    By default the variants are ``strengths`` (1..10; default ``strip_strengths(strength, variants)``) and
    their style weights are calibrated for the pair (``Balance``): strength 1 paints the least, 5 balances
    the photo and the painting, 10 is mostly the painting, on any pair. ``chosen`` is the variant painted at
    ``strength``. Experts give a raw ``style_weight`` instead (the referee's objective, uncalibrated): variant
    ``i`` then uses ``style_weight * factors[i]``; factors default to ``variant_factors_for(variants)`` and
    ``chosen`` is the variant whose factor is (closest to) 1. Several styles blend their Gram targets with
    ``style_blend`` (normalised; equal shares by default); ``style_scale`` sizes each style relative to the
    output's longest side. ``init`` is "content" or "noise" (uniform, from a generator seeded with ``seed``;
    ``seed=None`` picks one and records it in params). The same seed on the same device repaints the same
    pixels. ``init_images`` (one per variant, None for a cold start) warm-starts variants from a picture
    already painted: the first level that runs starts from it, resized to that level; with
    ``schedule=((1.0, 1.0),)`` that is a fine-only refinement of it.

    ``preserve_colors`` is luminance-only transfer: the Gram targets come from the styles' luminance (as
    grey), and each result keeps its own luminance with the content's chroma (Cb, Cr of YCbCr).

    ``target_loss`` (one value or one per variant) freezes a variant at the first full-size step whose
    objective is at or below it (on bf16 runs, its objective scored again without autocast); the run ends when
    every variant is frozen. ``steps`` is then a cap in full-size evaluations: a coarse step counts
    (level side / size)^2, so the fine level keeps the rest (``params["full_size_evaluations"]`` is what was
    spent). ``cancel`` is polled before every step and raises ``Cancelled``. ``on_progress`` gets a
    ``Progress`` at most every ``progress_interval`` seconds and always once at the end (``step == total`` unless ``target_loss`` ended the run early).

    ``optimizer`` is "adam" (``learning_rate`` in pixel units, 0..1; ``final_rate`` < 1 decays it along a
    cosine to that fraction over each level), "lbfgs" (``BatchedLBFGS``: ``torch.optim.LBFGS`` without line
    search, per variant, ``history_size`` curvature pairs) or "hybrid" (``AdamThenLBFGS``). ``iterate_average``
    (0..1, 0 = off) delivers an exponential average of the full-size level's iterates instead of its best point.
    ``max_batch_pixels`` bounds the images x pixels of one VGG pass (variants are split into sub-batches);
    by default it is chosen from the device. ``precision`` "auto" means bf16 autocast on CUDA and on CPUs with
    native bf16, fp32 elsewhere; "fp32" forces fp32.
    ``safeguard`` (on by default) undoes and shortens any step that raised a variant's objective
    (``StepGuard``), so no variant ends worse than where it started; off only to measure what it prevents.
    L-BFGS's ``history_size`` is lowered automatically when the pairs of a large batch would take more than
    2 GiB (or, on CUDA, a quarter of the free memory).
    """
    started = time.perf_counter()
    style_images = _style_images(styles, preserve_colors)
    _check_choices(style_images, optimizer, init, steps, size)
    strengths, factors, chosen = _variant_plan(style_weight, strength, strengths, variants, variant_factors)
    blend = _normalised_blend(style_blend, len(style_images))
    targets = _per_variant(target_loss, len(factors))
    if seed is None:
        seed = random.SystemRandom().randrange(2**31)

    dev = resolve_device(device)
    mode = _Precision(dev, precision)
    net = _net_on(net, dev, mode.channels_last)
    content = content.convert("RGB")
    output = resize_longest(content, size)
    balance = None
    if style_weight is None:
        balance = _balance(net, output, style_images, blend, size, style_scale, content_layers, style_layers)
        weights = [balance.style_weight(s, content_weight) for s in strengths]
    else:
        weights = [style_weight * factor for factor in factors]
    # With a target the run ends on the loss, and ``steps`` is only the cap: counted in full-size evaluations
    # so that the coarse levels do not take a quarter of it. Without one, ``steps`` is what the user asked
    # for and sees in the progress.
    too_thin = _too_thin_at(content, style_images, style_scale)
    levels = _levels(size, steps, schedule, too_thin, coarse_at_cost=targets is not None)
    total_steps = sum(level_steps for _, level_steps, _ in levels)
    if max_batch_pixels is None:
        # CPU: 5 variants at up to 256 px in one pass; measured on the 2-core EPYC with bf16, 20 steps of 5
        # variants took 6.6 s in one pass against 8.9 s one picture at a time at 128 px, 26.0 against 32.3 s
        # at 256 px. CUDA: enough for 5 variants at 1024 px in one pass.
        max_batch_pixels = 5 * 1024 * 1024 if dev.type == "cuda" else 5 * 256 * 256
    run = _Run(
        net=net, mode=mode, device=dev, content=content, output=output, style_images=style_images, blend=blend,
        style_scale=style_scale, size=size, content_layers=content_layers, style_layers=style_layers,
        content_weight=content_weight, style_weights=torch.tensor(weights, dtype=torch.float32, device=dev),
        tv_weight=tv_weight, optimizer=optimizer, learning_rate=learning_rate, final_rate=final_rate,
        iterate_average=iterate_average,
        history_size=history_size,
        safeguard=safeguard, max_batch_pixels=max_batch_pixels,
        targets=torch.tensor(targets, dtype=torch.float32, device=dev) if targets is not None else None,
        cancel=cancel, total_steps=total_steps, init_images=init_images,
        reporter=_Reporter(on_progress, progress_interval, preview_size, chosen, total_steps, started),
    )
    timings: dict[str, float] = {"prepare": time.perf_counter() - started}
    generator = torch.Generator(device=dev).manual_seed(seed)
    x = previous_content = None
    with mode.backends():
        for side, level_steps, scale in levels:
            level_started = time.perf_counter()
            x, previous_content = _paint_level(run, side, level_steps, scale, x, previous_content, init, generator)
            timings[_stage_name(scale)] = time.perf_counter() - level_started

    finish_started = time.perf_counter()
    images = [tensor_to_pil(image) for image in x]
    if preserve_colors:
        images = [with_chroma_of(image, output) for image in images]
    with mode.backends(exact=True), torch.no_grad():
        final_losses = _score(run, images, weights)
    timings["finish"] = time.perf_counter() - finish_started
    timings["total"] = time.perf_counter() - started
    params = _params_record(run, levels, schedule, weights, {
        "style_weight": style_weight if style_weight is not None else weights[chosen],
        "strength": strength if strengths is not None else None, "strengths": strengths,
        "balance": dataclasses.asdict(balance) if balance is not None else None, "variant_factors": factors,
        "init": init, "seed": seed, "preserve_colors": preserve_colors, "target_loss": targets,
    })
    return StylizeResult(images=images, style_weights=weights, chosen=chosen, strengths=strengths,
                         losses=final_losses, timings=timings, params=params)


def calibrated_style_weights(
    content: Image.Image,
    styles: Image.Image | Sequence[Image.Image],
    strengths: Sequence[int],
    *,
    net: nn.Sequential,
    size: int,
    content_weight: float = 1.0,
    style_blend: Sequence[float] | None = None,
    style_scale: float = 1.0,
    preserve_colors: bool = False,
    device: str | torch.device = "auto",
) -> list[float]:
    """The raw style weights stylize() gives ``strengths`` of this pair at ``size``, without painting (one
    VGG pass): for a strip whose tiles were all painted before."""
    style_images = _style_images(styles, preserve_colors)
    dev = resolve_device(device)
    net = _net_on(net, dev, channels_last=False)
    output = resize_longest(content.convert("RGB"), size)
    blend = _normalised_blend(style_blend, len(style_images))
    balance = _balance(net, output, style_images, blend, size, style_scale, DEFAULT_CONTENT_LAYERS,
                       DEFAULT_STYLE_LAYERS)
    return [balance.style_weight(strength, content_weight) for strength in strengths]


def _style_images(styles: Image.Image | Sequence[Image.Image], preserve_colors: bool) -> list[Image.Image]:
    """The styles as painted from: RGB, or their luminance as grey for luminance-only transfer."""
    images = [styles] if isinstance(styles, Image.Image) else list(styles)
    images = [image.convert("RGB") for image in images]
    return [luminance_only(image) for image in images] if preserve_colors else images


def _check_choices(style_images: list[Image.Image], optimizer: str, init: str, steps: int, size: int) -> None:
    if not style_images:
        raise ValueError("at least one style image is needed")
    if optimizer not in ("adam", "lbfgs", "hybrid"):
        raise ValueError(f"optimizer must be 'adam', 'lbfgs' or 'hybrid', got {optimizer!r}")
    if init not in ("content", "noise"):
        raise ValueError(f"init must be 'content' or 'noise', got {init!r}")
    if steps < 1 or size < 1:
        raise ValueError("steps and size must be positive")


def _variant_plan(style_weight, strength, strengths, variants, variant_factors):
    """(strengths or None, style-weight factors relative to the chosen variant, the chosen variant's index)."""
    if style_weight is None:
        if variant_factors is not None:
            raise ValueError("variant_factors go with a raw style_weight; calibrated variants are strengths")
        strengths = [check_strength(s) for s in (strengths or strip_strengths(strength, variants))]
        if check_strength(strength) not in strengths:
            raise ValueError(f"strength {strength} is not among the strengths painted {strengths}")
        return strengths, [style_factor(s, strength) for s in strengths], strengths.index(strength)
    if strengths is not None:
        raise ValueError("strengths are calibrated for the pair: give them without a raw style_weight")
    factors = list(variant_factors) if variant_factors is not None else variant_factors_for(variants)
    return None, factors, min(range(len(factors)), key=lambda i: (abs(math.log(factors[i])), i))


def _normalised_blend(style_blend: Sequence[float] | None, count: int) -> list[float]:
    blend = list(style_blend) if style_blend is not None else [1.0] * count
    if len(blend) != count or any(share < 0 for share in blend) or sum(blend) <= 0:
        raise ValueError("style_blend needs one non-negative share per style image, not all zero")
    return [share / sum(blend) for share in blend]


def _too_thin_at(content: Image.Image, style_images: list[Image.Image], style_scale: float) -> Callable[[int], bool]:
    def too_thin(side: int) -> bool:
        # A picture fine at the output size can be a few pixels thick at a coarse level, where VGG's
        # pooling would fail; resized exactly as _objective_at resizes each input.
        inputs = [(content.size, side)]
        inputs += [(image.size, max(1, round(side * style_scale))) for image in style_images]
        return any(min(_longest_resized(image_size, longest)) < MIN_PAINTABLE_SIDE for image_size, longest in inputs)

    return too_thin


@dataclass
class _Run:
    """What every level of one stylize() call shares, and what the levels count between them."""

    net: nn.Sequential
    mode: _Precision
    device: torch.device
    content: Image.Image
    output: Image.Image  # the content at the output size
    style_images: list[Image.Image]
    blend: list[float]
    style_scale: float
    size: int
    content_layers: Sequence[str]
    style_layers: Sequence[str]
    content_weight: float
    style_weights: torch.Tensor
    tv_weight: float
    optimizer: str
    learning_rate: float
    final_rate: float
    iterate_average: float
    history_size: int
    safeguard: bool
    max_batch_pixels: int
    targets: torch.Tensor | None
    cancel: Callable[[], bool] | None
    total_steps: int
    reporter: _Reporter
    init_images: Sequence[Image.Image | None] | None  # per variant, for the first level that runs
    step_number: int = 0
    evaluations: float = 0.0  # in full-size steps: a step at half the side costs a quarter
    picture_evaluations: int = 0  # pictures through VGG forward + backward, over all levels
    history_used: list[int] = field(default_factory=list)
    undone_steps: list[list[int]] = field(default_factory=list)  # per level, per variant


def _objective_at(run: _Run, side: int, *, exact: bool = False) -> tuple[_Objective, torch.Tensor]:
    """The objective with the content and styles resized for a level of longest side ``side``, and that
    content as a tensor; ``exact`` scores in fp32 whatever the run paints in."""
    content_image = resize_longest(run.content, side) if side != run.size else run.output
    content = pil_to_tensor(content_image, run.device)
    styles = [
        pil_to_tensor(resize_longest(image, max(1, round(side * run.style_scale))), run.device)
        for image in run.style_images
    ]
    objective = _Objective(
        run.net,
        content,
        styles,
        run.blend,
        content_layers=run.content_layers,
        style_layers=run.style_layers,
        content_weight=run.content_weight,
        style_weights=run.style_weights,
        tv_weight=run.tv_weight,
        precision=_Precision(run.device, "fp32") if exact else run.mode,
    )
    return objective, content


def _paint_level(run: _Run, side: int, level_steps: int, scale: float, x, previous_content, init, generator):
    """One level of the schedule: its objective, its own optimiser and StepGuard, up to ``level_steps``
    steps; returns the pictures (each at its best point) and this level's content, for the next level."""
    stage = _stage_name(scale)
    objective, level_content = _objective_at(run, side)
    count = run.style_weights.shape[0]
    from_photo = x is None and run.init_images is None
    x = _start_images(x, previous_content, level_content, count, init, generator, run.init_images)
    if run.optimizer == "adam":
        optimiser = BatchedAdam(x, run.learning_rate, steps=level_steps, final_rate=run.final_rate)
    else:
        history = _history_that_fits(run.history_size, x, run.device)
        run.history_used.append(history)
        optimiser = BatchedLBFGS(x, history)
        if run.optimizer == "hybrid":
            adam_steps = HYBRID_ADAM_STEPS if from_photo else HYBRID_WARM_ADAM_STEPS
            optimiser = AdamThenLBFGS(BatchedAdam(x, run.learning_rate), optimiser, adam_steps)
    # ``active`` lives on the device for the optimiser; ``frozen`` is its host mirror, so that no step waits
    # for the device to say which chunks still move (one read per step, only while freezing).
    active = torch.ones(count, dtype=torch.bool, device=run.device)
    guard = StepGuard(x) if run.safeguard else None
    frozen = [False] * count
    freezes = run.targets is not None and scale >= 1.0
    chunks = _chunks(count, x.shape[-1] * x.shape[-2], run.max_batch_pixels)
    averaging = run.iterate_average > 0 and scale >= 1.0
    average = torch.zeros_like(x) if averaging else None
    averaged = 0
    for _ in range(level_steps):
        if run.cancel is not None and run.cancel():
            raise Cancelled("stylize() was cancelled")
        grad, losses = _evaluate(run, objective, x, chunks, frozen)
        step_scale = undone = None
        if guard is not None:
            grad, undone = guard.judge(x, grad, losses, active)
            losses, step_scale = guard.best_loss.clone(), guard.scale
        if freezes:
            newly = _reached_target(objective, x, losses, run.targets, frozen, run.mode.bf16, run.max_batch_pixels)
            if newly:
                for index in newly:
                    frozen[index] = True
                active[newly] = False
        if averaging:
            average.mul_(run.iterate_average).add_(x.detach(), alpha=1 - run.iterate_average)
            averaged += 1
        run.step_number += 1
        run.evaluations += (side / run.size) ** 2
        if freezes and all(frozen):
            run.reporter.report(stage, run.step_number, losses, x, final=True)
            break
        optimiser.step(grad, active, step_scale, undone)
        run.reporter.report(stage, run.step_number, losses, x, final=run.step_number == run.total_steps)
    if guard is not None:
        # The last step was never evaluated: each variant leaves the level at its best point.
        x.data.copy_(guard.best)
        run.undone_steps.append(guard.undone.tolist())
    if averaging and averaged:
        x.data.copy_(average / (1 - run.iterate_average**averaged))
    return x, level_content


def _evaluate(run: _Run, objective: _Objective, x: torch.Tensor, chunks: list[slice], frozen: list[bool]):
    """Each picture's objective and its gradient, a chunk of pictures per VGG pass; frozen chunks skipped."""
    grad = torch.zeros_like(x)
    losses = torch.zeros(x.shape[0], device=x.device)
    indices = torch.arange(x.shape[0], device=x.device)
    for chunk in chunks:
        if all(frozen[chunk]):
            continue
        part = x[chunk].detach().requires_grad_(True)
        total = objective.terms(part, indices[chunk])["total"]
        total.sum().backward()
        grad[chunk] = part.grad
        losses[chunk] = total.detach()
        run.picture_evaluations += part.shape[0]
    return grad, losses


def _params_record(run: _Run, levels, schedule, weights: list[float], choices: dict) -> dict:
    """Everything needed to paint the same pictures again, JSON-able."""
    return {
        "size": run.size,
        "output_size": list(run.output.size),
        "steps": run.total_steps,
        "steps_taken": run.step_number,
        "full_size_evaluations": round(run.evaluations, 2),
        "evaluations": run.picture_evaluations,
        "levels": [
            {"side": side, "steps": level_steps, "stage": _stage_name(scale)} for side, level_steps, scale in levels
        ],
        "schedule": [list(level) for level in schedule],
        "style_weights": weights,
        "content_weight": run.content_weight,
        "tv_weight": run.tv_weight,
        "style_blend": run.blend,
        "style_scale": run.style_scale,
        "content_layers": list(run.content_layers),
        "style_layers": list(run.style_layers),
        "device": str(run.device),
        "precision": run.mode.name,
        "optimizer": run.optimizer,
        "learning_rate": run.learning_rate if run.optimizer == "adam" else None,
        "final_rate": run.final_rate if run.optimizer == "adam" else None,
        "iterate_average": run.iterate_average,
        "history_size": run.history_used or None,
        "safeguard": run.safeguard,
        "undone_steps": run.undone_steps if run.safeguard else None,
        "max_batch_pixels": run.max_batch_pixels,
        # A TorchVersion would pickle as a torch class and load torch into the bot that unpickles the result.
        "torch": str(torch.__version__),
        **choices,
    }


def _reached_target(
    objective: _Objective,
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
        for chunk in _chunks(len(candidates), x.shape[-1] * x.shape[-2], max_batch_pixels):
            exact[chunk] = objective.terms(x[indices[chunk]], indices[chunk], autocast=False)["total"]
    below = (exact <= targets[indices]).tolist()
    return [index for index, reached in zip(candidates, below, strict=True) if reached]


def _per_variant(value: float | Sequence[float] | None, count: int) -> list[float] | None:
    if value is None:
        return None
    values = [float(value)] * count if isinstance(value, int | float) else [float(v) for v in value]
    if len(values) != count:
        raise ValueError(f"target_loss needs one value or {count}, got {len(values)}")
    return values


def _net_on(net: nn.Sequential, device: torch.device, channels_last: bool) -> nn.Sequential:
    parameter = next(net.parameters(), None)
    if parameter is not None and parameter.device != device:
        net = net.to(device)
    if channels_last:
        # Channels-last weights let cuDNN / oneDNN pick their NHWC kernels (measured on the 2-core EPYC with
        # bf16: 0.059 s against 0.064 s per VGG pass at 128 px); the values are unchanged.
        net = net.to(memory_format=torch.channels_last)
    return net.eval().requires_grad_(False)


def _start_images(
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
                    start[index] = _warm_start(image, content)[0]
        return start.contiguous()
    height, width = content.shape[-2:]
    upsampled = F.interpolate(previous, size=(height, width), mode="bicubic", align_corners=False)
    if init == "content":
        # The coarse pass painted the style onto a blurred photo; put back the detail it never saw.
        blurred = F.interpolate(previous_content, size=(height, width), mode="bicubic", align_corners=False)
        upsampled = upsampled + (content - blurred)
    return upsampled.clamp(0, 1).contiguous()


def _warm_start(image: Image.Image, content: torch.Tensor) -> torch.Tensor:
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


def _history_that_fits(history_size: int, images: torch.Tensor, device: torch.device) -> int:
    """Curvature pairs cost two copies of the batch each: 5 variants at 2048 px are 0.5 GB a pair."""
    budget = HISTORY_BUDGET_BYTES
    if device.type == "cuda":
        budget = min(budget, torch.cuda.mem_get_info(device)[0] // 4)
    pair_bytes = 2 * images.numel() * images.element_size()
    return max(MIN_HISTORY, min(history_size, int(budget // pair_bytes)))


def _balance(net, output, style_images, blend, size, style_scale, content_layers, style_layers) -> Balance:
    """The pair's Balance at the output size, in fp32 whatever the painting runs in, so that a strength
    means the same weight on every device and precision."""
    device = next(net.parameters()).device
    content = pil_to_tensor(output, device)
    styles = [
        pil_to_tensor(resize_longest(image, max(1, round(size * style_scale))), device) for image in style_images
    ]
    objective = _Objective(
        net,
        content,
        styles,
        blend,
        content_layers=content_layers,
        style_layers=style_layers,
        content_weight=1.0,
        style_weights=torch.ones(1, device=device),
        tv_weight=0.0,
        precision=_Precision(device, "fp32"),
    )
    with torch.no_grad():
        terms = objective.terms(content, torch.zeros(1, dtype=torch.long, device=device))
    energy = sum(float(target.square().mean()) for target in objective.content_targets)
    return Balance(content_energy=energy, start_style_loss=float(terms["style"][0]))


def _score(run: _Run, images: list[Image.Image], weights: list[float]) -> list[dict[str, float]]:
    """The delivered 8-bit images scored in fp32 at full size, as the referee would."""
    objective, _ = _objective_at(run, run.size, exact=True)
    batch = torch.cat([pil_to_tensor(image, run.device) for image in images])
    losses: list[dict[str, float]] = []
    for chunk in _chunks(len(images), run.output.width * run.output.height, run.max_batch_pixels):
        indices = torch.arange(len(images), device=run.device)[chunk]
        terms = objective.terms(batch[chunk], indices)
        for row in range(len(indices)):
            losses.append({name: float(value[row]) for name, value in terms.items()})
    return losses


class _Reporter:
    def __init__(self, on_progress, interval, preview_size, chosen, total, started):
        self.on_progress = on_progress
        self.interval = interval
        self.preview_size = preview_size
        self.chosen = chosen
        self.total = total
        self.started = started
        self.last = -math.inf

    def report(self, stage: str, step: int, losses: torch.Tensor, images: torch.Tensor, *, final: bool):
        if self.on_progress is None:
            return
        now = time.perf_counter()
        if not final and now - self.last < self.interval:
            return
        self.last = now
        preview = None
        if self.preview_size:
            preview = resize_longest(tensor_to_pil(images[self.chosen]), self.preview_size)
        self.on_progress(
            Progress(
                stage=stage,
                step=step,
                total=self.total,
                losses=losses.tolist(),
                elapsed=now - self.started,
                preview=preview,
            )
        )
