"""Discord's permission bits and its algorithm for a member's permissions in a channel.

https://discord.com/developers/docs/topics/permissions#permission-overwrites: base permissions (@everyone
plus the member's roles; owner and Administrator get everything), then the channel's overwrites in the
order @everyone, roles (all denies, then all allows), the member. A thread takes its parent's overwrites.
"""

from __future__ import annotations

from typing import Any

CREATE_INSTANT_INVITE = 1 << 0
ADMINISTRATOR = 1 << 3
ADD_REACTIONS = 1 << 6
VIEW_CHANNEL = 1 << 10
SEND_MESSAGES = 1 << 11
SEND_TTS_MESSAGES = 1 << 12
MANAGE_MESSAGES = 1 << 13
EMBED_LINKS = 1 << 14
ATTACH_FILES = 1 << 15
READ_MESSAGE_HISTORY = 1 << 16
MENTION_EVERYONE = 1 << 17
USE_EXTERNAL_EMOJIS = 1 << 18
CONNECT = 1 << 20
SPEAK = 1 << 21
USE_VAD = 1 << 25
CHANGE_NICKNAME = 1 << 26
USE_APPLICATION_COMMANDS = 1 << 31
MANAGE_THREADS = 1 << 34
CREATE_PUBLIC_THREADS = 1 << 35
CREATE_PRIVATE_THREADS = 1 << 36
USE_EXTERNAL_STICKERS = 1 << 37
SEND_MESSAGES_IN_THREADS = 1 << 38
SEND_VOICE_MESSAGES = 1 << 46
SEND_POLLS = 1 << 49
USE_EXTERNAL_APPS = 1 << 50
ALL = (1 << 51) - 1

# What @everyone may do in a new server (a subset of Discord's defaults, enough for text channels).
DEFAULT_EVERYONE = (
    CREATE_INSTANT_INVITE | ADD_REACTIONS | VIEW_CHANNEL | SEND_MESSAGES | EMBED_LINKS | ATTACH_FILES
    | READ_MESSAGE_HISTORY | MENTION_EVERYONE | USE_EXTERNAL_EMOJIS | CONNECT | SPEAK | USE_VAD | CHANGE_NICKNAME
    | USE_APPLICATION_COMMANDS | CREATE_PUBLIC_THREADS | CREATE_PRIVATE_THREADS | USE_EXTERNAL_STICKERS
    | SEND_MESSAGES_IN_THREADS | SEND_VOICE_MESSAGES | SEND_POLLS | USE_EXTERNAL_APPS
)
# What an app may do in a DM with a user (Discord sends a fixed set as app_permissions there).
DM_PERMISSIONS = (
    ADD_REACTIONS | VIEW_CHANNEL | SEND_MESSAGES | EMBED_LINKS | ATTACH_FILES | READ_MESSAGE_HISTORY
    | USE_EXTERNAL_EMOJIS | USE_APPLICATION_COMMANDS | USE_EXTERNAL_STICKERS | SEND_VOICE_MESSAGES | SEND_POLLS
)
# Without Send Messages these are implicitly denied too (Discord's "implicit permissions").
NEEDS_SEND = SEND_TTS_MESSAGES | MENTION_EVERYONE | ATTACH_FILES | EMBED_LINKS


def _apply(permissions: int, allow: int, deny: int) -> int:
    return (permissions & ~deny) | allow


def channel_permissions(
    *,
    user_id: str,
    owner_id: str | None,
    guild_id: str,
    roles: list[dict[str, Any]],
    member_role_ids: list[str],
    overwrites: list[dict[str, Any]],
    thread: bool = False,
) -> int:
    """The member's permissions in a channel with `overwrites` (for a thread: its parent's, `thread=True`)."""
    if user_id == owner_id:
        return ALL
    by_id = {role["id"]: int(role["permissions"]) for role in roles}
    base = by_id.get(guild_id, 0)
    for role_id in member_role_ids:
        base |= by_id.get(role_id, 0)
    if base & ADMINISTRATOR:
        return ALL
    by_target = {(int(o["type"]), str(o["id"])): o for o in overwrites}
    everyone = by_target.get((0, guild_id))
    if everyone is not None:
        base = _apply(base, int(everyone["allow"]), int(everyone["deny"]))
    role_allow = role_deny = 0
    for role_id in member_role_ids:
        overwrite = by_target.get((0, role_id))
        if overwrite is not None:
            role_allow |= int(overwrite["allow"])
            role_deny |= int(overwrite["deny"])
    base = _apply(base, role_allow, role_deny)
    member = by_target.get((1, user_id))
    if member is not None:
        base = _apply(base, int(member["allow"]), int(member["deny"]))
    if not base & VIEW_CHANNEL:
        return 0
    if not base & (SEND_MESSAGES_IN_THREADS if thread else SEND_MESSAGES):
        base &= ~NEEDS_SEND
    return base
