"""What a user does with the bot, end to end: /stylize, the buttons, the context menus."""

from __future__ import annotations

import pytest

from tests.e2e.conftest import (
    ACK_DEADLINE_S,
    CONTENT_PHOTO,
    STYLE_PAINTING,
    custom_id,
    decode,
    is_finished,
    is_result,
    mentions,
    photo_bytes,
    picture_tiles,
    stylize,
    tile_height,
    wait_refused,
    wait_result,
)
from tests.fakediscord import FakeDiscord
from tests.fakediscord.bot_process import BotProcess

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio(loop_scope="module")]

VARIANTS = 3  # [style] variants in tests/e2e.config.toml
# 64 px jobs get enough steps to stay in flight for a few seconds, so that Cancel meets a running job.
CONFIG_OVERRIDES = {"style": {"steps": {"48": 6, "64": 20}}}


async def test_stylize_acknowledges_shows_progress_and_delivers_result_and_strip(fake: FakeDiscord, bot: BotProcess):
    content = fake.add_attachment(photo_bytes(CONTENT_PHOTO), "chelsea.jpg")
    style = fake.add_attachment(photo_bytes(STYLE_PAINTING), "wheat_field.jpg")

    interaction = await fake.slash_command(
        "stylize", user="bob", options={"content": content, "style": style, "size": 64, "seed": 7, "strength": 6}
    )
    assert await interaction.wait_acked(ACK_DEADLINE_S) < ACK_DEADLINE_S
    result = await wait_result(interaction)

    progress = [edit["content"] for edit in interaction.edits if edit["content"].startswith("Painting")]
    assert progress, f"no progress was shown before the result: {[e['content'] for e in interaction.edits]}"
    assert not result.ephemeral, "everyone in the channel should see the painting"
    (image_name, image_data), (strip_name, strip_data) = result.files
    image, strip = decode(image_data), decode(strip_data)
    assert max(image.size) == 64
    assert image.size[0] > image.size[1], "the landscape photo came back in another orientation"
    # The strip shows the two inputs, then every tile (32 px, [style] strip_size), in one row.
    assert picture_tiles(strip, tile_height(image)) == VARIANTS + 2
    assert strip.height < 3 * 32
    caption = result.content
    assert "Strength 6/10" in caption and "seed 7" in caption and "64 px" in caption
    # The strip's tiles are strengths 4, 6 and 8: the caption and the Upscale buttons name the same; the result
    # is at the largest size already, so only the other tiles have one.
    assert "Strength 4, Strength 6, Strength 8" in caption and "weight" not in caption
    labels = [item["label"] for item in result.component_items() if item["custom_id"].startswith("sty:upscale:")]
    assert labels == ["Strength 4 at 64 px", "Strength 8 at 64 px"]


async def test_the_result_is_a_new_message_that_pings_the_requester(fake: FakeDiscord, bot: BotProcess):
    interaction = await stylize(fake, "bob", size=64)
    status = await interaction.wait_final(lambda m: "step" in m.content, timeout=60)
    result = await wait_result(interaction)

    # An edit never notifies: the picture arrives in a message of its own that mentions bob, and nobody else.
    assert result is not status and result in interaction.followups
    assert result.content.startswith(f"<@{fake.user('bob')['id']}> your picture is ready.")
    assert result.pinged == [fake.user("bob")["id"]]
    assert not mentions(fake, result, "alice")
    # ... and the progress message does not linger next to it.
    await fake.wait_until(lambda: status.deleted, timeout=10)


async def test_more_style_repaints_with_a_higher_style_weight_and_delete_removes_it(fake: FakeDiscord, bot: BotProcess):
    first = await wait_result(await stylize(fake, "bob", strength=4, seed=3))

    more = await fake.click(first, custom_id(first, "more"), user="bob")
    assert await more.wait_acked(ACK_DEADLINE_S) < ACK_DEADLINE_S
    second = await wait_result(more)

    assert second is not first and not first.deleted, "the first result should stay for comparison"
    assert "Strength 6/10" in second.content and "seed 3" in second.content, second.content
    assert "Strength 4/10" in first.content
    assert max(decode(second.files[0][1]).size) == 48

    stranger = await fake.click(second, custom_id(second, "delete"), user="alice")
    assert "only the person" in (await wait_refused(stranger)).lower()
    assert not second.deleted
    delete = await fake.click(second, custom_id(second, "delete"), user="bob")
    await fake.wait_until(lambda: second.deleted, timeout=10)
    assert delete.ack_latency is not None and delete.ack_latency < ACK_DEADLINE_S
    assert not first.deleted


async def test_context_menus_use_a_posted_painting_as_style_for_a_posted_photo(fake: FakeDiscord, bot: BotProcess):
    painting = await fake.user_message("look at this painting", user="alice", attachments=[
        fake.add_attachment(photo_bytes(STYLE_PAINTING), "wheat_field.jpg")])
    photo = await fake.user_message("my cat", user="alice", attachments=[
        fake.add_attachment(photo_bytes(CONTENT_PHOTO), "chelsea.jpg")])

    without_style = await fake.context_menu("Stylize with my style", photo, user="carol")
    assert "style" in (await wait_refused(without_style)).lower()

    remember = await fake.context_menu("Use as style", painting, user="alice")
    assert "wheat_field.jpg" in await wait_refused(remember)
    painted = await fake.context_menu("Stylize with my style", photo, user="alice")
    assert await painted.wait_acked(ACK_DEADLINE_S) < ACK_DEADLINE_S
    result = await wait_result(painted)
    assert max(decode(result.files[0][1]).size) == 48
    assert "Strength 5/10" in result.content


async def test_cancel_stops_the_running_job_and_says_so(fake: FakeDiscord, bot: BotProcess):
    interaction = await stylize(fake, "bob", size=64)
    running = await interaction.wait_final(
        lambda m: "step" in m.content and any(i["custom_id"].startswith("sty:cancel:") for i in m.component_items()),
        timeout=60)
    cancel = custom_id(running, "cancel")

    stranger = await fake.click(running, cancel, user="alice")
    assert "only the person" in (await wait_refused(stranger)).lower()
    click = await fake.click(running, cancel, user="bob")
    assert await click.wait_acked(ACK_DEADLINE_S) < ACK_DEADLINE_S
    ended = await interaction.wait_final(is_finished, timeout=30)

    assert "cancelled" in ended.content.lower()
    assert not is_result(ended) and not ended.files
    assert not any(e["content"].startswith("Strength") for e in interaction.edits), "the job was painted anyway"
