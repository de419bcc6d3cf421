"""The CUDA path (bf16 autocast, TF32, channels-last, sub-batches), checked against the CPU's fp32.

Skipped without CUDA; benchmarks/gpu_check.sh runs them on a GPU machine (``-m cuda``).
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch

from stylizer.images import resize_longest
from stylizer.objective import (
    DEFAULT_CONTENT_LAYERS,
    DEFAULT_STYLE_LAYERS,
    Objective,
    Precision,
    net_on,
    pil_to_tensor,
)
from stylizer.options import StylizeOptions
from stylizer.transfer import stylize

pytestmark = [
    pytest.mark.cuda,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU"),
]

WEIGHTS = {"content_weight": 1e4, "style_weight": 1e8}


def losses_on(device: str, precision: str, net, content, style, images: torch.Tensor) -> torch.Tensor:
    mode = Precision(torch.device(device), precision)
    size = images.shape[-1]
    objective = Objective(
        net_on(net, torch.device(device), mode.channels_last),
        pil_to_tensor(resize_longest(content, size), device),
        [pil_to_tensor(resize_longest(style, size), device)],
        [1.0],
        content_layers=DEFAULT_CONTENT_LAYERS,
        style_layers=DEFAULT_STYLE_LAYERS,
        content_weight=WEIGHTS["content_weight"],
        style_weights=torch.tensor([WEIGHTS["style_weight"]], device=device),
        tv_weight=0.0,
        precision=mode,
    )
    with mode.backends(), torch.no_grad():
        batch = images.to(device)
        return objective.terms(batch, torch.zeros(len(batch), dtype=torch.long, device=device))["total"].cpu()


@pytest.mark.parametrize(("precision", "tolerance"), [("fp32", 3e-3), ("bf16", 2e-2)])
def test_the_cuda_loss_matches_the_cpu_fp32_loss(random_vgg, content, style, precision, tolerance):
    size = 128
    start = pil_to_tensor(resize_longest(content, size), "cpu")
    images = torch.cat([start, (start + 0.1 * torch.randn(start.shape)).clamp(0, 1), torch.rand(start.shape)])
    reference = losses_on("cpu", "fp32", random_vgg, content, style, images)
    on_cuda = losses_on("cuda", precision, random_vgg, content, style, images)
    assert torch.isfinite(on_cuda).all()
    assert ((on_cuda - reference).abs() / reference).max() < tolerance


def test_a_bf16_strip_on_cuda_is_reproducible_and_restores_the_backends(random_vgg, content, style):
    flags = (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.benchmark)

    def paint():
        return stylize(content, style, net=random_vgg, size=256,
                       options=StylizeOptions(steps=12, variants=5, device="cuda", **WEIGHTS))

    first, again = paint(), paint()
    assert first.params["precision"] == "bf16" and first.params["device"].startswith("cuda")
    assert [level["side"] for level in first.params["levels"]] == [128, 256]
    assert all(np.isfinite(losses["total"]) for losses in first.losses)
    assert [np.asarray(image).tolist() for image in first.images] == [
        np.asarray(image).tolist() for image in again.images
    ]
    assert (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.benchmark) == flags


def test_a_bf16_run_on_cuda_freezes_each_variant_at_or_below_its_target_in_fp32(random_vgg, content, style):
    common = {"variants": 3, "device": "cuda", **WEIGHTS}
    start = stylize(content, style, net=random_vgg, size=128, options=StylizeOptions(steps=1, **common))
    targets = [losses["total"] * 0.8 for losses in start.losses]
    result = stylize(content, style, net=random_vgg, size=128,
                     options=StylizeOptions(steps=200, target_loss=targets, **common))
    assert result.params["steps_taken"] < 200
    # The delivered 8-bit images are scored in fp32; rounding to 8 bits may cost a little.
    assert all(
        losses["total"] <= target * 1.01 for losses, target in zip(result.losses, targets, strict=True)
    )


def test_sub_batches_on_cuda_paint_what_one_batch_paints(random_vgg, content, style):
    options = StylizeOptions(steps=6, variants=4, device="cuda", **WEIGHTS)
    whole = stylize(content, style, net=random_vgg, size=128, options=options)
    split = stylize(content, style, net=random_vgg, size=128,
                    options=replace(options, max_batch_pixels=128 * 128))
    whole_totals = [losses["total"] for losses in whole.losses]
    split_totals = [losses["total"] for losses in split.losses]
    assert split_totals == pytest.approx(whole_totals, rel=0.05)
