"""What caching a preset's style statistics saves per job, and what a job's timelapse costs.

Three jobs per size through the worker's own code path (runner.run_job), the bot's request at that size (its
steps, 5 variants, strength 5), the same photo and the same painting each time, on the stand-in ImageNet
weights: the painting as an upload (never cached), as a preset the first time (computed, then kept) and as
the preset again (taken from the cache). A warm-up job comes first so that no row pays for the allocator's
growth. The time spent computing style targets (Gram matrices of the painting: one VGG pass per size and
precision) is measured around each computation; encoding the timelapse is timed apart, since the job's own
``seconds`` ends before it.

    flock /tmp/cpu.lock .venv/bin/python benchmarks/preset_cache.py [--sizes 128 256] [--out FILE.json]
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))
import outside  # noqa: E402

SHARED = outside.shared()
sys.path.insert(0, str(REPO))

from bot.config import StyleConfig  # noqa: E402
from stylizer import objective, style_cache  # noqa: E402
from stylizer.executor import runner  # noqa: E402
from stylizer.executor.base import Job, JobOptions  # noqa: E402
from stylizer.presets import get_preset  # noqa: E402
from stylizer.weights import load_vgg19  # noqa: E402

PRESET = "vangogh_starry_night_over_the_rhone"
spent: dict[str, list[float]] = {"targets": [], "timelapse": []}


def timed(kind: str, function):
    def run(*args, **kwargs):
        started = time.perf_counter()
        try:
            return function(*args, **kwargs)
        finally:
            spent[kind].append(time.perf_counter() - started)
    return run


def instrument() -> None:
    """Time every style-target computation (cached or not) and every timelapse encoding."""
    def style_targets(compute, detail):
        return style_cache.style_targets(timed("targets", compute), detail)

    objective.style_targets = style_targets
    runner.encode_timelapse = timed("timelapse", runner.encode_timelapse)


def one_job(net, content: bytes, painting: bytes, options: JobOptions, preset: str | None) -> dict:
    for values in spent.values():
        values.clear()
    started = time.perf_counter()
    done = runner.run_job(Job("bench", content, painting, options, preset=preset), net, device="cpu")
    wall = time.perf_counter() - started
    steps = done.params["steps"]
    return {"job_s": round(done.seconds, 2), "wall_s": round(wall, 2), "targets_computed": len(spent["targets"]),
            "targets_s": round(sum(spent["targets"]), 3), "timelapse_s": round(sum(spent["timelapse"]), 3),
            "timelapse_bytes": len(done.timelapse), "s_per_step": round(done.seconds / steps, 4)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", type=int, nargs="+", default=[128, 256])
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    instrument()
    style = StyleConfig()
    net = load_vgg19(SHARED / "weights" / "vgg16_imagenet_as_vgg19.pth")
    content = (SHARED / "images" / "content" / "chelsea.jpg").read_bytes()
    painting = get_preset(PRESET).read_bytes()
    rows = []
    for size in args.sizes:
        options = JobOptions(strength=5, variants=style.variants, size=size, steps=style.steps[size], seed=0)
        one_job(net, content, painting, options, None)  # warm-up, not reported
        for label, preset in (("uploaded", None), ("preset, first job", PRESET), ("preset, cached", PRESET)):
            rows.append({"size": size, "steps": options.steps, "row": label, **one_job(net, content, painting,
                                                                                       options, preset)})
    machine = f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} threads, CPU only"
    print(f"# {machine}; stand-in ImageNet weights; chelsea + {PRESET}; 5 variants, strength 5")
    print("| size | row | job s | style targets computed | their s | s per step | timelapse encode s | bytes |")
    print("|---:|---|---:|---:|---:|---:|---:|---:|")
    for row in rows:
        print(f"| {row['size']} | {row['row']} | {row['job_s']} | {row['targets_computed']} | {row['targets_s']} "
              f"| {row['s_per_step']} | {row['timelapse_s']} | {row['timelapse_bytes']} |")
    if args.out:
        args.out.write_text(json.dumps({"machine": machine, "preset": PRESET, "rows": rows}, indent=1) + "\n")


if __name__ == "__main__":
    main()
