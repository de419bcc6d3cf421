"""run_job in this process: what a worker hands back for one job, and how failures are told to the user."""

from __future__ import annotations

import io
import logging

import pytest
import torch
from PIL import Image

from stylizer.executor import ExecutorUnavailable, Job, JobDone, JobFailed, JobOptions, JobProgress
from stylizer.executor import runner as runner_module
from stylizer.executor.runner import job_failure, job_outcome, resolve_device, run_job
from stylizer.images import InvalidImage
from stylizer.transfer import Cancelled


@pytest.fixture(scope="module")
def photos(sample_images):
    content = (sample_images / "content" / "chelsea.jpg").read_bytes()
    style = (sample_images / "style" / "vangogh_wheat_field_with_cypresses.jpg").read_bytes()
    return content, style


def make_job(photos, **options) -> Job:
    settings = {"style_weight": 1e8, "content_weight": 1e4, "variants": 2, "size": 48, "steps": 4, "seed": 5,
                "strip_size": 32, "strip_steps": 3}
    content, style = photos
    return Job(job_id="job", content=content, style=style, options=JobOptions(**(settings | options)),
               content_name="chelsea.jpg", style_name="wheat-field.jpg")


def decoded(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    image.load()
    return image


def test_result_and_strip_decode_at_the_requested_size_with_one_weight_per_variant(photos, random_vgg):
    done = run_job(make_job(photos, size=64, variants=3), random_vgg, device="cpu")

    image = decoded(done.image)
    assert image.size == done.image_size and max(image.size) == 64
    assert image.format == {"png": "PNG", "jpg": "JPEG"}[done.image_ext]
    strip = decoded(done.strip)
    assert strip.size == done.strip_size
    assert strip.width * strip.height >= 3 * 32 * 21  # all three tiles (32 px) are on it
    # Tiles two strengths apart (3, 5, 7): each a doubling twice over.
    assert done.strengths == (3, 5, 7) and done.style_weights == (2.5e7, 1e8, 4e8)
    assert done.style_weights[done.chosen] == 1e8  # the weight the user asked for
    assert done.params["steps"] == 4 and done.params["strip"]["steps"] == 3
    assert done.params["output_max_bytes"] == 8 * 1024 * 1024
    assert done.note is None


def test_outputs_fit_the_byte_budget(photos, random_vgg):
    budget = 4_000
    done = run_job(make_job(photos, steps=2, output_max_bytes=budget), random_vgg, device="cpu")
    assert len(done.image) <= budget and len(done.strip) <= budget
    assert done.strip_ext == "jpg"  # a lossless strip did not fit: the budget really was binding
    assert decoded(done.strip).size == done.strip_size


def test_a_random_seed_is_reported_and_repaints_the_same_picture(photos, random_vgg):
    first = run_job(make_job(photos, seed=None), random_vgg, device="cpu")
    seed = first.params["seed"]
    assert isinstance(seed, int)
    again = run_job(make_job(photos, seed=seed), random_vgg, device="cpu")
    assert again.params["seed"] == seed
    assert decoded(again.image).tobytes() == decoded(first.image).tobytes()


def test_progress_carries_small_jpeg_previews_unless_turned_off(photos, random_vgg):
    seen: list[JobProgress] = []
    run_job(make_job(photos, size=64), random_vgg, device="cpu", on_progress=seen.append, progress_interval=0)
    # The strip's 3 steps, then the result's 4, as one count.
    assert [event.step for event in seen] == [1, 2, 3, 4, 5, 6, 7]
    assert all(event.total == 7 for event in seen)
    assert [event.stage for event in seen][:3] == ["strip"] * 3
    preview = decoded(seen[-1].preview)
    assert preview.format == "JPEG" and max(preview.size) <= 160

    quiet: list[JobProgress] = []
    run_job(make_job(photos), random_vgg, device="cpu", on_progress=quiet.append, previews=False)
    assert quiet and all(event.preview is None for event in quiet)


def test_an_undecodable_upload_raises_invalid_image_naming_the_file(photos, random_vgg):
    job = make_job(photos)
    job = Job(**{**job.__dict__, "style": b"GIF89a but not really", "style_name": "cat.gif"})
    with pytest.raises(InvalidImage) as caught:
        run_job(job, random_vgg, device="cpu")
    failure = job_failure(caught.value)
    assert failure.kind == "invalid_image" and "cat.gif" in failure.reason


def banner_bytes(width: int = 800, height: int = 16) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), (30, 90, 200)).save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.mark.parametrize("role", ["content", "style"])
def test_a_picture_too_thin_for_the_output_size_fails_as_invalid_image_naming_it(photos, random_vgg, role):
    job = make_job(photos, size=64, strip_size=48)  # the strip is the smallest size painted
    job = Job(**{**job.__dict__, role: banner_bytes(), f"{role}_name": "banner.png"})
    with pytest.raises(InvalidImage) as caught:
        run_job(job, random_vgg, device="cpu")
    failure = job_failure(caught.value)
    assert failure.kind == "invalid_image"
    assert failure.reason == ("banner.png is too long and thin to paint at 48 px: its short side would be 1 px "
                              "(at least 16 px needed).")


def test_the_workers_own_pixel_limit_is_applied(photos, random_vgg):
    with pytest.raises(InvalidImage, match="megapixels"):
        run_job(make_job(photos, max_pixels=10_000), random_vgg, device="cpu")


def test_cancel_stops_the_painting(photos, random_vgg):
    with pytest.raises(Cancelled):
        run_job(make_job(photos, steps=1000), random_vgg, device="cpu", cancelled=lambda: True)


def test_running_out_of_memory_once_retries_at_three_quarters_size(photos, random_vgg, monkeypatch):
    real_paint = runner_module.paint_request
    sizes = []

    def paint_short_of_memory(*args, plan, **kwargs):
        sizes.append(plan.size)
        if len(sizes) == 1:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory")
        return real_paint(*args, plan=plan, **kwargs)

    monkeypatch.setattr(runner_module, "paint_request", paint_short_of_memory)
    done = run_job(make_job(photos, size=64), random_vgg, device="cpu")
    assert sizes == [64, 48]
    assert max(done.image_size) == 48 and done.params["size"] == 48
    assert "48" in done.note and "memory" in done.note


def test_no_memory_retry_at_a_size_too_small_for_the_picture(photos, random_vgg, monkeypatch):
    sizes = []

    def paint_short_of_memory(*args, plan, **kwargs):
        sizes.append(plan.size)
        raise torch.cuda.OutOfMemoryError("CUDA out of memory")

    monkeypatch.setattr(runner_module, "paint_request", paint_short_of_memory)
    job = make_job(photos, size=64, strip_size=64)
    # 200×50 at 64 px is 64×16, just paintable; three quarters of that (48×12) is not.
    job = Job(**{**job.__dict__, "content": banner_bytes(200, 50), "content_name": "banner.png"})
    with pytest.raises(torch.cuda.OutOfMemoryError) as caught:
        run_job(job, random_vgg, device="cpu")
    assert sizes == [64]
    assert job_failure(caught.value).kind == "oom"  # the picture was fine at the size asked for


def test_running_out_of_memory_twice_is_reported_as_oom(photos, random_vgg, monkeypatch):
    def always_short(*args, **kwargs):
        raise torch.cuda.OutOfMemoryError("CUDA out of memory")

    monkeypatch.setattr(runner_module, "paint_request", always_short)
    with pytest.raises(torch.cuda.OutOfMemoryError) as caught:
        run_job(make_job(photos), random_vgg, device="cpu")
    assert job_failure(caught.value).kind == "oom"


def test_failures_are_told_in_words_a_user_can_read(caplog):
    assert job_failure(Cancelled("stylize() was cancelled")).kind == "cancelled"
    with caplog.at_level(logging.ERROR, logger="stylizer.executor.runner"):
        failure = job_failure(KeyError("secret internal detail"))
    assert failure.kind == "internal"
    assert "secret internal detail" not in failure.reason
    assert "secret internal detail" in caplog.text  # the detail goes to the log instead


def test_job_outcome_hands_back_the_painting_or_the_failure_instead_of_raising(photos, random_vgg):
    seen: list[JobProgress] = []
    done = job_outcome(make_job(photos), random_vgg, device="cpu", on_progress=seen.append, progress_interval=0)
    assert isinstance(done, JobDone) and max(decoded(done.image).size) == 48
    assert [event.step for event in seen] == [1, 2, 3, 4, 5, 6, 7]  # the options reach run_job

    job = make_job(photos)
    unreadable = Job(**{**job.__dict__, "style": b"GIF89a but not really", "style_name": "cat.gif"})
    failure = job_outcome(unreadable, random_vgg, device="cpu")
    assert isinstance(failure, JobFailed) and failure.kind == "invalid_image" and "cat.gif" in failure.reason

    cancelled = job_outcome(make_job(photos, steps=1000), random_vgg, device="cpu", cancelled=lambda: True)
    assert (cancelled.kind, cancelled.reason) == ("cancelled", "The job was cancelled.")


def test_job_outcome_logs_an_unexpected_error_with_its_traceback(photos, random_vgg, monkeypatch, caplog):
    def broken_stylize(*args, **kwargs):
        raise KeyError("secret internal detail")

    monkeypatch.setattr(runner_module, "paint_request", broken_stylize)
    with caplog.at_level(logging.ERROR, logger="stylizer.executor.runner"):
        failure = job_outcome(make_job(photos), random_vgg, device="cpu")
    assert failure.kind == "internal" and "secret internal detail" not in failure.reason
    assert "Traceback" in caplog.text and "broken_stylize" in caplog.text


@pytest.mark.parametrize("has_cuda, expected", [(True, "cuda"), (False, "cpu")])
def test_auto_device_is_cuda_when_there_is_one(monkeypatch, has_cuda, expected):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: has_cuda)
    assert resolve_device("auto") == expected
    assert resolve_device("cpu") == "cpu"


def test_cuda_asked_for_without_cuda_is_refused_in_words(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    for device in ("cuda", "cuda:1"):
        with pytest.raises(ExecutorUnavailable, match=f'"{device}".*CUDA is not available'):
            resolve_device(device)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert resolve_device("cuda:1") == "cuda:1"


@pytest.mark.skipif(torch.cuda.is_available(), reason="shows what a machine without CUDA says")
async def test_a_local_worker_told_to_use_cuda_without_cuda_refuses_to_start_in_words():
    from stylizer.executor.local import LocalExecutor

    executor = LocalExecutor(weights="random", device="cuda")
    try:
        with pytest.raises(ExecutorUnavailable, match='"cuda", but CUDA is not available'):
            await executor.start()
    finally:
        await executor.close()


def painted_by(done: JobDone) -> tuple[tuple[int, bytes], ...]:
    return tuple(zip(done.strengths, done.tiles, strict=True))


def test_every_tile_comes_back_as_a_lossless_png_in_strip_order(photos, random_vgg):
    done = run_job(make_job(photos, variants=3, size=96, output_max_bytes=4_000), random_vgg, device="cpu")
    tiles = [decoded(tile) for tile in done.tiles]
    assert [tile.format for tile in tiles] == ["PNG"] * 3
    assert done.image_ext == "jpg"  # the budget forced the image itself to JPEG; its tile stays exact
    assert all(max(tile.size) == 32 for tile in tiles) and max(done.image_size) == 96  # tiles at the strip's size
    assert done.reused == () and done.params["warm_from"] == {}


def test_a_more_style_redo_takes_the_shared_tiles_as_they_are_and_paints_only_the_new_one(photos, random_vgg):
    source = run_job(make_job(photos, strength=5, variants=3, steps=10), random_vgg, device="cpu")
    # The raw weight given is the one at the job's strength: More (one tile, two strengths) quadruples it.
    job = make_job(photos, strength=7, variants=3, steps=10, strip_steps=5, style_weight=4e8)
    redo = run_job(Job(**{**job.__dict__, "painted": painted_by(source)}), random_vgg, device="cpu")

    assert source.strengths == (3, 5, 7) and redo.strengths == (5, 7, 9)
    assert redo.reused == (5, 7)
    assert redo.tiles[:2] == source.tiles[1:]  # byte for byte: nothing repainted
    assert redo.params["warm_from"] == {"9": 7}
    # Two strengths from its start: 0.4 of the strip's steps per strength, fine only.
    assert redo.params["strip"]["steps"] == 4 and [level["side"] for level in redo.params["strip"]["levels"]] == [32]
    assert redo.params["optimizer"] == "lbfgs"  # the result grows from its tile
    assert redo.style_weights == (1e8, 4e8, 1.6e9) and redo.strengths[redo.chosen] == 7
    assert decoded(redo.tiles[2]).tobytes() != decoded(source.tiles[2]).tobytes()


def test_an_upscale_keeps_the_strip_and_grows_its_tile_to_the_larger_size(photos, random_vgg):
    source = run_job(make_job(photos, strength=5, variants=5, size=48), random_vgg, device="cpu")
    job = make_job(photos, strength=3, variants=5, size=96, steps=10, style_weight=2.5e7)
    seen: list[JobProgress] = []
    variant = run_job(Job(**{**job.__dict__, "painted": painted_by(source)}), random_vgg, device="cpu",
                      on_progress=seen.append, progress_interval=0)
    assert variant.reused == (1, 3, 5, 7, 9) and variant.tiles == source.tiles and variant.params["strip"]["steps"] == 0
    assert [level["side"] for level in variant.params["levels"]] == [96] and seen[-1].total == 10
    assert max(variant.image_size) == 96 and variant.strengths[variant.chosen] == 3


def test_a_redo_whose_strip_is_all_painted_paints_only_its_result(photos, random_vgg):
    source = run_job(make_job(photos, strength=10, variants=3), random_vgg, device="cpu")
    job = make_job(photos, strength=8, variants=3, steps=5, strip_steps=1000, style_weight=2.5e7)
    seen: list[JobProgress] = []
    redo = run_job(Job(**{**job.__dict__, "painted": painted_by(source)}), random_vgg, device="cpu",
                   on_progress=seen.append, progress_interval=0, cancelled=lambda: False)
    assert source.strengths == redo.strengths == (6, 8, 10)  # the strip stops at the top strength
    assert redo.reused == (6, 8, 10) and redo.tiles == source.tiles
    assert redo.strengths[redo.chosen] == 8 and redo.params["strip"]["steps"] == 0
    assert [event.step for event in seen] == [1, 2, 3, 4, 5] and {event.stage for event in seen} == {"fine"}


def test_a_calibrated_strip_reused_whole_reports_the_weights_a_fresh_paint_calibrates(photos, random_vgg):
    calibrated = {"style_weight": None, "content_weight": 1.0}
    source = run_job(make_job(photos, strength=10, variants=3, **calibrated), random_vgg, device="cpu")
    job = make_job(photos, strength=8, variants=3, **calibrated)
    redo = run_job(Job(**{**job.__dict__, "painted": painted_by(source)}), random_vgg, device="cpu")
    assert redo.reused == (6, 8, 10) and redo.params["strip"]["steps"] == 0
    assert redo.style_weights == pytest.approx(source.style_weights, rel=1e-5)
    assert redo.style_weights[1] == pytest.approx(4 * redo.style_weights[0], rel=1e-5)


def test_the_tiles_are_calibrated_at_the_results_size(photos, random_vgg):
    calibrated = {"style_weight": None, "content_weight": 1.0}
    small = run_job(make_job(photos, size=48, **calibrated), random_vgg, device="cpu")
    large = run_job(make_job(photos, size=96, **calibrated), random_vgg, device="cpu")
    assert small.params["strip"]["balance_size"] == 48 and large.params["strip"]["balance_size"] == 96
    assert small.params["strip"]["style_weights"] == pytest.approx(list(small.style_weights), rel=1e-5)
    assert large.params["strip"]["style_weights"] == pytest.approx(list(large.style_weights), rel=1e-5)


def test_a_painted_tile_that_is_not_a_png_is_an_internal_failure(photos, random_vgg):
    buffer = io.BytesIO()
    Image.new("RGB", (48, 32)).save(buffer, format="JPEG")
    job = make_job(photos)
    with pytest.raises(ValueError, match="not a PNG") as caught:
        run_job(Job(**{**job.__dict__, "painted": ((5, buffer.getvalue()),)}), random_vgg, device="cpu")
    assert job_failure(caught.value).kind == "internal"  # not the user's pictures' fault


def animation_frames(data: bytes) -> list[Image.Image]:
    with Image.open(io.BytesIO(data)) as animation:
        assert animation.format == "WEBP" and animation.is_animated
        frames = []
        for index in range(animation.n_frames):
            animation.seek(index)
            frames.append(animation.convert("RGB"))
    return frames


def test_a_job_hands_back_a_timelapse_of_its_chosen_strength_ending_on_the_result(photos, random_vgg):
    done = run_job(make_job(photos, variants=3, steps=12, output_max_bytes=200_000), random_vgg, device="cpu")
    frames = animation_frames(done.timelapse)
    assert 2 <= len(frames) and len(done.timelapse) <= 200_000
    result = decoded(done.image).convert("RGB").resize(frames[-1].size)
    last_error = sum(abs(a - b) for a, b in zip(frames[-1].tobytes(), result.tobytes(), strict=True))
    first_error = sum(abs(a - b) for a, b in zip(frames[0].tobytes(), result.tobytes(), strict=True))
    assert last_error < first_error  # it forms towards the picture delivered, and ends on it


def test_a_redo_that_takes_its_chosen_tile_as_painted_still_shows_its_result_forming(photos, random_vgg):
    source = run_job(make_job(photos, strength=5, variants=3, steps=6), random_vgg, device="cpu")
    job = make_job(photos, strength=7, variants=3, steps=6, style_weight=4e8)
    redo = run_job(Job(**{**job.__dict__, "painted": painted_by(source)}), random_vgg, device="cpu")
    assert redo.reused == (5, 7) and len(animation_frames(redo.timelapse)) >= 2
    assert source.timelapse


def test_a_preset_job_computes_its_style_statistics_once_and_paints_the_same_picture(photos, random_vgg,
                                                                                     monkeypatch):
    from stylizer.style_cache import StyleTargetCache

    cache = StyleTargetCache()
    monkeypatch.setattr(runner_module, "PRESET_STYLE_TARGETS", cache)
    job = make_job(photos, variants=2, steps=3, style_weight=None, content_weight=1.0)
    uploaded = run_job(job, random_vgg, device="cpu")
    assert cache.misses == 0  # an upload is never cached
    preset = Job(**{**job.__dict__, "preset": "wheat-field"})
    first = run_job(preset, random_vgg, device="cpu")
    misses = cache.misses
    second = run_job(preset, random_vgg, device="cpu")
    assert misses > 0 and cache.misses == misses and cache.hits >= misses
    assert first.tiles == second.tiles == uploaded.tiles
    assert first.style_weights == second.style_weights == uploaded.style_weights
