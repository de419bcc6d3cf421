"""The replica side of RayExecutor: one Serve replica (``_Painter``) loads the weights once and paints one job
at a time; its answer to a job is a stream: a private ``_ReplicaStarted`` marker, then the contract's
``JobProgress`` events, then exactly one ``JobDone`` or ``JobFailed``.

Ray is imported only inside the functions, so importing this module needs no Ray.
"""

from __future__ import annotations

import asyncio
import threading
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace

from stylizer.executor.base import Job, JobDone, JobEvent, JobFailed, JobProgress

DEPLOYMENT_NAME = "painter"
MAX_ONGOING_REQUESTS = 1


@dataclass(frozen=True)
class _ReplicaStarted:
    """First item of every stream: the replica has begun painting (its name and its Ray node's id, for logs
    and fault tests)."""

    replica: str
    node_id: str


@dataclass(frozen=True)
class ReplicaRecord:
    """What one replica remembers of a job it ran: how it ended and how far the optimisation got."""

    job_id: str
    outcome: str  # "done" or a FailureKind
    last_step: int
    total: int


class _Painter:
    """One Serve replica. Wrapped with ``serve.deployment`` at start, so that importing this module needs no Ray."""

    def __init__(self, weights: str, device: str, progress_interval_s: float, previews: bool) -> None:
        import ray

        from stylizer.executor.runner import resolve_device
        from stylizer.weights import load_vgg19

        self._device = resolve_device(device)
        self._progress_interval_s = progress_interval_s
        self._previews = previews
        self._net = load_vgg19(weights, device=self._device)
        context = ray.get_runtime_context()
        self._name = context.get_actor_name() or "replica"
        self._node_id = context.get_node_id()
        # Serve counts a cancelled request as finished at once; this lock keeps the next job off the replica
        # until the cancelled optimisation has actually returned.
        self._idle = asyncio.Lock()
        self._history: deque[ReplicaRecord] = deque(maxlen=64)

    async def paint(self, job: Job) -> AsyncIterator[_ReplicaStarted | JobEvent]:
        from stylizer.executor.runner import job_outcome

        async with self._idle:
            loop = asyncio.get_running_loop()
            events: asyncio.Queue[JobProgress | JobDone | JobFailed] = asyncio.Queue()
            stop = threading.Event()
            last_progress: list[JobProgress] = []

            def on_progress(progress: JobProgress) -> None:
                last_progress[:] = [progress]
                loop.call_soon_threadsafe(events.put_nowait, progress)

            def work() -> None:
                outcome = job_outcome(
                    job,
                    self._net,
                    device=self._device,
                    on_progress=on_progress,
                    cancelled=stop.is_set,
                    progress_interval=self._progress_interval_s,
                    previews=self._previews,
                )
                loop.call_soon_threadsafe(events.put_nowait, outcome)

            # Off the replica's event loop, which must stay free to hear a cancellation.
            finished = loop.run_in_executor(None, work)
            outcome_kind = "cancelled"
            try:
                yield _ReplicaStarted(self._name, self._node_id)
                while True:
                    event = await events.get()
                    if isinstance(event, JobProgress):
                        yield event
                        continue
                    outcome_kind = "done" if isinstance(event, JobDone) else event.kind
                    if isinstance(event, JobDone):
                        # Where it was painted, with the rest of what reproduces it.
                        event = replace(event, params={**event.params, "ray_node_id": self._node_id})
                    yield event
                    return
            finally:
                stop.set()
                await finished
                step, total = (last_progress[0].step, last_progress[0].total) if last_progress else (0, 0)
                self._history.append(ReplicaRecord(job.job_id, outcome_kind, step, total))

    def history(self) -> tuple[str, list[ReplicaRecord]]:
        """This replica's name and the jobs it ran, newest last (for operators and tests)."""
        return self._name, list(self._history)


def painter_deployment():
    """The Serve deployment of painters, before its per-cluster options (replicas, CPUs, GPUs, resources)."""
    from ray import serve

    # One job per replica: each paints one picture at a time on its device.
    return serve.deployment(_Painter, name=DEPLOYMENT_NAME, max_ongoing_requests=MAX_ONGOING_REQUESTS)


def build_app(args: dict):
    """Serve's application builder, for a Serve config (``import_path: stylizer.executor.ray_serve:build_app``,
    e.g. a KubeRay RayService's serveConfigV2): ``args`` are the replicas' ``weights``, ``device``,
    ``progress_interval_s`` and ``previews``; the config's ``deployments`` entry sets replicas and resources."""
    return painter_deployment().bind(**args)
