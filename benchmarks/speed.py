"""Stylizer vs a baseline L-BFGS: time to reach the baseline's referee loss, one image and a strip.

Both run in this process on the same inputs with the same VGG weights (the referee's net's state dict is
loaded into the stylizer's net), and every output is scored by the referee of
../shared/bench/gatys_reference.py.

* weights: the shared stand-in (real ImageNet VGG-16 features in VGG-19's layout) unless ``--weights``
  names another state dict or ``random``; content 1 / style 1e5 on real features (1e4 / 1e8 on random ones),
  both raw (the referee's objective, no strength calibration), so the losses compare.
* baseline: ``--baseline tutorial`` (the referee file's ``baseline``: torch.optim.LBFGS as the tutorial runs
  it) or ``line-search`` (the same with strong-Wolfe line search, the careful user's), ``--steps``
  evaluations (300 by default).
* single: the baseline vs ``stylize`` with one variant, stopped as soon as its objective is at or below the
  baseline's referee loss (``target_loss``), ``--steps`` at most.
* strip: N baselines one after another, each with its own style weight (factors 1/4 … 4), vs one ``stylize``
  call with N variants, each stopped at its baseline's loss.

The losses printed are those of the delivered 8-bit images, whatever the stop rule aimed for. The last line is
one JSON object. Every row gives its seconds per picture-evaluation (one VGG forward + backward of one picture;
the stylizer's coarse levels are cheaper ones), the load average around it and the share of the cores the process
got (CPU time / wall time / threads); when that share changed by more than 30 % between rows a warning says so,
since the rows then did not run on an equally busy machine.

    flock /tmp/cpu.lock .venv/bin/python benchmarks/speed.py --size 256
    flock /tmp/cpu.lock .venv/bin/python benchmarks/speed.py --size 256 --baseline line-search --skip-strip
    .venv/bin/python benchmarks/speed.py --device cuda --size 512 --weights vgg19-dcbb9e9d.pth
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))
import outside  # noqa: E402

# ../shared, or STYLIZER_SHARED: a copy elsewhere (benchmarks/gpu_check.sh --prepare makes one).
SHARED = outside.shared()
sys.path.insert(0, str(REPO))

referee_module = outside.referee()
from PIL import Image  # noqa: E402

from stylizer.objective import pil_to_tensor  # noqa: E402
from stylizer.options import DEFAULT_SCHEDULE, StylizeOptions, variant_factors_for  # noqa: E402
from stylizer.transfer import stylize  # noqa: E402
from stylizer.weights import load_vgg19  # noqa: E402

DEFAULT_CONTENT = SHARED / "images" / "content" / "chelsea.jpg"
DEFAULT_STYLE = SHARED / "images" / "style" / "vangogh_wheat_field_with_cypresses.jpg"
STAND_IN = SHARED / "weights" / "vgg16_imagenet_as_vgg19.pth"
LOAD_CHANGE_WARNING = 0.3


class PeakMemory:
    """CUDA: max_memory_allocated. CPU: the process's peak RSS (VmHWM), reset via /proc/self/clear_refs."""

    def __init__(self, device: torch.device):
        self.device = device

    def reset(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(self.device)
            return
        try:
            Path("/proc/self/clear_refs").write_text("5")
        except OSError:
            pass  # not Linux: the figure is then the peak since the process started

    def peak_mib(self) -> float:
        if self.device.type == "cuda":
            return torch.cuda.max_memory_allocated(self.device) / 2**20
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
        import resource

        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def synchronise(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


@dataclass
class Run:
    result: object
    wall_s: float
    # On a shared CPU machine other people's jobs stretch wall time; CPU time stays close to the work done.
    cpu_s: float
    peak_mib: float
    load: float = 0.0  # one-minute load average, mean of before and after


def cpu_share(run: Run) -> float:
    """The share of this process's threads' time it actually ran: about 1 when nothing else competed."""
    return run.cpu_s / max(run.wall_s * torch.get_num_threads(), 1e-9)


def load_average() -> float:
    try:
        return os.getloadavg()[0]
    except OSError:
        return 0.0


def timed(device: torch.device, memory: PeakMemory, work) -> Run:
    memory.reset()
    synchronise(device)
    load_before = load_average()
    start, cpu_start = time.perf_counter(), time.process_time()
    result = work()
    synchronise(device)
    wall, cpu = time.perf_counter() - start, time.process_time() - cpu_start
    return Run(result, wall, cpu, memory.peak_mib(), (load_before + load_average()) / 2)


def warm_up_stylizer(content_image, style_image, *, net, size: int, batch_sizes, **options) -> None:
    """One step at every level of the default schedule, for every batch size a timed run will use.

    cuDNN builds a plan per input shape on its first use, and each level and batch size is a shape of its own;
    an unreachable-looking target (any loss is below 1e30) also runs the fp32 freeze check at full size."""
    one_step_each = [(scale, 1) for scale, _ in DEFAULT_SCHEDULE]
    for variants in sorted(set(batch_sizes)):
        stylize(content_image, style_image, net=net, size=size,
                options=StylizeOptions(steps=len(one_step_each), schedule=one_step_each, variants=variants,
                                       target_loss=1e30, **options))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=__doc__.split("\n\n", 1)[1],
    )
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--content", type=Path, default=DEFAULT_CONTENT)
    parser.add_argument("--style", type=Path, default=DEFAULT_STYLE)
    parser.add_argument("--steps", type=int, default=300, help="baseline evaluations; the stylizer's cap")
    parser.add_argument("--weights", default=str(STAND_IN),
                        help="a vgg19 state dict (default: the shared stand-in), or 'random'")
    parser.add_argument("--baseline", choices=("tutorial", "line-search"), default="tutorial")
    parser.add_argument("--content-weight", type=float, help="default 1 (1e4 with --weights random)")
    parser.add_argument("--style-weight", type=float, help="default 1e5 (1e8 with --weights random)")
    parser.add_argument("--variants", type=int, default=5)
    parser.add_argument("--precision", default="auto", choices=("auto", "fp32", "bf16"))
    parser.add_argument(
        "--margin",
        type=float,
        default=0.005,
        help="the stylizer aims this fraction below the baseline's loss, so that rounding to "
        "8 bits does not push it back above",
    )
    parser.add_argument("--skip-strip", action="store_true")
    parser.add_argument("--optimizer", choices=("adam", "lbfgs"), help="default: the stylizer's")
    args = parser.parse_args()

    device = torch.device(args.device)
    random_weights = args.weights == "random"
    # Random VGG features are tiny: weights that balance on real ones leave L-BFGS stuck there (see the
    # referee's docstring); on the stand-in, 1 / 1e5 balances and 1e6 stalls the tutorial's L-BFGS.
    content_weight, style_weight = (1e4, 1e8) if random_weights else (1.0, 1e5)
    content_weight = args.content_weight if args.content_weight is not None else content_weight
    style_weight = args.style_weight if args.style_weight is not None else style_weight
    line_search = args.baseline == "line-search"

    def run_baseline(referee):
        return referee_module.baseline(referee, content, args.steps, line_search=line_search)

    ref_net = referee_module.vgg19(None if random_weights else args.weights, 0, str(device))
    net = load_vgg19("random", device=device)
    net.load_state_dict(ref_net.state_dict())
    content = referee_module.load_image(str(args.content), args.size, str(device))
    style = referee_module.load_image(str(args.style), args.size, str(device))
    content_image = Image.open(args.content).convert("RGB")
    style_image = Image.open(args.style).convert("RGB")
    device_name = (
        torch.cuda.get_device_name(device)
        if device.type == "cuda"
        else f"cpu ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)"
    )
    print(
        f"device {device_name}; size {args.size}; weights {args.weights}; content_weight {content_weight:g}; "
        f"style_weight {style_weight:g}; baseline {args.baseline}, {args.steps} evaluations"
    )
    memory = PeakMemory(device)

    def run_stylizer(variants: int, targets: list[float]):
        options = StylizeOptions(
            steps=args.steps, style_weight=style_weight, content_weight=content_weight, variants=variants,
            **({"optimizer": args.optimizer} if args.optimizer else {}),
            target_loss=[t * (1 - args.margin) for t in targets], device=device, precision=args.precision,
        )
        return stylize(content_image, style_image, net=net, size=args.size, options=options)

    def delivered(result) -> torch.Tensor:
        return torch.cat([pil_to_tensor(image, device) for image in result.images])

    # Warm-up: first calls pay for allocator growth and kernel selection; neither side should carry that.
    warm_referee = referee_module.Referee(ref_net, content, style, style_weight, content_weight)
    referee_module.baseline(warm_referee, content, 2)
    warm_up_stylizer(
        content_image,
        style_image,
        net=net,
        size=args.size,
        style_weight=style_weight,
        content_weight=content_weight,
        batch_sizes=(1, args.variants),
        device=device,
        precision=args.precision,
    )

    rows = []
    referee = referee_module.Referee(ref_net, content, style, style_weight, content_weight)
    baseline = timed(device, memory, lambda: run_baseline(referee))
    baseline_loss = referee.score(baseline.result[0])[0]
    mine = timed(device, memory, lambda: run_stylizer(1, [baseline_loss]))
    stylizer_loss = referee.score(delivered(mine.result))[0]
    rows.append(("baseline", 1, args.steps, baseline, [baseline_loss]))
    rows.append(("stylizer", 1, mine.result.params["evaluations"], mine, [stylizer_loss]))
    summary = {
        "device": device_name,
        "size": args.size,
        "variants": args.variants,
        "weights": args.weights,
        "content_weight": content_weight,
        "style_weight": style_weight,
        "steps": args.steps,
        "baseline": args.baseline,
        "optimizer": mine.result.params["optimizer"],
        "precision": mine.result.params["precision"],
        "levels": mine.result.params["levels"],
        "baseline_s": round(baseline.wall_s, 3),
        "stylizer_s": round(mine.wall_s, 3),
        "ratio_single": round(baseline.wall_s / mine.wall_s, 3),
        "baseline_cpu_s": round(baseline.cpu_s, 3),
        "stylizer_cpu_s": round(mine.cpu_s, 3),
        "ratio_single_cpu": round(baseline.cpu_s / mine.cpu_s, 3),
        "baseline_loss": baseline_loss,
        "stylizer_loss": stylizer_loss,
        "stylizer_steps": mine.result.params["steps_taken"],
        "baseline_peak_mib": round(baseline.peak_mib, 1),
        "stylizer_peak_mib": round(mine.peak_mib, 1),
    }
    every_loss_ok = stylizer_loss <= baseline_loss

    if not args.skip_strip:
        weights = [style_weight * factor for factor in variant_factors_for(args.variants)]
        strip_referee = referee_module.Referee(ref_net, content, style, weights, content_weight)
        baselines, baseline_losses = [], []
        for weight in weights:
            one = referee_module.Referee(ref_net, content, style, weight, content_weight)
            baselines.append(
                timed(device, memory, lambda one=one: run_baseline(one))
            )
            baseline_losses.append(one.score(baselines[-1].result[0])[0])
        together = Run(
            None,
            sum(run.wall_s for run in baselines),
            sum(run.cpu_s for run in baselines),
            max(run.peak_mib for run in baselines),
            sum(run.load for run in baselines) / len(baselines),
        )
        strip = timed(device, memory, lambda: run_stylizer(args.variants, baseline_losses))
        strip_losses = strip_referee.score(delivered(strip.result))
        rows.append(
            (
                f"baseline x{args.variants}",
                args.variants,
                args.steps * args.variants,
                together,
                baseline_losses,
            )
        )
        rows.append(
            ("stylizer strip", args.variants, strip.result.params["evaluations"], strip, strip_losses)
        )
        summary.update(
            {
                "strip_baseline_s": round(together.wall_s, 3),
                "strip_s": round(strip.wall_s, 3),
                "ratio_strip": round(together.wall_s / strip.wall_s, 3),
                "strip_baseline_cpu_s": round(together.cpu_s, 3),
                "strip_cpu_s": round(strip.cpu_s, 3),
                "ratio_strip_cpu": round(together.cpu_s / strip.cpu_s, 3),
                "strip_baseline_loss": baseline_losses,
                "strip_loss": strip_losses,
                "strip_style_weights": weights,
                "strip_steps": strip.result.params["steps_taken"],
                "strip_baseline_peak_mib": round(together.peak_mib, 1),
                "strip_peak_mib": round(strip.peak_mib, 1),
            }
        )
        every_loss_ok = every_loss_ok and all(
            ours <= theirs for ours, theirs in zip(strip_losses, baseline_losses, strict=True)
        )
    summary["at_or_below_baseline_loss"] = every_loss_ok

    print(
        f"{'run':<16} {'images':>6} {'evals':>6} {'wall s':>8} {'CPU s':>8} {'s/eval':>7} {'load':>5} {'cores':>5} "
        f"{'peak MiB':>9}  referee loss per image"
    )
    for name, images, evaluations, run, losses in rows:
        print(
            f"{name:<16} {images:>6} {evaluations:>6} {run.wall_s:>8.2f} {run.cpu_s:>8.2f} "
            f"{run.wall_s / max(evaluations, 1):>7.3f} {run.load:>5.2f} {cpu_share(run):>5.0%} {run.peak_mib:>9.0f}  "
            + " ".join(f"{loss:.4g}" for loss in losses)
        )
    summary["rows"] = [
        {"run": name, "images": images, "evaluations": evaluations, "wall_s": round(run.wall_s, 3),
         "cpu_s": round(run.cpu_s, 3), "s_per_eval": round(run.wall_s / max(evaluations, 1), 4),
         "load": round(run.load, 2)}
        for name, images, evaluations, run, _ in rows
    ]
    # The load average lags by a minute and counts this process's own threads, so a row that starts on an idle
    # machine reads lower than the next on the same machine (1.49 against 1.94 for two rows that both had 98 %
    # of the cores). The share of the cores this process got says directly whether someone else took some.
    shares = [cpu_share(run) for _, _, _, run, _ in rows]
    summary["cpu_share"] = [round(share, 3) for share in shares]
    if device.type == "cpu" and min(shares) < (1 - LOAD_CHANGE_WARNING) * max(shares):
        print(f"WARNING: this process got {min(shares):.0%} to {max(shares):.0%} of the cores between rows (a "
              f"change of more than {LOAD_CHANGE_WARNING:.0%}): the rows did not run on an equally busy machine; "
              "rerun before quoting the ratios")
        summary["load_warning"] = True
    print(
        f"ratio single {summary['ratio_single']:.2f}x (CPU time {summary['ratio_single_cpu']:.2f}x)"
        + (
            f", strip {summary['ratio_strip']:.2f}x (CPU time {summary['ratio_strip_cpu']:.2f}x)"
            if "ratio_strip" in summary
            else ""
        )
        + f"; every stylizer loss at or below its baseline's: {every_loss_ok}"
    )
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
