"""``python -m stylizer`` / ``stylize``: paint a photo in the style of one or more artworks."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from stylizer.defaults import CPU_DEFAULTS, GPU_DEFAULTS, RequestDefaults, defaults_for
from stylizer.images import MIN_PAINTABLE_SIDE
from stylizer.options import INITS, StylizeOptions
from stylizer.strength import DEFAULT_STRENGTH, MAX_STRENGTH, MAX_VARIANTS, MIN_STRENGTH

DEFAULTS = StylizeOptions()

EPILOG = """\
examples:
  stylize photo.jpg starry_night.jpg -o out.png
      paint photo.jpg like the painting with the pretrained VGG-19 (downloaded once): 512 px on a CPU,
      1024 px on a GPU, as the bot paints by default
  stylize photo.jpg starry_night.jpg -o out.png --strength 7
      more painting, less photo (1: the least painting ... 10: mostly painting; default 5)
  stylize photo.jpg starry_night.jpg -o out.png --strip strip.png --variants-dir tiles/
      the bot's default request: also a labelled strip of strengths 1, 3, 5, 7, 9 painted small (each tile
      also in tiles/01_strength_1.png ...); out.png is strength 5 grown from its tile
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
        help="strengths of the strip, spaced around --strength (default: 1, or "
        f"{DEFAULTS.variants} with --strip or --variants-dir)",
    )
    parser.add_argument("--variants-dir", type=Path, help="also write every tile of the strip here, "
                        "01_<label>.png ...")
    parser.add_argument("--size", type=int, help="longest side of the result (default: "
                        f"{CPU_DEFAULTS.default_size} on a CPU, {GPU_DEFAULTS.default_size} on a GPU)")
    parser.add_argument("--steps", type=int, help="the result's optimisation steps (default: the bot's for "
                        "the size and device)")
    parser.add_argument("--strip-size", type=int, help="longest side of the strip's tiles (default: "
                        f"{CPU_DEFAULTS.strip_size} on a CPU, {GPU_DEFAULTS.strip_size} on a GPU)")
    parser.add_argument("--strip-steps", type=int, help="the strip's optimisation steps (default: "
                        f"{CPU_DEFAULTS.strip_steps} on a CPU, {GPU_DEFAULTS.strip_steps} on a GPU)")
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


def _fill_defaults(args: argparse.Namespace, defaults: RequestDefaults) -> None:
    """What the bot paints by default on this device, for every size and step option not given."""
    if args.variants is None:
        args.variants = DEFAULTS.variants if args.strip is not None or args.variants_dir is not None else 1
    args.size = args.size or defaults.default_size
    if args.steps is None:
        args.steps = defaults.steps.get(args.size, defaults.steps[defaults.default_size])
    args.strip_size = min(args.strip_size or defaults.strip_size, args.size)
    args.strip_steps = args.strip_steps if args.strip_steps is not None else defaults.strip_steps


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
    import torch

    if args.device == "cuda" and not torch.cuda.is_available():
        return bad_input("CUDA was asked for but PyTorch sees no GPU; use --device cpu or auto")
    from stylizer.objective import resolve_device

    _fill_defaults(args, defaults_for(resolve_device(args.device).type))
    if (not 1 <= args.variants <= MAX_VARIANTS or min(args.steps, args.strip_steps) < 1
            or min(args.size, args.strip_size) < MIN_PAINTABLE_SIDE):
        parser.error(f"--variants must be 1..{MAX_VARIANTS}, --steps and --strip-steps at least 1, --size and "
                     f"--strip-size at least {MIN_PAINTABLE_SIDE}")
    try:
        content = load_image(args.content)
        check_paintable(content, args.strip_size, name=Path(args.content).name)
        if args.preset:
            args.styles = [_preset_path(args.preset)]
        styles = [load_image(path) for path in args.styles]
        for path, style in zip(args.styles, styles, strict=True):
            check_paintable(style, max(1, round(args.strip_size * args.style_scale)), name=Path(path).name)
        net = load_vgg19(args.weights, progress=True)
    except (InvalidImage, WeightsUnavailable, UnknownPreset) as error:
        return bad_input(str(error))
    return _paint(args, content, styles, net, bad_input)


def _paint(args, content, styles, net, bad_input) -> int:
    from tqdm import tqdm

    from stylizer.pipeline import RequestPlan, paint_request
    from stylizer.progress import Progress
    from stylizer.strength import strip_strengths
    from stylizer.timelapse import FRAME_SIDE, FrameRecorder

    options = StylizeOptions(
        style_weight=args.style_weight, content_weight=args.content_weight, tv_weight=args.tv_weight,
        style_blend=args.style_blend, style_scale=args.style_scale, init=args.init, seed=args.seed,
        preserve_colors=args.preserve_colors, device=args.device, progress_interval=0.2,
        preview_size=FRAME_SIDE if args.timelapse else None,
    )
    plan = RequestPlan(size=args.size, strip_size=args.strip_size, steps=args.steps, strip_steps=args.strip_steps)
    strengths = strip_strengths(args.strength, args.variants)
    recorder = FrameRecorder()
    with tqdm(total=args.steps + args.strip_steps, unit="step", dynamic_ncols=True) as bar:

        def show(progress: Progress) -> None:
            if progress.preview is not None:
                recorder.offer(progress.preview)
            bar.total = progress.total
            bar.set_description(progress.stage)
            bar.set_postfix(losses="/".join(f"{loss:.3g}" for loss in progress.losses))
            bar.update(progress.step - bar.n)

        painted = paint_request(content, styles, net=net, plan=plan, strength=args.strength, strengths=strengths,
                                options=options, on_progress=show)
    outputs = _outputs(args, painted, strengths, content, styles[0])
    if isinstance(outputs, str):
        return bad_input(outputs)
    for path, image in outputs:
        try:
            image.save(path)
        except (OSError, ValueError) as error:
            return bad_input(f"cannot write {path}: {error}")
    if args.timelapse is not None and not _wrote_timelapse(args.timelapse, recorder, outputs[0][1]):
        return bad_input(f"cannot write {args.timelapse}")
    written = [str(path) for path, _ in outputs] + ([str(args.timelapse)] if args.timelapse else [])
    result = painted.result
    seconds = result.timings["total"] + (painted.strip.timings["total"] if painted.strip is not None else 0.0)
    losses = result.losses[0]
    params = {**result.params, "strip": painted.strip.params if painted.strip is not None else None}
    print(
        f"wrote {', '.join(written)} in {seconds:.1f} s{_credit(args.preset)}; "
        f"loss {losses['total']:.4g} (content {losses['content']:.4g}, style {losses['style']:.4g}); "
        f"params {json.dumps(params)}"
    )
    return 0


def _outputs(args, painted, strengths, content, style):
    """(path, picture) of the result and of whatever else was asked for, or the line saying what failed."""
    from stylizer.strength import strength_label
    from stylizer.strip import make_strip, variant_label

    if args.style_weight is None:
        labels = [strength_label(strength) for strength in strengths]
    else:
        labels = [variant_label(weight, args.style_weight) for weight in painted.strip_weights]
    tiles = [painted.tiles[strength] for strength in strengths]
    outputs = [(args.output, painted.result.images[0])]
    if args.strip is not None:
        outputs.append((args.strip, make_strip(tiles, labels, content=content, style=style)))
    if args.variants_dir is not None:
        try:
            args.variants_dir.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            return f"cannot create {args.variants_dir}: {error}"
        for number, (label, image) in enumerate(zip(labels, tiles, strict=True), start=1):
            outputs.append((args.variants_dir / f"{number:02d}_{file_label(label)}.png", image))
    return outputs
