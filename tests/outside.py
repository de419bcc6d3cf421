"""What a few tests need from outside the repository, where they look for it, and what they say when it is not there.

Everything else the suite needs lives in the repository (tests/images/, tests/fakediscord/discord-api-spec/). Two
things cannot: real ImageNet VGG features (80-550 MB) and the referee (../shared/bench/gatys_reference.py, which
is not to be copied). A test that needs one of them skips with one line naming what to set, unless
STYLIZER_REQUIRE_OUTSIDE=1 (.ci/run sets it where ../shared/weights exists): then the skip is a failure, so CI
beside ../shared always runs these tests.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path
from types import ModuleType

import pytest

REPO = Path(__file__).resolve().parents[1]
IMAGES = REPO / "tests" / "images"
# STYLIZER_SHARED: a copy of ../shared elsewhere (benchmarks/gpu_check.sh on a machine without ../shared).
SHARED = Path(os.environ.get("STYLIZER_SHARED") or REPO / ".." / "shared").resolve()
STAND_IN_WEIGHTS = SHARED / "weights" / "vgg16_imagenet_as_vgg19.pth"
REFEREE = SHARED / "bench" / "gatys_reference.py"
REQUIRED = os.environ.get("STYLIZER_REQUIRE_OUTSIDE") == "1"


def missing(what: str) -> None:
    """Skip the running test with one line, or fail it where CI promised that ``what`` is here."""
    if REQUIRED:
        pytest.fail(f"STYLIZER_REQUIRE_OUTSIDE=1 but this test found no {what}", pytrace=False)
    pytest.skip(what)


def real_weights() -> Path:
    """A file of real ImageNet VGG features: STYLIZER_TEST_WEIGHTS, the shared stand-in, or torchvision's VGG-19
    in the torch hub cache, the first that exists."""
    from stylizer.weights import cached_path

    candidates = [Path(os.environ["STYLIZER_TEST_WEIGHTS"])] if os.environ.get("STYLIZER_TEST_WEIGHTS") else []
    candidates += [STAND_IN_WEIGHTS, cached_path()]
    for path in candidates:
        if path.is_file():
            return path
    missing("real ImageNet weights: set STYLIZER_TEST_WEIGHTS=/path/to/vgg19.pth "
            "(or run `python -m stylizer --download-weights`)")
    raise AssertionError("unreachable")


def referee() -> ModuleType:
    """The referee module (``Referee``, ``baseline``, ``gram``), imported once from ../shared/bench."""
    if (module := sys.modules.get("gatys_reference")) is not None:
        return module
    if not REFEREE.is_file():
        missing(f"referee at {REFEREE}: set STYLIZER_SHARED=/path/to/shared (holding bench/gatys_reference.py)")
    spec = importlib.util.spec_from_file_location("gatys_reference", REFEREE)
    module = importlib.util.module_from_spec(spec)
    sys.modules["gatys_reference"] = module
    spec.loader.exec_module(module)
    return module


class _Referee:
    """Stands for the referee module in a test file's namespace; the first attribute read imports it, or skips."""

    def __getattr__(self, name: str):
        # pytest's collection looks at module-level objects (__test__, pytestmark, ...): those must not import.
        if name.startswith(("_", "pytest")):
            raise AttributeError(name)
        return getattr(referee(), name)


gatys_reference = _Referee()


def shared() -> Path:
    """../shared itself, for the test that copies what a GPU machine is carried."""
    if not REFEREE.is_file() or not STAND_IN_WEIGHTS.is_file():
        missing(f"copy of ../shared at {SHARED}: set STYLIZER_SHARED=/path/to/shared")
    return SHARED
