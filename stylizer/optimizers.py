"""The optimisers of the pixels, batched: every variant of a batch is optimised as if alone.

The optimiser never couples variants: Adam is element-wise, and the L-BFGS beside it keeps each variant's
curvature pairs and step apart (one ``torch.optim.LBFGS`` over the whole batch would couple them through a
shared history and line search). Pixels are kept in [0, 1] throughout (projected steps), because that is the
image the referee scores and the user gets. A StepGuard undoes and shortens, per variant, any step that raised
the objective. Which optimiser paints best on which pair: docs/benchmarks.md, "Optimisers".
"""

from __future__ import annotations

import math

import torch

from stylizer.options import StylizeOptions

HISTORY_BUDGET_BYTES = 2 * 2**30
MIN_HISTORY = 3  # fewer pairs and L-BFGS degenerates into scaled gradient descent
# The hybrid's Adam steps from the photo, and from a picture already painted (a warm start).
HYBRID_ADAM_STEPS = 20
HYBRID_WARM_ADAM_STEPS = 5


class StepGuard:
    """Never lets a variant end worse than the best point it has been evaluated at.

    A step that raised a variant's objective is undone: the variant goes back to its best point and its next
    step is half as long (a backtracking step, per variant); every accepted step doubles the length back,
    up to the optimiser's own. Without it projected L-BFGS can turn a picture into noise on real features
    (docs/benchmarks.md); each undone step costs the one evaluation that found it worse.
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
    optimiser wanders out of range, where clamping afterwards loses much of its progress (docs/benchmarks.md,
    "History"). Gradient components that push a pixel already at a bound further out are ignored, the step is
    clamped, and the curvature pairs use the step actually taken.
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
    of them move. Its step is in pixel units whatever the loss weights, so its first steps move every
    variant off the photo steadily (docs/benchmarks.md, "Optimisers").
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


def history_that_fits(history_size: int, images: torch.Tensor, device: torch.device) -> int:
    """Curvature pairs cost two copies of the batch each: 5 variants at 2048 px are 0.5 GB a pair. At most
    HISTORY_BUDGET_BYTES, on CUDA also at most a quarter of the free memory."""
    budget = HISTORY_BUDGET_BYTES
    if device.type == "cuda":
        budget = min(budget, torch.cuda.mem_get_info(device)[0] // 4)
    pair_bytes = 2 * images.numel() * images.element_size()
    return max(MIN_HISTORY, min(history_size, int(budget // pair_bytes)))


def make_optimiser(options: StylizeOptions, x: torch.Tensor, level_steps: int, *, from_photo: bool):
    """The optimiser of one level's pixels ``x``, and the L-BFGS history it holds (None for Adam)."""
    if options.optimizer == "adam":
        return BatchedAdam(x, options.learning_rate, steps=level_steps, final_rate=options.final_rate), None
    history = history_that_fits(options.history_size, x, x.device)
    lbfgs = BatchedLBFGS(x, history)
    if options.optimizer == "lbfgs":
        return lbfgs, history
    adam_steps = HYBRID_ADAM_STEPS if from_photo else HYBRID_WARM_ADAM_STEPS
    return AdamThenLBFGS(BatchedAdam(x, options.learning_rate), lbfgs, adam_steps), history
