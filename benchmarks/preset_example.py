"""The README's preset pictures: one /stylize content:chelsea preset:NAME request through the worker's code.

The job is the bot's default request on a CPU (bot.config's [style] defaults, strength 5) with the preset's
file as the style, painted on the stand-in ImageNet weights; the reply's picture, strip and timelapse are
written to DIR as the bot would upload them.

    flock /tmp/cpu.lock .venv/bin/python benchmarks/preset_example.py DIR [--preset NAME]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))
import outside  # noqa: E402

SHARED = outside.shared()
sys.path.insert(0, str(REPO))

from bot.config import StyleConfig  # noqa: E402
from stylizer.executor.base import Job, JobOptions  # noqa: E402
from stylizer.executor.runner import run_job  # noqa: E402
from stylizer.presets import get_preset  # noqa: E402
from stylizer.weights import load_vgg19  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("out", type=Path)
    parser.add_argument("--preset", default="vangogh_starry_night_over_the_rhone")
    args = parser.parse_args()
    preset = get_preset(args.preset)
    style = StyleConfig()  # the CPU defaults, as the bot's [style] on this machine
    steps = style.steps[style.default_size]
    options = JobOptions(strength=5, variants=style.variants, size=style.default_size, steps=steps,
                         strip_size=style.strip_size, strip_steps=style.strip_steps, seed=0)
    net = load_vgg19(SHARED / "weights" / "vgg16_imagenet_as_vgg19.pth")
    content = (SHARED / "images" / "content" / "chelsea.jpg").read_bytes()
    done = run_job(Job("example", content, preset.read_bytes(), options, style_name=preset.credit,
                       preset=preset.name), net, device="cpu")
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"image.{done.image_ext}").write_bytes(done.image)
    (args.out / f"strip.{done.strip_ext}").write_bytes(done.strip)
    (args.out / "timelapse.webp").write_bytes(done.timelapse)
    print(f"{done.seconds:.1f} s for a {options.size} px result ({steps} steps) and {options.variants} tiles at "
          f"{options.strip_size} px ({options.strip_steps} steps), in the style of {preset.credit}; "
          f"timelapse {len(done.timelapse)} bytes")


if __name__ == "__main__":
    main()
