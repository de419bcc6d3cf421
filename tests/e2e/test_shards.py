"""Sharding: a fake Discord that recommends (and requires) two shards, as it does for a bot past 2,500 servers.

The fake's guild lives on shard 1 and direct messages arrive on shard 0, so a job in each travels on its own
gateway connection.
"""

from __future__ import annotations

import pytest

from tests.e2e.conftest import BOT_START_TIMEOUT_S, start_bot, stylize, wait_result, write_config
from tests.fakediscord import FakeDiscord
from tests.fakediscord.bot_process import BotProcess

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio(loop_scope="module")]

FAKE_OPTIONS = {"shards": 2}


async def test_by_default_the_bot_runs_the_shards_discord_recommends(fake: FakeDiscord, bot: BotProcess):
    assert sorted(payload["shard"] for payload in fake.gateway.identify_payloads) == [[0, 2], [1, 2]]
    assert any(request.path.endswith("/gateway/bot") for request in fake.requests)
    assert fake.gateway.current is not None and fake.gateway.current.shard == [1, 2]


async def test_a_job_in_the_guild_and_one_in_a_direct_message_each_come_back_on_their_shard(
        fake: FakeDiscord, bot: BotProcess):
    in_guild = await wait_result(await stylize(fake, "bob", seed=3))
    in_dm = await wait_result(await stylize(fake, "bob", channel=fake.dm_channel("bob")["id"], seed=3))
    assert in_guild.guild_id == fake.guild_id and in_dm.guild_id is None
    # The health file says every shard is connected.
    health = bot.config_path.parent / "health"
    await fake.wait_until(health.exists, 30, lambda: "the bot never wrote its health file")


async def test_too_few_shards_stop_the_bot_with_one_line_that_says_what_to_set(fake: FakeDiscord, bot: BotProcess,
                                                                                 tmp_path):
    await fake.stop_bot()
    lone = await fake.start_bot(write_config(tmp_path, {"discord": {"shard_count": 1}}), log_path=tmp_path / "bot.log")
    await fake.wait_until(lambda: not lone.running, BOT_START_TIMEOUT_S, lone.log_tail)
    assert lone.returncode == 2, lone.log_tail()
    assert fake.gateway.identify_payloads[-1]["shard"] == [0, 1]
    errors = [line for line in lone.log().splitlines() if " ERROR " in line]
    assert errors and "sharding required" in errors[-1] and "shard_count = 0" in errors[-1], lone.log_tail()
    assert "Traceback" not in lone.log()
    await start_bot(fake, tmp_path)  # the module's bot fixture stops whatever bot runs last

