"""``python -m stylizer`` / ``stylize``: paint a photo in the style of one or more artworks."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

EPILOG = """\
examples:
  stylize photo.jpg starry_night.jpg -o out.png
      paint photo.jpg like the painting, 512 px, with the pretrained VGG-19 (downloaded once)
  stylize photo.jpg starry_night.jpg -o out.png --strip strip.png --variants 5
      also write a labelled strip of 5 style weights (x1/4 ... x4); out.png is the x1 one
  stylize photo.jpg monet.jpg klimt.jpg --style-blend 0.7 0.3 --preserve-colors -o out.png
      blend two styles' textures, keep the photo's colours
  stylize photo.jpg style.jpg --size 1024 --steps 500 --device cuda --seed 7 -o big.png
  stylize --download-weights
      fetch the VGG-19 weights into the torch cache (for machines that will run offline)
  stylize photo.jpg style.jpg --weights vgg19-dcbb9e9d.pth -o out.png
      use a local copy of torchvision's vgg19 weights

exit status: 0 done, 2 bad input (unreadable image, missing file, picture too thin for --size, unusable
weights, --device cuda without a GPU), 1 anything else.
"""

# Random VGG features are orders of magnitude smaller than pretrained ones; these balance content and style.
RANDOM_WEIGHTS_DEFAULTS = (1e4, 1e8)
PRETRAINED_DEFAULTS = (1.0, 1e6)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="stylize",
        description=__doc__.split(": ", 1)[1],
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("content", nargs="?", help="the photo to paint")
    parser.add_argument("styles", nargs="*", metavar="style", help="one or more style images")
    parser.add_argument(
        "-o",
        "--output",
        type=Path,
        default=Path("stylized.png"),
        help="where to write the chosen variant (default: %(default)s)",
    )
    parser.add_argument("--strip", type=Path, help="also write a labelled strip of every variant here")
    parser.add_argument(
        "--style-weight",
        type=float,
        help="style weight of the chosen variant (default 1e6; 1e8 with --weights random)",
    )
    parser.add_argument("--content-weight", type=float, help="default 1; 1e4 with --weights random")
    parser.add_argument("--tv-weight", type=float, default=0.0, help="total-variation smoothing (default 0)")
    parser.add_argument(
        "--variants",
        type=int,
        default=5,
        help="style weights painted together, spaced by powers of two (default %(default)s)",
    )
    parser.add_argument(
        "--size", type=int, default=512, help="longest side of the output (default %(default)s)"
    )
    parser.add_argument("--steps", type=int, default=300, help="optimisation steps (default %(default)s)")
    parser.add_argument("--seed", type=int, default=0, help="same seed, same device: same picture")
    parser.add_argument(
        "--preserve-colors",
        action="store_true",
        help="transfer texture only: the result keeps the photo's colours",
    )
    parser.add_argument(
        "--style-blend",
        type=float,
        nargs="+",
        metavar="SHARE",
        help="one share per style image (default: equal)",
    )
    parser.add_argument(
        "--style-scale",
        type=float,
        default=1.0,
        help="style image size relative to the output (default %(default)s)",
    )
    parser.add_argument("--init", choices=("content", "noise"), default="content", help="starting picture")
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    parser.add_argument(
        "--weights",
        default="imagenet",
        help="imagenet (download once, then cached), PATH to a vgg19 state dict, or random "
        "(for tests only: the result will not look painted)",
    )
    parser.add_argument(
        "--download-weights",
        action="store_true",
        help="download the imagenet weights into the cache and exit",
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)

    from stylizer.images import InvalidImage, check_paintable, load_image
    from stylizer.weights import WeightsUnavailable, load_vgg19, prefetch

    def bad_input(message: str) -> int:
        print(f"stylize: error: {message}", file=sys.stderr)
        return 2

    if args.download_weights:
        try:
            print(prefetch(progress=True))
        except WeightsUnavailable as error:
            return bad_input(str(error))
        return 0
    if args.content is None or not args.styles:
        parser.error("a content image and at least one style image are needed")
    if args.style_blend is not None and len(args.style_blend) != len(args.styles):
        parser.error(f"--style-blend needs one share per style image ({len(args.styles)})")
    if args.variants < 1 or args.steps < 1 or args.size < 16:
        parser.error("--variants and --steps must be at least 1, --size at least 16")

    if args.device == "cuda":
        import torch

        if not torch.cuda.is_available():
            return bad_input("CUDA was asked for but PyTorch sees no GPU; use --device cpu or auto")
    try:
        content = load_image(args.content)
        check_paintable(content, args.size, name=Path(args.content).name)
        styles = [load_image(path) for path in args.styles]
        for path, style in zip(args.styles, styles, strict=True):
            check_paintable(style, max(1, round(args.size * args.style_scale)), name=Path(path).name)
        net = load_vgg19(args.weights, progress=True)
    except (InvalidImage, WeightsUnavailable) as error:
        return bad_input(str(error))
    return _paint(args, content, styles, net, bad_input)


def _paint(args, content, styles, net, bad_input) -> int:
    from tqdm import tqdm

    from stylizer.strip import make_strip, variant_label
    from stylizer.transfer import Progress, stylize

    defaults = RANDOM_WEIGHTS_DEFAULTS if args.weights == "random" else PRETRAINED_DEFAULTS
    content_weight = args.content_weight if args.content_weight is not None else defaults[0]
    style_weight = args.style_weight if args.style_weight is not None else defaults[1]

    with tqdm(total=args.steps, unit="step", dynamic_ncols=True) as bar:

        def show(progress: Progress) -> None:
            bar.total = progress.total
            bar.set_description(progress.stage)
            bar.set_postfix(losses="/".join(f"{loss:.3g}" for loss in progress.losses))
            bar.update(progress.step - bar.n)

        result = stylize(
            content,
            styles,
            net=net,
            size=args.size,
            steps=args.steps,
            style_weight=style_weight,
            content_weight=content_weight,
            tv_weight=args.tv_weight,
            variants=args.variants,
            style_blend=args.style_blend,
            style_scale=args.style_scale,
            init=args.init,
            seed=args.seed,
            preserve_colors=args.preserve_colors,
            device=args.device,
            on_progress=show,
            progress_interval=0.2,
        )

    outputs = [(args.output, result.images[result.chosen])]
    if args.strip is not None:
        labels = [variant_label(weight, style_weight) for weight in result.style_weights]
        outputs.append((args.strip, make_strip(result.images, labels, content=content, style=styles[0])))
    for path, image in outputs:
        try:
            image.save(path)
        except (OSError, ValueError) as error:
            return bad_input(f"cannot write {path}: {error}")
    chosen = result.losses[result.chosen]
    print(
        f"wrote {', '.join(str(path) for path, _ in outputs)} in {result.timings['total']:.1f} s; "
        f"loss {chosen['total']:.4g} (content {chosen['content']:.4g}, style {chosen['style']:.4g}); "
        f"params {json.dumps(result.params)}"
    )
    return 0
