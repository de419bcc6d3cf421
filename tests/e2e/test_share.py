"""Share: only into the gallery of the server the picture was painted in, and one private line naming the
permission the bot lacks where it cannot post there."""

from __future__ import annotations

import pytest

from tests.e2e.conftest import custom_id, start_bot, stylize, wait_refused, wait_result
from tests.fakediscord import FakeDiscord
from tests.fakediscord import permissions as perms

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio(loop_scope="module")]


async def test_share_posts_in_this_servers_gallery_or_says_what_the_bot_lacks_there(fake: FakeDiscord, tmp_path):
    gallery = await fake.add_channel("gallery")
    await start_bot(fake, tmp_path, {"discord": {"gallery_channels": {str(fake.guild_id): int(gallery["id"])}}})
    try:
        result = await wait_result(await stylize(fake, "bob"))

        stranger = await fake.click(result, custom_id(result, "share"), user="alice")
        assert "only the person" in (await wait_refused(stranger)).lower()
        shared = await fake.click(result, custom_id(result, "share"), user="bob")
        assert await wait_refused(shared) == "Shared in the gallery."
        [post] = [m for m in fake.visible_messages("gallery", user="alice") if m.files]
        assert post.content.startswith(f"Painted for <@{fake.user('bob')['id']}>") and post.pinged == []

        await fake.set_permissions("gallery", deny=perms.ATTACH_FILES)
        refused = await fake.click(result, custom_id(result, "share"), user="bob")
        line = await wait_refused(refused)
        assert line == f"I can't share in <#{gallery['id']}>: I'm missing Attach Files there."
        assert len([m for m in fake.visible_messages("gallery", user="alice") if m.files]) == 1

        # A DM belongs to no server, so it has no gallery and no Share button.
        in_dm = await wait_result(await stylize(fake, "bob", channel=fake.dm_channel("bob")["id"]))
        assert not any(item["custom_id"].startswith("sty:share:") for item in in_dm.component_items())
    finally:
        await fake.stop_bot()
