"""SIGTERM (what systemd and docker send) ends the bot within 10 s whatever its painter is doing."""

from __future__ import annotations

import os
import signal
import time

import pytest

from tests.e2e.conftest import JOB_TIMEOUT_S, start_bot, stylize, worker_pids, write_config
from tests.fakediscord import FakeDiscord

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio(loop_scope="module")]

# Docker's default grace period before SIGKILL.
EXIT_DEADLINE_S = 10.0
# 64 px jobs stay in flight for a few seconds, so the painter is frozen in the middle of one.
CONFIG_OVERRIDES = {"style": {"steps": {"48": 6, "64": 40}}}


async def test_sigterm_with_a_frozen_painter_ends_the_bot_within_10_s(fake: FakeDiscord, tmp_path):
    bot = await start_bot(fake, tmp_path, CONFIG_OVERRIDES)
    interaction = await stylize(fake, "bob", size=64)
    await interaction.wait_final(lambda m: "step" in m.content, timeout=JOB_TIMEOUT_S)
    [painter] = worker_pids(bot)
    # Stopped, not dead: it holds its job and answers nothing, like a hung GPU driver or a lost Ray node.
    os.kill(painter, signal.SIGSTOP)
    try:
        started = time.monotonic()
        code = await fake.stop_bot(timeout=EXIT_DEADLINE_S + 5)
        took = time.monotonic() - started
    finally:
        _kill_quietly(painter)
    assert took < EXIT_DEADLINE_S, f"the bot took {took:.1f} s to exit:\n{bot.log_tail()}"
    assert code == 0, bot.log_tail()
    assert "SIGTERM received, shutting down" in bot.log()


async def test_sigterm_while_the_painter_is_still_loading_ends_the_bot_within_10_s(fake: FakeDiscord, tmp_path):
    # Not waiting for ready: the painter is stopped while it loads torch and its weights, before it ever answers.
    bot = await fake.start_bot(write_config(tmp_path, CONFIG_OVERRIDES), log_path=tmp_path / "bot.log")
    await fake.wait_until(lambda: len(worker_pids(bot)) == 1, timeout=60)
    [loading] = worker_pids(bot)
    os.kill(loading, signal.SIGSTOP)
    try:
        await fake.wait_for_bot_ready(timeout=60, commands=("stylize",))
        started = time.monotonic()
        code = await fake.stop_bot(timeout=EXIT_DEADLINE_S + 5)
        took = time.monotonic() - started
    finally:
        _kill_quietly(loading)
    assert took < EXIT_DEADLINE_S, f"the bot took {took:.1f} s to exit:\n{bot.log_tail()}"
    assert code == 0, bot.log_tail()


def _kill_quietly(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
