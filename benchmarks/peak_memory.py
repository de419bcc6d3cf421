"""Peak memory and time per step of one stylize() strip per output size, without a baseline.

The largest job the bot runs is the strip of variants at the largest size; its peak memory is what must fit
(target on CUDA: 2048 px within 12 GiB). Each size runs once after a warm-up of every level, for ``--steps``
steps at most and no target, so the number is the optimisation's own and not a stop rule's. CUDA: peak
allocated and peak reserved by PyTorch's allocator; CPU: the process's peak RSS. The last line is JSON.

    .venv/bin/python benchmarks/peak_memory.py --device cuda --sizes 1024 2048 --weights PATH
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from PIL import Image  # noqa: E402
from speed import DEFAULT_CONTENT, DEFAULT_STYLE, PeakMemory, timed, warm_up_stylizer  # noqa: E402

from stylizer.options import StylizeOptions  # noqa: E402
from stylizer.transfer import stylize  # noqa: E402
from stylizer.weights import load_vgg19  # noqa: E402


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"cpu ({torch.get_num_threads()} threads)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--sizes", type=int, nargs="+", default=[1024, 2048])
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--variants", type=int, default=5)
    parser.add_argument("--weights", default="random", help="a VGG-19 state dict, or 'random'")
    parser.add_argument("--precision", default="auto", choices=("auto", "fp32", "bf16"))
    parser.add_argument("--limit-gib", type=float, default=12.0, help="the memory each size must stay within")
    parser.add_argument("--content", type=Path, default=DEFAULT_CONTENT)
    parser.add_argument("--style", type=Path, default=DEFAULT_STYLE)
    args = parser.parse_args()

    device = torch.device(args.device)
    net = load_vgg19(args.weights, device=device)
    # The loss weights change neither memory nor time; these are the ones each kind of weights is run with.
    content_weight, style_weight = (1e4, 1e8) if args.weights == "random" else (1.0, 1e5)
    content_image = Image.open(args.content).convert("RGB")
    style_image = Image.open(args.style).convert("RGB")
    memory = PeakMemory(device)
    options = {"style_weight": style_weight, "content_weight": content_weight, "device": device,
               "precision": args.precision}
    print(f"device {device_name(device)}; weights {args.weights}; {args.variants} variants; {args.steps} steps")
    print(f"{'size':>5} {'levels':<22} {'wall s':>7} {'s/step':>7} {'peak MiB':>9} {'reserved MiB':>12}  "
          f"within {args.limit_gib:g} GiB")
    rows = []
    for size in args.sizes:
        warm_up_stylizer(content_image, style_image, net=net, size=size, batch_sizes=(args.variants,), **options)
        run = timed(device, memory, lambda size=size: stylize(
            content_image, style_image, net=net, size=size,
            options=StylizeOptions(steps=args.steps, variants=args.variants, **options)))
        # CPU: RSS already counts what the allocator holds; there is no separate reservation.
        reserved = torch.cuda.max_memory_reserved(device) / 2**20 if device.type == "cuda" else None
        params = run.result.params
        row = {
            "size": size,
            "levels": params["levels"],
            "precision": params["precision"],
            "steps": params["steps_taken"],
            "wall_s": round(run.wall_s, 3),
            "optimise_s_per_step": round(
                sum(run.result.timings.get(level["stage"], 0.0) for level in params["levels"])
                / params["steps_taken"], 4),
            "peak_mib": round(run.peak_mib, 1),
            "reserved_mib": round(reserved, 1) if reserved is not None else None,
            "within_limit": max(run.peak_mib, reserved or 0.0) <= args.limit_gib * 1024,
        }
        rows.append(row)
        levels = "+".join(f"{level['steps']}@{level['side']}" for level in params["levels"])
        print(f"{size:>5} {levels:<22} {row['wall_s']:>7.2f} {row['optimise_s_per_step']:>7.3f} "
              f"{row['peak_mib']:>9.0f} {'-' if reserved is None else f'{reserved:.0f}':>12}  {row['within_limit']}",
              flush=True)
        if device.type == "cuda":
            torch.cuda.empty_cache()  # each size's reservation is its own
    print(json.dumps({"device": device_name(device), "weights": args.weights, "variants": args.variants,
                      "limit_gib": args.limit_gib, "rows": rows}))


if __name__ == "__main__":
    main()
