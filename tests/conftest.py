"""Fixtures shared by the whole suite; kept small on purpose."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

# STYLIZER_SHARED: a copy of ../shared elsewhere (benchmarks/gpu_check.sh on a machine without ../shared).
SHARED = Path(os.environ.get("STYLIZER_SHARED", Path(__file__).resolve().parents[1] / ".." / "shared"))


@pytest.fixture(scope="session")
def shared_images() -> Path:
    """The read-only photos and paintings in ../shared/images (``content/`` and ``style/``)."""
    path = (SHARED / "images").resolve()
    assert (path / "content").is_dir() and (path / "style").is_dir(), f"shared images missing at {path}"
    return path


@pytest.fixture(scope="module")
def content(shared_images):
    """The photo most tests paint: Chelsea the cat."""
    from PIL import Image

    return Image.open(shared_images / "content" / "chelsea.jpg").convert("RGB")


@pytest.fixture(scope="module")
def style(shared_images):
    """The painting most tests paint in: Van Gogh's Wheat Field with Cypresses."""
    from PIL import Image

    return Image.open(shared_images / "style" / "vangogh_wheat_field_with_cypresses.jpg").convert("RGB")


@pytest.fixture(scope="session")
def random_vgg():
    """VGG-19 features with seeded random weights, asked for explicitly; frozen, so safe to share."""
    from stylizer.weights import load_vgg19

    return load_vgg19("random")


@pytest.fixture(scope="session")
def stand_in_vgg():
    """Real ImageNet features: VGG-16's convolutions in VGG-19's layout (../shared/weights/README.md)."""
    from stylizer.weights import load_vgg19

    path = (SHARED / "weights" / "vgg16_imagenet_as_vgg19.pth").resolve()
    assert path.is_file(), f"stand-in weights missing at {path}"
    return load_vgg19(path)
