"""The job service: one journaled job's whole life, from its reserved place to its delivered result.

reserve → start (submit to the executor, show queue place and progress) → deliver (a new message that pings
the requester) or fail (one private line with Retry) → release. It also resumes what a previous run left
unfinished and shuts down within a bounded time whatever state the executor is in.

It is built from its parts (config, executor, journal, the way to build replies, the way to fetch inputs) and
knows nothing of the Discord client that owns it.
"""

from __future__ import annotations

import asyncio
import logging
import statistics
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import discord

from bot import messages, views
from bot.config import Config
from bot.journal import AttachmentInfo, JobRecord, Journal
from bot.limits import JobLimits, Refusal
from bot.replies import Reply, Undeliverable
from stylizer.executor.base import (
    Executor,
    ExecutorError,
    ExecutorUnavailable,
    Job,
    JobDone,
    JobFailed,
    JobHandle,
    JobProgress,
    JobQueued,
    JobStarted,
    QueueFull,
)
from stylizer.presets import UnknownPreset, get_preset

logger = logging.getLogger(__name__)

# Shutdown, within the 10 s between SIGTERM and SIGKILL (Docker's default): results already being uploaded may
# take DELIVERY_GRACE_S; then each "restarting" line and the executor's close run side by side. The close gets
# long enough for the local executor to kill a worker that ignores its stop (local.STOP_TIMEOUT_S = 5 s).
DELIVERY_GRACE_S = 3.0
GOODBYE_TIMEOUT_S = 2.0
EXECUTOR_CLOSE_TIMEOUT_S = 5.5
# How many recent painting times the queue estimate averages.
RECENT_JOBS = 10

Fetch = Callable[[AttachmentInfo], Awaitable[bytes]]
ReplyFor = Callable[[JobRecord], "Reply | None"]


def preset_credit(name: str | None) -> str | None:
    """The credit line of the preset a request painted with; None for an uploaded painting (or a preset this
    version no longer ships, whose request still paints from the journal's copy)."""
    if name is None:
        return None
    try:
        return get_preset(name).credit
    except UnknownPreset:
        return None


class Throttle:
    """At most one message edit per interval: Discord rate-limits edits and progress needs no more."""

    def __init__(self, interval_s: float):
        self.interval_s = interval_s
        self._last = float("-inf")

    def ready(self, now: float | None = None) -> bool:
        now = time.monotonic() if now is None else now
        if now - self._last < self.interval_s:
            return False
        self._last = now
        return True


@dataclass
class _Running:
    task: asyncio.Task
    reply: Reply
    record: JobRecord
    handle: JobHandle | None = None
    delivering: bool = False
    # Said with the result: a repaint whose parent's tiles were gone by the time it ran.
    note: str | None = None
    # A repaint's picture at its own strength when its parent painted it already: shown while the rest paints.
    ready_tile: bytes | None = None


class JobService:
    def __init__(self, *, config: Config, executor: Executor, journal: Journal, fetch: Fetch):
        self.config = config
        self.executor = executor
        self.journal = journal
        self.fetch = fetch
        limits = config.limits
        self.limits = JobLimits(queue_length=limits.queue_length, per_user_jobs=limits.per_user_jobs,
                                per_guild_jobs=limits.per_guild_jobs)
        # Why the painter cannot take jobs (for the log); None once it has started.
        self.executor_problem: str | None = "the painter is still starting"
        # Set once start_executor has finished, well or not: jobs taken before then wait for it.
        self._executor_started = asyncio.Event()
        self.accepting = True
        self._running: dict[str, _Running] = {}
        self._recent_seconds: deque[float] = deque(maxlen=RECENT_JOBS)

    # ----- the executor -----

    async def start_executor(self) -> None:
        try:
            await self.executor.start()
        except ExecutorError as error:
            # The bot stays connected so that users hear that nothing can be painted instead of meeting silence.
            logger.error("the executor could not start: %s", error)
            self.executor_problem = str(error)
        else:
            self.executor_problem = None
            logger.info("executor %s started", type(self.executor).__name__)
        finally:
            self._executor_started.set()

    # ----- places -----

    def reserve(self, job_id: str, user_id: int, guild_id: int | None) -> Refusal | None:
        return self.limits.reserve(job_id, user_id, guild_id)

    def release(self, job_id: str) -> None:
        self.limits.release(job_id)

    def queue_wait_s(self, position: int) -> float | None:
        """About how long until a job at ``position`` starts, from recent painting times; None before any."""
        if not self._recent_seconds:
            return None
        return position * statistics.fmean(self._recent_seconds)

    # ----- a job's life -----

    def start(self, record: JobRecord, reply: Reply) -> None:
        """Run a journaled job whose place is already reserved; the task releases it when it ends."""
        task = asyncio.create_task(self._run(record, reply), name=f"job-{record.job_id}")
        self._running[record.job_id] = _Running(task, reply, record)
        task.add_done_callback(lambda _: self._running.pop(record.job_id, None))

    async def cancel(self, job_id: str) -> bool:
        """Ask a running job to stop (its own loop tells the user); False when there is nothing to cancel."""
        running = self._running.get(job_id)
        if running is None or running.handle is None:
            return False
        await running.handle.cancel()
        return True

    async def _run(self, record: JobRecord, reply: Reply) -> None:
        try:
            handle = await self._submit(record, reply)
            if handle is not None:
                self._running[record.job_id].handle = handle
                await self._follow(record, reply, handle)
        except asyncio.CancelledError:
            # Shutdown: the journal still says accepted/running, so the next start resumes the job.
            raise
        except Exception as error:
            logger.exception("job %s failed inside the bot", record.job_id)
            await self._fail(record, reply, JobFailed("internal", str(error)))
        finally:
            self.limits.release(record.job_id)

    async def _submit(self, record: JobRecord, reply: Reply) -> JobHandle | None:
        painted = await asyncio.to_thread(self._tiles_painted_before, record)
        job = Job(job_id=record.job_id, content=record.content or b"", style=record.style or b"",
                  options=record.request.job_options(self.config), owner=record.user_id,
                  content_name=record.request.content_name, style_name=record.request.style_name,
                  timeout_s=self.config.limits.job_timeout_s, painted=painted, preset=record.request.preset)
        await self._executor_started.wait()
        if self.executor_problem is not None:
            logger.warning("job %s not submitted: %s", record.job_id, self.executor_problem)
            await self._fail(record, reply, JobFailed("unavailable", self.executor_problem))
            return None
        try:
            return await self.executor.submit(job)
        except QueueFull:
            await self._fail(record, reply, None, text=messages.QUEUE_FULL)
        except ExecutorUnavailable as error:
            logger.warning("executor unavailable for job %s: %s", record.job_id, error)
            await self._fail(record, reply, JobFailed("unavailable", str(error)))
        return None

    def _tiles_painted_before(self, record: JobRecord) -> tuple[tuple[int, bytes], ...]:
        """The tiles the parent job painted, which the painter reuses or starts from (read when the job runs,
        so a restart or a second repaint of the same result finds them too). Blocking: run it in a thread."""
        parent_id = record.request.parent_job
        if parent_id is None:
            return ()
        painted, parent = self.journal.tiles(parent_id), self.journal.get(parent_id)
        running = self._running[record.job_id]
        # A Retry's parent failed and never painted anything; any other parent did, and lost its tiles.
        if not painted and (parent is None or parent.state == "done"):
            logger.info("job %s repaints %s from scratch: its tiles are no longer kept", record.job_id, parent_id)
            running.note = messages.REPAINTED_FROM_SCRATCH
        # The strip's tile of the strength asked for previews the result while it is painted at full size.
        running.ready_tile = dict(painted).get(record.request.strength)
        return painted

    async def _follow(self, record: JobRecord, reply: Reply, handle: JobHandle) -> None:
        throttle = Throttle(self.config.bot.progress_edit_interval_s)
        cancel = views.cancel_view(record.job_id)
        async for event in handle.events():
            if isinstance(event, JobDone):
                await self._deliver(record, reply, event)
            elif isinstance(event, JobFailed):
                logger.info("job %s failed: %s (%s)", record.job_id, event.kind, event.reason)
                await self._fail(record, reply, event)
            else:
                if isinstance(event, JobStarted):
                    await asyncio.to_thread(self.journal.mark_running, record.job_id)
                if throttle.ready():
                    await self._show_progress(record, reply, event, cancel)

    async def _show_progress(self, record: JobRecord, reply: Reply,
                             event: JobQueued | JobStarted | JobProgress, cancel: discord.ui.View) -> None:
        files = None
        if isinstance(event, JobProgress):
            text = messages.progress(event.step, event.total, event.elapsed)
            files = [("preview.jpg", event.preview)] if event.preview else None
        else:
            if isinstance(event, JobQueued):
                text = messages.queued(event.position, self.queue_wait_s(event.position))
            else:
                text = messages.started(event.attempt)
            ready_tile = self._running[record.job_id].ready_tile
            if ready_tile is not None:
                text = f"{messages.tile_ready(record.request.strength, record.request.size)}\n{text}"
                files = [("tile.png", ready_tile)]
        try:
            message_id = await reply.show(text, files=files, view=cancel)
        except discord.HTTPException:
            # A lost progress edit is not worth failing the job for; the next one or the result will do.
            logger.warning("progress edit for job %s failed", record.job_id, exc_info=True)
            return
        if message_id is not None and message_id != record.response_message_id:
            record.response_message_id = message_id
            await asyncio.to_thread(self.journal.set_response_message, record.job_id, message_id)

    async def _deliver(self, record: JobRecord, reply: Reply, done: JobDone) -> None:
        self._recent_seconds.append(done.seconds)
        request = record.request
        strength = done.strengths[done.chosen] if done.strengths else request.strength
        notes = [note for note in (done.note, self._running[record.job_id].note) if note]
        caption = messages.caption(strength=strength, strengths=done.strengths, seed=request.seed,
                                   size=request.size, seconds=done.seconds, note=" ".join(notes) or None,
                                   reused_count=len(done.reused), credit=preset_credit(request.preset))
        files = [(f"stylized.{done.image_ext}", done.image), (f"variants.{done.strip_ext}", done.strip)]
        view = views.result_view(record.job_id, strength=strength, strengths=done.strengths,
                                 size=request.size, upscale_size=max(self.config.style.sizes),
                                 gallery=record.guild_id in self.config.discord.gallery_channels,
                                 timelapse=bool(done.timelapse))
        result = {"strengths": list(done.strengths), "style_weights": list(done.style_weights),
                  "chosen": done.chosen, "seconds": done.seconds, "image_size": list(done.image_size)}
        # Shutdown lets a delivery finish: cut between the reply and the journal, the job would be painted twice.
        self._running[record.job_id].delivering = True
        if done.tiles:
            # Kept before the result is shown: a click on its Less/More/Upscale must find them.
            tiles = list(zip(done.strengths, done.tiles, strict=True))
            await asyncio.to_thread(self.journal.keep_tiles, record.job_id, tiles)
        if done.timelapse:
            await asyncio.to_thread(self.journal.keep_timelapse, record.job_id, done.timelapse)
        try:
            message_id = await reply.deliver(messages.ready(record.user_id, caption), files=files, view=view)
        except Undeliverable as error:
            # Kept unfinished in the journal: the next start paints and tries again.
            logger.error("job %s could not be delivered anywhere: %s", record.job_id, error)
            await self._tell(record, reply, messages.undeliverable(error.channel_id, error.missing), None)
            return
        except discord.HTTPException:
            logger.exception("delivering job %s failed", record.job_id)
            await self._fail(record, reply, JobFailed("internal", "delivery failed"))
            return
        await asyncio.to_thread(self.journal.mark_done, record.job_id, result, message_id)
        logger.info("job %s delivered in message %s (%.1f s painting)", record.job_id, message_id, done.seconds)

    async def _fail(self, record: JobRecord, reply: Reply, failure: JobFailed | None, *,
                    text: str | None = None) -> None:
        """End the job in the journal and tell its requester privately, with Retry where another go could work."""
        if text is None:
            assert failure is not None
            text = messages.failure(failure.kind, failure.reason)
        await asyncio.to_thread(self.journal.mark_failed, record.job_id, text)
        retry = failure is None or failure.kind != "invalid_image"
        await self._tell(record, reply, text, views.retry_view(record.job_id) if retry else None)

    async def _tell(self, record: JobRecord, reply: Reply, text: str, view: discord.ui.View | None) -> None:
        try:
            await reply.tell_privately(text, view=view)
        except discord.HTTPException:
            logger.warning("could not tell user %s about job %s", record.user_id, record.job_id, exc_info=True)

    # ----- restart and shutdown -----

    async def resume(self, unfinished: list[JobRecord], reply_for: ReplyFor) -> None:
        """Finish what a previous run accepted, delivering where the user can still see it."""
        for record in unfinished:
            reply = reply_for(record)
            if reply is None:
                self.limits.release(record.job_id)
                logger.warning("job %s cannot be resumed: no token and no channel to post in", record.job_id)
                await asyncio.to_thread(self.journal.mark_failed, record.job_id, "nowhere to deliver")
                continue
            try:
                await self._restore_inputs(record)
            except Exception:  # noqa: BLE001 - whatever stops the download, the user hears the same
                logger.info("job %s cannot be resumed: attachments expired", record.job_id, exc_info=True)
                await asyncio.to_thread(self.journal.mark_failed, record.job_id, messages.RESUME_EXPIRED)
                self.limits.release(record.job_id)
                await self._tell(record, reply, messages.RESUME_EXPIRED, None)
                continue
            logger.info("resuming job %s for user %s", record.job_id, record.user_id)
            self.start(record, reply)

    async def _restore_inputs(self, record: JobRecord) -> None:
        """The journal keeps the bytes; only a row written without them needs the (expiring) URLs."""
        if record.content is None or record.style is None:
            content, style = record.attachment("content"), record.attachment("style")
            if content is None or style is None:
                raise LookupError("no attachment recorded")
            record.content, record.style = await asyncio.gather(self.fetch(content), self.fetch(style))

    def reserve_resumed(self, unfinished: list[JobRecord]) -> None:
        """Jobs accepted before a restart were promised: they count against the limits but are never refused."""
        for record in unfinished:
            self.limits.reserve(record.job_id, record.user_id, record.guild_id, force=True)

    async def shutdown(self) -> None:
        """Stop taking jobs, let uploads finish briefly, tell waiting users, close the executor: all bounded,
        so a stuck or unreachable executor cannot hold the process."""
        self.accepting = False
        logger.info("shutting down with %d job(s) in progress", len(self._running))
        finishing = [running.task for running in self._running.values() if running.delivering]
        if finishing:
            await asyncio.wait(finishing, timeout=DELIVERY_GRACE_S)
        jobs = [running for running in self._running.values() if not running.task.done()]
        # Our own tasks go first, so the executor's closing cancellations are not reported as failures.
        for running in jobs:
            running.task.cancel()
        await asyncio.gather(*(running.task for running in jobs), return_exceptions=True)
        await asyncio.gather(self._close_executor(), *(self._say_goodbye(running) for running in jobs))

    async def _close_executor(self) -> None:
        try:
            await asyncio.wait_for(self.executor.close(), EXECUTOR_CLOSE_TIMEOUT_S)
        except TimeoutError:
            logger.warning("the executor did not close within %g s; leaving it", EXECUTOR_CLOSE_TIMEOUT_S)
        except Exception:
            # Disconnecting cleanly matters more than a tidy executor; the worker dies with the process anyway.
            logger.exception("closing the executor failed")

    async def _say_goodbye(self, running: _Running) -> None:
        try:
            await asyncio.wait_for(running.reply.show(messages.RESTARTING, view=None), GOODBYE_TIMEOUT_S)
        except Exception:  # noqa: BLE001 - Discord unreachable, slow or refusing: shutdown goes on regardless
            logger.warning("could not tell user %s about the restart", running.record.user_id, exc_info=True)
