"""StyleBot: the discord.py client. It assembles the parts in setup_hook and owns their lifetimes; what a job
does lives in bot.service, what a request is in bot.request, what users read in bot.messages.

A discord.AutoShardedClient with an app_commands.CommandTree: slash commands, context menus and buttons carry
everything, so there is no prefix command and no message content intent. Sharded because Discord requires it
past 2,500 servers; by default it runs as many shards as Discord recommends (one for a small bot), all in this
process ([discord] shard_count and shard_ids fix them).
"""

from __future__ import annotations

import asyncio
import logging

import aiohttp
import discord
import yarl

from bot import commands as bot_commands
from bot import health
from bot.buttons import ButtonHandlers
from bot.config import Config
from bot.download import AttachmentFetcher
from bot.intake import Intake
from bot.journal import JobRecord, Journal
from bot.replies import Replies
from bot.service import JobService
from bot.views import DYNAMIC_ITEMS
from stylizer.executor.base import Executor

logger = logging.getLogger(__name__)

PRUNE_EVERY_S = 3600.0


def apply_endpoints(api_base: str, gateway_url: str) -> None:
    """Point discord.py at another API (a fake, a proxy). Route.BASE also covers webhooks and followups."""
    discord.http.Route.BASE = api_base.rstrip("/")
    discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(gateway_url)


def make_executor(config: Config) -> Executor:
    executor, limits = config.executor, config.limits
    # What every painter is told, whichever executor runs it.
    painter = {"weights": executor.weights, "device": executor.device, "job_timeout_s": limits.job_timeout_s,
               "progress_interval_s": executor.progress_interval_s, "previews": True,
               "max_attempts": executor.max_attempts}
    if executor.kind == "ray":
        from stylizer.executor.ray_serve import RayExecutor

        return RayExecutor(
            address=executor.address, replicas=executor.replicas, num_gpus=executor.num_gpus,
            num_cpus=executor.num_cpus, resources=dict(executor.ray_resources),
            replica_wait_s=executor.replica_wait_s, deploy=executor.deploy_app,
            max_queued_per_replica=executor.max_queued_per_replica, **painter,
        )
    from stylizer.executor.local import LocalExecutor

    return LocalExecutor(max_queue=limits.queue_length, **painter)


class StyleBot(discord.AutoShardedClient):
    def __init__(self, config: Config, *, executor: Executor | None = None):
        # Default intents only (no message content): interactions carry everything the bot needs.
        super().__init__(intents=discord.Intents.default(), **config.discord.shard_options())
        self.config = config
        self.executor: Executor = executor if executor is not None else make_executor(config)
        self.tree = bot_commands.make_tree(self)
        self.service: JobService | None = None
        self.button_actions: ButtonHandlers | None = None
        self.http_session: aiohttp.ClientSession | None = None
        self.journal: Journal | None = None
        self._background: set[asyncio.Task] = set()
        self._closing = False
        self.loop_lag = health.LoopLag()

    async def setup_hook(self) -> None:
        config = self.config
        self.journal = await asyncio.to_thread(Journal, config.journal.path, config.journal.max_bytes)
        pruned = await asyncio.to_thread(self.journal.prune, config.journal.keep_finished_hours)
        logger.info("journal %s open (%d old jobs pruned)", config.journal.path, pruned)
        # Read before connecting: once interactions arrive, new jobs join the journal and are not ours to resume.
        unfinished = await asyncio.to_thread(self.journal.unfinished)
        self.http_session = aiohttp.ClientSession()
        fetch = AttachmentFetcher(self.http_session, config.limits.max_attachment_bytes)
        self.service = JobService(config=config, executor=self.executor, journal=self.journal, fetch=fetch)
        self.service.reserve_resumed(unfinished)
        replies = Replies(self)
        intake = Intake(config=config, service=self.service, journal=self.journal, fetch=fetch, replies=replies)
        self.button_actions = ButtonHandlers(config=config, client=self, intake=intake, service=self.service,
                                             journal=self.journal)
        self.add_dynamic_items(*DYNAMIC_ITEMS)
        bot_commands.register(self.tree, bot_commands.Commands(config, intake))
        await self._sync_commands()
        # In the background: an executor that is slow or unreachable must not hold the connection or shutdown.
        self._spawn(self._start_and_resume(unfinished, replies))
        self._spawn(self._keep_healthy())
        self._spawn(self.loop_lag.probe_forever())
        self._spawn(self._prune_periodically())

    async def _start_and_resume(self, unfinished: list[JobRecord], replies: Replies) -> None:
        assert self.service is not None
        await self.service.start_executor()
        await self.wait_until_ready()
        await self.service.resume(unfinished, replies.for_record)

    async def _sync_commands(self) -> None:
        guild_ids = self.config.discord.sync_guilds
        if not guild_ids:
            synced = await self.tree.sync()
            logger.info("synced %d commands globally (may take up to an hour to appear)", len(synced))
            return
        for guild_id in guild_ids:
            guild = discord.Object(id=guild_id)
            self.tree.copy_global_to(guild=guild)
            synced = await self.tree.sync(guild=guild)
            logger.info("synced %d commands to guild %s", len(synced), guild_id)

    def _spawn(self, coroutine) -> asyncio.Task:
        task = asyncio.create_task(coroutine)
        self._background.add(task)
        task.add_done_callback(self._background.discard)
        return task

    def healthy(self) -> bool:
        """Every shard connected to the gateway now, and the painter started."""
        shards = self.shards.values()
        connected = self.is_ready() and not self.is_closed() and bool(shards) and not any(
            shard.is_closed() for shard in shards)
        return connected and self.service is not None and self.service.executor_problem is None

    async def _keep_healthy(self) -> None:
        while not self.is_closed():
            healthy = self.healthy()
            if healthy:
                try:
                    await asyncio.to_thread(health.touch, self.config.bot.health_file, self.loop_lag.take())
                except OSError:
                    logger.warning("cannot touch the health file %s", self.config.bot.health_file, exc_info=True)
            # Not healthy yet (the painter still starting, a shard reconnecting): look again soon, not in 20 s.
            await asyncio.sleep(health.TOUCH_EVERY_S if healthy else 1.0)

    async def _prune_periodically(self) -> None:
        while not self.is_closed():
            await asyncio.sleep(PRUNE_EVERY_S)
            assert self.journal is not None
            pruned = await asyncio.to_thread(self.journal.prune, self.config.journal.keep_finished_hours)
            if pruned:
                logger.info("pruned %d finished job(s) from the journal", pruned)

    async def close(self) -> None:
        """Stop taking jobs, tell waiting users, release the executor (all bounded), then disconnect."""
        if self._closing:
            await super().close()
            return
        self._closing = True
        for task in list(self._background):
            task.cancel()
        try:
            if self.service is not None:
                await self.service.shutdown()
        finally:
            if self.http_session is not None:
                await self.http_session.close()
            if self.journal is not None:
                self.journal.close()
            await super().close()
