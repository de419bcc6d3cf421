"""The labelled contact sheet of all variants, and encoding any picture within an upload budget.

Discord shows an attachment scaled to roughly 550 px wide in the chat, so labels are sized from the tiles and
never smaller than 16 px, and more than five tiles wrap into a grid rather than one ever-thinner row.
"""

from __future__ import annotations

import functools
import io
import math
from collections.abc import Sequence
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont, ImageOps

BACKGROUND = (255, 255, 255)
LABEL_COLOUR = (20, 20, 20)
INPUT_LABEL_COLOUR = (110, 110, 110)  # the inputs' labels are quieter than the results'
# Bundled rather than Pillow's built-in font, which has no "×" and would draw a box in every label.
FONT_PATH = Path(__file__).resolve().parent / "fonts" / "DejaVuSans.ttf"
MIN_FONT_PX = 16
MAX_TILES_PER_ROW = 5
JPEG_QUALITIES = (95, 90, 85, 75, 60)
SHRINK_STEP = 0.75
MIN_ENCODED_SIDE = 16


@functools.lru_cache(maxsize=16)
def _font(size: int) -> ImageFont.FreeTypeFont:
    return ImageFont.truetype(FONT_PATH, size)


def _grid(count: int, columns: int | None) -> tuple[int, int]:
    """(columns, rows): one row up to five tiles, then the squarest rows of at most five."""
    if columns is not None:
        if columns < 1:
            raise ValueError(f"columns must be at least 1, not {columns}")
        columns = min(columns, count)
    elif count <= MAX_TILES_PER_ROW:
        columns = count
    else:
        columns = math.ceil(count / math.ceil(count / MAX_TILES_PER_ROW))
    return columns, math.ceil(count / columns)


def _leaves_empty_slot(count: int) -> bool:
    columns, rows = _grid(count, None)
    return columns * rows != count


def _stacked(top: Image.Image, bottom: Image.Image, size: tuple[int, int]) -> Image.Image:
    """Two pictures fitted one above the other into one tile of ``size``."""
    width, height = size
    cell = Image.new("RGB", size, BACKGROUND)
    half = (width, (height - 2) // 2)
    for picture, top_edge in ((top, 0), (bottom, height - half[1])):
        fitted = ImageOps.contain(picture.convert("RGB"), half, Image.Resampling.LANCZOS)
        cell.paste(fitted, ((width - fitted.width) // 2, top_edge + (half[1] - fitted.height) // 2))
    return cell


def variant_label(weight: float, chosen_weight: float) -> str:
    """A variant's strip label: its style weight relative to the chosen one, then absolute ("×0.5 (5e+05)")."""
    return f"×{weight / chosen_weight:g} ({weight:.2g})"


def make_strip(images: Sequence[Image.Image], labels: Sequence[str], *, content: Image.Image | None = None,
               style: Image.Image | None = None, columns: int | None = None,
               title: str | None = None) -> Image.Image:
    """One RGB image: ``content`` and ``style`` thumbnails (when given), then every image with its label under it.

    Tiles are as large as the largest image; smaller ones and the thumbnails are fitted inside, centred. A cell is
    widened when its label would not fit under the picture, so small tiles keep readable labels.
    """
    if not images:
        raise ValueError("make_strip needs at least one image")
    if len(labels) != len(images):
        raise ValueError(f"make_strip got {len(images)} images but {len(labels)} labels")
    tiles = [(image, label, LABEL_COLOUR) for image, label in zip(images, labels, strict=True)]
    tile_w = max(image.width for image in images)
    tile_h = max(image.height for image in images)
    inputs = [(image, name, INPUT_LABEL_COLOUR) for image, name in ((content, "content"), (style, "style"))
              if image is not None]
    if len(inputs) == 2 and columns is None and _leaves_empty_slot(len(tiles) + 2) \
            and not _leaves_empty_slot(len(tiles) + 1):
        # The bot's 5 variants plus two inputs would leave a hole at the end of a 4 + 3 grid; the inputs
        # share one cell instead (3 + 3).
        inputs = [(_stacked(content, style, (tile_w, tile_h)), "content, style", INPUT_LABEL_COLOUR)]
    tiles = inputs + tiles
    font_px = max(MIN_FONT_PX, round(max(tile_w, tile_h) / 16))
    font = _font(font_px)
    measure = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    label_boxes = [measure.multiline_textbbox((0, 0), label, font=font) for _, label, _ in tiles]
    gap = max(4, font_px // 3)
    cell_w = max(tile_w, *(box[2] - box[0] + gap for box in label_boxes))
    band_h = max(box[3] - box[1] for box in label_boxes) + 2 * gap
    cols, rows = _grid(len(tiles), columns)
    title_font = _font(round(font_px * 1.25))
    title_h = 0
    if title:
        box = measure.multiline_textbbox((0, 0), title, font=title_font)
        title_h = box[3] - box[1] + 2 * gap
        cell_w = max(cell_w, math.ceil((box[2] - box[0] + 2 * gap) / cols))
    sheet = Image.new("RGB", (cols * cell_w + (cols + 1) * gap, title_h + rows * (tile_h + band_h + gap) + gap),
                      BACKGROUND)
    draw = ImageDraw.Draw(sheet)
    if title:
        draw.multiline_text((sheet.width // 2, gap + title_h // 2), title, font=title_font, fill=LABEL_COLOUR,
                            anchor="mm", align="center")
    for i, (image, label, colour) in enumerate(tiles):
        row, col = divmod(i, cols)
        left = gap + col * (cell_w + gap)
        top = title_h + gap + row * (tile_h + band_h + gap)
        picture = image.convert("RGB")
        if picture.size != (tile_w, tile_h):
            picture = ImageOps.contain(picture, (tile_w, tile_h), Image.Resampling.LANCZOS)
        sheet.paste(picture, (left + (cell_w - picture.width) // 2, top + (tile_h - picture.height) // 2))
        draw.multiline_text((left + cell_w // 2, top + tile_h + band_h // 2), label, font=font, fill=colour,
                            anchor="mm", align="center")
    return sheet


def _encode(image: Image.Image, format: str, **params) -> bytes:
    out = io.BytesIO()
    image.save(out, format, **params)
    return out.getvalue()


def encode_within(image: Image.Image, max_bytes: int) -> tuple[bytes, str]:
    """``(data, "png" | "jpg")`` of at most ``max_bytes``: lossless if it fits, else JPEG, else JPEG smaller.

    Raises ``ValueError`` when not even a tiny JPEG fits. Smaller sizes are tried as JPEG only: a picture that
    does not fit even as a quality-60 JPEG is photographic, and for those JPEG stays far smaller than PNG at
    every size, so re-trying PNG would only cost time.
    """
    rgb = image.convert("RGB") if image.mode != "RGB" else image
    data = _encode(rgb, "PNG", optimize=True)
    if len(data) <= max_bytes:
        return data, "png"
    scaled = rgb
    while True:
        for quality in JPEG_QUALITIES:
            data = _encode(scaled, "JPEG", quality=quality, optimize=True)
            if len(data) <= max_bytes:
                return data, "jpg"
        size = (round(scaled.width * SHRINK_STEP), round(scaled.height * SHRINK_STEP))
        if min(size) < MIN_ENCODED_SIDE:
            raise ValueError(f"a {image.width}×{image.height} image cannot be encoded within {max_bytes} bytes")
        scaled = rgb.resize(size, Image.Resampling.LANCZOS)
