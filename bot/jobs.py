"""Running one journaled job: submit it, show its progress, deliver the result or one line saying why not.

Where the answer goes depends on how the job reached us: a live interaction's deferred response, the same
response edited through its webhook after a restart (while the 15-minute token lasts), or, once the token is
gone, a new message in the channel that mentions the requester.
"""

from __future__ import annotations

import abc
import asyncio
import io
import logging
import time
from typing import TYPE_CHECKING

import discord

from bot import messages, views
from bot.journal import TOKEN_SAFETY_MARGIN_S, JobRecord
from bot.strength import style_weight_for
from stylizer.executor.base import (
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

if TYPE_CHECKING:
    from bot.app import StyleBot

logger = logging.getLogger(__name__)


class Reply(abc.ABC):
    """Somewhere a job's single status message lives; ``show`` replaces its whole content."""

    @abc.abstractmethod
    async def show(self, content: str, *, files: list[discord.File] | None = None,
                   view: discord.ui.View | None = None) -> int | None:
        """Replace the message; returns its id when known."""


def reply_for(bot: StyleBot, record: JobRecord, interaction: discord.Interaction | None = None) -> Reply | None:
    """Where a job's status goes: its interaction (live or by stored token), falling back to the channel."""
    fallback = ChannelReply(bot, record.channel_id, record.user_id) if record.channel_id else None
    if interaction is not None:
        primary: Reply | None = InteractionReply(interaction)
    elif record.token and record.application_id and record.response_message_id:
        primary = WebhookReply(bot, record.application_id, record.token, record.response_message_id)
    else:
        primary = None
    if primary is None or record.token_expires_at is None:
        return fallback
    if fallback is None:
        return primary
    return TokenReply(primary, fallback, record.token_expires_at)


class InteractionReply(Reply):
    def __init__(self, interaction: discord.Interaction):
        self.interaction = interaction

    async def show(self, content, *, files=None, view=None):
        message = await self.interaction.edit_original_response(
            content=content, attachments=files or [], view=view
        )
        return message.id


class WebhookReply(Reply):
    """The original response of an interaction from before a restart, edited with its stored token."""

    def __init__(self, bot: StyleBot, application_id: int, token: str, message_id: int):
        self.webhook = discord.Webhook.partial(application_id, token, client=bot)
        self.message_id = message_id

    async def show(self, content, *, files=None, view=None):
        message = await self.webhook.edit_message(
            self.message_id, content=content, attachments=files or [], view=view
        )
        return message.id


class ChannelReply(Reply):
    """A message of the bot's own in the job's channel, mentioning the requester; used once the token died."""

    def __init__(self, bot: StyleBot, channel_id: int, user_id: int):
        self.bot = bot
        self.channel_id = channel_id
        self.user_id = user_id
        self.message: discord.Message | None = None

    async def show(self, content, *, files=None, view=None):
        mentioned = f"<@{self.user_id}> {content}"
        if self.message is None:
            channel = self.bot.get_channel(self.channel_id) or await self.bot.fetch_channel(self.channel_id)
            self.message = await channel.send(  # type: ignore[union-attr]
                mentioned, files=files or [], view=view,
                allowed_mentions=discord.AllowedMentions(users=True),
            )
        else:
            self.message = await self.message.edit(content=mentioned, attachments=files or [], view=view)
        return self.message.id


class TokenReply(Reply):
    """The interaction's response while its token lives, then a channel message mentioning the requester.

    A token dies after 15 minutes, which a long queue can outlast; Discord then answers 401 or 404.
    """

    GONE_STATUSES = (401, 403, 404)

    def __init__(self, primary: Reply, fallback: Reply, token_expires_at: float):
        self.primary = primary
        self.fallback = fallback
        self.token_expires_at = token_expires_at
        self.using_fallback = False

    async def show(self, content, *, files=None, view=None):
        if not self.using_fallback and time.time() < self.token_expires_at - TOKEN_SAFETY_MARGIN_S:
            try:
                return await self.primary.show(content, files=files, view=view)
            except discord.HTTPException as error:
                if error.status not in self.GONE_STATUSES:
                    raise
                logger.info("interaction token no longer works (%s); posting in the channel instead", error.status)
        self.using_fallback = True
        return await self.fallback.show(content, files=files, view=view)


def job_options(bot: StyleBot, record: JobRecord) -> JobOptions:
    style, limits = bot.config.style, bot.config.limits
    options = record.options
    weight = options.get("style_weight") or style_weight_for(style.base_style_weight, options["strength"])
    return JobOptions(
        style_weight=weight,
        content_weight=style.content_weight,
        tv_weight=style.tv_weight,
        variants=options["variants"],
        size=options["size"],
        steps=bot.config.steps_for(options["size"]),
        seed=options["seed"],
        preserve_colors=options["preserve_colors"],
        output_max_bytes=options["output_max_bytes"],
        max_pixels=limits.max_pixels,
        max_input_side=limits.max_input_side,
    )


def _file(data: bytes, name: str) -> discord.File:
    return discord.File(io.BytesIO(data), filename=name)


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


async def run_job(bot: StyleBot, record: JobRecord, reply: Reply) -> None:
    """Run a journaled job to its end. The caller has reserved its place in ``bot.limits``; this releases it."""
    job_id = record.job_id
    try:
        await _run(bot, record, reply)
    except asyncio.CancelledError:
        # Shutdown: the journal still says accepted/running, so the next start resumes the job.
        raise
    except Exception as error:
        logger.exception("job %s failed inside the bot", job_id)
        await _fail(bot, record, reply, messages.failure("internal", str(error)))
    finally:
        bot.limits.release(job_id)
        bot.handles.pop(job_id, None)


async def _fail(bot: StyleBot, record: JobRecord, reply: Reply, text: str) -> None:
    await asyncio.to_thread(bot.journal.mark_failed, record.job_id, text)
    try:
        await reply.show(text, view=None)
    except discord.HTTPException:
        logger.warning("could not tell user %s that job %s failed", record.user_id, record.job_id, exc_info=True)


async def _run(bot: StyleBot, record: JobRecord, reply: Reply) -> None:
    options = job_options(bot, record)
    job = Job(
        job_id=record.job_id,
        content=record.content or b"",
        style=record.style or b"",
        options=options,
        owner=record.user_id,
        content_name=record.options.get("content_name", "content"),
        style_name=record.options.get("style_name", "style"),
        timeout_s=bot.config.limits.job_timeout_s,
    )
    if bot.executor_problem is not None:
        await _fail(bot, record, reply, messages.painter_unavailable(bot.executor_problem))
        return
    try:
        handle = await bot.executor.submit(job)
    except QueueFull:
        await _fail(bot, record, reply, messages.QUEUE_FULL)
        return
    except ExecutorUnavailable as error:
        logger.warning("executor unavailable for job %s: %s", record.job_id, error)
        await _fail(bot, record, reply, messages.painter_unavailable(str(error)))
        return
    bot.handles[record.job_id] = handle
    throttle = Throttle(bot.config.bot.progress_edit_interval_s)
    cancel = views.cancel_view(record.job_id)

    async def show_progress(text: str, files: list[discord.File] | None = None) -> None:
        try:
            message_id = await reply.show(text, files=files, view=cancel)
        except discord.HTTPException:
            # A lost progress edit is not worth failing the job for; the next one or the result will do.
            logger.warning("progress edit for job %s failed", record.job_id, exc_info=True)
            return
        if message_id is not None and message_id != record.response_message_id:
            record.response_message_id = message_id
            await asyncio.to_thread(bot.journal.set_response_message, record.job_id, message_id)

    async for event in handle.events():
        if isinstance(event, JobQueued):
            if throttle.ready():
                await show_progress(messages.queued(event.position))
        elif isinstance(event, JobStarted):
            await asyncio.to_thread(bot.journal.mark_running, record.job_id)
            if throttle.ready():
                await show_progress(messages.started(event.attempt))
        elif isinstance(event, JobProgress):
            if throttle.ready():
                files = [_file(event.preview, "preview.jpg")] if event.preview else None
                await show_progress(messages.progress(event.stage, event.step, event.total, event.elapsed), files)
        elif isinstance(event, JobDone):
            await _deliver(bot, record, reply, event)
        elif isinstance(event, JobFailed):
            logger.info("job %s failed: %s (%s)", record.job_id, event.kind, event.reason)
            await _fail(bot, record, reply, messages.failure(event.kind, event.reason))


async def _deliver(bot: StyleBot, record: JobRecord, reply: Reply, done: JobDone) -> None:
    options = record.options
    weight = options.get("style_weight") or done.style_weights[done.chosen]
    text = messages.caption(
        strength=options["strength"], style_weight=weight, seed=options["seed"], size=options["size"],
        seconds=done.seconds, variants=len(done.style_weights), note=done.note,
    )
    files = [_file(done.image, f"stylized.{done.image_ext}"), _file(done.strip, f"variants.{done.strip_ext}")]
    view = views.result_view(record.job_id, variants=len(done.style_weights), strength=options["strength"],
                             gallery=bool(bot.config.discord.gallery_channel))
    result = {"style_weights": list(done.style_weights), "chosen": done.chosen, "seconds": done.seconds,
              "image_size": list(done.image_size)}
    # Shutdown lets a delivery finish: cut between the reply and the journal, the job would be painted twice.
    bot.delivering.add(record.job_id)
    try:
        try:
            message_id = await reply.show(text, files=files, view=view)
        except discord.HTTPException:
            logger.exception("delivering job %s failed", record.job_id)
            await _fail(bot, record, reply, messages.failure("internal", ""))
            return
        await asyncio.to_thread(bot.journal.mark_done, record.job_id, result, message_id)
    finally:
        bot.delivering.discard(record.job_id)
    logger.info("job %s delivered in message %s (%.1f s painting)", record.job_id, message_id, done.seconds)
