"""What only RayExecutor promises, beyond the shared contract suite (tests/test_executor_contract.py).

One executor with two replicas (one CPU each) on a local Ray serves the module; Ray start-up costs seconds.
"""

from __future__ import annotations

import asyncio
import io
import socket
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
    JobStarted,
)
from stylizer.executor.ray_serve import RayExecutor
from tests.ray_executor_factory import make_ray_executor

pytestmark = [pytest.mark.ray, pytest.mark.asyncio(loop_scope="module")]

IMAGES = Path(__file__).resolve().parent / "images"
CONTENT = (IMAGES / "content" / "coffee.jpg").read_bytes()
STYLE = (IMAGES / "style" / "turner_shipwreck.jpg").read_bytes()
ENDLESS = 1_000_000
EVENT_TIMEOUT_S = 120


def make_job(job_id: str, *, steps: int = 6, size: int = 48, **job_fields) -> Job:
    options = JobOptions(style_weight=1e8, content_weight=1e4, variants=2, size=size, steps=steps, strip_steps=2,
                         seed=5)
    return Job(job_id=job_id, content=CONTENT, style=STYLE, options=options, **job_fields)


async def collect(handle) -> list:
    async with asyncio.timeout(EVENT_TIMEOUT_S):
        return [event async for event in handle.events()]


async def wait_for_progress(stream) -> None:
    async with asyncio.timeout(EVENT_TIMEOUT_S):
        async for event in stream:
            assert not isinstance(event, JobDone | JobFailed), event
            if isinstance(event, JobProgress):
                return


def closed_port() -> int:
    """A local port nobody listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def executor():
    executor, _ = make_ray_executor(replicas=2, max_queued_per_replica=3, health_interval_s=0.5)
    await executor.start()
    yield executor
    await executor.close()


async def test_an_unreachable_cluster_fails_start_with_one_readable_line():
    address = f"127.0.0.1:{closed_port()}"
    executor = RayExecutor(address=address, weights="random", device="cpu")
    with pytest.raises(ExecutorUnavailable) as raised:
        await executor.start()
    message = str(raised.value)
    assert address in message and "\n" not in message
    with pytest.raises(ExecutorUnavailable):
        await executor.submit(make_job("never"))
    await executor.close()


async def test_a_ray_client_address_is_refused_with_what_to_use_instead():
    # Serve's streaming handles do not work through Ray Client (Ray 2.60 says so at the first job).
    executor = RayExecutor(address="ray://head.example:10001", weights="random", device="cpu")
    with pytest.raises(ExecutorUnavailable, match='address = "auto"'):
        await executor.start()
    await executor.close()


async def test_two_replicas_paint_two_jobs_at_the_same_time(executor):
    timeline: list[tuple[str, str]] = []
    replicas: set[str] = set()

    async def follow(handle):
        events = []
        async for event in handle.events():
            events.append(event)
            timeline.append((handle.job_id, type(event).__name__))
            if isinstance(event, JobStarted):
                replicas.add(executor.running_on.get(handle.job_id))
        return events

    handles = [await executor.submit(make_job(f"parallel-{i}", steps=20)) for i in range(2)]
    async with asyncio.timeout(EVENT_TIMEOUT_S):
        results = await asyncio.gather(*(follow(handle) for handle in handles))

    assert [type(events[-1]) for events in results] == [JobDone, JobDone]
    assert len(replicas) == 2, "each job should have had a replica of its own"
    first_done = timeline.index(next(item for item in timeline if item[1] == "JobDone"))
    assert sum(1 for _, kind in timeline[:first_done] if kind == "JobStarted") == 2


async def test_a_second_user_overtakes_a_long_queue_of_the_first(executor):
    started: list[str] = []

    async def follow(handle):
        events = []
        async for event in handle.events():
            events.append(event)
            if isinstance(event, JobStarted):
                started.append(handle.job_id)
        return events

    # alice-1 runs longest, so the two replicas come free one after the other, never together.
    alice = [
        await executor.submit(make_job(f"alice-{i}", owner=1, steps=60 if i == 1 else 4, size=32)) for i in range(4)
    ]
    bob = await executor.submit(make_job("bob", owner=2, steps=4, size=32))
    async with asyncio.timeout(EVENT_TIMEOUT_S):
        results = await asyncio.gather(*(follow(handle) for handle in [*alice, bob]))

    # Both replicas take alice's first two jobs at once; bob's job comes before the rest of hers.
    assert sorted(started[:2]) == ["alice-0", "alice-1"]
    assert started[2] == "bob"
    assert sorted(started[3:]) == ["alice-2", "alice-3"]
    assert all(isinstance(events[-1], JobDone) for events in results)


async def test_images_and_previews_cross_the_cluster_as_encoded_bytes(executor):
    events = await collect(await executor.submit(make_job("bytes", size=64)))
    done = events[-1]
    assert isinstance(done, JobDone)
    for data, ext, size in [(done.image, done.image_ext, done.image_size), (done.strip, done.strip_ext, done.strip_size)]:
        assert type(data) is bytes
        with Image.open(io.BytesIO(data)) as image:
            assert image.format == {"png": "PNG", "jpg": "JPEG"}[ext]
            assert image.size == size
    previews = [event.preview for event in events if isinstance(event, JobProgress) and event.preview is not None]
    assert previews, "the replica should send previews while it paints"
    for preview in previews:
        assert type(preview) is bytes
        with Image.open(io.BytesIO(preview)) as image:
            assert image.format == "JPEG"


async def replica_history(executor: RayExecutor, replica: str) -> list:
    """The jobs the named replica remembers; Serve picks a replica per call, so ask until it answers."""
    from ray import serve

    handle = serve.get_app_handle(executor.app_name)
    async with asyncio.timeout(EVENT_TIMEOUT_S):
        while True:
            name, records = await handle.history.remote()
            if name == replica:
                return records


async def test_cancel_stops_the_optimisation_inside_the_replica(executor):
    handle = await executor.submit(make_job("stop-me", steps=ENDLESS))
    stream = handle.events()
    await wait_for_progress(stream)
    replica = executor.running_on["stop-me"]
    await handle.cancel()
    assert [event async for event in stream][-1].kind == "cancelled"

    async with asyncio.timeout(EVENT_TIMEOUT_S):
        while True:
            records = [r for r in await replica_history(executor, replica) if r.job_id == "stop-me"]
            if records:
                break
            await asyncio.sleep(0.2)
    # Recorded only once the painting thread has returned: it stopped far short of its million steps.
    assert records[0].outcome == "cancelled"
    assert 0 < records[0].last_step < 1000 and records[0].total == 2 + ENDLESS  # the strip's steps, then the result's


async def test_when_the_cluster_stops_answering_jobs_fail_as_unavailable_and_it_recovers(executor):
    handle = await executor.submit(make_job("stranded", steps=ENDLESS))
    stream = handle.events()
    await wait_for_progress(stream)
    reachable = executor._health_target
    executor._health_target = ("127.0.0.1", closed_port())  # what the health check sees of a dead head node
    try:
        async with asyncio.timeout(EVENT_TIMEOUT_S):
            rest = [event async for event in stream]
        failed = rest[-1]
        assert isinstance(failed, JobFailed) and failed.kind == "unavailable"
        assert "stopped answering" in failed.reason
        with pytest.raises(ExecutorUnavailable, match="stopped answering"):
            await executor.submit(make_job("refused"))
        assert executor.queued == 0
    finally:
        executor._health_target = reachable

    async with asyncio.timeout(EVENT_TIMEOUT_S):
        while True:
            try:
                again = await executor.submit(make_job("after-outage"))
                break
            except ExecutorUnavailable:
                await asyncio.sleep(0.2)
    assert isinstance((await collect(again))[-1], JobDone)


async def test_an_executor_that_does_not_deploy_uses_the_running_app_and_leaves_it(executor):
    from ray import serve

    # As the bot does with a KubeRay RayService: the app is the cluster's, the bot only sends it jobs.
    attached = RayExecutor(weights="random", device="cpu", deploy=False, app_name=executor.app_name,
                           start_timeout_s=60)
    await attached.start()
    events = await collect(await attached.submit(make_job("through-the-running-app")))
    assert isinstance(events[-1], JobDone)
    await attached.close()

    assert executor.app_name in serve.status().applications
    assert isinstance((await collect(await executor.submit(make_job("app-still-there"))))[-1], JobDone)


async def test_weights_that_cannot_load_fail_start_with_the_replicas_reason(executor, tmp_path):
    broken, _ = make_ray_executor(weights=str(tmp_path / "missing-vgg19.pth"), num_cpus=0, start_timeout_s=240)
    try:
        with pytest.raises(ExecutorUnavailable, match="missing-vgg19.pth"):
            await broken.start()
    finally:
        await broken.close()


class _ScriptedServe:
    """Stands in for the Serve handle: each ``paint.remote`` plays the next script, one item per step; an
    exception is raised as the stream's error and ``WAIT`` waits until the request is cancelled."""

    WAIT = object()

    def __init__(self, *scripts: list) -> None:
        self._scripts = list(scripts)
        self.requests: list[_ScriptedStream] = []

    def options(self, **_):
        return self

    @property
    def paint(self):
        return self

    def remote(self, job):
        stream = _ScriptedStream(self._scripts.pop(0))
        self.requests.append(stream)
        return stream


class _ScriptedStream:
    def __init__(self, script: list) -> None:
        self._script = list(script)
        self.cancelled = asyncio.Event()

    def cancel(self) -> None:
        self.cancelled.set()

    def __aiter__(self):
        return self

    async def __anext__(self):
        from ray.serve.exceptions import RequestCancelledError

        if not self._script:
            raise StopAsyncIteration
        item = self._script.pop(0)
        if item is _ScriptedServe.WAIT:
            await self.cancelled.wait()
            raise RequestCancelledError()
        if isinstance(item, BaseException):
            raise item
        return item


def scripted_executor(serve: _ScriptedServe, **options) -> RayExecutor:
    """A RayExecutor whose Serve handle is ``serve``: the executor's own retry and timing rules, no Ray."""

    class Scripted(RayExecutor):
        async def _start(self) -> None:
            self._loop = asyncio.get_running_loop()
            self._serve_handle = serve

    return Scripted(weights="random", device="cpu", **options)


def unreachable_replica():
    from ray.exceptions import ActorUnavailableError

    return ActorUnavailableError("The actor is temporarily unavailable: Socket closed", None)


async def test_a_job_no_replica_takes_fails_as_unavailable_after_replica_wait_s():
    serve = _ScriptedServe([_ScriptedServe.WAIT])
    executor = scripted_executor(serve, replica_wait_s=0.5)
    await executor.start()
    loop = asyncio.get_running_loop()
    began = loop.time()
    events = await collect(await executor.submit(make_job("nobody-takes-it")))
    waited = loop.time() - began

    failed = events[-1]
    assert isinstance(failed, JobFailed) and failed.kind == "unavailable", events
    assert "No painter was free" in failed.reason and "\n" not in failed.reason
    assert 0.5 <= waited < 5
    assert serve.requests[0].cancelled.is_set(), "the request waiting in Serve should have been withdrawn"
    await executor.close()


async def test_a_replica_unreachable_before_it_began_is_no_attempt_but_a_lost_one_is():
    from stylizer.executor.ray_replica import _ReplicaStarted

    started = _ReplicaStarted("SERVE_REPLICA::x", "node-a")
    done = JobDone(image=b"", image_ext="png", strip=b"", strip_ext="png", image_size=(1, 1), strip_size=(1, 1),
                   strengths=(5,), style_weights=(1.0,), chosen=0, seconds=0.1)
    serve = _ScriptedServe(
        [unreachable_replica()],  # the dead replica, before the router knew: the job never began there
        [started, unreachable_replica()],  # began, then its node died: attempt 1 lost
        [unreachable_replica()],
        [started, done],
    )
    executor = scripted_executor(serve, max_attempts=2, replica_wait_s=30)
    await executor.start()
    events = await collect(await executor.submit(make_job("survives")))

    assert [event.attempt for event in events if isinstance(event, JobStarted)] == [1, 2]
    assert isinstance(events[-1], JobDone)
    assert len(serve.requests) == 4
    await executor.close()
