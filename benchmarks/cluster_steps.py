"""How long each step of running on a two-node Ray cluster takes on this machine, and of losing a node.

The same layout as tests/e2e/test_ray_cluster_bot.py, with RayExecutor in this process as the driver: a head
without the `painter` resource, a second node with it (so the replica must go there), one short job, a longer
one whose node is SIGKILLed at its first progress event, the node started again, the job's second attempt, and
a last short job. Prints one table (seconds, wall clock) and cleans every Ray process it started up.

    flock /tmp/cpu.lock .venv/bin/python benchmarks/cluster_steps.py
"""

from __future__ import annotations

import asyncio
import os
import platform
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from stylizer.executor import JobDone, JobOptions, JobProgress, JobStarted  # noqa: E402
from stylizer.executor.base import Job  # noqa: E402
from stylizer.executor.ray_serve import RayExecutor  # noqa: E402
from tests.ray_cluster import LocalCluster  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
import outside  # noqa: E402

IMAGES = outside.shared() / "images"
PAINTER = {"painter": 1.0}


def job(job_id: str, size: int, steps: int) -> Job:
    options = JobOptions(style_weight=1e8, content_weight=1e4, variants=2, size=size, steps=steps, seed=5)
    return Job(job_id=job_id, content=(IMAGES / "content" / "coffee.jpg").read_bytes(),
               style=(IMAGES / "style" / "turner_shipwreck.jpg").read_bytes(), options=options)


async def timed(rows: list, what: str, step):
    began = time.monotonic()
    result = await step
    rows.append((what, time.monotonic() - began))
    return result


async def run(rows: list, cluster: LocalCluster) -> None:
    await timed(rows, "ray start --head (until it reports the runtime started)", asyncio.to_thread(cluster.start_head))
    node = await timed(rows, "ray start --address=HEAD (second node, painter: 1)",
                       asyncio.to_thread(cluster.add_node, "painter", resources=PAINTER))
    os.environ.update(cluster.env)
    executor = RayExecutor(address=cluster.address, weights="random", device="cpu", num_cpus=1,
                           resources=PAINTER, progress_interval_s=0.1, health_interval_s=1.0)
    await timed(rows, "executor start(): connect, Serve, 1 replica on the second node", executor.start())

    async def finish(handle) -> list:
        return [event async for event in handle.events()]

    async def short(name: str) -> None:
        done = (await finish(await executor.submit(job(name, 48, 6))))[-1]
        assert isinstance(done, JobDone) and done.params["ray_node_id"] == cluster.nodes[-1].node_id, done

    await timed(rows, "job 48 px, 6 steps, 2 variants", short("first"))
    handle = await executor.submit(job("lost", 64, 60))
    events = handle.events()
    async for event in events:
        if isinstance(event, JobProgress):
            break
    killed = time.monotonic()
    await timed(rows, "SIGKILL every process of the second node", asyncio.to_thread(node.kill))
    back = await timed(rows, "ray start --address=HEAD again (a new node)", asyncio.to_thread(cluster.restart, node))
    async for event in events:
        if isinstance(event, JobStarted):
            rows.append(("node killed -> the job's attempt 2 began on the new node", time.monotonic() - killed))
            break
    rest = [event async for event in events]
    assert isinstance(rest[-1], JobDone) and rest[-1].params["ray_node_id"] == back.node_id, rest[-1]
    rows.append(("node killed -> the job (64 px, 60 steps) delivered", time.monotonic() - killed))
    await timed(rows, "job 48 px, 6 steps, on the new node", short("after"))
    await timed(rows, "executor close() (deletes the Serve app)", executor.close())


def main() -> None:
    rows: list[tuple[str, float]] = []
    cluster = LocalCluster()
    try:
        asyncio.run(run(rows, cluster))
    finally:
        began = time.monotonic()
        cluster.stop()
        rows.append(("stop: SIGKILL both nodes' processes", time.monotonic() - began))
    print(f"Ray cluster steps on {platform.node()} ({os.cpu_count()} CPUs, CPU only, random weights)")
    print(f"| {'step':<60} | {'s':>6} |\n| {'-' * 60} | {'-' * 6} |")
    for what, seconds in rows:
        print(f"| {what:<60} | {seconds:6.1f} |")
    print(f"left over: {len(cluster.leftovers())} processes")


if __name__ == "__main__":
    main()
