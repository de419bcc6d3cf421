"""Preset paintings (stylizer.presets), the timelapse (stylizer.timelapse) and the presets' cached style
statistics (stylizer.style_cache)."""

from __future__ import annotations

import io

import pytest
import torch
from PIL import Image

from stylizer.images import load_image
from stylizer.presets import MAX_MATCHES, UnknownPreset, all_presets, get_preset, search_presets
from stylizer.style_cache import StyleTargetCache, cached_style_targets, style_targets
from stylizer.timelapse import FrameRecorder, encode_timelapse


def test_every_preset_ships_a_readable_painting_with_its_credit():
    shipped = all_presets()
    assert len(shipped) >= 10
    assert len({p.name for p in shipped}) == len(shipped)
    for preset in shipped:
        image = load_image(preset.read_bytes(), name=preset.name)
        assert max(image.size) <= 1024 and min(image.size) >= 256
        assert preset.title and preset.artist and preset.year
        assert preset.credit == f"{preset.title}, {preset.artist}, {preset.year}"
        # Discord shows a choice's name up to 100 characters and takes string values up to 100.
        assert len(preset.name) <= 100
    sources = (shipped[0].path.parent / "SOURCES.md").read_text()
    assert all(f"`{p.name}.jpg`" in sources for p in shipped)


def test_presets_are_found_by_name_or_title_and_unknown_ones_are_named():
    assert get_preset("klimt_the_kiss").artist == "Gustav Klimt"
    assert get_preset("the kiss").name == "klimt_the_kiss"
    with pytest.raises(UnknownPreset, match="mona lisa"):
        get_preset("mona lisa")


def test_search_matches_titles_and_artists_without_case_or_accents():
    assert {p.artist for p in search_presets("van gogh")} == {"Vincent van Gogh"}
    assert "cezanne_mont_sainte_victoire" in [p.name for p in search_presets("CEZANNE")]
    assert [p.name for p in search_presets("rhone")] == ["vangogh_starry_night_over_the_rhone"]
    starting = search_presets("monet")
    assert starting and all(p.artist == "Claude Monet" for p in starting)
    assert search_presets("no such painter") == []
    assert len(search_presets("")) == min(MAX_MATCHES, len(all_presets()))
    assert len(search_presets("", limit=3)) == 3


def frame(value: int, size=(200, 100)) -> Image.Image:
    return Image.new("RGB", size, (value % 256, value // 256, 0))


def test_the_recorder_keeps_a_bounded_evenly_spread_set_of_frames():
    recorder = FrameRecorder(max_frames=10, side=64)
    for value in range(1000):
        recorder.offer(frame(value))
    kept = [red + 256 * green for red, green, _ in (image.getpixel((0, 0)) for image in recorder.frames)]
    assert 5 <= len(kept) <= 10
    assert kept[0] == 0
    gaps = {b - a for a, b in zip(kept, kept[1:], strict=False)}
    assert len(gaps) == 1  # evenly spread
    assert all(max(image.size) == 64 for image in recorder.frames)


def test_the_timelapse_is_an_animated_webp_that_ends_on_the_result_and_holds_it():
    frames = [frame(40 * n) for n in range(6)]
    result = Image.new("RGB", (400, 200), (0, 200, 0))
    data = encode_timelapse(frames, result, max_bytes=1 << 20)
    with Image.open(io.BytesIO(data)) as animation:
        assert animation.format == "WEBP" and animation.is_animated and animation.n_frames == 7
        assert animation.info["loop"] == 0
        durations = []
        for index in range(animation.n_frames):
            animation.seek(index)
            animation.load()
            durations.append(animation.info["duration"])
        last = animation.convert("RGB")
    assert max(last.size) <= 256 and last.size[0] == 2 * last.size[1]
    red, green, _ = last.getpixel((10, 10))
    assert green > 150 and red < 50
    assert 2000 <= sum(durations) <= 8000 and durations[-1] == max(durations)


def test_a_timelapse_shrinks_to_fit_its_budget_or_says_it_cannot():
    noisy = [Image.effect_noise((256, 256), 80 + n).convert("RGB") for n in range(30)]
    roomy = encode_timelapse(noisy, noisy[-1], max_bytes=1 << 22)
    tight = encode_timelapse(noisy, noisy[-1], max_bytes=len(roomy) // 3)
    assert len(tight) <= len(roomy) // 3
    with pytest.raises(ValueError):
        encode_timelapse(noisy, noisy[-1], max_bytes=100)


def test_style_targets_are_computed_once_per_key_and_the_cache_stays_bounded():
    computed = []

    def compute(value: float):
        def run():
            computed.append(value)
            return [torch.full((256, 256), value)]  # 256 KiB
        return run

    assert style_targets(compute(1.0), "detail")[0][0, 0] == 1.0  # no cache active: computed every time
    style_targets(compute(1.0), "detail")
    assert computed == [1.0, 1.0]
    cache = StyleTargetCache(max_bytes=600 * 1024)
    with cached_style_targets(cache, "painting-a"):
        first = style_targets(compute(2.0), "128px")
        again = style_targets(compute(99.0), "128px")
        style_targets(compute(3.0), "256px")
    assert again is first and computed[2:] == [2.0, 3.0] and (cache.hits, cache.misses) == (1, 2)
    with cached_style_targets(cache, "painting-b"):
        style_targets(compute(4.0), "128px")  # a third entry: the least recently used goes
    assert len(cache) == 2 and cache.stored_bytes <= 600 * 1024
    with cached_style_targets(cache, "painting-a"):
        assert style_targets(compute(5.0), "128px")[0][0, 0] == 5.0  # it was dropped, so computed again
