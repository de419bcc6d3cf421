"""Where results go: a thread, a DM, a failed job's Retry, an Upscale."""

from __future__ import annotations

import pytest

from tests.e2e.conftest import (
    ACK_DEADLINE_S,
    JOB_TIMEOUT_S,
    custom_id,
    decode,
    is_finished,
    stylize,
    wait_result,
)
from tests.fakediscord import FakeDiscord
from tests.fakediscord.bot_process import BotProcess

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio(loop_scope="module")]

CONFIG_OVERRIDES = {"style": {"steps": {"48": 6, "64": 20}}}


async def test_a_thread_gets_its_result_in_the_thread(fake: FakeDiscord, bot: BotProcess):
    thread = await fake.add_thread("general", "critique")
    result = await wait_result(await stylize(fake, "bob", channel=thread["id"]))
    assert result.channel_id == int(thread["id"])
    assert result.pinged == [fake.user("bob")["id"]]


async def test_a_direct_message_gets_its_result_there(fake: FakeDiscord, bot: BotProcess):
    dm = fake.dm_channel("bob")["id"]
    result = await wait_result(await stylize(fake, "bob", channel=dm))
    assert result.channel_id == int(dm) and result.guild_id is None
    assert "Strength 5/10" in result.content
    assert result.pinged == [fake.user("bob")["id"]]


async def test_a_cancelled_job_offers_retry_which_paints_it_again(fake: FakeDiscord, bot: BotProcess):
    interaction = await stylize(fake, "bob", size=64, seed=9, strength=3)
    running = await interaction.wait_final(lambda m: "step" in m.content, timeout=JOB_TIMEOUT_S)
    await fake.click(running, custom_id(running, "cancel"), user="bob")
    ended = await interaction.wait_final(is_finished, timeout=30)
    assert "cancelled" in ended.content.lower() and ended.ephemeral, "a failure is told to its requester only"

    retry = await fake.click(ended, custom_id(ended, "retry"), user="bob")
    assert await retry.wait_acked(ACK_DEADLINE_S) < ACK_DEADLINE_S
    result = await wait_result(retry)
    assert "Strength 3/10" in result.content and "seed 9" in result.content and "64 px" in result.content


async def test_upscale_paints_the_tile_at_the_largest_size(fake: FakeDiscord, bot: BotProcess):
    first = await wait_result(await stylize(fake, "bob", strength=5, seed=4))
    button = next(item for item in first.component_items() if item["custom_id"].startswith("sty:upscale:")
                  and item["label"].startswith("Strength 7"))
    upscale = await fake.click(first, button["custom_id"], user="alice")
    assert await upscale.wait_acked(ACK_DEADLINE_S) < ACK_DEADLINE_S
    result = await wait_result(upscale)
    assert max(decode(result.files[0][1]).size) == 64
    assert "Strength 7/10" in result.content and "The strip shows" in result.content  # the strip is kept
    assert result.pinged == [fake.user("alice")["id"]]
