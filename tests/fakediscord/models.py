"""State the fake keeps: snowflakes, users, stored files, messages and interactions.

Everything here is plain data plus the small amount of behaviour that Discord applies to it (message edits
with attachment keep/replace rules, the "loading" state of a deferred response), so that a test can ask
"what does the user see now" without parsing HTTP logs.
"""

from __future__ import annotations

import copy
import datetime as dt
import io
import itertools
import mimetypes
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

DISCORD_EPOCH_MS = 1420070400000
EPHEMERAL = 1 << 6
LOADING = 1 << 7
ATTACHMENT_IS_SPOILER = 1 << 3

_increment = itertools.count()


def snowflake() -> int:
    """A Discord-shaped id: discord.py derives `created_at` from it, so it must encode the current time."""
    now_ms = int(time.time() * 1000)
    return ((now_ms - DISCORD_EPOCH_MS) << 22) | (1 << 17) | (next(_increment) % 4096)


def iso_now() -> str:
    return dt.datetime.now(dt.UTC).isoformat()


def make_user(name: str, *, bot: bool = False, user_id: int | None = None) -> dict[str, Any]:
    return {
        "id": str(user_id or snowflake()),
        "username": name,
        "global_name": None if bot else name.title(),
        "discriminator": "0",
        "avatar": None,
        "bot": bot,
        "public_flags": 0,
        "flags": 0,
    }


def image_size(data: bytes) -> tuple[int, int] | None:
    try:
        from PIL import Image

        with Image.open(io.BytesIO(data)) as image:
            return image.size
    except Exception:  # the fake serves any bytes; only images get width/height, as on Discord
        return None


@dataclass
class StoredFile:
    """Bytes the CDN serves, with how it serves them (mode) and what the attachment payload claims.

    `url` is the unsigned CDN address; payloads carry it signed by `sign` (Discord's expiring `ex=` links)."""

    id: int
    filename: str
    data: bytes
    url: str
    content_type: str | None
    sign: Callable[[str], str] = lambda url: url
    flags: int = 0
    mode: str = "normal"
    declared_size: int | None = None
    declared_content_type: str | None = None
    served_content_type: str | None = None
    chunk_size: int = 16 * 1024
    chunk_delay: float = 0.2
    fetches: int = 0
    _size: tuple[int, int] | None | bool = False  # False: not computed yet

    def attachment_payload(self, *, ephemeral: bool = False) -> dict[str, Any]:
        """The attachment as Discord sends it now: freshly signed links; `ephemeral` (a file uploaded as a
        slash-command option) serves from /ephemeral-attachments/ and says so; no `content_type` when
        Discord could not tell one; `flags` only when set (a SPOILER_ file name sets IS_SPOILER)."""
        url = self.url.replace("/attachments/", "/ephemeral-attachments/", 1) if ephemeral else self.url
        signed = self.sign(url)
        payload: dict[str, Any] = {
            "id": str(self.id),
            "filename": self.filename,
            "size": self.declared_size if self.declared_size is not None else len(self.data),
            "url": signed,
            "proxy_url": signed,
        }
        content_type = self.declared_content_type or self.content_type
        if content_type:
            payload["content_type"] = content_type
        flags = self.flags | (ATTACHMENT_IS_SPOILER if self.filename.startswith("SPOILER_") else 0)
        if flags:
            payload["flags"] = flags
        if ephemeral:
            payload["ephemeral"] = True
        if self._size is False:
            self._size = image_size(self.data)
        size = self._size
        if isinstance(size, tuple):
            payload["width"], payload["height"] = size
        return payload


MENTION = re.compile(r"<@!?(\d+)>")


def pinged_users(content: str, allowed_mentions: dict[str, Any] | None) -> list[str]:
    """Whom a new message's user mentions notify: all of them unless allowed_mentions narrows it
    (``parse`` with "users", or the ``users`` list)."""
    mentioned = list(dict.fromkeys(MENTION.findall(content)))
    if allowed_mentions is None or "users" in (allowed_mentions.get("parse") or []):
        return mentioned
    allowed = {str(user) for user in allowed_mentions.get("users") or []}
    return [user for user in mentioned if user in allowed]


def guess_content_type(filename: str) -> str | None:
    """What Discord would detect from the name; None (no `content_type` in payloads) when it cannot tell."""
    return mimetypes.guess_type(filename)[0]


@dataclass
class FakeMessage:
    """A message as Discord stores it. `history` holds one snapshot per change, creation included."""

    id: int
    channel_id: int
    author: dict[str, Any]
    guild_id: int | None = None
    content: str = ""
    embeds: list[dict[str, Any]] = field(default_factory=list)
    components: list[dict[str, Any]] = field(default_factory=list)
    flags: int = 0
    attachments: list[StoredFile] = field(default_factory=list)
    message_type: int = 0
    webhook_id: int | None = None
    application_id: int | None = None
    message_reference: dict[str, Any] | None = None
    interaction: FakeInteraction | None = None
    created_at: str = field(default_factory=iso_now)
    edited_at: str | None = None
    deleted: bool = False
    history: list[dict[str, Any]] = field(default_factory=list)
    # User ids this message notified when it was created (mentions in its content that allowed_mentions let
    # through); edits never notify anyone, as on Discord.
    pinged: list[str] = field(default_factory=list)

    @property
    def ephemeral(self) -> bool:
        return bool(self.flags & EPHEMERAL)

    @property
    def loading(self) -> bool:
        """True while the user sees "Bot is thinking…" (a deferred response not yet edited)."""
        return bool(self.flags & LOADING)

    @property
    def files(self) -> list[tuple[str, bytes]]:
        return [(stored.filename, stored.data) for stored in self.attachments]

    def images(self) -> list[Any]:
        """The attached files decoded with Pillow (fully loaded), in attachment order."""
        from PIL import Image

        decoded = []
        for stored in self.attachments:
            image = Image.open(io.BytesIO(stored.data))
            image.load()
            decoded.append(image)
        return decoded

    def component_items(self) -> list[dict[str, Any]]:
        """Every interactive component (buttons, selects) in the message, flattened out of action rows."""
        items: list[dict[str, Any]] = []

        def walk(nodes: list[dict[str, Any]]) -> None:
            for node in nodes:
                if "custom_id" in node:
                    items.append(node)
                walk(node.get("components", []))
                if isinstance(node.get("accessory"), dict):
                    walk([node["accessory"]])

        walk(self.components)
        return items

    def find_component(self, custom_id: str) -> dict[str, Any] | None:
        return next((item for item in self.component_items() if item["custom_id"] == custom_id), None)

    def snapshot(self) -> dict[str, Any]:
        return {
            "time": time.monotonic(),
            "content": self.content,
            "embeds": copy.deepcopy(self.embeds),
            "components": copy.deepcopy(self.components),
            "flags": self.flags,
            "attachments": [stored.filename for stored in self.attachments],
            "deleted": self.deleted,
        }

    def record(self) -> None:
        self.history.append(self.snapshot())

    def to_payload(self) -> dict[str, Any]:
        payload: dict[str, Any] = {
            "id": str(self.id),
            "channel_id": str(self.channel_id),
            "type": self.message_type,
            "author": self.author,
            "content": self.content,
            "timestamp": self.created_at,
            "edited_timestamp": self.edited_at,
            "tts": False,
            "mention_everyone": False,
            "mentions": [],
            "mention_roles": [],
            "attachments": [stored.attachment_payload(ephemeral=self.ephemeral) for stored in self.attachments],
            "embeds": self.embeds,
            "components": self.components,
            "pinned": False,
            "flags": self.flags,
        }
        if self.guild_id is not None:
            payload["guild_id"] = str(self.guild_id)
        if self.webhook_id is not None:
            payload["webhook_id"] = str(self.webhook_id)
        if self.application_id is not None:
            payload["application_id"] = str(self.application_id)
        if self.message_reference is not None:
            payload["message_reference"] = self.message_reference
        if self.interaction is not None:
            payload["interaction_metadata"] = {
                "id": str(self.interaction.id),
                "type": self.interaction.type,
                "user": self.interaction.user,
                "authorizing_integration_owners": {},
            }
        return payload


@dataclass
class FakeInteraction:
    """One interaction the driver created, and everything the bot did in answer to it."""

    id: int
    token: str
    type: int
    payload: dict[str, Any]
    user: dict[str, Any]
    channel_id: int
    guild_id: int | None
    created_at: float
    wait_until: Callable[[Callable[[], bool], float, Callable[[], str]], Awaitable[None]]
    source_message: FakeMessage | None = None
    acked_at: float | None = None
    callback_type: int | None = None
    callbacks: list[dict[str, Any]] = field(default_factory=list)
    original: FakeMessage | None = None
    followups: list[FakeMessage] = field(default_factory=list)
    modal: dict[str, Any] | None = None

    @property
    def ack_latency(self) -> float | None:
        """Seconds from INTERACTION_CREATE to the bot's first callback (Discord allows 3)."""
        return None if self.acked_at is None else self.acked_at - self.created_at

    @property
    def messages(self) -> list[FakeMessage]:
        """The original response (if any) then the follow-ups, deleted ones included."""
        return ([self.original] if self.original is not None else []) + self.followups

    @property
    def edits(self) -> list[dict[str, Any]]:
        """Snapshots of the original response over time (creation, then one per edit)."""
        return list(self.original.history) if self.original is not None else []

    @property
    def ephemeral_messages(self) -> list[FakeMessage]:
        return [message for message in self.messages if message.ephemeral and not message.deleted]

    def describe(self) -> str:
        lines = [f"interaction {self.id} type {self.type}: callback_type={self.callback_type}"]
        for message in self.messages:
            lines.append(
                f"  message {message.id}: content={message.content!r} flags={message.flags} "
                f"files={[name for name, _ in message.files]} deleted={message.deleted} edits={len(message.history)}"
            )
        return "\n".join(lines)

    async def wait_acked(self, timeout: float = 3.0) -> float:
        """Seconds from creation to the first callback; raises TimeoutError if the bot never answered."""
        await self.wait_until(lambda: self.acked_at is not None, timeout, self.describe)
        assert self.ack_latency is not None
        return self.ack_latency

    async def wait_final(
        self,
        predicate: Callable[[FakeMessage], bool] | None = None,
        timeout: float = 60.0,
    ) -> FakeMessage:
        """Wait until the original response or a follow-up satisfies `predicate` and return that message.

        The default predicate is "changed since the interaction was created, no longer loading, and shows
        something" (a button's message that the bot has not touched yet does not count).
        """

        def default(message: FakeMessage) -> bool:
            touched = bool(message.history) and message.history[-1]["time"] >= self.created_at
            return touched and not message.loading and bool(message.content or message.embeds or message.attachments)

        check = predicate or default

        def found() -> FakeMessage | None:
            return next((m for m in self.messages if not m.deleted and check(m)), None)

        await self.wait_until(lambda: found() is not None, timeout, self.describe)
        message = found()
        assert message is not None
        return message
