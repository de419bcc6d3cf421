"""Neural style transfer (Gatys et al.) in PyTorch and Pillow.

The re-exports are resolved on first use, so importing a torch-free submodule (stylizer.images,
stylizer.executor.base) from the bot does not load torch into the bot process.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from stylizer.defaults import RequestDefaults, defaults_for
    from stylizer.images import ImageLimits, InvalidImage, load_image
    from stylizer.options import StylizeOptions, variant_factors_for
    from stylizer.pipeline import RequestPlan, RequestResult, paint_request
    from stylizer.presets import Preset, UnknownPreset, all_presets, get_preset, search_presets
    from stylizer.progress import Cancelled, Progress
    from stylizer.strip import encode_within, make_strip
    from stylizer.timelapse import FrameRecorder, encode_timelapse
    from stylizer.transfer import StylizeResult, stylize
    from stylizer.weights import (
        CONTENT_LAYERS,
        STYLE_LAYERS,
        VGG19_HASH_PREFIX,
        VGG19_URL,
        WeightsUnavailable,
        load_vgg19,
        prefetch,
    )

_MODULE_OF = {
    "ImageLimits": "stylizer.images",
    "InvalidImage": "stylizer.images",
    "load_image": "stylizer.images",
    "Preset": "stylizer.presets",
    "UnknownPreset": "stylizer.presets",
    "get_preset": "stylizer.presets",
    "all_presets": "stylizer.presets",
    "search_presets": "stylizer.presets",
    "FrameRecorder": "stylizer.timelapse",
    "encode_timelapse": "stylizer.timelapse",
    "encode_within": "stylizer.strip",
    "make_strip": "stylizer.strip",
    "Cancelled": "stylizer.progress",
    "Progress": "stylizer.progress",
    "StylizeOptions": "stylizer.options",
    "RequestDefaults": "stylizer.defaults",
    "defaults_for": "stylizer.defaults",
    "RequestPlan": "stylizer.pipeline",
    "RequestResult": "stylizer.pipeline",
    "paint_request": "stylizer.pipeline",
    "StylizeResult": "stylizer.transfer",
    "stylize": "stylizer.transfer",
    "variant_factors_for": "stylizer.options",
    "CONTENT_LAYERS": "stylizer.weights",
    "STYLE_LAYERS": "stylizer.weights",
    "VGG19_HASH_PREFIX": "stylizer.weights",
    "VGG19_URL": "stylizer.weights",
    "WeightsUnavailable": "stylizer.weights",
    "load_vgg19": "stylizer.weights",
    "prefetch": "stylizer.weights",
}

__all__ = [
    "all_presets",
    "CONTENT_LAYERS",
    "STYLE_LAYERS",
    "VGG19_HASH_PREFIX",
    "VGG19_URL",
    "Cancelled",
    "FrameRecorder",
    "ImageLimits",
    "InvalidImage",
    "Preset",
    "Progress",
    "RequestDefaults",
    "RequestPlan",
    "RequestResult",
    "StylizeOptions",
    "StylizeResult",
    "UnknownPreset",
    "WeightsUnavailable",
    "encode_timelapse",
    "encode_within",
    "get_preset",
    "load_image",
    "load_vgg19",
    "defaults_for",
    "make_strip",
    "paint_request",
    "prefetch",
    "search_presets",
    "stylize",
    "variant_factors_for",
]


def __getattr__(name: str) -> Any:
    module = _MODULE_OF.get(name)
    if module is None:
        raise AttributeError(f"module 'stylizer' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later look-ups skip __getattr__
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
