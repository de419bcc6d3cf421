"""The executor contract (stylizer/executor/base.py), run against every executor kind.

One executor per kind serves the whole module: starting a worker costs seconds. Each test leaves it idle.
Tests for what only LocalExecutor promises (round-robin order, its own start/close/restart behaviour) are
at the end and say so.
"""

from __future__ import annotations

import asyncio
import io
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import pytest_asyncio
from PIL import Image

from stylizer.executor import (
    ExecutorUnavailable,
    Job,
    JobDone,
    JobFailed,
    JobOptions,
    JobProgress,
    JobQueued,
    JobStarted,
    QueueFull,
)
from stylizer.executor.local import LocalExecutor
from tests.executor_factories import make_executor

pytestmark = pytest.mark.asyncio(loop_scope="module")

IMAGES = Path(__file__).resolve().parent / "images"
CONTENT = (IMAGES / "content" / "chelsea.jpg").read_bytes()
STYLE = (IMAGES / "style" / "vangogh_wheat_field_with_cypresses.jpg").read_bytes()
MAX_QUEUE = 4
# Enough steps that a job is still running whenever a test acts on it; such jobs always end cancelled.
ENDLESS = 1_000_000
# A job killed right after its first step still has these to go; short enough to then finish quickly.
KILLABLE_STEPS = 20
EVENT_TIMEOUT_S = 120


def make_job(job_id: str, *, steps: int = 6, size: int = 48, variants: int = 2, owner: int = 0, strength: int = 5,
             **job_fields):
    options = JobOptions(
        strength=strength, style_weight=1e8 * 2.0 ** (strength - 5), content_weight=1e4, variants=variants,
        size=size, steps=steps, strip_steps=job_fields.pop("strip_steps", 5), seed=job_fields.pop("seed", 3)
    )
    return Job(job_id=job_id, content=CONTENT, style=STYLE, options=options, owner=owner, **job_fields)


async def next_event(stream):
    async with asyncio.timeout(EVENT_TIMEOUT_S):
        return await anext(stream)


async def collect(handle) -> list:
    async with asyncio.timeout(EVENT_TIMEOUT_S):
        return [event async for event in handle.events()]


async def wait_for_progress(stream) -> list:
    """Events up to and including the first JobProgress: the job is then painting in the worker."""
    seen = []
    while not seen or not isinstance(seen[-1], JobProgress):
        seen.append(await next_event(stream))
        assert not isinstance(seen[-1], JobDone | JobFailed), seen
    return seen


def decode(data: bytes, ext: str) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    assert image.format == {"png": "PNG", "jpg": "JPEG"}[ext]
    image.load()
    return image


@pytest.fixture(scope="module", params=["local", pytest.param("ray", marks=pytest.mark.ray)])
def executor_kind(request) -> str:
    return request.param


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def served(executor_kind):
    """(kind, started executor, kill_worker)."""
    executor, kill_worker = make_executor(executor_kind, max_queue=MAX_QUEUE, progress_interval_s=0.05)
    await executor.start()
    yield executor_kind, executor, kill_worker
    await executor.close()


async def test_job_streams_queued_started_progress_done_with_decodable_images(served):
    _, executor, _ = served
    handle = await executor.submit(make_job("events", size=64, variants=3, steps=8, seed=11))
    events = await collect(handle)

    assert isinstance(events[0], JobQueued) and events[0].position == 1
    assert events[1] == JobStarted(attempt=1)
    progress = events[2:-1]
    assert progress and all(isinstance(event, JobProgress) for event in progress)
    assert all(0 <= event.step <= event.total for event in progress)
    done = events[-1]
    assert isinstance(done, JobDone)

    image = decode(done.image, done.image_ext)
    assert image.size == done.image_size
    assert max(image.size) == 64  # the photo is larger: it is painted at the requested size
    strip = decode(done.strip, done.strip_ext)
    assert strip.size == done.strip_size
    assert len(done.style_weights) == 3 and len(set(done.style_weights)) == 3
    assert 0 <= done.chosen < 3
    assert done.params["seed"] == 11 and done.params["steps"] == 8
    assert done.seconds > 0
    assert executor.queued == 0


async def test_a_redo_takes_the_painted_tiles_as_they_are_and_paints_only_the_missing_strength(served):
    _, executor, _ = served
    fresh = await collect(await executor.submit(make_job("source", variants=3, steps=10)))
    source = fresh[-1]
    assert isinstance(source, JobDone) and source.strengths == (3, 5, 7)
    assert [decode(tile, "png").size for tile in source.tiles] == [source.image_size] * 3  # 48 px: strip = result

    painted = tuple(zip(source.strengths, source.tiles, strict=True))
    more = await collect(await executor.submit(make_job("more", variants=3, steps=10, strength=7, painted=painted)))
    redo = more[-1]
    assert isinstance(redo, JobDone) and redo.strengths == (5, 7, 9)
    assert redo.reused == (5, 7) and redo.tiles[:2] == source.tiles[1:]
    # The new tile is warm-started with fewer steps than a fresh strip's.
    totals = [max(event.total for event in events if isinstance(event, JobProgress)) for events in (fresh, more)]
    assert totals == [5 + 10, 4 + 10]

    variant = (await collect(await executor.submit(
        make_job("variant", variants=1, size=64, steps=10, strength=4, painted=painted))))[-1]
    # A strength the strip never showed starts from its nearest painted one (3 and 5 tie: the lower).
    assert isinstance(variant, JobDone) and variant.reused == () and variant.params["warm_from"] == {"4": 3}
    assert max(decode(variant.tiles[0], "png").size) == 64 and max(variant.image_size) == 64


async def test_two_jobs_submitted_together_both_finish(served):
    _, executor, _ = served
    handles = await asyncio.gather(*(executor.submit(make_job(f"pair-{i}")) for i in range(2)))
    results = await asyncio.gather(*(collect(handle) for handle in handles))
    assert [type(events[-1]) for events in results] == [JobDone, JobDone]


async def test_cancelling_a_running_job_ends_it_and_the_executor_keeps_serving(served):
    _, executor, _ = served
    handle = await executor.submit(make_job("endless", steps=ENDLESS))
    stream = handle.events()
    await wait_for_progress(stream)
    await handle.cancel()
    rest = [event async for event in stream]
    assert isinstance(rest[-1], JobFailed) and rest[-1].kind == "cancelled"
    assert executor.queued == 0

    after = await collect(await executor.submit(make_job("after-cancel")))
    assert isinstance(after[-1], JobDone)


async def test_cancelling_a_queued_job_removes_it_without_starting_it(served):
    _, executor, _ = served
    running = await executor.submit(make_job("blocker", steps=ENDLESS))
    queued = await executor.submit(make_job("waiting"))
    assert executor.queued == 2
    await queued.cancel()
    events = await collect(queued)
    assert events[0] == JobQueued(position=1)
    assert not any(isinstance(event, JobStarted) for event in events)
    assert isinstance(events[-1], JobFailed) and events[-1].kind == "cancelled"
    assert executor.queued == 1
    await running.cancel()
    assert (await collect(running))[-1].kind == "cancelled"


async def test_invalid_image_fails_readably_and_the_executor_keeps_serving(served):
    _, executor, _ = served
    bad = make_job("bad", content_name="coffee.txt")
    bad = Job(**{**bad.__dict__, "content": b"this is a text file, not a photo"})
    events = await collect(await executor.submit(bad))
    failed = events[-1]
    assert isinstance(failed, JobFailed) and failed.kind == "invalid_image"
    assert "coffee.txt" in failed.reason

    good = await collect(await executor.submit(make_job("good-after-bad")))
    assert isinstance(good[-1], JobDone)


async def test_a_job_whose_worker_is_killed_is_retried_and_finishes(served):
    _, executor, kill_worker = served
    victim = await executor.submit(make_job("victim", steps=KILLABLE_STEPS, size=32))
    behind = await executor.submit(make_job("behind", size=32))
    stream = victim.events()
    await wait_for_progress(stream)
    kill_worker()
    rest = [event async for event in stream]
    assert JobStarted(attempt=2) in rest
    assert isinstance(rest[-1], JobDone)
    assert isinstance((await collect(behind))[-1], JobDone)


async def test_a_job_that_kills_its_worker_twice_fails_as_crashed(served):
    _, executor, kill_worker = served
    handle = await executor.submit(make_job("cursed", steps=ENDLESS))
    stream = handle.events()
    await wait_for_progress(stream)
    kill_worker()
    retried = await wait_for_progress(stream)
    assert JobStarted(attempt=2) in retried
    kill_worker()
    rest = [event async for event in stream]
    assert isinstance(rest[-1], JobFailed) and rest[-1].kind == "crashed"
    assert "crashed" in rest[-1].reason

    after = await collect(await executor.submit(make_job("after-crashes")))
    assert isinstance(after[-1], JobDone)


async def test_a_full_queue_refuses_jobs_until_one_leaves(served):
    _, executor, _ = served
    handles = [await executor.submit(make_job(f"fill-{i}", steps=ENDLESS)) for i in range(MAX_QUEUE)]
    with pytest.raises(QueueFull, match="queue is full"):
        await executor.submit(make_job("one-too-many"))
    await handles[-1].cancel()
    handles[-1] = await executor.submit(make_job("fits-again", steps=ENDLESS))
    for handle in handles:
        await handle.cancel()
    for handle in handles:
        assert (await collect(handle))[-1].kind == "cancelled"
    assert executor.queued == 0


async def test_a_job_running_past_its_timeout_fails_as_timeout(served):
    _, executor, _ = served
    events = await collect(await executor.submit(make_job("slow", steps=ENDLESS, timeout_s=1.5)))
    assert any(isinstance(event, JobStarted) for event in events)
    failed = events[-1]
    assert isinstance(failed, JobFailed) and failed.kind == "timeout"
    assert "1.5 s" in failed.reason


# LocalExecutor specifics: the Ray executor schedules and supervises through Ray Serve instead.


@pytest.mark.parametrize("executor_kind", ["local"], indirect=True)
async def test_local_round_robin_lets_a_second_owner_overtake_a_long_queue(served):
    _, executor, _ = served
    started = []

    async def follow(handle):
        events = []
        async for event in handle.events():
            events.append(event)
            if isinstance(event, JobStarted):
                started.append(handle.job_id)
        return events

    alice = [await executor.submit(make_job(f"alice-{i}", owner=1, steps=4, size=32)) for i in range(3)]
    bob = await executor.submit(make_job("bob", owner=2, steps=4, size=32))
    async with asyncio.timeout(EVENT_TIMEOUT_S):
        results = await asyncio.gather(*(follow(handle) for handle in [*alice, bob]))

    assert started == ["alice-0", "bob", "alice-1", "alice-2"]
    queued = [[event.position for event in events if isinstance(event, JobQueued)] for events in results]
    # alice-0 starts at once; bob's arrival pushes alice's waiting jobs back by one, then they move up.
    assert queued == [[1], [1, 2, 1], [2, 3, 2, 1], [1]]
    assert all(isinstance(events[-1], JobDone) for events in results)


@pytest.mark.parametrize("executor_kind", ["local"], indirect=True)
async def test_local_cancel_stops_the_job_without_killing_the_worker(served):
    _, executor, _ = served
    pid = executor.worker_pid
    handle = await executor.submit(make_job("polite", steps=ENDLESS))
    stream = handle.events()
    await wait_for_progress(stream)
    await handle.cancel()
    assert [event async for event in stream][-1].kind == "cancelled"
    assert executor.worker_pid == pid


@pytest_asyncio.fixture(loop_scope="module")
async def own_local_executor():
    """A LocalExecutor of the test's own, for tests that break or shut it down."""
    executors = []

    def build(**settings):
        executor = LocalExecutor(**({"weights": "random", "device": "cpu", "progress_interval_s": 0.05} | settings))
        executors.append(executor)
        return executor

    yield build
    for executor in executors:
        await executor.close()


async def test_local_start_reports_weights_that_cannot_be_loaded(own_local_executor, tmp_path):
    executor = own_local_executor(weights=str(tmp_path / "missing-vgg19.pth"))
    with pytest.raises(ExecutorUnavailable, match="missing-vgg19.pth"):
        await executor.start()
    with pytest.raises(ExecutorUnavailable):
        await executor.submit(make_job("never"))


async def test_local_frozen_worker_is_killed_after_the_grace_period_and_replaced(own_local_executor):
    executor = own_local_executor(cancel_grace_s=1.0)
    await executor.start()
    handle = await executor.submit(make_job("frozen", steps=ENDLESS))
    stream = handle.events()
    await wait_for_progress(stream)
    frozen_pid = executor.worker_pid
    os.kill(frozen_pid, signal.SIGSTOP)  # a worker stuck where it never checks for cancellation
    await handle.cancel()
    assert [event async for event in stream][-1].kind == "cancelled"

    after = await collect(await executor.submit(make_job("after-freeze")))
    assert isinstance(after[-1], JobDone)
    assert executor.worker_pid not in (None, frozen_pid)


async def test_local_close_ends_every_job_and_refuses_new_ones(own_local_executor):
    executor = own_local_executor()
    await executor.start()
    pid = executor.worker_pid
    handles = [await executor.submit(make_job(f"doomed-{i}", steps=ENDLESS)) for i in range(3)]
    await wait_for_progress(handles[0].events())
    await executor.close()
    await executor.close()
    for handle in handles:
        failed = (await collect(handle))[-1]
        assert isinstance(failed, JobFailed) and failed.kind == "unavailable"
        assert "shutting down" in failed.reason
    assert executor.worker_pid is None
    with pytest.raises(OSError):
        os.kill(pid, 0)
    with pytest.raises(ExecutorUnavailable):
        await executor.submit(make_job("too-late"))


ORPHAN_SCRIPT = """
import asyncio, os, signal
from stylizer.executor.local import LocalExecutor

async def main():
    executor = LocalExecutor(weights="random", device="cpu")
    await executor.start()
    print(executor.worker_pid, flush=True)
    os.kill(os.getpid(), signal.SIGKILL)  # the bot dies without closing anything

asyncio.run(main())
"""


def process_has_exited(pid: int) -> bool:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return True
    return "\nState:\tZ" in status  # exited; only its parent (now init) has not collected it yet


async def test_local_worker_exits_when_the_bot_dies_without_closing(tmp_path):
    output, log = tmp_path / "bot.out", tmp_path / "bot.log"
    with output.open("w") as stdout, log.open("w") as stderr:
        # Files, not pipes: a worker that outlived the bot would hold a pipe open and hang the test.
        bot = await asyncio.to_thread(subprocess.run, [sys.executable, "-c", ORPHAN_SCRIPT], stdout=stdout,
                                      stderr=stderr, stdin=subprocess.DEVNULL, timeout=120,
                                      cwd=Path(__file__).resolve().parents[1])
    assert bot.returncode == -signal.SIGKILL, log.read_text()
    worker_pid = int(output.read_text().split()[0])
    deadline = time.monotonic() + 30
    while not process_has_exited(worker_pid) and time.monotonic() < deadline:
        await asyncio.sleep(0.2)
    assert process_has_exited(worker_pid)
