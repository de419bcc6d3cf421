"""The painter's resident memory over two dozen small jobs, with and without giving freed heap pages back to
the system after each job (stylizer.executor.local.give_back_freed_memory), each mode in a fresh process.

    python benchmarks/worker_rss.py [--jobs 24]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def one_mode(trim: bool, jobs: int) -> list[int]:
    import torch

    from stylizer.executor import Job, JobOptions
    from stylizer.executor.local import give_back_freed_memory
    from stylizer.executor.runner import job_outcome
    from stylizer.weights import load_vgg19

    torch.set_num_threads(2)
    net = load_vgg19("random")  # memory, not looks: random weights allocate exactly what real ones do
    images = REPO / "tests" / "images"
    content = (images / "content" / "chelsea.jpg").read_bytes()
    styles = sorted((images / "style").glob("*.jpg"))
    rss = []
    for i in range(jobs):
        options = JobOptions(size=(48, 64)[i % 2], steps=4, variants=5, seed=i)
        job_outcome(Job(job_id=str(i), content=content, style=styles[i % len(styles)].read_bytes(), options=options),
                    net, device="cpu")
        if trim:
            give_back_freed_memory()
        status = Path("/proc/self/status").read_text()
        rss.append(int(status.split("VmRSS:")[1].split()[0]) // 1024)
    return rss


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=24)
    parser.add_argument("--child", choices=["plain", "trim"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(one_mode(args.child == "trim", args.jobs)))
        return
    rows = {}
    for mode in ("plain", "trim"):
        out = subprocess.run([sys.executable, __file__, "--child", mode, "--jobs", str(args.jobs)], check=True,
                             capture_output=True, text=True, cwd=REPO).stdout
        rows[mode] = json.loads(out.strip().splitlines()[-1])
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), "unknown CPU")
    print(f"painter RSS (MiB) after each of {args.jobs} jobs at 48/64 px, 5 tiles, 4 steps; "
          f"{cpu}, {os.cpu_count()} cores, CPU only")
    print(f"{'mode':<6} {'job 1':>6} {'job 4':>6} {'job 8':>6} {'last':>6} {'max':>6}")
    for mode, rss in rows.items():
        print(f"{mode:<6} {rss[0]:>6} {rss[3]:>6} {rss[7]:>6} {rss[-1]:>6} {max(rss):>6}")


if __name__ == "__main__":
    sys.path.insert(0, str(REPO))
    main()
