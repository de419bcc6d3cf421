"""Where jobs run: the boundary between whoever asks for a picture and the process that paints it.

``submit(job) -> handle``; the handle yields events (queued, started, progress, done or failed) and can be
cancelled. ``LocalExecutor`` runs a worker process on this machine; ``RayExecutor`` runs on a Ray Serve
cluster. Nothing here knows about Discord. ``stylizer.executor.runner.run_job``, the job as a worker runs it,
is what a worker runs for each job.
"""

from stylizer.executor.base import (
    Executor,
    ExecutorError,
    ExecutorUnavailable,
    FailureKind,
    Job,
    JobDone,
    JobEvent,
    JobFailed,
    JobHandle,
    JobOptions,
    JobProgress,
    JobQueued,
    JobStarted,
    QueueFull,
)
from stylizer.executor.local import LocalExecutor

__all__ = [
    "Executor",
    "ExecutorError",
    "ExecutorUnavailable",
    "FailureKind",
    "Job",
    "JobDone",
    "JobEvent",
    "JobFailed",
    "JobHandle",
    "JobOptions",
    "JobProgress",
    "JobQueued",
    "JobStarted",
    "LocalExecutor",
    "QueueFull",
]
