"""What both executors keep for each accepted job (its handle, its timers) and the outcomes they share."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

from stylizer.executor.base import Job, JobDone, JobEvent, JobFailed, JobHandle

SHUTDOWN_REASON = "The bot is shutting down; try again when it is back."
CANCELLED = JobFailed("cancelled", "The job was cancelled.")
CRASHED_ADVICE = "try a smaller size, fewer variants or another image."


def crashed(attempts: int) -> JobFailed:
    times = {1: "", 2: " twice"}.get(attempts, f" {attempts} times")
    return JobFailed("crashed", f"The painter crashed{times} on this picture; {CRASHED_ADVICE}")


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
