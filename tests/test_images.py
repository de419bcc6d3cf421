from __future__ import annotations

import pytest
from PIL import Image, ImageFile

from stylizer import images
from stylizer.images import ImageLimits, InvalidImage, check_paintable, load_image
from tests.hostile_images import (
    BOTTOM_LEFT,
    BOTTOM_RIGHT,
    FIRST_FRAME,
    TOP_LEFT,
    TOP_RIGHT,
    encode,
    hostile_corpus,
    noise,
    quadrants,
)

CORPUS = hostile_corpus()


def close(a, b, tolerance=12):
    return all(abs(x - y) <= tolerance for x, y in zip(a, b, strict=True))


@pytest.mark.parametrize("case", [name for name, sample in CORPUS.items() if sample.accepted])
def test_acceptable_uploads_become_rgb_pictures_of_the_displayed_size(case):
    sample = CORPUS[case]
    image = load_image(sample.data, name=sample.filename)
    assert image.mode == "RGB"
    assert image.size == sample.size


@pytest.mark.parametrize("case", [name for name, sample in CORPUS.items() if not sample.accepted])
def test_hostile_uploads_are_refused_with_one_readable_sentence(case):
    sample = CORPUS[case]
    with pytest.raises(InvalidImage) as caught:
        load_image(sample.data, name=sample.filename)
    message = str(caught.value)
    assert caught.value.name == sample.filename
    assert message.startswith(sample.filename)
    assert sample.hint in message
    assert "\n" not in message and message.endswith(".")
    assert isinstance(caught.value, ValueError)


def test_the_file_name_and_extension_are_not_trusted():
    png_named_jpg = load_image(CORPUS["png_named_jpg"].data, name="really_a_png.jpg")
    assert png_named_jpg.getpixel((0, 0)) == TOP_LEFT
    with pytest.raises(InvalidImage, match="not an image"):
        load_image(CORPUS["text_named_png"].data, name="coffee.png")


def test_exif_orientation_turns_the_picture_the_way_phones_show_it():
    image = load_image(CORPUS["exif_rotated_jpeg"].data)
    # Orientation 6 is a clockwise quarter turn: the stored left column becomes the top row.
    assert image.size == (32, 64)
    assert close(image.getpixel((31, 0)), TOP_LEFT)
    assert close(image.getpixel((0, 0)), BOTTOM_LEFT)
    assert close(image.getpixel((31, 63)), TOP_RIGHT)
    assert close(image.getpixel((0, 63)), BOTTOM_RIGHT)


@pytest.mark.parametrize("case", ["animated_gif", "animated_png", "animated_webp"])
def test_animations_give_their_first_frame(case):
    image = load_image(CORPUS[case].data)
    assert close(image.getpixel((24, 24)), FIRST_FRAME, tolerance=4)


def test_transparency_is_flattened_on_white_or_on_the_background_asked_for():
    data = CORPUS["rgba_png"].data  # left half opaque quadrants, right half fully transparent
    on_white = load_image(data)
    assert on_white.getpixel((5, 5)) == TOP_LEFT
    assert on_white.getpixel((60, 5)) == (255, 255, 255)
    on_black = load_image(data, background=(0, 0, 0))
    assert on_black.getpixel((60, 40)) == (0, 0, 0)
    assert on_black.getpixel((5, 40)) == BOTTOM_LEFT


def test_a_transparent_palette_entry_becomes_the_background():
    image = load_image(CORPUS["palette_transparent_png"].data, background=(10, 20, 30))
    assert image.getpixel((60, 5)) == (10, 20, 30)
    assert close(image.getpixel((5, 5)), TOP_LEFT)


def test_cmyk_is_converted_to_the_colour_it_prints_as():
    assert close(load_image(CORPUS["cmyk_jpeg"].data).getpixel((24, 24)), (0, 255, 255))


def test_sixteen_bit_greys_are_scaled_not_clipped_to_white():
    image = load_image(CORPUS["grey16_png"].data)  # a ramp 0 … 64512 over 64 columns
    row = [image.getpixel((x, 10))[0] for x in range(64)]
    assert row[0] == 0 and row[-1] >= 250
    assert abs(row[32] - 128) <= 2
    assert row == sorted(row) and len(set(row)) == 64


def test_long_sides_are_capped_keeping_the_aspect_ratio():
    data = encode(quadrants(400, 200), "PNG")
    image = load_image(data, limits=ImageLimits(max_side=100))
    assert image.size == (100, 50)
    assert close(image.getpixel((10, 10)), TOP_LEFT) and close(image.getpixel((90, 40)), BOTTOM_RIGHT)


def test_large_jpegs_are_capped_too():
    data = encode(quadrants(1600, 1200), "JPEG", quality=90)
    image = load_image(data, limits=ImageLimits(max_side=300))
    assert image.size == (300, 225)
    assert close(image.getpixel((20, 20)), TOP_LEFT) and close(image.getpixel((280, 200)), BOTTOM_RIGHT)


def test_small_images_are_not_enlarged():
    assert load_image(CORPUS["rgb_png"].data, limits=ImageLimits(max_side=4096)).size == (64, 48)


def test_pixel_limit_is_checked_before_decoding():
    data = encode(noise(300, 300), "PNG")
    with pytest.raises(InvalidImage, match="300×300"):
        load_image(data, name="big.png", limits=ImageLimits(max_pixels=50_000))
    assert load_image(data, limits=ImageLimits(max_pixels=90_000)).size == (300, 300)


def test_byte_limit():
    data = encode(noise(100, 100), "PNG")
    with pytest.raises(InvalidImage, match="MB"):
        load_image(data, name="heavy.png", limits=ImageLimits(max_bytes=len(data) - 1))
    assert load_image(data, limits=ImageLimits(max_bytes=len(data))).size == (100, 100)


def test_byte_limit_applies_to_files_before_reading_them(tmp_path):
    path = tmp_path / "heavy.png"
    path.write_bytes(encode(noise(100, 100), "PNG"))
    with pytest.raises(InvalidImage, match="heavy.png is"):
        load_image(path, limits=ImageLimits(max_bytes=1000))


def test_min_side_limit_is_configurable():
    data = encode(noise(40, 20), "PNG")
    with pytest.raises(InvalidImage, match="too small"):
        load_image(data, name="strip.png", limits=ImageLimits(min_side=32))
    assert load_image(data, limits=ImageLimits(min_side=20)).size == (40, 20)


def test_paths_and_strings_load_and_name_themselves(tmp_path, sample_images):
    photo = sample_images / "content" / "chelsea.jpg"
    assert load_image(photo).size == load_image(str(photo)).size == Image.open(photo).size
    bad = tmp_path / "notes.png"
    bad.write_text("not a picture")
    with pytest.raises(InvalidImage, match=r"^notes\.png is not an image"):
        load_image(bad)
    with pytest.raises(InvalidImage, match="could not be read"):
        load_image(tmp_path / "missing.png")


def test_anonymous_bytes_get_a_generic_name():
    with pytest.raises(InvalidImage, match="^The image is empty"):
        load_image(b"")


def test_the_image_is_fully_decoded_and_independent_of_the_input():
    buffer = bytearray(encode(quadrants(), "PNG"))
    image = load_image(buffer)
    buffer[:] = b"\x00" * len(buffer)
    assert image.getpixel((60, 40)) == BOTTOM_RIGHT


def test_a_global_truncated_images_setting_is_refused_loudly(monkeypatch):
    monkeypatch.setattr(ImageFile, "LOAD_TRUNCATED_IMAGES", True)
    with pytest.raises(RuntimeError, match="LOAD_TRUNCATED_IMAGES"):
        load_image(CORPUS["truncated_jpeg"].data)


def image_info(data: bytes, *, name: str | None = None) -> tuple[str, int, int]:
    """``(format, width, height)`` from the header alone, as load_image reads it before decoding."""
    display = name or "The image"
    if not data:
        raise InvalidImage(display, f"{display} is empty (0 bytes).")
    with images._open(data, display) as image:
        return (image.format or "unknown", *images._oriented_size(image))


def test_image_info_reads_the_header_and_reports_the_displayed_size():
    assert image_info(CORPUS["rgb_jpeg"].data) == ("JPEG", 64, 48)
    assert image_info(CORPUS["exif_rotated_jpeg"].data) == ("JPEG", 32, 64)
    with pytest.raises(InvalidImage, match="too many pixels"):
        image_info(CORPUS["bomb_png"].data, name="bomb.png")
    with pytest.raises(InvalidImage, match="not an image"):
        image_info(CORPUS["svg"].data, name="drawing.svg")
    with pytest.raises(InvalidImage, match="empty"):
        image_info(b"")


def test_image_info_does_not_need_the_pixel_data():
    png = encode(noise(200, 100), "PNG")
    assert image_info(png[:100]) == ("PNG", 200, 100)
    assert image_info(CORPUS["huge_png"].data) == ("PNG", 8000, 8000)


def test_a_picture_too_thin_at_the_output_size_is_refused_naming_it_and_the_sizes():
    banner = load_image(CORPUS["long_thin_png"].data, name="banner.png")
    assert min(banner.size) >= 16  # load_image itself takes it: only at a small output size is it too thin
    with pytest.raises(InvalidImage) as caught:
        check_paintable(banner, 48, name="banner.png")
    assert caught.value.name == "banner.png"
    assert str(caught.value) == ("banner.png is too long and thin to paint at 48 px: its short side would be "
                                 "1 px (at least 16 px needed).")


@pytest.mark.parametrize("width, height", [(300, 100), (100, 300)])
def test_paintable_means_a_short_side_of_at_least_16_px_after_resizing(width, height):
    picture = Image.new("RGB", (width, height))
    check_paintable(picture, 48, name="wide.png")  # 100 * 48 / 300 = 16
    check_paintable(picture, 47, name="wide.png")  # 15.67 rounds to 16, as stylize() resizes it
    with pytest.raises(InvalidImage, match="short side would be 15 px"):
        check_paintable(picture, 46, name="wide.png")  # 15.33 rounds to 15


def test_no_picture_is_paintable_below_16_px():
    with pytest.raises(InvalidImage, match="square.png cannot be painted at 12 px"):
        check_paintable(Image.new("RGB", (64, 64)), 12, name="square.png")


@pytest.mark.parametrize("width, height", [(800, 16), (300, 100), (97, 33), (64, 64), (31, 200)])
def test_paintable_agrees_with_the_size_stylize_paints_at(width, height):
    from stylizer.images import resize_longest

    picture = Image.new("RGB", (width, height))
    for size in range(16, 130, 3):
        try:
            check_paintable(picture, size, name="p.png")
            refused = False
        except InvalidImage:
            refused = True
        assert refused == (min(resize_longest(picture, size).size) < 16), (width, height, size)
