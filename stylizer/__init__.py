"""Neural style transfer (Gatys et al.) in PyTorch and Pillow."""

from stylizer.images import ImageLimits, InvalidImage, load_image
from stylizer.strip import encode_within, make_strip
from stylizer.transfer import Cancelled, Progress, StylizeResult, stylize, variant_factors_for
from stylizer.weights import (
    CONTENT_LAYERS,
    STYLE_LAYERS,
    VGG19_HASH_PREFIX,
    VGG19_URL,
    WeightsUnavailable,
    load_vgg19,
    prefetch,
)

__all__ = [
    "CONTENT_LAYERS",
    "STYLE_LAYERS",
    "VGG19_HASH_PREFIX",
    "VGG19_URL",
    "Cancelled",
    "ImageLimits",
    "InvalidImage",
    "Progress",
    "StylizeResult",
    "WeightsUnavailable",
    "encode_within",
    "load_image",
    "load_vgg19",
    "make_strip",
    "prefetch",
    "stylize",
    "variant_factors_for",
]
