"""What a strength means: the pair's Balance, the strength -> style weight rule, and the styles' blend.

A strength means the same on every content/style pair and every network scale: the style weight is the
relative weight of the strength times the pair's Balance. Measured on the 16 shared pairs with the stand-in
ImageNet weights (docs/benchmarks.md, "Strength", benchmarks/strength_table.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from PIL import Image
from torch import nn

from stylizer.images import luminance_only, resize_longest
from stylizer.objective import Objective, Precision, net_on, pil_to_tensor, resolve_device
from stylizer.options import StylizeOptions
from stylizer.strength import check_strength, style_factor

# The style weight at DEFAULT_STRENGTH in units of the pair's balance (see Balance).
BALANCED_RELATIVE_STYLE_WEIGHT = 100.0


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

    def style_weight(self, strength: int, content_weight: float = 1.0, shift: float = 0.0) -> float:
        relative = BALANCED_RELATIVE_STYLE_WEIGHT * style_factor(check_strength(strength)) * 2.0 ** -shift
        return content_weight * relative * self.content_energy / max(self.start_style_loss, 1e-30)


@dataclass(frozen=True)
class Styles:
    """The style images as painted from (RGB, or their luminance as grey for luminance-only transfer), each
    one's share of the Gram targets, and their size relative to the output's longest side."""

    images: list[Image.Image]
    blend: list[float]
    scale: float

    @classmethod
    def of(cls, styles: Image.Image | Sequence[Image.Image], options: StylizeOptions) -> Styles:
        images = [styles] if isinstance(styles, Image.Image) else list(styles)
        if not images:
            raise ValueError("at least one style image is needed")
        images = [image.convert("RGB") for image in images]
        if options.preserve_colors:
            images = [luminance_only(image) for image in images]
        return cls(images, normalised_blend(options.style_blend, len(images)), options.style_scale)

    def tensors(self, side: int, device: torch.device) -> list[torch.Tensor]:
        """The styles for a level of longest side ``side``."""
        return [pil_to_tensor(resize_longest(image, max(1, round(side * self.scale))), device)
                for image in self.images]


def normalised_blend(style_blend: Sequence[float] | None, count: int) -> list[float]:
    blend = list(style_blend) if style_blend is not None else [1.0] * count
    if len(blend) != count or any(share < 0 for share in blend) or sum(blend) <= 0:
        raise ValueError("style_blend needs one non-negative share per style image, not all zero")
    return [share / sum(blend) for share in blend]


def balance_of(net: nn.Sequential, output: Image.Image, styles: Styles, size: int,
               options: StylizeOptions) -> Balance:
    """The pair's Balance at the output size, in fp32 whatever the painting runs in, so that a strength
    means the same weight on every device and precision."""
    device = next(net.parameters()).device
    content = pil_to_tensor(output, device)
    objective = Objective(
        net, content, styles.tensors(size, device), styles.blend,
        content_layers=options.content_layers, style_layers=options.style_layers, content_weight=1.0,
        style_weights=torch.ones(1, device=device), tv_weight=0.0, precision=Precision(device, "fp32"),
    )
    with torch.no_grad():
        terms = objective.terms(content, torch.zeros(1, dtype=torch.long, device=device))
    energy = sum(float(target.square().mean()) for target in objective.content_targets)
    return Balance(content_energy=energy, start_style_loss=float(terms["style"][0]))


def calibrated_style_weights(
    content: Image.Image,
    styles: Image.Image | Sequence[Image.Image],
    strengths: Sequence[int],
    *,
    net: nn.Sequential,
    size: int,
    options: StylizeOptions | None = None,
) -> list[float]:
    """The raw style weights stylize() gives ``strengths`` of this pair at ``size`` with ``options``, without
    painting (one VGG pass): for a strip whose tiles were all painted before."""
    options = options or StylizeOptions()
    device = resolve_device(options.device)
    net = net_on(net, device, channels_last=False)
    output = resize_longest(content.convert("RGB"), size)
    balance = balance_of(net, output, Styles.of(styles, options), size, options)
    return [balance.style_weight(strength, options.content_weight, options.strength_shift) for strength in strengths]
