"""One VGG-19 forward + backward to relu5_1 of one picture on the CPU: fp32, bf16 autocast, channels-last.

Stand-in ImageNet weights; the picture is random (the cost does not depend on it). Two warm-up passes, then the
mean of five.

    flock /tmp/cpu.lock .venv/bin/python benchmarks/vgg_pass.py
"""

from __future__ import annotations

import copy
import sys
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import outside  # noqa: E402

from stylizer.weights import load_vgg19  # noqa: E402


def one_pass(net, mode: str, x: torch.Tensor) -> None:
    picture = x if mode == "fp32" else x.contiguous(memory_format=torch.channels_last)
    if mode == "bf16 weights":
        features = net(picture.to(torch.bfloat16))
    else:
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=mode != "fp32"):
            features = net(picture)
    features.float().square().mean().backward()


def main() -> None:
    outside.need(outside.STAND_IN)
    net = load_vgg19(outside.STAND_IN)
    channels_last = copy.deepcopy(net).to(memory_format=torch.channels_last)
    bf16 = copy.deepcopy(net).to(torch.bfloat16).to(memory_format=torch.channels_last)
    print(f"{torch.get_num_threads()} threads, {torch.cpu.get_capabilities().get('cpu_name')}")
    for side in (128, 256):
        x = torch.rand(1, 3, side * 2 // 3, side, requires_grad=True)
        for name, model, mode in (("fp32", net, "fp32"), ("bf16 autocast", net, "autocast"),
                                  ("bf16 autocast, channels-last weights", channels_last, "autocast"),
                                  ("bf16 weights, channels-last", bf16, "bf16 weights")):
            for _ in range(2):
                one_pass(model, mode, x)
            started = time.perf_counter()
            for _ in range(5):
                one_pass(model, mode, x)
            print(f"{side} px: {name}: {(time.perf_counter() - started) / 5:.4f} s")


if __name__ == "__main__":
    main()
