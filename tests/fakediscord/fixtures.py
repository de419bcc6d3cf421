"""pytest fixtures for end-to-end tests. Import them explicitly in a test module:

    from tests.fakediscord.fixtures import bot_process_fixture, fake_discord_fixture  # noqa: F401

and ask for them by their fixture names, `fake_discord` and `bot_process` (the function names differ so that
test parameters do not shadow the imports, which ruff reports as F811).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from .bot_process import REPO_ROOT, BotProcess
from .server import FakeDiscord

E2E_CONFIG = REPO_ROOT / "tests" / "e2e.config.toml"


REFUSED_ON_PURPOSE = "refused_on_purpose"


@contextlib.contextmanager
def refusals_fail_the_test(fake: FakeDiscord, request: pytest.FixtureRequest) -> Iterator[None]:
    """Fail the test if, while it ran, the fake refused a request (any Discord error answer: an invalid
    payload, a missing permission, a late callback...) or crashed on one. A test that provokes refusals on
    purpose says which codes with `@pytest.mark.refused_on_purpose(50013, ...)` (no codes: any)."""
    first_refusal, first_crash = len(fake.refusals), len(fake.server_errors)
    yield
    marker = request.node.get_closest_marker(REFUSED_ON_PURPOSE)
    allowed = None if marker is None else set(marker.args)
    unexpected = [r for r in fake.refusals[first_refusal:]
                  if allowed is None or (allowed and r.code not in allowed)]
    problems = [f"{r.method} {r.path} -> {r.status} {r.code} {r.message} {r.errors or ''}" for r in unexpected]
    problems += [f"the fake crashed (a bug of the fake): {error}" for error in fake.server_errors[first_crash:]]
    if problems:
        log = f"\n---- bot log, last lines:\n{fake.bot.log_tail()}" if fake.bot is not None else ""
        pytest.fail("Discord would have refused the bot's traffic:\n" + "\n".join(problems) + log, pytrace=False)


@pytest.fixture(name="fake_discord")
async def fake_discord_fixture(request: pytest.FixtureRequest) -> AsyncIterator[FakeDiscord]:
    """A running fake; the test fails at teardown if the bot made requests the fake does not know or that
    Discord would refuse (see `refusals_fail_the_test`)."""
    async with FakeDiscord() as fake:
        with refusals_fail_the_test(fake, request):
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
