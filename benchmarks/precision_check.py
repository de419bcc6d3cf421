"""bf16 autocast + channels-last against fp32 on this CPU: time and the referee loss of the delivered picture.

Paints one shared pair twice with the same seed, strength and steps: ``precision="fp32"`` and ``"auto"``
(bf16 where the CPU has native bf16). Both losses are the fp32 scores of the delivered 8-bit pictures, so they
compare. With DIR, both pictures are saved there.

    flock /tmp/cpu.lock .venv/bin/python benchmarks/precision_check.py --size 256 --steps 150 --out-dir DIR
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
from pathlib import Path

import torch
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))
import outside  # noqa: E402

SHARED = outside.shared()
sys.path.insert(0, str(REPO))

from stylizer.objective import cpu_has_native_bf16  # noqa: E402
from stylizer.options import StylizeOptions  # noqa: E402
from stylizer.transfer import stylize  # noqa: E402
from stylizer.weights import load_vgg19  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--steps", type=int, default=150)
    parser.add_argument("--strength", type=int, default=5)
    parser.add_argument("--content", default="chelsea.jpg")
    parser.add_argument("--style", default="vangogh_wheat_field_with_cypresses.jpg")
    parser.add_argument("--out-dir", type=Path)
    args = parser.parse_args()
    net = load_vgg19(SHARED / "weights" / "vgg16_imagenet_as_vgg19.pth")
    content = Image.open(SHARED / "images" / "content" / args.content).convert("RGB")
    style = Image.open(SHARED / "images" / "style" / args.style).convert("RGB")
    rows = {}
    for precision in ("fp32", "auto"):
        settings = StylizeOptions(steps=args.steps, variants=1, seed=0, device="cpu", precision=precision)
        result = stylize(content, style, net=net, size=args.size, strength=args.strength, options=settings)
        rows[precision] = {"precision": result.params["precision"], "seconds": round(result.timings["total"], 2),
                           "loss": result.losses[0]["total"], "levels": result.params["levels"]}
        print(f"{precision:5} -> {result.params['precision']}: {result.timings['total']:.1f} s, "
              f"loss {result.losses[0]['total']:.4g}", flush=True)
        if args.out_dir:
            args.out_dir.mkdir(parents=True, exist_ok=True)
            result.images[0].save(args.out_dir / f"{Path(args.content).stem}_{precision}_{args.size}.png")
    print(json.dumps({"cpu": f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} threads",
                      "native_bf16": cpu_has_native_bf16(), "size": args.size, "steps": args.steps,
                      "strength": args.strength, "rows": rows}))


if __name__ == "__main__":
    main()
