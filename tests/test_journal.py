"""The job journal: what a restart finds, token expiry, pruning."""

from __future__ import annotations

import sqlite3
import time

import pytest

from bot.journal import (
    INTERACTION_TOKEN_LIFETIME_S,
    TOKEN_SAFETY_MARGIN_S,
    AttachmentInfo,
    JobRecord,
    Journal,
    token_alive,
)
from bot.request import Request


def record(job_id: str, *, created_at: float = 1000.0, token_expires_at: float | None = None, **extra) -> JobRecord:
    return JobRecord(
        job_id=job_id,
        user_id=42,
        guild_id=7,
        channel_id=8,
        attachments=[
            AttachmentInfo("content", "https://cdn.example/c.png", 1234, "image/png", "cat.png"),
            AttachmentInfo("style", "https://cdn.example/s.jpg", 5678, "image/jpeg", "wave.jpg"),
        ],
        request=Request(strength=6, size=64, seed=3, preserve_colors=False, variants=3, content_name="cat.png",
                        style_name="wave.jpg", output_max_bytes=1_000_000),
        content=b"content-bytes",
        style=b"style-bytes",
        application_id=99,
        interaction_id=100,
        token="interaction-token",
        token_expires_at=token_expires_at,
        created_at=created_at,
        **extra,
    )


@pytest.fixture
def journal(tmp_path):
    journal = Journal(tmp_path / "sub" / "journal.sqlite3")
    yield journal
    journal.close()


def test_a_job_survives_reopening(tmp_path):
    path = tmp_path / "journal.sqlite3"
    first = Journal(path)
    first.add(record("a" * 32))
    first.close()
    second = Journal(path)
    loaded = second.get("a" * 32)
    second.close()
    assert loaded == record("a" * 32)
    assert loaded.attachment("style").filename == "wave.jpg"
    assert loaded.content == b"content-bytes"


def test_journal_uses_wal(journal):
    mode = sqlite3.connect(journal.path).execute("PRAGMA journal_mode").fetchone()[0]
    assert mode == "wal"


def test_unfinished_lists_accepted_and_running_oldest_first(journal):
    for job_id, created in (("new", 3.0), ("old", 1.0), ("done", 0.5), ("failed", 0.7), ("running", 2.0)):
        journal.add(record(job_id, created_at=created))
    journal.mark_running("running")
    journal.mark_done("done", {"style_weights": [1.0]}, 555)
    journal.mark_failed("failed", "timed out")
    assert [r.job_id for r in journal.unfinished()] == ["old", "running", "new"]
    assert journal.get("running").state == "running"


def test_done_keeps_result_and_message(journal):
    journal.add(record("j"))
    journal.set_response_message("j", 321)
    journal.mark_done("j", {"style_weights": [1e7, 1e8], "chosen": 1}, 321, now=5000.0)
    loaded = journal.get("j")
    assert (loaded.state, loaded.result_message_id, loaded.finished_at) == ("done", 321, 5000.0)
    assert loaded.result["style_weights"] == [1e7, 1e8]
    assert loaded.response_message_id == 321


def test_failed_keeps_reason(journal):
    journal.add(record("j"))
    journal.mark_failed("j", "That picture took too long")
    assert journal.get("j").error == "That picture took too long"
    assert journal.unfinished() == []


def test_unknown_job_is_none(journal):
    assert journal.get("nope") is None


def token_valid(record: JobRecord, now: float) -> bool:
    """Whether the record's interaction token can still edit the original response."""
    return bool(record.token) and token_alive(record.token_expires_at, now)


def test_token_validity_respects_lifetime_and_margin():
    now = 10_000.0
    fresh = record("j", token_expires_at=now + INTERACTION_TOKEN_LIFETIME_S)
    assert token_valid(fresh, now)
    assert not token_valid(fresh, now + INTERACTION_TOKEN_LIFETIME_S)
    # Too close to expiry for an edit to make it: treated as gone.
    assert not token_valid(fresh, now + INTERACTION_TOKEN_LIFETIME_S - TOKEN_SAFETY_MARGIN_S / 2)
    assert token_valid(fresh, now + INTERACTION_TOKEN_LIFETIME_S - TOKEN_SAFETY_MARGIN_S * 2)
    assert not token_valid(record("j", token_expires_at=None), now)
    no_token = record("j", token_expires_at=now + 600)
    no_token.token = None
    assert not token_valid(no_token, now)


def test_token_is_not_in_the_repr():
    assert "interaction-token" not in repr(record("j", token_expires_at=time.time()))


def test_prune_removes_only_old_finished_jobs(journal):
    now = 1_000_000.0
    for job_id in ("old-done", "old-failed", "new-done", "old-accepted"):
        journal.add(record(job_id, created_at=now - 10 * 3600))
    journal.mark_done("old-done", {}, 1, now=now - 5 * 3600)
    journal.mark_failed("old-failed", "x", now=now - 5 * 3600)
    journal.mark_done("new-done", {}, 2, now=now - 1 * 3600)
    assert journal.prune(keep_finished_hours=2, now=now) == 2
    assert journal.get("old-done") is None and journal.get("old-failed") is None
    assert journal.get("new-done") is not None
    # Never prune what is still owed to someone, however old.
    assert journal.get("old-accepted") is not None


def test_forgetting_a_deleted_result_drops_its_images(journal):
    journal.add(record("j"))
    journal.mark_done("j", {"style_weights": [1.0]}, 77)
    journal.forget_result_message("j")
    loaded = journal.get("j")
    assert loaded.result_message_id is None
    assert loaded.content is None and loaded.style is None
    assert loaded.state == "done"


TILES = ((4, b"png-4" * 100), (5, b"png-5" * 100), (6, b"png-6" * 100))


def test_a_jobs_tiles_survive_reopening_and_go_with_the_job(tmp_path):
    path = tmp_path / "journal.sqlite3"
    first = Journal(path)
    first.add(record("painted"))
    first.mark_done("painted", {}, 1, now=1000.0)
    first.keep_tiles("painted", TILES)
    first.close()
    second = Journal(path)
    assert second.tiles("painted") == TILES
    assert second.tiles("never-painted") == ()
    assert second.prune(keep_finished_hours=1, now=1000.0 + 2 * 3600) == 1
    assert second.tiles("painted") == ()
    second.close()


def test_forgetting_a_deleted_result_drops_its_tiles(journal):
    journal.add(record("j"))
    journal.mark_done("j", {}, 77)
    journal.keep_tiles("j", TILES)
    journal.forget_result_message("j")
    assert journal.tiles("j") == ()


def big_record(job_id: str, created_at: float, size: int) -> JobRecord:
    big = record(job_id, created_at=created_at)
    big.content, big.style = b"c" * size, b"s" * size
    return big


def test_past_max_bytes_the_oldest_finished_jobs_go_first_and_unfinished_ones_stay(tmp_path):
    # Bytes on disk: SQLite's pages (~127 kB per job here) and 160 kB for the write-ahead log and its index.
    journal = Journal(tmp_path / "journal.sqlite3", max_bytes=550_000)
    journal.add(big_record("waiting", 1.0, 50_000))  # accepted long ago, never finished
    for number in range(6):
        job_id = f"done-{number}"
        journal.add(big_record(job_id, 10.0 + number, 50_000))
        journal.mark_done(job_id, {}, number, now=100.0 + number)
        journal.keep_tiles(job_id, [(5, b"t" * 20_000)])
    assert journal.stored_bytes() <= 550_000
    kept = [f"done-{n}" for n in range(6) if journal.get(f"done-{n}") is not None]
    assert kept == ["done-4", "done-5"]  # the newest; each job holds ~120 kB
    assert journal.get("waiting") is not None
    assert journal.tiles("done-5") == ((5, b"t" * 20_000),) and journal.tiles("done-0") == ()
    journal.close()


def test_a_bounded_journal_file_stays_near_its_bound(tmp_path):
    path = tmp_path / "journal.sqlite3"
    journal = Journal(path, max_bytes=500_000)
    for number in range(40):
        journal.add(big_record(f"job-{number}", float(number), 100_000))
        journal.mark_done(f"job-{number}", {}, number, now=float(number))
    journal.close()
    with sqlite3.connect(path) as db:
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    assert path.stat().st_size < 500_000  # 8 MB went through it; pruning gives the pages back


def test_pruned_jobs_give_their_pages_back_to_the_disk(tmp_path):
    path = tmp_path / "journal.sqlite3"
    journal = Journal(path)
    for number in range(10):
        journal.add(big_record(f"job-{number}", float(number), 100_000))
        journal.mark_done(f"job-{number}", {}, number, now=float(number))
    assert journal.prune(keep_finished_hours=0, now=1000.0) == 10
    journal.close()
    with sqlite3.connect(path) as db:
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    assert path.stat().st_size < 100_000  # 2 MB were stored; a file that kept its free pages would still hold them


def test_a_jobs_timelapse_survives_reopening_counts_against_the_bound_and_goes_with_the_job(tmp_path):
    path = tmp_path / "journal.sqlite3"
    first = Journal(path)
    first.add(record("painted"))
    first.mark_done("painted", {}, 1, now=1000.0)
    before = first.stored_bytes()
    first.keep_timelapse("painted", b"webp" * 1000)
    assert first.stored_bytes() == before + 4000
    first.add(record("deleted"))
    first.mark_done("deleted", {}, 2, now=1000.0)
    first.keep_timelapse("deleted", b"webp")
    first.forget_result_message("deleted")
    first.close()
    second = Journal(path)
    assert second.timelapse("painted") == b"webp" * 1000
    assert second.timelapse("deleted") is None and second.timelapse("never-painted") is None
    assert second.prune(keep_finished_hours=1, now=1000.0 + 2 * 3600) == 2
    assert second.timelapse("painted") is None
    second.close()
