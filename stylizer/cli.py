"""``python -m stylizer`` / ``stylize``: paint a photo in the style of one or more artworks."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from stylizer.images import MIN_PAINTABLE_SIDE
from stylizer.options import DEFAULT_SIZE, INITS, StylizeOptions
from stylizer.strength import DEFAULT_STRENGTH, MAX_STRENGTH, MAX_VARIANTS, MIN_STRENGTH

DEFAULTS = StylizeOptions()

EPILOG = """\
examples:
  stylize photo.jpg starry_night.jpg -o out.png
      paint photo.jpg like the painting, 512 px, with the pretrained VGG-19 (downloaded once)
  stylize photo.jpg starry_night.jpg -o out.png --strength 7
      more painting, less photo (1: the least painting ... 10: mostly painting; default 5)
  stylize photo.jpg starry_night.jpg -o out.png --strip strip.png --variants 5
      also write a labelled strip of strengths 3..7 around the chosen one; out.png is strength 5
  stylize photo.jpg starry_night.jpg --variants 5 --variants-dir variants/
      every variant as its own PNG: variants/01_strength_3.png ... in strip order
  stylize photo.jpg monet.jpg klimt.jpg --style-blend 0.7 0.3 --preserve-colors -o out.png
      blend two styles' textures, keep the photo's colours
  stylize photo.jpg style.jpg --size 1024 --steps 500 --device cuda --seed 7 -o big.png
  stylize photo.jpg --preset klimt_the_kiss -o kiss.png --timelapse kiss.webp
      paint with a shipped public-domain painting (list them with --list-presets); also write an animated
      WebP of the picture forming
  stylize --download-weights
      fetch the VGG-19 weights into the torch cache (for machines that will run offline)
  stylize photo.jpg style.jpg --weights vgg19-dcbb9e9d.pth -o out.png
      use a local copy of torchvision's vgg19 weights

exit status: 0 done, 2 bad input (unreadable image, missing file, picture too thin for --size, unusable
weights, --device cuda without a GPU), 1 anything else.
"""

# A file on disk has no upload limit; this only keeps a runaway animation from filling it.
TIMELAPSE_MAX_BYTES = 64 * 1024 * 1024


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="stylize",
        description=__doc__.split(": ", 1)[1],
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("content", nargs="?", help="the photo to paint")
    parser.add_argument("styles", nargs="*", metavar="style", help="one or more style images (or --preset)")
    _add_preset_arguments(parser)
    parser.add_argument(
        "-o",
        "--output",
        type=Path,
        default=Path("stylized.png"),
        help="where to write the chosen variant (default: %(default)s)",
    )
    parser.add_argument("--strip", type=Path, help="also write a labelled strip of every variant here")
    parser.add_argument(
        "--strength",
        type=int,
        default=DEFAULT_STRENGTH,
        choices=range(MIN_STRENGTH, MAX_STRENGTH + 1),
        metavar=f"{MIN_STRENGTH}..{MAX_STRENGTH}",
        help="how much painting: 1 the least, 5 balanced, 10 mostly painting; calibrated for every pair of "
        "pictures (default %(default)s)",
    )
    _add_expert_options(parser)
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


def _add_expert_options(parser: argparse.ArgumentParser) -> None:
    """The StylizeOptions a user of the command line may change; their defaults are the library's."""
    parser.add_argument(
        "--style-weight",
        type=float,
        help="for experts: the raw Gatys style weight of the chosen variant, uncalibrated (replaces "
        "--strength; variants are x1/4 ... x4 of it)",
    )
    parser.add_argument("--content-weight", type=float, default=DEFAULTS.content_weight, help="default %(default)s")
    parser.add_argument("--tv-weight", type=float, default=DEFAULTS.tv_weight,
                        help="total-variation smoothing (default %(default)s)")
    parser.add_argument(
        "--variants",
        type=int,
        default=DEFAULTS.variants,
        help="neighbouring strengths painted together (each doubles the style weight) (default %(default)s)",
    )
    parser.add_argument("--variants-dir", type=Path, help="also write every variant here, 01_<label>.png ...")
    parser.add_argument(
        "--size", type=int, default=DEFAULT_SIZE, help="longest side of the output (default %(default)s)"
    )
    parser.add_argument("--steps", type=int, default=DEFAULTS.steps, help="optimisation steps (default %(default)s)")
    parser.add_argument("--seed", type=int, default=DEFAULTS.seed, help="same seed, same device: same picture")
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
        default=DEFAULTS.style_scale,
        help="style image size relative to the output (default %(default)s)",
    )
    parser.add_argument("--init", choices=INITS, default=DEFAULTS.init, help="starting picture")
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), default=DEFAULTS.device)


def _add_preset_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--preset", metavar="NAME",
                        help="paint with a shipped painting instead of a style image (see --list-presets)")
    parser.add_argument("--list-presets", action="store_true", help="list the shipped paintings and exit")
    parser.add_argument("--timelapse", type=Path, metavar="FILE.webp",
                        help="also write an animated WebP of the chosen strength forming, ending on the result")


def file_label(label: str) -> str:
    """A strip label as a file name's part: "Strength 3" -> "strength_3", "×0.5 (5e+05)" -> "x0.5_5e+05"."""
    text = label.replace("×", "x").lower()
    return "_".join("".join(c if c.isalnum() or c in ".+-" else " " for c in text).split())


def _preset_list() -> str:
    from stylizer.presets import all_presets

    width = max(len(preset.name) for preset in all_presets())
    return "\n".join(f"{preset.name:<{width}}  {preset.credit}" for preset in all_presets())


def _wrote_timelapse(path: Path, recorder, result) -> bool:
    from stylizer.timelapse import encode_timelapse

    try:
        path.write_bytes(encode_timelapse(recorder.frames, result, max_bytes=TIMELAPSE_MAX_BYTES))
    except OSError:
        return False
    return True


def _credit(preset: str | None) -> str:
    from stylizer.presets import get_preset

    return f" in the style of {get_preset(preset).credit} (public domain)" if preset else ""


def _preset_path(name: str) -> Path:
    from stylizer.presets import get_preset

    return get_preset(name).path


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)

    from stylizer.images import InvalidImage, check_paintable, load_image
    from stylizer.presets import UnknownPreset
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
    if args.list_presets:
        print(_preset_list())
        return 0
    if args.content is None or bool(args.styles) == bool(args.preset):
        parser.error("a content image and either style images or --preset NAME are needed")
    if args.timelapse is not None and args.timelapse.suffix.lower() != ".webp":
        parser.error("--timelapse writes an animated WebP: give a file ending in .webp")
    if args.style_blend is not None and len(args.style_blend) != len(args.styles):
        parser.error(f"--style-blend needs one share per style image ({len(args.styles)})")
    if not 1 <= args.variants <= MAX_VARIANTS or args.steps < 1 or args.size < MIN_PAINTABLE_SIDE:
        parser.error(f"--variants must be 1..{MAX_VARIANTS}, --steps at least 1, --size at least {MIN_PAINTABLE_SIDE}")

    if args.device == "cuda":
        import torch

        if not torch.cuda.is_available():
            return bad_input("CUDA was asked for but PyTorch sees no GPU; use --device cpu or auto")
    try:
        content = load_image(args.content)
        check_paintable(content, args.size, name=Path(args.content).name)
        if args.preset:
            args.styles = [_preset_path(args.preset)]
        styles = [load_image(path) for path in args.styles]
        for path, style in zip(args.styles, styles, strict=True):
            check_paintable(style, max(1, round(args.size * args.style_scale)), name=Path(path).name)
        net = load_vgg19(args.weights, progress=True)
    except (InvalidImage, WeightsUnavailable, UnknownPreset) as error:
        return bad_input(str(error))
    return _paint(args, content, styles, net, bad_input)


def _paint(args, content, styles, net, bad_input) -> int:
    from tqdm import tqdm

    from stylizer.progress import Progress
    from stylizer.strength import strength_label
    from stylizer.strip import make_strip, variant_label
    from stylizer.timelapse import FRAME_SIDE, FrameRecorder
    from stylizer.transfer import stylize

    options = StylizeOptions(
        steps=args.steps, variants=args.variants, style_weight=args.style_weight,
        content_weight=args.content_weight, tv_weight=args.tv_weight, style_blend=args.style_blend,
        style_scale=args.style_scale, init=args.init, seed=args.seed, preserve_colors=args.preserve_colors,
        device=args.device, progress_interval=0.2, preview_size=FRAME_SIDE if args.timelapse else None,
    )

    recorder = FrameRecorder()
    with tqdm(total=args.steps, unit="step", dynamic_ncols=True) as bar:

        def show(progress: Progress) -> None:
            if progress.preview is not None:
                recorder.offer(progress.preview)
            bar.total = progress.total
            bar.set_description(progress.stage)
            bar.set_postfix(losses="/".join(f"{loss:.3g}" for loss in progress.losses))
            bar.update(progress.step - bar.n)

        result = stylize(content, styles, net=net, size=args.size, strength=args.strength, options=options,
                         on_progress=show)

    if result.strengths is not None:
        labels = [strength_label(strength) for strength in result.strengths]
    else:
        labels = [variant_label(weight, args.style_weight) for weight in result.style_weights]
    outputs = [(args.output, result.images[result.chosen])]
    if args.strip is not None:
        outputs.append((args.strip, make_strip(result.images, labels, content=content, style=styles[0])))
    if args.variants_dir is not None:
        try:
            args.variants_dir.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            return bad_input(f"cannot create {args.variants_dir}: {error}")
        for number, (label, image) in enumerate(zip(labels, result.images, strict=True), start=1):
            outputs.append((args.variants_dir / f"{number:02d}_{file_label(label)}.png", image))
    for path, image in outputs:
        try:
            image.save(path)
        except (OSError, ValueError) as error:
            return bad_input(f"cannot write {path}: {error}")
    if args.timelapse is not None and not _wrote_timelapse(args.timelapse, recorder, outputs[0][1]):
        return bad_input(f"cannot write {args.timelapse}")
    written = [str(path) for path, _ in outputs] + ([str(args.timelapse)] if args.timelapse else [])
    chosen = result.losses[result.chosen]
    print(
        f"wrote {', '.join(written)} in {result.timings['total']:.1f} s{_credit(args.preset)}; "
        f"loss {chosen['total']:.4g} (content {chosen['content']:.4g}, style {chosen['style']:.4g}); "
        f"params {json.dumps(result.params)}"
    )
    return 0
