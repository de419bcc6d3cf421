"""Taking a request: every entry point (/stylize, the context menu, the repaint buttons) comes through here.

Cheap checks first (shutting down, place, attachment size and type, limits), answered with one ephemeral line;
then acknowledge within Discord's 3 seconds (unless a button already did); then download, validate in a
thread, journal, and hand the job to the job service.
"""

from __future__ import annotations

import asyncio
import logging
import uuid

import discord

from bot import messages
from bot.config import Config
from bot.download import AttachmentFetcher, DownloadError
from bot.journal import INTERACTION_TOKEN_LIFETIME_S, AttachmentInfo, JobRecord, Journal
from bot.replies import Replies
from bot.request import Request
from bot.service import JobService

logger = logging.getLogger(__name__)

# Room left in Discord's upload limit for the multipart framing around the two result images.
UPLOAD_OVERHEAD_BYTES = 64 * 1024
Source = AttachmentInfo | bytes


def output_budget(interaction: discord.Interaction) -> int:
    # Two images go in one message; each gets half of what Discord lets this interaction upload.
    return max(64 * 1024, interaction.filesize_limit // 2 - UPLOAD_OVERHEAD_BYTES)


def may_be_an_image(content_type: str | None) -> bool:
    """Discord's declared type rules out what is declared otherwise; it leaves the type out when it could not
    tell from the name (a picture saved without an extension), and then the decoder, which reads the bytes
    and answers in words, decides."""
    return content_type is None or content_type.startswith("image/")


def attachment_info(role: str, attachment: discord.Attachment) -> AttachmentInfo:
    return AttachmentInfo(role=role, url=attachment.url, size=attachment.size,
                          content_type=attachment.content_type, filename=attachment.filename)


async def answer_privately(interaction: discord.Interaction, text: str) -> None:
    """One line only the user sees (a refusal, a confirmation), however far the interaction was answered."""
    response = interaction.response
    if not response.is_done():
        await response.send_message(text, ephemeral=True)
        return
    if response.type == discord.InteractionResponseType.deferred_channel_message:
        # A public "thinking…" is already showing: remove it rather than leave it hanging.
        try:
            await interaction.delete_original_response()
        except discord.HTTPException:
            logger.warning("could not delete the deferred response", exc_info=True)
    try:
        await interaction.followup.send(text, ephemeral=True)
    except discord.HTTPException:
        logger.warning("could not send the refusal", exc_info=True)


class Intake:
    def __init__(self, *, config: Config, service: JobService | None, journal: Journal | None,
                 fetch: AttachmentFetcher | None, replies: Replies | None):
        self.config = config
        self.service = service
        self.journal = journal
        self.fetch = fetch
        self.replies = replies

    # ----- cheap checks, before acknowledging -----

    def place_allowed(self, interaction: discord.Interaction) -> bool:
        discord_config = self.config.discord
        if discord_config.allowed_guilds and interaction.guild_id not in discord_config.allowed_guilds:
            return False
        return not discord_config.allowed_channels or interaction.channel_id in discord_config.allowed_channels

    def attachment_problem(self, attachment: AttachmentInfo) -> str | None:
        if not may_be_an_image(attachment.content_type):
            return messages.attachment_not_image(attachment.filename)
        limit = self.config.limits.max_attachment_bytes
        if attachment.size > limit:
            return messages.attachment_too_large(attachment.filename, attachment.size, limit)
        return None

    def _first_problem(self, interaction: discord.Interaction, sources: tuple[Source, Source]) -> str | None:
        assert self.service is not None
        if not self.service.accepting:
            return messages.SHUTTING_DOWN
        if not self.place_allowed(interaction):
            return messages.NOT_ALLOWED_HERE
        for source in sources:
            problem = isinstance(source, AttachmentInfo) and self.attachment_problem(source)
            if problem:
                return problem
        return None

    # ----- the shared intake -----

    async def submit(self, interaction: discord.Interaction, *, content: Source, style: Source,
                     attachments: list[AttachmentInfo], request: Request) -> None:
        """Take a request whose inputs are attachments to fetch or bytes the journal kept."""
        assert self.service is not None
        problem = self._first_problem(interaction, (content, style))
        if problem:
            await answer_privately(interaction, problem)
            return
        job_id = uuid.uuid4().hex
        refusal = self.service.reserve(job_id, interaction.user.id, interaction.guild_id)
        if refusal is not None:
            await answer_privately(interaction, messages.refusal(refusal))
            return
        started = False
        try:
            message_id = await self._acknowledge(interaction)
            inputs = await self._inputs(interaction, job_id, content, style, request)
            if inputs is not None:
                record = self._record(interaction, job_id, attachments, request, inputs, message_id)
                await asyncio.to_thread(self.journal.add, record)  # type: ignore[union-attr]
                logger.info("job %s accepted for user %s: %s", job_id, interaction.user.id, request)
                reply = self.replies.for_record(record, interaction)  # type: ignore[union-attr]
                assert reply is not None
                self.service.start(record, reply)
                started = True
        except Exception:
            logger.exception("taking job %s failed", job_id)
            await answer_privately(interaction, messages.failure("internal", ""))
        finally:
            if not started:
                self.service.release(job_id)

    async def _acknowledge(self, interaction: discord.Interaction) -> int | None:
        """Show "thinking…" (a button click already has); returns the response's message id, known from the
        start so that a restart at any point can still edit this very message."""
        message_id = None
        if not interaction.response.is_done():
            callback = await interaction.response.defer(thinking=True)
            message_id = getattr(callback, "message_id", None)
        if message_id is None:
            try:
                message_id = (await interaction.original_response()).id
            except discord.HTTPException:
                logger.warning("could not learn the id of the deferred response", exc_info=True)
        return message_id

    async def _inputs(self, interaction: discord.Interaction, job_id: str, content: Source, style: Source,
                      request: Request) -> tuple[bytes, bytes] | None:
        """Both images' bytes, checked as the painter would check them; None once the user was told why not."""
        assert self.service is not None
        try:
            content_bytes, style_bytes = await asyncio.gather(self._fetch(content), self._fetch(style))
            await asyncio.to_thread(self.validate, content_bytes, request.content_name, request.size)
            await asyncio.to_thread(self.validate, style_bytes, request.style_name, request.size)
        except (DownloadError, ValueError) as error:
            # InvalidImage is a ValueError whose text is written for the user.
            logger.info("job %s refused: %s", job_id, error)
            await answer_privately(interaction, str(error))
            return None
        if not self.service.accepting:
            # Shutdown began while the images were downloading: nothing was promised yet.
            await answer_privately(interaction, messages.SHUTTING_DOWN)
            return None
        return content_bytes, style_bytes

    async def _fetch(self, source: Source) -> bytes:
        if isinstance(source, bytes):
            return source
        assert self.fetch is not None
        return await self.fetch(source)

    def validate(self, data: bytes, name: str, size: int) -> None:
        """Refuse now, before anything is queued, what the painter would refuse later: the user hears at once."""
        # Imported here so that merely loading the bot does not pull in Pillow's plugins.
        from stylizer.images import ImageLimits, check_paintable, load_image

        limits = self.config.limits
        image = load_image(data, name=name, limits=ImageLimits(
            max_pixels=limits.max_pixels, max_side=limits.max_input_side, max_bytes=limits.max_attachment_bytes))
        check_paintable(image, size, name=name)

    def _record(self, interaction: discord.Interaction, job_id: str, attachments: list[AttachmentInfo],
                request: Request, inputs: tuple[bytes, bytes], message_id: int | None) -> JobRecord:
        return JobRecord(
            job_id=job_id, user_id=interaction.user.id, guild_id=interaction.guild_id,
            channel_id=interaction.channel_id, attachments=attachments, request=request,
            content=inputs[0], style=inputs[1], application_id=interaction.application_id,
            interaction_id=interaction.id, response_message_id=message_id, token=interaction.token,
            # The token's 15 minutes run from the interaction's creation, not from now.
            token_expires_at=interaction.created_at.timestamp() + INTERACTION_TOKEN_LIFETIME_S,
        )
