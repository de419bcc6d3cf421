"""The ``python -m stylizer`` command line: what a user sees on success and on bad input."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from stylizer.cli import main

REPO = Path(__file__).resolve().parents[1]


def run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "stylizer", *args], cwd=REPO, capture_output=True, text=True, timeout=240,
        env=None if env is None else {**os.environ, **env},
    )


@pytest.fixture(scope="module")
def photo(sample_images) -> str:
    return str(sample_images / "content" / "camera.png")


@pytest.fixture(scope="module")
def painting(sample_images) -> str:
    return str(sample_images / "style" / "turner_shipwreck.jpg")


def assert_one_line_naming(result: subprocess.CompletedProcess, name: str) -> None:
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert name in lines[0] and "Traceback" not in result.stderr


def test_a_text_file_given_as_image_exits_2_with_one_line(tmp_path, painting):
    notes = tmp_path / "notes.txt"
    notes.write_text("not a picture")
    assert_one_line_naming(
        run_cli(str(notes), painting, "--weights", "random", "-o", str(tmp_path / "o.png")), "notes.txt"
    )


def test_a_missing_file_exits_2_with_one_line(tmp_path, photo):
    assert_one_line_naming(run_cli(photo, str(tmp_path / "absent.jpg"), "--weights", "random"), "absent.jpg")


def test_garbage_weights_exit_2_with_one_line(tmp_path, photo, painting):
    garbage = tmp_path / "vgg19.pth"
    garbage.write_bytes(b"\x00garbage" * 100)
    assert_one_line_naming(run_cli(photo, painting, "--weights", str(garbage)), "vgg19.pth")


@pytest.mark.parametrize("thin_input", ["content", "style"])
def test_a_picture_too_thin_for_the_size_exits_2_with_one_line(tmp_path, photo, painting, thin_input):
    thin = tmp_path / "long_thin.png"
    Image.new("RGB", (400, 20), (90, 120, 200)).save(thin)  # 48x2 px at --size 48
    inputs = (str(thin), painting) if thin_input == "content" else (photo, str(thin))
    result = run_cli(*inputs, "--size", "48", "--weights", "random", "-o", str(tmp_path / "o.png"))
    assert_one_line_naming(result, "long_thin.png")
    assert "too long and thin" in result.stderr and not (tmp_path / "o.png").exists()


def test_cuda_without_a_gpu_exits_2_with_one_line(tmp_path, photo, painting):
    # Hiding every GPU makes this machine one without CUDA, whatever it has.
    result = run_cli(photo, painting, "--device", "cuda", "--weights", "random", "-o", str(tmp_path / "o.png"),
                     env={"CUDA_VISIBLE_DEVICES": ""})
    assert_one_line_naming(result, "CUDA was asked for but PyTorch sees no GPU; use --device cpu or auto")
    assert not (tmp_path / "o.png").exists()


def test_a_good_run_writes_the_image_and_the_strip(tmp_path, photo, painting):
    out, strip = tmp_path / "out.png", tmp_path / "strip.png"
    result = run_cli(
        photo,
        painting,
        "--weights",
        "random",
        "--size",
        "32",
        "--steps",
        "3",
        "--variants",
        "3",
        "-o",
        str(out),
        "--strip",
        str(strip),
    )
    assert result.returncode == 0, result.stderr
    with Image.open(out) as image:
        assert max(image.size) == 32
    with Image.open(strip) as image:
        assert image.width > 3 * 32  # three variants side by side, plus labels
    assert str(out) in result.stdout


def test_help_lists_examples(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    assert "examples:" in text and "stylize photo.jpg" in text and "--weights" in text


def test_style_blend_must_match_the_styles(photo, painting, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main([photo, painting, "--style-blend", "1", "2", "--weights", "random"])
    assert exit_info.value.code == 2
    assert "--style-blend" in capsys.readouterr().err


def png_header_only(path: Path, width: int, height: int) -> None:
    """A PNG whose header declares width x height RGB pixels, with no pixel data: cheap to make."""
    import struct
    import zlib

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", b"") + chunk(b"IEND", b""))


def test_a_100_megapixel_png_is_refused_in_one_line_without_pillows_warning(tmp_path, painting):
    huge = tmp_path / "huge.png"
    png_header_only(huge, 10_000, 10_000)
    result = run_cli(str(huge), painting, "--weights", "random", "-o", str(tmp_path / "o.png"))
    assert_one_line_naming(result, "huge.png")
    assert "megapixels" in result.stderr and "DecompressionBomb" not in result.stderr


def test_variants_dir_gets_every_tile_in_strip_order_and_the_result_grows_from_its_tile(tmp_path, photo, painting):
    result = run_cli(photo, painting, "--weights", "random", "--size", "48", "--steps", "2", "--strip-size", "32",
                     "--strip-steps", "2", "--variants", "3", "--strength", "1", "-o", str(tmp_path / "out.png"),
                     "--variants-dir", str(tmp_path / "v"))
    assert result.returncode == 0, result.stderr
    names = sorted(path.name for path in (tmp_path / "v").iterdir())
    assert names == ["01_strength_1.png", "02_strength_3.png", "03_strength_5.png"]
    with Image.open(tmp_path / "v" / "01_strength_1.png") as first, Image.open(tmp_path / "out.png") as chosen:
        assert max(first.size) == 32 and max(chosen.size) == 48  # the result is strength 1 at the result's size


def test_strength_outside_1_to_10_is_refused(photo, painting, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main([photo, painting, "--strength", "11", "--weights", "random"])
    assert exit_info.value.code == 2
    assert "--strength" in capsys.readouterr().err


def test_list_presets_names_every_shipped_painting_with_its_credit(capsys):
    from stylizer.presets import all_presets

    assert main(["--list-presets"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == len(all_presets())
    assert any(line.startswith("klimt_the_kiss ") and line.endswith("The Kiss, Gustav Klimt, 1907–1908")
               for line in lines)


def test_a_preset_paints_credited_and_the_timelapse_is_an_animation_ending_on_the_result(tmp_path, photo):
    result = run_cli(photo, "--preset", "klimt_the_kiss", "--weights", "random", "--size", "32", "--steps", "6",
                     "--variants", "1", "-o", str(tmp_path / "out.png"), "--timelapse", str(tmp_path / "t.webp"))
    assert result.returncode == 0, result.stderr
    assert "The Kiss, Gustav Klimt, 1907–1908" in result.stdout
    with Image.open(tmp_path / "t.webp") as animation, Image.open(tmp_path / "out.png") as out:
        assert animation.is_animated and animation.n_frames >= 2
        animation.seek(animation.n_frames - 1)
        assert animation.size == out.size  # ends on the result, at the result's size (under 256 px)


@pytest.mark.parametrize("args, complaint", [
    (["--preset", "mona_lisa"], "mona_lisa"),
])
def test_an_unknown_preset_exits_2_with_one_line(tmp_path, photo, args, complaint):
    assert_one_line_naming(run_cli(photo, *args, "--weights", "random", "-o", str(tmp_path / "o.png")), complaint)


@pytest.mark.parametrize("extra, complaint", [
    (["STYLE", "--preset", "klimt_the_kiss"], "either style images or --preset"),
    ([], "either style images or --preset"),
    (["STYLE", "--timelapse", "t.gif"], "ending in .webp"),
])
def test_a_style_and_a_preset_neither_or_a_timelapse_that_is_not_webp_is_refused(photo, painting, extra, complaint,
                                                                                  capsys):
    args = [painting if item == "STYLE" else item for item in extra]
    with pytest.raises(SystemExit) as exit_info:
        main([photo, *args, "--weights", "random"])
    assert exit_info.value.code == 2
    assert complaint in capsys.readouterr().err


def _params(result: subprocess.CompletedProcess) -> dict:
    import json

    return json.loads(result.stdout.split("params ", 1)[1])


def test_without_a_strip_it_paints_one_strength_and_with_one_the_bots_five(tmp_path, photo, painting):
    common = ("--weights", "random", "--size", "48", "--steps", "2", "--strip-size", "32", "--strip-steps", "2")
    alone = run_cli(photo, painting, *common, "-o", str(tmp_path / "alone.png"))
    assert alone.returncode == 0, alone.stderr
    assert _params(alone)["strip"]["strengths"] == [5] and _params(alone)["strengths"] == [5]
    strip = run_cli(photo, painting, *common, "-o", str(tmp_path / "out.png"), "--strip", str(tmp_path / "s.png"))
    assert strip.returncode == 0, strip.stderr
    assert _params(strip)["strip"]["strengths"] == [1, 3, 5, 7, 9]  # the bot's default strip
    with Image.open(tmp_path / "alone.png") as image:
        assert max(image.size) == 48


def test_without_size_or_step_options_it_paints_what_the_bot_paints_on_that_device():
    import argparse

    from bot.config import parse_config
    from stylizer.cli import _fill_defaults
    from stylizer.defaults import CPU_DEFAULTS, GPU_DEFAULTS

    for device, defaults in (("cpu", CPU_DEFAULTS), ("cuda", GPU_DEFAULTS)):
        args = argparse.Namespace(variants=None, strip=Path("s.png"), variants_dir=None, size=None, steps=None,
                                  strip_size=None, strip_steps=None)
        _fill_defaults(args, defaults)
        bot = parse_config({"executor": {"device": device}}, {}).style
        assert (args.size, args.steps, args.strip_size, args.strip_steps, args.variants) == (
            bot.default_size, bot.steps[bot.default_size], bot.strip_size, bot.strip_steps, bot.variants)
