"""The real bot (`python -m bot --config PATH`) as a subprocess pointed at the fake, for end-to-end tests."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]


class BotProcess:
    def __init__(
        self,
        config_path: str | Path,
        *,
        env: dict[str, str],
        log_path: str | Path | None = None,
        cwd: str | Path | None = None,
    ) -> None:
        self.config_path = Path(config_path)
        self.env = {**os.environ, "PYTHONUNBUFFERED": "1", **env}
        if log_path is None:
            handle, name = tempfile.mkstemp(prefix="bot-", suffix=".log")
            os.close(handle)
            log_path = name
        self.log_path = Path(log_path)
        self.cwd = Path(cwd) if cwd is not None else REPO_ROOT
        self.process: subprocess.Popen[bytes] | None = None
        self.starts = 0
        self.started_at: float | None = None

    @property
    def command(self) -> list[str]:
        return [sys.executable, "-m", "bot", "--config", str(self.config_path)]

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    @property
    def returncode(self) -> int | None:
        return None if self.process is None else self.process.poll()

    def start(self) -> None:
        """Start (or restart after stop/kill) the bot; its stdout and stderr are appended to the log file."""
        if self.running:
            raise RuntimeError("the bot is already running")
        self.starts += 1
        self.started_at = time.monotonic()
        with open(self.log_path, "ab") as log:
            log.write(f"---- start {self.starts}: {' '.join(self.command)}\n".encode())
            log.flush()
            self.process = subprocess.Popen(
                self.command, cwd=self.cwd, env=self.env, stdout=log, stderr=subprocess.STDOUT
            )

    async def _wait(self, timeout: float) -> int | None:
        assert self.process is not None
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while self.process.poll() is None and loop.time() < deadline:
            await asyncio.sleep(0.05)
        return self.process.poll()

    async def stop(self, timeout: float = 10.0) -> int | None:
        """SIGTERM (what systemd and docker send), then SIGKILL if it has not exited after `timeout` s."""
        if not self.running:
            return self.returncode
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)
        code = await self._wait(timeout)
        if code is None:
            return await self.kill()
        return code

    async def kill(self) -> int | None:
        """SIGKILL, as a crash or the OOM killer would: nothing in the bot gets to clean up."""
        if not self.running:
            return self.returncode
        assert self.process is not None
        self.process.kill()
        return await self._wait(10.0)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def log_tail(self, lines: int = 40) -> str:
        return "\n".join(self.log().splitlines()[-lines:])
