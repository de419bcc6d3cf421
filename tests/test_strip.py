from __future__ import annotations

import io
import itertools

import numpy as np
import pytest
from PIL import Image

from stylizer.strip import encode_within, make_strip, variant_label
from tests.hostile_images import noise

BACKGROUND = (255, 255, 255)
COLOURS = [(200, 30, 30), (30, 160, 30), (30, 30, 200), (200, 160, 0), (120, 0, 160), (0, 150, 150),
           (90, 60, 20), (250, 120, 180)]


def solid(colour, size=(40, 30)) -> Image.Image:
    return Image.new("RGB", size, colour)


def box_of(sheet: Image.Image, colour) -> tuple[int, int, int, int] | None:
    """Bounding box (left, top, right, bottom) of the pixels of exactly ``colour``."""
    mask = np.all(np.asarray(sheet) == colour, axis=-1)
    if not mask.any():
        return None
    rows, cols = np.nonzero(mask)
    return int(cols.min()), int(rows.min()), int(cols.max()) + 1, int(rows.max()) + 1


def ink(region: Image.Image) -> np.ndarray:
    """Mask of dark pixels: text, not background or anti-aliasing haze."""
    return np.asarray(region.convert("L")) < 160


def ink_box(region: Image.Image) -> tuple[int, int, int, int] | None:
    mask = ink(region)
    if not mask.any():
        return None
    rows, cols = np.nonzero(mask)
    return int(cols.min()), int(rows.min()), int(cols.max()) + 1, int(rows.max()) + 1


def test_up_to_five_variants_sit_in_one_row_in_order():
    sizes = [make_strip([solid(c) for c in COLOURS[:n]], ["x"] * n).size for n in range(1, 6)]
    assert len({height for _, height in sizes}) == 1
    steps = {b[0] - a[0] for a, b in itertools.pairwise(sizes)}
    assert len(steps) == 1 and steps.pop() >= 40
    sheet = make_strip([solid(c) for c in COLOURS[:5]], ["a", "b", "c", "d", "e"])
    boxes = [box_of(sheet, c) for c in COLOURS[:5]]
    assert all(box is not None and (box[2] - box[0], box[3] - box[1]) == (40, 30) for box in boxes)
    assert [box[0] for box in boxes] == sorted(box[0] for box in boxes)
    assert len({box[1] for box in boxes}) == 1


def test_more_than_five_wrap_into_a_grid():
    one_row = make_strip([solid(c) for c in COLOURS[:4]], ["x"] * 4)
    sheet = make_strip([solid(c) for c in COLOURS[:7]], ["x"] * 7)
    boxes = [box_of(sheet, c) for c in COLOURS[:7]]
    tops = sorted({box[1] for box in boxes})
    assert len(tops) == 2  # 4 on the first row, 3 on the second
    assert [box[1] for box in boxes].count(tops[0]) == 4
    assert sheet.width == one_row.width
    assert sheet.height > 1.8 * one_row.height


def test_columns_force_the_grid_shape():
    two_wide = make_strip([solid(c) for c in COLOURS[:2]], ["x"] * 2)
    sheet = make_strip([solid(c) for c in COLOURS[:4]], ["x"] * 4, columns=2)
    assert sheet.width == two_wide.width
    boxes = [box_of(sheet, c) for c in COLOURS[:4]]
    assert boxes[0][1] == boxes[1][1] < boxes[2][1] == boxes[3][1]
    assert boxes[0][0] == boxes[2][0]


def test_each_label_is_drawn_under_its_own_picture():
    sheet = make_strip([solid(c) for c in COLOURS[:3]], ["style ×0.25", "", "style ×4 · 4e8"])
    for colour, labelled in zip(COLOURS[:3], [True, False, True], strict=True):
        left, _, right, bottom = box_of(sheet, colour)
        band = sheet.crop((left, bottom, right, sheet.height))
        assert (ink_box(band) is not None) == labelled


def test_different_labels_look_different():
    bands = []
    for label in ["style ×0.25 · 2.5e7", "style ×4 · 4.0e8", "style ×4 · 4.0e8"]:
        sheet = make_strip([solid(COLOURS[0], (200, 150))], [label])
        bands.append(sheet.crop((0, box_of(sheet, COLOURS[0])[3], sheet.width, sheet.height)).tobytes())
    assert bands[0] != bands[1]
    assert bands[1] == bands[2]


def label_ink_height(tile_size: tuple[int, int]) -> int:
    sheet = make_strip([solid(COLOURS[0], tile_size)], ["HH"])
    band = sheet.crop((0, box_of(sheet, COLOURS[0])[3], sheet.width, sheet.height))
    _, top, _, bottom = ink_box(band)
    return bottom - top


def test_labels_stay_readable_on_small_tiles_and_grow_with_large_ones():
    small, large = label_ink_height((48, 48)), label_ink_height((512, 384))
    assert small >= 11  # capital height of 16 px text
    assert large >= 1.8 * small


def test_a_long_label_widens_its_cell_instead_of_being_cut():
    label = "style ×0.25 · 2.5e7"
    sheet = make_strip([solid(COLOURS[0], (32, 32)), solid(COLOURS[1], (32, 32))], [label, label])
    first, second = box_of(sheet, COLOURS[0]), box_of(sheet, COLOURS[1])
    middle = (first[2] + second[0]) // 2
    band_top = first[3]
    left_label = ink_box(sheet.crop((0, band_top, middle, sheet.height)))
    right_label = ink_box(sheet.crop((middle, band_top, sheet.width, sheet.height)))
    assert left_label[0] > 0 and left_label[2] < middle  # whole label inside the left half, not touching
    assert right_label[0] > 0 and middle + right_label[2] < sheet.width
    assert left_label[2] - left_label[0] > 32


def test_content_and_style_thumbnails_come_first_and_are_labelled():
    content, style = solid(COLOURS[5], (80, 60)), solid(COLOURS[6], (30, 90))
    variants = [solid(c, (80, 60)) for c in COLOURS[:2]]
    sheet = make_strip(variants, ["a", "b"], content=content, style=style)
    without = make_strip(variants, ["a", "b"])
    content_box, style_box = box_of(sheet, COLOURS[5]), box_of(sheet, COLOURS[6])
    variant_boxes = [box_of(sheet, c) for c in COLOURS[:2]]
    assert content_box[0] < style_box[0] < variant_boxes[0][0] < variant_boxes[1][0]
    assert (content_box[2] - content_box[0], content_box[3] - content_box[1]) == (80, 60)
    # The tall style picture is fitted inside the 80×60 tile without distortion.
    assert (style_box[2] - style_box[0], style_box[3] - style_box[1]) == (20, 60)
    assert sheet.width > without.width
    for box in (content_box, style_box):
        band = sheet.crop((box[0] - 10, box[3], box[2] + 10, sheet.height))
        assert ink_box(band) is not None
    # Inputs are labelled more quietly than results: their darkest ink is grey, not black.
    content_band = np.asarray(sheet.crop((content_box[0], content_box[3], content_box[2], sheet.height)).convert("L"))
    variant_band = np.asarray(sheet.crop((variant_boxes[0][0], variant_boxes[0][3], variant_boxes[0][2],
                                          sheet.height)).convert("L"))
    assert content_band.min() > variant_band.min()


def test_a_title_goes_on_top():
    plain = make_strip([solid(COLOURS[0])], ["a"])
    titled = make_strip([solid(COLOURS[0])], ["a"], title="chelsea.jpg × Van Gogh")
    assert titled.height > plain.height
    assert ink_box(titled.crop((0, 0, titled.width, box_of(titled, COLOURS[0])[1]))) is not None
    assert ink_box(plain.crop((0, 0, plain.width, box_of(plain, COLOURS[0])[1]))) is None


def test_a_variant_label_gives_the_weight_relative_to_the_chosen_one_then_absolute():
    assert [variant_label(weight, 1e6) for weight in (2.5e5, 1e6, 4e6)] == [
        "×0.25 (2.5e+05)", "×1 (1e+06)", "×4 (4e+06)"]


def test_mixed_sizes_are_fitted_into_equal_tiles():
    sheet = make_strip([solid(COLOURS[0], (100, 50)), solid(COLOURS[1], (50, 50))], ["a", "b"])
    assert box_of(sheet, COLOURS[0])[2] - box_of(sheet, COLOURS[0])[0] == 100
    assert box_of(sheet, COLOURS[1])[3] - box_of(sheet, COLOURS[1])[1] == 50
    assert sheet.mode == "RGB"


@pytest.mark.parametrize(
    ("images", "labels", "columns", "message"),
    [([], [], None, "at least one"), ([solid(COLOURS[0])], ["a", "b"], None, "labels"),
     ([solid(COLOURS[0])], ["a"], 0, "columns")],
)
def test_bad_arguments(images, labels, columns, message):
    with pytest.raises(ValueError, match=message):
        make_strip(images, labels, columns=columns)


def decode(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    image.load()
    return image


def test_png_when_it_fits_and_it_is_lossless():
    image = make_strip([solid(c, (120, 90)) for c in COLOURS[:3]], ["a", "b", "c"])
    data, ext = encode_within(image, 1_000_000)
    assert ext == "png"
    decoded = decode(data)
    assert decoded.format == "PNG" and decoded.tobytes() == image.tobytes()


def test_noisy_image_meets_a_small_budget_as_jpeg():
    image = noise(1024, 768)
    data, ext = encode_within(image, 200_000)
    assert ext == "jpg" and len(data) <= 200_000
    decoded = decode(data)
    assert decoded.format == "JPEG"
    assert decoded.width <= 1024 and abs(decoded.width / decoded.height - 4 / 3) < 0.01


def test_a_photo_that_fits_as_jpeg_keeps_its_full_size(sample_images):
    photo = Image.open(sample_images / "style" / "turner_shipwreck.jpg").convert("RGB")
    budget = len(encode_within(photo, 10**9)[0]) // 2  # half of its PNG: JPEG fits, PNG does not
    data, ext = encode_within(photo, budget)
    assert ext == "jpg" and len(data) <= budget
    assert decode(data).size == photo.size


@pytest.mark.parametrize("budget", [5_000, 30_000, 120_000])
def test_the_budget_is_never_exceeded(budget):
    data, _ = encode_within(noise(300, 200, seed=4), budget)
    assert len(data) <= budget
    decode(data)


def test_an_impossible_budget_is_an_error():
    with pytest.raises(ValueError, match="within 100 bytes"):
        encode_within(noise(200, 200), 100)


def test_non_rgb_input_is_encoded_as_rgb():
    data, ext = encode_within(solid(COLOURS[0]).convert("RGBA"), 100_000)
    assert ext == "png" and decode(data).mode == "RGB"


def test_the_bots_strip_of_five_with_both_inputs_leaves_no_empty_slot():
    content, style = solid(COLOURS[5], (80, 60)), solid(COLOURS[6], (60, 80))
    variants = [solid(c, (80, 60)) for c in COLOURS[:5]]
    sheet = make_strip(variants, [f"Strength {s}" for s in range(3, 8)], content=content, style=style)
    boxes = [box_of(sheet, c) for c in COLOURS[:5]]
    content_box, style_box = box_of(sheet, COLOURS[5]), box_of(sheet, COLOURS[6])
    # Both inputs share the first cell, one above the other; then 2 + 3 variants: two full rows of three.
    assert content_box[0] < boxes[0][0] and content_box[3] <= style_box[1]
    tops = sorted({box[1] for box in boxes})
    assert len(tops) == 2 and [box[1] for box in boxes].count(tops[1]) == 3
    lefts = sorted({box[0] for box in boxes})
    assert len(lefts) == 3 and boxes[2][0] < boxes[0][0]  # the second row starts in the first column
