"""Optimisers on real ImageNet features: the objective after every evaluation, and the divergence case.

``curves``: for each optimiser, one ``stylize()`` call paints the strengths asked for as variants of one
batch on the stand-in weights, one level (no coarse pass, so every evaluation is at the output size), and
records each variant's objective after every evaluation (``Progress.losses``: the objective of the best
point so far when the StepGuard is on; the VGG pass in the precision the stylizer picks). The final
referee loss of the delivered 8-bit picture is recorded too. ``divergence``: projected L-BFGS on the raw
objective (content 1, style 1e4) with and without the StepGuard. ``--plot`` draws the curves.

    flock /tmp/cpu.lock .venv/bin/python benchmarks/optimisers.py curves --size 128 --steps 150 \\
        --out benchmarks/results/optimisers_128.json
    .venv/bin/python benchmarks/optimisers.py plot benchmarks/results/optimisers_128_chelsea.json \\
        benchmarks/results/optimisers_128_rocket.json benchmarks/results/optimisers_256_chelsea.json docs/optimisers.png
"""

from __future__ import annotations

import argparse
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
from stylizer.objective import pil_to_tensor  # noqa: E402
from stylizer.options import StylizeOptions  # noqa: E402
from stylizer.transfer import stylize  # noqa: E402
from stylizer.weights import load_vgg19  # noqa: E402

STAND_IN = SHARED / "weights" / "vgg16_imagenet_as_vgg19.pth"
# name -> stylize() options
OPTIMISERS = {
    "adam": {"optimizer": "adam"},
    "adam, cosine decay": {"optimizer": "adam", "final_rate": 0.02},
    "adam, no guard": {"optimizer": "adam", "safeguard": False},
    "hybrid": {"optimizer": "hybrid"},
    "lbfgs": {"optimizer": "lbfgs"},
    "lbfgs, no guard": {"optimizer": "lbfgs", "safeguard": False},
}


def pair(content: str, style: str) -> tuple[Image.Image, Image.Image]:
    return (Image.open(SHARED / "images" / "content" / content).convert("RGB"),
            Image.open(SHARED / "images" / "style" / style).convert("RGB"))


def curve(net, content, style, size, steps, strengths, options) -> dict:
    losses: list[list[float]] = []
    started = time.perf_counter()
    settings = StylizeOptions(steps=steps, schedule=((1.0, 1.0),), seed=0, device="cpu", progress_interval=0,
                              strengths=strengths, **options)
    result = stylize(content, style, net=net, size=size, strength=strengths[len(strengths) // 2], options=settings,
                     on_progress=lambda p: losses.append(p.losses))
    return {"options": options, "losses": losses, "final": [row["total"] for row in result.losses],
            "seconds": round(time.perf_counter() - started, 2), "undone_steps": result.params["undone_steps"],
            "style_weights": result.style_weights, "precision": result.params["precision"]}


def curves(args) -> dict:
    net = load_vgg19(str(STAND_IN))
    content, style = pair(args.content, args.style)
    runs = {}
    for name in args.optimisers:
        runs[name] = curve(net, content, style, args.size, args.steps, args.strengths, OPTIMISERS[name])
        print(f"{name:18} final {[round(v, 2) for v in runs[name]['final']]}  {runs[name]['seconds']} s  "
              f"undone {runs[name]['undone_steps']}", flush=True)
    return {"kind": "curves", "size": args.size, "steps": args.steps, "strengths": args.strengths,
            "content": args.content, "style": args.style, "runs": runs}


def divergence(args) -> dict:
    net = load_vgg19(str(STAND_IN))
    content, style = pair(args.content, args.style)
    rows = []
    for size in args.sizes:
        for guarded in (False, True):
            photo = pil_to_tensor(resize_longest(content, size), "cpu")
            painting = pil_to_tensor(resize_longest(style, size), "cpu")
            start = referee_module.Referee(net, photo, painting, 1e4, 1.0).score(photo)[0]
            settings = StylizeOptions(steps=args.steps, style_weight=1e4, variants=1, optimizer="lbfgs", device="cpu",
                                      precision=args.precision, safeguard=guarded)
            result = stylize(content, style, net=net, size=size, options=settings)
            row = {"size": size, "safeguard": guarded, "steps": args.steps, "start": start,
                   "final": result.losses[0]["total"],
                   "undone_steps": result.params["undone_steps"], "levels": result.params["levels"],
                   "precision": result.params["precision"], "seconds": round(result.timings["total"], 2)}
            rows.append(row)
            print(f"{size} px guard {guarded}: start {start:.1f} end {row['final']:.1f} undone {row['undone_steps']} {row['seconds']} s", flush=True)
    return {"kind": "divergence", "rows": rows}


def plot(args) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    data = [json.loads(Path(path).read_text()) for path in args.results]
    fig, axes = plt.subplots(1, len(data), figsize=(5.5 * len(data), 4.2), squeeze=False)
    for axis, one in zip(axes[0], data, strict=True):
        for name, run in one["runs"].items():
            per_eval = list(zip(*run["losses"], strict=True))
            for strength, values in zip(one["strengths"], per_eval, strict=True):
                axis.plot(range(1, len(values) + 1), values, label=f"{name}, strength {strength}",
                          linestyle=":" if "no guard" in name else "--" if "decay" in name else "-",
                          color={"adam": "C0", "lbfgs": "C1", "hybrid": "C2"}[run["options"]["optimizer"]],
                          alpha=0.4 + 0.6 * (strength == one["strengths"][len(one["strengths"]) // 2]))
        axis.set_yscale("log")
        axis.set_xlabel("evaluations (one VGG forward + backward per picture)")
        axis.set_ylabel("objective (calibrated weights)")
        axis.set_title(f"{Path(one['content']).stem} + {Path(one['style']).stem.split('_')[0]}, {one['size']} px")
        axis.legend(fontsize=6)
    fig.suptitle("stand-in VGG-16 ImageNet features (Simonyan & Zisserman, CC BY 4.0), 2-core CPU", fontsize=9)
    fig.tight_layout()
    fig.savefig(args.png, dpi=110)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    for name in ("curves", "divergence"):
        sub = commands.add_parser(name)
        sub.add_argument("--content", default="chelsea.jpg")
        sub.add_argument("--style", default="vangogh_wheat_field_with_cypresses.jpg")
        sub.add_argument("--steps", type=int, default=100)
        sub.add_argument("--out", type=Path)
    commands.choices["curves"].add_argument("--size", type=int, default=128)
    commands.choices["curves"].add_argument("--strengths", type=lambda t: [int(s) for s in t.split(",")],
                                            default=[1, 5, 10])
    commands.choices["curves"].add_argument("--optimisers", nargs="+", default=list(OPTIMISERS),
                                            choices=list(OPTIMISERS))
    commands.choices["divergence"].add_argument("--sizes", type=int, nargs="+", default=[192, 96, 64])
    commands.choices["divergence"].add_argument("--precision", default="fp32")
    plotting = commands.add_parser("plot")
    plotting.add_argument("results", nargs="+")
    plotting.add_argument("png")
    args = parser.parse_args()
    if args.command == "plot":
        plot(args)
        return
    print(f"cpu {platform.processor() or platform.machine()}, {torch.get_num_threads()} threads")
    summary = curves(args) if args.command == "curves" else divergence(args)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(summary))


if __name__ == "__main__":
    main()
