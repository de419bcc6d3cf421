"""Less / More style and Upscale reuse what the result they come from already painted (issue 12).

The reply of a repaint says how many of its strip's variants were reused; with three variants a step of one
strength shares two of them with the strip it came from, so only one is painted.
"""

from __future__ import annotations

import asyncio

import pytest

from tests.e2e.conftest import custom_id, decode, picture_tiles, restart_bot, stylize, wait_result
from tests.fakediscord import FakeDiscord
from tests.fakediscord.bot_process import BotProcess

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio(loop_scope="module")]

VARIANTS = 3  # [style] variants in tests/e2e.config.toml
REUSED = f"{VARIANTS - 1} of {VARIANTS} reused"


async def repaint(fake: FakeDiscord, result, action: str, user: str = "bob"):
    return await fake.click(result, custom_id(result, action), user=user)


async def test_more_style_paints_only_the_one_new_variant(fake: FakeDiscord, bot: BotProcess):
    first = await wait_result(await stylize(fake, "bob", seed=5))
    assert "reused" not in first.content

    more = await wait_result(await repaint(fake, first, "more"))
    assert "Strength 6/10" in more.content and REUSED in more.content, more.content
    image, strip = decode(more.files[0][1]), decode(more.files[1][1])
    assert picture_tiles(strip, image.height) == VARIANTS + 2  # the strip is complete all the same

    again = await wait_result(await repaint(fake, more, "more"))  # a repaint of a repaint reuses too
    assert "Strength 7/10" in again.content and REUSED in again.content, again.content


async def test_less_and_more_clicked_together_on_one_result_both_reuse_it(fake: FakeDiscord, bot: BotProcess):
    first = await wait_result(await stylize(fake, "carol", seed=6))
    less, more = await asyncio.gather(repaint(fake, first, "less", "carol"), repaint(fake, first, "more", "carol"))
    less_result, more_result = await asyncio.gather(wait_result(less), wait_result(more))
    assert "Strength 4/10" in less_result.content and REUSED in less_result.content, less_result.content
    assert "Strength 6/10" in more_result.content and REUSED in more_result.content, more_result.content


async def test_an_upscale_starts_from_its_tile_and_paints_only_it(fake: FakeDiscord, bot: BotProcess):
    first = await wait_result(await stylize(fake, "bob", seed=8))
    upscaled = await wait_result(await repaint(fake, first, "upscale"))
    assert max(decode(upscaled.files[0][1]).size) == 64  # the largest size tests/e2e.config.toml offers
    assert "reused" not in upscaled.content  # its one tile is painted anew, at the larger size


async def test_a_repaint_after_a_restart_still_reuses_the_tiles_the_journal_kept(fake: FakeDiscord,
                                                                                   bot: BotProcess):
    first = await wait_result(await stylize(fake, "dave", seed=9))
    await fake.stop_bot()
    await restart_bot(fake)
    more = await wait_result(await repaint(fake, first, "more", "dave"))
    assert "Strength 6/10" in more.content and REUSED in more.content, more.content
