"""The referee's objective (``shared/bench/gatys_reference.py``) for a batch of variants, and the network on a
device in the precision it runs in.

ImageNet mean/std normalisation, content MSE at relu4_2, style = sum over relu1_1..relu5_1 of the MSE between
Gram matrices normalised by C*H*W, total = content_weight * content + style_weight * style (+ tv_weight *
total variation, off by default). Every variant differs only by its style weight, so all of them share one
content target and one set of Gram targets and travel through VGG in one batch.

On CUDA, and on CPUs with native bf16 (AVX-512 BF16 or AMX), the VGG pass runs in bf16 autocast with
channels-last tensors (TF32 matmuls on CUDA); Gram matrices and losses stay fp32.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence

import torch
from PIL import Image
from torch import nn

from stylizer.style_cache import style_targets
from stylizer.weights import CONTENT_LAYERS, LAYER_INDEX, STYLE_LAYERS

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
DEFAULT_CONTENT_LAYERS = tuple(CONTENT_LAYERS)
DEFAULT_STYLE_LAYERS = tuple(STYLE_LAYERS)


class DeviceUnavailable(ValueError):
    """The device asked for is not on this machine; ``str(error)`` says so in words."""


def resolve_device(device: str | torch.device) -> torch.device:
    """The torch device to paint on: "auto" picks CUDA when there is one; raises DeviceUnavailable for a CUDA
    device on a machine without CUDA, before any weights are loaded onto it."""
    if str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if str(device).startswith("cuda") and not torch.cuda.is_available():
        raise DeviceUnavailable(
            f'The painter was told to use device "{device}", but CUDA is not available on this machine.'
        )
    return torch.device(device)


def default_max_batch_pixels(device: torch.device) -> int:
    """Images x pixels of one VGG pass: on CPU 5 variants at up to 256 px (one pass beat one picture at a time,
    docs/benchmarks.md, "CPU defaults"), on CUDA 5 variants at 1024 px."""
    return 5 * 1024 * 1024 if device.type == "cuda" else 5 * 256 * 256


def chunks(batch: int, pixels: int, max_batch_pixels: int | None) -> list[slice]:
    """The sub-batches of a batch of ``batch`` pictures of ``pixels`` each, within ``max_batch_pixels``."""
    per_chunk = batch if not max_batch_pixels else max(1, max_batch_pixels // pixels)
    return [slice(start, min(batch, start + per_chunk)) for start in range(0, batch, per_chunk)]


def pil_to_tensor(image: Image.Image, device: torch.device | str) -> torch.Tensor:
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


def cpu_has_native_bf16() -> bool:
    """True where the CPU multiplies bf16 in hardware (AVX-512 BF16 or AMX), as torch's cpuinfo reports it.

    Elsewhere oneDNN emulates bf16 and it is slower than fp32, so it is never assumed.
    """
    try:
        capabilities = torch.cpu.get_capabilities()
    except (AttributeError, RuntimeError):
        return False
    return bool(capabilities.get("avx512_bf16") or capabilities.get("amx_bf16"))


class Precision:
    """What the VGG pass runs in. "auto": bf16 autocast and channels-last on CUDA (with TF32) and on CPUs
    with native bf16; fp32 elsewhere. "fp32" and "bf16" force one. Gram matrices and losses stay fp32."""

    def __init__(self, device: torch.device, precision: str):
        if precision not in ("auto", "fp32", "bf16"):
            raise ValueError(f"precision must be auto, fp32 or bf16, got {precision!r}")
        self.cuda = device.type == "cuda"
        self.device_type = device.type
        native = self.cuda or (device.type == "cpu" and cpu_has_native_bf16())
        self.bf16 = precision == "bf16" or (precision == "auto" and native)
        # Channels-last alone gains little on CPU; with bf16 it is the faster layout (docs/benchmarks.md).
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


def net_on(net: nn.Sequential, device: torch.device, channels_last: bool) -> nn.Sequential:
    """The network on ``device``, frozen, in the memory layout the precision wants."""
    parameter = next(net.parameters(), None)
    if parameter is not None and parameter.device != device:
        net = net.to(device)
    if channels_last:
        # Channels-last weights let cuDNN / oneDNN pick their NHWC kernels (a little faster with bf16 on
        # CPU, docs/benchmarks.md); the values are unchanged.
        net = net.to(memory_format=torch.channels_last)
    return net.eval().requires_grad_(False)


class Objective:
    """The referee's loss for a batch of variants at one resolution; targets are computed once, shared."""

    def __init__(
        self,
        net: nn.Sequential,
        content: torch.Tensor,
        styles: list[torch.Tensor],
        blend: list[float],
        *,
        content_weight: float,
        style_weights: torch.Tensor,
        tv_weight: float,
        precision: Precision,
        content_layers: Sequence[str] | None = None,
        style_layers: Sequence[str] | None = None,
    ):
        content_layers = DEFAULT_CONTENT_LAYERS if content_layers is None else content_layers
        style_layers = DEFAULT_STYLE_LAYERS if style_layers is None else style_layers
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


def relative_content_errors(net: nn.Sequential, photo: Image.Image, pictures: Sequence[Image.Image]) -> list[float]:
    """||F(x) - F(c)||^2 / ||F(c)||^2 at the content layer, in fp32, per picture: 0 is the photo untouched,
    about 1 is as far from the photo's features as the photo is from zero (the measure of docs/benchmarks.md)."""
    device = next(net.parameters()).device
    objective = Objective(net, pil_to_tensor(photo, device), [], [], content_weight=1.0,
                          style_weights=torch.ones(1, device=device), tv_weight=0.0,
                          precision=Precision(device, "fp32"), style_layers=())
    with torch.no_grad():
        features = objective.features(torch.cat([pil_to_tensor(picture, device) for picture in pictures]))
    errors = torch.zeros(len(pictures), device=device)
    for index, target in zip(objective.content_indices, objective.content_targets, strict=True):
        errors += (features[index].float() - target).square().flatten(1).mean(1) / target.square().mean()
    return errors.tolist()
