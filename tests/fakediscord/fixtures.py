"""pytest fixtures for end-to-end tests. Import them explicitly in a test module:

    from tests.fakediscord.fixtures import bot_process_fixture, fake_discord_fixture  # noqa: F401

and ask for them by their fixture names, `fake_discord` and `bot_process` (the function names differ so that
test parameters do not shadow the imports, which ruff reports as F811).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from .bot_process import REPO_ROOT, BotProcess
from .server import FakeDiscord

E2E_CONFIG = REPO_ROOT / "tests" / "e2e.config.toml"


@pytest.fixture(name="fake_discord")
async def fake_discord_fixture() -> AsyncIterator[FakeDiscord]:
    """A running fake; the test fails at teardown if the bot made requests the fake does not know."""
    async with FakeDiscord() as fake:
        yield fake


@pytest.fixture(name="bot_process")
async def bot_process_fixture(fake_discord: FakeDiscord, tmp_path: Path) -> AsyncIterator[BotProcess]:
    """`python -m bot --config tests/e2e.config.toml` against `fake_discord`, ready (identified, commands
    registered) when the test starts; journal in tmp_path, log in tmp_path / "bot.log"."""
    bot = await fake_discord.start_bot(
        E2E_CONFIG, env={"STYLEBOT_JOURNAL": str(tmp_path / "journal.sqlite3")}, log_path=tmp_path / "bot.log"
    )
    await fake_discord.wait_for_bot_ready(timeout=90)
    yield bot
    await fake_discord.stop_bot()


# The plain names, for modules that import `fake_discord` / `bot_process` directly.
fake_discord = fake_discord_fixture
bot_process = bot_process_fixture
