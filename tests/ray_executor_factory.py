"""RayExecutor under test: a small local Ray on this machine, CPU only, random weights.

``make_ray_executor(**overrides) -> (executor, kill_worker)``; the executor is not started yet and
``kill_worker()`` kills the Serve replica actor that is painting a job, as a crashed GPU worker would die.
Ray itself is started once per test process (it takes seconds) and shared by the executors made here; each
executor gets its own Serve application, deleted again by ``close()``.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable

from stylizer.executor.ray_serve import RayExecutor

RAY_CPUS = 2
OBJECT_STORE_BYTES = 100 * 1024 * 1024
_app_numbers = itertools.count(1)


def ensure_local_ray() -> None:
    import ray

    if not ray.is_initialized():
        # "local": a new instance even if this machine has a cluster running (ray.init() would join it).
        ray.init(
            address="local",
            num_cpus=RAY_CPUS,
            include_dashboard=False,
            object_store_memory=OBJECT_STORE_BYTES,
            log_to_driver=False,
        )


def make_ray_executor(**overrides) -> tuple[RayExecutor, Callable[[], None]]:
    """``max_queue`` (the contract suite's name) is the total of jobs accepted, as for LocalExecutor."""
    ensure_local_ray()
    replicas = overrides.pop("replicas", 1)
    max_queue = overrides.pop("max_queue", None)
    if max_queue is not None:
        if max_queue % replicas:
            raise ValueError(f"max_queue={max_queue} is not a whole number of jobs per replica ({replicas})")
        overrides["max_queued_per_replica"] = max_queue // replicas
    settings = {
        "weights": "random",
        "device": "cpu",
        "replicas": replicas,
        "num_cpus": 1,
        "progress_interval_s": 0.05,
        "app_name": f"stylebot-test-{next(_app_numbers)}",
    } | overrides
    executor = RayExecutor(**settings)

    def kill_worker() -> None:
        import ray

        running = executor.running_on
        if not running:
            raise RuntimeError("the Ray executor has no job running on a replica to kill")
        replica = next(iter(running.values()))
        ray.kill(ray.get_actor(replica, namespace="serve"), no_restart=True)

    return executor, kill_worker
