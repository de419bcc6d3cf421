"""Self-tests of the fake Discord, driven through a plain, unmodified discord.py client (not the bot)."""

from __future__ import annotations

import asyncio
import contextlib
import io
from collections.abc import AsyncIterator

import aiohttp
import discord
import discord.gateway
import discord.http
import pytest
import yarl
from discord import app_commands
from PIL import Image

from tests.fakediscord import EPHEMERAL, LOADING, FakeDiscord, UnknownRequestError
from tests.fakediscord import permissions as perms

pytestmark = pytest.mark.timeout(60)


def png(size: tuple[int, int], color: tuple[int, int, int]) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, color).save(buffer, format="PNG")
    return buffer.getvalue()


class ProbeView(discord.ui.View):
    def __init__(self) -> None:
        super().__init__(timeout=30)

    @discord.ui.button(label="Again", custom_id="probe:again")
    async def again(self, interaction: discord.Interaction, button: discord.ui.Button) -> None:
        button.disabled = True
        await interaction.response.edit_message(content=f"clicked by {interaction.user.name}", view=self)

    @discord.ui.select(custom_id="probe:pick", options=[discord.SelectOption(label=c) for c in ("red", "blue")],
                       max_values=2)
    async def pick(self, interaction: discord.Interaction, select: discord.ui.Select) -> None:
        await interaction.response.defer()
        await interaction.followup.send(f"picked {'+'.join(select.values)}")


class NameModal(discord.ui.Modal, title="Who are you?"):
    name = discord.ui.TextInput(label="Name", custom_id="probe:name")
    colour = discord.ui.Label(text="Colour", component=discord.ui.TextInput(custom_id="probe:colour"))

    async def on_submit(self, interaction: discord.Interaction) -> None:
        await interaction.response.send_message(f"hello {self.name.value} ({self.colour.component.value})")


class ProbeClient(discord.Client):
    """A minimal bot: /ping defers, reads the attachment from the CDN, and edits in a PNG of its mean colour."""

    def __init__(self, *, sleep_before_reply: float = 0.0, sleep_after_defer: float = 0.0) -> None:
        super().__init__(intents=discord.Intents.default(), guild_ready_timeout=0.05)
        self.tree = app_commands.CommandTree(self)
        self.errors: list[discord.HTTPException] = []
        self.filesize_limits: list[int] = []
        self.sleep_before_reply = sleep_before_reply
        self.sleep_after_defer = sleep_after_defer
        self._register()

    def _register(self) -> None:
        @self.tree.command(name="ping", description="Answer with a picture")
        @app_commands.describe(image="a picture", size="side of the answer in pixels")
        async def ping(interaction: discord.Interaction, image: discord.Attachment,
                       size: app_commands.Range[int, 8, 96] = 32) -> None:
            self.filesize_limits.append(interaction.filesize_limit)
            await asyncio.sleep(self.sleep_before_reply)
            try:
                await interaction.response.defer(thinking=True)
                await asyncio.sleep(self.sleep_after_defer)
                source = Image.open(io.BytesIO(await image.read())).convert("RGB")
                mean = source.resize((1, 1), Image.Resampling.BOX).getpixel((0, 0))
                buffer = io.BytesIO()
                Image.new("RGB", (size, size), mean).save(buffer, format="PNG")
                buffer.seek(0)
                await interaction.edit_original_response(
                    content="pong", attachments=[discord.File(buffer, filename="pong.png")]
                )
            except discord.HTTPException as error:
                self.errors.append(error)

        @self.tree.command(name="steps", description="Ephemeral follow-ups and a button")
        async def steps(interaction: discord.Interaction) -> None:
            await interaction.response.defer(ephemeral=True, thinking=True)
            await interaction.followup.send("step 1", ephemeral=True)
            await interaction.followup.send("step 2", ephemeral=True, file=discord.File(io.BytesIO(b"x"), "x.txt"))
            await interaction.channel.send("public note", view=ProbeView())

        @self.tree.context_menu(name="Use as style")
        async def use_as_style(interaction: discord.Interaction, message: discord.Message) -> None:
            [attachment] = message.attachments
            echo = discord.File(io.BytesIO(await attachment.read()), filename="echo.png")
            await interaction.response.send_message(f"style from {attachment.filename}", file=echo, ephemeral=True)

        @self.tree.command(name="greet", description="Asks for a name in a modal")
        async def greet(interaction: discord.Interaction) -> None:
            await interaction.response.send_modal(NameModal())

        @self.tree.command(name="secret", description="Ephemeral deferral, then an edit")
        async def secret(interaction: discord.Interaction) -> None:
            await interaction.response.defer(ephemeral=True, thinking=True)
            await interaction.edit_original_response(content="only you can see this")

        @self.tree.command(name="cancel", description="Deletes its own deferral, then says goodbye")
        async def cancel(interaction: discord.Interaction) -> None:
            await interaction.response.defer(ephemeral=True, thinking=True)
            await interaction.delete_original_response()
            await interaction.followup.send("cancelled", ephemeral=True)
            user = await self.fetch_user(interaction.user.id)
            channel = await self.fetch_channel(interaction.channel_id)
            await channel.send(f"bye {user.name}", file=discord.File(io.BytesIO(b"bye"), "bye.txt"))

        tools = app_commands.Group(name="tools", description="Grouped commands")

        @tools.command(name="echo", description="Says it back")
        async def echo(interaction: discord.Interaction, text: str, loud: bool = False) -> None:
            await interaction.response.send_message(text.upper() if loud else text)

        self.tree.add_command(tools)

    async def setup_hook(self) -> None:
        await self.tree.sync()


@contextlib.asynccontextmanager
async def pointed_fake(monkeypatch: pytest.MonkeyPatch, **options) -> AsyncIterator[FakeDiscord]:
    """A FakeDiscord with discord.py pointed at it: Route.BASE (REST, callbacks, webhooks) and the gateway."""
    async with FakeDiscord(**options) as server:
        monkeypatch.setattr(discord.http.Route, "BASE", server.api_base)
        monkeypatch.setattr(discord.gateway.DiscordWebSocket, "DEFAULT_GATEWAY", yarl.URL(server.gateway_url))
        yield server


@pytest.fixture
async def fake(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[FakeDiscord]:
    async with pointed_fake(monkeypatch) as server:
        yield server


async def run_client(fake: FakeDiscord, client: ProbeClient) -> asyncio.Task[None]:
    task = asyncio.create_task(client.start(fake.token))
    ready = asyncio.create_task(fake.wait_for_bot_ready(timeout=15))
    await asyncio.wait([task, ready], return_when=asyncio.FIRST_COMPLETED)
    if task.done():
        ready.cancel()
        task.result()  # the client died while connecting: show why
        raise AssertionError("the client stopped before it was ready")
    ready.result()
    return task


async def stop_client(client: ProbeClient, task: asyncio.Task[None]) -> None:
    await client.close()
    await asyncio.wait_for(task, 10)


def without_compression(monkeypatch: pytest.MonkeyPatch) -> None:
    original = discord.gateway.DiscordWebSocket.from_client.__func__

    async def from_client(cls, client, **kwargs):  # noqa: ANN001 - mirrors discord.py's signature
        return await original(cls, client, compress=False, **kwargs)

    monkeypatch.setattr(discord.gateway.DiscordWebSocket, "from_client", classmethod(from_client))


@pytest.mark.parametrize("compressed", [True, False], ids=["zlib-stream", "plain"])
async def test_slash_command_defers_then_edits_in_a_file(
    fake: FakeDiscord, monkeypatch: pytest.MonkeyPatch, compressed: bool
) -> None:
    if not compressed:
        without_compression(monkeypatch)
    client = ProbeClient()
    task = await run_client(fake, client)
    try:
        assert fake.gateway.connections[-1]["query"].get("compress") == ("zlib-stream" if compressed else None)
        assert fake.intents == discord.Intents.default().value
        ping = fake.registered_commands["ping"]
        options = {o["name"]: (o["type"], o.get("required", False)) for o in ping["options"]}
        assert options == {"image": (11, True), "size": (4, False)}
        assert {o["name"]: o.get("min_value") for o in ping["options"]}["size"] == 8
        assert fake.registered_commands["Use as style"]["type"] == 3

        attachment = fake.add_attachment(png((40, 30), (200, 40, 10)), "photo.png")
        interaction = await fake.slash_command("ping", user="bob", options={"image": attachment, "size": 48})
        assert await interaction.wait_acked(timeout=3) < 3
        assert interaction.callback_type == 5
        final = await interaction.wait_final(timeout=10)
        assert final is interaction.original and final.content == "pong"
        assert interaction.edits[0]["flags"] & LOADING and not final.loading
        [(filename, _)] = final.files
        [image] = final.images()
        assert filename == "pong.png" and image.size == (48, 48)
        assert image.convert("RGB").getpixel((5, 5)) == (200, 40, 10)
        assert fake.cdn_fetches(attachment) == 1
        assert client.filesize_limits == [fake.attachment_size_limit]
        assert client.errors == []
    finally:
        await stop_client(client, task)


async def test_followups_ephemeral_messages_and_button_click(fake: FakeDiscord) -> None:
    client = ProbeClient()
    task = await run_client(fake, client)
    try:
        interaction = await fake.slash_command("steps", user="alice")
        await interaction.wait_final(lambda m: m.files == [("x.txt", b"x")], timeout=10)
        # The first follow-up after a deferral replaces the "thinking…" message instead of adding one.
        assert interaction.original is not None and interaction.original.content == "step 1"
        assert [m.content for m in interaction.followups] == ["step 2"]
        assert len(interaction.ephemeral_messages) == 2

        await fake.wait_until(lambda: any(m.content == "public note" for m in fake.visible_messages()), 10)
        assert [m.content for m in fake.visible_messages(user="bob")] == ["public note"]
        assert [m.content for m in fake.visible_messages(user="alice")] == ["step 1", "step 2", "public note"]

        [note] = fake.visible_messages(user="bob")
        click = await fake.click(note, "probe:again", user="bob")
        updated = await click.wait_final(lambda m: m.content.startswith("clicked"), timeout=10)
        assert click.callback_type == 7 and updated is note
        assert updated.content == "clicked by bob" and note.find_component("probe:again")["disabled"] is True
        with pytest.raises(LookupError):
            await fake.click(note, "probe:again", user="bob")

        with pytest.raises(ValueError):
            await fake.click(note, "probe:pick", user="alice", values=["green"])
        pick = await fake.click(note, "probe:pick", user="alice", values=["blue", "red"])
        picked = await pick.wait_final(timeout=10)
        assert pick.callback_type == 6 and picked.content == "picked blue+red" and picked is not note
        assert note.content == "clicked by bob"
    finally:
        await stop_client(client, task)


async def test_context_menu_on_a_users_message(fake: FakeDiscord) -> None:
    client = ProbeClient()
    task = await run_client(fake, client)
    try:
        painting = fake.add_attachment(png((16, 16), (0, 0, 255)), "starry.png")
        posted = await fake.user_message("look", user="bob", attachments=[painting])
        interaction = await fake.context_menu("Use as style", posted, user="alice")
        reply = await interaction.wait_final(timeout=10)
        assert reply.content == "style from starry.png"
        assert reply.ephemeral and reply.flags & EPHEMERAL and interaction.callback_type == 4
        [echoed] = reply.images()
        assert echoed.size == (16, 16) and echoed.convert("RGB").getpixel((3, 3)) == (0, 0, 255)
        assert [m.content for m in fake.visible_messages(user="bob")] == ["look"]
    finally:
        await stop_client(client, task)


async def test_modal_is_shown_and_its_submission_handled(fake: FakeDiscord) -> None:
    client = ProbeClient()
    task = await run_client(fake, client)
    try:
        opened = await fake.slash_command("greet", user="bob")
        await opened.wait_acked(timeout=3)
        assert opened.callback_type == 9 and opened.modal["title"] == "Who are you?"
        submitted = await fake.submit_modal(opened, {"probe:name": "Ada", "probe:colour": "teal"})
        reply = await submitted.wait_final(timeout=10)
        assert reply.content == "hello Ada (teal)" and not reply.ephemeral
    finally:
        await stop_client(client, task)


async def test_autosharded_client_uses_gateway_bot_and_gets_ready(fake: FakeDiscord) -> None:
    client = discord.AutoShardedClient(intents=discord.Intents.default(), guild_ready_timeout=0.05)
    ready = asyncio.Event()

    @client.event
    async def on_ready() -> None:
        ready.set()

    task = asyncio.create_task(client.start(fake.token))
    try:
        await asyncio.wait_for(ready.wait(), 15)
        assert fake.gateway.identify_payloads[-1]["shard"] == [0, 1]
        assert [g.name for g in client.guilds] == ["Fake Guild"]
        assert {c.name for c in client.guilds[0].text_channels} == {"general", "art"}
        assert any(r.path == "/api/v10/gateway/bot" for r in fake.requests)
    finally:
        await client.close()
        await asyncio.wait_for(task, 10)


async def test_dropped_connection_resumes_and_replays_missed_interaction(fake: FakeDiscord) -> None:
    client = ProbeClient()
    task = await run_client(fake, client)
    try:
        session_id = fake.gateway.current.id
        await fake.drop_connection()
        attachment = fake.add_attachment(png((8, 8), (1, 2, 3)), "a.png")
        # Dispatched while the bot is offline: it must arrive through RESUME's replay.
        interaction = await fake.slash_command("ping", options={"image": attachment})
        await fake.wait_for_resume(timeout=10)
        final = await interaction.wait_final(timeout=10)
        assert final.content == "pong"
        assert len(fake.gateway.identify_payloads) == 1
        assert fake.gateway.resume_payloads[-1]["session_id"] == session_id
        assert fake.gateway.connections[-1]["path"] == "/resume/"
    finally:
        await stop_client(client, task)


async def test_reconnect_request_resumes_and_invalid_session_identifies_again(fake: FakeDiscord) -> None:
    client = ProbeClient()
    task = await run_client(fake, client)
    try:
        await fake.request_reconnect()
        await fake.wait_for_resume(timeout=10)
        assert len(fake.gateway.identify_payloads) == 1
        await fake.invalidate_session()
        await fake.wait_until(lambda: len(fake.gateway.identify_payloads) == 2 and fake.gateway.current.ws, 10)
        assert fake.gateway.current.id != fake.gateway.resume_payloads[-1]["session_id"]
        attachment = fake.add_attachment(png((8, 8), (4, 5, 6)), "a.png")
        interaction = await fake.slash_command("ping", options={"image": attachment})
        assert (await interaction.wait_final(timeout=10)).content == "pong"
    finally:
        await stop_client(client, task)


async def test_rate_limited_edit_is_retried_by_discord_py(fake: FakeDiscord) -> None:
    client = ProbeClient()
    task = await run_client(fake, client)
    try:
        injection = fake.inject_rate_limit("PATCH", "/webhooks/*/*/messages/@original", retry_after=0.2)
        attachment = fake.add_attachment(png((8, 8), (9, 9, 9)), "a.png")
        interaction = await fake.slash_command("ping", options={"image": attachment})
        final = await interaction.wait_final(timeout=10)
        assert final.content == "pong" and injection.hits == 1 and client.errors == []
        patches = [r.status for r in fake.requests if r.method == "PATCH" and r.path.endswith("@original")]
        assert patches == [429, 200]
    finally:
        await stop_client(client, task)


async def test_callback_after_the_deadline_is_unknown_interaction(monkeypatch: pytest.MonkeyPatch) -> None:
    async with pointed_fake(monkeypatch, interaction_deadline=0.5) as fake:
        client = ProbeClient(sleep_before_reply=0.8)
        task = await run_client(fake, client)
        try:
            attachment = fake.add_attachment(png((8, 8), (9, 9, 9)), "a.png")
            interaction = await fake.slash_command("ping", options={"image": attachment})
            await fake.wait_until(lambda: client.errors, 10)
            assert [(e.status, e.code) for e in client.errors] == [(404, 10062)]
            assert interaction.acked_at is None and interaction.original is None
        finally:
            await stop_client(client, task)


async def test_webhook_after_token_expiry_is_unknown_webhook(monkeypatch: pytest.MonkeyPatch) -> None:
    async with pointed_fake(monkeypatch, token_ttl=0.5) as fake:
        client = ProbeClient(sleep_after_defer=0.8)
        task = await run_client(fake, client)
        try:
            attachment = fake.add_attachment(png((8, 8), (9, 9, 9)), "a.png")
            interaction = await fake.slash_command("ping", options={"image": attachment})
            await fake.wait_until(lambda: client.errors, 10)
            assert [(e.status, e.code) for e in client.errors] == [(404, 10015)]
            assert interaction.callback_type == 5 and interaction.original.loading
        finally:
            await stop_client(client, task)


async def test_upload_over_the_size_limit_is_rejected(monkeypatch: pytest.MonkeyPatch) -> None:
    async with pointed_fake(monkeypatch, attachment_size_limit=100) as fake:
        client = ProbeClient()
        task = await run_client(fake, client)
        try:
            attachment = fake.add_attachment(png((64, 64), (250, 10, 10)), "a.png")
            interaction = await fake.slash_command("ping", options={"image": attachment, "size": 96})
            await fake.wait_until(lambda: client.errors, 10)
            assert [(e.status, e.code) for e in client.errors] == [(413, 40005)]
            assert client.filesize_limits == [100]
            assert interaction.original.loading and interaction.original.files == []
        finally:
            await stop_client(client, task)


async def test_heartbeats_are_acknowledged(monkeypatch: pytest.MonkeyPatch) -> None:
    async with pointed_fake(monkeypatch, heartbeat_interval_ms=50) as fake:
        client = ProbeClient()
        task = await run_client(fake, client)
        try:
            await fake.wait_until(lambda: fake.gateway.heartbeats >= 4, 10)
            # discord.py measures latency from HEARTBEAT to HEARTBEAT_ACK: infinite until an ACK arrives.
            assert client.latency < 5
            assert len(fake.gateway.connections) == 1  # no ACK would have made it reconnect
        finally:
            await stop_client(client, task)


async def test_wrong_token_is_a_login_failure(fake: FakeDiscord) -> None:
    client = ProbeClient()
    with pytest.raises(discord.LoginFailure):
        await client.start("not-the-token")
    await client.close()


async def test_unknown_route_fails_the_test_loudly(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(UnknownRequestError, match="/guilds/"):
        async with pointed_fake(monkeypatch) as fake:
            client = ProbeClient()
            task = await run_client(fake, client)
            try:
                with pytest.raises(discord.NotFound):
                    await client.fetch_guild(fake.guild_id)
            finally:
                await stop_client(client, task)
            assert fake.unknown_requests[0]["method"] == "GET"


async def test_cdn_modes_behave_like_a_misbehaving_cdn(fake: FakeDiscord) -> None:
    data = bytes(range(256)) * 200
    normal = fake.add_attachment(data, "a.bin", "application/octet-stream")
    slow = fake.add_attachment(data, "b.bin", "application/octet-stream", mode="slow", chunk_size=10_000,
                               chunk_delay=0.01)
    truncated = fake.add_attachment(data, "c.bin", mode="truncated")
    lying = fake.add_attachment(data, "d.png", "image/png", mode="lying_size", served_content_type="text/html")
    gone = fake.add_attachment(data, "e.png", mode="gone")
    async with aiohttp.ClientSession() as session:
        async with session.get(normal["url"]) as response:
            assert await response.read() == data and normal["size"] == len(data)
            assert response.headers["Content-Type"] == "application/octet-stream"
        async with session.get(slow["url"]) as response:
            chunks = [chunk async for chunk, _ in response.content.iter_chunks()]
            assert b"".join(chunks) == data and len(chunks) > 1
        with pytest.raises(aiohttp.ClientPayloadError):
            async with session.get(truncated["url"]) as response:
                await response.read()
        async with session.get(lying["url"]) as response:
            assert await response.read() == data
            assert response.headers["Content-Type"] == "text/html" and lying["content_type"] == "image/png"
            assert lying["size"] < len(data)
        async with session.get(gone["url"]) as response:
            assert response.status == 404


STAND_IN_BOT = '''
import asyncio, os, signal, sys
import discord, discord.gateway, discord.http, yarl
from discord import app_commands

discord.http.Route.BASE = os.environ["DISCORD_API_BASE"]
discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(os.environ["DISCORD_GATEWAY_URL"])
print("config", sys.argv[sys.argv.index("--config") + 1], flush=True)


class StandIn(discord.Client):
    def __init__(self):
        super().__init__(intents=discord.Intents.default())
        self.tree = app_commands.CommandTree(self)
        self.tree.command(name="hello", description="hi")(self.hello)

    async def hello(self, interaction: discord.Interaction) -> None:
        await interaction.response.send_message(f"hello from pid {os.getpid()}")

    async def setup_hook(self):
        await self.tree.sync()


async def main():
    client = StandIn()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, lambda: asyncio.ensure_future(client.close()))
    await client.start(os.environ["DISCORD_TOKEN"])
    print("clean shutdown", flush=True)


asyncio.run(main())
'''


async def test_start_stop_kill_and_restart_a_bot_process(fake: FakeDiscord, tmp_path) -> None:
    """start_bot runs `python -m bot --config PATH` with the fake's env; a stand-in `bot` package plays the bot."""
    (tmp_path / "bot").mkdir()
    (tmp_path / "bot" / "__main__.py").write_text(STAND_IN_BOT)
    config = tmp_path / "config.toml"
    config.write_text("")
    # PYTHONPATH first: a developer's PYTHONPATH=$PWD would otherwise put the real bot ahead of the stand-in.
    bot = await fake.start_bot(config, env={"PYTHONPATH": str(tmp_path)}, log_path=tmp_path / "bot.log", cwd=tmp_path)
    await fake.wait_for_bot_ready(timeout=30, commands=("hello",))
    first = await fake.slash_command("hello")
    first_reply = await first.wait_final(timeout=10)
    assert await fake.stop_bot() == 0
    assert f"config {config}" in bot.log() and "clean shutdown" in bot.log()

    bot.start()
    await fake.wait_for_bot_ready(timeout=30)
    assert len(fake.gateway.identify_payloads) == 2
    second_reply = await (await fake.slash_command("hello")).wait_final(timeout=10)
    assert second_reply.content != first_reply.content  # answered by the new process
    assert await fake.kill_bot() == -9
    assert bot.log().count("clean shutdown") == 1


async def test_subcommand_options_are_nested_and_checked(fake: FakeDiscord) -> None:
    client = ProbeClient()
    task = await run_client(fake, client)
    try:
        [echo] = fake.registered_commands["tools"]["options"]
        assert echo["name"] == "echo" and echo["type"] == 1
        interaction = await fake.slash_command("tools", options={"echo": {"text": "hi", "loud": True}})
        assert (await interaction.wait_final(timeout=10)).content == "HI"
        with pytest.raises(ValueError, match="required"):
            await fake.slash_command("tools", options={"echo": {"loud": True}})
        with pytest.raises(ValueError, match="not in the registered command"):
            await fake.slash_command("tools", options={"shout": {"text": "x"}})
        with pytest.raises(LookupError):
            await fake.slash_command("nonexistent")
    finally:
        await stop_client(client, task)


async def test_protocol_errors_a_buggy_bot_would_meet(fake: FakeDiscord) -> None:
    """Raw HTTP, as a bot bypassing discord.py's own checks would send it."""
    client = ProbeClient()
    task = await run_client(fake, client)
    await stop_client(client, task)  # commands are registered; nobody answers interactions from here on
    interaction = await fake.slash_command("greet")
    api = fake.api_base
    callback = f"{api}/interactions/{interaction.id}/{interaction.token}/callback"
    webhook = f"{api}/webhooks/{fake.application_id}/{interaction.token}"
    auth = {"Authorization": f"Bot {fake.token}"}
    channel_id = fake.channel()["id"]

    async def call(session: aiohttp.ClientSession, method: str, url: str, **kwargs) -> tuple[int, object]:
        async with session.request(method, url, **kwargs) as response:
            assert response.status == 204 or response.headers["Content-Type"] == "application/json"
            return response.status, (await response.json() if response.status != 204 else None)

    async with aiohttp.ClientSession() as session:
        assert (await call(session, "POST", webhook, json={"content": "early"}))[1]["code"] == 10015
        status, body = await call(session, "POST", callback, json={"type": 6})
        assert (status, body["code"]) == (400, 40043)  # deferred update needs a component interaction
        status, body = await call(session, "POST", callback, json={"type": 4, "data": {"content": ""}})
        assert (status, body["code"]) == (400, 50006)
        status, body = await call(session, "POST", callback, json={"type": 4, "data": {"content": "x" * 2001}})
        assert (status, body["code"]) == (400, 50035) and "content" in body["errors"]["data"]
        assert interaction.acked_at is None
        assert (await call(session, "POST", callback, json={"type": 4, "data": {"content": "ok"}}))[0] == 204
        status, body = await call(session, "POST", callback, json={"type": 4, "data": {"content": "again"}})
        assert (status, body["code"]) == (400, 40060)
        status, message = await call(session, "POST", webhook, params={"wait": "true"}, json={"content": "more"})
        assert status == 200 and message["content"] == "more"
        assert (await call(session, "DELETE", f"{webhook}/messages/{message['id']}"))[0] == 204
        status, body = await call(session, "GET", f"{webhook}/messages/{message['id']}")
        assert (status, body["code"]) == (404, 10008)

        status, body = await call(session, "GET", f"{api}/users/@me", headers={"Authorization": "Bot nope"})
        assert status == 401
        fake.inject_response("POST", "/channels/{channel}/messages", status=500, body={"message": "boom", "code": 0})
        url = f"{api}/channels/{channel_id}/messages"
        assert (await call(session, "POST", url, headers=auth, json={"content": "a"}))[0] == 500
        status, posted = await call(session, "POST", url, headers=auth, json={"content": "b"})
        assert status == 200
        status, listed = await call(session, "GET", url, headers=auth)
        assert [m["content"] for m in listed] == ["b", "ok"]
        edit = await call(session, "PATCH", f"{url}/{posted['id']}", headers=auth, json={"content": "b2"})
        assert edit[1]["content"] == "b2" and edit[1]["edited_timestamp"] is not None
    assert [m.content for m in fake.visible_messages()] == ["ok", "b2"]
    assert [s["content"] for s in fake.messages[int(posted["id"])].history] == ["b", "b2"]


async def test_follow_up_after_deleting_the_deferral_is_a_new_message(fake: FakeDiscord) -> None:
    client = ProbeClient()
    task = await run_client(fake, client)
    try:
        interaction = await fake.slash_command("cancel", user="bob")
        bye = await fake.wait_for_message(lambda m: m.content.startswith("bye"), timeout=10)
        assert bye.content == "bye bob" and bye.interaction is None and bye.files == [("bye.txt", b"bye")]
        assert interaction.original.deleted
        assert [(m.content, m.ephemeral) for m in interaction.followups] == [("cancelled", True)]
        assert [m.content for m in fake.visible_messages(user="bob")] == ["cancelled", "bye bob"]
    finally:
        await stop_client(client, task)


async def test_slash_command_in_a_direct_message(fake: FakeDiscord) -> None:
    client = ProbeClient()
    task = await run_client(fake, client)
    try:
        dm = fake.dm_channel("bob")
        attachment = fake.add_attachment(png((8, 8), (7, 7, 7)), "a.png")
        interaction = await fake.slash_command("ping", user="bob", channel=dm["id"], options={"image": attachment})
        final = await interaction.wait_final(timeout=10)
        assert final.content == "pong" and final.guild_id is None and "member" not in interaction.payload
        assert [m.content for m in fake.visible_messages(dm["id"], user="bob")] == ["pong"]
        assert fake.visible_messages(user="bob") == []  # nothing leaked into #general

        received: list[discord.Message] = []

        @client.event
        async def on_message(message: discord.Message) -> None:
            received.append(message)

        await fake.user_message("hi bot", user="bob", channel=dm["id"])
        await fake.user_message("hi all", user="bob")
        await fake.wait_until(lambda: len(received) == 2, 10)
        by_content = {m.channel.type: m.content for m in received}
        # Default intents have no MESSAGE_CONTENT: guild messages arrive blank, DMs with their text.
        assert by_content == {discord.ChannelType.private: "hi bot", discord.ChannelType.text: ""}
    finally:
        await stop_client(client, task)


async def test_editing_an_ephemeral_deferral_keeps_it_ephemeral(fake: FakeDiscord) -> None:
    client = ProbeClient()
    task = await run_client(fake, client)
    try:
        interaction = await fake.slash_command("secret", user="alice")
        final = await interaction.wait_final(timeout=10)
        assert final.content == "only you can see this" and final.ephemeral and not final.loading
        assert [m.content for m in fake.visible_messages(user="bob")] == []
        assert [m.content for m in fake.visible_messages(user="alice")] == ["only you can see this"]
    finally:
        await stop_client(client, task)


async def test_channel_permissions_refuse_what_the_bot_may_not_do(fake: FakeDiscord) -> None:
    client = ProbeClient()
    task = await run_client(fake, client)
    try:
        art = client.get_channel(int(fake.channel("art")["id"]))
        general = client.get_channel(int(fake.channel("general")["id"]))
        await art.send("allowed")
        await fake.set_permissions("art", deny=perms.SEND_MESSAGES)
        # discord.py's cache learns the overwrite from CHANNEL_UPDATE, as a bot checking before sending would.
        await fake.wait_until(lambda: not art.permissions_for(art.guild.me).send_messages, 5)
        with pytest.raises(discord.Forbidden) as refused:
            await art.send("not allowed")
        assert refused.value.code == 50013 and refused.value.status == 403
        assert [m.content for m in fake.visible_messages("art")] == ["allowed"]

        interaction = await fake.slash_command("tools", options={"echo": {"text": "hi"}}, channel="art", user="bob")
        app_permissions = int(interaction.payload["app_permissions"])
        assert app_permissions == fake.permissions_for("art")
        assert app_permissions & perms.VIEW_CHANNEL and not app_permissions & perms.SEND_MESSAGES
        assert not app_permissions & perms.ATTACH_FILES  # implicitly denied without Send Messages
        assert int(interaction.payload["member"]["permissions"]) == fake.permissions_for("art", "bob")
        assert fake.permissions_for("art", "bob") & perms.SEND_MESSAGES  # the overwrite was for the bot only
        assert (await interaction.wait_final(timeout=10)).content == "hi"  # responses need no channel permission

        await fake.set_permissions("general", deny=perms.ATTACH_FILES, target="stylebot")  # the bot's role
        await general.send("text is fine")
        with pytest.raises(discord.Forbidden) as refused:
            await general.send("with a file", file=discord.File(io.BytesIO(b"x"), "x.txt"))
        assert refused.value.code == 50013
        await fake.set_permissions("general", allow=perms.ATTACH_FILES)  # a member overwrite beats the role's
        await general.send("now with a file", file=discord.File(io.BytesIO(b"x"), "x.txt"))

        await fake.set_permissions("general", deny=perms.VIEW_CHANNEL, target="@everyone")
        # An @everyone overwrite beats the roles' guild-wide bits; alice owns the guild and sees everything.
        assert fake.permissions_for("general") == 0 and fake.permissions_for("general", "alice") == perms.ALL
        with pytest.raises(discord.Forbidden) as hidden:
            await general.send("invisible")
        assert hidden.value.code == 50001  # Discord answers "Missing Access" for a channel the bot cannot see
        with pytest.raises(discord.Forbidden):
            await client.fetch_channel(general.id)
        await fake.set_permissions("general", allow=perms.VIEW_CHANNEL | perms.SEND_MESSAGES)
        await general.send("let in by its own overwrite")
        await fake.set_permissions("general")  # overwrite removed
        assert fake.permissions_for("general") == 0
        assert [m.content for m in fake.visible_messages("general")] == [
            "text is fine", "now with a file", "let in by its own overwrite"]

        await fake.set_role_permissions("stylebot", perms.ADMINISTRATOR)
        assert fake.permissions_for("general") == perms.ALL
        await general.send("administrators see everything")
    finally:
        await stop_client(client, task)


async def test_threads_and_forum_posts_are_channels(fake: FakeDiscord) -> None:
    client = ProbeClient()
    task = await run_client(fake, client)
    try:
        thread = await fake.add_thread("general", "critique")
        await fake.wait_until(lambda: client.get_channel(int(thread["id"])) is not None, 5)
        cached = client.get_channel(int(thread["id"]))
        assert isinstance(cached, discord.Thread) and cached.parent.name == "general"
        interaction = await fake.slash_command("tools", options={"echo": {"text": "in thread"}},
                                               channel=thread["id"])
        await interaction.wait_final(timeout=10)
        assert [m.content for m in fake.visible_messages(thread["id"])] == ["in thread"]
        assert fake.visible_messages("general") == []

        await cached.send("thread reply")
        await fake.set_permissions("general", deny=perms.SEND_MESSAGES_IN_THREADS)
        assert not int((await fake.slash_command("tools", options={"echo": {"text": "x"}}, channel=thread["id"])
                        ).payload["app_permissions"]) & perms.SEND_MESSAGES_IN_THREADS
        with pytest.raises(discord.Forbidden) as refused:
            await cached.send("no threads for you")
        assert refused.value.code == 50013
        await client.get_channel(int(fake.channel("general")["id"])).send("the channel itself is fine")
        await fake.set_permissions("general")

        archived = await fake.add_thread("art", "old", archived=True)
        locked = await fake.add_thread("art", "closed", archived=True, locked=True)
        await fake.wait_until(lambda: client.get_channel(int(locked["id"])) is not None, 5)
        await client.get_channel(int(archived["id"])).send("revived")
        assert archived["thread_metadata"]["archived"] is False
        with pytest.raises(discord.HTTPException) as closed:
            await client.get_channel(int(locked["id"])).send("nope")
        assert closed.value.code == 50083

        gallery = await fake.add_channel("gallery", forum=True)
        await fake.wait_until(lambda: client.get_channel(int(gallery["id"])) is not None, 5)
        forum = client.get_channel(int(gallery["id"]))
        assert isinstance(forum, discord.ForumChannel)
        created = await forum.create_thread(name="My painting", content="look",
                                            file=discord.File(io.BytesIO(b"png?"), "p.png"))
        assert created.thread.parent_id == forum.id and created.message.id == created.thread.id
        [starter] = fake.visible_messages(created.thread.id)
        assert starter.content == "look" and starter.files == [("p.png", b"png?")]

        post, opener = await fake.forum_post("gallery", "Feedback please", "what do you think?", user="bob")
        assert opener.id == int(post["id"]) and post["parent_id"] == gallery["id"] and post["type"] == 11
        posted = await fake.slash_command("tools", options={"echo": {"text": "nice"}}, channel=post["id"])
        await posted.wait_final(timeout=10)
        assert [m.content for m in fake.visible_messages(post["id"])] == ["what do you think?", "nice"]

        async with aiohttp.ClientSession(headers={"Authorization": f"Bot {fake.token}"}) as session:
            url = f"{fake.api_base}/channels/{gallery['id']}/messages"
            async with session.post(url, json={"content": "straight into the forum"}) as response:
                assert response.status == 400 and (await response.json())["code"] == 50008
    finally:
        await stop_client(client, task)


async def test_direct_messages_from_and_to_the_bot(fake: FakeDiscord) -> None:
    client = ProbeClient()
    task = await run_client(fake, client)
    try:
        bob = await client.fetch_user(int(fake.users["bob"]["id"]))
        await bob.send("hello bob")
        dm = fake.dm_channel("bob")
        assert [m.content for m in fake.visible_messages(dm["id"], user="bob")] == ["hello bob"]

        interaction = await fake.slash_command("tools", options={"echo": {"text": "private"}}, channel=dm["id"],
                                               user="bob")
        assert interaction.payload["context"] == 1 and "guild_id" not in interaction.payload
        assert int(interaction.payload["app_permissions"]) == perms.DM_PERMISSIONS
        await interaction.wait_final(timeout=10)
        assert [m.content for m in fake.visible_messages(dm["id"], user="bob")] == ["hello bob", "private"]
    finally:
        await stop_client(client, task)


def button(custom_id: str, label: str = "ok") -> dict:
    return {"type": 2, "style": 1, "label": label, "custom_id": custom_id}


def rows(*row_buttons: list[dict]) -> list[dict]:
    return [{"type": 1, "components": list(row)} for row in row_buttons]


MESSAGE_REFUSALS = {
    "content not a string": ({"content": 5}, ["content"]),
    "content over 2000": ({"content": "x" * 2001}, ["content"]),
    "six action rows": ({"components": rows(*[[button(f"r{i}")] for i in range(6)])}, ["components"]),
    "six buttons in a row": ({"components": rows([button(f"b{i}") for i in range(6)])},
                             ["components", "0", "components"]),
    "custom_id of 101": ({"components": rows([button("c" * 101)])},
                         ["components", "0", "components", "0", "custom_id"]),
    "label of 81": ({"components": rows([button("a", "l" * 81)])},
                    ["components", "0", "components", "0", "label"]),
    "duplicate custom_id": ({"components": rows([button("same"), button("same")])},
                            ["components", "0", "components", "1", "custom_id"]),
    "select sharing a row": ({"components": rows([button("a"), {"type": 3, "custom_id": "s", "options": [
        {"label": "x", "value": "x"}]}])}, ["components", "0", "components"]),
    "eleven embeds": ({"embeds": [{"title": str(i)} for i in range(11)]}, ["embeds"]),
    "eleven attachments": ({"content": "x", "attachments": [{"id": i} for i in range(11)]}, ["attachments"]),
    "unknown component type": ({"components": [{"type": 99}]}, ["components", "0"]),
}


def error_at(errors: dict, path: list[str]) -> list[dict]:
    node = errors
    for key in path:
        assert key in node, f"no error at {path}: {errors}"
        node = node[key]
    return node.get("_errors") or [e for sub in node.values() if isinstance(sub, dict) for e in sub.get("_errors", [])]


async def test_requests_are_validated_against_the_spec_and_discords_limits(fake: FakeDiscord) -> None:
    """Raw HTTP: each bad payload is refused with 400 / 50035 naming the field; its fixed twin is accepted."""
    auth = {"Authorization": f"Bot {fake.token}"}
    url = f"{fake.api_base}/channels/{fake.channel()['id']}/messages"
    async with aiohttp.ClientSession(headers=auth) as session:
        for name, (payload, path) in MESSAGE_REFUSALS.items():
            async with session.post(url, json=payload) as response:
                body = await response.json()
                assert (response.status, body["code"], body["message"]) == (400, 50035, "Invalid Form Body"), name
                assert error_at(body["errors"], path), name
        good = {"content": "y" * 2000, "components": rows([button(f"b{i}", "l" * 80) for i in range(5)],
                                                          *[[button(f"r{i}", "r")] for i in range(4)])}
        good["components"][0]["components"][0]["custom_id"] = "c" * 100
        async with session.post(url, json=good) as response:
            assert response.status == 200, await response.text()

        # Snowflakes as JSON integers are fine (discord.py sends upload placeholders so); as junk strings not.
        form = aiohttp.FormData()
        form.add_field("payload_json", '{"content": "up", "attachments": [{"id": 0, "filename": "a.txt"}]}')
        form.add_field("files[0]", b"abc", filename="a.txt")
        async with session.post(url, data=form) as response:
            assert response.status == 200 and (await response.json())["attachments"][0]["filename"] == "a.txt"
        async with session.post(url, json={"content": "up", "sticker_ids": ["not-a-snowflake"]}) as response:
            assert response.status == 400 and "sticker_ids" in (await response.json())["errors"]

        async with session.post(url, data=b"{not json", headers={"Content-Type": "application/json"}) as response:
            assert (response.status, (await response.json())["code"]) == (400, 50109)
        async with session.put(url, json={"content": "x"}) as response:
            assert (response.status, (await response.json())["message"]) == (405, "405: Method Not Allowed")
        async with session.get(f"{fake.api_base}/no/such/route") as response:
            assert (response.status, (await response.json())["message"]) == (404, "404: Not Found")
    refused = [(r.status, r.code) for r in fake.refusals]
    assert refused.count((400, 50035)) == len(MESSAGE_REFUSALS) + 1 and (405, 0) in refused and (404, 0) in refused
    assert [m.content for m in fake.visible_messages()] == ["y" * 2000, "up"]
    assert fake.server_errors == []


async def test_upload_limit_applies_to_all_files_of_a_request(monkeypatch: pytest.MonkeyPatch) -> None:
    async with pointed_fake(monkeypatch, attachment_size_limit=1000) as fake:
        url = f"{fake.api_base}/channels/{fake.channel()['id']}/messages"
        async with aiohttp.ClientSession(headers={"Authorization": f"Bot {fake.token}"}) as session:
            for sizes, status in (((600, 600), 413), ((500, 500), 200), ((1,) * 11, 400)):
                form = aiohttp.FormData()
                form.add_field("payload_json", '{"content": "files"}')
                for index, size in enumerate(sizes):
                    form.add_field(f"files[{index}]", b"x" * size, filename=f"f{index}.bin")
                async with session.post(url, data=form) as response:
                    body = await response.json()
                    assert response.status == status, (sizes, body)
                    if status == 413:
                        assert body["code"] == 40005
                    if status == 400:
                        assert "files" in body["errors"]


COMMAND_REFUSALS = {
    "upper-case name": ({"name": "Stylize", "description": "d"}, ["0", "name"]),
    "space in name": ({"name": "sty lize", "description": "d"}, ["0", "name"]),
    "name of 33": ({"name": "s" * 33, "description": "d"}, ["0", "name"]),
    "empty description": ({"name": "stylize", "description": ""}, ["0", "description"]),
    "description of 101": ({"name": "stylize", "description": "d" * 101}, ["0", "description"]),
    "26 options": ({"name": "stylize", "description": "d", "options": [
        {"type": 3, "name": f"o{i}", "description": "d"} for i in range(26)]}, ["0", "options"]),
    "26 choices": ({"name": "stylize", "description": "d", "options": [{"type": 3, "name": "o", "description": "d",
                    "choices": [{"name": f"c{i}", "value": f"{i}"} for i in range(26)]}]},
                   ["0", "options", "0", "choices"]),
    "required after optional": ({"name": "stylize", "description": "d", "options": [
        {"type": 3, "name": "a", "description": "d"}, {"type": 3, "name": "b", "description": "d", "required": True}]},
        ["0", "options", "1", "required"]),
    "context menu with a description": ({"name": "Use as style", "type": 3, "description": "no"},
                                        ["0", "description"]),
}


async def test_command_registration_limits(fake: FakeDiscord) -> None:
    url = f"{fake.api_base}/applications/{fake.application_id}/commands"
    async with aiohttp.ClientSession(headers={"Authorization": f"Bot {fake.token}"}) as session:
        for name, (command, path) in COMMAND_REFUSALS.items():
            async with session.put(url, json=[command]) as response:
                body = await response.json()
                assert (response.status, body["code"]) == (400, 50035), (name, body)
                assert error_at(body["errors"], path), name
        good = [{"name": "stylize-it_'2", "description": "d" * 100, "options": [
                    {"type": 3, "name": f"o{i}", "description": "d", "required": i == 0,
                     "choices": [{"name": f"c{j}", "value": f"{j}"} for j in range(25)]} for i in range(25)]},
                {"name": "Use as style", "type": 3}]
        async with session.put(url, json=good) as response:
            assert response.status == 200, await response.text()
    assert set(fake.registered_commands) == {"stylize-it_'2", "Use as style"}


async def test_cdn_links_are_signed_and_expire(monkeypatch: pytest.MonkeyPatch) -> None:
    async with pointed_fake(monkeypatch, cdn_url_ttl=60) as fake:
        attachment = fake.add_attachment(b"\x89PNG fake", "noext")
        assert "content_type" not in attachment  # Discord could not tell; the bot must not rely on the field
        assert "content_type" not in fake.add_attachment(b"png", "a.png", content_type="")
        assert fake.add_attachment(b"x", "SPOILER_a.png")["flags"] & 8
        query = yarl.URL(attachment["url"]).query
        assert set(query) >= {"ex", "is", "hm"} and int(query["ex"], 16) - int(query["is"], 16) == 60
        async with aiohttp.ClientSession() as session:
            async with session.get(attachment["url"]) as response:
                assert response.status == 200 and await response.read() == b"\x89PNG fake"
            forged = str(yarl.URL(attachment["url"]).update_query(ex=f"{int(query['ex'], 16) + 3600:x}"))
            async with session.get(forged) as response:
                assert response.status == 404
            async with session.get(attachment["url"].split("?")[0]) as response:
                assert response.status == 404  # unsigned
            fake.advance_cdn_clock(61)
            async with session.get(attachment["url"]) as response:
                assert response.status == 404 and "no longer available" in await response.text()
            fresh = fake.files[int(attachment["id"])].attachment_payload()
            async with session.get(fresh["url"]) as response:
                assert response.status == 200  # a payload made now carries a new link
        assert fake.cdn_fetches(attachment) == 2


async def test_command_option_files_are_ephemeral_uploads(fake: FakeDiscord) -> None:
    client = ProbeClient()
    task = await run_client(fake, client)
    try:
        attachment = fake.add_attachment(png((8, 8), (1, 2, 3)), "a.png")
        interaction = await fake.slash_command("ping", options={"image": attachment})
        [sent] = interaction.payload["data"]["resolved"]["attachments"].values()
        assert sent["ephemeral"] is True and "/ephemeral-attachments/" in sent["url"]
        assert "ephemeral" not in attachment and "flags" not in attachment
        pong = await interaction.wait_final(timeout=10)  # discord.py read the file from its ephemeral link
        assert pong.content == "pong" and "ephemeral" not in pong.to_payload()["attachments"][0]
        steps = await fake.slash_command("steps")
        private = await steps.wait_final(lambda m: bool(m.files), timeout=10)
        assert private.ephemeral and private.to_payload()["attachments"][0]["ephemeral"] is True
    finally:
        await stop_client(client, task)


async def test_refusals_fail_the_test_that_caused_them(fake: FakeDiscord) -> None:
    """The guard the e2e fixtures use: a refusal during the test fails it unless marked as on purpose."""
    from tests.fakediscord.fixtures import refusals_fail_the_test

    class Node:
        def __init__(self, marker) -> None:
            self.marker = marker

        def get_closest_marker(self, name: str):
            return self.marker

    class Request:
        def __init__(self, marker) -> None:
            self.node = Node(marker)

    async def refused_send() -> None:
        url = f"{fake.api_base}/channels/{fake.channel()['id']}/messages"
        async with aiohttp.ClientSession(headers={"Authorization": f"Bot {fake.token}"}) as session:
            async with session.post(url, json={"content": 5}) as response:
                assert response.status == 400

    with pytest.raises(pytest.fail.Exception, match="content"):
        with refusals_fail_the_test(fake, Request(None)):
            await refused_send()
    with pytest.raises(pytest.fail.Exception):
        with refusals_fail_the_test(fake, Request(pytest.mark.refused_on_purpose(50013).mark)):
            await refused_send()
    with refusals_fail_the_test(fake, Request(pytest.mark.refused_on_purpose(50035).mark)):
        await refused_send()
    with refusals_fail_the_test(fake, Request(None)):
        pass  # earlier refusals do not count against a later test


async def test_a_crash_of_the_fake_fails_the_test_not_just_the_request(fake: FakeDiscord) -> None:
    from tests.fakediscord.fixtures import refusals_fail_the_test

    async def broken(request, channel):  # noqa: ANN001 - a handler with a bug
        raise KeyError("a bug of the fake")

    fake._routes = [(m, p, broken if h == fake._typing else h, a) for m, p, h, a in fake._routes]

    class Request:
        node = type("Node", (), {"get_closest_marker": staticmethod(lambda name: None)})()

    with pytest.raises(pytest.fail.Exception, match="crashed"):
        with refusals_fail_the_test(fake, Request()):
            async with aiohttp.ClientSession(headers={"Authorization": f"Bot {fake.token}"}) as session:
                async with session.post(f"{fake.api_base}/channels/{fake.channel()['id']}/typing") as response:
                    assert response.status == 500
    with pytest.raises(UnknownRequestError, match="a bug of the fake"):
        fake.check()
    fake.server_errors.clear()  # the fixture's own check at exit would fail this test otherwise


def test_a_new_message_pings_only_the_mentions_allowed_mentions_lets_through():
    from tests.fakediscord.models import pinged_users

    assert pinged_users("<@1> and <@!2>", None) == ["1", "2"]
    assert pinged_users("<@1> and <@2>", {"parse": [], "users": ["2"]}) == ["2"]
    assert pinged_users("<@1>", {"parse": ["users"]}) == ["1"]
    assert pinged_users("<@1>", {"parse": []}) == []


AUTOCOMPLETE_REFUSALS = {
    "26 choices": ([{"name": f"c{i}", "value": f"{i}"} for i in range(26)], ["data", "choices"]),
    "a name of 101": ([{"name": "n" * 101, "value": "v"}], ["data", "choices", "0"]),
    "an empty name": ([{"name": "", "value": "v"}], ["data", "choices", "0"]),
    "a string value of 101": ([{"name": "n", "value": "v" * 101}], ["data", "choices", "0", "value"]),
}


async def test_autocomplete_interactions_and_what_discord_refuses_in_their_answers(fake: FakeDiscord) -> None:
    """Raw HTTP: an APPLICATION_COMMAND_AUTOCOMPLETE interaction (type 4) takes only an autocomplete result
    (callback type 8) of at most 25 choices, names 1-100 and string values up to 100 characters, and nothing
    else; no other interaction takes one; an option registered with choices cannot autocomplete."""
    auth = {"Authorization": f"Bot {fake.token}"}
    commands_url = f"{fake.api_base}/applications/{fake.application_id}/commands"
    painting = {"type": 3, "name": "painting", "description": "d", "autocomplete": True}
    # Connected without a command tree, so nothing answers the interactions but this test.
    client = discord.Client(intents=discord.Intents.default(), guild_ready_timeout=0.05)
    task = asyncio.create_task(client.start(fake.token))
    await fake.wait_for_bot_ready(timeout=15, commands=())
    async with aiohttp.ClientSession(headers=auth) as session:
        async with session.put(commands_url, json=[{"name": "paint", "description": "d", "options": [
                dict(painting, choices=[{"name": "a", "value": "a"}])]}]) as response:
            body = await response.json()
            assert response.status == 400 and error_at(body["errors"], ["0", "options", "0", "autocomplete"])
        async with session.put(commands_url, json=[{"name": "paint", "description": "d", "options": [
                painting, {"type": 3, "name": "plain", "description": "d"}]}]) as response:
            assert response.status == 200, await response.text()
        with pytest.raises(ValueError, match="autocomplete"):
            await fake.autocomplete("paint", "plain", "x")

        async def answer(interaction, payload) -> tuple[int, dict]:
            url = f"{fake.api_base}/interactions/{interaction.id}/{interaction.token}/callback"
            async with session.post(url, json=payload) as response:
                return response.status, (await response.json() if response.status != 204 else {})

        for name, (choices, path) in AUTOCOMPLETE_REFUSALS.items():
            typed = await fake.autocomplete("paint", "painting", "mo")
            assert typed.payload["type"] == 4 and typed.payload["data"]["options"][0]["focused"] is True
            status, body = await answer(typed, {"type": 8, "data": {"choices": choices}})
            assert (status, body.get("code")) == (400, 50035), name
            assert error_at(body["errors"], path), (name, body)
        typed = await fake.autocomplete("paint", "painting", "mo")
        status, body = await answer(typed, {"type": 4, "data": {"content": "not an answer"}})
        assert (status, body.get("code")) == (400, 50035)
        good = [{"name": "n" * 100, "value": "v" * 100}] + [{"name": f"c{i}", "value": f"{i}"} for i in range(24)]
        assert (await answer(typed, {"type": 8, "data": {"choices": good}}))[0] == 204
        assert fake.choices(typed) == good
        assert (await answer(typed, {"type": 8, "data": {"choices": []}}))[1]["code"] == 40060
        followup = f"{fake.api_base}/webhooks/{fake.application_id}/{typed.token}"
        async with session.post(followup, json={"content": "a follow-up"}) as response:
            assert response.status == 404

        command = await fake.slash_command("paint", options={"painting": "monet"})
        status, body = await answer(command, {"type": 8, "data": {"choices": []}})
        assert (status, body.get("code")) == (400, 50035)
    await client.close()
    await asyncio.wait_for(task, 10)
