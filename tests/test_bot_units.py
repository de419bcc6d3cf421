"""The bot's parts that need no Discord: strength, limits, custom ids, downloads, the job loop, the CLI."""

from __future__ import annotations

import asyncio
import io
import logging
import os
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import aiohttp
import discord
import pytest
from aiohttp import web
from PIL import Image

from bot import health, messages, views
from bot.__main__ import RedactSecrets, parse_args, read_config
from bot.app import apply_endpoints, make_executor
from bot.commands import Actions
from bot.config import parse_config
from bot.customids import CustomId, parse_custom_id
from bot.download import DownloadError, download
from bot.jobs import Reply, Throttle, TokenReply, run_job
from bot.journal import AttachmentInfo, JobRecord, Journal
from bot.limits import JobLimits, Refusal
from bot.memory import StyleMemory
from bot.strength import step_strength, style_weight_for
from stylizer.executor.base import (
    ExecutorUnavailable,
    JobDone,
    JobFailed,
    JobHandle,
    JobProgress,
    JobQueued,
    JobStarted,
    QueueFull,
)
from stylizer.images import InvalidImage

ROOT = Path(__file__).resolve().parents[1]
JOB_ID = "0123456789abcdef0123456789abcdef"


# ----- strength -----

def test_strength_five_is_the_base_weight_and_each_step_doubles():
    assert style_weight_for(1e6, 5) == 1e6
    assert style_weight_for(1e6, 6) == 2e6
    assert style_weight_for(1e6, 4) == 5e5
    assert style_weight_for(1e8, 10) == 1e8 * 32
    assert style_weight_for(1e8, 1) == 1e8 / 16


@pytest.mark.parametrize("strength", [0, 11, -3])
def test_strength_outside_one_to_ten_is_refused(strength):
    with pytest.raises(ValueError, match="between 1 and 10"):
        style_weight_for(1e6, strength)


def test_less_and_more_stop_at_the_ends():
    assert step_strength(5, +1) == 6
    assert step_strength(5, -1) == 4
    assert step_strength(10, +1) is None
    assert step_strength(1, -1) is None


# ----- limits -----

def test_per_user_limit_refuses_the_third_job_with_the_promised_sentence():
    limits = JobLimits(queue_length=10, per_user_jobs=2, per_guild_jobs=10)
    assert limits.reserve("a", user_id=1, guild_id=5) is None
    assert limits.reserve("b", user_id=1, guild_id=5) is None
    refusal = limits.reserve("c", user_id=1, guild_id=5)
    assert refusal == Refusal("per_user", 2)
    assert messages.refusal(refusal) == "You already have 2 pictures being painted — wait for one to finish."
    # Someone else is not held back by user 1.
    assert limits.reserve("d", user_id=2, guild_id=5) is None
    limits.release("a")
    assert limits.reserve("c", user_id=1, guild_id=5) is None


def test_per_guild_and_queue_limits():
    limits = JobLimits(queue_length=3, per_user_jobs=5, per_guild_jobs=2)
    assert limits.reserve("a", 1, guild_id=5) is None
    assert limits.reserve("b", 2, guild_id=5) is None
    assert limits.reserve("c", 3, guild_id=5) == Refusal("per_guild", 2)
    assert limits.reserve("c", 3, guild_id=None) is None  # a DM belongs to no guild
    assert limits.reserve("d", 4, guild_id=6) == Refusal("queue_full", 3)
    assert len(limits) == 3
    limits.release("a")
    limits.release("a")  # twice is harmless
    assert len(limits) == 2


def test_forced_reservation_counts_but_is_never_refused():
    limits = JobLimits(queue_length=1, per_user_jobs=1, per_guild_jobs=1)
    assert limits.reserve("a", 1, 5) is None
    assert limits.reserve("resumed", 1, 5, force=True) is None
    assert limits.count_user(1) == 2
    assert limits.reserve("b", 2, 6) == Refusal("queue_full", 1)


def test_style_memory_forgets_after_its_time():
    memory = StyleMemory(keep_s=600)
    style = AttachmentInfo("style", "https://cdn/x.png", 10, "image/png", "x.png")
    memory.remember(1, style, now=100.0)
    assert memory.recall(1, now=699.0) == style
    assert memory.recall(2, now=699.0) is None
    assert memory.recall(1, now=700.0) is None


# ----- custom ids and views -----

def test_custom_id_round_trip():
    for custom in (CustomId("more", JOB_ID), CustomId("variant", JOB_ID, 3), CustomId("cancel", JOB_ID)):
        assert parse_custom_id(str(custom)) == custom
    assert str(CustomId("more", JOB_ID)) == f"sty:more:{JOB_ID}"


@pytest.mark.parametrize("text", ["", "sty:more", f"sty:explode:{JOB_ID}", "sty:more:XYZ", f"other:more:{JOB_ID}",
                                  f"sty:more:{JOB_ID}:extra"])
def test_foreign_or_broken_custom_ids_are_not_ours(text):
    assert parse_custom_id(text) is None


def _custom_ids(view: discord.ui.View) -> list[str]:
    return [item.custom_id for item in view.children]


def test_result_view_has_redo_variant_delete_and_share_buttons_that_survive_restarts():
    view = views.result_view(JOB_ID, variants=3, strength=5, gallery=True)
    ids = _custom_ids(view)
    assert ids == [f"sty:less:{JOB_ID}", f"sty:more:{JOB_ID}", f"sty:variant:{JOB_ID}:0", f"sty:variant:{JOB_ID}:1",
                   f"sty:variant:{JOB_ID}:2", f"sty:delete:{JOB_ID}", f"sty:share:{JOB_ID}"]
    assert [item.item.label for item in view.children][2:5] == ["Variant 1", "Variant 2", "Variant 3"]
    assert view.timeout is None and view.is_persistent()
    # Each id is matched by exactly one registered DynamicItem, so a click after a restart finds its handler.
    for custom_id in ids:
        matching = [cls for cls in views.DYNAMIC_ITEMS if cls.__discord_ui_compiled_template__.fullmatch(custom_id)]
        assert len(matching) == 1, custom_id


def test_result_view_without_gallery_or_variants():
    ids = _custom_ids(views.result_view(JOB_ID, variants=1, strength=10, gallery=False))
    assert ids == [f"sty:less:{JOB_ID}", f"sty:more:{JOB_ID}", f"sty:delete:{JOB_ID}"]
    less, more = views.result_view(JOB_ID, variants=1, strength=10, gallery=False).children[:2]
    assert more.item.disabled and not less.item.disabled  # already at strength 10


async def test_dynamic_item_is_rebuilt_from_its_custom_id():
    custom_id = f"sty:variant:{JOB_ID}:2"
    match = views.VariantButton.__discord_ui_compiled_template__.fullmatch(custom_id)
    item = discord.ui.Button(label="Variant 3", custom_id=custom_id)
    rebuilt = await views.VariantButton.from_custom_id(None, item, match)
    assert rebuilt.custom == CustomId("variant", JOB_ID, 2)
    assert rebuilt.item.label == "Variant 3"


@pytest.mark.parametrize(("kind", "expected"), [("local", "LocalExecutor"), ("ray", "RayExecutor")])
def test_the_configured_executor_kind_is_built_from_the_config(kind, expected):
    # Constructing starts nothing; it proves the config's keys still fit the executor's signature.
    config = parse_config({"executor": {"kind": kind, "weights": "random", "device": "cpu"}}, {})
    assert type(make_executor(config)).__name__ == expected


# ----- endpoints, logging, health -----

def test_endpoints_point_discord_py_elsewhere(monkeypatch):
    monkeypatch.setattr(discord.http.Route, "BASE", discord.http.Route.BASE)
    monkeypatch.setattr(discord.gateway.DiscordWebSocket, "DEFAULT_GATEWAY",
                        discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY)
    apply_endpoints("http://127.0.0.1:5555/api/v10/", "ws://127.0.0.1:5555/gateway")
    route = discord.http.Route("POST", "/interactions/{id}/{token}/callback", id=1, token="t")
    assert route.url == "http://127.0.0.1:5555/api/v10/interactions/1/t/callback"
    webhook_route = discord.http.Route("PATCH", "/webhooks/{webhook_id}/{webhook_token}/messages/@original",
                                       webhook_id=1, webhook_token="t")
    assert webhook_route.url.startswith("http://127.0.0.1:5555/api/v10/webhooks/")
    assert str(discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY) == "ws://127.0.0.1:5555/gateway"


def test_token_is_redacted_from_log_lines_and_tracebacks():
    token = "MTIzNDU2.secret.token"
    redact = RedactSecrets(token)
    record = logging.LogRecord("discord.http", logging.INFO, __file__, 1, "sending %s to %s", ("Bot " + token, "x"),
                               None)
    assert redact.filter(record)
    assert token not in record.getMessage() and "[REDACTED]" in record.getMessage()
    try:
        raise RuntimeError(f"bad token {token}")
    except RuntimeError:
        record = logging.LogRecord("x", logging.ERROR, __file__, 1, "boom", (), sys.exc_info())
    redact.filter(record)
    assert token not in logging.Formatter().format(record)


def test_interaction_tokens_in_urls_are_redacted():
    record = logging.LogRecord("discord.http", logging.DEBUG, __file__, 1, "%s %s has returned %s",
                               ("POST", "http://x/api/v10/interactions/123/aW50ZXJhY3Rpb24secret/callback", 204),
                               None)
    RedactSecrets("bot-token").filter(record)
    assert record.getMessage() == "POST http://x/api/v10/interactions/123/[REDACTED]/callback has returned 204"


def test_health_file_is_fresh_only_after_a_recent_touch(tmp_path):
    path = tmp_path / "dir" / "health"
    assert not health.is_fresh(path)
    health.touch(path)
    assert health.is_fresh(path)
    assert not health.is_fresh(path, now=time.time() + 91)


# ----- downloads -----

@pytest.fixture
async def cdn():
    """A tiny HTTP server standing in for Discord's CDN."""
    files: dict[str, bytes] = {}

    async def serve(request: web.Request) -> web.StreamResponse:
        name = request.match_info["name"]
        if name not in files:
            return web.Response(status=404)
        response = web.StreamResponse()
        await response.prepare(request)
        data = files[name]
        for start in range(0, len(data), 1000):  # chunked, like a real transfer
            await response.write(data[start:start + 1000])
        await response.write_eof()
        return response

    app = web.Application()
    app.router.add_get("/{name}", serve)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]
    async with aiohttp.ClientSession() as session:
        yield SimpleNamespace(files=files, url=f"http://127.0.0.1:{port}", session=session)
    await runner.cleanup()


async def test_download_returns_the_bytes(cdn):
    cdn.files["a.png"] = b"x" * 5000
    assert await download(cdn.session, f"{cdn.url}/a.png", filename="a.png", max_bytes=10_000,
                          declared_size=5000) == b"x" * 5000


async def test_download_stops_past_the_cap(cdn):
    cdn.files["big.png"] = b"x" * 50_000
    with pytest.raises(DownloadError, match="big.png is"):
        await download(cdn.session, f"{cdn.url}/big.png", filename="big.png", max_bytes=10_000)


async def test_download_stops_when_more_arrives_than_declared(cdn):
    cdn.files["liar.png"] = b"x" * 5000
    with pytest.raises(DownloadError) as caught:
        await download(cdn.session, f"{cdn.url}/liar.png", filename="liar.png", max_bytes=10_000,
                       declared_size=2000)
    # Not "I can take pictures up to 2000 bytes": the declared size is no limit of the bot's.
    assert str(caught.value) == "liar.png turned out bigger than Discord said it was — please upload it again."


async def test_a_download_past_the_real_limit_names_the_real_limit_whatever_was_declared(cdn):
    cdn.files["huge.png"] = b"x" * 50_000
    with pytest.raises(DownloadError) as caught:
        await download(cdn.session, f"{cdn.url}/huge.png", filename="huge.png", max_bytes=10_000,
                       declared_size=60_000)
    assert str(caught.value).startswith("huge.png is ")
    assert str(caught.value).endswith("; I can take pictures up to 10 KiB.")


async def test_download_failure_is_one_friendly_line(cdn):
    with pytest.raises(DownloadError) as caught:
        await download(cdn.session, f"{cdn.url}/gone.png", filename="gone.png", max_bytes=10_000)
    assert str(caught.value) == "I couldn't download gone.png from Discord — please try again."


# ----- the job loop, with a scripted executor -----

class ScriptedHandle(JobHandle):
    def __init__(self, job_id, events):
        self.job_id = job_id
        self._events = events
        self.cancelled = False

    async def events(self):
        for event in self._events:
            await asyncio.sleep(0)
            yield event

    async def cancel(self):
        self.cancelled = True


class ScriptedExecutor:
    def __init__(self, events=(), error: Exception | None = None):
        self.events = list(events)
        self.error = error
        self.jobs = []

    async def submit(self, job):
        if self.error:
            raise self.error
        self.jobs.append(job)
        return ScriptedHandle(job.job_id, self.events)


class RecordingReply(Reply):
    def __init__(self):
        self.shown = []

    async def show(self, content, *, files=None, view=None):
        self.shown.append(SimpleNamespace(content=content, files=[f.filename for f in files or []], view=view))
        return 4242


@pytest.fixture
def fake_bot(tmp_path):
    config = parse_config({
        "style": {"sizes": [48, 64], "default_size": 48, "steps": {"48": 6, "64": 8}, "variants": 3,
                  "base_style_weight": 1e8, "content_weight": 1e4},
        "bot": {"progress_edit_interval_s": 0},
    }, {})
    journal = Journal(tmp_path / "journal.sqlite3")
    bot = SimpleNamespace(config=config, journal=journal, executor=None, executor_problem=None,
                          limits=JobLimits(queue_length=4, per_user_jobs=2, per_guild_jobs=4), handles={},
                          delivering=set())
    yield bot
    journal.close()


def _record(strength=6, **options) -> JobRecord:
    return JobRecord(
        job_id=JOB_ID, user_id=1, guild_id=2, channel_id=3,
        attachments=[AttachmentInfo("content", "u", 1, "image/png", "cat.png")],
        options={"strength": strength, "size": 64, "seed": 11, "preserve_colors": True, "variants": 3,
                 "style_weight": None, "content_name": "cat.png", "style_name": "wave.jpg",
                 "output_max_bytes": 1_000_000, **options},
        content=b"c", style=b"s",
    )


DONE = JobDone(image=b"img", image_ext="png", strip=b"strip", strip_ext="jpg", image_size=(64, 48),
               strip_size=(200, 80), style_weights=(1e8, 2e8, 4e8), chosen=1, seconds=3.25)


async def test_a_finished_job_is_delivered_with_both_images_and_buttons(fake_bot):
    fake_bot.executor = ScriptedExecutor([JobQueued(2), JobStarted(), JobProgress("painting", 3, 8, 1.5, b"jpg"),
                                          DONE])
    fake_bot.journal.add(_record())
    fake_bot.limits.reserve(JOB_ID, 1, 2)
    reply = RecordingReply()
    await run_job(fake_bot, _record(), reply)

    job = fake_bot.executor.jobs[0]
    assert job.options.style_weight == 2e8  # strength 6 = base 1e8 doubled
    assert (job.options.size, job.options.steps, job.options.seed) == (64, 8, 11)
    assert job.options.preserve_colors and job.options.variants == 3
    assert job.options.content_weight == 1e4 and job.options.output_max_bytes == 1_000_000
    assert job.owner == 1 and job.style_name == "wave.jpg"

    texts = [shown.content for shown in reply.shown]
    assert texts[0] == "Your picture is number 2 in the queue…"
    assert texts[2].startswith("Painting… painting step 3/8")
    assert reply.shown[2].files == ["preview.jpg"]
    assert all(shown.view.children[0].custom_id == f"sty:cancel:{JOB_ID}" for shown in reply.shown[:3])
    final = reply.shown[-1]
    assert final.files == ["stylized.png", "variants.jpg"]
    assert "Strength 6/10" in final.content and "seed 11" in final.content and "64 px" in final.content
    assert "3.2 s" in final.content or "3.3 s" in final.content
    assert f"sty:more:{JOB_ID}" in _custom_ids(final.view)

    stored = fake_bot.journal.get(JOB_ID)
    assert stored.state == "done" and stored.result_message_id == 4242
    assert stored.result["style_weights"] == [1e8, 2e8, 4e8]
    assert len(fake_bot.limits) == 0 and fake_bot.handles == {}


async def test_progress_edits_are_throttled(fake_bot):
    fake_bot.config = parse_config({"bot": {"progress_edit_interval_s": 3600}}, {})
    events = [JobQueued(1), JobStarted()] + [JobProgress("painting", i, 50, 0.1 * i) for i in range(50)] + [DONE]
    fake_bot.executor = ScriptedExecutor(events)
    fake_bot.journal.add(_record(size=512))
    reply = RecordingReply()
    await run_job(fake_bot, _record(size=512), reply)
    # The first event is shown at once, then nothing until the result.
    assert len(reply.shown) == 2
    assert reply.shown[-1].files == ["stylized.png", "variants.jpg"]


@pytest.mark.parametrize(("event", "expected"), [
    (JobFailed("timeout", "took 900 s"), "took too long"),
    (JobFailed("invalid_image", "coffee.txt is not an image Pillow can read"), "coffee.txt is not an image"),
    (JobFailed("crashed", "worker died"), "crashed"),
    (JobFailed("cancelled", "cancelled by user"), "Cancelled."),
])
async def test_a_failed_job_ends_with_one_readable_line(fake_bot, event, expected):
    fake_bot.executor = ScriptedExecutor([JobQueued(1), JobStarted(), event])
    fake_bot.journal.add(_record())
    fake_bot.limits.reserve(JOB_ID, 1, 2)
    reply = RecordingReply()
    await run_job(fake_bot, _record(), reply)
    assert expected in reply.shown[-1].content
    assert reply.shown[-1].view is None and reply.shown[-1].files == []
    assert fake_bot.journal.get(JOB_ID).state == "failed"
    assert len(fake_bot.limits) == 0


@pytest.mark.parametrize(("error", "expected"), [
    (QueueFull("full"), messages.QUEUE_FULL),
    (ExecutorUnavailable("The VGG-19 weights are not available."),
     "The painter isn't available right now (The VGG-19 weights are not available) — please try again later."),
])
async def test_refused_submission_is_told_not_left_thinking(fake_bot, error, expected):
    fake_bot.executor = ScriptedExecutor(error=error)
    fake_bot.journal.add(_record())
    reply = RecordingReply()
    await run_job(fake_bot, _record(), reply)
    assert [shown.content for shown in reply.shown] == [expected]
    assert fake_bot.journal.get(JOB_ID).state == "failed"


async def test_a_painter_that_never_started_is_explained(fake_bot):
    fake_bot.executor = ScriptedExecutor([DONE])
    fake_bot.executor_problem = "No VGG-19 weights: pass --weights PATH."
    fake_bot.journal.add(_record())
    reply = RecordingReply()
    await run_job(fake_bot, _record(), reply)
    assert fake_bot.executor.jobs == []
    assert reply.shown[-1].content == ("The painter isn't available right now (No VGG-19 weights: pass --weights PATH)"
                                       " — please try again later.")


async def test_a_variant_rerender_uses_its_own_style_weight(fake_bot):
    fake_bot.executor = ScriptedExecutor([DONE])
    record = _record(style_weight=4e8, variants=1)
    fake_bot.journal.add(record)
    await run_job(fake_bot, record, RecordingReply())
    assert fake_bot.executor.jobs[0].options.style_weight == 4e8
    assert fake_bot.executor.jobs[0].options.variants == 1


class BrokenReply(Reply):
    def __init__(self, status):
        self.status = status
        self.calls = 0

    async def show(self, content, *, files=None, view=None):
        self.calls += 1
        response = SimpleNamespace(status=self.status, reason="gone")
        raise discord.HTTPException(response, {"code": 50027, "message": "Invalid Webhook Token"})


async def test_a_dead_token_moves_the_job_to_a_channel_message():
    primary, fallback = BrokenReply(401), RecordingReply()
    reply = TokenReply(primary, fallback, token_expires_at=time.time() + 600)
    await reply.show("Painting…")
    await reply.show("done")
    assert [shown.content for shown in fallback.shown] == ["Painting…", "done"]
    assert primary.calls == 1  # once it failed it is not tried again


async def test_an_expired_token_is_not_even_tried():
    primary, fallback = RecordingReply(), RecordingReply()
    await TokenReply(primary, fallback, token_expires_at=time.time() - 1).show("done")
    assert primary.shown == [] and [shown.content for shown in fallback.shown] == ["done"]


async def test_other_http_errors_are_not_mistaken_for_a_dead_token():
    reply = TokenReply(BrokenReply(500), RecordingReply(), token_expires_at=time.time() + 600)
    with pytest.raises(discord.HTTPException):
        await reply.show("x")


# ----- the checks made before deferring -----

def _actions(**config) -> Actions:
    return Actions(SimpleNamespace(config=parse_config(config, {})))


@pytest.mark.parametrize(("discord_config", "guild_id", "channel_id", "allowed"), [
    ({}, 1, 2, True),
    ({"allowed_guilds": [1]}, 1, 2, True),
    ({"allowed_guilds": [1]}, 9, 2, False),
    ({"allowed_channels": [2, 3]}, 1, 3, True),
    ({"allowed_channels": [2, 3]}, 1, 4, False),
    ({"allowed_guilds": [1]}, None, 2, False),  # a DM is outside every allowed guild
])
def test_the_bot_answers_only_where_it_is_allowed(discord_config, guild_id, channel_id, allowed):
    interaction = SimpleNamespace(guild_id=guild_id, channel_id=channel_id)
    assert _actions(discord=discord_config)._place_allowed(interaction) is allowed


def test_attachments_are_checked_by_declared_type_and_size():
    actions = _actions(limits={"max_attachment_bytes": 1000})
    assert actions._attachment_problem(AttachmentInfo("content", "u", 999, "image/webp", "a.webp")) is None
    assert actions._attachment_problem(AttachmentInfo("content", "u", 1001, "image/png", "big.png")) == \
        "big.png is 1001 bytes; I can take pictures up to 1000 bytes."
    assert actions._attachment_problem(AttachmentInfo("content", "u", 10, "text/plain", "a.txt")) == \
        "a.txt doesn't look like a picture — please attach a PNG, JPEG, WebP or GIF."
    assert "doesn't look like a picture" in actions._attachment_problem(
        AttachmentInfo("content", "u", 10, None, "mystery"))


def test_intake_refuses_a_picture_too_thin_for_the_requested_size_naming_it():
    actions = _actions()
    buffer = io.BytesIO()
    Image.new("RGB", (800, 16)).save(buffer, format="PNG")
    with pytest.raises(InvalidImage) as caught:
        actions._validate(buffer.getvalue(), "banner.png", 48)
    assert str(caught.value) == ("banner.png is too long and thin to paint at 48 px: its short side would be "
                                 "1 px (at least 16 px needed).")
    actions._validate(buffer.getvalue(), "banner.png", 800)  # 800×16 as it is: paintable


def test_each_result_image_gets_half_the_upload_limit():
    actions = _actions()
    assert actions._output_budget(SimpleNamespace(filesize_limit=10 * 1024 * 1024)) == 5 * 1024 * 1024 - 64 * 1024


def test_journal_flag_beats_environment_and_file(tmp_path, monkeypatch):
    monkeypatch.setenv("STYLEBOT_JOURNAL", str(tmp_path / "env.sqlite3"))
    config = read_config(parse_args(["--config", str(ROOT / "tests" / "e2e.config.toml"),
                                     "--journal", str(tmp_path / "flag.sqlite3")]))
    assert config.journal.path == str(tmp_path / "flag.sqlite3")
    config = read_config(parse_args(["--config", str(ROOT / "tests" / "e2e.config.toml")]))
    assert config.journal.path == str(tmp_path / "env.sqlite3")


# ----- the redo buttons -----

@pytest.fixture
def redo(fake_bot, monkeypatch):
    """Actions whose submit and refusals are recorded instead of talking to Discord."""
    actions = Actions(fake_bot)
    calls = SimpleNamespace(submitted=[], refused=[])

    async def submit(interaction, **kwargs):
        calls.submitted.append(kwargs)

    async def refuse(interaction, text):
        calls.refused.append(text)

    monkeypatch.setattr(actions, "submit", submit)
    monkeypatch.setattr(actions, "_refuse", refuse)
    calls.actions = actions
    return calls


def _done_record(**options) -> JobRecord:
    record = _record(**options)
    record.state, record.result = "done", {"style_weights": [5e7, 1e8, 2e8], "chosen": 1}
    return record


async def test_more_style_repaints_the_same_images_one_strength_up_with_the_same_seed(redo):
    await redo.actions._redo(None, _done_record(strength=6), CustomId("more", JOB_ID))
    [call] = redo.submitted
    assert (call["strength"], call["seed"], call["size"], call["variants"]) == (7, 11, 64, 3)
    assert (call["content"], call["style"], call["style_weight"]) == (b"c", b"s", None)
    assert call["preserve_colors"] is True


async def test_less_style_at_strength_one_is_refused(redo):
    await redo.actions._redo(None, _done_record(strength=1), CustomId("less", JOB_ID))
    assert redo.submitted == []
    assert redo.refused == ["The strength is already at its minimum (1)."]


async def test_a_variant_is_repainted_alone_at_the_largest_size_with_its_weight(redo):
    await redo.actions._redo(None, _done_record(), CustomId("variant", JOB_ID, 2))
    [call] = redo.submitted
    assert (call["style_weight"], call["variants"], call["size"]) == (2e8, 1, 64)


async def test_more_style_on_a_repainted_variant_doubles_its_weight(redo):
    await redo.actions._redo(None, _done_record(style_weight=2e8, variants=1), CustomId("more", JOB_ID))
    assert redo.submitted[0]["style_weight"] == 4e8


async def test_a_pruned_job_cannot_be_repainted(redo):
    record = _done_record()
    record.content = None
    await redo.actions._redo(None, record, CustomId("more", JOB_ID))
    assert redo.submitted == [] and redo.refused == [messages.TOO_OLD]


def test_throttle_allows_one_edit_per_interval():
    throttle = Throttle(2.0)
    assert throttle.ready(now=10.0)
    assert not throttle.ready(now=11.9)
    assert throttle.ready(now=12.0)


# ----- the command line -----

def _run_bot(*args, env_extra=None, cwd=None):
    env = {k: v for k, v in os.environ.items() if k not in ("DISCORD_TOKEN", "DISCORD_API_BASE", "DISCORD_GATEWAY_URL")}
    env.update(env_extra or {})
    return subprocess.run([sys.executable, "-m", "bot", *args], capture_output=True, text=True, env=env,
                          cwd=cwd or ROOT, timeout=60)


def test_without_a_token_it_explains_what_to_set_and_exits_2(tmp_path):
    result = _run_bot("--config", str(ROOT / "config.example.toml"))
    assert result.returncode == 2
    text = result.stdout + result.stderr
    assert "Traceback" not in text
    for needed in ("DISCORD_TOKEN", "[discord]", "New Application", "Reset Token", "bot+applications.commands",
                   "permissions=35840", "python -m stylizer", "--weights random"):
        assert needed in text, needed


def test_the_bot_process_never_imports_torch():
    # The painting happens in the executor's worker; torch in the bot would cost seconds and hundreds of MiB.
    code = ("import sys, bot.__main__, bot.app, bot.commands, stylizer.images\n"
            "from bot.app import make_executor\nfrom bot.config import parse_config\n"
            "make_executor(parse_config({'executor': {'weights': 'random', 'device': 'cpu'}}, {}))\n"
            "print('torch' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert result.stdout.strip() == "False", result.stderr


def test_help_works():
    result = _run_bot("--help")
    assert result.returncode == 0
    assert "--config" in result.stdout and "--healthcheck" in result.stdout


def test_bad_config_exits_2_with_one_line_per_problem(tmp_path):
    path = tmp_path / "config.toml"
    path.write_text('[limits]\nper_user_jobs = "two"\n[executor]\nkind = "cloud"\n')
    result = _run_bot("--config", str(path), env_extra={"DISCORD_TOKEN": "x"})
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert "[limits] per_user_jobs must be a whole number" in result.stderr
    assert "[executor] kind must be one of" in result.stderr


def test_healthcheck_reads_the_health_file(tmp_path):
    health_file = tmp_path / "health"
    path = tmp_path / "config.toml"
    path.write_text(f'[bot]\nhealth_file = "{health_file}"\n')
    assert _run_bot("--config", str(path), "--healthcheck").returncode == 1
    health.touch(health_file)
    assert _run_bot("--config", str(path), "--healthcheck").returncode == 0
    old = time.time() - 120
    os.utime(health_file, (old, old))
    assert _run_bot("--config", str(path), "--healthcheck").returncode == 1
