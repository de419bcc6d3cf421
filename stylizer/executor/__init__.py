"""Where jobs run: the boundary between whoever asks for a picture and the process that paints it.

``submit(job) -> handle``; the handle yields events (queued, started, progress, done or failed) and can be
cancelled. ``LocalExecutor`` runs a worker process on this machine; ``RayExecutor`` runs on a Ray Serve
cluster. Nothing here knows about Discord.
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
    "QueueFull",
]
