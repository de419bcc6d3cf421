"""Fixtures shared by the whole suite; kept small on purpose."""

from __future__ import annotations

from pathlib import Path

import pytest

SHARED = Path(__file__).resolve().parents[1] / ".." / "shared"


@pytest.fixture(scope="session")
def shared_images() -> Path:
    """The read-only photos and paintings in ../shared/images (``content/`` and ``style/``)."""
    path = (SHARED / "images").resolve()
    assert (path / "content").is_dir() and (path / "style").is_dir(), f"shared images missing at {path}"
    return path


@pytest.fixture(scope="session")
def random_vgg():
    """VGG-19 features with seeded random weights, asked for explicitly; frozen, so safe to share."""
    from stylizer.weights import load_vgg19

    return load_vgg19("random")


@pytest.fixture(scope="session")
def imagenet_vgg():
    """Real ImageNet VGG features (../shared/weights): for tests where the loss landscape matters."""
    from stylizer.weights import load_vgg19

    path = (SHARED / "weights" / "vgg16_imagenet_as_vgg19.pth").resolve()
    assert path.is_file(), f"shared weights missing at {path}"
    return load_vgg19(str(path))
