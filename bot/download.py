"""Fetching the interaction's own attachments with a hard byte cap.

Only URLs from the attachments Discord put in the interaction are fetched, never a URL a user typed.
The body is streamed and the transfer stops as soon as it goes past the cap or past the size Discord
declared, so a lying or huge file never sits whole in memory.
"""

from __future__ import annotations

import aiohttp

from bot import messages
from bot.journal import AttachmentInfo

CHUNK_BYTES = 64 * 1024


class DownloadError(Exception):
    """``str(error)`` is one line a user can read."""


async def download(session: aiohttp.ClientSession, url: str, *, filename: str, max_bytes: int,
                   declared_size: int | None = None, timeout_s: float = 60.0) -> bytes:
    cap = max_bytes if declared_size is None else min(max_bytes, declared_size)
    chunks: list[bytes] = []
    received = 0
    try:
        async with session.get(url, timeout=aiohttp.ClientTimeout(total=timeout_s)) as response:
            if response.status != 200:
                raise DownloadError(messages.download_failed(filename))
            async for chunk in response.content.iter_chunked(CHUNK_BYTES):
                received += len(chunk)
                if received > max_bytes:
                    raise DownloadError(messages.attachment_too_large(filename, received, max_bytes))
                if received > cap:
                    raise DownloadError(messages.attachment_size_mismatch(filename))
                chunks.append(chunk)
    except (aiohttp.ClientError, TimeoutError) as error:
        raise DownloadError(messages.download_failed(filename)) from error
    return b"".join(chunks)


class AttachmentFetcher:
    """Downloads a journaled attachment within the configured byte limit."""

    def __init__(self, session: aiohttp.ClientSession, max_bytes: int):
        self.session = session
        self.max_bytes = max_bytes

    async def __call__(self, info: AttachmentInfo) -> bytes:
        return await download(self.session, info.url, filename=info.filename, max_bytes=self.max_bytes,
                              declared_size=info.size)
