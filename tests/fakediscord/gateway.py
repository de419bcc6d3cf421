"""The gateway websocket: HELLO, IDENTIFY/READY/GUILD_CREATE, heartbeats, RESUME with replay, compression."""

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
    def __init__(self, fake: FakeDiscord, heartbeat_interval_ms: int = 41250, heartbeat_ack_delay: float = 0.05
                 ) -> None:
        self.fake = fake
        self.heartbeat_interval_ms = heartbeat_interval_ms
        # discord.py's heartbeat thread records the send time only after the loop confirms the send; an ACK
        # processed before that (a local server on a busy machine) logs "Can't keep up … 41.3s behind".
        # Real Discord is never that fast, so neither is the fake.
        self.heartbeat_ack_delay = heartbeat_ack_delay
        self._acks: set[asyncio.Task[None]] = set()
        self.sessions: dict[str, GatewaySession] = {}
        self.current: GatewaySession | None = None
        self.identify_payloads: list[dict[str, Any]] = []
        self.resume_payloads: list[dict[str, Any]] = []
        self.connections: list[dict[str, Any]] = []
        self.heartbeats = 0

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
        session = GatewaySession(
            id=secrets.token_hex(16), intents=int(data.get("intents", 0)), shard=data.get("shard"),
            ws=ws, encoder=encoder, send_lock=lock,
        )
        self.sessions[session.id] = session
        self.current = session
        ready: dict[str, Any] = {
            "v": 10,
            "user": self.fake.bot_user,
            "guilds": [{"id": str(guild["id"]), "unavailable": True} for guild in self.fake.guilds.values()],
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
        for guild_id in self.fake.guilds:
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
        self.current = session
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
        if self.current is None:
            raise RuntimeError(f"cannot dispatch {event}: the bot never identified on the gateway")
        await self.current.dispatch(event, data)

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
