"""benchmarks/gpu_check.sh: the GPU run's script, proved on CPU by its dry run from a prepared copy of ../shared."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from tests import outside

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "gpu_check.sh"
SECTIONS = [
    "environment",
    "cuda-tests",
    "speed-random-bf16",
    "peak-memory-random-bf16",
    "speed-real-bf16",
    "default-request-real",
    "speed-random-tf32",
    "speed-real-tf32",
    "peak-memory-real-bf16",
    "json",
    "status",
]


def run(*args: str, timeout: int) -> subprocess.CompletedProcess:
    return subprocess.run([str(SCRIPT), *args], capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, "PYTHON": sys.executable})


@pytest.mark.slow
def test_the_dry_run_from_a_prepared_copy_fills_every_section(tmp_path):
    outside.shared()
    shared = tmp_path / "carried" / "shared"
    prepared = run("--prepare", "--shared", str(shared), timeout=120)
    assert prepared.returncode == 0, prepared.stderr
    assert not (shared / "weights" / "vgg16_imagenet_as_vgg19.pth").exists()  # only the cut-down copy

    results = tmp_path / "out" / "gpu_check.txt"
    done = run("--dry-run", "--shared", str(shared), "--out", str(results), timeout=300)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    text = results.read_text()
    assert re.findall(r"^=== (.+) ===$", text, re.MULTILINE) == SECTIONS
    assert text.endswith("every step passed\n")
    assert f"shared {shared}" in text  # the copy, not ../shared, was read

    summary = [json.loads(line) for line in text.split("=== json ===\n")[1].split("=== status ===")[0].splitlines()]
    speeds = [line for line in summary if "ratio_single" in line]
    # speed.py's JSON has rows too (one per timed run); peak_memory.py's is the one with a memory limit.
    peaks = [line for line in summary if "limit_gib" in line]
    assert sorted(line["weights"].endswith(".pth") for line in speeds) == [False, False, True, True]
    assert all("ratio_strip" in line and line["variants"] == 2 for line in speeds)
    assert [[row["size"] for row in line["rows"]] for line in peaks] == [[96, 256], [96, 256]]
    assert all(row["within_limit"] for line in peaks for row in line["rows"])
    [request] = [line for line in summary if "default_request" in line]
    assert [row["request"] for row in request["rows"]][0] == "default request" and request["device"] == "cpu"
    assert request["rows"][0]["size"] == 64 and request["fresh"]["loss"] > 0
    status = text.split("=== status ===\n")[1].splitlines()[:-1]
    assert [line.split(":")[0] for line in status] == SECTIONS[:-2]
    assert all(": rc 0," in line for line in status)


@pytest.mark.skipif(torch.cuda.is_available(), reason="shows what a machine without CUDA says")
def test_without_cuda_the_real_run_refuses_in_words_and_points_to_the_dry_run(tmp_path):
    done = run("--out", str(tmp_path / "gpu_check.txt"), timeout=60)
    assert done.returncode == 2
    assert "sees no CUDA device; --dry-run runs the same steps on CPU" in done.stderr
