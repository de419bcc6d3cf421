"""What both executors share: the half of an executor that keeps the queue, each job's handle and timers."""

from __future__ import annotations

import abc
import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Generic, TypeVar

from stylizer.executor.base import (
    Executor,
    ExecutorUnavailable,
    Job,
    JobDone,
    JobEvent,
    JobFailed,
    JobHandle,
    JobQueued,
)
from stylizer.executor.fairness import FairQueue

# Failure details for the log; what the user reads is bot.messages' business, chosen by the failure's kind.
SHUTDOWN_REASON = "The executor is shutting down."
CANCELLED = JobFailed("cancelled", "The job was cancelled.")


def crashed(attempts: int) -> JobFailed:
    times = {1: "", 2: " twice"}.get(attempts, f" {attempts} times")
    return JobFailed("crashed", f"The painter crashed{times} on this picture.")


class EventHandle(JobHandle):
    """A handle whose events the executor pushes, on the event loop, as they happen."""

    def __init__(self, job_id: str, on_cancel: Callable[[], None]) -> None:
        self.job_id = job_id
        self._on_cancel = on_cancel
        self._events: asyncio.Queue[JobEvent] = asyncio.Queue()
        self._finished = False  # the final event has been pushed
        self._ended = False  # ... and handed to a reader: a later events() has nothing left to wait for

    @property
    def finished(self) -> bool:
        return self._finished

    def push(self, event: JobEvent) -> None:
        """Queue an event for the reader; anything after the final JobDone or JobFailed is dropped."""
        if self._finished:
            return
        if isinstance(event, JobDone | JobFailed):
            self._finished = True
        self._events.put_nowait(event)

    async def events(self) -> AsyncIterator[JobEvent]:
        while not self._ended:
            event = await self._events.get()
            if isinstance(event, JobDone | JobFailed):
                self._ended = True
            yield event

    async def cancel(self) -> None:
        self._on_cancel()


@dataclass(eq=False)
class TrackedJob:
    """An accepted job as its executor follows it; each executor adds what its own way of running needs."""

    job: Job
    handle: EventHandle
    attempt: int = 0
    timers: list[asyncio.TimerHandle] = field(default_factory=list)

    def start_timeout(self, default_s: float | None, on_timeout: Callable[[JobFailed], None]) -> None:
        """Call ``on_timeout`` with the failure to report once the job has run for its time limit (its own
        ``timeout_s``, else ``default_s``; None is no limit). Call on the event loop when the job starts."""
        timeout = self.job.timeout_s if self.job.timeout_s is not None else default_s
        if timeout is not None:
            outcome = JobFailed("timeout", f"The job took longer than {timeout:g} s.")
            self.timers.append(asyncio.get_running_loop().call_later(timeout, on_timeout, outcome))

    def cancel_timers(self) -> None:
        for timer in self.timers:
            timer.cancel()
        self.timers.clear()


Entry = TypeVar("Entry", bound=TrackedJob)


class QueueingExecutor(Executor, Generic[Entry]):
    """What both executors do alike: hold every accepted job in a FairQueue until it finishes, tell waiting
    jobs their positions, refuse jobs the same way. A subclass says how it gets ready, starts jobs and
    cancels one; it calls ``_announce_positions`` whenever the waiting jobs may have moved."""

    def __init__(self, max_queue: int, entry_type: Callable[[Job, EventHandle], Entry], max_attempts: int) -> None:
        self._entries: FairQueue[Entry] = FairQueue(max_queue)
        self.max_attempts = max_attempts
        self._entry_type = entry_type
        self._started = False
        self._closing = False
        self._broken: str | None = None  # why no job can run at the moment, told to whoever submits one

    @property
    def queued(self) -> int:
        return len(self._entries)

    @property
    def max_queue(self) -> int:
        return self._entries.capacity

    async def start(self) -> None:
        if self._closing:
            raise ExecutorUnavailable("The painter has been shut down.")
        if self._started:
            return
        await self._start()
        self._started = True

    async def submit(self, job: Job) -> JobHandle:
        if not self._started or self._closing:
            raise ExecutorUnavailable("The painter is not running.")
        if self._broken is not None:
            raise ExecutorUnavailable(self._broken)
        handle = EventHandle(job.job_id, partial(self._cancel, job.job_id))
        self._entries.push(job.job_id, job.owner, self._entry_type(job, handle))
        self._announce_positions()
        self._dispatch_next()
        return handle

    def _gave_up(self, entry: Entry) -> bool:
        """The retry policy of a job whose painter crashed under it: after ``max_attempts`` it ends as crashed
        (True); before that the caller tries it again (False)."""
        if entry.attempt < self.max_attempts:
            return False
        self._finish(entry, crashed(entry.attempt))
        return True

    def _announce_positions(self) -> None:
        for entry, position in self._entries.moved():
            entry.handle.push(JobQueued(position))

    @abc.abstractmethod
    async def _start(self) -> None:
        """Get ready to run jobs (``start`` without its checks); raises ExecutorUnavailable."""

    @abc.abstractmethod
    def _dispatch_next(self) -> None:
        """Start the next waiting jobs, as many as there is room for now (on the event loop)."""

    @abc.abstractmethod
    def _finish(self, entry: Entry, event: JobDone | JobFailed) -> None:
        """Push the job's final event and forget it (on the event loop)."""

    @abc.abstractmethod
    def _cancel(self, job_id: str) -> None:
        """End the job, waiting or running, with CANCELLED (on the event loop)."""
