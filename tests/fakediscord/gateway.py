"""The gateway websocket: HELLO, IDENTIFY/READY/GUILD_CREATE, heartbeats, RESUME with replay, compression, shards.

Sharding as Discord does it (https://discord.com/developers/docs/events/gateway#sharding): a guild's events go to
shard ``(guild_id >> 22) % num_shards``, direct messages to shard 0. ``GET /gateway/bot`` recommends ``shards``;
an IDENTIFY with fewer is closed with 4011 (sharding required), one whose ``[shard_id, num_shards]`` makes no
sense with 4010 (invalid shard).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
import time
import zlib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from aiohttp import WSMsgType, web

if TYPE_CHECKING:
    from .server import FakeDiscord

HELLO, HEARTBEAT, IDENTIFY, PRESENCE, RESUME, REQUEST_MEMBERS = 10, 1, 2, 3, 6, 8
DISPATCH, RECONNECT, HEARTBEAT_ACK, INVALID_SESSION = 0, 7, 11, 9
CLOSE_AUTHENTICATION_FAILED = 4004
CLOSE_INVALID_SHARD, CLOSE_SHARDING_REQUIRED = 4010, 4011


class _ZlibStream:
    """Discord's zlib-stream: one deflate context for the whole connection, each message ends in SYNC_FLUSH."""

    def __init__(self) -> None:
        self._compressor = zlib.compressobj()

    def encode(self, text: str) -> bytes:
        return self._compressor.compress(text.encode()) + self._compressor.flush(zlib.Z_SYNC_FLUSH)


class _ZstdStream:
    """Discord's zstd-stream, used by discord.py when the `zstandard` package is installed."""

    def __init__(self) -> None:
        import zstandard

        self._flush_block = zstandard.COMPRESSOBJ_FLUSH_BLOCK
        self._compressor = zstandard.ZstdCompressor().compressobj()

    def encode(self, text: str) -> bytes:
        return self._compressor.compress(text.encode()) + self._compressor.flush(self._flush_block)


@dataclass
class GatewaySession:
    """A gateway session survives its websocket: dispatches sent while disconnected are replayed on RESUME."""

    id: str
    intents: int
    shard: list[int] | None
    sequence: int = 0
    sent: list[dict[str, Any]] = field(default_factory=list)
    ws: web.WebSocketResponse | None = None
    encoder: _ZlibStream | _ZstdStream | None = None
    send_lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    resumes: int = 0
    identified_at: float = field(default_factory=time.monotonic)

    @property
    def shard_id(self) -> int:
        return self.shard[0] if self.shard else 0

    def receives(self, guild_id: int | None) -> bool:
        """Whether this session's shard gets the events of ``guild_id`` (None: direct messages)."""
        shard_id, count = self.shard or (0, 1)
        return shard_id == 0 if guild_id is None else (guild_id >> 22) % count == shard_id

    async def dispatch(self, event: str, data: dict[str, Any]) -> None:
        self.sequence += 1
        frame = {"op": DISPATCH, "t": event, "s": self.sequence, "d": data}
        self.sent.append(frame)
        if self.ws is not None and not self.ws.closed:
            await send_frame(self.ws, self.encoder, frame, self.send_lock)


async def send_frame(
    ws: web.WebSocketResponse,
    encoder: _ZlibStream | _ZstdStream | None,
    frame: dict[str, Any],
    lock: asyncio.Lock,
) -> None:
    text = json.dumps(frame)
    # The compression context is shared by every frame of the connection, so frames must not interleave.
    async with lock:
        if encoder is None:
            await ws.send_str(text)
        else:
            await ws.send_bytes(encoder.encode(text))


class Gateway:
    def __init__(self, fake: FakeDiscord, heartbeat_interval_ms: int = 41250, heartbeat_ack_delay: float = 0.05,
                 shards: int = 1) -> None:
        self.fake = fake
        # What GET /gateway/bot recommends, and the fewest shards an IDENTIFY may ask for.
        self.shards = shards
        self.heartbeat_interval_ms = heartbeat_interval_ms
        # discord.py's heartbeat thread records the send time only after the loop confirms the send; an ACK
        # processed before that (a local server on a busy machine) logs "Can't keep up … 41.3s behind".
        # Real Discord is never that fast, so neither is the fake.
        self.heartbeat_ack_delay = heartbeat_ack_delay
        self._acks: set[asyncio.Task[None]] = set()
        self.sessions: dict[str, GatewaySession] = {}
        # The latest session of each shard id.
        self.by_shard: dict[int, GatewaySession] = {}
        self.identify_payloads: list[dict[str, Any]] = []
        self.resume_payloads: list[dict[str, Any]] = []
        self.connections: list[dict[str, Any]] = []
        self.heartbeats = 0

    @property
    def current(self) -> GatewaySession | None:
        """The session that gets the fake guild's events: the one most tests talk to."""
        return self.session_for(self.fake.guild_id)

    def session_for(self, guild_id: int | None) -> GatewaySession | None:
        """The latest session whose shard gets the events of ``guild_id`` (None: direct messages)."""
        return next((s for s in reversed(self.by_shard.values()) if s.receives(guild_id)), None)

    def shards_live(self, since: float | None = None) -> bool:
        """Every shard of the latest IDENTIFY has a live session (identified after ``since``, if given)."""
        latest = next(reversed(self.by_shard.values()), None)
        count = latest.shard[1] if latest is not None and latest.shard else 1
        sessions = [self.by_shard.get(shard_id) for shard_id in range(count)]
        return all(s is not None and s.ws is not None and (since is None or s.identified_at >= since)
                   for s in sessions)

    async def handle(self, request: web.Request) -> web.StreamResponse:
        ws = web.WebSocketResponse(autoping=True, max_msg_size=0)
        await ws.prepare(request)
        compress = request.query.get("compress")
        self.connections.append({"path": request.path, "query": dict(request.query), "time": time.monotonic()})
        encoder: _ZlibStream | _ZstdStream | None
        if compress is None:
            encoder = None
        elif compress == "zlib-stream":
            encoder = _ZlibStream()
        elif compress == "zstd-stream":
            encoder = _ZstdStream()
        else:
            self.fake.record_unknown("WS", f"{request.path}?compress={compress}", "unsupported gateway compression")
            await ws.close(code=4000, message=b"unsupported compression")
            return ws

        lock = asyncio.Lock()
        session: GatewaySession | None = None
        await send_frame(ws, encoder, {"op": HELLO, "d": {"heartbeat_interval": self.heartbeat_interval_ms}}, lock)
        async for message in ws:
            if message.type is not WSMsgType.TEXT:
                continue
            frame = json.loads(message.data)
            op, data = frame.get("op"), frame.get("d")
            if op == HEARTBEAT:
                self.heartbeats += 1
                ack = asyncio.create_task(self._ack_later(ws, encoder, lock))
                self._acks.add(ack)
                ack.add_done_callback(self._acks.discard)
            elif op == IDENTIFY:
                session = await self._identify(ws, encoder, lock, data)
                if session is None:
                    break
            elif op == RESUME:
                session = await self._resume(ws, encoder, lock, data)
                if session is None:
                    break
            elif op == REQUEST_MEMBERS and session is not None:
                await self._send_members(session, data)
            elif op == PRESENCE:
                pass  # presence changes have no effect anyone here can observe
            else:
                self.fake.record_unknown("WS", f"op {op}", json.dumps(frame)[:500])
        if session is not None and session.ws is ws:
            session.ws = None
        self.fake.notify()
        return ws

    async def _ack_later(
        self, ws: web.WebSocketResponse, encoder: _ZlibStream | _ZstdStream | None, lock: asyncio.Lock
    ) -> None:
        await asyncio.sleep(self.heartbeat_ack_delay)
        with contextlib.suppress(ConnectionResetError):  # the client went away meanwhile
            if not ws.closed:
                await send_frame(ws, encoder, {"op": HEARTBEAT_ACK}, lock)

    async def _identify(
        self,
        ws: web.WebSocketResponse,
        encoder: _ZlibStream | _ZstdStream | None,
        lock: asyncio.Lock,
        data: dict[str, Any],
    ) -> GatewaySession | None:
        self.identify_payloads.append(data)
        if data.get("token") != self.fake.token:
            await ws.close(code=CLOSE_AUTHENTICATION_FAILED, message=b"Authentication failed.")
            return None
        shard = data.get("shard", [0, 1])  # no shard field: the one and only shard
        if not (isinstance(shard, list) and len(shard) == 2 and all(type(n) is int for n in shard)
                and 0 <= shard[0] < shard[1]):
            await ws.close(code=CLOSE_INVALID_SHARD, message=b"Invalid shard.")
            return None
        if shard[1] < self.shards:
            await ws.close(code=CLOSE_SHARDING_REQUIRED, message=b"Sharding required.")
            return None
        session = GatewaySession(
            id=secrets.token_hex(16), intents=int(data.get("intents", 0)), shard=data.get("shard"),
            ws=ws, encoder=encoder, send_lock=lock,
        )
        self.sessions[session.id] = session
        self.by_shard.pop(session.shard_id, None)  # re-inserted last: the latest session of all
        self.by_shard[session.shard_id] = session
        guilds = [guild_id for guild_id in self.fake.guilds if session.receives(guild_id)]
        ready: dict[str, Any] = {
            "v": 10,
            "user": self.fake.bot_user,
            "guilds": [{"id": str(guild_id), "unavailable": True} for guild_id in guilds],
            "session_id": session.id,
            "session_type": "normal",
            "resume_gateway_url": self.fake.resume_gateway_url,
            "application": {"id": str(self.fake.application_id), "flags": self.fake.application_flags},
            "private_channels": [],
            "relationships": [],
            "user_settings": {},
            "presences": [],
            "guild_join_requests": [],
            "geo_ordered_rtc_regions": [],
            "_trace": ["fake-discord"],
        }
        if session.shard is not None:
            ready["shard"] = session.shard
        await session.dispatch("READY", ready)
        # Sent straight after READY so discord.py's guild_ready_timeout countdown starts immediately.
        for guild_id in guilds:
            await session.dispatch("GUILD_CREATE", self.fake.guild_create_payload(guild_id))
        self.fake.notify()
        return session

    async def _resume(
        self,
        ws: web.WebSocketResponse,
        encoder: _ZlibStream | _ZstdStream | None,
        lock: asyncio.Lock,
        data: dict[str, Any],
    ) -> GatewaySession | None:
        self.resume_payloads.append(data)
        if data.get("token") != self.fake.token:
            await ws.close(code=CLOSE_AUTHENTICATION_FAILED, message=b"Authentication failed.")
            return None
        session = self.sessions.get(data.get("session_id", ""))
        if session is None:
            await send_frame(ws, encoder, {"op": INVALID_SESSION, "d": False}, lock)
            return None
        session.ws, session.encoder, session.send_lock = ws, encoder, lock
        session.resumes += 1
        self.by_shard.pop(session.shard_id, None)
        self.by_shard[session.shard_id] = session
        last_seen = int(data.get("seq") or 0)
        for frame in session.sent:
            if frame["s"] > last_seen:
                await send_frame(ws, encoder, frame, lock)
        await session.dispatch("RESUMED", {"_trace": ["fake-discord"]})
        self.fake.notify()
        return session

    async def _send_members(self, session: GatewaySession, data: dict[str, Any]) -> None:
        guild_id = int(data["guild_id"])
        await session.dispatch(
            "GUILD_MEMBERS_CHUNK",
            {
                "guild_id": str(guild_id),
                "members": self.fake.guild_members(guild_id),
                "chunk_index": 0,
                "chunk_count": 1,
                "nonce": data.get("nonce"),
            },
        )

    async def dispatch(self, event: str, data: dict[str, Any]) -> None:
        """Send ``event`` to the shard that gets its guild's events (shard 0 for direct messages)."""
        session = self.session_for(int(data["guild_id"]) if data.get("guild_id") else None)
        if session is None:
            raise RuntimeError(f"cannot dispatch {event}: the bot never identified on the gateway")
        await session.dispatch(event, data)

    async def drop(self, code: int = 4000) -> None:
        """Close the bot's websocket the way a network blip or a Discord restart would; the session stays."""
        session = self.current
        if session is None or session.ws is None:
            raise RuntimeError("no live gateway connection to drop")
        ws, session.ws = session.ws, None
        await ws.close(code=code, message=b"fake discord dropped the connection")

    async def send_op(self, op: int, data: Any = None) -> None:
        session = self.current
        if session is None or session.ws is None:
            raise RuntimeError(f"no live gateway connection to send op {op} to")
        await send_frame(session.ws, session.encoder, {"op": op, "d": data}, session.send_lock)

    async def close_all(self) -> None:
        for ack in list(self._acks):
            ack.cancel()
        for session in self.sessions.values():
            if session.ws is not None and not session.ws.closed:
                await session.ws.close(code=1001, message=b"fake discord shutting down")
