"""Strength on real ImageNet features (the shared stand-in): one scale for every picture pair.

Relative content error = ||F(x) - F(c)||^2 / ||F(c)||^2 at relu4_2 (the referee's network and layer): 0 is the
photo untouched, about 1 is as far from the photo's features as the photo is from zero. Small pictures keep
CI quick; benchmarks/strength_table.py measures the same on all 16 shared pairs at the bot's sizes.
"""

from __future__ import annotations

import copy
import dataclasses

import numpy as np
import pytest
import torch
from PIL import Image

from stylizer.images import resize_longest
from stylizer.objective import pil_to_tensor
from stylizer.options import StylizeOptions
from stylizer.pipeline import RequestPlan, paint_request, probe_shift
from stylizer.strength import step_strength, strip_spacing
from stylizer.transfer import stylize
from tests.outside import gatys_reference

SIZE = 96
STEPS = 80


def relative_content_errors(net, photo: Image.Image, pictures: list[Image.Image]) -> list[float]:
    target_image = pil_to_tensor(photo, "cpu")
    referee = gatys_reference.Referee(net, target_image, target_image, 1.0)
    with torch.no_grad():
        features = referee.features(torch.cat([pil_to_tensor(p, "cpu") for p in pictures]))
    target = referee.content_target
    error = (features[gatys_reference.CONTENT_LAYER] - target).square().flatten(1).mean(1)
    return (error / target.square().mean()).tolist()


def open_pair(sample_images, content_name, style_name):
    content = Image.open(sample_images / "content" / content_name).convert("RGB")
    style = Image.open(sample_images / "style" / style_name).convert("RGB")
    return content, style


# Two pairs whose calibrated weights differ (4.8e4 and 2.0e4 at strength 5, 128 px). On rocket + Gauguin at
# 96 px and 60 steps strength 10 came out no more painted than 5 (1.05 against 1.09): see docs/benchmarks.md.
PAIRS = [
    ("chelsea.jpg", "vangogh_wheat_field_with_cypresses.jpg"),
    ("chelsea.jpg", "gauguin_tahiti_1896.jpg"),
]


@pytest.mark.parametrize(("content_name", "style_name"), PAIRS)
def test_strength_1_keeps_the_photo_5_balances_10_paints(stand_in_vgg, sample_images, content_name, style_name):
    content, style = open_pair(sample_images, content_name, style_name)
    result = stylize(content, style, net=stand_in_vgg, size=SIZE, strength=5,
                     options=StylizeOptions(steps=STEPS, strengths=[1, 5, 10], seed=0, device="cpu"))
    faint, balanced, strong = relative_content_errors(stand_in_vgg, resize_longest(content, SIZE), result.images)
    print(f"{content_name} + {style_name}: strengths 1 / 5 / 10 -> {faint:.2f} / {balanced:.2f} / {strong:.2f}")
    # At the bot's sizes (128 px and up, docs/benchmarks.md) strength 1 stays near 0.2-0.3 and 10 reaches
    # 1.2 or more on most pairs; at 96 px the balance holds and the ends sit clearly apart from it.
    assert 0.4 <= balanced <= 1.3, f"strength 5 is not balanced: {balanced:.2f}"
    assert faint <= 0.4 and faint <= 0.5 * balanced, f"strength 1 changed the photo too much: {faint:.2f}"
    assert strong >= 1.2 * balanced, f"strength 10 is hardly more painted than 5: {strong:.2f}"


# The CPU default request's strip exactly (128 px tiles calibrated for a 512 px result, 60 steps); the result
# itself gets one step, the tiles are what is looked at.
STRIP_PLAN = RequestPlan(size=512, strip_size=128, steps=1, strip_steps=60)
STRIP = (1, 3, 5, 7, 9)


# Two held-out pairs whose strips reach 1.2 by strength 9 (1.44 and 1.55 in benchmarks/results/
# strength_strip_128.json); the coffee and Turner strips top out near 1.0 there, a known miss (docs/benchmarks.md).
@pytest.mark.parametrize(("content_name", "style_name"), [("chelsea.jpg", "gauguin_tahiti_1896.jpg"),
                                                         ("rocket.jpg", "vangogh_wheat_field_with_cypresses.jpg")])
def test_the_strip_shows_the_trade_off_from_the_photo_to_the_painting(stand_in_vgg, sample_images, content_name,
                                                                       style_name):
    content, style = open_pair(sample_images, content_name, style_name)
    painted = paint_request(content, style, net=stand_in_vgg, plan=STRIP_PLAN, strength=5, strengths=STRIP,
                            options=StylizeOptions(seed=0, device="cpu"))
    tiles = [painted.tiles[s] for s in STRIP]
    errors = relative_content_errors(stand_in_vgg, resize_longest(content, STRIP_PLAN.strip_size), tiles)
    print(f"{content_name} + {style_name}: strip errors {[round(e, 2) for e in errors]}")
    assert errors == sorted(errors), f"the strip is out of order: {errors}"
    assert errors[0] <= 0.5, f"the first tile is not clearly the photo: {errors}"
    assert errors[-1] >= 1.2, f"the last tile is not mostly the painting: {errors}"
    # Each tile is two strengths from the next: Less/More land on a weight the strip already painted.
    ratios = [b / a for a, b in zip(painted.strip_weights, painted.strip_weights[1:], strict=False)]
    assert ratios == pytest.approx([4.0] * 4)
    assert step_strength(5, -strip_spacing(len(STRIP))) == 3 and step_strength(5, strip_spacing(len(STRIP))) == 7


def test_a_night_photo_keeps_its_subject_at_the_low_strengths(stand_in_vgg, sample_images):
    # The rocket at night: its relu4_2 features are faint, and with the balance alone every strength painted
    # it over (strength 1's tile 0.61 at 128 px on rocket + Matisse). The probe shifts its strengths down.
    content, style = open_pair(sample_images, "rocket.jpg", "gauguin_tahiti_1896.jpg")
    options = StylizeOptions(seed=0, device="cpu")
    shift = probe_shift(content, style, net=stand_in_vgg, plan=STRIP_PLAN, options=options)
    painted = paint_request(content, style, net=stand_in_vgg, plan=STRIP_PLAN, strength=1, strengths=(1, 9),
                            options=options)
    unshifted = paint_request(content, style, net=stand_in_vgg, plan=STRIP_PLAN, strength=1, strengths=(1,),
                              options=dataclasses.replace(options, style_weight=painted.strip_weights[0] * 2 ** shift))
    photo = resize_longest(content, STRIP_PLAN.strip_size)
    faint, strong = relative_content_errors(stand_in_vgg, photo, [painted.tiles[1], painted.tiles[9]])
    [without] = relative_content_errors(stand_in_vgg, photo, [unshifted.tiles[1]])
    print(f"rocket + gauguin: shift {shift:.2f}, strength 1 {faint:.2f} (without the shift {without:.2f}), "
          f"strength 9 {strong:.2f}")
    assert shift > 0.5
    assert faint <= 0.3 and without >= 1.5 * faint, "strength 1 paints the night photo over"
    assert strong >= 2 * faint


def scaled_copy(net: torch.nn.Sequential, factor: float) -> torch.nn.Sequential:
    """The same network with every activation multiplied by ``factor`` (ReLU and max-pooling commute with it)."""
    scaled = copy.deepcopy(net)
    convolutions = [layer for layer in scaled if isinstance(layer, torch.nn.Conv2d)]
    with torch.no_grad():
        convolutions[0].weight.mul_(factor)
        for layer in convolutions:
            layer.bias.mul_(factor)
    return scaled


def test_a_strength_paints_the_same_picture_whatever_the_networks_scale(stand_in_vgg, sample_images):
    # Random or differently normalised weights differ from torchvision's by orders of magnitude in feature
    # size; a strength must not care (a raw style weight does).
    content, style = open_pair(sample_images, *PAIRS[0])
    # Adam's steps do not depend on the objective's scale (torch's first L-BFGS step does, below an L1 norm of
    # 1), so what is left to differ is the weight.
    options = StylizeOptions(steps=8, variants=1, seed=0, device="cpu", precision="fp32", optimizer="adam")
    plain = stylize(content, style, net=stand_in_vgg, size=48, strength=5, options=options)
    scaled = stylize(content, style, net=scaled_copy(stand_in_vgg, 1000.0), size=48, strength=5,
                     options=options)
    assert scaled.style_weights[0] == pytest.approx(plain.style_weights[0] / 1000.0**2, rel=1e-3)
    difference = np.abs(np.asarray(plain.images[0], np.int16) - np.asarray(scaled.images[0], np.int16))
    assert difference.mean() < 0.5


def test_the_hybrid_optimiser_paints_strengths_in_order_where_lbfgs_alone_stalled(stand_in_vgg, sample_images):
    # At 128 px projected L-BFGS left rocket + Gauguin barely painted at every strength (relative content
    # errors 0.71 / 0.81 / 0.64 for 1 / 5 / 10, docs/benchmarks.md); Adam's first steps move it off the photo.
    content, style = open_pair(sample_images, "rocket.jpg", "gauguin_tahiti_1896.jpg")
    common = {"steps": STEPS, "strengths": [1, 5, 10], "seed": 0, "device": "cpu", "schedule": ((1.0, 1.0),)}
    hybrid = stylize(content, style, net=stand_in_vgg, size=SIZE, strength=5,
                     options=StylizeOptions(optimizer="hybrid", **common))
    adam = stylize(content, style, net=stand_in_vgg, size=SIZE, strength=5,
                   options=StylizeOptions(optimizer="adam", **common))
    faint, balanced, strong = relative_content_errors(stand_in_vgg, resize_longest(content, SIZE), hybrid.images)
    assert faint < 0.5 * balanced and balanced < strong, f"out of order: {faint:.2f} / {balanced:.2f} / {strong:.2f}"
    for ours, adams in zip(hybrid.losses, adam.losses, strict=True):
        assert ours["total"] <= adams["total"]
