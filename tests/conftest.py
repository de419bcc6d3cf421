"""Fixtures shared by the whole suite; kept small on purpose."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests import outside


@pytest.fixture(scope="session")
def sample_images() -> Path:
    """The photos and paintings in tests/images (``content/`` and ``style/``, 256 px, credited in SOURCES.md)."""
    return outside.IMAGES


@pytest.fixture(scope="module")
def content(sample_images):
    """The photo most tests paint: Chelsea the cat."""
    from PIL import Image

    return Image.open(sample_images / "content" / "chelsea.jpg").convert("RGB")


@pytest.fixture(scope="module")
def style(sample_images):
    """The painting most tests paint in: Van Gogh's Wheat Field with Cypresses."""
    from PIL import Image

    return Image.open(sample_images / "style" / "vangogh_wheat_field_with_cypresses.jpg").convert("RGB")


@pytest.fixture(scope="session")
def random_vgg():
    """VGG-19 features with seeded random weights, asked for explicitly; frozen, so safe to share."""
    from stylizer.weights import load_vgg19

    return load_vgg19("random")


@pytest.fixture(scope="session")
def stand_in_vgg():
    """Real ImageNet features (tests/outside.py says where from; the stand-in's loss balance is in
    ../shared/weights/README.md): skips with one line where there are none."""
    from stylizer.weights import load_vgg19

    return load_vgg19(outside.real_weights())

