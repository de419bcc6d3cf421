"""Executors under test, built the same way for every contract test.

``make_executor(kind, **overrides) -> (executor, kill_worker)``: the executor is not started yet;
``kill_worker()`` kills the process that is painting (as a crash would), for fault-injection tests.
Overrides the contract suite passes: ``max_queue`` and ``progress_interval_s``.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Callable

from stylizer.executor import Executor


def make_executor(kind: str, **overrides) -> tuple[Executor, Callable[[], None]]:
    if kind == "local":
        return _make_local_executor(**overrides)
    if kind == "ray":
        from tests.ray_executor_factory import make_ray_executor

        return make_ray_executor(**overrides)
    raise ValueError(f"unknown executor kind {kind!r}")


def _make_local_executor(**overrides) -> tuple[Executor, Callable[[], None]]:
    from stylizer.executor.local import LocalExecutor

    settings = {"weights": "random", "device": "cpu", "progress_interval_s": 0.05} | overrides
    executor = LocalExecutor(**settings)

    def kill_worker() -> None:
        pid = executor.worker_pid
        if pid is None:
            raise RuntimeError("the local executor has no live worker to kill")
        os.kill(pid, signal.SIGKILL)

    return executor, kill_worker
