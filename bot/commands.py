"""The slash command, the two message context menus and the buttons' handlers.

Every request goes the same way: cheap checks first (place, attachment size and type, limits) answered with
one ephemeral line; then defer within Discord's 3 seconds; then download, validate in a thread, journal,
and hand the job to bot.jobs.run_job in a task of its own.
"""

from __future__ import annotations

import asyncio
import io
import logging
import random
import uuid
from typing import TYPE_CHECKING

import discord
from discord import app_commands

from bot import messages
from bot.customids import CustomId
from bot.download import DownloadError, download
from bot.jobs import reply_for
from bot.journal import INTERACTION_TOKEN_LIFETIME_S, AttachmentInfo, JobRecord
from bot.memory import StyleMemory
from bot.strength import MAX_STRENGTH, MIN_STRENGTH, step_strength

if TYPE_CHECKING:
    from bot.app import StyleBot

logger = logging.getLogger(__name__)

# Room left in Discord's upload limit for the multipart framing around the two result images.
UPLOAD_OVERHEAD_BYTES = 64 * 1024


class Actions:
    def __init__(self, bot: StyleBot):
        self.bot = bot
        self.config = bot.config
        self.styles = StyleMemory(bot.config.limits.style_memory_s)

    # ----- cheap checks, before deferring -----

    def _place_allowed(self, interaction: discord.Interaction) -> bool:
        discord_config = self.config.discord
        if discord_config.allowed_guilds and interaction.guild_id not in discord_config.allowed_guilds:
            return False
        return not discord_config.allowed_channels or interaction.channel_id in discord_config.allowed_channels

    def _attachment_problem(self, attachment: AttachmentInfo) -> str | None:
        if not (attachment.content_type or "").startswith("image/"):
            return messages.attachment_not_image(attachment.filename)
        limit = self.config.limits.max_attachment_bytes
        if attachment.size > limit:
            return messages.attachment_too_large(attachment.filename, attachment.size, limit)
        return None

    async def _refuse(self, interaction: discord.Interaction, text: str) -> None:
        if interaction.response.is_done():
            await interaction.followup.send(text, ephemeral=True)
        else:
            await interaction.response.send_message(text, ephemeral=True)

    # ----- the shared intake -----

    async def submit(self, interaction: discord.Interaction, *, content: AttachmentInfo | bytes,
                     style: AttachmentInfo | bytes, attachments: list[AttachmentInfo], strength: int,
                     size: int, seed: int | None, preserve_colors: bool, variants: int,
                     style_weight: float | None = None, content_name: str, style_name: str) -> None:
        """Take a request whose inputs are attachments to fetch or bytes the journal kept."""
        if not self.bot.accepting:
            await self._refuse(interaction, messages.SHUTTING_DOWN)
            return
        if not self._place_allowed(interaction):
            await self._refuse(interaction, messages.NOT_ALLOWED_HERE)
            return
        for attachment in (content, style):
            problem = isinstance(attachment, AttachmentInfo) and self._attachment_problem(attachment)
            if problem:
                await self._refuse(interaction, problem)
                return
        job_id = uuid.uuid4().hex
        refusal = self.bot.limits.reserve(job_id, interaction.user.id, interaction.guild_id)
        if refusal is not None:
            await self._refuse(interaction, messages.refusal(refusal))
            return
        started = False
        try:
            callback = await interaction.response.defer(thinking=True)
            try:
                content_bytes, style_bytes = await asyncio.gather(self._fetch(content), self._fetch(style))
                await asyncio.to_thread(self._validate, content_bytes, content_name, size)
                await asyncio.to_thread(self._validate, style_bytes, style_name, size)
            except (DownloadError, ValueError) as error:
                # InvalidImage is a ValueError whose text is written for the user.
                logger.info("job %s refused: %s", job_id, error)
                await self._withdraw(interaction, str(error))
                return
            if not self.bot.accepting:
                # Shutdown began while the images were downloading: nothing was promised yet.
                await self._withdraw(interaction, messages.SHUTTING_DOWN)
                return
            record = JobRecord(
                job_id=job_id,
                user_id=interaction.user.id,
                guild_id=interaction.guild_id,
                channel_id=interaction.channel_id,
                attachments=attachments,
                options={
                    "strength": strength, "size": size, "seed": seed, "preserve_colors": preserve_colors,
                    "variants": variants, "style_weight": style_weight, "content_name": content_name,
                    "style_name": style_name, "output_max_bytes": self._output_budget(interaction),
                },
                content=content_bytes,
                style=style_bytes,
                application_id=interaction.application_id,
                interaction_id=interaction.id,
                # Known from the start, so that a restart at any point can still edit this very message.
                response_message_id=await self._response_message_id(interaction, callback),
                token=interaction.token,
                # The token's 15 minutes run from the interaction's creation, not from now.
                token_expires_at=interaction.created_at.timestamp() + INTERACTION_TOKEN_LIFETIME_S,
            )
            await asyncio.to_thread(self.bot.journal.add, record)
            logger.info("job %s accepted for user %s: %s", job_id, interaction.user.id,
                        {k: v for k, v in record.options.items() if k != "output_max_bytes"})
            self.bot.start_job(record, reply_for(self.bot, record, interaction))
            started = True
        except Exception:
            logger.exception("taking job %s failed", job_id)
            await self._withdraw(interaction, messages.failure("internal", ""))
        finally:
            if not started:
                self.bot.limits.release(job_id)

    async def _response_message_id(self, interaction: discord.Interaction, callback) -> int | None:
        message_id = getattr(callback, "message_id", None)
        if message_id is None:
            try:
                message_id = (await interaction.original_response()).id
            except discord.HTTPException:
                logger.warning("could not learn the id of the deferred response", exc_info=True)
        return message_id

    async def _fetch(self, source: AttachmentInfo | bytes) -> bytes:
        if isinstance(source, bytes):
            return source
        return await download(self.bot.http_session, source.url, filename=source.filename,
                              max_bytes=self.config.limits.max_attachment_bytes, declared_size=source.size)

    def _validate(self, data: bytes, name: str, size: int) -> None:
        """Refuse now, before anything is queued, what the painter would refuse later."""
        # Imported here so that merely loading the bot does not pull in Pillow's plugins.
        from stylizer.images import ImageLimits, check_paintable, load_image

        limits = self.config.limits
        image = load_image(data, name=name, limits=ImageLimits(
            max_pixels=limits.max_pixels, max_side=limits.max_input_side, max_bytes=limits.max_attachment_bytes))
        check_paintable(image, size, name=name)

    def _output_budget(self, interaction: discord.Interaction) -> int:
        # Two images go in one message; each gets half of what Discord lets this interaction upload.
        return max(64 * 1024, interaction.filesize_limit // 2 - UPLOAD_OVERHEAD_BYTES)

    async def _withdraw(self, interaction: discord.Interaction, text: str) -> None:
        """After deferring: remove the public "thinking…" and say what went wrong privately."""
        try:
            await interaction.delete_original_response()
        except discord.HTTPException:
            logger.warning("could not delete the deferred response", exc_info=True)
        try:
            await interaction.followup.send(text, ephemeral=True)
        except discord.HTTPException:
            logger.warning("could not send the refusal", exc_info=True)

    # ----- entry points -----

    async def stylize(self, interaction: discord.Interaction, content: discord.Attachment,
                      style: discord.Attachment, strength: int | None, preserve_colors: bool,
                      seed: int | None, size: int | None) -> None:
        content_info, style_info = _info("content", content), _info("style", style)
        await self.submit(
            interaction, content=content_info, style=style_info, attachments=[content_info, style_info],
            strength=strength or self.config.style.default_strength,
            size=size or self.config.style.default_size,
            seed=_seed(seed), preserve_colors=preserve_colors, variants=self.config.style.variants,
            content_name=content.filename, style_name=style.filename,
        )

    async def use_as_style(self, interaction: discord.Interaction, message: discord.Message) -> None:
        image = _first_image(message)
        if image is None:
            await self._refuse(interaction, messages.NO_IMAGE_IN_MESSAGE)
            return
        info = _info("style", image)
        problem = self._attachment_problem(info)
        if problem:
            await self._refuse(interaction, problem)
            return
        self.styles.remember(interaction.user.id, info)
        minutes = max(1, round(self.config.limits.style_memory_s / 60))
        await self._refuse(interaction, messages.STYLE_REMEMBERED.format(filename=image.filename, minutes=minutes))

    async def stylize_with_my_style(self, interaction: discord.Interaction, message: discord.Message) -> None:
        style = self.styles.recall(interaction.user.id)
        if style is None:
            await self._refuse(interaction, messages.NO_STYLE_REMEMBERED)
            return
        image = _first_image(message)
        if image is None:
            await self._refuse(interaction, messages.NO_IMAGE_IN_MESSAGE)
            return
        content = _info("content", image)
        await self.submit(
            interaction, content=content, style=style, attachments=[content, style],
            strength=self.config.style.default_strength, size=self.config.style.default_size, seed=_seed(None),
            preserve_colors=False, variants=self.config.style.variants,
            content_name=image.filename, style_name=style.filename,
        )

    async def on_button(self, interaction: discord.Interaction, custom: CustomId) -> None:
        record = await asyncio.to_thread(self.bot.journal.get, custom.job_id)
        if record is None:
            await self._refuse(interaction, messages.TOO_OLD)
            return
        requester_only = custom.action in ("cancel", "delete", "share")
        if requester_only and interaction.user.id != record.user_id:
            await self._refuse(interaction, messages.NOT_YOURS)
            return
        if custom.action == "cancel":
            await self._cancel(interaction, record)
        elif custom.action == "delete":
            await interaction.response.defer()
            await interaction.delete_original_response()
            await asyncio.to_thread(self.bot.journal.forget_result_message, record.job_id)
        elif custom.action == "share":
            await self._share(interaction, record)
        else:
            await self._redo(interaction, record, custom)

    async def _cancel(self, interaction: discord.Interaction, record: JobRecord) -> None:
        handle = self.bot.handles.get(record.job_id)
        if handle is None:
            await self._refuse(interaction, messages.NOT_CANCELLABLE)
            return
        # Acknowledge silently: the job's own loop edits the message to say it was cancelled.
        await interaction.response.defer()
        await handle.cancel()

    async def _redo(self, interaction: discord.Interaction, record: JobRecord, custom: CustomId) -> None:
        if record.content is None or record.style is None:
            await self._refuse(interaction, messages.TOO_OLD)
            return
        options = record.options
        strength, size, variants = options["strength"], options["size"], options["variants"]
        style_weight = options.get("style_weight")
        if custom.action in ("less", "more"):
            delta = -1 if custom.action == "less" else 1
            stepped = step_strength(strength, delta)
            if stepped is None:
                edge = "minimum" if custom.action == "less" else "maximum"
                limit = MIN_STRENGTH if custom.action == "less" else MAX_STRENGTH
                await self._refuse(interaction, messages.STRENGTH_AT_LIMIT.format(edge=edge, strength=limit))
                return
            strength = stepped
            # A repainted variant has its own weight; a step still doubles or halves it.
            style_weight = None if style_weight is None else style_weight * 2.0**delta
        else:
            weights = (record.result or {}).get("style_weights", [])
            if custom.argument is None or custom.argument >= len(weights):
                await self._refuse(interaction, messages.TOO_OLD)
                return
            style_weight, variants, size = weights[custom.argument], 1, max(self.config.style.sizes)
        await self.submit(
            interaction, content=record.content, style=record.style, attachments=record.attachments,
            strength=strength, size=size, seed=options["seed"], preserve_colors=options["preserve_colors"],
            variants=variants, style_weight=style_weight, content_name=options["content_name"], style_name=options["style_name"],
        )

    async def _share(self, interaction: discord.Interaction, record: JobRecord) -> None:
        gallery_id = self.config.discord.gallery_channel
        message = interaction.message
        if not gallery_id or message is None or not message.attachments:
            await self._refuse(interaction, messages.GALLERY_MISSING)
            return
        await interaction.response.defer(ephemeral=True, thinking=True)
        try:
            channel = self.bot.get_channel(gallery_id) or await self.bot.fetch_channel(gallery_id)
            image = message.attachments[0]
            data = await download(self.bot.http_session, image.url, filename=image.filename,
                                  max_bytes=max(image.size, 1), declared_size=image.size)
            await channel.send(  # type: ignore[union-attr]
                messages.shared_post(record.user_id, record.options["style_name"]),
                file=discord.File(io.BytesIO(data), filename=image.filename),
                allowed_mentions=discord.AllowedMentions.none(),
            )
        except (discord.HTTPException, DownloadError):
            logger.warning("sharing job %s to the gallery failed", record.job_id, exc_info=True)
            await interaction.followup.send(messages.GALLERY_MISSING, ephemeral=True)
            return
        await interaction.followup.send(messages.SHARED, ephemeral=True)


def _info(role: str, attachment: discord.Attachment) -> AttachmentInfo:
    return AttachmentInfo(role=role, url=attachment.url, size=attachment.size,
                          content_type=attachment.content_type, filename=attachment.filename)


def _first_image(message: discord.Message) -> discord.Attachment | None:
    return next((a for a in message.attachments if (a.content_type or "").startswith("image/")), None)


def _seed(seed: int | None) -> int:
    # A seed is always chosen here so that Less/More style can repeat it.
    return random.randrange(2**31) if seed is None else seed


def register(bot: StyleBot) -> None:
    """Add the slash command and the context menus to ``bot.tree``; choices come from the config."""
    actions: Actions = bot.actions
    sizes = [app_commands.Choice(name=f"{size} px", value=size) for size in bot.config.style.sizes]

    @app_commands.command(name="stylize", description="Paint your photo in the style of a painting")
    @app_commands.describe(
        content="The photo to paint",
        style="The painting whose style to use",
        strength="How much style: 1 = a hint, 10 = mostly painting (each step doubles the style weight)",
        preserve_colors="Keep the photo's own colours",
        seed="Same seed, same picture: use it to repeat a result",
        size="Output size (longest side)",
    )
    @app_commands.choices(size=sizes)
    async def stylize(interaction: discord.Interaction, content: discord.Attachment, style: discord.Attachment,
                      strength: app_commands.Range[int, MIN_STRENGTH, MAX_STRENGTH] | None = None,
                      preserve_colors: bool = False,
                      seed: app_commands.Range[int, 0, 2**31 - 1] | None = None,
                      size: app_commands.Choice[int] | None = None) -> None:
        await actions.stylize(interaction, content, style, strength, preserve_colors, seed,
                              None if size is None else size.value)

    async def use_as_style(interaction: discord.Interaction, message: discord.Message) -> None:
        await actions.use_as_style(interaction, message)

    async def stylize_with_my_style(interaction: discord.Interaction, message: discord.Message) -> None:
        await actions.stylize_with_my_style(interaction, message)

    bot.tree.add_command(stylize)
    bot.tree.add_command(app_commands.ContextMenu(name="Use as style", callback=use_as_style))
    bot.tree.add_command(app_commands.ContextMenu(name="Stylize with my style", callback=stylize_with_my_style))
