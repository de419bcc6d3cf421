"""FairQueue, which both executors schedule with: round-robin between owners, positions, removal, bound.

At the end, the other pieces both executors share (stylizer/executor/_jobs.py): the job handle, the timeout
watchdog, the crash report.
"""

from __future__ import annotations

import asyncio
import random

import pytest

from stylizer.executor import Job, JobFailed, JobOptions, JobProgress, JobQueued, QueueFull
from stylizer.executor._jobs import EventHandle, TrackedJob, crashed
from stylizer.executor.fairness import FairQueue

# Only guards against a hang: nothing here should wait for anything near this long.
HANG_S = 10


def push(queue: FairQueue[str], job_id: str, owner: int) -> None:
    queue.push(job_id, owner, job_id)


def start_all(queue: FairQueue[str]) -> list[str]:
    started = []
    while (job := queue.pop_next()) is not None:
        started.append(job)
    return started


def test_a_second_owner_overtakes_a_long_queue_of_the_first():
    queue = FairQueue(10)
    for i in range(3):
        push(queue, f"alice-{i}", owner=1)
    push(queue, "bob", owner=2)
    assert start_all(queue) == ["alice-0", "bob", "alice-1", "alice-2"]


def test_owners_take_turns_least_recently_served_first():
    queue = FairQueue(20)
    for i in range(4):
        push(queue, f"a{i}", owner=1)
    for i in range(2):
        push(queue, f"b{i}", owner=2)
    push(queue, "c0", owner=3)
    assert start_all(queue) == ["a0", "b0", "c0", "a1", "b1", "a2", "a3"]


def test_the_order_foretells_what_starts_and_asking_for_it_changes_nothing():
    rng = random.Random(7)
    queue = FairQueue(200)
    for i in range(60):
        push(queue, f"job-{i}", owner=rng.randrange(4))
        if rng.random() < 0.3:
            queue.pop_next()
    foretold = queue.order()
    for _ in range(5):  # asking again, and for positions, must not count as serving anybody
        assert queue.order() == foretold
        queue.moved()
    assert start_all(queue) == foretold


def test_positions_are_reported_once_each_time_they_change():
    queue = FairQueue(10)
    push(queue, "alice-0", owner=1)
    assert queue.moved() == [("alice-0", 1)]
    assert queue.pop_next() == "alice-0"
    push(queue, "alice-1", owner=1)
    push(queue, "alice-2", owner=1)
    assert queue.moved() == [("alice-1", 1), ("alice-2", 2)]
    assert queue.moved() == []
    # Alice has just been served, so Bob goes first and her waiting jobs move back by one.
    push(queue, "bob", owner=2)
    assert queue.moved() == [("bob", 1), ("alice-1", 2), ("alice-2", 3)]
    assert queue.pop_next() == "bob"
    assert queue.moved() == [("alice-1", 1), ("alice-2", 2)]


def test_removing_a_waiting_job_moves_those_behind_it_up():
    queue = FairQueue(10)
    for job_id in ["a", "b", "c"]:
        push(queue, job_id, owner=0)
    queue.moved()
    assert queue.remove("b") == "b"
    assert "b" not in queue and len(queue) == 2
    assert queue.order() == ["a", "c"]
    assert queue.moved() == [("c", 2)]
    assert queue.remove("b") is None
    assert start_all(queue) == ["a", "c"]


def test_started_jobs_count_until_removed_and_nothing_waiting_starts_nothing():
    queue = FairQueue(10)
    push(queue, "a", owner=1)
    assert queue.pop_next() == "a"
    assert queue.pop_next() is None
    assert len(queue) == 1 and queue.get("a") == "a" and queue.order() == []
    assert queue.items() == ["a"]
    assert queue.remove("a") == "a"
    assert len(queue) == 0 and queue.get("a") is None


def test_an_owner_is_remembered_as_served_only_while_one_of_its_jobs_is_here():
    running = FairQueue(10)
    push(running, "alice-0", owner=1)
    running.pop_next()
    push(running, "alice-1", owner=1)
    push(running, "carol", owner=3)
    assert running.order() == ["carol", "alice-1"]

    finished = FairQueue(10)
    push(finished, "alice-0", owner=1)
    finished.pop_next()
    finished.remove("alice-0")
    push(finished, "alice-1", owner=1)
    push(finished, "carol", owner=3)
    # Nobody here has been served: the older job goes first.
    assert finished.order() == ["alice-1", "carol"]


def test_a_full_queue_refuses_jobs_started_ones_included_until_one_leaves():
    queue = FairQueue(2)
    push(queue, "running", owner=1)
    queue.pop_next()
    push(queue, "waiting", owner=1)
    with pytest.raises(QueueFull, match=r"queue is full \(2 jobs\)"):
        push(queue, "one-too-many", owner=2)
    assert "one-too-many" not in queue and queue.order() == ["waiting"]
    queue.remove("running")
    push(queue, "fits-again", owner=2)
    assert len(queue) == 2


def test_a_job_id_already_here_is_refused_even_once_started():
    queue = FairQueue(5)
    push(queue, "same", owner=1)
    queue.pop_next()
    with pytest.raises(ValueError, match="already queued"):
        push(queue, "same", owner=2)
    assert len(queue) == 1


def test_capacity_must_be_at_least_one():
    with pytest.raises(ValueError):
        FairQueue(0)


# The rest of what both executors share.


def make_job(timeout_s: float | None = None) -> Job:
    return Job("job", b"", b"", JobOptions(style_weight=1e8), timeout_s=timeout_s)


async def test_a_handle_ends_after_its_final_event_and_drops_anything_later():
    handle = EventHandle("job", on_cancel=lambda: None)
    progress = JobProgress(stage="paint", step=1, total=2, elapsed=0.1)
    failed = JobFailed("cancelled", "The job was cancelled.")
    for event in [JobQueued(1), progress, failed, progress, JobFailed("timeout", "late")]:
        handle.push(event)
    assert handle.finished
    async with asyncio.timeout(HANG_S):
        assert [event async for event in handle.events()] == [JobQueued(1), progress, failed]
        # A reader that comes back after the end is not left waiting for ever.
        assert [event async for event in handle.events()] == []


async def test_cancelling_a_handle_asks_its_executor():
    asked = []
    handle = EventHandle("job", on_cancel=lambda: asked.append("job"))
    await handle.cancel()
    assert asked == ["job"] and not handle.finished


async def test_a_limit_set_on_the_job_wins_over_the_default_and_is_reported():
    fired = asyncio.Event()
    outcomes = []

    def on_timeout(outcome: JobFailed) -> None:
        outcomes.append(outcome)
        fired.set()

    tracked = TrackedJob(make_job(timeout_s=0.05), EventHandle("job", lambda: None))
    tracked.start_timeout(3600, on_timeout)
    async with asyncio.timeout(HANG_S):
        await fired.wait()
    assert outcomes == [JobFailed("timeout", "The job took longer than 0.05 s.")]


async def test_a_job_without_a_limit_of_its_own_gets_the_default_and_no_limit_without_one():
    tracked = TrackedJob(make_job(), EventHandle("job", lambda: None))
    tracked.start_timeout(None, lambda outcome: None)
    assert tracked.timers == []
    outcomes = []
    tracked.start_timeout(0.01, outcomes.append)
    assert len(tracked.timers) == 1
    tracked.cancel_timers()
    await asyncio.sleep(0.05)
    assert outcomes == [] and tracked.timers == []


def test_a_crash_report_counts_the_attempts():
    assert crashed(1).kind == "crashed"
    assert "crashed on this picture" in crashed(1).reason
    assert "crashed twice" in crashed(2).reason
    assert "crashed 3 times" in crashed(3).reason
