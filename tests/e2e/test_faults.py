"""Things going wrong: bad uploads, full queues, a user cancelling, the painter or the bot itself killed."""

from __future__ import annotations

import asyncio
import os
import signal

import pytest

from tests.e2e.conftest import (
    CONTENT_PHOTO,
    JOB_TIMEOUT_S,
    in_progress,
    photo_bytes,
    restart_bot,
    stylize,
    wait_refused,
    wait_result,
    worker_pids,
)
from tests.fakediscord import FakeDiscord
from tests.fakediscord.bot_process import BotProcess
from tests.hostile_images import png_header_only

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio(loop_scope="module")]

MIB = 1024 * 1024
MAX_ATTACHMENT_BYTES = 10 * MIB  # the bot's default [limits] max_attachment_bytes; the e2e config keeps it
QUEUE_LENGTH, PER_USER_JOBS = 4, 2  # [limits] in tests/e2e.config.toml
CONFIG_OVERRIDES = {
    # One guild: without this the guild limit (4) would answer before the queue limit (also 4) could.
    "limits": {"per_guild_jobs": 10},
    # 64 px jobs stay in flight for a few seconds, so that a kill lands in the middle of one.
    "style": {"steps": {"48": 6, "64": 20}},
}


def bad_upload(fake: FakeDiscord, kind: str) -> tuple[dict, str]:
    """An attachment and a word the refusal must contain."""
    photo = photo_bytes(CONTENT_PHOTO)
    if kind == "not_an_image":
        return fake.add_attachment(b"Coffee: 2 shots, oat milk.\n" * 20, "coffee.txt"), "coffee.txt"
    if kind == "declared_too_large":
        return fake.add_attachment(photo, "huge.jpg", declared_size=MAX_ATTACHMENT_BYTES + MIB), "huge.jpg"
    if kind == "lying_size":
        # Discord's payload claims a tenth of the real size: only the streaming download can catch it.
        return fake.add_attachment(photo, "liar.jpg", mode="lying_size"), "liar.jpg"
    if kind == "decompression_bomb":
        return fake.add_attachment(png_header_only(20_000, 20_000), "bomb.png"), "pixels"
    raise ValueError(kind)


@pytest.mark.parametrize("kind", ["not_an_image", "declared_too_large", "lying_size", "decompression_bomb"])
@pytest.mark.parametrize("role", ["content", "style"])
async def test_a_bad_upload_gets_one_private_line(fake: FakeDiscord, bot: BotProcess, kind: str, role: str):
    attachment, word = bad_upload(fake, kind)
    interaction = await stylize(fake, "bob", **{role: attachment})
    refusal = await wait_refused(interaction)
    assert word in refusal, refusal


async def test_the_bot_serves_normally_after_bad_uploads(fake: FakeDiscord, bot: BotProcess):
    await wait_result(await stylize(fake, "bob"))
    assert bot.running


async def test_rate_limited_and_failed_edits_are_retried_and_the_result_arrives(fake: FakeDiscord, bot: BotProcess):
    rate_limit = fake.inject_rate_limit("PATCH", "/webhooks/*/*/messages/*", retry_after=0.3, count=2)
    outage = fake.inject_response("PATCH", "/webhooks/*/*/messages/*", status=502, count=1)
    result = await wait_result(await stylize(fake, "bob"))
    assert rate_limit.hits == 2 and outage.hits == 1
    assert max(result.images()[0].size) == 48


async def test_limits_refuse_politely_and_every_accepted_job_finishes(fake: FakeDiscord, bot: BotProcess):
    # 64 px jobs last seconds, so none can finish and free its place while the limits are being tested.
    accepted = [await stylize(fake, "bob", size=64), await stylize(fake, "bob", size=64)]
    over_user_limit = await stylize(fake, "bob", size=64)
    assert f"You already have {PER_USER_JOBS} pictures" in await wait_refused(over_user_limit)
    accepted += [await stylize(fake, "carol", size=64), await stylize(fake, "dave", size=64)]
    over_queue = await stylize(fake, "erin", size=64)
    assert "try again in a few minutes" in await wait_refused(over_queue)

    assert len(accepted) == QUEUE_LENGTH
    for interaction in accepted:
        await wait_result(interaction, timeout=JOB_TIMEOUT_S * 2)
    # Places are given back: the users who were turned away can now paint.
    await wait_result(await stylize(fake, "erin"))


async def test_killed_painter_process_is_replaced_and_the_job_retried(fake: FakeDiscord, bot: BotProcess):
    interaction = await stylize(fake, "bob", size=64)
    await interaction.wait_final(lambda m: "step" in m.content, timeout=JOB_TIMEOUT_S)
    [painter] = worker_pids(bot)

    os.kill(painter, signal.SIGKILL)
    result = await wait_result(interaction)

    assert max(result.images()[0].size) == 64
    assert worker_pids(bot) and painter not in worker_pids(bot)
    assert any("second try" in edit["content"] for edit in interaction.edits), \
        [edit["content"] for edit in interaction.edits]


async def test_bot_killed_with_accepted_jobs_answers_them_all_after_restart(fake: FakeDiscord, bot: BotProcess):
    # The first job (64 px) paints for seconds: the other two are surely still queued when the bot dies.
    jobs = [await stylize(fake, "alice", size=64), await stylize(fake, "bob"), await stylize(fake, "carol")]
    await fake.wait_until(lambda: all(in_progress(i) for i in jobs), timeout=30)
    painters = worker_pids(bot)

    assert await fake.kill_bot() == -signal.SIGKILL
    # An orphaned painter would keep its memory (on a server: the GPU's) until someone noticed.
    for _ in range(100):
        if not any(_alive(pid) for pid in painters):
            break
        await asyncio.sleep(0.1)
    assert not any(_alive(pid) for pid in painters), "the painter outlived the killed bot"

    await restart_bot(fake)
    results = [await wait_result(interaction, timeout=JOB_TIMEOUT_S * 2) for interaction in jobs]
    assert [max(result.images()[0].size) for result in results] == [64, 48, 48]


def _alive(pid: int) -> bool:
    """Running, not a zombie waiting for its (dead) parent's reaper."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False
