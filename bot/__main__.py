"""``python -m bot [--config PATH]``: start the Discord bot; ``--healthcheck`` for container health checks."""

from __future__ import annotations

import argparse
import asyncio
import concurrent.futures
import logging
import os
import re
import signal
import sys
import threading
from dataclasses import replace
from pathlib import Path

from bot import health, messages
from bot.config import Config, ConfigError, load_config

logger = logging.getLogger("bot")

EXIT_CONFIG = 2
DEFAULT_CONFIG = "config.toml"
# After shutdown, how long threads still running (a Ray connection attempt, say) may take before the process
# leaves without them: a SIGTERM must end the bot within 10 s whatever the executor is doing.
STUCK_THREAD_GRACE_S = 1.0


# Gateway close codes for shard settings Discord will not take.
SHARDING_REFUSED = {4010: "invalid shard", 4011: "sharding required: too many servers for so few shards"}
SHARDING_ADVICE = "set [discord] shard_count = 0 to run as many shards as Discord recommends"

# Interaction and webhook tokens appear in the URLs discord.py logs at DEBUG; they act for the bot for 15 min.
URL_TOKEN = re.compile(r"(/(?:interactions|webhooks)/\d+/)[^/\s?'\"]+")


class RedactSecrets(logging.Filter):
    """Removes the bot token and interaction tokens from every log line, whichever library wrote it."""

    def __init__(self, *secrets: str):
        super().__init__()
        self.secrets = [secret for secret in secrets if secret]

    def _redact(self, text: str) -> str:
        for secret in self.secrets:
            text = text.replace(secret, "[REDACTED]")
        return URL_TOKEN.sub(r"\1[REDACTED]", text)

    def filter(self, record: logging.LogRecord) -> bool:
        text = record.getMessage()
        redacted = self._redact(text)
        if redacted != text:
            record.msg, record.args = redacted, None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self._redact(record.exc_text)
        return True


def setup_logging(level: str, token: str) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s"))
    handler.addFilter(RedactSecrets(token))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # The bot never joins voice channels, so discord.py's warnings about missing voice libraries are noise.
    logging.getLogger("discord.client").addFilter(
        lambda record: "voice will NOT be supported" not in record.getMessage()
    )
    # discord.py's gateway chatter at DEBUG is huge; keep it at INFO unless asked for.
    logging.getLogger("discord").setLevel(max(logging.INFO, logging.getLevelName(level)))


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bot",
        description="A Discord bot that paints a photo in the style of a painting (/stylize).",
        epilog="Environment: DISCORD_TOKEN, DISCORD_API_BASE, DISCORD_GATEWAY_URL and STYLEBOT_JOURNAL override "
        "the config file.",
    )
    parser.add_argument("--config", default=None, help=f"TOML config file (default: {DEFAULT_CONFIG})")
    parser.add_argument("--journal", default=None, help="SQLite journal path (overrides [journal] path)")
    parser.add_argument("--healthcheck", action="store_true",
                        help="exit 0 if a running bot touched its health file in the last 90 s, else 1")
    parser.add_argument("--ok-without-token", action="store_true",
                        help="without a token, print how to get one and exit 0 instead of 2 (make run)")
    return parser.parse_args(argv)


def read_config(args: argparse.Namespace) -> Config:
    path = Path(args.config or DEFAULT_CONFIG)
    if args.config and not path.exists():
        raise ConfigError([f"config file {path} does not exist (copy config.example.toml to start one)"])
    config = load_config(path)
    if args.journal:
        config = replace(config, journal=replace(config.journal, path=args.journal))
    return config


async def run(config: Config) -> None:
    from bot.app import StyleBot, apply_endpoints

    apply_endpoints(config.discord.api_base, config.discord.gateway_url)
    bot = StyleBot(config)
    loop = asyncio.get_running_loop()
    running = asyncio.current_task()
    assert running is not None
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, _stop, bot, running, signum.name)
    try:
        async with bot:
            await bot.start(config.discord.token)
    except asyncio.CancelledError:
        # _stop ends the client's run itself: discord.py waits out a reconnect back-off (minutes, when
        # Discord is unreachable) before it notices that it was closed.
        if not bot.is_closed():
            raise


def _stop(bot, running: asyncio.Task, name: str) -> None:
    logger.info("%s received, shutting down", name)

    async def close_then_end() -> None:
        try:
            await bot.close()
        finally:
            running.cancel()

    asyncio.get_running_loop().create_task(close_then_end())


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        config = read_config(args)
    except ConfigError as error:
        print(f"Bad configuration ({args.config or DEFAULT_CONFIG}):", file=sys.stderr)
        for problem in error.problems:
            print(f"  {problem}", file=sys.stderr)
        return EXIT_CONFIG
    if args.healthcheck:
        return 0 if health.is_fresh(config.bot.health_file) else 1
    if not config.discord.token:
        print(messages.no_token_help(args.config or DEFAULT_CONFIG), file=sys.stderr)
        return 0 if args.ok_without_token else EXIT_CONFIG
    setup_logging(config.bot.log_level, config.discord.token)
    try:
        run_bounded(run(config))
    except KeyboardInterrupt:
        pass
    except Exception as error:
        import discord

        if isinstance(error, discord.LoginFailure):
            logger.error("Discord refused the token: set a valid DISCORD_TOKEN or [discord] token")
            return EXIT_CONFIG
        if isinstance(error, discord.ConnectionClosed) and error.code in SHARDING_REFUSED:
            logger.error("Discord refused the shards (%s): %s", SHARDING_REFUSED[error.code], SHARDING_ADVICE)
            return EXIT_CONFIG
        raise
    return 0


def run_bounded(main_coroutine) -> None:
    """asyncio.run, except that the end does not wait for threads stuck in a blocking call (asyncio.run joins
    them without a time limit): idle ones are told to go, the rest are left to ``leave_stuck_threads``."""
    loop = asyncio.new_event_loop()
    # The loop is the current one, so that futures made at its end (gather) belong to it, not to a default loop.
    asyncio.set_event_loop(loop)
    threads = concurrent.futures.ThreadPoolExecutor(thread_name_prefix="bot")
    loop.set_default_executor(threads)
    try:
        loop.run_until_complete(main_coroutine)
    finally:
        try:
            remaining = asyncio.all_tasks(loop)
            for task in remaining:
                task.cancel()
            if remaining:
                loop.run_until_complete(asyncio.gather(*remaining, return_exceptions=True))
            loop.run_until_complete(loop.shutdown_asyncgens())
        finally:
            threads.shutdown(wait=False, cancel_futures=True)
            asyncio.set_event_loop(None)
            loop.close()


def leave_stuck_threads(code: int) -> int:
    """Return ``code``, or exit at once when threads outlive the event loop (a blocking executor call that
    cannot be cancelled): Python would otherwise wait for them at exit, past any deadline."""
    stuck = [t for t in threading.enumerate() if t is not threading.main_thread() and not t.daemon]
    for thread in stuck:
        thread.join(STUCK_THREAD_GRACE_S / max(1, len(stuck)))
    stuck = [t for t in stuck if t.is_alive()]
    if not stuck:
        return code
    logger.warning("leaving %d thread(s) still running: %s", len(stuck), ", ".join(t.name for t in stuck))
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(leave_stuck_threads(main()))
