"""The same bot, painting on Ray Serve instead of its local worker: only `[executor] kind` changes.

The bot process starts a local Ray instance itself (address "local", CPU replicas), so this runs on the CI
machine; a real deployment points `address` at a cluster (docs/scaling.md).
"""

from __future__ import annotations

import pytest

from tests.e2e.conftest import (
    ACK_DEADLINE_S,
    custom_id,
    decode,
    picture_tiles,
    stylize,
    tile_height,
    wait_result,
)
from tests.fakediscord import FakeDiscord
from tests.fakediscord.bot_process import BotProcess

pytestmark = [pytest.mark.e2e, pytest.mark.ray, pytest.mark.asyncio(loop_scope="module")]

VARIANTS = 3  # [style] variants in tests/e2e.config.toml
CONFIG_OVERRIDES = {
    "executor": {"kind": "ray", "address": "local", "device": "cpu", "num_gpus": 0.0, "num_cpus": 1.0,
                 "replicas": 1},
}
# Ray's own start-up comes before the first job on a 2-core machine.
RAY_JOB_TIMEOUT_S = 240.0


async def test_stylize_and_more_style_through_ray_serve(fake: FakeDiscord, bot: BotProcess):
    interaction = await stylize(fake, "bob", size=64, seed=5, strength=5)
    first = await wait_result(interaction, timeout=RAY_JOB_TIMEOUT_S)

    progress = [edit["content"] for edit in interaction.edits if edit["content"].startswith("Painting")]
    assert progress, f"no progress came back from the replica: {[e['content'] for e in interaction.edits]}"
    (_, image_data), (_, strip_data) = first.files
    image, strip = decode(image_data), decode(strip_data)
    assert max(image.size) == 64
    assert picture_tiles(strip, tile_height(image)) == VARIANTS + 2  # 32 px tiles ([style] strip_size)
    assert "Strength 5/10" in first.content and "seed 5" in first.content, first.content

    more = await fake.click(first, custom_id(first, "more"), user="bob")
    assert await more.wait_acked(ACK_DEADLINE_S) < ACK_DEADLINE_S
    second = await wait_result(more, timeout=RAY_JOB_TIMEOUT_S)
    assert "Strength 7/10" in second.content, second.content
    assert "Strength 5, Strength 7, Strength 9" in second.content, second.content
    # Both pictures were painted by a Serve replica, not by a local worker the bot fell back to.
    log = bot.log()
    assert "executor RayExecutor started" in log
    assert log.count("started on SERVE_REPLICA::stylebot") >= 2, bot.log_tail()
