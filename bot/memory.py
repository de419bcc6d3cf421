""""Use as style": which painting each user picked, forgotten after [limits] style_memory_s."""

from __future__ import annotations

import time

from bot.journal import AttachmentInfo


class StyleMemory:
    def __init__(self, keep_s: float):
        self.keep_s = keep_s
        self._styles: dict[int, tuple[AttachmentInfo, float]] = {}

    def remember(self, user_id: int, style: AttachmentInfo, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        self._forget_expired(now)
        self._styles[user_id] = (style, now + self.keep_s)

    def recall(self, user_id: int, now: float | None = None) -> AttachmentInfo | None:
        now = time.monotonic() if now is None else now
        self._forget_expired(now)
        entry = self._styles.get(user_id)
        return None if entry is None else entry[0]

    def _forget_expired(self, now: float) -> None:
        for user_id in [user for user, (_, expires) in self._styles.items() if expires <= now]:
            del self._styles[user_id]
