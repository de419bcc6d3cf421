"""Where one job talks to its requester: a status message it keeps replacing, then either a NEW message that
mentions them with the result (a ping, which an edit never is) or one line only they see.

Which way depends on how the job reached us: a live interaction, the same interaction's token stored in the
journal (after a restart, while its 15 minutes last), or, once the token is gone, the job's channel and the
requester's DMs. A channel the bot may not post in (403, or permissions it can see it lacks) never swallows
a result: it goes to the requester by DM with a line saying why, and if even that fails ``Undeliverable``
tells the job service to keep the job in the journal.
"""

from __future__ import annotations

import abc
import io
import logging

import discord

from bot import messages
from bot.journal import JobRecord, token_alive

logger = logging.getLogger(__name__)

# (filename, bytes): a discord.File is closed by the request that sends it, so every attempt makes its own.
Picture = tuple[str, bytes]
Files = list[Picture] | None


def _files(pictures: Files) -> list[discord.File]:
    return [discord.File(io.BytesIO(data), filename=name) for name, data in pictures or []]


class Undeliverable(Exception):
    """Neither the channel nor the requester's DMs took the message; ``missing`` names what the bot lacks."""

    def __init__(self, channel_id: int, missing: list[str]):
        super().__init__(f"channel {channel_id} refused the message (missing {missing}) and so did the DMs")
        self.channel_id = channel_id
        self.missing = missing


def only(user_id: int) -> discord.AllowedMentions:
    """Mentions that ping the requester and nobody else, whatever the text contains."""
    return discord.AllowedMentions(everyone=False, roles=False, users=[discord.Object(id=user_id)])


class Reply(abc.ABC):
    """A job's way to its requester."""

    @abc.abstractmethod
    async def show(self, content: str, *, files: Files = None, view: discord.ui.View | None = None) -> int | None:
        """Replace the status message (queue place, progress); returns its id when known."""

    @abc.abstractmethod
    async def deliver(self, content: str, *, files: Files, view: discord.ui.View | None) -> int | None:
        """Post the result as a new message that pings the requester, then remove the status message; returns
        the result message's id. Raises Undeliverable when no way to the requester is left."""

    @abc.abstractmethod
    async def tell_privately(self, content: str, *, view: discord.ui.View | None = None) -> None:
        """Say one line that only the requester sees (where Discord allows), then remove the status message."""


class InteractionReply(Reply):
    """An interaction's original response and follow-ups, through its token: live, or stored in the journal."""

    def __init__(self, webhook: discord.Webhook, user_id: int, message_id: int | None,
                 interaction: discord.Interaction | None = None):
        self.webhook = webhook
        self.user_id = user_id
        self.message_id = message_id
        self.interaction = interaction
        # Until the status has been edited once, Discord turns the first follow-up into the deferred
        # "thinking…" message itself, public and silent: that one is removed before following up.
        self.shown = False

    @classmethod
    def live(cls, interaction: discord.Interaction, message_id: int | None) -> InteractionReply:
        return cls(interaction.followup, interaction.user.id, message_id, interaction)

    @classmethod
    def stored(cls, client: discord.Client, record: JobRecord) -> InteractionReply:
        assert record.application_id is not None and record.token is not None
        # What Interaction.followup builds: an application webhook, the only kind that may send ephemerally.
        webhook = discord.Webhook.from_state(
            data={"id": record.application_id, "type": 3, "token": record.token},
            state=client._connection,  # noqa: SLF001 - the client's state lets the webhook's views dispatch
        )
        return cls(webhook, record.user_id, record.response_message_id)

    async def show(self, content, *, files=None, view=None):
        if self.interaction is not None:
            message = await self.interaction.edit_original_response(content=content, attachments=_files(files),
                                                                    view=view)
        elif self.message_id is None:
            return None  # the status was already removed: the job has ended
        else:
            message = await self.webhook.edit_message(self.message_id, content=content, attachments=_files(files),
                                                      view=view)
        self.message_id = message.id
        self.shown = True
        return message.id

    async def deliver(self, content, *, files, view):
        if not self.shown:
            await self._remove_status()
        message = await self.webhook.send(content, files=_files(files), view=view or discord.utils.MISSING,
                                          allowed_mentions=only(self.user_id), wait=True)
        await self._remove_status()
        return message.id

    async def tell_privately(self, content, *, view=None):
        if not self.shown:
            await self._remove_status()
        await self.webhook.send(content, view=view or discord.utils.MISSING, ephemeral=True, wait=True)
        await self._remove_status()

    async def _remove_status(self) -> None:
        message_id, self.message_id = self.message_id, None
        live, self.interaction = self.interaction, None
        try:
            if live is not None:
                await live.delete_original_response()
            elif message_id is not None:
                await self.webhook.delete_message(message_id)
        except discord.HTTPException:
            logger.warning("could not remove status message %s", message_id, exc_info=True)


def missing_permissions(channel: object) -> list[str]:
    """What the bot lacks to post a picture in ``channel``, as far as its cache knows (nothing in DMs)."""
    guild = getattr(channel, "guild", None)
    permissions_for = getattr(channel, "permissions_for", None)
    if guild is None or permissions_for is None or guild.me is None:
        return []
    granted = permissions_for(guild.me)
    send = "send_messages_in_threads" if isinstance(channel, discord.Thread) else "send_messages"
    return [name for name in ("view_channel", send, "attach_files") if not getattr(granted, name)]


class ChannelReply(Reply):
    """Messages of the bot's own in the job's channel; used once the interaction token died."""

    def __init__(self, client: discord.Client, channel_id: int, user_id: int):
        self.client = client
        self.channel_id = channel_id
        self.user_id = user_id
        self.status: discord.Message | None = None

    async def _channel(self) -> discord.abc.Messageable:
        channel = self.client.get_channel(self.channel_id) or await self.client.fetch_channel(self.channel_id)
        return channel  # type: ignore[return-value]

    async def show(self, content, *, files=None, view=None):
        text = f"<@{self.user_id}> {content}"
        if self.status is None:
            channel = await self._channel()
            if missing_permissions(channel):
                return None  # no status where the bot may not post; the result will find its way
            # No ping for a status line: the result's own message will ping.
            self.status = await channel.send(text, files=_files(files), view=view,
                                             allowed_mentions=discord.AllowedMentions.none())
        else:
            self.status = await self.status.edit(content=text, attachments=_files(files), view=view)
        return self.status.id

    async def deliver(self, content, *, files, view):
        missing: list[str] = []
        try:
            channel = await self._channel()
            missing = missing_permissions(channel)
            if not missing:
                message = await channel.send(content, files=_files(files), view=view,
                                             allowed_mentions=only(self.user_id))
                await self._remove_status()
                return message.id
        except discord.Forbidden:
            logger.info("channel %s refused the result for user %s", self.channel_id, self.user_id, exc_info=True)
            missing = missing or ["send_messages", "attach_files"]
        message = await self._direct(messages.sent_by_dm(self.channel_id, missing) + "\n" + content, files=files,
                                     view=view)
        if message is None:
            raise Undeliverable(self.channel_id, missing)
        await self._remove_status()
        return message.id

    async def tell_privately(self, content, *, view=None):
        if await self._direct(content, view=view) is None:
            channel = await self._channel()
            await channel.send(f"<@{self.user_id}> {content}", view=view or discord.utils.MISSING,
                               allowed_mentions=only(self.user_id))
        await self._remove_status()

    async def _direct(self, content: str, *, files: Files = None,
                      view: discord.ui.View | None = None) -> discord.Message | None:
        try:
            user = self.client.get_user(self.user_id) or await self.client.fetch_user(self.user_id)
            return await user.send(content, files=_files(files), view=view or discord.utils.MISSING)
        except discord.HTTPException:
            logger.info("user %s takes no direct messages from the bot", self.user_id, exc_info=True)
            return None

    async def _remove_status(self) -> None:
        if self.status is None:
            return
        try:
            await self.status.delete()
        except discord.HTTPException:
            logger.warning("could not remove status message %s", self.status.id, exc_info=True)
        self.status = None


class TokenReply(Reply):
    """The interaction while its token lives, then the channel and DMs.

    A token dies after 15 minutes, which a long queue can outlast; Discord then answers 401 or 404.
    """

    GONE_STATUSES = (401, 403, 404)

    def __init__(self, primary: Reply, fallback: Reply, token_expires_at: float):
        self.primary = primary
        self.fallback = fallback
        self.token_expires_at = token_expires_at
        self.using_fallback = False

    def _token_usable(self) -> bool:
        return not self.using_fallback and token_alive(self.token_expires_at)

    async def _either(self, method: str, *args, **kwargs):
        if self._token_usable():
            try:
                return await getattr(self.primary, method)(*args, **kwargs)
            except discord.HTTPException as error:
                if error.status not in self.GONE_STATUSES:
                    raise
                logger.info("interaction token no longer works (%s); using the channel instead", error.status)
        self.using_fallback = True
        return await getattr(self.fallback, method)(*args, **kwargs)

    async def show(self, content, *, files=None, view=None):
        return await self._either("show", content, files=files, view=view)

    async def deliver(self, content, *, files, view):
        return await self._either("deliver", content, files=files, view=view)

    async def tell_privately(self, content, *, view=None):
        return await self._either("tell_privately", content, view=view)


class Replies:
    """Builds a job's Reply from its journal row (and its live interaction, when there is one)."""

    def __init__(self, client: discord.Client):
        self.client = client

    def for_record(self, record: JobRecord, interaction: discord.Interaction | None = None) -> Reply | None:
        fallback = ChannelReply(self.client, record.channel_id, record.user_id) if record.channel_id else None
        if interaction is not None:
            primary: Reply | None = InteractionReply.live(interaction, record.response_message_id)
        elif record.token and record.application_id and record.response_message_id:
            primary = InteractionReply.stored(self.client, record)
        else:
            primary = None
        if primary is None or record.token_expires_at is None:
            return fallback
        if fallback is None:
            return primary
        return TokenReply(primary, fallback, record.token_expires_at)
