"""The bot's parts that need no Discord: strength, limits, custom ids, downloads, the job loop, the CLI."""

from __future__ import annotations

import asyncio
import dataclasses
import io
import logging
import os
import re
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
from bot.buttons import ButtonHandlers
from bot.config import parse_config
from bot.customids import ACTIONS, CustomId, template
from bot.download import DownloadError, download
from bot.intake import Intake, output_budget
from bot.journal import AttachmentInfo, JobRecord, Journal
from bot.limits import JobLimits, Refusal
from bot.memory import StyleMemory
from bot.replies import Reply, TokenReply, Undeliverable
from bot.request import Request
from bot.service import JobService, Throttle
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
from stylizer.strength import check_strength, step_strength, style_factor

ROOT = Path(__file__).resolve().parents[1]
JOB_ID = "0123456789abcdef0123456789abcdef"


# ----- strength -----

def test_strength_five_is_the_balance_and_each_step_doubles():
    # The bot no longer computes weights (the stylizer balances each pair); the lattice it asks on is this.
    assert style_factor(5) == 1
    assert style_factor(6) == 2
    assert style_factor(4) == 0.5
    assert style_factor(10) == 32
    assert style_factor(1) == 1 / 16


@pytest.mark.parametrize("strength", [0, 11, -3])
def test_strength_outside_one_to_ten_is_refused(strength):
    with pytest.raises(ValueError, match="between 1 and 10"):
        check_strength(strength)
    with pytest.raises(ValueError, match="between 1 and 10"):
        Request(strength=strength, size=64, seed=1, preserve_colors=False, variants=3, content_name="c",
                style_name="s", output_max_bytes=1000)


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

def parse_custom_id(custom_id: str) -> CustomId | None:
    """What discord.py's DynamicItem matching reads from a custom_id: the grammar is ``customids.template``."""
    for action in ACTIONS:
        match = re.fullmatch(template(action), custom_id)
        if match is not None:
            argument = match.groupdict().get("argument")
            return CustomId(action, match["job_id"], None if argument is None else int(argument))
    return None


def test_custom_id_round_trip():
    for custom in (CustomId("more", JOB_ID), CustomId("upscale", JOB_ID, 3), CustomId("cancel", JOB_ID)):
        assert parse_custom_id(str(custom)) == custom
    assert str(CustomId("more", JOB_ID)) == f"sty:more:{JOB_ID}"


@pytest.mark.parametrize("text", ["", "sty:more", f"sty:explode:{JOB_ID}", "sty:more:XYZ", f"other:more:{JOB_ID}",
                                  f"sty:more:{JOB_ID}:extra"])
def test_foreign_or_broken_custom_ids_are_not_ours(text):
    assert parse_custom_id(text) is None


def _custom_ids(view: discord.ui.View) -> list[str]:
    return [item.custom_id for item in view.children]


def test_result_view_has_redo_upscale_delete_and_share_buttons_that_survive_restarts():
    view = views.result_view(JOB_ID, strength=5, strengths=(3, 5, 7), size=512, upscale_size=768, gallery=True)
    ids = _custom_ids(view)
    assert ids == [f"sty:less:{JOB_ID}", f"sty:more:{JOB_ID}", f"sty:delete:{JOB_ID}", f"sty:share:{JOB_ID}",
                   f"sty:upscale:{JOB_ID}:3", f"sty:upscale:{JOB_ID}:5", f"sty:upscale:{JOB_ID}:7"]
    labels = [item.item.label for item in view.children]
    # The buttons name the strip's tiles, which stylizer.strength.strength_label labels; Less/More land on the
    # neighbouring tiles (one strip spacing away).
    assert labels[4:] == ["Strength 3 at 768 px", "Strength 5 at 768 px", "Strength 7 at 768 px"]
    assert labels[:2] == ["Less style: Strength 3", "More style: Strength 7"]
    assert view.timeout is None and view.is_persistent()
    # Each id is matched by exactly one registered DynamicItem, so a click after a restart finds its handler.
    for custom_id in ids:
        matching = [cls for cls in views.DYNAMIC_ITEMS if cls.__discord_ui_compiled_template__.fullmatch(custom_id)]
        assert len(matching) == 1, custom_id


def test_a_result_already_at_the_largest_size_offers_only_the_other_tiles_there():
    view = views.result_view(JOB_ID, strength=5, strengths=(3, 5, 7), size=768, upscale_size=768, gallery=False)
    assert [c for c in _custom_ids(view) if c.startswith("sty:upscale:")] == [f"sty:upscale:{JOB_ID}:3",
                                                                            f"sty:upscale:{JOB_ID}:7"]


def test_result_view_without_gallery_or_variants():
    ids = _custom_ids(views.result_view(JOB_ID, strength=10, strengths=(10,), size=64, upscale_size=64,
                                        gallery=False))
    assert ids == [f"sty:less:{JOB_ID}", f"sty:more:{JOB_ID}", f"sty:delete:{JOB_ID}"]
    less, more = views.result_view(JOB_ID, strength=10, strengths=(10,), size=64, upscale_size=64,
                                   gallery=False).children[:2]
    assert more.item.disabled and not less.item.disabled  # already at strength 10


def test_a_failed_job_offers_retry():
    assert _custom_ids(views.retry_view(JOB_ID)) == [f"sty:retry:{JOB_ID}"]
    assert views.retry_view(JOB_ID).children[0].item.label == "Retry"


async def test_dynamic_item_is_rebuilt_from_its_custom_id():
    custom_id = f"sty:upscale:{JOB_ID}:7"
    match = views.UpscaleButton.__discord_ui_compiled_template__.fullmatch(custom_id)
    item = discord.ui.Button(label="Upscale Strength 7 to 64 px", custom_id=custom_id)
    rebuilt = await views.UpscaleButton.from_custom_id(None, item, match)
    assert rebuilt.custom == CustomId("upscale", JOB_ID, 7)
    assert rebuilt.item.label == "Upscale Strength 7 to 64 px"


class AckRecorder:
    """The parts of a discord.Interaction a button's callback touches, recording the order of events."""

    def __init__(self, events, client):
        self.events = events
        self.client = client
        self.response = SimpleNamespace(defer=self._defer)

    async def _defer(self, **kwargs):
        self.events.append(("ack", kwargs))


@pytest.mark.parametrize(("button", "ack"), [
    (views.CancelButton(JOB_ID), {}),
    (views.MoreButton(JOB_ID), {"ephemeral": False, "thinking": True}),
    (views.ShareButton(JOB_ID), {"ephemeral": True, "thinking": True}),
])
async def test_a_click_is_acknowledged_before_anything_reads_the_journal(button, ack):
    events = []

    class Actions:
        async def clicked(self, interaction, custom):
            events.append(("journal read", custom.action))

    interaction = AckRecorder(events, SimpleNamespace(button_actions=Actions()))
    await button.callback(interaction)
    assert events == [("ack", ack), ("journal read", button.custom.action)]


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

    async def start(self):
        pass

    async def submit(self, job):
        if self.error:
            raise self.error
        self.jobs.append(job)
        return ScriptedHandle(job.job_id, self.events)


class RecordingReply(Reply):
    """What the requester would see: status edits (shown), the pinging result (delivered), private lines."""

    def __init__(self):
        self.shown = []
        self.delivered = []
        self.private = []

    async def show(self, content, *, files=None, view=None):
        self.shown.append(SimpleNamespace(content=content, files=[name for name, _ in files or []], view=view))
        return 4242

    async def deliver(self, content, *, files, view):
        self.delivered.append(SimpleNamespace(content=content, files=[name for name, _ in files or []], view=view))
        return 4343

    async def tell_privately(self, content, *, view=None):
        self.private.append(SimpleNamespace(content=content, files=[], view=view))

    @property
    def last(self):
        return (self.delivered or self.private)[-1]


CONFIG = {
    "style": {"sizes": [48, 64], "default_size": 48, "steps": {"48": 6, "64": 8}, "variants": 3,
              "content_weight": 1e4},
    "bot": {"progress_edit_interval_s": 0},
}


@pytest.fixture
def service(tmp_path):
    """A job service with its real journal and limits, a scripted executor and no Discord."""
    journal = Journal(tmp_path / "journal.sqlite3")
    built = JobService(config=parse_config(CONFIG, {}), executor=ScriptedExecutor(), journal=journal, fetch=None)
    built.executor_problem = None
    built._executor_started.set()
    yield built
    journal.close()


async def run_job(service: JobService, record: JobRecord, reply: Reply) -> None:
    """Run a journaled, reserved job to its end, as intake does."""
    service.start(record, reply)
    await service._running[record.job_id].task


def _request(strength=6, **changes) -> Request:
    fields = {"strength": strength, "size": 64, "seed": 11, "preserve_colors": True, "variants": 3,
              "content_name": "cat.png", "style_name": "wave.jpg", "output_max_bytes": 1_000_000, **changes}
    return Request(**fields)


def _record(strength=6, **changes) -> JobRecord:
    return JobRecord(
        job_id=JOB_ID, user_id=1, guild_id=2, channel_id=3,
        attachments=[AttachmentInfo("content", "u", 1, "image/png", "cat.png")],
        request=_request(strength, **changes), content=b"c", style=b"s",
    )


DONE = JobDone(image=b"img", image_ext="png", strip=b"strip", strip_ext="jpg", image_size=(64, 48),
               strip_size=(200, 80), strengths=(5, 6, 7), style_weights=(1e8, 2e8, 4e8), chosen=1, seconds=3.25)


async def test_a_finished_job_is_delivered_with_both_images_and_buttons_in_a_message_that_pings(service):
    service.executor = ScriptedExecutor([JobQueued(2), JobStarted(), JobProgress("painting", 3, 8, 1.5, b"jpg"),
                                         DONE])
    service.journal.add(_record())
    service.reserve(JOB_ID, 1, 2)
    reply = RecordingReply()
    await run_job(service, _record(), reply)

    job = service.executor.jobs[0]
    # The request's strength goes to the painter, which balances the pair itself: the bot sets no weight.
    assert job.options.strength == 6 and job.options.style_weight is None
    assert (job.options.size, job.options.steps, job.options.seed) == (64, 8, 11)
    assert job.options.preserve_colors and job.options.variants == 3
    assert job.options.content_weight == 1e4 and job.options.output_max_bytes == 1_000_000
    assert job.owner == 1 and job.style_name == "wave.jpg"

    texts = [shown.content for shown in reply.shown]
    assert texts[0] == "Your picture is number 2 in the queue…"
    assert texts[2].startswith("Painting… step 3/8 (37%)") and "s left" in texts[2]
    assert reply.shown[2].files == ["preview.jpg"]
    assert all(shown.view.children[0].custom_id == f"sty:cancel:{JOB_ID}" for shown in reply.shown[:3])
    [final] = reply.delivered
    assert final.content.startswith("<@1> your picture is ready.")
    assert final.files == ["stylized.png", "variants.jpg"]
    assert "Strength 6/10" in final.content and "seed 11" in final.content and "64 px" in final.content
    assert "Strength 5, Strength 6, Strength 7" in final.content and "weight" not in final.content
    assert "3.2 s" in final.content or "3.3 s" in final.content
    assert f"sty:more:{JOB_ID}" in _custom_ids(final.view)
    assert f"sty:upscale:{JOB_ID}:7" in _custom_ids(final.view)

    stored = service.journal.get(JOB_ID)
    assert stored.state == "done" and stored.result_message_id == 4343
    assert stored.result["strengths"] == [5, 6, 7]
    assert stored.result["style_weights"] == [1e8, 2e8, 4e8]
    assert len(service.limits) == 0 and service._running == {}


async def test_the_queue_line_estimates_the_wait_from_recent_jobs(service):
    service._recent_seconds.extend([30.0, 50.0])
    service.executor = ScriptedExecutor([JobQueued(3), DONE])
    service.journal.add(_record())
    reply = RecordingReply()
    await run_job(service, _record(), reply)
    assert reply.shown[0].content == "Your picture is number 3 in the queue — it should start in about 2 min…"


async def test_progress_edits_are_throttled(service):
    service.config = parse_config({"bot": {"progress_edit_interval_s": 3600}}, {})
    events = [JobQueued(1), JobStarted()] + [JobProgress("painting", i, 50, 0.1 * i) for i in range(50)] + [DONE]
    service.executor = ScriptedExecutor(events)
    service.journal.add(_record(size=512))
    reply = RecordingReply()
    await run_job(service, _record(size=512), reply)
    # The first event is shown at once, then nothing until the result.
    assert len(reply.shown) == 1
    assert reply.delivered[-1].files == ["stylized.png", "variants.jpg"]


@pytest.mark.parametrize(("event", "expected"), [
    (JobFailed("timeout", "took 900 s"), "took too long"),
    (JobFailed("invalid_image", "coffee.txt is not an image Pillow can read"), "coffee.txt is not an image"),
    (JobFailed("crashed", "worker died"), "crashed"),
    (JobFailed("cancelled", "cancelled by user"), "Cancelled."),
])
async def test_a_failed_job_ends_with_one_readable_private_line(service, event, expected):
    service.executor = ScriptedExecutor([JobQueued(1), JobStarted(), event])
    service.journal.add(_record())
    service.reserve(JOB_ID, 1, 2)
    reply = RecordingReply()
    await run_job(service, _record(), reply)
    assert reply.delivered == []
    assert expected in reply.last.content and "\n" not in reply.last.content
    assert reply.last.files == []
    retry = [] if event.kind == "invalid_image" else [f"sty:retry:{JOB_ID}"]
    assert (_custom_ids(reply.last.view) if reply.last.view else []) == retry
    assert service.journal.get(JOB_ID).state == "failed"
    assert len(service.limits) == 0


@pytest.mark.parametrize(("kind", "detail"), [
    ("unavailable", "The painting cluster (10.0.0.1:6379) stopped answering."),
    ("unavailable", "No VGG-19 weights at /models/vgg.pth"),
    ("internal", "Unexpected KeyError; the traceback is in the worker's log."),
    ("oom", "Out of memory, also at the smaller size of the retry."),
])
def test_failures_are_worded_by_kind_and_the_executor_detail_stays_in_the_log(kind, detail):
    text = messages.failure(kind, detail)
    assert detail not in text and "weights" not in text and "cluster" not in text
    assert text == messages.FAILURES[kind]


@pytest.mark.parametrize(("error", "expected"), [
    (QueueFull("full"), messages.QUEUE_FULL),
    (ExecutorUnavailable("The VGG-19 weights are not available."),
     "The painter isn't available right now — please try again later."),
])
async def test_refused_submission_is_told_not_left_thinking(service, error, expected):
    service.executor = ScriptedExecutor(error=error)
    service.journal.add(_record())
    reply = RecordingReply()
    await run_job(service, _record(), reply)
    assert [shown.content for shown in reply.private] == [expected]
    assert service.journal.get(JOB_ID).state == "failed"


async def test_a_painter_that_never_started_is_explained(service):
    service.executor = ScriptedExecutor([DONE])
    service.executor_problem = "No VGG-19 weights: pass --weights PATH."
    service.journal.add(_record())
    reply = RecordingReply()
    await run_job(service, _record(), reply)
    assert service.executor.jobs == []
    assert reply.last.content == "The painter isn't available right now — please try again later."


async def test_a_job_taken_while_the_painter_starts_waits_for_it(service):
    service._executor_started.clear()
    service.executor = ScriptedExecutor([DONE])
    service.journal.add(_record())
    reply = RecordingReply()
    service.start(_record(), reply)
    await asyncio.sleep(0.05)
    assert service.executor.jobs == [] and reply.delivered == []
    await service.start_executor()
    await service._running[JOB_ID].task
    assert len(service.executor.jobs) == 1 and reply.delivered


async def test_an_upscale_paints_its_one_strength_alone(service):
    service.executor = ScriptedExecutor([DONE])
    record = _record(strength=7, variants=1, size=64)
    service.journal.add(record)
    await run_job(service, record, RecordingReply())
    assert service.executor.jobs[0].options.strength == 7
    assert service.executor.jobs[0].options.variants == 1


class NowhereReply(RecordingReply):
    async def deliver(self, content, *, files, view):
        raise Undeliverable(3, ["send_messages", "attach_files"])


async def test_a_result_that_reaches_nobody_stays_in_the_journal_and_the_user_hears_what_is_missing(service):
    service.executor = ScriptedExecutor([DONE])
    service.journal.add(_record())
    reply = NowhereReply()
    await run_job(service, _record(), reply)
    assert service.journal.get(JOB_ID).state in ("accepted", "running")
    assert [record.job_id for record in service.journal.unfinished()] == [JOB_ID]
    assert "Send Messages and Attach Files" in reply.last.content and "<#3>" in reply.last.content


class BrokenReply(Reply):
    def __init__(self, status):
        self.status = status
        self.calls = 0

    async def _broken(self, *args, **kwargs):
        self.calls += 1
        response = SimpleNamespace(status=self.status, reason="gone")
        raise discord.HTTPException(response, {"code": 50027, "message": "Invalid Webhook Token"})

    show = deliver = tell_privately = _broken


async def test_a_dead_token_moves_the_job_to_a_channel_message():
    primary, fallback = BrokenReply(401), RecordingReply()
    reply = TokenReply(primary, fallback, token_expires_at=time.time() + 600)
    await reply.show("Painting…")
    await reply.deliver("done", files=[("stylized.png", b"x")], view=None)
    assert [shown.content for shown in fallback.shown] == ["Painting…"]
    assert [shown.content for shown in fallback.delivered] == ["done"]
    assert fallback.delivered[0].files == ["stylized.png"]
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

def _actions(**config) -> Intake:
    return Intake(config=parse_config(config, {}), service=None, journal=None, fetch=None, replies=None)


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
    assert _actions(discord=discord_config).place_allowed(interaction) is allowed


def test_attachments_are_checked_by_declared_type_and_size_and_untyped_ones_left_to_the_decoder():
    actions = _actions(limits={"max_attachment_bytes": 1000})
    assert actions.attachment_problem(AttachmentInfo("content", "u", 999, "image/webp", "a.webp")) is None
    assert actions.attachment_problem(AttachmentInfo("content", "u", 1001, "image/png", "big.png")) == \
        "big.png is 1001 bytes; I can take pictures up to 1000 bytes."
    assert actions.attachment_problem(AttachmentInfo("content", "u", 10, "text/plain", "a.txt")) == \
        "a.txt doesn't look like a picture — please attach a PNG, JPEG, WebP or GIF."
    # Discord leaves the type out when the name does not tell it (a picture saved without an extension): the
    # decoder reads the bytes instead. The size limit still holds.
    assert actions.attachment_problem(AttachmentInfo("content", "u", 10, None, "mystery")) is None
    assert "1001 bytes" in actions.attachment_problem(AttachmentInfo("content", "u", 1001, None, "mystery"))


def test_intake_refuses_a_picture_too_thin_for_the_requested_size_naming_it():
    actions = _actions()
    buffer = io.BytesIO()
    Image.new("RGB", (800, 16)).save(buffer, format="PNG")
    with pytest.raises(InvalidImage) as caught:
        actions.validate(buffer.getvalue(), "banner.png", 48)
    assert str(caught.value) == ("banner.png is too long and thin to paint at 48 px: its short side would be "
                                 "1 px (at least 16 px needed).")
    actions.validate(buffer.getvalue(), "banner.png", 800)  # 800×16 as it is: paintable


def test_each_result_image_gets_half_the_upload_limit():
    assert output_budget(SimpleNamespace(filesize_limit=10 * 1024 * 1024)) == 5 * 1024 * 1024 - 64 * 1024


def test_journal_flag_beats_environment_and_file(tmp_path, monkeypatch):
    monkeypatch.setenv("STYLEBOT_JOURNAL", str(tmp_path / "env.sqlite3"))
    config = read_config(parse_args(["--config", str(ROOT / "tests" / "e2e.config.toml"),
                                     "--journal", str(tmp_path / "flag.sqlite3")]))
    assert config.journal.path == str(tmp_path / "flag.sqlite3")
    config = read_config(parse_args(["--config", str(ROOT / "tests" / "e2e.config.toml")]))
    assert config.journal.path == str(tmp_path / "env.sqlite3")


# ----- the repaint buttons -----

@pytest.fixture
def redo(service, monkeypatch):
    """Button handlers whose submissions and private lines are recorded instead of talking to Discord."""
    calls = SimpleNamespace(submitted=[], refused=[])

    async def submit(interaction, **kwargs):
        calls.submitted.append(kwargs)

    async def refuse(interaction, text):
        calls.refused.append(text)

    intake = SimpleNamespace(submit=submit)
    monkeypatch.setattr("bot.buttons.answer_privately", refuse)
    calls.buttons = ButtonHandlers(config=service.config, client=None, intake=intake, service=service,
                                   journal=service.journal)
    return calls


def _done_record(**changes) -> JobRecord:
    record = _record(**changes)
    record.state, record.result = "done", {"strengths": [4, 6, 8], "style_weights": [2.5e7, 1e8, 4e8], "chosen": 1}
    return record


async def test_more_style_repaints_the_same_images_one_tile_up_with_the_same_seed(redo):
    await redo.buttons.repaint(None, _done_record(strength=6), CustomId("more", JOB_ID))
    [call] = redo.submitted
    request = call["request"]
    # Three tiles are two strengths apart (4, 6, 8): More lands on the next tile of the same strip.
    assert (request.strength, request.seed, request.size, request.variants) == (8, 11, 64, 3)
    assert (call["content"], call["style"]) == (b"c", b"s")
    assert request.preserve_colors is True
    assert request.parent_job == JOB_ID  # where a repaint could find the strengths already painted


async def test_less_style_at_strength_one_is_refused(redo):
    await redo.buttons.repaint(None, _done_record(strength=1), CustomId("less", JOB_ID))
    assert redo.submitted == []
    assert redo.refused == ["The strength is already at its minimum (1)."]


async def test_an_upscale_paints_its_tile_at_the_largest_size_and_keeps_the_strip(redo):
    await redo.buttons.repaint(None, _done_record(size=48), CustomId("upscale", JOB_ID, 8))
    [call] = redo.submitted
    assert (call["request"].strength, call["request"].variants, call["request"].size) == (8, 3, 64)


async def test_an_upscale_of_a_strength_the_strip_never_showed_is_refused(redo):
    await redo.buttons.repaint(None, _done_record(), CustomId("upscale", JOB_ID, 7))
    assert redo.submitted == [] and redo.refused == [messages.TOO_OLD]


async def test_more_style_on_an_upscale_steps_its_strength(redo):
    await redo.buttons.repaint(None, _done_record(strength=7, variants=1), CustomId("more", JOB_ID))
    assert redo.submitted[0]["request"].strength == 8
    assert redo.submitted[0]["request"].variants == 1


async def test_retry_paints_the_failed_request_again(redo):
    record = _record(strength=3)
    record.state = "failed"
    await redo.buttons.repaint(None, record, CustomId("retry", JOB_ID))
    [call] = redo.submitted
    assert call["request"] == _request(strength=3, parent_job=JOB_ID)


async def test_a_pruned_job_cannot_be_repainted(redo):
    record = _done_record()
    record.content = None
    await redo.buttons.repaint(None, record, CustomId("more", JOB_ID))
    assert redo.submitted == [] and redo.refused == [messages.TOO_OLD]


@pytest.mark.parametrize("action", ["cancel", "delete", "share", "retry"])
async def test_only_the_requester_may_cancel_delete_share_or_retry(redo, action):
    redo.buttons.journal.add(_done_record())
    interaction = SimpleNamespace(user=SimpleNamespace(id=99))
    await redo.buttons.clicked(interaction, CustomId(action, JOB_ID))
    assert redo.refused == [messages.NOT_YOURS] and redo.submitted == []


def test_the_request_survives_the_journal(tmp_path):
    journal = Journal(tmp_path / "j.sqlite3")
    journal.add(_record(parent_job="f" * 32))
    assert journal.get(JOB_ID).request == _request(parent_job="f" * 32)
    journal.close()


def test_a_row_from_before_the_request_type_still_reads():
    old = {"strength": 4, "size": 64, "seed": 1, "preserve_colors": False, "variants": 3, "style_weight": 2e5,
           "content_name": "a.png", "style_name": "b.png", "output_max_bytes": 100}
    assert Request.from_json(old) == Request(4, 64, 1, False, 3, "a.png", "b.png", 100)


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
                   "permissions=35840", "python -m stylizer", "tests/images/content/chelsea.jpg", "--weights PATH"):
        assert needed in text, needed
    assert "--weights random" not in text  # random features paint blotches: never the suggestion


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


# ----- a channel that refuses the result -----

def _forbidden() -> discord.Forbidden:
    return discord.Forbidden(SimpleNamespace(status=403, reason="Forbidden"), {"code": 50013,
                                                                                 "message": "Missing Permissions"})


class FakeChannel:
    def __init__(self, refuse: bool):
        self.refuse = refuse
        self.sent = []

    async def send(self, content, **kwargs):
        if self.refuse:
            raise _forbidden()
        self.sent.append(content)
        return SimpleNamespace(id=77)


class FakeUser:
    def __init__(self, open_dms: bool):
        self.open_dms = open_dms
        self.sent = []

    async def send(self, content, **kwargs):
        if not self.open_dms:
            raise _forbidden()
        self.sent.append((content, [file.filename for file in kwargs.get("files", [])]))
        return SimpleNamespace(id=88)


def _channel_reply(channel: FakeChannel, user: FakeUser):
    from bot.replies import ChannelReply

    client = SimpleNamespace(get_channel=lambda _: channel, get_user=lambda _: user)
    return ChannelReply(client, channel_id=3, user_id=1)


async def test_a_403_in_the_channel_sends_the_result_by_dm_saying_why():
    channel, user = FakeChannel(refuse=True), FakeUser(open_dms=True)
    message_id = await _channel_reply(channel, user).deliver("<@1> your picture is ready.",
                                                             files=[("stylized.png", b"x")], view=None)
    assert message_id == 88 and channel.sent == []
    [(text, files)] = user.sent
    assert text.startswith("I couldn't post your picture in <#3> (I'm missing Send Messages and Attach Files")
    assert "your picture is ready" in text and files == ["stylized.png"]


async def test_closed_dms_too_make_the_result_undeliverable():
    with pytest.raises(Undeliverable) as caught:
        await _channel_reply(FakeChannel(refuse=True), FakeUser(open_dms=False)).deliver(
            "x", files=[("stylized.png", b"x")], view=None)
    assert caught.value.channel_id == 3 and caught.value.missing == ["send_messages", "attach_files"]


async def test_a_channel_that_takes_the_result_gets_it_pinging_only_the_requester():
    channel, user = FakeChannel(refuse=False), FakeUser(open_dms=True)
    reply = _channel_reply(channel, user)
    sent = {}

    async def send(content, **kwargs):
        sent.update(kwargs, content=content)
        return SimpleNamespace(id=77)

    channel.send = send
    assert await reply.deliver("<@1> done", files=[], view=None) == 77
    mentions = sent["allowed_mentions"]
    assert [user.id for user in mentions.users] == [1] and mentions.everyone is False and mentions.roles is False
    assert user.sent == []


# ----- the client -----

def test_the_client_has_no_prefix_commands_and_no_message_content_intent():
    from bot.app import StyleBot

    client = StyleBot(parse_config({"executor": {"weights": "random", "device": "cpu"}}, {}))
    assert type(client).__mro__[1] is discord.AutoShardedClient  # Discord requires shards past 2,500 servers
    assert not client.intents.message_content
    assert client.tree.allowed_contexts.guild and client.tree.allowed_contexts.dm_channel
    assert not client.tree.allowed_contexts.private_channel
    assert client.tree.allowed_installs.guild and not client.tree.allowed_installs.user


def test_make_run_without_a_token_ends_with_the_help_and_exit_0():
    result = _run_bot("--config", str(ROOT / "config.example.toml"), "--ok-without-token")
    assert result.returncode == 0
    assert "DISCORD_TOKEN" in result.stderr and "Traceback" not in result.stderr
    assert "--ok-without-token" in (ROOT / "Makefile").read_text()


async def test_sigterm_ends_the_run_even_while_discord_py_waits_out_a_reconnect_back_off(monkeypatch):
    import bot.__main__ as entry
    import bot.app

    class Client:
        """Stands in for StyleBot while Discord is unreachable: start() sleeps in its reconnect back-off."""

        closed = False

        def __init__(self, config):
            pass

        async def __aenter__(self):
            return self

        async def __aexit__(self, *exc):
            await self.close()

        async def start(self, token):
            await asyncio.sleep(3600)

        async def close(self):
            self.closed = True

        def is_closed(self):
            return self.closed

    handlers = {}
    loop = asyncio.get_running_loop()
    monkeypatch.setattr(bot.app, "StyleBot", Client)
    monkeypatch.setattr(bot.app, "apply_endpoints", lambda *args: None)
    monkeypatch.setattr(loop, "add_signal_handler", lambda signum, callback, *args: handlers.update(
        {signum: (callback, args)}))
    running = asyncio.create_task(entry.run(parse_config({}, {})))
    await asyncio.sleep(0.05)
    callback, args = handlers[entry.signal.SIGTERM]
    callback(*args)
    await asyncio.wait_for(running, 2.0)
    assert running.done() and not running.cancelled() and running.exception() is None


async def test_a_goodbye_that_cannot_reach_discord_does_not_stop_the_shutdown(service):
    class Unreachable(RecordingReply):
        async def show(self, content, *, files=None, view=None):
            raise aiohttp.ClientOSError(104, "Connection reset by peer")

    service.executor = ScriptedExecutor([JobQueued(1)])
    closed = []

    async def close():
        closed.append(True)

    service.executor.close = close
    service.journal.add(_record())

    class Forever(ScriptedHandle):
        async def events(self):
            yield JobQueued(1)
            await asyncio.sleep(3600)

    async def submit(job):
        return Forever(job.job_id, [])

    service.executor.submit = submit
    service.start(_record(), Unreachable())
    await asyncio.sleep(0.05)
    await asyncio.wait_for(service.shutdown(), 5)
    assert closed == [True] and not service.accepting


PAINTED = ((5, b"png-5"), (6, b"png-6"), (7, b"png-7"))


async def test_a_result_keeps_its_tiles_and_a_repaint_of_it_hands_them_to_the_painter(service):
    service.executor = ScriptedExecutor([dataclasses.replace(DONE, tiles=tuple(png for _, png in PAINTED))])
    service.journal.add(_record())
    await run_job(service, _record(), RecordingReply())
    assert service.journal.tiles(JOB_ID) == PAINTED

    service.executor = ScriptedExecutor([JobQueued(1), dataclasses.replace(DONE, strengths=(5, 7, 9), reused=(5, 7))])
    more = _record(strength=7, parent_job=JOB_ID)
    more = dataclasses.replace(more, job_id="a" * 32)
    service.journal.add(more)
    reply = RecordingReply()
    await run_job(service, more, reply)
    assert service.executor.jobs[0].painted == PAINTED
    # Strength 7 was in the strip already: its tile is shown at once, while the result is painted.
    assert reply.shown[0].files == ["tile.png"] and "Strength 7 is the strip's tile" in reply.shown[0].content
    assert "2 of 3 reused" in reply.last.content and "from scratch" not in reply.last.content


async def test_a_repaint_whose_parent_was_pruned_paints_from_scratch_and_says_so(service):
    service.executor = ScriptedExecutor([DONE])
    orphan = dataclasses.replace(_record(strength=7, parent_job="long-gone"), job_id="b" * 32)
    service.journal.add(orphan)
    reply = RecordingReply()
    await run_job(service, orphan, reply)
    assert service.executor.jobs[0].painted == ()
    assert messages.REPAINTED_FROM_SCRATCH in reply.last.content and "reused" not in reply.last.content


async def test_a_retry_of_a_failed_job_paints_from_scratch_without_a_word_about_it(service):
    service.journal.add(_record())
    service.journal.mark_failed(JOB_ID, "crashed")
    service.executor = ScriptedExecutor([DONE])
    retry = dataclasses.replace(_record(parent_job=JOB_ID), job_id="c" * 32)
    service.journal.add(retry)
    reply = RecordingReply()
    await run_job(service, retry, reply)
    assert service.executor.jobs[0].painted == () and "scratch" not in reply.last.content


def test_preset_choices_fit_discords_limits_and_a_preset_caption_credits_the_painting():
    from stylizer.presets import all_presets

    assert len(messages.preset_choice("T" * 120, "Artist", "1900")) == 100
    for preset in all_presets():
        label = messages.preset_choice(preset.title, preset.artist, preset.year)
        assert 1 <= len(label) <= 100 and preset.artist in label
    caption = messages.caption(strength=5, strengths=(3, 4, 5, 6, 7), seed=1, size=128, seconds=2.0,
                               credit="The Kiss, Gustav Klimt, 1907–1908")
    assert "The Kiss, Gustav Klimt, 1907–1908" in caption and "public domain" in caption
    assert "Style:" not in messages.caption(strength=5, strengths=(5,), seed=1, size=128, seconds=2.0)
