"""The job journal: one SQLite file (WAL) that outlives the bot process.

Every accepted job is written here before its user is told it is queued, so a restart can finish it.
The uploaded bytes are kept with the job (each at most [limits] max_attachment_bytes, and dropped with the
row after [journal] keep_finished_hours): Discord's signed attachment URLs expire, so both resuming and the
Less/More/Upscale/Retry buttons use the journal's copy instead of downloading again. Each finished job's painted tiles
(lossless PNG per strength) and its timelapse (animated WebP) are kept beside it with the same retention, so
that a redo or a Timelapse click after a restart still finds them. The journal's files on disk (database and
write-ahead log) are bounded by [journal] max_bytes: past it, the oldest finished jobs go first.

Calls are short and synchronous; the bot runs the ones that carry image bytes through asyncio.to_thread.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from bot.request import Request

State = Literal["accepted", "running", "done", "failed"]
UNFINISHED: tuple[State, ...] = ("accepted", "running")
# Discord lets an application use an interaction token for 15 minutes.
INTERACTION_TOKEN_LIFETIME_S = 15 * 60
# An edit must reach Discord before the token dies; a token this close to expiry counts as gone.
TOKEN_SAFETY_MARGIN_S = 30.0

SQLITE_PAGE_BYTES = 4096
WAL_FLOOR_BYTES = 16 * SQLITE_PAGE_BYTES
UNBOUNDED_WAL_BYTES = 4 * 1024 * 1024  # SQLite's own checkpoint point (1000 pages)
WAL_INDEX_BYTES = 32 * 1024  # the -shm file, for a log of up to ~4000 pages

_SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    job_id TEXT PRIMARY KEY,
    created_at REAL NOT NULL,
    user_id INTEGER NOT NULL,
    guild_id INTEGER,
    channel_id INTEGER,
    application_id INTEGER,
    interaction_id INTEGER,
    token TEXT,
    token_expires_at REAL,
    response_message_id INTEGER,
    attachments TEXT NOT NULL,
    options TEXT NOT NULL,
    content BLOB,
    style BLOB,
    state TEXT NOT NULL,
    result TEXT,
    result_message_id INTEGER,
    error TEXT,
    finished_at REAL
);
CREATE INDEX IF NOT EXISTS jobs_state ON jobs (state);
CREATE TABLE IF NOT EXISTS tiles (
    job_id TEXT NOT NULL,
    strength INTEGER NOT NULL,
    png BLOB NOT NULL,
    PRIMARY KEY (job_id, strength)
);
CREATE TABLE IF NOT EXISTS timelapses (
    job_id TEXT PRIMARY KEY,
    webp BLOB NOT NULL
);
"""
_FINISHED = "('done', 'failed')"
# What a job takes in the journal: its uploads, its tiles and the text around them.
_JOB_BYTES = """
    COALESCE(LENGTH(content), 0) + COALESCE(LENGTH(style), 0) + LENGTH(options) + LENGTH(attachments)
    + COALESCE(LENGTH(result), 0) + COALESCE((SELECT SUM(LENGTH(png)) FROM tiles WHERE tiles.job_id = jobs.job_id), 0)
    + COALESCE((SELECT LENGTH(webp) FROM timelapses WHERE timelapses.job_id = jobs.job_id), 0)
"""
# What the jobs' uploads, tiles and records add up to: what ``max_bytes`` bounds.
STORED_BYTES = f"SELECT COALESCE(SUM({_JOB_BYTES}), 0) FROM jobs"


def token_alive(expires_at: float | None, now: float | None = None) -> bool:
    """Whether an interaction token that dies at ``expires_at`` can still edit its response: not once it is
    within TOKEN_SAFETY_MARGIN_S of dying, nor when its death is unknown."""
    return expires_at is not None and (time.time() if now is None else now) < expires_at - TOKEN_SAFETY_MARGIN_S


@dataclass(frozen=True)
class AttachmentInfo:
    role: str  # "content" or "style"
    url: str
    size: int
    content_type: str | None
    filename: str


@dataclass
class JobRecord:
    job_id: str
    user_id: int
    guild_id: int | None
    channel_id: int | None
    attachments: list[AttachmentInfo]
    request: Request
    content: bytes | None = None
    style: bytes | None = None
    application_id: int | None = None
    interaction_id: int | None = None
    token: str | None = field(default=None, repr=False)
    token_expires_at: float | None = None
    response_message_id: int | None = None
    state: State = "accepted"
    result: dict[str, Any] | None = None
    result_message_id: int | None = None
    error: str | None = None
    created_at: float = field(default_factory=time.time)
    finished_at: float | None = None

    def attachment(self, role: str) -> AttachmentInfo | None:
        return next((a for a in self.attachments if a.role == role), None)


class Journal:
    def __init__(self, path: str | Path, max_bytes: int | None = None):
        """``max_bytes``: the most the journal may take on disk (None: no bound but the retention)."""
        self.path = Path(path)
        self.max_bytes = max_bytes
        if str(path) != ":memory:":
            self.path.parent.mkdir(parents=True, exist_ok=True)
        # One connection shared by the event loop and to_thread workers, serialised by the lock.
        self._db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        self._db.row_factory = sqlite3.Row
        self._lock = threading.Lock()
        with self._lock:
            # Before any table exists (a no-op on an older file): pages freed by pruning are given back to the disk.
            self._db.execute("PRAGMA auto_vacuum=INCREMENTAL")
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            # The write-ahead log is on disk too, and SQLite never shortens it by default: checkpoint it into the
            # database and cut it back whenever it passes a sixteenth of the bound (the soak saw it reach 6x).
            self._wal_bytes = max(WAL_FLOOR_BYTES, (max_bytes or UNBOUNDED_WAL_BYTES * 16) // 16)
            self._db.execute(f"PRAGMA journal_size_limit={self._wal_bytes}")
            self._db.execute(f"PRAGMA wal_autocheckpoint={self._wal_bytes // SQLITE_PAGE_BYTES}")
            self._db.executescript(_SCHEMA)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def _execute(self, sql: str, params: tuple | dict = ()) -> sqlite3.Cursor:
        with self._lock:
            return self._db.execute(sql, params)

    def add(self, record: JobRecord) -> None:
        self._execute(
            "INSERT INTO jobs (job_id, created_at, user_id, guild_id, channel_id, application_id, interaction_id,"
            " token, token_expires_at, response_message_id, attachments, options, content, style, state)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (record.job_id, record.created_at, record.user_id, record.guild_id, record.channel_id,
             record.application_id, record.interaction_id, record.token, record.token_expires_at,
             record.response_message_id, json.dumps([a.__dict__ for a in record.attachments]),
             json.dumps(record.request.to_json()), record.content, record.style, record.state),
        )
        self.shrink()

    def get(self, job_id: str) -> JobRecord | None:
        row = self._execute("SELECT * FROM jobs WHERE job_id = ?", (job_id,)).fetchone()
        return None if row is None else _record(row)

    def unfinished(self) -> list[JobRecord]:
        """Jobs a previous run accepted but never finished, oldest first: the ones to resume."""
        rows = self._execute(
            f"SELECT * FROM jobs WHERE state IN ({', '.join('?' * len(UNFINISHED))}) ORDER BY created_at",
            UNFINISHED,
        ).fetchall()
        return [_record(row) for row in rows]

    def mark_running(self, job_id: str) -> None:
        self._execute("UPDATE jobs SET state = 'running' WHERE job_id = ?", (job_id,))

    def set_response_message(self, job_id: str, message_id: int) -> None:
        self._execute("UPDATE jobs SET response_message_id = ? WHERE job_id = ?", (message_id, job_id))

    def mark_done(self, job_id: str, result: dict[str, Any], result_message_id: int | None,
                  now: float | None = None) -> None:
        self._execute(
            "UPDATE jobs SET state = 'done', result = ?, result_message_id = ?, finished_at = ? WHERE job_id = ?",
            (json.dumps(result), result_message_id, time.time() if now is None else now, job_id),
        )

    def mark_failed(self, job_id: str, error: str, now: float | None = None) -> None:
        self._execute(
            "UPDATE jobs SET state = 'failed', error = ?, finished_at = ? WHERE job_id = ?",
            (error, time.time() if now is None else now, job_id),
        )

    def forget_result_message(self, job_id: str) -> None:
        """The result was deleted by its requester; keep the row for bookkeeping, drop the images."""
        with self._lock:
            self._db.execute(
                "UPDATE jobs SET result_message_id = NULL, content = NULL, style = NULL WHERE job_id = ?", (job_id,)
            )
            self._db.execute("DELETE FROM tiles WHERE job_id = ?", (job_id,))
            self._db.execute("DELETE FROM timelapses WHERE job_id = ?", (job_id,))

    def keep_tiles(self, job_id: str, tiles: Iterable[tuple[int, bytes]]) -> None:
        """Keep a finished job's painted tiles (strength, lossless PNG) for a later redo of it."""
        with self._lock, self._transaction():
            self._db.executemany("INSERT OR REPLACE INTO tiles (job_id, strength, png) VALUES (?, ?, ?)",
                                 [(job_id, strength, png) for strength, png in tiles])
        self.shrink()

    def tiles(self, job_id: str) -> tuple[tuple[int, bytes], ...]:
        """The job's kept tiles by strength; empty when it had none or they were pruned."""
        rows = self._execute("SELECT strength, png FROM tiles WHERE job_id = ? ORDER BY strength", (job_id,))
        return tuple((row["strength"], row["png"]) for row in rows.fetchall())

    def keep_timelapse(self, job_id: str, webp: bytes) -> None:
        """Keep a finished job's timelapse (animated WebP), with the job's retention, for its Timelapse button."""
        self._execute("INSERT OR REPLACE INTO timelapses (job_id, webp) VALUES (?, ?)", (job_id, webp))
        self.shrink()

    def timelapse(self, job_id: str) -> bytes | None:
        """The job's timelapse; None when it has none (painted before they were kept, reused) or it was pruned."""
        row = self._execute("SELECT webp FROM timelapses WHERE job_id = ?", (job_id,)).fetchone()
        return None if row is None else row[0]

    def prune(self, keep_finished_hours: float, now: float | None = None) -> int:
        """Delete finished jobs older than the retention, then the oldest others past ``max_bytes``; returns how
        many went."""
        cutoff = (time.time() if now is None else now) - keep_finished_hours * 3600
        with self._lock:
            expired = [row[0] for row in self._db.execute(
                f"SELECT job_id FROM jobs WHERE state IN {_FINISHED} AND finished_at < ?", (cutoff,))]
            self._delete(expired)
        return len(expired) + self.shrink()

    def stored_bytes(self) -> int:
        """The bytes the jobs hold (images, results, tiles): what the soak benchmark follows over time."""
        return self._execute(STORED_BYTES).fetchone()[0]

    def shrink(self) -> int:
        """Delete the oldest finished jobs until the journal is within ``max_bytes``; returns how many went.
        Unfinished jobs are never deleted: a restart must still find them."""
        if self.max_bytes is None:
            return 0
        with self._lock:
            stored = self._db.execute(STORED_BYTES).fetchone()[0]
            # SQLite's pages hold more than the bytes stored in them (the soak measured half as much again), and
            # beside the database lie the write-ahead log (its limit, plus the last transaction before a
            # checkpoint) and the log's index: all count against the bound.
            beside = 2 * self._wal_bytes + WAL_INDEX_BYTES
            excess = max(stored, self._database_bytes()) + beside - self.max_bytes
            if excess <= 0:
                return 0
            oldest_first = self._db.execute(
                f"SELECT job_id, {_JOB_BYTES} FROM jobs WHERE state IN {_FINISHED} ORDER BY finished_at, created_at"
            ).fetchall()
            doomed = []
            for job_id, size in oldest_first:
                if excess <= 0:
                    break
                doomed.append(job_id)
                excess -= size
            self._delete(doomed)
        return len(doomed)

    def _database_bytes(self) -> int:
        """The database file's pages in use (incremental vacuum gives the free ones back); the caller holds the
        lock."""
        pages = self._db.execute("PRAGMA page_count").fetchone()[0] - self._db.execute(
            "PRAGMA freelist_count").fetchone()[0]
        return pages * self._db.execute("PRAGMA page_size").fetchone()[0]

    def _delete(self, job_ids: list[str]) -> None:
        """Delete jobs with their tiles; the caller holds the lock."""
        if not job_ids:
            return
        with self._transaction():
            self._db.executemany("DELETE FROM tiles WHERE job_id = ?", [(job_id,) for job_id in job_ids])
            self._db.executemany("DELETE FROM timelapses WHERE job_id = ?", [(job_id,) for job_id in job_ids])
            self._db.executemany("DELETE FROM jobs WHERE job_id = ?", [(job_id,) for job_id in job_ids])
        # executescript runs the pragma to the end: execute() steps it once, which frees a single page (the
        # soak's journal kept growing on disk while the jobs' bytes stayed within the bound).
        self._db.executescript("PRAGMA incremental_vacuum;")

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[None]:
        """All of the block's statements or none; the caller holds the lock."""
        self._db.execute("BEGIN")
        try:
            yield
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")


def _record(row: sqlite3.Row) -> JobRecord:
    return JobRecord(
        job_id=row["job_id"],
        user_id=row["user_id"],
        guild_id=row["guild_id"],
        channel_id=row["channel_id"],
        attachments=[AttachmentInfo(**a) for a in json.loads(row["attachments"])],
        request=Request.from_json(json.loads(row["options"])),
        content=row["content"],
        style=row["style"],
        application_id=row["application_id"],
        interaction_id=row["interaction_id"],
        token=row["token"],
        token_expires_at=row["token_expires_at"],
        response_message_id=row["response_message_id"],
        state=row["state"],
        result=json.loads(row["result"]) if row["result"] else None,
        result_message_id=row["result_message_id"],
        error=row["error"],
        created_at=row["created_at"],
        finished_at=row["finished_at"],
    )
