"""Less / More style and Upscale reuse what the result they come from already painted (issues 12 and 20).

The reply of a repaint says how many of its strip's tiles were reused. With three tiles two strengths apart
(3, 5, 7 around 5) Less / More land on the neighbouring tile and the strip around it shares two tiles with
the one it came from, so one tile is painted (and the result, grown from its tile).
"""

from __future__ import annotations

import asyncio

import pytest

from tests.e2e.conftest import (
    custom_id,
    decode,
    picture_tiles,
    restart_bot,
    stylize,
    tile_height,
    wait_result,
)
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
    assert "Strength 7/10" in more.content and REUSED in more.content, more.content
    image, strip = decode(more.files[0][1]), decode(more.files[1][1])
    assert picture_tiles(strip, tile_height(image)) == VARIANTS + 2  # the strip is complete all the same
    assert max(image.size) == 48

    again = await wait_result(await repaint(fake, more, "more"))  # a repaint of a repaint reuses too
    # 9's strip is 7's (5, 7, 9 stops at the top): every tile reused, only the result painted.
    assert "Strength 9/10" in again.content and "3 of 3 reused" in again.content, again.content


async def test_less_and_more_clicked_together_on_one_result_both_reuse_it(fake: FakeDiscord, bot: BotProcess):
    first = await wait_result(await stylize(fake, "carol", seed=6))
    less, more = await asyncio.gather(repaint(fake, first, "less", "carol"), repaint(fake, first, "more", "carol"))
    less_result, more_result = await asyncio.gather(wait_result(less), wait_result(more))
    assert "Strength 3/10" in less_result.content and REUSED in less_result.content, less_result.content
    assert "Strength 7/10" in more_result.content and REUSED in more_result.content, more_result.content


async def test_an_upscale_grows_its_tile_to_the_largest_size(fake: FakeDiscord, bot: BotProcess):
    first = await wait_result(await stylize(fake, "bob", seed=8))
    upscaled = await wait_result(await repaint(fake, first, "upscale"))  # the first tile: strength 3
    assert max(decode(upscaled.files[0][1]).size) == 64  # the largest size tests/e2e.config.toml offers
    assert "Strength 3/10" in upscaled.content and REUSED in upscaled.content, upscaled.content


async def test_a_repaint_after_a_restart_still_reuses_the_tiles_the_journal_kept(fake: FakeDiscord,
                                                                                   bot: BotProcess):
    first = await wait_result(await stylize(fake, "dave", seed=9))
    await fake.stop_bot()
    await restart_bot(fake)
    more = await wait_result(await repaint(fake, first, "more", "dave"))
    assert "Strength 7/10" in more.content and REUSED in more.content, more.content
