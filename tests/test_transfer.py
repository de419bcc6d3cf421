"""stylize() on CPU with random VGG weights and tiny images; losses are judged by the shared referee."""

from __future__ import annotations

import json
import pickle
import subprocess
import sys
from dataclasses import replace

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from stylizer.levels import warm_start
from stylizer.objective import pil_to_tensor
from stylizer.options import StylizeOptions
from stylizer.transfer import Cancelled, Progress, stylize
from tests.outside import gatys_reference

# Random VGG features need these (see the referee's docstring).
WEIGHTS = {"content_weight": 1e4, "style_weight": 1e8}


@pytest.fixture(scope="module")
def other_style(sample_images) -> Image.Image:
    return Image.open(sample_images / "style" / "turner_shipwreck.jpg").convert("RGB")


def referee_terms(net, content: Image.Image, style: Image.Image, images: list[Image.Image], size: int):
    """Unweighted content and style losses of each image, as the referee computes them."""
    referee = gatys_reference.Referee(
        net, pil_to_tensor(resize(content, size), "cpu"), pil_to_tensor(resize(style, size), "cpu"), 1.0
    )
    batch = torch.cat([pil_to_tensor(image, "cpu") for image in images])
    with torch.no_grad():
        features = referee.features(batch)
        content_loss = (
            (features[gatys_reference.CONTENT_LAYER] - referee.content_target).square().flatten(1).mean(1)
        )
        style_loss = sum(
            (gatys_reference.gram(features[i]) - referee.style_targets[i]).square().flatten(1).mean(1)
            for i in gatys_reference.STYLE_LAYERS
        )
    return content_loss.tolist(), style_loss.tolist()


def resize(image: Image.Image, size: int) -> Image.Image:
    scale = size / max(image.size)
    return image.resize((round(image.width * scale), round(image.height * scale)), Image.Resampling.LANCZOS)


def pixels(image: Image.Image) -> np.ndarray:
    return np.asarray(image, dtype=np.int16)


def test_same_seed_repaints_the_same_pixels_and_another_seed_does_not(random_vgg, content, style):
    def paint(seed):
        return stylize(content, style, net=random_vgg, size=32,
                       options=StylizeOptions(steps=3, variants=1, init="noise", seed=seed, **WEIGHTS)).images[0]

    first, again, other = paint(1), paint(1), paint(2)
    assert np.array_equal(pixels(first), pixels(again))
    assert not np.array_equal(pixels(first), pixels(other))


def test_result_has_the_requested_size_variants_and_reproducible_params(random_vgg, content, style):
    result = stylize(content, style, net=random_vgg, size=40,
                     options=StylizeOptions(steps=2, variants=5, **WEIGHTS))
    expected = (40, round(content.height * 40 / content.width))
    assert [image.size for image in result.images] == [expected] * 5
    assert result.style_weights == [WEIGHTS["style_weight"] * f for f in (0.25, 0.5, 1, 2, 4)]
    assert result.chosen == 2
    assert [set(losses) for losses in result.losses] == [{"content", "style", "tv", "total"}] * 5
    params = json.loads(json.dumps(result.params))
    assert params["seed"] == 0 and params["size"] == 40 and params["style_weights"] == result.style_weights


def test_the_results_contents_unpickle_without_loading_torch(random_vgg, content, style):
    # The worker sends them to the bot process, which must stay free of torch.
    result = stylize(content, style, net=random_vgg, size=32,
                     options=StylizeOptions(steps=1, variants=2, **WEIGHTS))
    code = "import pickle, sys; pickle.loads(sys.stdin.buffer.read()); print('torch' in sys.modules)"
    unpickled = subprocess.run([sys.executable, "-c", code], input=pickle.dumps(vars(result)), capture_output=True,
                               timeout=60)
    assert unpickled.stdout.strip() == b"False", unpickled.stderr.decode()


def test_more_style_weight_gives_lower_style_and_higher_content_loss(random_vgg, content, style):
    size = 48
    result = stylize(content, style, net=random_vgg, size=size,
                     options=StylizeOptions(steps=12, variants=3, **WEIGHTS))
    content_losses, style_losses = referee_terms(random_vgg, content, style, result.images, size)
    assert style_losses == sorted(style_losses, reverse=True) and style_losses[0] > style_losses[-1]
    assert content_losses == sorted(content_losses) and content_losses[0] < content_losses[-1]


def test_reported_losses_are_the_referees_for_the_delivered_images(random_vgg, content, style):
    size = 40
    result = stylize(content, style, net=random_vgg, size=size,
                     options=StylizeOptions(steps=4, variants=2, **WEIGHTS))
    referee = gatys_reference.Referee(
        random_vgg,
        pil_to_tensor(resize(content, size), "cpu"),
        pil_to_tensor(resize(style, size), "cpu"),
        result.style_weights,
        WEIGHTS["content_weight"],
    )
    scores = referee.score(torch.cat([pil_to_tensor(image, "cpu") for image in result.images]))
    assert [losses["total"] for losses in result.losses] == pytest.approx(scores, rel=1e-4)


@pytest.mark.parametrize("optimizer", ["adam", "lbfgs"])
def test_variants_do_not_influence_each_other(random_vgg, content, style, optimizer):
    """A variant optimised in a batch of three is exactly the same weight optimised alone.

    One image per VGG pass (max_batch_pixels=1) makes the convolutions' arithmetic identical in both runs (a
    batched convolution sums in another order, which the optimiser amplifies); what is left to differ is the
    optimiser.
    """
    common = {
        "steps": 6,
        "content_weight": 1e4,
        "max_batch_pixels": 1,
        "optimizer": optimizer,
    }
    batch = stylize(content, style, net=random_vgg, size=40,
                    options=StylizeOptions(style_weight=1e8, variants=3, **common))
    alone = stylize(content, style, net=random_vgg, size=40,
                    options=StylizeOptions(style_weight=2e8, variants=1, **common))
    assert np.array_equal(pixels(batch.images[2]), pixels(alone.images[0]))


def test_at_equal_evaluations_the_referee_loss_is_not_worse_than_the_baseline(random_vgg, content, style):
    size, steps = 64, 20
    referee = gatys_reference.Referee(
        random_vgg,
        pil_to_tensor(resize(content, size), "cpu"),
        pil_to_tensor(resize(style, size), "cpu"),
        WEIGHTS["style_weight"],
        WEIGHTS["content_weight"],
    )
    baseline_image, _ = gatys_reference.baseline(
        referee, referee_content := pil_to_tensor(resize(content, size), "cpu"), steps
    )
    assert referee_content.shape[-1] == size
    result = stylize(content, style, net=random_vgg, size=size,
                     options=StylizeOptions(steps=steps, variants=1, **WEIGHTS))
    assert result.params["steps_taken"] == steps
    ours = referee.score(pil_to_tensor(result.images[0], "cpu"))[0]
    theirs = referee.score(baseline_image)[0]
    assert ours <= theirs


def test_target_loss_stops_once_every_variant_reaches_it(random_vgg, content, style):
    start = stylize(content, style, net=random_vgg, size=32,
                    options=StylizeOptions(steps=1, variants=2, **WEIGHTS))
    reachable = [losses["total"] * 0.9 for losses in start.losses]
    result = stylize(content, style, net=random_vgg, size=32,
                     options=StylizeOptions(steps=40, variants=2, target_loss=reachable, **WEIGHTS))
    assert 1 < result.params["steps_taken"] < 40
    assert all(
        losses["total"] <= target * 1.01 for losses, target in zip(result.losses, reachable, strict=True)
    )


def test_cancel_raises_before_the_next_step(random_vgg, content, style):
    steps_seen: list[int] = []
    checks = []

    def cancel():
        checks.append(1)
        return len(checks) > 2

    with pytest.raises(Cancelled):
        stylize(content, style, net=random_vgg, size=32, cancel=cancel,
                on_progress=lambda p: steps_seen.append(p.step),
                options=StylizeOptions(steps=50, variants=1, progress_interval=0, **WEIGHTS))
    assert steps_seen == [1, 2]


def test_progress_is_rate_limited_and_ends_at_the_last_step_with_a_preview(random_vgg, content, style):
    events: list[Progress] = []
    stylize(content, style, net=random_vgg, size=32, on_progress=events.append,
            options=StylizeOptions(steps=6, variants=3, progress_interval=3600, preview_size=16, **WEIGHTS))
    assert [event.step for event in events] == [1, 6]
    last = events[-1]
    assert last.step == last.total == 6 and last.stage == "fine" and len(last.losses) == 3
    assert max(last.preview.size) == 16

    every: list[Progress] = []
    stylize(content, style, net=random_vgg, size=32, on_progress=every.append,
            options=StylizeOptions(steps=4, variants=1, progress_interval=0, **WEIGHTS))
    assert [event.step for event in every] == [1, 2, 3, 4]
    assert all(b.elapsed >= a.elapsed for a, b in zip(every, every[1:], strict=False))


def test_coarse_stage_runs_first_at_half_size(random_vgg, content, style):
    stages: list[Progress] = []
    result = stylize(content, style, net=random_vgg, size=256, on_progress=stages.append,
                     options=StylizeOptions(steps=3, variants=1, progress_interval=0, schedule=((0.5, 2), (1.0, 1)), **WEIGHTS))
    assert [p.stage for p in stages] == ["coarse 1/2", "coarse 1/2", "fine"]
    assert [level["side"] for level in result.params["levels"]] == [128, 256]
    assert max(result.images[0].size) == 256


@pytest.mark.parametrize("thin_input", ["content", "style"])
def test_a_picture_too_thin_for_the_coarse_level_is_painted_at_full_size_only(random_vgg, content, style,
                                                                             thin_input):
    # 800x60 is 256x19 at the output size (paintable) but 128x10 at the half-size level, where VGG's
    # pooling would run out of pixels: that level's steps go to the full-size one instead.
    thin = content.resize((800, 60))
    inputs = (thin, style) if thin_input == "content" else (content, thin)
    result = stylize(*inputs, net=random_vgg, size=256,
                     options=StylizeOptions(steps=3, variants=1, schedule=((0.5, 2), (1.0, 1)), **WEIGHTS))
    assert [(level["side"], level["steps"]) for level in result.params["levels"]] == [(256, 3)]
    assert result.images[0].size == ((256, 19) if thin_input == "content" else (256, 170))


def test_blending_styles_mixes_their_targets(random_vgg, content, style, other_style):
    common = StylizeOptions(steps=4, variants=1, **WEIGHTS)
    only_first = stylize(content, style, net=random_vgg, size=32, options=common).images[0]
    all_first = stylize(content, [style, other_style], net=random_vgg, size=32,
                        options=replace(common, style_blend=[1, 0])).images[0]
    mixed = stylize(content, [style, other_style], net=random_vgg, size=32,
                    options=replace(common, style_blend=[1, 1])).images[0]
    only_second = stylize(content, other_style, net=random_vgg, size=32, options=common).images[0]
    assert np.array_equal(pixels(only_first), pixels(all_first))
    assert not np.array_equal(pixels(mixed), pixels(only_first))
    assert not np.array_equal(pixels(mixed), pixels(only_second))


def test_preserve_colors_keeps_the_contents_chroma(random_vgg, content, style):
    common = StylizeOptions(steps=8, variants=1, **WEIGHTS)
    kept = stylize(content, style, net=random_vgg, size=48,
                   options=replace(common, preserve_colors=True)).images[0]
    painted = stylize(content, style, net=random_vgg, size=48, options=common).images[0]
    reference = np.asarray(resize(content, 48).convert("YCbCr"), dtype=np.int16)
    kept_ycbcr = np.asarray(kept.convert("YCbCr"), dtype=np.int16)
    painted_ycbcr = np.asarray(painted.convert("YCbCr"), dtype=np.int16)
    chroma_change_kept = np.abs(kept_ycbcr[..., 1:] - reference[..., 1:]).mean()
    chroma_change_painted = np.abs(painted_ycbcr[..., 1:] - reference[..., 1:]).mean()
    assert chroma_change_kept <= 1.5  # only RGB <-> YCbCr rounding
    assert chroma_change_painted > 3 * chroma_change_kept + 1
    assert np.abs(kept_ycbcr[..., 0] - reference[..., 0]).mean() > 2  # the luminance was painted


def test_bad_arguments_are_refused(random_vgg, content, style):
    with pytest.raises(ValueError, match="init"):
        stylize(content, style, net=random_vgg, size=32, options=StylizeOptions(steps=1, init="zeros"))
    with pytest.raises(ValueError, match="style_blend"):
        stylize(content, [style, style], net=random_vgg, size=32,
                options=StylizeOptions(steps=1, style_blend=[1]))
    with pytest.raises(ValueError, match="layers"):
        stylize(content, style, net=random_vgg, size=32,
                options=StylizeOptions(steps=1, style_layers=("relu9_9",)))


def test_with_a_target_the_coarse_steps_count_by_their_cost(random_vgg, content, style):
    # With a target, ``steps`` caps full-size evaluations: two half-size steps cost half of one, so the fine
    # level gets 3 of the 4 instead of 2.
    common = StylizeOptions(steps=4, variants=1, schedule=((0.5, 0.5), (1.0, 0.5)), **WEIGHTS)
    plain = stylize(content, style, net=random_vgg, size=256, options=common)
    capped = stylize(content, style, net=random_vgg, size=256, options=replace(common, target_loss=0.0))
    assert [(level["side"], level["steps"]) for level in plain.params["levels"]] == [(128, 2), (256, 2)]
    assert [(level["side"], level["steps"]) for level in capped.params["levels"]] == [(128, 2), (256, 3)]
    assert plain.params["full_size_evaluations"] == 2.5 and capped.params["full_size_evaluations"] == 3.5


def test_the_steps_read_nothing_back_from_the_device_unless_a_target_or_progress_asks(
    random_vgg, content, style, monkeypatch
):
    # On CUDA every read of a device value stalls the host until the queue drains; the launch-bound coarse
    # levels then leave the GPU idle. Counted here on CPU: the reads must not grow with the steps.
    reads = []
    for name in ("__bool__", "item", "tolist", "__float__"):
        original = getattr(torch.Tensor, name)

        def counting(self, *args, _original=original, **kwargs):
            reads.append(1)
            return _original(self, *args, **kwargs)

        monkeypatch.setattr(torch.Tensor, name, counting)

    def reads_for(steps: int) -> int:
        reads.clear()
        stylize(content, style, net=random_vgg, size=32,
                options=StylizeOptions(steps=steps, variants=3, max_batch_pixels=1, **WEIGHTS))
        return len(reads)

    assert reads_for(2) == reads_for(7)


def test_a_bf16_loss_below_its_target_freezes_only_if_the_fp32_loss_agrees():
    from stylizer import transfer

    exact = torch.tensor([0.95, 1.02, 0.99, 0.90])

    class Objective:
        def terms(self, images, indices, *, autocast=True):
            assert not autocast
            return {"total": exact[indices]}

    bf16_losses = torch.tensor([0.90, 0.99, 1.01, 1.50])  # 2 is just above, 3 far above the target
    targets = torch.ones(4)
    x = torch.zeros(4, 3, 8, 8)

    def reached(losses_are_bf16, frozen=(False,) * 4):
        return transfer._reached_target(Objective(), x, bf16_losses, targets, list(frozen), losses_are_bf16, 64)

    assert reached(True) == [0, 2]
    assert reached(True, frozen=(True, False, False, False)) == [2]
    assert reached(False) == [0, 1]  # fp32 losses decide at once


def test_a_bf16_run_stops_at_its_targets(random_vgg, content, style, monkeypatch):
    # CUDA's bf16 path, run on CPU through CPU autocast: the freeze check scores in fp32 and the run ends.
    import contextlib

    from stylizer import transfer

    class CpuBf16(transfer.Precision):
        def __init__(self, device, precision):
            super().__init__(device, precision)
            self.bf16 = precision != "fp32"
            self.name = "bf16" if self.bf16 else "fp32"

        def autocast(self):
            return torch.autocast("cpu", dtype=torch.bfloat16) if self.bf16 else contextlib.nullcontext()

    monkeypatch.setattr(transfer, "Precision", CpuBf16)
    start = stylize(content, style, net=random_vgg, size=32,
                    options=StylizeOptions(steps=1, variants=2, **WEIGHTS))
    reachable = [losses["total"] * 0.9 for losses in start.losses]
    result = stylize(content, style, net=random_vgg, size=32,
                     options=StylizeOptions(steps=40, variants=2, target_loss=reachable, **WEIGHTS))
    assert result.params["precision"] == "bf16"
    assert 1 < result.params["steps_taken"] < 40
    assert all(
        losses["total"] <= target * 1.01 for losses, target in zip(result.losses, reachable, strict=True)
    )


def test_init_images_warm_start_only_their_own_variants(random_vgg, content, style):
    warm = Image.new("RGB", (80, 80), (250, 0, 0))  # larger than the level: it is resized to it
    result = stylize(content, style, net=random_vgg, size=32, init_images=[None, warm],
                     options=StylizeOptions(steps=1, variants=2, learning_rate=1e-6, schedule=((1.0, 1.0),), **WEIGHTS))
    cold, warmed = (pixels(image).mean(axis=(0, 1)) for image in result.images)
    assert warmed[0] > 240 and warmed[1] < 10  # still the red picture it started from
    assert abs(cold[0] - pixels(resize(content, 32)).mean(axis=(0, 1))[0]) < 3  # still the photo
    with pytest.raises(ValueError, match="one entry"):
        stylize(content, style, net=random_vgg, size=32, init_images=[warm],
                options=StylizeOptions(steps=1, variants=2, **WEIGHTS))


def test_a_picture_painted_smaller_starts_a_larger_paint_with_the_photos_detail_put_back(content):
    # An Upscale starts from its small tile: plain upsampling would hand the fine level a blurred photo.
    photo = pil_to_tensor(resize(content, 96), "cpu")
    small_photo = resize(content, 48)
    start = warm_start(small_photo, photo)
    blurred = F.interpolate(pil_to_tensor(small_photo, "cpu"), size=photo.shape[-2:], mode="bicubic")
    assert start.shape == photo.shape
    assert (start - photo).abs().mean() < 0.25 * (blurred.clamp(0, 1) - photo).abs().mean()
    same_size = resize(content, 96)
    assert torch.equal(warm_start(same_size, photo), photo)  # a tile at the level's size is taken as it is


def test_a_warm_start_from_a_neighbouring_strength_reaches_a_fresh_paints_loss_in_fewer_steps(
    stand_in_vgg, content, style
):
    # Real features: on random ones every start is about as far from the optimum.
    settings = StylizeOptions(steps=60, style_weight=1e5, variants=1, content_weight=1.0, seed=0)
    fresh = stylize(content, style, net=stand_in_vgg, size=96, options=settings)
    neighbour = stylize(content, style, net=stand_in_vgg, size=96,
                        options=replace(settings, style_weight=5e4))
    target = fresh.losses[0]["total"]
    cold = stylize(content, style, net=stand_in_vgg, size=96, options=replace(settings, target_loss=target))
    warm = stylize(content, style, net=stand_in_vgg, size=96, init_images=[neighbour.images[0]],
                   options=replace(settings, target_loss=target, schedule=((1.0, 1.0),)))
    assert warm.losses[0]["total"] <= target * 1.02
    assert warm.params["steps_taken"] <= cold.params["steps_taken"] / 2
