"""Shared pieces of the end-to-end suites: the real bot (`python -m bot`) against the local fake Discord.

Each test module starts one fake and one bot process (module-scoped, so torch loads once per module) with
tests/e2e.config.toml: CPU, random VGG weights, 48/64 px, a handful of steps, three variants.
"""

from __future__ import annotations

import io
import json
import time
import tomllib
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from PIL import Image

from tests.fakediscord import FakeDiscord, FakeInteraction, FakeMessage
from tests.fakediscord.bot_process import REPO_ROOT, BotProcess
from tests.fakediscord.fixtures import refusals_fail_the_test

E2E_CONFIG = REPO_ROOT / "tests" / "e2e.config.toml"
SAMPLE_IMAGES = REPO_ROOT / "tests" / "images"
CONTENT_PHOTO = SAMPLE_IMAGES / "content" / "chelsea.jpg"
STYLE_PAINTING = SAMPLE_IMAGES / "style" / "vangogh_wheat_field_with_cypresses.jpg"
# Discord's limit for answering an interaction.
ACK_DEADLINE_S = 3.0
# A job at the test config's sizes paints in seconds; this leaves room for a queue and a slow CI machine.
JOB_TIMEOUT_S = 120.0
BOT_START_TIMEOUT_S = 120.0


# ----------------------------------------------------------------------------------------------- the bot


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return json.dumps(value)  # a JSON string is a valid TOML basic string
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{json.dumps(str(k))} = {_toml_value(v)}" for k, v in value.items()) + " }"
    return repr(value)


def write_config(workdir: Path, overrides: dict[str, dict[str, Any]] | None = None) -> Path:
    """tests/e2e.config.toml with this run's journal and health file in ``workdir``, plus ``overrides``
    ({section: {key: value}}) for a module that needs, say, jobs that stay in flight for a few seconds."""
    with E2E_CONFIG.open("rb") as file:
        config = tomllib.load(file)
    config["journal"]["path"] = str(workdir / "journal.sqlite3")
    config["bot"]["health_file"] = str(workdir / "health")
    for section, values in (overrides or {}).items():
        config.setdefault(section, {}).update(values)
    path = workdir / "config.toml"
    path.write_text("".join(
        f"[{section}]\n" + "".join(f"{key} = {_toml_value(value)}\n" for key, value in values.items()) + "\n"
        for section, values in config.items()
    ))
    return path


async def start_bot(fake: FakeDiscord, workdir: Path,
                    overrides: dict[str, dict[str, Any]] | None = None) -> BotProcess:
    bot = await fake.start_bot(write_config(workdir, overrides), log_path=workdir / "bot.log")
    await fake.wait_for_bot_ready(timeout=BOT_START_TIMEOUT_S, commands=("stylize",))
    return bot


async def restart_bot(fake: FakeDiscord) -> BotProcess:
    assert fake.bot is not None and not fake.bot.running
    fake.bot.start()
    await fake.wait_for_bot_ready(timeout=BOT_START_TIMEOUT_S, commands=("stylize",))
    return fake.bot


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def fake(request: pytest.FixtureRequest) -> AsyncIterator[FakeDiscord]:
    """A fake Discord for the whole module; leaving it fails the module if the bot used an unknown route.
    A module changes how the fake behaves by defining ``FAKE_OPTIONS`` (FakeDiscord's keyword arguments)."""
    async with FakeDiscord(**getattr(request.module, "FAKE_OPTIONS", {})) as running:
        yield running


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def bot(fake: FakeDiscord, tmp_path_factory: pytest.TempPathFactory,
              request: pytest.FixtureRequest) -> AsyncIterator[BotProcess]:
    """The real bot, started once per module, ready (identified, commands registered). A module changes the
    test config by defining ``CONFIG_OVERRIDES = {section: {key: value}}``."""
    overrides = getattr(request.module, "CONFIG_OVERRIDES", None)
    process = await start_bot(fake, tmp_path_factory.mktemp("bot"), overrides)
    yield process
    await fake.stop_bot()


@pytest.fixture(autouse=True)
def bot_traffic_is_valid(request: pytest.FixtureRequest) -> Iterator[None]:
    """Every e2e test fails if Discord would have refused the bot's requests while it ran (unless the test is
    marked ``refused_on_purpose``), or the fake crashed on one."""
    if "fake" not in request.fixturenames:
        yield
        return
    with refusals_fail_the_test(request.getfixturevalue("fake"), request):
        yield


def child_pids(pid: int) -> list[int]:
    """Direct children of ``pid`` (psutil is not installed: read them from /proc)."""
    children: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            children += [int(child) for child in (task / "children").read_text().split()]
        except OSError:
            continue
    return children


def cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def worker_pids(bot: BotProcess) -> list[int]:
    """The painter processes the bot spawned (multiprocessing spawn children, not its resource tracker)."""
    assert bot.process is not None
    return [pid for pid in child_pids(bot.process.pid)
            if "spawn_main" in cmdline(pid) and "resource_tracker" not in cmdline(pid)]


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError(f"no VmRSS for process {pid}")


# ----------------------------------------------------------------------------------------------- images


def photo_bytes(path: Path = CONTENT_PHOTO, max_side: int = 160) -> bytes:
    """A sample picture shrunk for upload: the bot scales to 48/64 px anyway, and small uploads keep tests fast."""
    with Image.open(path) as image:
        image = image.convert("RGB")
        image.thumbnail((max_side, max_side))
        out = io.BytesIO()
        image.save(out, "JPEG", quality=90)
        return out.getvalue()


def decode(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    image.load()
    return image


STRIP_SIZE = 32  # [style] strip_size in tests/e2e.config.toml


def tile_height(result: Image.Image) -> int:
    """The height of a strip's tile for a result of this shape (tiles have STRIP_SIZE on their longest side)."""
    return round(result.height * STRIP_SIZE / max(result.size))


def picture_tiles(strip: Image.Image, tile_height: int) -> int:
    """How many pictures sit side by side in the strip's first row (white gaps separate them)."""
    band = strip.convert("RGB").crop((0, 0, strip.width, min(strip.height, tile_height + 12)))
    pixels = band.load()
    columns_with_picture = []
    for x in range(band.width):
        coloured = sum(1 for y in range(band.height) if sum(abs(255 - c) for c in pixels[x, y]) > 30)
        columns_with_picture.append(coloured >= 0.6 * tile_height)
    return sum(1 for x, inside in enumerate(columns_with_picture)
               if inside and (x == 0 or not columns_with_picture[x - 1]))


# ----------------------------------------------------------------------------------------------- what users see


def has_cancel(message: FakeMessage) -> bool:
    return any(item["custom_id"].startswith("sty:cancel:") for item in message.component_items())


def is_result(message: FakeMessage) -> bool:
    return not message.loading and any(name.startswith("stylized.") for name, _ in message.files)


def is_finished(message: FakeMessage) -> bool:
    """Neither "thinking…" nor in progress: a result, or a line saying why there is none."""
    return not message.loading and not has_cancel(message) and bool(message.content or message.files)


def custom_id(message: FakeMessage, action: str) -> str:
    ids = [item["custom_id"] for item in message.component_items() if item["custom_id"].startswith(f"sty:{action}:")]
    assert ids, f"no {action} button on message {message.id}: {[i['custom_id'] for i in message.component_items()]}"
    return ids[0]


def in_progress(interaction: FakeInteraction) -> bool:
    """The bot has journaled the job and shows its status (queued or painting) with a Cancel button; the
    status message is deleted once the result is posted as a new message."""
    original = interaction.original
    return original is not None and not original.deleted and not original.loading and not is_finished(original)


def public_messages(interaction: FakeInteraction) -> list[FakeMessage]:
    """Public messages the bot made in answer (a click acknowledged silently "targets" the clicked message,
    which was there before)."""
    return [m for m in interaction.messages
            if not m.deleted and not m.ephemeral and m is not interaction.source_message]


def outcome(interaction: FakeInteraction) -> FakeMessage | None:
    """How the job ended, as its requester sees it: the result, or the line saying why there is none."""
    return next((m for m in interaction.messages if not m.deleted and is_finished(m)), None)


def mentions(fake: FakeDiscord, message: FakeMessage, user: str) -> bool:
    return f"<@{fake.user(user)['id']}>" in message.content


async def stylize(fake: FakeDiscord, user: str, content: dict | None = None, style: dict | None = None,
                  channel: str | int | None = None, **options: Any) -> FakeInteraction:
    """``user`` runs /stylize (the sample cat photo and wheat field unless given) in ``channel`` (default
    "general") and the bot acknowledges in time."""
    content = content or fake.add_attachment(photo_bytes(CONTENT_PHOTO), "chelsea.jpg")
    style = style or fake.add_attachment(photo_bytes(STYLE_PAINTING), "wheat_field.jpg")
    interaction = await fake.slash_command("stylize", user=user, channel=channel,
                                           options={"content": content, "style": style, **options})
    assert await interaction.wait_acked(ACK_DEADLINE_S) < ACK_DEADLINE_S
    return interaction


async def wait_refused(interaction: FakeInteraction, timeout: float = 30.0) -> str:
    """Wait for the bot's refusal and check it is one private line and nothing public; return its text."""
    message = await interaction.wait_final(lambda m: m.ephemeral and bool(m.content), timeout=timeout)
    assert interaction.ack_latency is not None and interaction.ack_latency < ACK_DEADLINE_S
    assert len(interaction.ephemeral_messages) == 1, interaction.describe()
    assert public_messages(interaction) == [], f"a refusal left public messages: {interaction.describe()}"
    assert "\n" not in message.content.strip() and not message.files, message.content
    assert not any(word in message.content for word in ("Traceback", "Error", "Exception")), message.content
    return message.content


async def wait_result(interaction: FakeInteraction, timeout: float = JOB_TIMEOUT_S) -> FakeMessage:
    message = await interaction.wait_final(is_finished, timeout=timeout)
    assert is_result(message), f"the job ended without a result: {message.content!r}"
    return message


async def wait_all(interactions: list[FakeInteraction], predicate: Callable[[FakeMessage], bool],
                   timeout: float) -> None:
    deadline = time.monotonic() + timeout
    for interaction in interactions:
        await interaction.wait_final(predicate, timeout=max(1.0, deadline - time.monotonic()))
