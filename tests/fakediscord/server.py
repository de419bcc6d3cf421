"""FakeDiscord: REST API, gateway and CDN on one aiohttp server on 127.0.0.1, plus the driver API for tests."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import re
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web

from . import limits, spec
from . import permissions as perms
from .bot_process import BotProcess
from .gateway import INVALID_SESSION, RECONNECT, Gateway
from .models import (
    EPHEMERAL,
    LOADING,
    FakeInteraction,
    FakeMessage,
    StoredFile,
    guess_content_type,
    iso_now,
    make_user,
    pinged_users,
    snowflake,
)

GUILDS_INTENT = 1 << 0
GUILD_MESSAGES_INTENT = 1 << 9
DIRECT_MESSAGES_INTENT = 1 << 12
MESSAGE_CONTENT_INTENT = 1 << 15

CHANNEL_TEXT, CHANNEL_DM, CHANNEL_PUBLIC_THREAD, CHANNEL_PRIVATE_THREAD, CHANNEL_FORUM = 0, 1, 11, 12, 15
THREAD_TYPES = (10, CHANNEL_PUBLIC_THREAD, CHANNEL_PRIVATE_THREAD)

OPTION_SUB_COMMAND, OPTION_SUB_COMMAND_GROUP = 1, 2
OPTION_USER, OPTION_CHANNEL, OPTION_ROLE, OPTION_MENTIONABLE, OPTION_ATTACHMENT = 6, 7, 8, 9, 11

INTERACTION_COMMAND, INTERACTION_COMPONENT, INTERACTION_AUTOCOMPLETE, INTERACTION_MODAL_SUBMIT = 2, 3, 4, 5
COMMAND_CHAT_INPUT, COMMAND_USER, COMMAND_MESSAGE = 1, 2, 3
CALLBACK_MESSAGE, CALLBACK_DEFERRED_MESSAGE, CALLBACK_DEFERRED_UPDATE, CALLBACK_UPDATE, CALLBACK_MODAL = 4, 5, 6, 7, 9
CALLBACK_AUTOCOMPLETE_RESULT = 8


class UnknownRequestError(AssertionError):
    """The bot made a request the fake does not implement, or the fake itself crashed on one."""


class DiscordError(Exception):
    """Raised inside a handler to answer with Discord's JSON error shape."""

    def __init__(self, status: int, code: int, message: str, errors: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.errors = status, code, message, errors


@dataclass
class RequestRecord:
    method: str
    path: str
    time: float
    status: int | None = None
    query: dict[str, str] = field(default_factory=dict)


@dataclass
class Refusal:
    """A request the fake refused as Discord would (any DiscordError answer: 4xx with a JSON code)."""

    method: str
    path: str
    status: int
    code: int
    message: str
    errors: dict[str, Any] | None
    time: float


@dataclass
class Injection:
    method: str
    pattern: re.Pattern[str]
    remaining: int
    status: int
    body: dict[str, Any]
    headers: dict[str, str]
    hits: int = 0


def json_response(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    # discord.py only parses JSON when the header is exactly "application/json" (no charset suffix).
    return web.Response(
        body=json.dumps(data).encode(),
        status=status,
        headers={"Content-Type": "application/json", **(headers or {})},
    )


def _json_or_refuse(raw: bytes) -> Any:
    try:
        return json.loads(raw)
    except ValueError:
        raise DiscordError(400, 50109, "The request body contains invalid JSON.") from None


def _field_error(name: str, message: str, code: str = "BASE_TYPE_INVALID") -> dict[str, Any]:
    """Discord's `errors` tree for one field: {"name": {"_errors": [{"code", "message"}]}}."""
    return {name: {"_errors": [{"code": code, "message": message}]}}


def _pattern(path: str) -> re.Pattern[str]:
    """A route template like "/channels/{id}/messages" as an anchored regex; "*" also works as a wildcard."""
    regex = re.escape(path).replace(r"\*", "[^/]+")
    regex = re.sub(r"\\\{(\w+)\\\}", r"(?P<\1>[^/]+)", regex)
    return re.compile(f"^{regex}$")


class FakeDiscord:
    """A local Discord for end-to-end tests. Use as `async with FakeDiscord() as fake:`."""

    def __init__(
        self,
        token: str | None = None,
        *,
        interaction_deadline: float = 3.0,
        token_ttl: float = 15 * 60,
        attachment_size_limit: int = 10 * 1024 * 1024,
        heartbeat_interval_ms: int = 41250,
        allow_unknown: bool = False,
        cdn_url_ttl: float = 24 * 3600,
        shards: int = 1,
    ) -> None:
        self.token = token or f"fake.{secrets.token_urlsafe(24)}"
        self.interaction_deadline = interaction_deadline
        self.token_ttl = token_ttl
        self.attachment_size_limit = attachment_size_limit
        self.allow_unknown = allow_unknown
        self.cdn_url_ttl = cdn_url_ttl
        self._cdn_secret = secrets.token_bytes(16)
        self._cdn_clock_offset = 0.0

        self.application_id = snowflake()
        self.application_flags = 0
        self.bot_user = make_user("stylebot", bot=True, user_id=self.application_id)
        self.users: dict[str, dict[str, Any]] = {}
        self.guilds: dict[int, dict[str, Any]] = {}
        self.channels: dict[int, dict[str, Any]] = {}
        self.members: dict[int, list[dict[str, Any]]] = {}

        self.requests: list[RequestRecord] = []
        self.unknown_requests: list[dict[str, Any]] = []
        self.server_errors: list[str] = []
        self.refusals: list[Refusal] = []
        self.global_commands: dict[str, dict[str, Any]] = {}
        self.guild_commands: dict[int, dict[str, dict[str, Any]]] = {}
        self.command_syncs = 0
        self.interactions: dict[int, FakeInteraction] = {}
        self._by_token: dict[str, FakeInteraction] = {}
        self._token_created: dict[str, float] = {}
        self.messages: dict[int, FakeMessage] = {}
        self.files: dict[int, StoredFile] = {}
        self._injections: list[Injection] = []

        self.gateway = Gateway(self, heartbeat_interval_ms, shards=shards)
        self.bot: BotProcess | None = None
        self._change = asyncio.Event()
        self._runner: web.AppRunner | None = None
        self.port = 0
        self._routes = self._route_table()
        self._seed()

    # ----------------------------------------------------------------- lifecycle

    async def __aenter__(self) -> FakeDiscord:
        app = web.Application(middlewares=[self._middleware], client_max_size=512 * 1024 * 1024)
        app.router.add_get("/", self.gateway.handle)
        app.router.add_get("/resume/", self.gateway.handle)
        app.router.add_get("/attachments/{file_id}/{filename}", self._serve_file)
        app.router.add_get("/ephemeral-attachments/{file_id}/{filename}", self._serve_file)
        app.router.add_route("*", "/api/v{version:\\d+}/{tail:.*}", self._api)
        app.router.add_route("*", "/{tail:.*}", self._unrouted)
        # A short shutdown: a test must not wait a minute for a slow-mode download nobody reads any more.
        self._runner = web.AppRunner(app, access_log=None, handler_cancellation=True, shutdown_timeout=0.5)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        server = site._server
        assert server is not None and server.sockets
        self.port = server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        await self.close()
        if exc_type is None:
            self.check()

    async def close(self) -> None:
        if self.bot is not None:
            await self.bot.stop()
        await self.gateway.close_all()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    def check(self) -> None:
        """Raise if the bot made a request the fake does not know, or a handler crashed."""
        problems = []
        if self.unknown_requests and not self.allow_unknown:
            problems.append("unknown requests:\n" + "\n".join(json.dumps(r)[:600] for r in self.unknown_requests))
        if self.server_errors:
            problems.append("fake discord crashed while handling:\n" + "\n".join(self.server_errors))
        if problems:
            raise UnknownRequestError("\n".join(problems))

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def api_base(self) -> str:
        return f"{self.base_url}/api/v10"

    @property
    def gateway_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/"

    @property
    def resume_gateway_url(self) -> str:
        # A different path from gateway_url so a test can tell that the client resumed where READY told it to.
        return f"ws://127.0.0.1:{self.port}/resume/"

    def notify(self) -> None:
        self._change.set()
        self._change = asyncio.Event()

    async def wait_until(
        self, condition: Callable[[], bool], timeout: float, describe: Callable[[], str] | None = None
    ) -> None:
        """Wait for `condition` to hold, re-checking after every state change of the fake."""
        deadline = time.monotonic() + timeout
        while not condition():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                detail = describe() if describe else ""
                if self.bot is not None:
                    detail += f"\n---- bot log ({self.bot.log_path}), last lines:\n{self.bot.log_tail()}"
                raise TimeoutError(f"condition not met within {timeout:.1f}s. {detail}".strip())
            change = self._change
            try:
                await asyncio.wait_for(change.wait(), min(remaining, 0.5))
            except TimeoutError:
                pass

    # ----------------------------------------------------------------- seeded world

    def _seed(self) -> None:
        guild_id = snowflake()
        # With several shards the guild lives on the last one, so that direct messages (shard 0) and the
        # guild's events travel on different connections.
        while (guild_id >> 22) % self.gateway.shards != self.gateway.shards - 1:
            guild_id += 1 << 22
        self.guilds[guild_id] = {"id": guild_id, "name": "Fake Guild", "owner_id": None}
        self.members[guild_id] = []
        bot_role_id = str(snowflake())
        self.roles = [
            {"id": str(guild_id), "name": "@everyone", "permissions": str(perms.DEFAULT_EVERYONE), "position": 0,
             "color": 0, "hoist": False, "managed": False, "mentionable": False, "flags": 0},
            {"id": str(snowflake()), "name": "Artists", "permissions": "0", "position": 1,
             "color": 0x3498DB, "hoist": True, "managed": False, "mentionable": True, "flags": 0},
            # The role Discord creates for a bot invited with permissions (the bot's invite link asks for these).
            {"id": bot_role_id, "name": "stylebot", "position": 2, "color": 0, "hoist": False, "managed": True,
             "mentionable": False, "flags": 0, "tags": {"bot_id": str(self.application_id)},
             "permissions": str(perms.VIEW_CHANNEL | perms.SEND_MESSAGES | perms.ATTACH_FILES)},
        ]
        for name in ("general", "art"):
            self._new_channel(name, CHANNEL_TEXT, guild_id=guild_id)
        self._add_member(guild_id, self.bot_user, [bot_role_id])
        for name in ("alice", "bob"):
            self.add_user(name)
        self.guilds[guild_id]["owner_id"] = self.users["alice"]["id"]

    def _new_channel(self, name: str, channel_type: int, *, guild_id: int, parent_id: str | None = None,
                     **extra: Any) -> dict[str, Any]:
        channel_id = snowflake()
        channel: dict[str, Any] = {
            "id": str(channel_id), "type": channel_type, "guild_id": str(guild_id), "name": name,
            "parent_id": parent_id, "nsfw": False, "rate_limit_per_user": 0, "last_message_id": None, "flags": 0,
        }
        if channel_type in THREAD_TYPES:
            channel.update(message_count=0, member_count=1, total_message_sent=0)
        else:
            positions = [c.get("position", 0) for c in self.channels.values() if c.get("guild_id") == str(guild_id)]
            channel.update(position=len(positions), topic=None, permission_overwrites=[])
        channel.update(extra)
        self.channels[channel_id] = channel
        return channel

    def _add_member(self, guild_id: int, user: dict[str, Any], roles: list[str] | None = None) -> None:
        self.members[guild_id].append({
            "user": user, "roles": roles or [], "joined_at": iso_now(), "deaf": False, "mute": False,
            "flags": 0, "pending": False, "nick": None, "avatar": None, "premium_since": None,
        })

    def add_user(self, name: str, *, roles: list[str] | None = None) -> dict[str, Any]:
        """A human user who is a member of the guild. Role names are looked up in the guild's roles."""
        user = make_user(name)
        self.users[name] = user
        role_ids = [r["id"] for r in self.roles if r["name"] in (roles or [])]
        self._add_member(self.guild_id, user, role_ids)
        return user

    @property
    def guild_id(self) -> int:
        return next(iter(self.guilds))

    def channel(self, name_or_id: str | int | None = None) -> dict[str, Any]:
        if name_or_id is None:
            return next(iter(self.channels.values()))
        for channel in self.channels.values():
            if channel.get("name") == name_or_id or channel["id"] == str(name_or_id):
                return channel
        raise KeyError(f"no channel {name_or_id!r}; have {[c.get('name', c['id']) for c in self.channels.values()]}")

    def dm_channel(self, user: str | dict[str, Any] | None = None) -> dict[str, Any]:
        """The direct-message channel between `user` and the bot (pass it as `channel=` to act there)."""
        recipient = self.user(user)
        for channel in self.channels.values():
            if channel["type"] == 1 and channel["recipients"][0]["id"] == recipient["id"]:
                return channel
        channel_id = snowflake()
        self.channels[channel_id] = {"id": str(channel_id), "type": 1, "recipients": [recipient],
                                     "last_message_id": None, "flags": 0}
        return self.channels[channel_id]

    # ----------------------------------------------------------------- driver API: channels and permissions

    def _overwrite_target(self, target: str | dict[str, Any] | None) -> tuple[int, str]:
        """(overwrite type, id): None is the bot, "@everyone" and role names are roles, anything else a user."""
        if target is None:
            return 1, self.bot_user["id"]
        if target == "@everyone":
            return 0, str(self.guild_id)
        role = next((r for r in self.roles if isinstance(target, str) and r["name"] == target), None)
        return (0, role["id"]) if role is not None else (1, self.user(target)["id"])

    async def set_permissions(self, channel: str | int, *, allow: int = 0, deny: int = 0,
                              target: str | dict[str, Any] | None = None) -> dict[str, Any]:
        """Replace the channel's permission overwrite for `target` (None: the bot; "@everyone", a role name,
        a user name) with these bits; allow=deny=0 removes it. The bot gets CHANNEL_UPDATE, as on Discord."""
        found = self.channel(channel)
        if found["type"] in THREAD_TYPES or "guild_id" not in found:
            raise ValueError("threads take their parent's overwrites and DMs have none: set them on the parent")
        kind, target_id = self._overwrite_target(target)
        overwrites = [o for o in found["permission_overwrites"] if (o["type"], o["id"]) != (kind, target_id)]
        if allow or deny:
            overwrites.append({"id": target_id, "type": kind, "allow": str(allow), "deny": str(deny)})
        found["permission_overwrites"] = overwrites
        await self._broadcast("CHANNEL_UPDATE", found)
        return found

    async def set_role_permissions(self, role: str, permissions: int) -> None:
        """A role's guild-wide permissions ("@everyone", "Artists", or the bot's own role "stylebot")."""
        found = next(r for r in self.roles if r["name"] == role)
        found["permissions"] = str(permissions)
        await self._broadcast("GUILD_ROLE_UPDATE", {"guild_id": str(self.guild_id), "role": found})

    def permissions_for(self, channel: str | int, target: str | dict[str, Any] | None = None) -> int:
        """Discord's computed permissions of `target` (None: the bot; a user name) in the channel."""
        found = self.channel(channel)
        if "guild_id" not in found:
            return perms.DM_PERMISSIONS
        guild_id = int(found["guild_id"])
        user = self.bot_user if target is None else self.user(target)
        thread = found["type"] in THREAD_TYPES
        source = self.channel(found["parent_id"]) if thread else found
        return perms.channel_permissions(
            user_id=user["id"], owner_id=self.guilds[guild_id]["owner_id"], guild_id=str(guild_id),
            roles=self.roles, member_role_ids=self._member(guild_id, user)["roles"],
            overwrites=source["permission_overwrites"], thread=thread,
        )

    async def add_channel(self, name: str, *, forum: bool = False) -> dict[str, Any]:
        """A text channel (or a forum channel, whose messages live in posts) in the guild; CHANNEL_CREATE."""
        if forum:
            channel = self._new_channel(name, CHANNEL_FORUM, guild_id=self.guild_id, available_tags=[],
                                        default_reaction_emoji=None, default_sort_order=None,
                                        default_forum_layout=0, default_thread_rate_limit_per_user=0)
        else:
            channel = self._new_channel(name, CHANNEL_TEXT, guild_id=self.guild_id)
        await self._broadcast("CHANNEL_CREATE", channel)
        return channel

    def _new_thread(self, parent: dict[str, Any], name: str, thread_type: int, owner_id: str, *,
                    thread_id: int | None = None, archived: bool = False, locked: bool = False) -> dict[str, Any]:
        metadata = {"archived": archived, "auto_archive_duration": 1440, "archive_timestamp": iso_now(),
                    "locked": locked, "create_timestamp": iso_now()}
        if thread_type == CHANNEL_PRIVATE_THREAD:
            metadata["invitable"] = True
        thread = self._new_channel(name, thread_type, guild_id=int(parent["guild_id"]), parent_id=parent["id"],
                                   owner_id=owner_id, thread_metadata=metadata, applied_tags=[])
        if thread_id is not None:  # a thread started from a message (or a forum post) has the message's id
            channel_id = int(thread.pop("id"))
            self.channels[thread_id] = dict(id=str(thread_id), **thread)
            del self.channels[channel_id]
            thread = self.channels[thread_id]
        return thread

    async def add_thread(self, parent: str | int = "general", name: str = "thread", *, private: bool = False,
                         owner: str | dict[str, Any] | None = None, archived: bool = False,
                         locked: bool = False) -> dict[str, Any]:
        """A thread in a text channel, started by `owner` (default alice); THREAD_CREATE. Pass its id as
        `channel=` to act in it. Private threads: membership is not modelled (everyone who sees the parent)."""
        parent_channel = self.channel(parent)
        if parent_channel["type"] != CHANNEL_TEXT:
            raise ValueError(f"threads start in text channels; {parent!r} has type {parent_channel['type']}")
        kind = CHANNEL_PRIVATE_THREAD if private else CHANNEL_PUBLIC_THREAD
        thread = self._new_thread(parent_channel, name, kind, self.user(owner)["id"], archived=archived,
                                  locked=locked)
        await self._broadcast("THREAD_CREATE", dict(thread, newly_created=True))
        return thread

    async def forum_post(self, forum: str | int, title: str, content: str = "", *,
                         user: str | dict[str, Any] | None = None,
                         attachments: list[dict[str, Any]] | None = None) -> tuple[dict[str, Any], FakeMessage]:
        """`user` opens a post in a forum channel: a public thread whose starter message has the thread's id."""
        parent = self.channel(forum)
        if parent["type"] != CHANNEL_FORUM:
            raise ValueError(f"{forum!r} is not a forum channel")
        message_id = snowflake()
        thread = self._new_thread(parent, title, CHANNEL_PUBLIC_THREAD, self.user(user)["id"], thread_id=message_id)
        await self._broadcast("THREAD_CREATE", dict(thread, newly_created=True))
        message = await self.user_message(content, user=user, channel=thread["id"], attachments=attachments,
                                          message_id=message_id)
        return thread, message

    async def _broadcast(self, event: str, payload: dict[str, Any]) -> None:
        """A guild event for the session of the guild's shard (GUILDS intent), replayed on RESUME if it is
        disconnected."""
        session = self.gateway.session_for(int(payload["guild_id"]) if payload.get("guild_id") else None)
        if session is not None and session.intents & GUILDS_INTENT:
            await session.dispatch(event, payload)

    def user(self, user: str | dict[str, Any] | None = None) -> dict[str, Any]:
        if user is None:
            return self.users["alice"]
        if isinstance(user, dict):
            return user
        return self.users[user] if user in self.users else self.add_user(user)

    def guild_members(self, guild_id: int) -> list[dict[str, Any]]:
        return self.members[guild_id]

    def _member(self, guild_id: int, user: dict[str, Any]) -> dict[str, Any]:
        return next(m for m in self.members[guild_id] if m["user"]["id"] == user["id"])

    def guild_create_payload(self, guild_id: int) -> dict[str, Any]:
        guild = self.guilds[guild_id]
        members = self.guild_members(guild_id)
        return {
            "id": str(guild_id), "name": guild["name"], "owner_id": guild["owner_id"], "unavailable": False,
            "icon": None, "splash": None, "banner": None, "description": None, "features": [],
            "verification_level": 0, "default_message_notifications": 0, "explicit_content_filter": 0,
            "mfa_level": 0, "nsfw_level": 0, "premium_tier": 0, "preferred_locale": "en-US",
            "afk_timeout": 300, "system_channel_id": None, "rules_channel_id": None,
            "roles": self.roles, "emojis": [], "stickers": [],
            # member_count == len(members) makes discord.py consider the guild chunked: no REQUEST_MEMBERS wait.
            "member_count": len(members), "large": False, "members": members,
            "channels": [{k: v for k, v in c.items() if k != "guild_id"} for c in self.channels.values()
                         if c.get("guild_id") == str(guild_id) and c["type"] not in THREAD_TYPES],
            "threads": [c for c in self.channels.values() if c.get("guild_id") == str(guild_id)
                        and c["type"] in THREAD_TYPES and not c["thread_metadata"]["archived"]],
            "presences": [], "voice_states": [], "stage_instances": [],
            "guild_scheduled_events": [], "soundboard_sounds": [], "joined_at": iso_now(),
        }

    # ----------------------------------------------------------------- driver API: setup

    def add_attachment(
        self,
        data: bytes,
        filename: str,
        content_type: str | None = None,
        mode: str = "normal",
        *,
        declared_size: int | None = None,
        served_content_type: str | None = None,
        chunk_size: int = 16 * 1024,
        chunk_delay: float = 0.2,
        flags: int = 0,
    ) -> dict[str, Any]:
        """Register bytes on the fake CDN and return the attachment payload Discord would put in an interaction.

        `content_type` is what the payload claims; `served_content_type` is the HTTP header the CDN sends
        (defaults to the same). Modes: "normal"; "slow" (chunks of `chunk_size` every `chunk_delay` s);
        "truncated" (Content-Length of the whole file, connection closed after half of it);
        "lying_size" (the payload's size is a tenth of the real one unless `declared_size` says otherwise);
        "gone" (the CDN answers 404, as for an expired link). `content_type=""`: the payload has none, as
        Discord sends when it cannot tell (also for a name without a known extension). `flags`: attachment
        flags (a SPOILER_ name adds IS_SPOILER). Links are signed and expire (`cdn_url_ttl`).
        """
        if mode not in ("normal", "slow", "truncated", "lying_size", "gone"):
            raise ValueError(f"unknown attachment mode {mode!r}")
        if mode == "lying_size" and declared_size is None:
            declared_size = max(1, len(data) // 10)
        stored = self._store_file(filename, data, guess_content_type(filename) if content_type is None
                                  else content_type or None)
        stored.mode, stored.flags = mode, flags
        stored.declared_size = declared_size
        stored.served_content_type = served_content_type
        stored.chunk_size, stored.chunk_delay = chunk_size, chunk_delay
        return stored.attachment_payload()

    def _store_file(self, filename: str, data: bytes, content_type: str | None) -> StoredFile:
        file_id = snowflake()
        url = f"{self.base_url}/attachments/{file_id}/{filename}"
        stored = StoredFile(id=file_id, filename=filename, data=data, url=url, content_type=content_type,
                            sign=self._sign_cdn_url)
        self.files[file_id] = stored
        return stored

    def _cdn_now(self) -> float:
        return time.time() + self._cdn_clock_offset

    def _cdn_signature(self, path: str, expires: str) -> str:
        return hmac.new(self._cdn_secret, f"{path}:{expires}".encode(), hashlib.sha256).hexdigest()

    def _sign_cdn_url(self, url: str) -> str:
        """Discord's signed CDN link: `ex` (expiry) and `is` (issue) as hex Unix seconds, `hm` the signature."""
        issued = int(self._cdn_now())
        expires = f"{issued + int(self.cdn_url_ttl):x}"
        path = "/" + url.split("/", 3)[3]
        return f"{url}?ex={expires}&is={issued:x}&hm={self._cdn_signature(path, expires)}&"

    def advance_cdn_clock(self, seconds: float) -> None:
        """Let CDN time pass: links issued more than `cdn_url_ttl` s before the new time answer 404.
        Payloads made afterwards (e.g. a message fetched again) carry fresh links, as on Discord."""
        self._cdn_clock_offset += seconds

    def cdn_fetches(self, attachment: dict[str, Any]) -> int:
        """How many times the CDN served (or started serving) this attachment."""
        return self.files[int(attachment["id"])].fetches

    def inject_response(
        self,
        method: str,
        path: str,
        *,
        status: int,
        body: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
        count: int = 1,
    ) -> Injection:
        """Answer the next `count` matching API requests with this response instead of handling them.

        `path` is relative to the API base, with `*` or `{name}` for one path segment,
        e.g. "/webhooks/*/*/messages/@original".
        """
        injection = Injection(method.upper(), _pattern(path), count, status, body or {}, headers or {})
        self._injections.append(injection)
        return injection

    def inject_rate_limit(
        self, method: str, path: str, *, retry_after: float = 0.25, count: int = 1, is_global: bool = False,
        via: bool = True,
    ) -> Injection:
        """429 as Discord sends it. Without `via`, discord.py treats it as a Cloudflare ban and raises."""
        headers = {
            "Retry-After": str(max(1, round(retry_after))),
            "X-RateLimit-Limit": "5",
            "X-RateLimit-Remaining": "0",
            "X-RateLimit-Reset": f"{time.time() + retry_after:.3f}",
            "X-RateLimit-Reset-After": f"{retry_after:.3f}",
            "X-RateLimit-Bucket": "fake-" + secrets.token_hex(4),
            "X-RateLimit-Scope": "global" if is_global else "user",
        }
        if is_global:
            headers["X-RateLimit-Global"] = "true"
        if via:
            headers["Via"] = "1.1 google"
        body = {"message": "You are being rate limited.", "retry_after": retry_after, "global": is_global}
        return self.inject_response(method, path, status=429, body=body, headers=headers, count=count)

    # ----------------------------------------------------------------- driver API: waiting and gateway

    @property
    def registered_commands(self) -> dict[str, dict[str, Any]]:
        """Global commands by name, as the bot last registered them."""
        return self.global_commands

    @property
    def intents(self) -> int | None:
        return self.gateway.identify_payloads[-1].get("intents") if self.gateway.identify_payloads else None

    async def wait_for_bot_ready(self, timeout: float = 30.0, commands: tuple[str, ...] | None = None) -> None:
        """Wait until the bot identified on the gateway and registered commands (these names, if given)."""

        def ready() -> bool:
            if self.bot is not None and self.bot.starts and not self.bot.running:
                raise RuntimeError(f"the bot exited with {self.bot.returncode}:\n{self.bot.log_tail()}")
            started = self.bot.started_at if self.bot is not None else None
            # Sessions identified before the start are those of a bot process that was stopped or killed.
            if not self.gateway.shards_live(since=started):
                return False
            names = set(self.global_commands) | {n for g in self.guild_commands.values() for n in g}
            if commands is None:
                return bool(names)
            return set(commands) <= names

        def describe() -> str:
            return (f"identified={bool(self.gateway.identify_payloads)} commands={sorted(self.global_commands)} "
                    f"unknown={self.unknown_requests}")

        await self.wait_until(ready, timeout, describe)

    async def drop_connection(self, code: int = 4000) -> None:
        """Close the bot's gateway websocket; dispatches made until it RESUMEs are replayed then."""
        await self.gateway.drop(code)

    async def request_reconnect(self) -> None:
        """Gateway op 7 RECONNECT, as Discord sends before moving a session: the client closes and resumes."""
        await self.gateway.send_op(RECONNECT)

    async def invalidate_session(self) -> None:
        """Gateway op 9 INVALID_SESSION (not resumable): the client must IDENTIFY again on a new session;
        dispatches it missed are lost, as on Discord."""
        session = self.gateway.current
        await self.gateway.send_op(INVALID_SESSION, False)
        if session is not None:
            self.gateway.sessions.pop(session.id, None)

    async def wait_for_resume(self, timeout: float = 10.0, resumes: int = 1) -> None:
        def resumed() -> bool:
            session = self.gateway.current
            return session is not None and session.resumes >= resumes and session.ws is not None

        await self.wait_until(resumed, timeout)

    # ----------------------------------------------------------------- driver API: users acting

    def _find_command(self, name: str, command_type: int, guild_id: int | None) -> dict[str, Any]:
        scopes = [self.guild_commands.get(guild_id, {})] if guild_id is not None else []
        for scope in [*scopes, self.global_commands]:
            command = scope.get(name)
            if command is not None and command.get("type", 1) == command_type:
                return command
        raise LookupError(f"the bot registered no type-{command_type} command {name!r}; it has "
                          f"{sorted(self.global_commands)} globally")

    def _interaction_base(
        self, interaction_type: int, user: dict[str, Any], channel: dict[str, Any], data: dict[str, Any],
        locale: str,
    ) -> dict[str, Any]:
        interaction_id, token = snowflake(), "aW50ZXJhY3Rpb24" + secrets.token_urlsafe(48)
        guild_id = int(channel["guild_id"]) if channel.get("guild_id") else None
        payload: dict[str, Any] = {
            "id": str(interaction_id), "application_id": str(self.application_id), "type": interaction_type,
            "data": data, "channel_id": channel["id"], "channel": channel, "token": token, "version": 1,
            "locale": locale, "app_permissions": str(self.permissions_for(channel["id"])), "entitlements": [],
            "attachment_size_limit": self.attachment_size_limit,
        }
        if guild_id is not None:
            member = dict(self._member(guild_id, user), permissions=str(self.permissions_for(channel["id"], user)))
            payload.update(guild_id=str(guild_id), member=member, guild_locale="en-US", context=0,
                           guild={"id": str(guild_id), "locale": "en-US", "features": []},
                           authorizing_integration_owners={"0": str(guild_id)})
        else:
            payload.update(user=user, context=1, authorizing_integration_owners={"1": user["id"]})
        return payload

    async def _create_interaction(
        self, payload: dict[str, Any], user: dict[str, Any], source_message: FakeMessage | None = None
    ) -> FakeInteraction:
        interaction = FakeInteraction(
            id=int(payload["id"]), token=payload["token"], type=payload["type"], payload=payload, user=user,
            channel_id=int(payload["channel_id"]), guild_id=int(payload["guild_id"]) if "guild_id" in payload
            else None, created_at=time.monotonic(), wait_until=self.wait_until, source_message=source_message,
        )
        self.interactions[interaction.id] = interaction
        self._by_token[interaction.token] = interaction
        self._token_created[interaction.token] = interaction.created_at
        await self.gateway.dispatch("INTERACTION_CREATE", payload)
        self.notify()
        return interaction

    def _build_options(
        self, schema: list[dict[str, Any]], given: dict[str, Any], resolved: dict[str, dict[str, Any]],
        guild_id: int | None, acting: dict[str, Any],
    ) -> list[dict[str, Any]]:
        by_name = {option["name"]: option for option in schema}
        unknown = set(given) - set(by_name)
        if unknown:
            raise ValueError(f"options {sorted(unknown)} are not in the registered command ({sorted(by_name)})")
        missing = [o["name"] for o in schema if o.get("required") and o["name"] not in given]
        if missing:
            raise ValueError(f"required options {missing} were not given")
        built = []
        for name, value in given.items():
            option = by_name[name]
            kind = option["type"]
            if kind in (OPTION_SUB_COMMAND, OPTION_SUB_COMMAND_GROUP):
                built.append({"name": name, "type": kind,
                              "options": self._build_options(option.get("options", []), value, resolved, guild_id,
                                                             acting)})
                continue
            if kind == OPTION_ATTACHMENT:
                # A file picked for a command option is an ephemeral upload, with a link of its own.
                resolved.setdefault("attachments", {})[value["id"]] = self.files[int(value["id"])].attachment_payload(
                    ephemeral=True)
                value = value["id"]
            elif kind in (OPTION_USER, OPTION_MENTIONABLE):
                user = self.user(value)
                resolved.setdefault("users", {})[user["id"]] = user
                if guild_id is not None:
                    member = {k: v for k, v in self._member(guild_id, user).items() if k != "user"}
                    resolved.setdefault("members", {})[user["id"]] = dict(member, permissions="0")
                value = user["id"]
            elif kind == OPTION_CHANNEL:
                channel = self.channel(value)
                resolved.setdefault("channels", {})[channel["id"]] = dict(
                    channel, permissions=str(self.permissions_for(channel["id"], acting)))
                value = channel["id"]
            elif kind == OPTION_ROLE:
                role = next(r for r in self.roles if value in (r["name"], r["id"]))
                resolved.setdefault("roles", {})[role["id"]] = role
                value = role["id"]
            choices = option.get("choices")
            if choices and value not in [c["value"] for c in choices]:
                raise ValueError(f"{value!r} is not one of the choices of option {name!r}")
            built.append({"name": name, "type": kind, "value": value})
        return built

    async def slash_command(
        self,
        name: str,
        *,
        user: str | dict[str, Any] | None = None,
        options: dict[str, Any] | None = None,
        channel: str | int | None = None,
        guild: int | None = None,
        locale: str = "en-US",
    ) -> FakeInteraction:
        """A user runs /name. Attachment options take the dict from `add_attachment`; users/channels/roles
        take names. Options are checked against what the bot registered, as the Discord client does."""
        target_channel = self.channel(channel)
        guild_id = guild if guild is not None else target_channel.get("guild_id") and int(target_channel["guild_id"])
        command = self._find_command(name, COMMAND_CHAT_INPUT, guild_id)
        resolved: dict[str, dict[str, Any]] = {}
        acting = self.user(user)
        data: dict[str, Any] = {"id": command["id"], "name": name, "type": COMMAND_CHAT_INPUT,
                                "options": self._build_options(command.get("options", []), options or {},
                                                               resolved, guild_id, acting)}
        if resolved:
            data["resolved"] = resolved
        if guild_id is not None:
            data["guild_id"] = str(guild_id)
        return await self._create_interaction(
            self._interaction_base(INTERACTION_COMMAND, acting, target_channel, data, locale), acting
        )

    async def autocomplete(
        self,
        name: str,
        focused: str,
        typed: str,
        *,
        user: str | dict[str, Any] | None = None,
        channel: str | int | None = None,
        locale: str = "en-US",
    ) -> FakeInteraction:
        """A user types ``typed`` into option ``focused`` of /name (an APPLICATION_COMMAND_AUTOCOMPLETE
        interaction, type 4). Discord sends it only for an option registered with ``autocomplete: true``; the
        bot must answer with callback type 8 within 3 s. ``choices(interaction)`` reads the answer."""
        target_channel = self.channel(channel)
        guild_id = target_channel.get("guild_id") and int(target_channel["guild_id"])
        command = self._find_command(name, COMMAND_CHAT_INPUT, guild_id)
        option = next((o for o in command.get("options", []) if o["name"] == focused), None)
        if option is None or not option.get("autocomplete"):
            raise ValueError(f"option {focused!r} of /{name} is not registered with autocomplete")
        data: dict[str, Any] = {"id": command["id"], "name": name, "type": COMMAND_CHAT_INPUT,
                                "options": [{"name": focused, "type": option["type"], "value": typed,
                                             "focused": True}]}
        if guild_id:
            data["guild_id"] = str(guild_id)
        acting = self.user(user)
        return await self._create_interaction(
            self._interaction_base(INTERACTION_AUTOCOMPLETE, acting, target_channel, data, locale), acting
        )

    @staticmethod
    def choices(interaction: FakeInteraction) -> list[dict[str, Any]]:
        """The choices the bot answered an autocomplete interaction with (after ``wait_acked``)."""
        answers = [c for c in interaction.callbacks if c["type"] == CALLBACK_AUTOCOMPLETE_RESULT]
        if not answers:
            raise LookupError(f"the bot gave no autocomplete answer: {interaction.describe()}")
        return answers[0]["data"].get("choices") or []

    async def context_menu(
        self, name: str, message: FakeMessage, *, user: str | dict[str, Any] | None = None, locale: str = "en-US"
    ) -> FakeInteraction:
        """A user picks Apps → `name` on `message` (a message command)."""
        channel = self.channel(message.channel_id)
        command = self._find_command(name, COMMAND_MESSAGE, message.guild_id)
        data = {"id": command["id"], "name": name, "type": COMMAND_MESSAGE, "target_id": str(message.id),
                "resolved": {"messages": {str(message.id): message.to_payload()}}}
        acting = self.user(user)
        return await self._create_interaction(
            self._interaction_base(INTERACTION_COMMAND, acting, channel, data, locale), acting
        )

    async def click(
        self,
        message: FakeMessage,
        custom_id: str,
        *,
        user: str | dict[str, Any] | None = None,
        values: list[str] | None = None,
        locale: str = "en-US",
    ) -> FakeInteraction:
        """A user presses a button (or picks `values` in a select menu) on a message the bot sent."""
        if message.deleted:
            raise LookupError(f"message {message.id} was deleted; nobody can click on it")
        component = message.find_component(custom_id)
        if component is None:
            present = [item["custom_id"] for item in message.component_items()]
            raise LookupError(f"message {message.id} has no component {custom_id!r}; it has {present}")
        if component.get("disabled"):
            raise LookupError(f"component {custom_id!r} is disabled")
        data: dict[str, Any] = {"custom_id": custom_id, "component_type": component["type"]}
        if component["type"] != 2:
            data["values"] = values or []
            options = [option["value"] for option in component.get("options", [])]
            if options and not set(data["values"]) <= set(options):
                raise ValueError(f"{data['values']} are not all options of {custom_id!r} ({options})")
            if not component.get("min_values", 1) <= len(data["values"]) <= component.get("max_values", 1):
                raise ValueError(f"{len(data['values'])} values is outside {custom_id!r}'s min/max")
        elif values is not None:
            raise ValueError("a button has no values")
        channel = self.channel(message.channel_id)
        acting = self.user(user)
        payload = self._interaction_base(INTERACTION_COMPONENT, acting, channel, data, locale)
        payload["message"] = message.to_payload()
        return await self._create_interaction(payload, acting, source_message=message)

    async def submit_modal(
        self,
        interaction: FakeInteraction,
        values: dict[str, str],
        *,
        locale: str = "en-US",
    ) -> FakeInteraction:
        """The user fills in the modal the bot showed in answer to `interaction` and presses Submit."""
        if interaction.modal is None:
            raise LookupError(f"the bot showed no modal for interaction {interaction.id}")
        rows = []
        for row in interaction.modal.get("components", []):
            inputs = row.get("components", [row.get("component")] if "component" in row else [])
            filled = [{"type": item["type"], "custom_id": item["custom_id"], "value": values.get(item["custom_id"], "")}
                      for item in inputs if item and "custom_id" in item]
            if "component" in row:  # a Label (type 18) wraps exactly one input
                rows.append({"type": row["type"], "component": filled[0]})
            else:
                rows.append({"type": row["type"], "components": filled})
        data = {"custom_id": interaction.modal["custom_id"], "components": rows}
        channel = self.channel(interaction.channel_id)
        payload = self._interaction_base(INTERACTION_MODAL_SUBMIT, interaction.user, channel, data, locale)
        if interaction.source_message is not None:
            payload["message"] = interaction.source_message.to_payload()
        return await self._create_interaction(payload, interaction.user, source_message=interaction.source_message)

    async def user_message(
        self,
        content: str = "",
        *,
        user: str | dict[str, Any] | None = None,
        channel: str | int | None = None,
        attachments: list[dict[str, Any]] | None = None,
        message_id: int | None = None,
    ) -> FakeMessage:
        """A user posts a message (e.g. to use with `context_menu`). MESSAGE_CREATE is dispatched when the
        bot asked for the GUILD_MESSAGES (DIRECT_MESSAGES in a DM) intent; guild message content is blanked
        without MESSAGE_CONTENT, as on Discord."""
        target = self.channel(channel)
        author = self.user(user)
        guild_id = int(target["guild_id"]) if "guild_id" in target else None
        message = FakeMessage(id=message_id or snowflake(), channel_id=int(target["id"]), author=author,
                              guild_id=guild_id, content=content)
        message.attachments = [self.files[int(a["id"])] for a in attachments or []]
        message.record()
        self.messages[message.id] = message
        session = self.gateway.session_for(guild_id)
        intent = GUILD_MESSAGES_INTENT if guild_id is not None else DIRECT_MESSAGES_INTENT
        if session is not None and session.intents & intent:
            payload = message.to_payload()
            # Discord sends DM content to bots without the MESSAGE_CONTENT intent, guild content not.
            if guild_id is not None and not session.intents & MESSAGE_CONTENT_INTENT:
                payload.update(content="", attachments=[], embeds=[], components=[])
            if guild_id is not None:
                payload["member"] = {k: v for k, v in self._member(guild_id, author).items() if k != "user"}
            await session.dispatch("MESSAGE_CREATE", payload)
        self.notify()
        return message

    async def wait_for_message(
        self, predicate: Callable[[FakeMessage], bool], *, timeout: float = 60.0, channel: str | int | None = None
    ) -> FakeMessage:
        """Wait for a message by the bot (channel message, interaction response or follow-up) that is not
        deleted and satisfies `predicate`, e.g. a result the bot posts in the channel after a restart."""
        channel_id = int(self.channel(channel)["id"]) if channel is not None else None

        def found() -> FakeMessage | None:
            return next((m for m in self.messages.values()
                         if m.author["id"] == self.bot_user["id"] and not m.deleted
                         and (channel_id is None or m.channel_id == channel_id) and predicate(m)), None)

        def describe() -> str:
            return "bot messages: " + "; ".join(f"{m.id} {m.content[:60]!r} files={len(m.attachments)}"
                                                for m in self.messages.values())

        await self.wait_until(lambda: found() is not None, timeout, describe)
        message = found()
        assert message is not None
        return message

    def visible_messages(self, channel: str | int | None = None, *, user: str | dict[str, Any] | None = None
                         ) -> list[FakeMessage]:
        """What `user` sees in the channel now, oldest first: ephemeral messages only for their addressee."""
        channel_id = int(self.channel(channel)["id"])
        viewer = self.user(user)
        seen = []
        for message in self.messages.values():
            if message.channel_id != channel_id or message.deleted:
                continue
            if message.ephemeral and (message.interaction is None or message.interaction.user["id"] != viewer["id"]):
                continue
            seen.append(message)
        return sorted(seen, key=lambda m: m.id)

    # ----------------------------------------------------------------- driver API: the bot process

    async def start_bot(
        self, config_path: str | Path, *, env: dict[str, str] | None = None, log_path: str | Path | None = None,
        cwd: str | Path | None = None,
    ) -> BotProcess:
        """Run `python -m bot --config PATH` against this fake; its output goes to `log_path`."""
        if self.bot is not None and self.bot.running:
            raise RuntimeError("a bot is already running; stop_bot() or kill_bot() first")
        bot_env = {"DISCORD_TOKEN": self.token, "DISCORD_API_BASE": self.api_base,
                   "DISCORD_GATEWAY_URL": self.gateway_url, **(env or {})}
        self.bot = BotProcess(config_path, env=bot_env, log_path=log_path, cwd=cwd)
        self.bot.start()
        return self.bot

    async def stop_bot(self, timeout: float = 10.0) -> int | None:
        """SIGTERM, then SIGKILL after `timeout`; returns the exit status."""
        return await self.bot.stop(timeout) if self.bot is not None else None

    async def kill_bot(self) -> int | None:
        return await self.bot.kill() if self.bot is not None else None

    # ----------------------------------------------------------------- HTTP plumbing

    def record_unknown(self, method: str, path: str, detail: str) -> None:
        self.unknown_requests.append({"method": method, "path": path, "detail": detail})

    @web.middleware
    async def _middleware(self, request: web.Request, handler: Callable[[web.Request], Awaitable[Any]]) -> Any:
        record = RequestRecord(request.method, request.path, time.monotonic(), query=dict(request.query))
        self.requests.append(record)
        try:
            response = await handler(request)
        except DiscordError as error:
            self.refusals.append(Refusal(request.method, request.path, error.status, error.code, error.message,
                                         error.errors, time.monotonic()))
            body: dict[str, Any] = {"message": error.message, "code": error.code}
            if error.errors is not None:
                body["errors"] = error.errors
            response = json_response(body, error.status)
        except web.HTTPException:
            raise
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a crash in the fake must fail the test, not just look like a 500
            import traceback

            self.server_errors.append(f"{request.method} {request.path}: {traceback.format_exc()}")
            response = json_response({"message": f"fake discord crashed: {exc!r}", "code": 0}, 500)
        record.status = getattr(response, "status", None)
        self.notify()
        return response

    async def _unrouted(self, request: web.Request) -> web.Response:
        self.record_unknown(request.method, request.path, "outside the API, gateway and CDN paths")
        return json_response({"message": "404: Not Found", "code": 0}, 404)

    def _route_table(self) -> list[tuple[str, re.Pattern[str], Callable[..., Awaitable[web.StreamResponse]], bool]]:
        routes = [
            ("GET", "/users/@me", self._get_me, True),
            ("GET", "/oauth2/applications/@me", self._get_application, True),
            ("GET", "/gateway", self._get_gateway, False),
            ("GET", "/gateway/bot", self._get_gateway_bot, True),
            ("GET", "/applications/{app}/commands", self._get_commands, True),
            ("PUT", "/applications/{app}/commands", self._put_commands, True),
            ("POST", "/applications/{app}/commands", self._post_command, True),
            ("GET", "/applications/{app}/guilds/{guild}/commands", self._get_commands, True),
            ("PUT", "/applications/{app}/guilds/{guild}/commands", self._put_commands, True),
            ("POST", "/applications/{app}/guilds/{guild}/commands", self._post_command, True),
            ("POST", "/interactions/{interaction}/{token}/callback", self._callback, False),
            ("POST", "/webhooks/{app}/{token}", self._followup, False),
            ("GET", "/webhooks/{app}/{token}/messages/{message}", self._get_webhook_message, False),
            ("PATCH", "/webhooks/{app}/{token}/messages/{message}", self._edit_webhook_message, False),
            ("DELETE", "/webhooks/{app}/{token}/messages/{message}", self._delete_webhook_message, False),
            ("GET", "/users/{user}", self._get_user, True),
            ("GET", "/channels/{channel}", self._get_channel, True),
            ("GET", "/channels/{channel}/messages", self._list_channel_messages, True),
            ("POST", "/channels/{channel}/messages", self._post_channel_message, True),
            ("GET", "/channels/{channel}/messages/{message}", self._get_channel_message, True),
            ("PATCH", "/channels/{channel}/messages/{message}", self._edit_channel_message, True),
            ("DELETE", "/channels/{channel}/messages/{message}", self._delete_channel_message, True),
            ("POST", "/channels/{channel}/typing", self._typing, True),
            ("POST", "/channels/{channel}/threads", self._start_thread, True),
            ("POST", "/channels/{channel}/messages/{message}/threads", self._start_thread_from_message, True),
            ("POST", "/users/@me/channels", self._create_dm, True),
        ]
        return [(method, _pattern(path), handler, auth) for method, path, handler, auth in routes]

    async def _api(self, request: web.Request) -> web.StreamResponse:
        path = "/" + request.match_info["tail"]
        await self._validate(request, path)
        for injection in self._injections:
            if injection.remaining > 0 and injection.method == request.method and injection.pattern.match(path):
                injection.remaining -= 1
                injection.hits += 1
                await request.read()
                return json_response(injection.body, injection.status, injection.headers)
        for method, pattern, handler, auth in self._routes:
            match = pattern.match(path)
            if match is None or method != request.method:
                continue
            if auth and request.headers.get("Authorization") != f"Bot {self.token}":
                return json_response({"message": "401: Unauthorized", "code": 0}, 401)
            return await handler(request, **match.groupdict())
        body = await request.read()
        self.record_unknown(request.method, path, body[:500].decode(errors="replace"))
        return json_response({"message": f"fake discord does not implement {request.method} {path}", "code": 0},
                             404)

    async def _validate(self, request: web.Request, path: str) -> None:
        """Refuse what Discord refuses before any handler runs: a route or method the spec does not have,
        a body that is not JSON, one that breaks the operation's schema or a documented limit."""
        try:
            template, _ = spec.find_operation(request.method, path)
        except spec.RouteError as error:
            await request.read()
            text = "404: Not Found" if error.status == 404 else "405: Method Not Allowed"
            raise DiscordError(error.status, 0, text) from None
        payload, files = await self._parse_payload(request)
        request["fake.payload"] = payload, files
        errors = spec.body_errors(template, request.method, payload) if spec.has_body(template, request.method) else None
        errors = limits.merge(errors, limits.request_errors(template, request.method, payload, files))
        if errors:
            raise DiscordError(400, 50035, "Invalid Form Body", errors)
        too_large = limits.upload_too_large(files, self.attachment_size_limit)
        if too_large:
            raise DiscordError(413, 40005, "Request entity too large", {"files": too_large})

    async def _read_payload(self, request: web.Request) -> tuple[Any, dict[int, tuple[str, bytes]]]:
        """The request's JSON body (or multipart `payload_json`) and `files[n]`, as `_validate` parsed them."""
        return request["fake.payload"]

    async def _parse_payload(self, request: web.Request) -> tuple[Any, dict[int, tuple[str, bytes]]]:
        """The JSON body, or `payload_json` plus `files[n]` parts of a multipart body."""
        if not request.content_type.startswith("multipart/"):
            raw = await request.read()
            return (_json_or_refuse(raw) if raw else {}), {}
        payload: Any = {}
        files: dict[int, tuple[str, bytes]] = {}
        reader = await request.multipart()
        async for part in reader:
            data = await part.read()  # type: ignore[union-attr]
            name = part.name or ""
            if name == "payload_json":
                payload = _json_or_refuse(data)
                continue
            index = re.fullmatch(r"files\[(\d+)\]", name)
            if index is None:
                raise DiscordError(400, 50035, "Invalid Form Body",
                                   _field_error(name, "Unexpected multipart field.", "BASE_TYPE_INVALID"))
            files[int(index.group(1))] = (part.filename or f"file{index.group(1)}", bytes(data))
        return payload, files

    # ----------------------------------------------------------------- messages

    def _new_message(self, channel_id: int, payload: dict[str, Any] | None,
                     files: dict[int, tuple[str, bytes]], *, message_id: int | None = None,
                     **fields: Any) -> FakeMessage:
        """A message by the bot; with a payload it is validated first, so a rejected one leaves no trace."""
        channel = self.channels.get(channel_id)
        guild_id = int(channel["guild_id"]) if channel and channel.get("guild_id") else None
        message = FakeMessage(id=message_id or snowflake(), channel_id=channel_id, author=self.bot_user, guild_id=guild_id,
                              **fields)
        if payload is None:
            message.record()
        else:
            self._apply(message, payload, files, creating=True)
            message.pinged = pinged_users(message.content, payload.get("allowed_mentions"))
        self.messages[message.id] = message
        return message

    def _apply(self, message: FakeMessage, payload: dict[str, Any], files: dict[int, tuple[str, bytes]],
               *, creating: bool) -> None:
        """Apply a create/edit payload with Discord's rules, validating first so a rejected edit changes nothing."""
        content = payload.get("content", message.content) or ""
        embeds = payload.get("embeds", message.embeds) or []
        components = payload.get("components", message.components) or []
        errors: dict[str, Any] = {}
        # The stateless limits were checked before the handler ran (spec + limits); these depend on the message.
        if "attachments" in payload:
            existing = {stored.id: stored for stored in message.attachments}
            attachments = []
            for index, item in enumerate(payload["attachments"] or []):
                item_id = int(item["id"])
                if item_id in existing:
                    attachments.append(existing[item_id])
                elif item_id in files:
                    filename, data = files[item_id]
                    attachments.append((item.get("filename") or filename, data))
                else:
                    spec.add_error(errors, ["attachments", index, "id"], "ATTACHMENT_NOT_FOUND",
                                   f"Attachment {item_id} is neither kept nor uploaded.")
        else:
            attachments = list(message.attachments) + [files[index] for index in sorted(files)]
        if len(attachments) > limits.MAX_FILES:
            spec.add_error(errors, ["attachments"], "BASE_TYPE_MAX_LENGTH",
                           f"Must be {limits.MAX_FILES} or fewer in length.")
        if errors:
            raise DiscordError(400, 50035, "Invalid Form Body", errors)
        if creating and not (content or embeds or components or attachments or payload.get("poll")):
            raise DiscordError(400, 50006, "Cannot send an empty message")

        message.content, message.embeds, message.components = content, embeds, components
        message.attachments = [
            item if isinstance(item, StoredFile) else self._store_file(item[0], item[1], guess_content_type(item[0]))
            for item in attachments
        ]
        if "message_reference" in payload:
            message.message_reference = payload["message_reference"]
        requested_flags = payload.get("flags") or 0
        if creating:
            message.flags = requested_flags & ~LOADING
        else:
            # Edits keep ephemerality; any edit ends the "thinking…" state of a deferred response.
            message.flags = (message.flags & EPHEMERAL) | (requested_flags & ~(EPHEMERAL | LOADING))
            message.edited_at = iso_now()
        message.record()

    # ----------------------------------------------------------------- REST handlers

    async def _get_me(self, request: web.Request) -> web.Response:
        return json_response(dict(self.bot_user, verified=True, mfa_enabled=False, locale="en-US"))

    async def _get_user(self, request: web.Request, user: str) -> web.Response:
        known = [self.bot_user, *self.users.values()]
        found = next((u for u in known if u["id"] == user), None)
        if found is None:
            raise DiscordError(404, 10013, "Unknown User")
        return json_response(found)

    async def _get_application(self, request: web.Request) -> web.Response:
        owner = self.users["alice"]
        return json_response({
            "id": str(self.application_id), "name": "Fake Stylebot", "description": "", "icon": None,
            "bot_public": True, "bot_require_code_grant": False, "owner": owner, "verify_key": "0" * 64,
            "flags": self.application_flags, "team": None, "bot": self.bot_user, "tags": [],
            "redirect_uris": [], "interactions_endpoint_url": None, "approximate_guild_count": len(self.guilds),
        })

    async def _get_gateway(self, request: web.Request) -> web.Response:
        return json_response({"url": self.gateway_url})

    async def _get_gateway_bot(self, request: web.Request) -> web.Response:
        return json_response({
            "url": self.gateway_url, "shards": self.gateway.shards,
            "session_start_limit": {"total": 1000, "remaining": 999, "reset_after": 86_400_000,
                                    "max_concurrency": 1},
        })

    def _check_app(self, app: str) -> None:
        if app != str(self.application_id):
            raise DiscordError(403, 50001, "Missing Access")

    def _command_scope(self, guild: str | None) -> dict[str, dict[str, Any]]:
        if guild is None:
            return self.global_commands
        if int(guild) not in self.guilds:
            raise DiscordError(403, 50001, "Missing Access")
        return self.guild_commands.setdefault(int(guild), {})

    def _stored_command(self, payload: dict[str, Any], scope: dict[str, dict[str, Any]],
                        guild: str | None) -> dict[str, Any]:
        if "name" not in payload:
            raise DiscordError(400, 50035, "Invalid Form Body", {"name": "This field is required"})
        previous = scope.get(payload["name"])
        command = {
            "type": 1, "description": "", "options": [], "default_member_permissions": None, "nsfw": False,
            "dm_permission": True, "contexts": None, "integration_types": [0],
            **payload,
            "id": previous["id"] if previous else str(snowflake()),
            "application_id": str(self.application_id),
            "version": str(snowflake()),
        }
        if guild is not None:
            command["guild_id"] = guild
        return command

    async def _get_commands(self, request: web.Request, app: str, guild: str | None = None) -> web.Response:
        self._check_app(app)
        return json_response(list(self._command_scope(guild).values()))

    async def _put_commands(self, request: web.Request, app: str, guild: str | None = None) -> web.Response:
        self._check_app(app)
        payload, _ = await self._read_payload(request)
        scope = self._command_scope(guild)
        replacement = {}
        for item in payload:
            command = self._stored_command(item, scope, guild)
            replacement[command["name"]] = command
        scope.clear()
        scope.update(replacement)
        self.command_syncs += 1
        return json_response(list(scope.values()))

    async def _post_command(self, request: web.Request, app: str, guild: str | None = None) -> web.Response:
        self._check_app(app)
        payload, _ = await self._read_payload(request)
        scope = self._command_scope(guild)
        command = self._stored_command(payload, scope, guild)
        status = 200 if command["name"] in scope else 201
        scope[command["name"]] = command
        return json_response(command, status)

    def _interaction_for_callback(self, interaction_id: str, token: str, arrived: float) -> FakeInteraction:
        interaction = self.interactions.get(int(interaction_id)) if interaction_id.isdigit() else None
        if interaction is None or interaction.token != token:
            raise DiscordError(404, 10062, "Unknown interaction")
        if arrived - interaction.created_at > self.interaction_deadline:
            raise DiscordError(404, 10062, "Unknown interaction")
        if interaction.acked_at is not None:
            raise DiscordError(400, 40060, "Interaction has already been acknowledged.")
        return interaction

    async def _callback(self, request: web.Request, interaction: str, token: str) -> web.Response:
        arrived = time.monotonic()  # the deadline counts until the request arrives, not until its upload ends
        payload, files = await self._read_payload(request)
        target = self._interaction_for_callback(interaction, token, arrived)
        callback_type = payload.get("type")
        data = payload.get("data") or {}
        message_type = 20 if target.payload["data"].get("type") == COMMAND_CHAT_INPUT else 23
        if target.type != INTERACTION_COMMAND:
            message_type = 0

        resource: dict[str, Any] = {"type": callback_type}
        if (target.type == INTERACTION_AUTOCOMPLETE) != (callback_type == CALLBACK_AUTOCOMPLETE_RESULT):
            # Discord: an autocomplete interaction takes only an autocomplete result, and only it takes one.
            raise DiscordError(400, 50035, "Invalid Form Body",
                               {"type": f"callback type {callback_type} for interaction type {target.type}"})
        if callback_type == CALLBACK_AUTOCOMPLETE_RESULT:
            pass
        elif callback_type == CALLBACK_MESSAGE:
            target.original = self._new_message(target.channel_id, data, files, webhook_id=self.application_id,
                                                application_id=self.application_id, message_type=message_type,
                                                interaction=target)
        elif callback_type == CALLBACK_DEFERRED_MESSAGE:
            target.original = self._new_message(
                target.channel_id, None, {}, webhook_id=self.application_id, application_id=self.application_id,
                message_type=message_type, interaction=target, flags=LOADING | ((data.get("flags") or 0) & EPHEMERAL),
            )
        elif callback_type in (CALLBACK_DEFERRED_UPDATE, CALLBACK_UPDATE):
            if target.source_message is None:
                raise DiscordError(400, 40043, "Interaction callback type is only valid for component interactions")
            target.original = target.source_message
            if callback_type == CALLBACK_UPDATE:
                self._apply(target.source_message, data, files, creating=False)
        elif callback_type == CALLBACK_MODAL:
            if target.type == INTERACTION_MODAL_SUBMIT:
                raise DiscordError(400, 50035, "Invalid Form Body", {"type": "a modal cannot open a modal"})
            target.modal = data
        else:
            raise DiscordError(400, 50035, "Invalid Form Body", {"type": f"callback type {callback_type}"})

        target.acked_at = time.monotonic()
        target.callback_type = callback_type
        target.callbacks.append({"type": callback_type, "data": data, "time": target.acked_at,
                                 "files": [name for name, _ in files.values()]})
        if target.original is not None and callback_type != CALLBACK_DEFERRED_UPDATE:
            resource["message"] = target.original.to_payload()
        self.notify()
        if request.query.get("with_response") not in ("1", "true", "True"):
            return web.Response(status=204)
        original = target.original
        body = {
            "interaction": {
                "id": str(target.id), "type": target.type,
                "response_message_id": str(original.id) if original else None,
                "response_message_loading": bool(original and original.loading),
                "response_message_ephemeral": bool(original and original.ephemeral),
            },
            "resource": resource,
        }
        return json_response(body)

    def _interaction_for_webhook(self, app: str, token: str) -> FakeInteraction:
        interaction = self._by_token.get(token)
        if interaction is None or app != str(self.application_id) or interaction.acked_at is None:
            raise DiscordError(404, 10015, "Unknown Webhook")
        if interaction.type == INTERACTION_AUTOCOMPLETE:
            # An autocomplete answer is all there is: no message to edit, no follow-ups.
            raise DiscordError(404, 10015, "Unknown Webhook")
        if time.monotonic() - self._token_created[token] > self.token_ttl:
            raise DiscordError(404, 10015, "Unknown Webhook")
        return interaction

    def _webhook_message(self, interaction: FakeInteraction, message_id: str) -> FakeMessage:
        if message_id == "@original":
            message = interaction.original
        else:
            message = next((m for m in interaction.messages if str(m.id) == message_id), None)
        if message is None or message.deleted:
            raise DiscordError(404, 10008, "Unknown Message")
        return message

    async def _followup(self, request: web.Request, app: str, token: str) -> web.Response:
        payload, files = await self._read_payload(request)
        interaction = self._interaction_for_webhook(app, token)
        original = interaction.original
        if original is not None and original.loading and not original.deleted and not interaction.followups:
            # Discord turns the first follow-up after a deferral into the deferred ("thinking…") message.
            self._apply(original, payload, files, creating=False)
            message = original
        else:
            message = self._new_message(interaction.channel_id, payload, files, webhook_id=self.application_id,
                                        application_id=self.application_id, interaction=interaction)
            interaction.followups.append(message)
        self.notify()
        if request.query.get("wait") in ("1", "true", "True"):
            return json_response(message.to_payload())
        return web.Response(status=204)

    async def _get_webhook_message(self, request: web.Request, app: str, token: str, message: str) -> web.Response:
        interaction = self._interaction_for_webhook(app, token)
        return json_response(self._webhook_message(interaction, message).to_payload())

    async def _edit_webhook_message(self, request: web.Request, app: str, token: str, message: str
                                    ) -> web.Response:
        payload, files = await self._read_payload(request)
        interaction = self._interaction_for_webhook(app, token)
        target = self._webhook_message(interaction, message)
        self._apply(target, payload, files, creating=False)
        self.notify()
        return json_response(target.to_payload())

    async def _delete_webhook_message(self, request: web.Request, app: str, token: str, message: str
                                      ) -> web.Response:
        interaction = self._interaction_for_webhook(app, token)
        target = self._webhook_message(interaction, message)
        target.deleted = True
        target.record()
        self.notify()
        return web.Response(status=204)

    def _channel_or_404(self, channel: str) -> int:
        channel_id = int(channel) if channel.isdigit() else -1
        if channel_id not in self.channels:
            raise DiscordError(404, 10003, "Unknown Channel")
        return channel_id

    def _channel_message(self, channel_id: int, message: str) -> FakeMessage:
        found = self.messages.get(int(message)) if message.isdigit() else None
        if found is None or found.deleted or found.channel_id != channel_id or found.ephemeral:
            raise DiscordError(404, 10008, "Unknown Message")
        return found

    def _require(self, channel_id: int, needed: int = 0) -> dict[str, Any]:
        """The channel, if the bot can see it (else 403 50001) and has `needed` there (else 403 50013)."""
        channel = self.channels[channel_id]
        have = self.permissions_for(channel["id"])
        if not have & perms.VIEW_CHANNEL:
            raise DiscordError(403, 50001, "Missing Access")
        if needed & ~have:
            raise DiscordError(403, 50013, "Missing Permissions")
        return channel

    def _send_permission(self, channel: dict[str, Any]) -> int:
        return perms.SEND_MESSAGES_IN_THREADS if channel["type"] in THREAD_TYPES else perms.SEND_MESSAGES

    async def _unarchive_for_send(self, channel: dict[str, Any]) -> None:
        """Sending in an archived thread reopens it, unless it is locked (then only moderators may)."""
        metadata = channel.get("thread_metadata")
        if metadata is None or not metadata["archived"]:
            return
        if metadata["locked"] and not self.permissions_for(channel["id"]) & perms.MANAGE_THREADS:
            raise DiscordError(400, 50083, "Thread is archived")
        metadata["archived"] = False
        await self._broadcast("THREAD_UPDATE", channel)

    async def _get_channel(self, request: web.Request, channel: str) -> web.Response:
        return json_response(self._require(self._channel_or_404(channel)))

    async def _list_channel_messages(self, request: web.Request, channel: str) -> web.Response:
        channel_id = self._channel_or_404(channel)
        self._require(channel_id, perms.READ_MESSAGE_HISTORY)
        limit = int(request.query.get("limit", 50))
        visible = [m for m in self.messages.values()
                   if m.channel_id == channel_id and not m.deleted and not m.ephemeral]
        visible.sort(key=lambda m: m.id, reverse=True)
        return json_response([m.to_payload() for m in visible[:limit]])

    async def _post_channel_message(self, request: web.Request, channel: str) -> web.Response:
        payload, files = await self._read_payload(request)
        channel_id = self._channel_or_404(channel)
        target = self.channels[channel_id]
        if target["type"] == CHANNEL_FORUM:
            raise DiscordError(400, 50008, "Cannot send messages in a non-text channel")
        needed = self._send_permission(target) | (perms.ATTACH_FILES if files else 0)
        if payload.get("message_reference"):
            needed |= perms.READ_MESSAGE_HISTORY
        self._require(channel_id, needed)
        await self._unarchive_for_send(target)
        # Only interaction responses can be ephemeral; Discord ignores the flag on channel messages.
        payload = {**payload, "flags": (payload.get("flags") or 0) & ~EPHEMERAL}
        message = self._new_message(channel_id, payload, files,
                                    message_type=19 if payload.get("message_reference") else 0)
        self.notify()
        return json_response(message.to_payload())

    async def _get_channel_message(self, request: web.Request, channel: str, message: str) -> web.Response:
        channel_id = self._channel_or_404(channel)
        self._require(channel_id, perms.READ_MESSAGE_HISTORY)
        return json_response(self._channel_message(channel_id, message).to_payload())

    async def _edit_channel_message(self, request: web.Request, channel: str, message: str) -> web.Response:
        payload, files = await self._read_payload(request)
        channel_id = self._channel_or_404(channel)
        self._require(channel_id, perms.ATTACH_FILES if files else 0)
        target = self._channel_message(channel_id, message)
        if target.author["id"] != self.bot_user["id"]:
            raise DiscordError(403, 50005, "Cannot edit a message authored by another user")
        self._apply(target, payload, files, creating=False)
        self.notify()
        return json_response(target.to_payload())

    async def _delete_channel_message(self, request: web.Request, channel: str, message: str) -> web.Response:
        channel_id = self._channel_or_404(channel)
        self._require(channel_id)
        target = self._channel_message(channel_id, message)
        if target.author["id"] != self.bot_user["id"]:
            self._require(channel_id, perms.MANAGE_MESSAGES)
        target.deleted = True
        target.record()
        self.notify()
        return web.Response(status=204)

    async def _typing(self, request: web.Request, channel: str) -> web.Response:
        channel_id = self._channel_or_404(channel)
        self._require(channel_id, self._send_permission(self.channels[channel_id]))
        return web.Response(status=204)

    async def _start_thread(self, request: web.Request, channel: str) -> web.Response:
        """POST /channels/{id}/threads: a forum post (with its first message) or a thread without a message."""
        payload, files = await self._read_payload(request)
        parent_id = self._channel_or_404(channel)
        parent = self.channels[parent_id]
        if parent["type"] == CHANNEL_FORUM:
            # Discord: creating a forum post needs Send Messages in the forum (shown as "Create Posts").
            self._require(parent_id, perms.SEND_MESSAGES | (perms.ATTACH_FILES if files else 0))
            message_id = snowflake()
            message = self._new_message(message_id, payload.get("message") or {}, files, message_id=message_id)
            thread = self._new_thread(parent, payload["name"], CHANNEL_PUBLIC_THREAD, self.bot_user["id"],
                                      thread_id=message_id)
            message.channel_id = message_id
            message.guild_id = int(parent["guild_id"])
            body = dict(thread, message=message.to_payload())
        elif parent["type"] == CHANNEL_TEXT:
            kind = payload.get("type", CHANNEL_PRIVATE_THREAD)
            if kind not in (CHANNEL_PUBLIC_THREAD, CHANNEL_PRIVATE_THREAD):
                raise DiscordError(400, 50035, "Invalid Form Body", _field_error("type", "Value is not a thread type."))
            self._require(parent_id, perms.CREATE_PUBLIC_THREADS if kind == CHANNEL_PUBLIC_THREAD
                          else perms.CREATE_PRIVATE_THREADS)
            thread = self._new_thread(parent, payload["name"], kind, self.bot_user["id"])
            body = thread
        else:
            raise DiscordError(400, 50024, "Cannot execute action on this channel type")
        await self._broadcast("THREAD_CREATE", dict(thread, newly_created=True))
        self.notify()
        return json_response(body, 201)

    async def _start_thread_from_message(self, request: web.Request, channel: str, message: str) -> web.Response:
        payload, _ = await self._read_payload(request)
        parent_id = self._channel_or_404(channel)
        self._require(parent_id, perms.CREATE_PUBLIC_THREADS)
        starter = self._channel_message(parent_id, message)
        if any(c["id"] == str(starter.id) for c in self.channels.values()):
            raise DiscordError(400, 160004, "A thread has already been created for this message")
        thread = self._new_thread(self.channels[parent_id], payload["name"], CHANNEL_PUBLIC_THREAD,
                                  self.bot_user["id"], thread_id=starter.id)
        await self._broadcast("THREAD_CREATE", dict(thread, newly_created=True))
        self.notify()
        return json_response(thread, 201)

    async def _create_dm(self, request: web.Request) -> web.Response:
        payload, _ = await self._read_payload(request)
        recipient = next((u for u in self.users.values() if u["id"] == str(payload.get("recipient_id"))), None)
        if recipient is None:
            raise DiscordError(400, 50035, "Invalid Form Body",
                               _field_error("recipient_id", "Value is not a known user."))
        return json_response(self.dm_channel(recipient))

    # ----------------------------------------------------------------- CDN

    async def _serve_file(self, request: web.Request) -> web.StreamResponse:
        file_id = request.match_info["file_id"]
        stored = self.files.get(int(file_id)) if file_id.isdigit() else None
        if stored is None or stored.filename != request.match_info["filename"]:
            return web.Response(status=404, text="Not Found")
        expires = request.query.get("ex", "")
        signature = self._cdn_signature(request.path, expires)
        if not hmac.compare_digest(signature, request.query.get("hm", "")) or int(expires, 16) < self._cdn_now():
            return web.Response(status=404, text="This content is no longer available.")
        stored.fetches += 1
        if stored.mode == "gone":
            return web.Response(status=404, text="This content is no longer available.")
        content_type = stored.served_content_type or stored.content_type or "application/octet-stream"
        if stored.mode in ("normal", "lying_size"):
            return web.Response(body=stored.data, headers={"Content-Type": content_type})
        response = web.StreamResponse(headers={"Content-Type": content_type})
        response.content_length = len(stored.data)
        await response.prepare(request)
        if stored.mode == "truncated":
            await response.write(stored.data[: len(stored.data) // 2])
            assert request.transport is not None
            request.transport.close()
            return response
        for start in range(0, len(stored.data), stored.chunk_size):
            await response.write(stored.data[start:start + stored.chunk_size])
            await asyncio.sleep(stored.chunk_delay)
        await response.write_eof()
        return response
