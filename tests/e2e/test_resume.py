"""A restart that outlives the interaction token: Discord no longer lets the bot edit its original response."""

from __future__ import annotations

import asyncio
import time

import pytest

from tests.e2e.conftest import JOB_TIMEOUT_S, decode, in_progress, is_result, restart_bot, stylize
from tests.fakediscord import FakeDiscord
from tests.fakediscord.bot_process import BotProcess

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio(loop_scope="module")]

# Discord's tokens live 15 minutes; the fake's die after a few seconds so that a restart outlives one.
TOKEN_TTL_S = 8.0
FAKE_OPTIONS = {"token_ttl": TOKEN_TTL_S}
# The job must still be in flight when the bot is killed: 64 px jobs get enough steps for that.
CONFIG_OVERRIDES = {"style": {"steps": {"48": 6, "64": 20}}}


# The restarted bot tries the dead token first (404 10015, Unknown Webhook) and then posts in the channel.
@pytest.mark.refused_on_purpose(10015)
async def test_restart_after_the_token_died_posts_the_result_mentioning_the_user(fake: FakeDiscord,
                                                                                   bot: BotProcess):
    interaction = await stylize(fake, "bob", size=64)
    await fake.wait_until(lambda: in_progress(interaction), timeout=30)
    await fake.kill_bot()
    await asyncio.sleep(max(0.0, interaction.created_at + TOKEN_TTL_S + 0.5 - time.monotonic()))
    await restart_bot(fake)

    mention = f"<@{fake.user('bob')['id']}>"

    def posted():
        return [m for m in fake.visible_messages("general", user="bob")
                if m.author["id"] == str(fake.application_id) and m.interaction is None and mention in m.content
                and is_result(m)]

    await fake.wait_until(lambda: bool(posted()), timeout=JOB_TIMEOUT_S)
    [message] = posted()
    assert max(decode(message.files[0][1]).size) == 64
    assert "Strength 5/10" in message.content
    assert not is_result(interaction.original), "the dead token could not have edited the original response"
