"""Projected L-BFGS on real ImageNet features (the shared stand-in) can diverge to noise; the StepGuard stops it.

The case: the raw objective (content 1, style 1e4), chelsea + Van Gogh, 192 px, 100 steps (measured with
benchmarks/optimisers.py divergence, benchmarks/results/divergence.json: 310 -> 17 975 unguarded, -> 9.3
guarded). At 96 and 64 px the unguarded optimiser does not diverge, so the test paints the case itself
(about a minute on 2 cores for both runs).
"""

from __future__ import annotations

import sys
from dataclasses import replace
from pathlib import Path

import pytest
from PIL import Image

from stylizer.images import resize_longest
from stylizer.objective import pil_to_tensor
from stylizer.options import StylizeOptions
from stylizer.transfer import stylize

SHARED = Path(__file__).resolve().parents[1] / ".." / "shared"
sys.path.insert(0, str(SHARED / "bench"))
import gatys_reference  # noqa: E402

SIZE = 192
STEPS = 100


def test_projected_lbfgs_ends_below_its_start_where_it_used_to_diverge(stand_in_vgg, shared_images):
    content = Image.open(shared_images / "content" / "chelsea.jpg").convert("RGB")
    style = Image.open(shared_images / "style" / "vangogh_wheat_field_with_cypresses.jpg").convert("RGB")
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
