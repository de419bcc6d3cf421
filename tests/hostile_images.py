"""Uploads a Discord user might send, from ordinary to malicious, each with what the user should experience.

Shared by the image loader's tests and the bot's fuzz test, which sends the same files through Discord. Everything
is generated here, small and deterministic, so that no binary test data is checked in.
"""

from __future__ import annotations

import io
import random
import struct
import zlib
from typing import NamedTuple

from PIL import Image

# Colours of the four quadrants of the reference picture; orientation mistakes move them around.
TOP_LEFT, TOP_RIGHT, BOTTOM_LEFT, BOTTOM_RIGHT = (220, 30, 30), (30, 200, 30), (30, 30, 220), (240, 220, 40)
FIRST_FRAME, SECOND_FRAME = (200, 0, 0), (0, 0, 200)


class HostileSample(NamedTuple):
    data: bytes
    filename: str
    accepted: bool  # True: load_image returns an RGB picture; False: it raises InvalidImage
    # accepted: the (width, height) load_image returns with default limits; rejected: None
    size: tuple[int, int] | None
    # rejected: a word the one-sentence message shown to the user must contain; accepted: ""
    hint: str


def quadrants(width: int = 64, height: int = 48, mode: str = "RGB") -> Image.Image:
    image = Image.new("RGB", (width, height), TOP_LEFT)
    image.paste(TOP_RIGHT, (width // 2, 0, width, height // 2))
    image.paste(BOTTOM_LEFT, (0, height // 2, width // 2, height))
    image.paste(BOTTOM_RIGHT, (width // 2, height // 2, width, height))
    return image if mode == "RGB" else image.convert(mode)


def encode(image: Image.Image, format: str, **params) -> bytes:
    out = io.BytesIO()
    image.save(out, format, **params)
    return out.getvalue()


def noise(width: int, height: int, seed: int = 0) -> Image.Image:
    return Image.frombytes("RGB", (width, height), random.Random(seed).randbytes(width * height * 3))


def png_header_only(width: int, height: int) -> bytes:
    """A PNG that claims ``width``×``height`` but carries almost no data: the shape of a decompression bomb."""
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\x00" * 1024))
            + chunk(b"IEND", b""))


def _rgba() -> Image.Image:
    image = quadrants(mode="RGBA")
    alpha = Image.new("L", image.size, 0)
    alpha.paste(255, (0, 0, 32, 48))  # left half opaque, right half fully transparent
    image.putalpha(alpha)
    return image


def _palette_with_transparency() -> bytes:
    image = quadrants().quantize(colors=4)
    transparent_index = image.getpixel((63, 0))  # the top-right quadrant's palette entry
    return encode(image, "PNG", transparency=transparent_index)


def _animation(format: str, **params) -> bytes:
    frames = [Image.new("RGB", (48, 48), FIRST_FRAME), Image.new("RGB", (48, 48), SECOND_FRAME)]
    return encode(frames[0], format, save_all=True, append_images=frames[1:], duration=100, loop=0, **params)


def _exif_rotated() -> bytes:
    """Stored 64×32 (landscape) with orientation 6: viewers, and load_image, show it 32×64 (portrait)."""
    exif = Image.Exif()
    exif[0x0112] = 6
    return encode(quadrants(64, 32), "JPEG", quality=95, exif=exif.tobytes())


def _grey16() -> bytes:
    ramp = Image.new("I;16", (64, 32))
    ramp.putdata([x * 1024 for _ in range(32) for x in range(64)])  # 0 … 64512: far beyond 8 bits
    return encode(ramp, "PNG")


def _cmyk() -> bytes:
    return encode(Image.new("CMYK", (48, 48), (255, 0, 0, 0)), "JPEG", quality=95)  # pure cyan ink


def hostile_corpus() -> dict[str, HostileSample]:
    def ok(data: bytes, filename: str, size: tuple[int, int]) -> HostileSample:
        return HostileSample(data, filename, True, size, "")

    def bad(data: bytes, filename: str, hint: str) -> HostileSample:
        return HostileSample(data, filename, False, None, hint)

    jpeg = encode(noise(256, 256), "JPEG", quality=90)
    png = encode(noise(128, 128, seed=1), "PNG")
    return {
        "rgb_png": ok(encode(quadrants(), "PNG"), "photo.png", (64, 48)),
        "rgb_jpeg": ok(encode(quadrants(), "JPEG", quality=95), "photo.jpg", (64, 48)),
        "webp": ok(encode(quadrants(), "WEBP", quality=95), "photo.webp", (64, 48)),
        "png_named_jpg": ok(encode(quadrants(), "PNG"), "really_a_png.jpg", (64, 48)),
        "bmp": ok(encode(quadrants(), "BMP"), "photo.bmp", (64, 48)),
        "tiff": ok(encode(quadrants(), "TIFF"), "scan.tiff", (64, 48)),
        "grey_jpeg": ok(encode(quadrants(mode="L"), "JPEG"), "grey.jpg", (64, 48)),
        "bilevel_png": ok(encode(quadrants(mode="1"), "PNG"), "fax.png", (64, 48)),
        "rgba_png": ok(encode(_rgba(), "PNG"), "cutout.png", (64, 48)),
        "la_png": ok(encode(_rgba().convert("LA"), "PNG"), "grey_cutout.png", (64, 48)),
        "palette_transparent_png": ok(_palette_with_transparency(), "sticker.png", (64, 48)),
        "cmyk_jpeg": ok(_cmyk(), "print.jpg", (48, 48)),
        "grey16_png": ok(_grey16(), "scan16.png", (64, 32)),
        "animated_gif": ok(_animation("GIF"), "party.gif", (48, 48)),
        "animated_png": ok(_animation("PNG"), "party.png", (48, 48)),
        "animated_webp": ok(_animation("WEBP", lossless=True), "party.webp", (48, 48)),
        "exif_rotated_jpeg": ok(_exif_rotated(), "phone.jpg", (32, 64)),
        "long_thin_png": ok(encode(noise(800, 16), "PNG"), "banner.png", (800, 16)),
        "empty": bad(b"", "empty.png", "empty"),
        "random_bytes": bad(random.Random(2).randbytes(4096), "noise.png", "not an image"),
        "text_named_png": bad(b"Coffee: 2 shots, oat milk.\n" * 20, "coffee.png", "not an image"),
        "html_named_jpg": bad(b"<!doctype html><html><body><img src=x></body></html>", "cat.jpg", "not an image"),
        "svg": bad(b'<svg xmlns="http://www.w3.org/2000/svg" width="64" height="64"><rect width="64" '
                   b'height="64"/></svg>', "drawing.svg", "not an image"),
        "truncated_jpeg": bad(jpeg[: len(jpeg) // 2], "cut.jpg", "damaged"),
        "truncated_png": bad(png[: len(png) // 2], "cut.png", "damaged"),
        "bomb_png": bad(png_header_only(20_000, 20_000), "bomb.png", "pixels"),
        "huge_png": bad(png_header_only(8_000, 8_000), "huge.png", "megapixels"),
        "extreme_aspect_png": bad(encode(noise(10_000, 10), "PNG"), "ribbon.png", "narrow"),
        "tiny_png": bad(encode(quadrants(8, 8), "PNG"), "icon.png", "too small"),
        "float_tiff": bad(encode(Image.new("F", (32, 32), 0.5), "TIFF"), "depth.tiff", "pixel format"),
    }
