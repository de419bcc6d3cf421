"""StyleBot: the discord.py client. It owns the executor, the journal and the bookkeeping of running jobs."""

from __future__ import annotations

import asyncio
import contextlib
import logging

import aiohttp
import discord
import yarl
from discord.ext import commands

from bot import commands as bot_commands
from bot import health, messages
from bot.config import Config
from bot.download import DownloadError, download
from bot.jobs import Reply, reply_for, run_job
from bot.journal import JobRecord, Journal
from bot.limits import JobLimits
from bot.views import DYNAMIC_ITEMS
from stylizer.executor.base import Executor, ExecutorError, JobHandle

logger = logging.getLogger(__name__)

# How long shutdown waits for each "the bot is restarting" edit before giving up on it.
GOODBYE_TIMEOUT_S = 5.0
# How long shutdown waits for results already being uploaded.
DELIVERY_GRACE_S = 10.0
PRUNE_EVERY_S = 3600.0


def apply_endpoints(api_base: str, gateway_url: str) -> None:
    """Point discord.py at another API (a fake, a proxy). Route.BASE also covers webhooks and followups."""
    discord.http.Route.BASE = api_base.rstrip("/")
    discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(gateway_url)


def make_executor(config: Config) -> Executor:
    executor, limits = config.executor, config.limits
    if executor.kind == "ray":
        from stylizer.executor.ray_serve import RayExecutor

        return RayExecutor(
            address=executor.address, weights=executor.weights, device=executor.device,
            replicas=executor.replicas, num_gpus=executor.num_gpus, num_cpus=executor.num_cpus,
            max_queued_per_replica=executor.max_queued_per_replica, job_timeout_s=limits.job_timeout_s,
            progress_interval_s=executor.progress_interval_s, previews=True, max_attempts=executor.max_attempts,
        )
    from stylizer.executor.local import LocalExecutor

    return LocalExecutor(
        weights=executor.weights, device=executor.device, max_queue=limits.queue_length,
        job_timeout_s=limits.job_timeout_s, progress_interval_s=executor.progress_interval_s, previews=True,
        max_attempts=executor.max_attempts,
    )


class StyleBot(commands.Bot):
    def __init__(self, config: Config, *, executor: Executor | None = None):
        # Default intents only: slash commands and context menus carry everything the bot needs.
        super().__init__(command_prefix=commands.when_mentioned, intents=discord.Intents.default(),
                         help_command=None)
        self.config = config
        self.executor: Executor = executor if executor is not None else make_executor(config)
        # Why the painter cannot take jobs, in words for users; None once it has started.
        self.executor_problem: str | None = "The painter is still starting."
        self.journal: Journal | None = None
        self.http_session: aiohttp.ClientSession | None = None
        limits = config.limits
        self.limits = JobLimits(queue_length=limits.queue_length, per_user_jobs=limits.per_user_jobs,
                                per_guild_jobs=limits.per_guild_jobs)
        self.handles: dict[str, JobHandle] = {}
        self._jobs: dict[str, tuple[asyncio.Task, Reply, JobRecord]] = {}
        # Jobs between sending their result and journaling it: shutdown waits for these instead of cutting them.
        self.delivering: set[str] = set()
        self._background: set[asyncio.Task] = set()
        self.accepting = True
        self.actions = bot_commands.Actions(self)

    async def setup_hook(self) -> None:
        self.journal = await asyncio.to_thread(Journal, self.config.journal.path, self.config.journal.max_bytes)
        pruned = await asyncio.to_thread(self.journal.prune, self.config.journal.keep_finished_hours)
        logger.info("journal %s open (%d old jobs pruned)", self.config.journal.path, pruned)
        # Read before connecting: once interactions arrive, new jobs join the journal and are not ours to resume.
        unfinished = await asyncio.to_thread(self.journal.unfinished)
        for record in unfinished:
            self.limits.reserve(record.job_id, record.user_id, record.guild_id, force=True)
        self.http_session = aiohttp.ClientSession()
        try:
            await self.executor.start()
            self.executor_problem = None
            logger.info("executor %s started", type(self.executor).__name__)
        except ExecutorError as error:
            # Stay connected so that users hear why nothing can be painted instead of meeting silence.
            logger.error("the executor could not start: %s", error)
            self.executor_problem = str(error)
        self.add_dynamic_items(*DYNAMIC_ITEMS)
        bot_commands.register(self)
        await self._sync_commands()
        self._spawn(self._keep_healthy())
        self._spawn(self._resume(unfinished))
        self._spawn(self._prune_periodically())

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

    def start_job(self, record: JobRecord, reply: Reply) -> None:
        """Run a journaled job whose place in ``limits`` is already taken."""
        task = asyncio.create_task(run_job(self, record, reply), name=f"job-{record.job_id}")
        self._jobs[record.job_id] = (task, reply, record)
        task.add_done_callback(lambda _: self._jobs.pop(record.job_id, None))

    def healthy(self) -> bool:
        """Connected to the gateway now, and the painter started."""
        connected = self.is_ready() and not self.is_closed() and self.ws is not None and self.ws.open
        return connected and self.executor_problem is None

    async def _keep_healthy(self) -> None:
        while not self.is_closed():
            if self.healthy():
                try:
                    await asyncio.to_thread(health.touch, self.config.bot.health_file)
                except OSError:
                    logger.warning("cannot touch the health file %s", self.config.bot.health_file, exc_info=True)
            await asyncio.sleep(health.TOUCH_EVERY_S if self.is_ready() else 1.0)

    async def _prune_periodically(self) -> None:
        while not self.is_closed():
            await asyncio.sleep(PRUNE_EVERY_S)
            assert self.journal is not None
            pruned = await asyncio.to_thread(self.journal.prune, self.config.journal.keep_finished_hours)
            if pruned:
                logger.info("pruned %d finished job(s) from the journal", pruned)

    async def _resume(self, unfinished: list[JobRecord]) -> None:
        """Finish what a previous run accepted: deliver where the user can still see it."""
        await self.wait_until_ready()
        assert self.journal is not None
        for record in unfinished:
            reply = reply_for(self, record)
            if reply is None:
                self.limits.release(record.job_id)
                logger.warning("job %s cannot be resumed: no token and no channel to post in", record.job_id)
                await asyncio.to_thread(self.journal.mark_failed, record.job_id, "nowhere to deliver")
                continue
            try:
                await self._restore_inputs(record)
            except DownloadError:
                logger.info("job %s cannot be resumed: attachments expired", record.job_id)
                await asyncio.to_thread(self.journal.mark_failed, record.job_id, messages.RESUME_EXPIRED)
                self.limits.release(record.job_id)
                with contextlib.suppress(discord.HTTPException):
                    await reply.show(messages.RESUME_EXPIRED)
                continue
            logger.info("resuming job %s for user %s", record.job_id, record.user_id)
            self.start_job(record, reply)

    async def _restore_inputs(self, record: JobRecord) -> None:
        """The journal keeps the bytes; only a row written without them needs the (expiring) URLs."""
        for role in ("content", "style"):
            if getattr(record, role) is None:
                info = record.attachment(role)
                if info is None:
                    raise DownloadError(f"no {role} attachment recorded")
                data = await download(self.http_session, info.url, filename=info.filename,
                                      max_bytes=self.config.limits.max_attachment_bytes, declared_size=info.size)
                setattr(record, role, data)

    async def close(self) -> None:
        """Stop taking jobs, tell waiting users, release the executor, then disconnect."""
        if not self.accepting:
            await super().close()
            return
        self.accepting = False
        logger.info("shutting down with %d job(s) in progress", len(self._jobs))
        finishing = [task for job_id, (task, _, _) in self._jobs.items() if job_id in self.delivering]
        if finishing:
            await asyncio.wait(finishing, timeout=DELIVERY_GRACE_S)
        jobs = [job for job in self._jobs.values() if not job[0].done()]
        # Our own tasks go first, so the executor's closing cancellations are not reported as failures.
        for task, _, _ in jobs:
            task.cancel()
        await asyncio.gather(*(task for task, _, _ in jobs), return_exceptions=True)
        await asyncio.gather(*(self._say_goodbye(reply, record) for _, reply, record in jobs))
        for task in list(self._background):
            task.cancel()
        try:
            await self.executor.close()
        except Exception:
            # Disconnecting cleanly matters more than a tidy executor; the worker dies with the process anyway.
            logger.exception("closing the executor failed")
        if self.http_session is not None:
            await self.http_session.close()
        if self.journal is not None:
            self.journal.close()
        await super().close()

    async def _say_goodbye(self, reply: Reply, record: JobRecord) -> None:
        try:
            await asyncio.wait_for(reply.show(messages.RESTARTING, view=None), GOODBYE_TIMEOUT_S)
        except (discord.HTTPException, TimeoutError):
            logger.warning("could not tell user %s about the restart", record.user_id)
