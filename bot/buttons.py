"""What the job buttons do once views.py acknowledged the click: read the journal row, then act."""

from __future__ import annotations

import asyncio
import io
import logging

import discord

from bot import messages
from bot.config import Config
from bot.customids import CustomId
from bot.download import DownloadError, download
from bot.intake import Intake, answer_privately
from bot.journal import JobRecord, Journal
from bot.replies import missing_permissions
from bot.request import Request
from bot.service import JobService
from stylizer.strength import MAX_STRENGTH, MIN_STRENGTH

logger = logging.getLogger(__name__)

REQUESTER_ONLY = ("cancel", "delete", "share", "retry")


class ButtonHandlers:
    """views.ButtonActions for the bot: one method per action, each given a click already acknowledged."""

    def __init__(self, *, config: Config, client: discord.Client, intake: Intake, service: JobService,
                 journal: Journal):
        self.config = config
        self.client = client
        self.intake = intake
        self.service = service
        self.journal = journal

    async def clicked(self, interaction: discord.Interaction, custom: CustomId) -> None:
        record = await asyncio.to_thread(self.journal.get, custom.job_id)
        if record is None:
            await answer_privately(interaction, messages.TOO_OLD)
            return
        if custom.action in REQUESTER_ONLY and interaction.user.id != record.user_id:
            await answer_privately(interaction, messages.NOT_YOURS)
            return
        if custom.action == "cancel":
            if not await self.service.cancel(record.job_id):
                await answer_privately(interaction, messages.NOT_CANCELLABLE)
        elif custom.action == "delete":
            await interaction.delete_original_response()
            await asyncio.to_thread(self.journal.forget_result_message, record.job_id)
        elif custom.action == "share":
            await self.share(interaction, record)
        elif custom.action == "timelapse":
            await self.timelapse(interaction, record)
        else:
            await self.repaint(interaction, record, custom)

    def _repainted(self, record: JobRecord, custom: CustomId) -> Request | str:
        """The request a repaint button asks for, or the line saying why there is none."""
        request, job_id = record.request, record.job_id
        if custom.action == "retry":
            return request.retried(parent_job=job_id)
        if custom.action in ("less", "more"):
            stepped = request.stepped(-1 if custom.action == "less" else 1, parent_job=job_id)
            if stepped is None:
                edge, limit = ("minimum", MIN_STRENGTH) if custom.action == "less" else ("maximum", MAX_STRENGTH)
                return messages.STRENGTH_AT_LIMIT.format(edge=edge, strength=limit)
            return stepped
        strengths = (record.result or {}).get("strengths", [])
        if custom.argument is None or custom.argument not in strengths:
            return messages.TOO_OLD
        return request.upscaled(custom.argument, max(self.config.style.sizes), parent_job=job_id)

    async def repaint(self, interaction: discord.Interaction, record: JobRecord, custom: CustomId) -> None:
        if record.content is None or record.style is None:
            await answer_privately(interaction, messages.TOO_OLD)
            return
        request = self._repainted(record, custom)
        if isinstance(request, str):
            await answer_privately(interaction, request)
            return
        await self.intake.submit(interaction, content=record.content, style=record.style,
                                 attachments=record.attachments, request=request)

    async def timelapse(self, interaction: discord.Interaction, record: JobRecord) -> None:
        """Post the animation of the picture forming, from the journal (so it works after a restart)."""
        animation = await asyncio.to_thread(self.journal.timelapse, record.job_id)
        if animation is None:
            await answer_privately(interaction, messages.NO_TIMELAPSE)
            return
        result = record.result or {}
        strengths, chosen = result.get("strengths") or [], result.get("chosen", 0)
        strength = strengths[chosen] if chosen < len(strengths) else record.request.strength
        await interaction.edit_original_response(
            content=messages.timelapse_caption(strength, result.get("seconds", 0.0)),
            attachments=[discord.File(io.BytesIO(animation), filename="timelapse.webp")],
        )

    async def share(self, interaction: discord.Interaction, record: JobRecord) -> None:
        """Post the picture in the gallery of the server it was clicked in; never in another server's."""
        gallery_id = self.config.discord.gallery_channels.get(interaction.guild_id or 0)
        message = interaction.message
        if gallery_id is None or message is None or not message.attachments:
            await answer_privately(interaction, messages.GALLERY_MISSING)
            return
        try:
            channel = self.client.get_channel(gallery_id) or await self.client.fetch_channel(gallery_id)
            if getattr(getattr(channel, "guild", None), "id", None) != interaction.guild_id:
                logger.warning("gallery channel %s is not in server %s", gallery_id, interaction.guild_id)
                await answer_privately(interaction, messages.GALLERY_MISSING)
                return
            missing = missing_permissions(channel)
            if missing:
                await answer_privately(interaction, messages.gallery_forbidden(gallery_id, missing))
                return
            image = message.attachments[0]
            data = await download(self.intake.fetch.session, image.url, filename=image.filename,  # type: ignore[union-attr]
                                  max_bytes=max(image.size, 1), declared_size=image.size)
            await channel.send(  # type: ignore[union-attr]
                messages.shared_post(record.user_id, record.request.style_name),
                file=discord.File(io.BytesIO(data), filename=image.filename),
                allowed_mentions=discord.AllowedMentions.none(),
            )
        except discord.Forbidden:
            logger.info("the gallery %s refused job %s", gallery_id, record.job_id, exc_info=True)
            await answer_privately(interaction, messages.gallery_forbidden(gallery_id, ["send_messages", "attach_files"]))
            return
        except (discord.HTTPException, DownloadError):
            logger.warning("sharing job %s to the gallery failed", record.job_id, exc_info=True)
            await answer_privately(interaction, messages.GALLERY_UNREACHABLE)
            return
        await answer_privately(interaction, messages.SHARED)
