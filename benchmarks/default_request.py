"""The bot's default request on this machine, through the worker's own code, against a fresh 300-step paint.

Rows: the default request (the strip at the strip's size, then the chosen strength grown to the result's size),
a "More style" redo (the next tile of the same strip, its tiles reused) and an Upscale of another tile to the
largest size offered, each one ``run_job`` as the worker runs it with the [style] defaults of this device
(bot.config, stylizer.defaults). The last row paints the same strength fresh at the result's size with
``stylize()``'s 300 steps (the hybrid, the default schedule). Every result is scored by the referee
(../shared/bench/gatys_reference.py, fp32) at the result's size with the result's own raw style weight.

    flock /tmp/cpu.lock .venv/bin/python benchmarks/default_request.py [--pair chelsea.jpg+vangogh_wheat_field_with_cypresses.jpg] [--out DIR]

With --out, the default reply's two pictures are written there (image.EXT, strip.EXT) as the bot uploads them,
and the fresh paint as fresh.png.
"""

from __future__ import annotations

import argparse
import io
import json
import platform
import sys
import time
from pathlib import Path

import torch
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))
import outside  # noqa: E402

SHARED = outside.shared()
referee_module = outside.referee()
sys.path.insert(0, str(REPO))

from bot.config import parse_config  # noqa: E402
from stylizer.executor.base import Job, JobOptions  # noqa: E402
from stylizer.executor.runner import run_job  # noqa: E402
from stylizer.images import resize_longest  # noqa: E402
from stylizer.objective import pil_to_tensor, total_variation  # noqa: E402
from stylizer.options import StylizeOptions  # noqa: E402
from stylizer.strength import strip_spacing  # noqa: E402
from stylizer.transfer import stylize  # noqa: E402
from stylizer.weights import load_vgg19  # noqa: E402


def referee_loss(net, content: Image.Image, style: Image.Image, picture: Image.Image, weight: float) -> float:
    side = max(picture.size)
    device = next(net.parameters()).device
    referee = referee_module.Referee(net, pil_to_tensor(resize_longest(content, side), device),
                                     pil_to_tensor(resize_longest(style, side), device), weight)
    return referee.score(pil_to_tensor(picture, device))[0]


def speckle(picture: Image.Image, style: Image.Image) -> float:
    """Mean squared neighbour difference of the picture over the painting's own at the same size (1: as
    speckled as the painting itself)."""
    painting = resize_longest(style, max(picture.size))
    return float(total_variation(pil_to_tensor(picture, "cpu")) / total_variation(pil_to_tensor(painting, "cpu")))


def _machine(device: str) -> str:
    if device == "cuda":
        return f"{torch.cuda.get_device_name()}, torch {torch.__version__}"
    return f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} threads, CPU only"


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    parser.add_argument("--pair", default="chelsea.jpg+vangogh_wheat_field_with_cypresses.jpg")
    parser.add_argument("--out", type=Path)
    parser.add_argument("--fresh-steps", type=int, default=300)
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    parser.add_argument("--weights", default=str(outside.STAND_IN))
    # For a dry run at tiny sizes (benchmarks/gpu_check.sh --dry-run); by default the device's [style] defaults.
    parser.add_argument("--size", type=int)
    parser.add_argument("--steps", type=int)
    parser.add_argument("--strip-size", type=int)
    parser.add_argument("--strip-steps", type=int)
    return parser.parse_args()


def _job_options(args: argparse.Namespace, style_config) -> JobOptions:
    size = args.size or style_config.default_size
    return JobOptions(strength=style_config.default_strength, variants=style_config.variants, size=size,
                      steps=args.steps or style_config.steps.get(size, style_config.steps[style_config.default_size]),
                      strip_size=min(args.strip_size or style_config.strip_size, size),
                      strip_steps=args.strip_steps or style_config.strip_steps, seed=0)


def _print_table(rows, fresh, fresh_seconds: float, args, net, content, style) -> None:
    """The rows as a Markdown table and one JSON line (gpu_check.sh collects the JSON)."""
    weight = rows[0][1].style_weights[rows[0][1].chosen]
    size = max(rows[0][1].image_size)
    fresh_loss = referee_loss(net, content, style, fresh.images[0], fresh.style_weights[0])
    print("| request | seconds | result | referee loss | vs fresh | speckle |")
    print("|---|---:|---|---:|---:|---:|")
    table = []
    for name, row in rows:
        picture = Image.open(io.BytesIO(row.image)).convert("RGB")
        loss = referee_loss(net, content, style, picture, row.style_weights[row.chosen])
        same = abs(row.style_weights[row.chosen] - weight) < 1e-6 * weight and max(picture.size) == size
        versus = f"{loss / fresh_loss - 1:+.1%}" if same else "–"
        print(f"| {name} | {row.seconds:.1f} | {picture.size[0]}×{picture.size[1]}, strength "
              f"{row.strengths[row.chosen]} | {loss:.4g} | {versus} | {speckle(picture, style):.2f} |")
        table.append({"request": name, "seconds": round(row.seconds, 2), "size": max(picture.size),
                      "strength": row.strengths[row.chosen], "loss": loss, "speckle": speckle(picture, style)})
    print(f"| fresh stylize(), {args.fresh_steps} steps, hybrid | {fresh_seconds:.1f} | strength "
          f"{rows[0][1].strengths[rows[0][1].chosen]} | {fresh_loss:.4g} | – | {speckle(fresh.images[0], style):.2f} |")
    print(json.dumps({"default_request": args.pair, "device": args.device, "weights": args.weights,
                      "rows": table, "fresh": {"steps": args.fresh_steps, "seconds": round(fresh_seconds, 2),
                                               "loss": fresh_loss}}))


def main() -> None:
    args = _arguments()
    if args.weights != "random":
        outside.need(Path(args.weights))
    style_config = parse_config({"executor": {"device": args.device}}).style
    options = _job_options(args, style_config)
    size = options.size
    net = load_vgg19(args.weights, device=args.device)
    content_name, style_name = args.pair.split("+")
    content_bytes = (SHARED / "images" / "content" / content_name).read_bytes()
    style_bytes = (SHARED / "images" / "style" / style_name).read_bytes()
    content = Image.open(io.BytesIO(content_bytes)).convert("RGB")
    style = Image.open(io.BytesIO(style_bytes)).convert("RGB")
    print(f"# benchmarks/default_request.py, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, "
          f"{_machine(args.device)}, weights {Path(args.weights).name}, {content_name} + {style_name}")
    print(f"# defaults: result {options.size} px / {options.steps} steps, strip {options.variants} tiles at "
          f"{options.strip_size} px / {options.strip_steps} steps")
    rows = []
    done = run_job(Job("default", content_bytes, style_bytes, options), net, device=args.device)
    rows.append(("default request", done))
    painted = tuple(zip(done.strengths, done.tiles, strict=True))
    more = options.strength + strip_spacing(options.variants)
    redo = JobOptions(**{**options.__dict__, "strength": more})
    rows.append((f"More style (strength {more}, strip reused)",
                 run_job(Job("more", content_bytes, style_bytes, redo, painted=painted), net, device=args.device)))
    # The largest size offered; with --size (a dry run), twice that.
    largest = max(style_config.sizes) if args.size is None else 2 * size
    other = done.strengths[0]
    upscale = JobOptions(**{**options.__dict__, "strength": other, "size": largest,
                            "steps": style_config.steps.get(largest, options.steps)})
    rows.append((f"Upscale strength {other} to {largest} px",
                 run_job(Job("upscale", content_bytes, style_bytes, upscale, painted=painted), net, device=args.device)))
    started = time.perf_counter()
    fresh = stylize(content, style, net=net, size=options.size, strength=options.strength,
                    options=StylizeOptions(steps=args.fresh_steps, variants=1, optimizer="hybrid", seed=0,
                                           device=args.device))
    _print_table(rows, fresh, time.perf_counter() - started, args, net, content, style)
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / f"image.{done.image_ext}").write_bytes(done.image)
        (args.out / f"strip.{done.strip_ext}").write_bytes(done.strip)
        fresh.images[0].save(args.out / "fresh.png")


if __name__ == "__main__":
    main()
