"""Projected L-BFGS on real ImageNet features (the shared stand-in) can diverge to noise; the StepGuard stops it.

The case: the raw objective (content 1, style 1e4), chelsea + Van Gogh, 192 px, 100 steps (measured with
benchmarks/optimisers.py divergence, benchmarks/results/divergence.json: 310 -> 17 975 unguarded, -> 9.3
guarded). At 96 and 64 px the unguarded optimiser does not diverge, so the test paints the case itself
(about a minute on 2 cores for both runs).
"""

from __future__ import annotations

from dataclasses import replace

import pytest
from PIL import Image

from stylizer.images import resize_longest
from stylizer.objective import pil_to_tensor
from stylizer.options import StylizeOptions
from stylizer.transfer import stylize
from tests.outside import gatys_reference

SIZE = 192
STEPS = 100


def test_projected_lbfgs_ends_below_its_start_where_it_used_to_diverge(stand_in_vgg, sample_images):
    # The divergence is chaotic: it needs these exact pixels (lossless, already at SIZE; tests/images/SOURCES.md).
    content = Image.open(sample_images / "at_192" / "chelsea.png").convert("RGB")
    style = Image.open(sample_images / "at_192" / "vangogh_wheat_field_with_cypresses.png").convert("RGB")
    photo = pil_to_tensor(resize_longest(content, SIZE), "cpu")
    referee = gatys_reference.Referee(stand_in_vgg, photo, pil_to_tensor(resize_longest(style, SIZE), "cpu"), 1e4)
    start = referee.score(photo)[0]
    options = StylizeOptions(steps=STEPS, style_weight=1e4, content_weight=1.0, variants=1, optimizer="lbfgs",
                             precision="fp32", device="cpu", seed=0)
    unguarded = stylize(content, style, net=stand_in_vgg, size=SIZE, options=replace(options, safeguard=False))
    guarded = stylize(content, style, net=stand_in_vgg, size=SIZE, options=options)
    # The case is real: without the guard the picture ends worse than the photo it started from.
    assert unguarded.losses[0]["total"] > start
    assert guarded.losses[0]["total"] < start
    assert guarded.losses[0]["total"] == pytest.approx(referee.score(pil_to_tensor(guarded.images[0], "cpu"))[0], rel=1e-4)
