"""How long the bot's default request takes on this machine: one job through the worker's own code path.

The job is what /stylize sends with the shipped [style] defaults (bot/config.py): its size, its steps for
that size, the configured variants, the default strength; the stand-in ImageNet weights stand for the real
ones. Prints seconds for the whole job (decoding, painting, the strip, encoding) and the params.

    flock /tmp/cpu.lock .venv/bin/python benchmarks/bot_default.py [DIR]

With DIR, the reply's two pictures are written there (image.EXT, strip.EXT) as the bot would upload them.
"""

from __future__ import annotations

import json
import platform
import sys
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))
import outside  # noqa: E402

SHARED = outside.shared()
sys.path.insert(0, str(REPO))

from bot.config import StyleConfig  # noqa: E402
from stylizer.executor.base import Job, JobOptions  # noqa: E402
from stylizer.executor.runner import run_job  # noqa: E402
from stylizer.weights import load_vgg19  # noqa: E402


def main() -> None:
    style = StyleConfig()
    options = JobOptions(strength=style.default_strength, variants=style.variants, size=style.default_size,
                         steps=style.steps[style.default_size], seed=0)
    net = load_vgg19(SHARED / "weights" / "vgg16_imagenet_as_vgg19.pth")
    content = (SHARED / "images" / "content" / "chelsea.jpg").read_bytes()
    painting = (SHARED / "images" / "style" / "vangogh_wheat_field_with_cypresses.jpg").read_bytes()
    for attempt in (1,):  # a fresh worker: the first job also pays for allocator growth
        done = run_job(Job("bench", content, painting, options), net, device="cpu")
        print(f"attempt {attempt}: {done.seconds:.1f} s for {options.variants} variants at {options.size} px, "
              f"{options.steps} steps, strengths {done.strengths}")
    if len(sys.argv) > 1:
        out = Path(sys.argv[1])
        out.mkdir(parents=True, exist_ok=True)
        (out / f"image.{done.image_ext}").write_bytes(done.image)
        (out / f"strip.{done.strip_ext}").write_bytes(done.strip)
    print(json.dumps({"cpu": f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} threads",
                      "seconds": round(done.seconds, 2), "size": options.size, "steps": options.steps,
                      "variants": options.variants, "precision": done.params["precision"],
                      "levels": done.params["levels"]}))


if __name__ == "__main__":
    main()
