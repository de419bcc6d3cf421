"""Which normalisation of the style weight removes most of the pair-to-pair spread of the balance?

For every shared pair at 128 px: E = mean square of the photo's relu4_2 features, S0 = the style loss of the
unpainted photo, G = mean square of the painting's Gram matrices. For the four pairs whose balanced raw style
weight issue 11 measured (relative content error about 0.9 after 100 Adam steps at 128 px), it prints that
weight divided by E / S0 and by E / G: the smaller the spread of those ratios, the better the normalisation.
Forward passes only (a few seconds).

    .venv/bin/python benchmarks/balance_probe.py
"""

from __future__ import annotations

import itertools
import sys
from pathlib import Path

import torch
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))
import outside  # noqa: E402

SHARED = outside.shared()
sys.path.insert(0, str(REPO))

from stylizer.images import resize_longest  # noqa: E402
from stylizer.objective import Objective, Precision, gram, pil_to_tensor  # noqa: E402
from stylizer.weights import CONTENT_LAYERS, STYLE_LAYERS, load_vgg19  # noqa: E402

# Balanced raw style weights measured in issue 11 (content 1).
KNOWN = {("rocket.jpg", "turner_shipwreck.jpg"): 5e4, ("chelsea.jpg", "vangogh_wheat_field_with_cypresses.jpg"): 7e4,
         ("coffee.jpg", "matisse_woman_with_a_hat.jpg"): 6e5, ("camera.png", "gauguin_tahiti_1896.jpg"): 1.4e4}
CONTENTS = ("rocket.jpg", "chelsea.jpg", "coffee.jpg", "camera.png")
STYLES = ("turner_shipwreck.jpg", "vangogh_wheat_field_with_cypresses.jpg", "matisse_woman_with_a_hat.jpg",
          "gauguin_tahiti_1896.jpg")


def main() -> None:
    net = load_vgg19(SHARED / "weights" / "vgg16_imagenet_as_vgg19.pth")
    ratios = {"E/S0": [], "E/G": [], "raw": []}
    for content_name, style_name in itertools.product(CONTENTS, STYLES):
        photo = pil_to_tensor(resize_longest(Image.open(SHARED / "images" / "content" / content_name).convert("RGB"),
                                             128), "cpu")
        painting = pil_to_tensor(resize_longest(Image.open(SHARED / "images" / "style" / style_name).convert("RGB"),
                                                128), "cpu")
        objective = Objective(net, photo, [painting], [1.0], content_layers=tuple(CONTENT_LAYERS),
                               style_layers=tuple(STYLE_LAYERS), content_weight=1.0, style_weights=torch.ones(1),
                               tv_weight=0.0, precision=Precision(torch.device("cpu"), "fp32"))
        with torch.no_grad():
            features = objective.features(photo)
            energy = sum(float(t.square().mean()) for t in objective.content_targets)
            gram_energy = sum(float(t.square().mean()) for t in objective.style_targets)
            start = sum(float((gram(features[i]) - t).square().mean())
                        for i, t in zip(objective.style_indices, objective.style_targets, strict=True))
        known = KNOWN.get((content_name, style_name))
        line = f"{content_name:12} {style_name[:14]:14} E {energy:.3g}  S0 {start:.3g}  G {gram_energy:.3g}"
        if known:
            ratios["E/S0"].append(known / (energy / start))
            ratios["E/G"].append(known / (energy / gram_energy))
            ratios["raw"].append(known)
            line += f"  known {known:.3g}: / (E/S0) = {ratios['E/S0'][-1]:.3g}, / (E/G) = {ratios['E/G'][-1]:.3g}"
        print(line)
    for name, values in ratios.items():
        print(f"spread of {name}: {max(values) / min(values):.1f}x")


if __name__ == "__main__":
    main()
