"""LocalExecutor: one worker process on this machine owns the GPU and paints one job at a time.

The parent process only schedules: it never decodes an image nor paints. The worker is started with
multiprocessing's "spawn" (CUDA cannot be used in a forked child), loads the weights once and then takes jobs
from a queue. Its events come back through a pipe read by a daemon thread, which also watches the process
sentinel, so a worker that dies is noticed at once: it is restarted and the job it was running is tried again.

Everything that touches scheduling state runs on the event loop; the reader thread only hands messages over
with ``loop.call_soon_threadsafe``.
"""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import itertools
import logging
import multiprocessing
import os
import queue
import signal
import threading
from dataclasses import dataclass
from functools import partial
from multiprocessing import connection
from typing import Any

from stylizer.executor._jobs import CANCELLED, SHUTDOWN_REASON, QueueingExecutor, TrackedJob
from stylizer.executor.base import ExecutorUnavailable, JobDone, JobFailed, JobStarted

logger = logging.getLogger(__name__)

# How long a worker asked to stop (close) may take to finish before it is killed.
STOP_TIMEOUT_S = 5.0
# How often an idle worker checks that the bot is still there; an orphan must not hold the GPU forever.
PARENT_CHECK_S = 1.0


@dataclass(eq=False)
class _Entry(TrackedJob):
    dispatch_id: int = -1
    # Set when the executor asked the running job to stop: what the user is told once it has.
    stop: JobFailed | None = None


class _Worker:
    """One incarnation of the worker process with its own pipes, so a dead one cannot corrupt the next."""

    def __init__(self, generation: int, process, jobs, events, cancel_id) -> None:
        self.generation = generation
        self.process = process
        self.jobs = jobs
        self.events = events
        self.cancel_id = cancel_id
        self.ready = False


class LocalExecutor(QueueingExecutor[_Entry]):
    def __init__(
        self,
        *,
        weights: str = "imagenet",
        device: str = "auto",
        max_queue: int = 20,
        job_timeout_s: float | None = None,
        progress_interval_s: float = 1.0,
        previews: bool = True,
        max_attempts: int = 2,
        cancel_grace_s: float = 10.0,
        torch_threads: int | None = None,
    ) -> None:
        """``job_timeout_s`` applies to jobs without their own ``timeout_s``; ``cancel_grace_s`` is how long a
        running job may take to notice a cancel before its worker is killed and restarted."""
        if max_queue < 1 or max_attempts < 1:
            raise ValueError("max_queue and max_attempts must be at least 1")
        super().__init__(max_queue, _Entry, max_attempts)
        self.weights = weights
        self.device = device
        self.job_timeout_s = job_timeout_s
        self.progress_interval_s = progress_interval_s
        self.previews = previews
        self.cancel_grace_s = cancel_grace_s
        self.torch_threads = torch_threads
        self._context = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._worker: _Worker | None = None
        self._generations = itertools.count(1)
        self._dispatch_ids = itertools.count(1)
        self._retry: _Entry | None = None  # the job a dead worker was running, run first after restart
        self._running: _Entry | None = None
        self._ready_waiter: asyncio.Future | None = None
        self._restart: asyncio.Task | None = None

    # Public API

    @property
    def worker_pid(self) -> int | None:
        worker = self._worker
        return worker.process.pid if worker is not None and worker.process.is_alive() else None

    async def _start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._context = multiprocessing.get_context("spawn")
        await self._spawn_worker()

    async def close(self) -> None:
        if self._closing:
            return
        self._closing = True
        for entry in self._entries.items():
            self._finish(entry, JobFailed("unavailable", SHUTDOWN_REASON))
        if self._ready_waiter is not None and not self._ready_waiter.done():
            self._ready_waiter.set_exception(ExecutorUnavailable(SHUTDOWN_REASON))
        worker, self._worker = self._worker, None
        if worker is not None:
            await asyncio.get_running_loop().run_in_executor(None, _stop_worker, worker)
        if self._restart is not None:
            await self._restart

    # Scheduling (event loop only)

    def _dispatch_next(self) -> None:
        worker = self._worker
        if self._running is not None or worker is None or not worker.ready or self._closing:
            return
        if self._retry is not None:
            entry, self._retry = self._retry, None
        else:
            entry = self._entries.pop_next()
            if entry is None:
                return
        entry.attempt += 1
        entry.dispatch_id = next(self._dispatch_ids)
        self._running = entry
        entry.start_timeout(self.job_timeout_s, partial(self._timed_out, entry, entry.dispatch_id))
        worker.jobs.put((entry.dispatch_id, entry.job, self.previews, self.progress_interval_s))
        entry.handle.push(JobStarted(attempt=entry.attempt))
        self._announce_positions()

    def _finish(self, entry: _Entry, event: JobDone | JobFailed) -> None:
        entry.cancel_timers()
        self._entries.remove(entry.job.job_id)
        if self._retry is entry:
            self._retry = None
        if self._running is entry:
            self._running = None
            if self._worker is not None:
                # Leaves a late cancel request of this job unable to touch the next one.
                self._worker.cancel_id.value = 0
        entry.handle.push(event)
        self._announce_positions()

    def _cancel(self, job_id: str) -> None:
        entry = self._entries.get(job_id)
        if entry is None:
            return
        if self._running is entry:
            self._stop_running(entry, CANCELLED)
        else:
            self._finish(entry, CANCELLED)
            self._dispatch_next()

    def _timed_out(self, entry: _Entry, dispatch_id: int, outcome: JobFailed) -> None:
        if self._running is entry and entry.dispatch_id == dispatch_id:
            self._stop_running(entry, outcome)

    def _stop_running(self, entry: _Entry, outcome: JobFailed) -> None:
        if entry.stop is not None:
            return
        entry.stop = outcome
        self._worker.cancel_id.value = entry.dispatch_id
        entry.timers.append(
            self._loop.call_later(self.cancel_grace_s, self._kill_unresponsive, entry, entry.dispatch_id)
        )

    def _kill_unresponsive(self, entry: _Entry, dispatch_id: int) -> None:
        if self._running is not entry or entry.dispatch_id != dispatch_id or self._worker is None:
            return
        logger.warning(
            "worker %s did not stop job %s within %g s; killing it",
            self._worker.process.pid,
            entry.job.job_id,
            self.cancel_grace_s,
        )
        self._worker.process.kill()
        # The job ends now with the outcome it was stopped for; the exit handler restarts the worker.
        self._finish(entry, entry.stop)

    # Worker lifecycle

    async def _spawn_worker(self) -> None:
        """Start a worker and wait until its weights are loaded; raises ExecutorUnavailable."""
        context = self._context
        job_queue = context.Queue()
        events_in, events_out = context.Pipe(duplex=False)
        cancel_id = context.RawValue("q", 0)
        process = context.Process(
            target=_worker_main,
            args=(self.weights, self.device, self.torch_threads, job_queue, events_out, cancel_id),
            name="stylizer-worker",
            daemon=True,
        )
        loop = self._loop
        await loop.run_in_executor(None, process.start)
        # Only the worker may hold the writing end: its death must show as end-of-file here.
        events_out.close()
        worker = _Worker(next(self._generations), process, job_queue, events_in, cancel_id)
        self._worker = worker
        self._ready_waiter = loop.create_future()
        threading.Thread(
            target=_read_events,
            args=(loop, self._on_message, self._on_worker_exit, worker.generation, events_in, process),
            name=f"stylizer-worker-events-{worker.generation}",
            daemon=True,
        ).start()
        try:
            await self._ready_waiter
        except ExecutorUnavailable:
            if self._worker is worker:  # otherwise close() has taken it and stops it
                self._worker = None
                await loop.run_in_executor(None, _stop_worker, worker)
            raise
        finally:
            self._ready_waiter = None
        worker.ready = True
        logger.info("worker %s ready (weights %s, device %s)", process.pid, self.weights, self.device)

    async def _restart_worker(self) -> None:
        try:
            await self._spawn_worker()
        except ExecutorUnavailable as error:
            if self._closing:
                return
            # Nothing will run any more: tell everybody waiting rather than leaving them hanging.
            self._broken = str(error)
            for entry in self._entries.items():
                self._finish(entry, JobFailed("unavailable", str(error)))
            return
        finally:
            self._restart = None
        self._dispatch_next()

    def _on_message(self, generation: int, message: tuple) -> None:
        worker = self._worker
        if worker is None or worker.generation != generation:
            return
        kind = message[0]
        if kind == "ready":
            if self._ready_waiter is not None and not self._ready_waiter.done():
                self._ready_waiter.set_result(None)
            return
        if kind == "load_failed":
            if self._ready_waiter is not None and not self._ready_waiter.done():
                self._ready_waiter.set_exception(ExecutorUnavailable(message[1]))
            return
        _, dispatch_id, event = message
        entry = self._running
        if entry is None or entry.dispatch_id != dispatch_id:
            return  # a job that was already ended here, e.g. cancelled while its last event was in flight
        if kind == "progress":
            entry.handle.push(event)
            return
        if isinstance(event, JobFailed) and event.kind == "cancelled" and entry.stop is not None:
            event = entry.stop
        self._finish(entry, event)
        self._dispatch_next()

    def _on_worker_exit(self, generation: int, exitcode: int | None) -> None:
        worker = self._worker
        if worker is None or worker.generation != generation:
            return
        if self._ready_waiter is not None and not self._ready_waiter.done():
            self._ready_waiter.set_exception(
                ExecutorUnavailable(f"The painter process exited (code {exitcode}) before it was ready.")
            )
            return
        self._worker = None
        _release_queue(worker)
        if self._closing:
            return
        logger.error("worker %s exited with code %s", worker.process.pid, exitcode)
        entry = self._running
        if entry is not None:
            self._running = None
            if entry.stop is not None:
                self._finish(entry, entry.stop)
            elif not self._gave_up(entry):
                entry.cancel_timers()
                self._retry = entry
        self._restart = self._loop.create_task(self._restart_worker())


def _read_events(loop, on_message, on_exit, generation, events, process) -> None:
    """Reader thread: forwards each worker message to the loop, then the worker's exit."""

    def hand_over(callback, *args: Any) -> bool:
        try:
            loop.call_soon_threadsafe(callback, generation, *args)
        except RuntimeError:  # the loop is closed: nobody is listening any more
            return False
        return True

    while True:
        ready = connection.wait([events, process.sentinel])
        if events in ready:
            try:
                message = events.recv()
            except (EOFError, OSError):
                break
            if not hand_over(on_message, message):
                return
        else:
            # The process is gone; whatever it sent before dying still comes first.
            try:
                while events.poll():
                    if not hand_over(on_message, events.recv()):
                        return
            except (EOFError, OSError):
                pass
            break
    process.join()
    events.close()
    hand_over(on_exit, process.exitcode)


def _stop_worker(worker: _Worker) -> None:
    """Ask the worker to exit after its current job, kill it if it does not. Blocking: run off the loop."""
    process = worker.process
    if process.is_alive():
        worker.cancel_id.value = -1  # the worker stops whatever it is painting at its next step
        try:
            worker.jobs.put(None)
        except (OSError, ValueError):
            pass
        process.join(STOP_TIMEOUT_S)
        if process.is_alive():
            process.kill()
            process.join()
    _release_queue(worker)


def _release_queue(worker: _Worker) -> None:
    # Jobs still in the pipe belong to a dead worker: never wait to flush them.
    worker.jobs.cancel_join_thread()
    worker.jobs.close()


def _worker_main(weights, device, torch_threads, jobs, events, cancel_id) -> None:
    """Entry point of the worker process."""
    # Ctrl-C reaches the whole process group; the parent decides when the worker stops.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s worker %(levelname)s %(name)s: %(message)s")
    import torch

    from stylizer.executor.runner import job_outcome, resolve_device
    from stylizer.weights import WeightsUnavailable, load_vgg19

    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    torch.set_num_threads(torch_threads or cores or 1)
    try:
        device = resolve_device(device)
        net = load_vgg19(weights, device=device)
    except (WeightsUnavailable, ExecutorUnavailable) as error:
        events.send(("load_failed", str(error)))
        return
    except Exception as error:  # noqa: BLE001 - any failure here means the painter cannot start
        logging.getLogger(__name__).exception("loading weights failed")
        events.send(("load_failed", f"The painter could not load its weights: {error}"))
        return
    events.send(("ready",))
    parent = multiprocessing.parent_process()
    while True:
        try:
            request = jobs.get(timeout=PARENT_CHECK_S)
        except queue.Empty:
            if not parent.is_alive():
                return
            continue
        if request is None:
            return
        dispatch_id, job, previews, progress_interval = request

        def cancelled(dispatch_id=dispatch_id) -> bool:
            # -1 is the shutdown request, which stops whatever is running; nobody waits for an orphan's work.
            return cancel_id.value in (dispatch_id, -1) or not parent.is_alive()

        def send_progress(progress, dispatch_id=dispatch_id) -> None:
            events.send(("progress", dispatch_id, progress))

        outcome = job_outcome(
            job,
            net,
            device=device,
            on_progress=send_progress,
            cancelled=cancelled,
            progress_interval=progress_interval,
            previews=previews,
        )
        try:
            events.send(("done" if isinstance(outcome, JobDone) else "failed", dispatch_id, outcome))
        except OSError:  # the bot is gone
            return
        give_back_freed_memory()


def give_back_freed_memory() -> None:
    """Return the heap pages a finished job freed to the system.

    glibc keeps freed pages in each thread's arena, and torch's intra-op threads each have one, so a
    worker's RSS stays well above what it uses (docs/soak.md)."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.malloc_trim(0)
    except (OSError, AttributeError):  # not glibc (macOS, musl): nothing to give back this way
        pass


__all__ = ["LocalExecutor"]
