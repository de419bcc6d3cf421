"""A result never lost to a missing permission: after the interaction token died, a channel where the bot may
not post (no Send Messages, no Attach Files) sends the result to its requester by direct message."""

from __future__ import annotations

import asyncio
import time

import pytest

from tests.e2e.conftest import JOB_TIMEOUT_S, decode, in_progress, is_result, restart_bot, stylize
from tests.fakediscord import FakeDiscord
from tests.fakediscord import permissions as perms
from tests.fakediscord.bot_process import BotProcess

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio(loop_scope="module")]

# Tokens die after a few seconds so that a restart outlives one: the bot must then post in the channel itself.
TOKEN_TTL_S = 8.0
FAKE_OPTIONS = {"token_ttl": TOKEN_TTL_S}
# The job must still be in flight when the bot is killed: 64 px jobs get enough steps for that.
CONFIG_OVERRIDES = {"style": {"steps": {"48": 6, "64": 20}}}


def bot_messages(fake: FakeDiscord, channel, user: str) -> list:
    return [m for m in fake.visible_messages(channel, user=user)
            if m.author["id"] == str(fake.application_id) and not m.deleted]


# The restarted bot first tries the dead token (it cannot know the fake's shorter lifetime): Unknown Webhook.
@pytest.mark.refused_on_purpose(10015)
async def test_a_channel_without_send_messages_and_attach_files_gets_the_result_to_the_user_by_dm(
        fake: FakeDiscord, bot: BotProcess):
    interaction = await stylize(fake, "bob", size=64, channel=fake.channel("art")["id"])
    await fake.wait_until(lambda: in_progress(interaction), timeout=30)
    await fake.set_permissions("art", deny=perms.SEND_MESSAGES | perms.ATTACH_FILES)
    try:
        await fake.kill_bot()
        await asyncio.sleep(max(0.0, interaction.created_at + TOKEN_TTL_S + 0.5 - time.monotonic()))
        await restart_bot(fake)

        dm = fake.dm_channel("bob")["id"]
        await fake.wait_until(lambda: any(is_result(m) for m in bot_messages(fake, dm, "bob")), timeout=JOB_TIMEOUT_S)
    finally:
        await fake.set_permissions("art")
    [message] = [m for m in bot_messages(fake, dm, "bob") if is_result(m)]
    assert max(decode(message.files[0][1]).size) == 64
    # One line says why the picture came this way, naming what the bot lacks where it was asked for.
    assert "I couldn't post your picture in" in message.content
    assert "Send Messages" in message.content and "Attach Files" in message.content
    assert not [m for m in bot_messages(fake, "art", "bob") if is_result(m)]
