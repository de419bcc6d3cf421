"""Turning untrusted uploads into plain RGB images, or into one sentence saying why not.

Nothing about a file is trusted: not its name, not its declared type, not the size its header claims. The pixel
count is checked from the header before anything is decoded, then the whole first frame is decoded so that a
damaged file fails here rather than halfway through a painting.
"""

from __future__ import annotations

import io
import os
import warnings
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageFile, ImageOps, UnidentifiedImageError

MiB = 1024 * 1024
READABLE_FORMATS = "PNG, JPEG, WebP, GIF, BMP, TIFF, …"
EXIF_ORIENTATION_TAG = 0x0112
# Orientations 5-8 are a quarter turn: the displayed width is the stored height.
TRANSPOSED_ORIENTATIONS = {5, 6, 7, 8}
# Pixel formats that convert to RGB without losing what the picture means; anything else (floats, odd
# multi-channel layouts) is refused rather than guessed at.
ALPHA_MODES = {"LA", "La", "PA", "RGBA", "RGBa"}
PLAIN_MODES = {"RGB", "RGBX", "L", "1", "P", "CMYK", "YCbCr", "LAB", "HSV"}
SIXTEEN_BIT_MODES = {"I;16", "I;16L", "I;16B", "I;16N"}
# VGG-19 halves the picture with four 2×2 max-pools before relu5_1: a thinner side pools down to nothing.
MIN_PAINTABLE_SIDE = 16


@dataclass(frozen=True)
class ImageLimits:
    max_pixels: int = 40_000_000  # checked from the header, before decoding
    max_side: int = 4096  # longer images are scaled down to this
    max_bytes: int = 25 * MiB
    min_side: int = MIN_PAINTABLE_SIDE  # after scaling


class InvalidImage(ValueError):
    """An upload that cannot be used; ``str(error)`` is one sentence to show the user."""

    def __init__(self, name: str, message: str):
        super().__init__(message)
        self.name = name


def _display_name(source: bytes | str | os.PathLike, name: str | None) -> str:
    if name:
        return name
    if isinstance(source, str | os.PathLike):
        return Path(source).name
    return "The image"


def _read_bytes(source: bytes | str | os.PathLike, name: str, limits: ImageLimits) -> bytes:
    if isinstance(source, bytes | bytearray | memoryview):
        data = bytes(source)
    else:
        path = Path(source)
        try:
            size = path.stat().st_size
            if size > limits.max_bytes:
                raise InvalidImage(name, _too_many_bytes(name, size, limits))
            data = path.read_bytes()
        except OSError as error:
            raise InvalidImage(name, f"{name} could not be read ({error.strerror or error}).") from error
    if not data:
        raise InvalidImage(name, f"{name} is empty (0 bytes).")
    if len(data) > limits.max_bytes:
        raise InvalidImage(name, _too_many_bytes(name, len(data), limits))
    return data


def _too_many_bytes(name: str, size: int, limits: ImageLimits) -> str:
    return f"{name} is {size / MiB:.1f} MB; files up to {limits.max_bytes / MiB:.0f} MB are accepted."


def _open(data: bytes, name: str) -> Image.Image:
    """Parse only the header. Pillow's bomb warning is silenced: ``_check_pixels`` refuses (or, when the
    configured limit is higher, accepts) such a picture with one sentence of its own."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            return Image.open(io.BytesIO(data))
    except Image.DecompressionBombError as error:
        raise InvalidImage(name, f"{name} declares far too many pixels to be opened safely.") from error
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, EOFError) as error:
        raise InvalidImage(name, f"{name} is not an image Pillow can read ({READABLE_FORMATS}).") from error


def _oriented_size(image: Image.Image) -> tuple[int, int]:
    try:
        orientation = image.getexif().get(EXIF_ORIENTATION_TAG)
    except Exception:  # unreadable EXIF only means the orientation is unknown
        orientation = None
    width, height = image.size
    return (height, width) if orientation in TRANSPOSED_ORIENTATIONS else (width, height)


def _check_pixels(image: Image.Image, name: str, limits: ImageLimits) -> None:
    """Refuse before decoding. Pillow's own bomb guard (a warning above ``Image.MAX_IMAGE_PIXELS``, an error at
    twice that) only matters when ``limits.max_pixels`` is set higher than its threshold; its error is caught."""
    width, height = image.size
    if width < 1 or height < 1:
        raise InvalidImage(name, f"{name} has no pixels ({width}×{height}).")
    if width * height > limits.max_pixels:
        raise InvalidImage(
            name, f"{name} is {width}×{height} pixels ({width * height / 1e6:.0f} megapixels); images up to "
                  f"{limits.max_pixels / 1e6:.0f} megapixels are accepted.")


def _target_size(size: tuple[int, int], name: str, limits: ImageLimits) -> tuple[int, int]:
    """The size after capping the longer side, refusing images too thin or too small to paint."""
    width, height = size
    capped = max(width, height) > limits.max_side
    target = longest_side_size(size, limits.max_side) if capped else size
    if min(target) < limits.min_side:
        if capped:
            raise InvalidImage(
                name, f"{name} is too narrow ({width}×{height}): scaled to at most {limits.max_side} pixels it "
                      f"would be {target[0]}×{target[1]}, under the {limits.min_side}-pixel minimum.")
        raise InvalidImage(
            name, f"{name} is too small ({width}×{height}); both sides must be at least {limits.min_side} pixels.")
    return target


def check_paintable(image: Image.Image, size: int, *, name: str) -> None:
    """Raise ``InvalidImage`` if ``image``, resized so its longest side is ``size`` as stylize() resizes it,
    would have a side under ``MIN_PAINTABLE_SIDE``: VGG cannot look at it, and no retry will change that."""
    short_side = min(longest_side_size(image.size, size))
    if short_side >= MIN_PAINTABLE_SIDE:
        return
    if size < MIN_PAINTABLE_SIDE:
        raise InvalidImage(name, f"{name} cannot be painted at {size} px: at least {MIN_PAINTABLE_SIDE} px needed.")
    raise InvalidImage(
        name, f"{name} is too long and thin to paint at {size} px: its short side would be {short_side} px "
              f"(at least {MIN_PAINTABLE_SIDE} px needed).")


def _sixteen_bit_to_l(image: Image.Image) -> Image.Image:
    """16-bit greyscale to 8-bit by scaling, since Pillow's own conversion clips everything above 255 to white.

    Mode "I" (32-bit) holds 8-bit data as often as 16-bit; it is scaled only when it uses values above 255.
    """
    if image.mode != "I":
        image = image.convert("I")
    elif image.getextrema()[1] <= 255:
        return image.convert("L")
    return image.point(lambda v: v * (1 / 256)).convert("L")


def _to_rgb(image: Image.Image, name: str, background: tuple[int, int, int]) -> Image.Image:
    mode = image.mode
    if mode == "P" and "transparency" in image.info:
        mode = "PA"
    if mode in ALPHA_MODES:
        rgba = image.convert("RGBA")
        flat = Image.new("RGB", rgba.size, background)
        flat.paste(rgba, mask=rgba.getchannel("A"))
        return flat
    if mode in SIXTEEN_BIT_MODES or mode == "I":
        return _sixteen_bit_to_l(image).convert("RGB")
    if mode in PLAIN_MODES:
        return image if mode == "RGB" else image.convert("RGB")
    raise InvalidImage(name, f"{name} uses the pixel format {mode}, which cannot be turned into a colour picture.")


def load_image(source: bytes | str | os.PathLike, *, name: str | None = None, limits: ImageLimits = ImageLimits(),
               background: tuple[int, int, int] = (255, 255, 255)) -> Image.Image:
    """Decode an untrusted upload into an RGB image whose longer side is at most ``limits.max_side``.

    The first frame of an animation is used, EXIF orientation is applied, and transparency is flattened onto
    ``background`` (white unless told otherwise). Raises ``InvalidImage`` with a message for the user.
    """
    name = _display_name(source, name)
    data = _read_bytes(source, name, limits)
    with _open(data, name) as image:
        _check_pixels(image, name, limits)
        target = _target_size(_oriented_size(image), name, limits)
        if image.format == "JPEG" and target != _oriented_size(image):
            # Let libjpeg decode at 1/2, 1/4 or 1/8 scale, never below the target: far less time and memory.
            requested = target if _oriented_size(image) == image.size else target[::-1]
            image.draft(image.mode, requested)
        try:
            if ImageFile.LOAD_TRUNCATED_IMAGES:
                raise RuntimeError("ImageFile.LOAD_TRUNCATED_IMAGES is set: damaged uploads would pass as images")
            image.load()
        except Image.DecompressionBombError as error:
            raise InvalidImage(name, f"{name} declares far too many pixels to be opened safely.") from error
        except (OSError, SyntaxError, ValueError, EOFError, IndexError, TypeError) as error:
            raise InvalidImage(name, f"{name} is damaged or incomplete and cannot be decoded.") from error
        try:
            oriented = ImageOps.exif_transpose(image)
        except Exception:  # a broken EXIF block must not cost the user the picture itself
            oriented = image.copy()  # a copy: ``image`` is closed when the with-block ends
        rgb = _to_rgb(oriented, name, background)
    if rgb.size != target:
        rgb = rgb.resize(target, Image.Resampling.LANCZOS)
    return rgb


def longest_side_size(size: tuple[int, int], side: int) -> tuple[int, int]:
    """(width, height) scaled so the longest side is ``side``, rounded as the referee rounds them."""
    scale = side / max(size)
    return max(1, round(size[0] * scale)), max(1, round(size[1] * scale))


def resize_longest(image: Image.Image, side: int) -> Image.Image:
    """Resize so the longest side is ``side``, rounding like the referee so both see the same pixels."""
    new_size = longest_side_size(image.size, side)
    if new_size == image.size:
        return image
    return image.resize(new_size, Image.Resampling.LANCZOS)


def luminance_only(image: Image.Image) -> Image.Image:
    """The image's luminance as grey RGB: a style's texture without its palette."""
    return image.convert("L").convert("RGB")


def with_chroma_of(image: Image.Image, colour_source: Image.Image) -> Image.Image:
    """``image``'s luminance with ``colour_source``'s chroma (YCbCr)."""
    luma = image.convert("YCbCr").getchannel("Y")
    _, cb, cr = colour_source.resize(image.size, Image.Resampling.LANCZOS).convert("YCbCr").split()
    return Image.merge("YCbCr", (luma, cb, cr)).convert("RGB")
