"""What a strength does on every shared content x style pair: the relative content error of each strength.

For every pair of ../shared/images (4 photos x 4 paintings) one ``stylize()`` call paints the strengths
asked for as the variants of one batch (they share the VGG passes), with the calibrated weights
(``stylizer.transfer.Balance``). Each delivered picture x is scored against the photo c with the referee's
network at relu4_2: relative content error = ||F(x) - F(c)||^2 / ||F(c)||^2 (0: the photo untouched; about 1:
as far from the photo's features as the photo is from zero).

A greyscale photo gains the painting's colours, which that error counts; for such a photo the table also
gives the error of the picture's luminance alone (colour ignored), in brackets.

    flock /tmp/cpu.lock .venv/bin/python benchmarks/strength_table.py --size 128 --steps 100 \\
        --out benchmarks/results/strength_128.json
    # the default request's strip (tiles at 128 px calibrated at the 512 px result), and its results:
    flock /tmp/cpu.lock .venv/bin/python benchmarks/strength_table.py --size 128 --steps 60 --optimizer hybrid \\
        --fine-only --probe --balance-size 512 --strengths 1,5,10 --out benchmarks/results/strength_strip_128.json
    flock /tmp/cpu.lock .venv/bin/python benchmarks/strength_table.py ... --grow 512 --grow-steps 100
    .venv/bin/python benchmarks/strength_table.py --markdown benchmarks/results/strength_128.json
"""

from __future__ import annotations

import argparse
import dataclasses
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
sys.path.insert(0, str(REPO))

referee_module = outside.referee()

from stylizer.images import resize_longest  # noqa: E402
from stylizer.objective import pil_to_tensor, total_variation  # noqa: E402
from stylizer.options import DEFAULT_SCHEDULE, StylizeOptions  # noqa: E402
from stylizer.pipeline import RESULT_OPTIMIZER, RequestPlan, probe_shift  # noqa: E402
from stylizer.transfer import stylize  # noqa: E402
from stylizer.weights import load_vgg19  # noqa: E402

STAND_IN = SHARED / "weights" / "vgg16_imagenet_as_vgg19.pth"
CONTENTS = ("chelsea.jpg", "coffee.jpg", "rocket.jpg", "camera.png")
STYLES = (
    "vangogh_wheat_field_with_cypresses.jpg",
    "turner_shipwreck.jpg",
    "matisse_woman_with_a_hat.jpg",
    "gauguin_tahiti_1896.jpg",
)


def is_grey(image: Image.Image) -> bool:
    if image.mode in ("L", "LA", "I", "I;16"):
        return True
    red, green, blue = image.convert("RGB").split()
    return red.tobytes() == green.tobytes() == blue.tobytes()


def relative_content_errors(net, photo: Image.Image, pictures: list[Image.Image]) -> list[float]:
    """||F(x) - F(c)||^2 / ||F(c)||^2 at relu4_2, with the referee's features."""
    target_image = pil_to_tensor(photo, "cpu")
    referee = referee_module.Referee(net, target_image, target_image, 1.0)
    target = referee.content_target
    with torch.no_grad():
        features = referee.features(torch.cat([pil_to_tensor(p, "cpu") for p in pictures]))
    error = (features[referee_module.CONTENT_LAYER] - target).square().flatten(1).mean(1)
    return (error / target.square().mean()).tolist()


def paint_pair(net, content_name: str, style_name: str, args) -> dict:
    content = Image.open(SHARED / "images" / "content" / content_name)
    grey = is_grey(content)
    content = content.convert("RGB")
    style = Image.open(SHARED / "images" / "style" / style_name).convert("RGB")
    started = time.perf_counter()
    settings = StylizeOptions(steps=args.steps, strengths=args.strengths, optimizer=args.optimizer,
                              precision=args.precision, seed=0, device="cpu", balance_size=args.balance_size,
                              schedule=((1.0, 1.0),) if args.fine_only else DEFAULT_SCHEDULE)
    if args.probe:
        # As the pipeline does before its strip (stylizer.pipeline.probe_shift).
        plan = RequestPlan(size=args.balance_size or args.size, strip_size=args.size, steps=1, strip_steps=1)
        settings = dataclasses.replace(settings, strength_shift=probe_shift(content, style, net=net, plan=plan,
                                                                            options=settings))
    result = stylize(content, style, net=net, size=args.size, strength=args.strengths[len(args.strengths) // 2],
                     options=settings)
    if args.grow:
        # Each tile grown to the result's size as the pipeline grows the chosen one (stylizer.pipeline).
        plan = RequestPlan(size=args.grow, strip_size=args.size, steps=args.grow_steps, strip_steps=args.steps)
        result = stylize(content, style, net=net, size=args.grow, strength=args.strengths[len(args.strengths) // 2],
                         options=StylizeOptions(steps=plan.steps, strengths=args.strengths, seed=0, device="cpu",
                                                optimizer=RESULT_OPTIMIZER, schedule=plan.result_schedule()),
                         init_images=result.images)
    seconds = time.perf_counter() - started
    photo = resize_longest(content, args.grow or args.size)
    errors = relative_content_errors(net, photo, result.images)
    row = {
        "content": content_name,
        "style": style_name,
        "grey": grey,
        "strengths": result.strengths,
        "style_weights": result.style_weights,
        "balance": result.params["balance"],
        "relative_content_error": errors,
        "losses": [losses["total"] for losses in result.losses],
        "seconds": round(seconds, 2),
        "precision": result.params["precision"],
        "strength_shift": settings.strength_shift,
        # Mean squared neighbour difference over the painting's own at the same size (1: as speckled as it).
        "speckle": [float(total_variation(pil_to_tensor(p, "cpu")) / total_variation(
            pil_to_tensor(resize_longest(style, max(p.size)), "cpu"))) for p in result.images],
    }
    if grey:
        luminance = [picture.convert("L").convert("RGB") for picture in result.images]
        row["relative_content_error_luminance"] = relative_content_errors(net, photo, luminance)
    if args.images:
        args.images.mkdir(parents=True, exist_ok=True)
        stem = f"{Path(content_name).stem}_{Path(style_name).stem.split('_')[0]}"
        for strength, picture in zip(result.strengths, result.images, strict=True):
            picture.save(args.images / f"{stem}_s{strength:02d}.png")
    return row


def markdown(path: Path) -> str:
    """The table of a saved run, as in docs/benchmarks.md."""
    summary = json.loads(path.read_text())
    strengths = summary["rows"][0]["strengths"]
    lines = ["| photo | painting | " + " | ".join(f"strength {s}" for s in strengths) + " |",
             "|---|---|" + "---:|" * len(strengths)]
    for row in summary["rows"]:
        errors = row["relative_content_error"]
        cells = [f"{e:.2f}" for e in errors]
        if row["grey"]:
            cells = [f"{e:.2f} ({g:.2f})" for e, g in zip(errors, row["relative_content_error_luminance"], strict=True)]
        lines.append(f"| {Path(row['content']).stem} | {Path(row['style']).stem.split('_')[0]} | " + " | ".join(cells)
                     + " |")
    columns = list(zip(*(row["relative_content_error"] for row in summary["rows"]), strict=True))
    lines.append("| **range** | | " + " | ".join(f"{min(c):.2f}–{max(c):.2f}" for c in columns) + " |")
    return "\n".join(lines)


def main() -> None:
    if len(sys.argv) == 3 and sys.argv[1] == "--markdown":
        print(markdown(Path(sys.argv[2])))
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--strengths", type=lambda text: [int(s) for s in text.split(",")], default=[1, 3, 5, 7, 10])
    parser.add_argument("--optimizer", default="adam")
    parser.add_argument("--precision", default="auto", choices=("auto", "fp32", "bf16"))
    parser.add_argument("--contents", nargs="+", default=CONTENTS)
    parser.add_argument("--styles", nargs="+", default=STYLES)
    parser.add_argument("--balance-size", type=int, help="calibrate the strengths at this size (the pipeline's "
                        "strip: the result's size)")
    parser.add_argument("--probe", action="store_true", help="shift the strengths as the pipeline's probe says")
    parser.add_argument("--fine-only", action="store_true", help="one level at --size (the pipeline's strip)")
    parser.add_argument("--grow", type=int, help="grow every tile to this size as the pipeline grows its result, "
                        "and score that")
    parser.add_argument("--grow-steps", type=int, default=100)
    parser.add_argument("--out", type=Path, help="write the rows as JSON here")
    parser.add_argument("--images", type=Path, help="save every picture here")
    args = parser.parse_args()
    net = load_vgg19(str(STAND_IN))
    rows = []
    print(f"cpu {platform.processor() or platform.machine()}, {torch.get_num_threads()} threads; size {args.size}; "
          f"steps {args.steps}; strengths {args.strengths}")
    for content_name in args.contents:
        for style_name in args.styles:
            row = paint_pair(net, content_name, style_name, args)
            rows.append(row)
            cells = [f"{e:.2f}" for e in row["relative_content_error"]]
            if row["grey"]:
                cells = [f"{e:.2f} ({g:.2f})" for e, g in zip(row["relative_content_error"],
                                                             row["relative_content_error_luminance"], strict=True)]
            print(f"{content_name:12} {style_name[:14]:14} {' '.join(cells)}  {row['seconds']:.1f} s", flush=True)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        summary = {"size": args.size, "steps": args.steps, "optimizer": args.optimizer, "rows": rows,
                   "balance_size": args.balance_size, "fine_only": args.fine_only, "grow": args.grow,
                   "grow_steps": args.grow_steps if args.grow else None,
                   "cpu": f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} threads"}
        args.out.write_text(json.dumps(summary, indent=1))


if __name__ == "__main__":
    main()
