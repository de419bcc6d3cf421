"""A bounded burst: 200 /stylize commands from 20 users in ten waves, against the bot's own limits."""

from __future__ import annotations

import asyncio
import time

import pytest

from tests.e2e.conftest import (
    ACK_DEADLINE_S,
    CONTENT_PHOTO,
    JOB_TIMEOUT_S,
    STYLE_PAINTING,
    in_progress,
    is_result,
    outcome,
    photo_bytes,
    rss_kib,
    wait_result,
)
from tests.fakediscord import FakeDiscord, FakeInteraction
from tests.fakediscord.bot_process import BotProcess

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio(loop_scope="module")]

USERS = [f"user{n:02d}" for n in range(20)]
WAVES, WAVE_INTERVAL_S = 10, 2.0
QUEUE_LENGTH, PER_USER_JOBS = 4, 2  # [limits] in tests/e2e.config.toml (per guild: 4, and all share one guild)
POLITE_REFUSALS = ("You already have", "This server already has", "I'm painting as many pictures as I can")
# The bot process holds no images between jobs; growth beyond this over 200 commands would be a leak.
RSS_GROWTH_LIMIT_KIB = 64 * 1024


async def test_a_burst_is_acknowledged_limited_and_every_accepted_job_answered(fake: FakeDiscord,
                                                                                bot: BotProcess):
    assert bot.process is not None
    # One warm-up job, so the measurement starts after the bot's first-use allocations.
    content = fake.add_attachment(photo_bytes(CONTENT_PHOTO), "chelsea.jpg")
    style = fake.add_attachment(photo_bytes(STYLE_PAINTING), "wheat_field.jpg")
    options = {"content": content, "style": style}
    await wait_result(await fake.slash_command("stylize", user="warmup", options=options))
    rss_before = rss_kib(bot.process.pid)

    interactions: list[FakeInteraction] = []
    busiest = {"jobs": 0, "per_user": 0}

    def sample() -> None:
        running = [i for i in interactions if in_progress(i)]
        busiest["jobs"] = max(busiest["jobs"], len(running))
        for user in USERS:
            busiest["per_user"] = max(busiest["per_user"],
                                      sum(1 for i in running if i.user["username"] == user))

    started = time.monotonic()
    for _ in range(WAVES):
        wave = await asyncio.gather(*(fake.slash_command("stylize", user=user, options=options) for user in USERS))
        interactions += wave
        await asyncio.gather(*(i.wait_acked(ACK_DEADLINE_S + 2) for i in wave))
        wave_end = time.monotonic() + WAVE_INTERVAL_S
        while time.monotonic() < wave_end:
            sample()
            await asyncio.sleep(0.05)

    deadline = time.monotonic() + JOB_TIMEOUT_S * 3
    while any(not _ended(i) for i in interactions) and time.monotonic() < deadline:
        sample()
        await asyncio.sleep(0.1)
    drained = time.monotonic() - started
    rss_after = rss_kib(bot.process.pid)

    latencies = sorted(i.ack_latency for i in interactions if i.ack_latency is not None)
    refused = [i for i in interactions if _refusal(i) is not None]
    accepted = [i for i in interactions if _refusal(i) is None]
    results = [i for i in accepted if outcome(i) is not None and is_result(outcome(i))]
    print(f"\nload: {len(interactions)} commands from {len(USERS)} users; ack p50 {latencies[len(latencies) // 2]:.3f} s, "
          f"max {latencies[-1]:.3f} s; {len(accepted)} accepted ({len(results)} painted), {len(refused)} refused; "
          f"busiest: {busiest['jobs']} jobs, {busiest['per_user']} per user; drained in {drained:.0f} s; "
          f"bot RSS {rss_before / 1024:.0f} -> {rss_after / 1024:.0f} MiB")

    assert len(latencies) == len(interactions) == WAVES * len(USERS), "some commands were never acknowledged"
    assert latencies[-1] < ACK_DEADLINE_S
    unfinished = [i.describe() for i in accepted if not _ended(i)]
    assert not unfinished, "accepted jobs never ended:\n" + "\n".join(unfinished[:5])
    unexplained = [i.describe() for i in accepted if not is_result(outcome(i)) and not outcome(i).content.strip()]
    assert not unexplained, "jobs ended with neither a result nor a reason:\n" + "\n".join(unexplained[:5])
    for interaction in refused:
        text = _refusal(interaction)
        assert text.startswith(POLITE_REFUSALS) and "\n" not in text, text
    assert refused and accepted
    assert busiest["jobs"] <= QUEUE_LENGTH and busiest["per_user"] <= PER_USER_JOBS
    assert rss_after - rss_before < RSS_GROWTH_LIMIT_KIB


def _refusal(interaction: FakeInteraction) -> str | None:
    ephemeral = interaction.ephemeral_messages
    return ephemeral[0].content if ephemeral and interaction.callback_type == 4 else None


def _ended(interaction: FakeInteraction) -> bool:
    if _refusal(interaction) is not None:
        return True
    return outcome(interaction) is not None


async def test_the_bot_process_leaves_torch_to_the_painter(fake: FakeDiscord, bot: BotProcess):
    # The scheduler would otherwise carry torch's ~600 MiB (and its start-up time) next to the worker's copy.
    assert bot.process is not None
    maps = open(f"/proc/{bot.process.pid}/maps").read()
    assert "libtorch" not in maps, f"the bot process loaded torch (RSS {rss_kib(bot.process.pid) // 1024} MiB)"
