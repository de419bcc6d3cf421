"""Redo vs fresh: the painting time and referee loss of a More-style redo and a Variant at full size.

Every job goes through ``stylizer.executor.runner.run_job``, as in the bot's worker, with the bot's default
steps for each size (bot.config.StyleConfig) and the strengths the stylizer calibrates for the pair. A source strip is painted first (strength 5, ``--size``); then, each against a fresh job
with the same settings:

* More style: the strip at strength 6 given the source's tiles (all but one reused, the missing strength
  warm-started from its neighbour) vs the same strip painted fresh; the loss compared is the new tile's.
* Variant at full size: one variant (strength 5) at ``--full-size`` given the source's tiles (fine level
  only, from the tile upsampled) vs that variant painted fresh.

Losses are the referee's (../shared/bench/gatys_reference.py) of the delivered 8-bit tiles, at the style
weight the job reports for that tile (redo and fresh calibrate the same weight: the same pair and size). The last line is
one JSON object. Not a test: run it on a quiet machine (``flock /tmp/cpu.lock``).

    .venv/bin/python benchmarks/redo.py --size 256 --full-size 512 --out /tmp/redo
"""

from __future__ import annotations

import argparse
import io
import json
import os
import platform
import sys
from dataclasses import dataclass
from pathlib import Path

import torch
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))
import outside  # noqa: E402

SHARED = outside.shared()
sys.path.insert(0, str(REPO))

referee_module = outside.referee()

from bot.config import StyleConfig  # noqa: E402
from stylizer.executor.base import Job, JobDone, JobOptions  # noqa: E402
from stylizer.executor.runner import run_job  # noqa: E402
from stylizer.images import resize_longest  # noqa: E402
from stylizer.objective import pil_to_tensor  # noqa: E402
from stylizer.weights import load_vgg19  # noqa: E402

DEFAULT_CONTENT = SHARED / "images" / "content" / "chelsea.jpg"
DEFAULT_STYLE = SHARED / "images" / "style" / "vangogh_wheat_field_with_cypresses.jpg"
DEFAULT_WEIGHTS = SHARED / "weights" / "vgg16_imagenet_as_vgg19.pth"


@dataclass
class Row:
    name: str
    size: int
    done: JobDone
    strength: int  # the tile whose loss is compared
    loss: float = 0.0

    @property
    def painted(self) -> int:
        return len(self.done.strengths) - len(self.done.reused)


def tile(done: JobDone, strength: int) -> Image.Image:
    image = Image.open(io.BytesIO(done.tiles[done.strengths.index(strength)]))
    image.load()
    return image.convert("RGB")


def referee_loss(net, content: Image.Image, style: Image.Image, done: JobDone, size: int, strength: int) -> float:
    referee = referee_module.Referee(
        net,
        pil_to_tensor(resize_longest(content, size), "cpu"),
        pil_to_tensor(resize_longest(style, size), "cpu"),
        done.style_weights[done.strengths.index(strength)],
    )
    image = tile(done, strength)
    return referee.score(pil_to_tensor(image, "cpu"))[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--content", default=str(DEFAULT_CONTENT))
    parser.add_argument("--style", default=str(DEFAULT_STYLE))
    parser.add_argument("--weights", default=str(DEFAULT_WEIGHTS))
    parser.add_argument("--size", type=int, default=256, help="the source strip's size")
    parser.add_argument("--full-size", type=int, default=max(StyleConfig().sizes),
                        help="the Variant button's size (default: the largest the bot offers)")
    parser.add_argument("--out", help="folder for the tiles, to look at them")
    parser.add_argument("--skip-variant", action="store_true")
    parser.add_argument("--steps", type=int, help="instead of the bot's steps per size: for a quick check only")
    args = parser.parse_args()

    steps = StyleConfig().steps
    if args.steps:
        steps = {args.size: args.steps, args.full_size: args.steps}
    net = load_vgg19(args.weights, device="cpu")
    referee_net = referee_module.vgg19(args.weights)
    content_bytes, style_bytes = Path(args.content).read_bytes(), Path(args.style).read_bytes()
    content, style = Image.open(args.content).convert("RGB"), Image.open(args.style).convert("RGB")

    def paint(name: str, *, strength: int, variants: int, size: int, compared: int, painted=()) -> Row:
        options = JobOptions(strength=strength, variants=variants, size=size, steps=steps[size], seed=0)
        job = Job(job_id=name, content=content_bytes, style=style_bytes, options=options, painted=painted)
        row = Row(name, size, run_job(job, net, device="cpu", previews=False), compared)
        row.loss = referee_loss(referee_net, content, style, row.done, size, compared)
        print(f"{name}: {row.done.seconds:.1f} s, {row.painted} painted, loss {row.loss:.2f}", flush=True)
        if args.out:
            Path(args.out).mkdir(parents=True, exist_ok=True)
            tile(row.done, compared).save(Path(args.out) / f"{name}.png")
        return row

    source = paint("source", strength=5, variants=5, size=args.size, compared=5)
    given = tuple(zip(source.done.strengths, source.done.tiles, strict=True))
    pairs = [(
        paint("more-fresh", strength=6, variants=5, size=args.size, compared=8),
        paint("more-redo", strength=6, variants=5, size=args.size, compared=8, painted=given),
    )]
    if not args.skip_variant:
        pairs.append((
            paint("variant-fresh", strength=5, variants=1, size=args.full_size, compared=5),
            paint("variant-redo", strength=5, variants=1, size=args.full_size, compared=5, painted=given),
        ))
    report(args, source, pairs)


def report(args, source: Row, pairs: list[tuple[Row, Row]]) -> None:
    cpu = f"CPU ({platform.processor() or platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__})"
    print(f"\n{cpu}; {Path(args.content).name} in the style of {Path(args.style).name}; source strip "
          f"{source.size} px, {source.done.seconds:.1f} s\n")
    print("| job | size | steps | variants painted | painting s | ratio to fresh | referee loss (tile) "
          "| loss ratio |")
    print("|---|---|---|---|---|---|---|---|")
    summary = {"device": cpu, "source_seconds": source.done.seconds, "rows": []}
    for fresh, redo in pairs:
        for row in (fresh, redo):
            ratio = row.done.seconds / fresh.done.seconds
            loss_ratio = row.loss / fresh.loss
            print(f"| {row.name} | {row.size} | {row.done.params['steps']} | {row.painted} of "
                  f"{len(row.done.strengths)} | {row.done.seconds:.1f} | {ratio:.0%} | {row.loss:.2f} "
                  f"(strength {row.strength}) | {loss_ratio:.3f} |")
            summary["rows"].append({"job": row.name, "size": row.size, "steps": row.done.params["steps"],
                                    "painted": row.painted, "seconds": round(row.done.seconds, 2),
                                    "ratio": round(ratio, 3), "loss": round(row.loss, 3),
                                    "loss_ratio": round(loss_ratio, 4)})
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
