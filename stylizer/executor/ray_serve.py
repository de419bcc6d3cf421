"""RayExecutor: the same executor contract, with jobs painted by the replicas of a Ray Serve deployment.

Each replica (``ray_replica._Painter``) loads the weights once and paints one job at a time, and answers a job
with a stream of events. Only plain picklable data crosses the cluster, images always as encoded bytes.

The executor keeps the queue itself (a ``FairQueue``, round-robin between owners, as ``LocalExecutor`` does)
and sends Serve at most one job per replica, so queue positions are known here and a job that waits never
holds a replica.
Cancelling a job cancels its Serve request: the replica's handler task is cancelled, which sets the event the
runner checks between steps; the replica takes no other job until that optimisation has really stopped.

A replica asks for ``num_cpus``, ``num_gpus`` and any custom ``resources`` (``{"painter": 1}``), so it is placed
only on nodes started with them. The executor deploys the Serve app itself, or with ``deploy=False`` uses the app
the cluster runs from its own Serve config (``build_app``, e.g. a KubeRay RayService).

Ray is imported only by ``start``, so the rest of the project does not need the ``ray`` extra.
"""

from __future__ import annotations

import asyncio
import logging
import re
import socket
import time
from collections.abc import Mapping
from dataclasses import dataclass
from functools import partial
from typing import Any

from stylizer.executor._jobs import CANCELLED, SHUTDOWN_REASON, QueueingExecutor, TrackedJob
from stylizer.executor.base import (
    ExecutorUnavailable,
    JobDone,
    JobFailed,
    JobProgress,
    JobStarted,
)

# Re-exported: a Serve config's import path names build_app here, and the manifests the deployment's names.
from stylizer.executor.ray_replica import DEPLOYMENT_NAME as DEPLOYMENT_NAME
from stylizer.executor.ray_replica import MAX_ONGOING_REQUESTS as MAX_ONGOING_REQUESTS
from stylizer.executor.ray_replica import (
    ReplicaRecord,
    _ReplicaStarted,
    painter_deployment,
)
from stylizer.executor.ray_replica import build_app as build_app

logger = logging.getLogger(__name__)

INTERNAL_REASON = "The replica failed outside run_job; the error is in the bot's log."

DEFAULT_APP_NAME = "stylebot"
# Addresses that start a Ray instance inside this process instead of joining a cluster.
LOCAL_ADDRESSES = (None, "local")
PROBE_TIMEOUT_S = 5.0
# After this many missed health checks in a row the cluster counts as gone: Ray itself would leave a request
# to a vanished cluster waiting for ever.
HEALTH_FAILURES = 2
CANCEL_CONFIRM_S = 5.0
# Between sending a job again to a replica that could not be reached before it began the job.
RESEND_PAUSE_S = 1.0
# How long close() waits for Serve to delete the application before giving up on an unreachable cluster.
CLOSE_TIMEOUT_S = 30.0


def custom_resources(resources: Mapping[str, Any]) -> dict[str, float]:
    """The custom Ray resources each replica needs, checked: positive amounts, and no CPU or GPU key (those
    are ``num_cpus`` and ``num_gpus``). Raises ValueError."""
    if not isinstance(resources, Mapping) or any(
        isinstance(amount, bool) or not isinstance(amount, int | float) or amount <= 0 or key in ("CPU", "GPU")
        for key, amount in resources.items()
    ):
        raise ValueError("resources are custom resources with positive amounts (CPUs and GPUs: num_cpus, "
                         f"num_gpus), not {resources}")
    return {str(key): float(amount) for key, amount in resources.items()}


def no_painter(waited_s: float) -> JobFailed:
    return JobFailed("unavailable", f"No painter was free to take the job for {waited_s:g} s (a painting node "
                                    "may be down); try again in a few minutes.")


@dataclass(eq=False)
class _Entry(TrackedJob):
    stream: Any = None  # the Serve DeploymentResponseGenerator of the current attempt
    replica: str | None = None
    task: asyncio.Task | None = None


class RayExecutor(QueueingExecutor[_Entry]):
    def __init__(
        self,
        *,
        address: str | None = "auto",
        weights: str = "imagenet",
        device: str = "auto",
        replicas: int = 1,
        num_gpus: float = 1.0,
        num_cpus: float = 1,
        resources: dict[str, float] | None = None,
        max_queued_per_replica: int = 8,
        job_timeout_s: float | None = None,
        app_name: str = DEFAULT_APP_NAME,
        progress_interval_s: float = 1.0,
        previews: bool = True,
        max_attempts: int = 2,
        start_timeout_s: float = 600.0,
        replica_wait_s: float = 300.0,
        health_interval_s: float = 5.0,
        init_options: dict | None = None,
        deploy: bool = True,
    ) -> None:
        """``address``: ``"auto"`` (the cluster this machine is a node of), ``"host:6379"`` (the head's GCS; this
        machine must still be a node), or ``None``/``"local"`` for a Ray instance inside this process. Ray
        Client addresses (``ray://``) are refused: Serve cannot stream responses through Ray Client.

        ``num_gpus`` per replica, used unless ``device`` is ``"cpu"`` or is ``"auto"`` on a cluster without
        GPUs (fractions let replicas share a GPU). ``resources``: custom Ray resources each replica needs
        (e.g. ``{"painter": 1}``), so that replicas go only to the nodes started with them
        (``ray start --resources='{"painter": 1}'``). ``max_queued_per_replica``: jobs accepted per replica, the
        running one included; beyond that ``submit`` raises QueueFull. ``job_timeout_s`` applies to jobs without their own ``timeout_s``.
        ``replica_wait_s``: how long a job sent to Serve may wait for a replica to begin it (once a node with
        replicas is lost, until Serve has a replacement running) before it fails as "unavailable".
        ``health_interval_s``: how often the cluster is checked; jobs fail as "unavailable" once it has not
        answered twice in a row. ``init_options`` go to ``ray.init`` as they are (e.g. ``num_cpus`` for a
        local instance). ``deploy=False``: do not deploy (nor delete) the Serve app but use the app called
        ``app_name`` that the cluster already runs from a Serve config (``build_app``; KubeRay's RayService);
        ``replicas`` must then be its ``num_replicas``, and the replicas' options are the config's.
        """
        if replicas < 1 or max_queued_per_replica < 1 or max_attempts < 1:
            raise ValueError("replicas, max_queued_per_replica and max_attempts must be at least 1")
        resources = custom_resources(resources or {})
        super().__init__(replicas * max_queued_per_replica, _Entry, max_attempts)
        self.address = address
        self.weights = weights
        self.device = device
        self.replicas = replicas
        self.num_gpus = num_gpus
        self.num_cpus = num_cpus
        self.resources = resources
        self.max_queued_per_replica = max_queued_per_replica
        self.job_timeout_s = job_timeout_s
        self.app_name = app_name
        self.progress_interval_s = progress_interval_s
        self.previews = previews
        self.start_timeout_s = start_timeout_s
        self.replica_wait_s = replica_wait_s
        self.health_interval_s = health_interval_s
        self.init_options = dict(init_options or {})
        self.deploy = deploy
        self._loop: asyncio.AbstractEventLoop | None = None
        self._serve_handle = None
        self._owns_ray = False
        self._running: dict[str, _Entry] = {}
        self._health_target: tuple[str, int] | None = None
        self._health_task: asyncio.Task | None = None

    # Public API

    @property
    def running_on(self) -> dict[str, str]:
        """job id -> name of the Serve replica actor painting it (namespace "serve"), for jobs started."""
        return {job_id: entry.replica for job_id, entry in self._running.items() if entry.replica is not None}

    async def _start(self) -> None:
        self._loop = asyncio.get_running_loop()
        await asyncio.to_thread(self._connect)
        try:
            self._serve_handle = await asyncio.to_thread(self._deploy)
        except ExecutorUnavailable:
            await asyncio.to_thread(self._release)
            raise
        self._health_task = self._loop.create_task(self._watch_health(), name="ray-executor-health")
        logger.info(
            "Ray Serve app %r ready: %d replica(s), weights %s, device %s",
            self.app_name, self.replicas, self.weights, self.device,
        )

    async def close(self) -> None:
        if self._closing:
            return
        self._closing = True
        if self._health_task is not None:
            self._health_task.cancel()
        tasks = [entry.task for entry in self._running.values() if entry.task is not None]
        for entry in self._entries.items():
            self._stop(entry.job.job_id, JobFailed("unavailable", SHUTDOWN_REASON))
        if tasks:
            # Their streams are cancelled; a vanished cluster may never confirm it.
            _, pending = await asyncio.wait(tasks, timeout=CANCEL_CONFIRM_S)
            for task in pending:
                task.cancel()
        if self._started or self._owns_ray:
            release = asyncio.create_task(asyncio.to_thread(self._release))
            done, _ = await asyncio.wait([release], timeout=CLOSE_TIMEOUT_S)
            if not done:
                logger.warning("Ray did not confirm the shutdown of app %r within %g s", self.app_name,
                               CLOSE_TIMEOUT_S)

    # Ray (blocking: these run in a thread, never on the event loop)

    def _connect(self) -> None:
        try:
            import ray
        except ImportError as error:
            raise ExecutorUnavailable(
                "Ray is not installed here: pip install 'stylebot[ray]' to use the ray executor."
            ) from error
        if self.address is not None and self.address.startswith("ray://"):
            raise ExecutorUnavailable(
                f"Ray Client addresses ({self.address}) cannot stream painting progress: run the bot on a node "
                'of the cluster (ray start --address=HEAD:6379 --num-cpus=0) with address = "auto".'
            )
        _probe(self.address)
        if ray.is_initialized():
            # Somebody in this process (a test, an embedding application) already chose the cluster.
            logger.info("using this process's existing Ray connection")
        else:
            options = {"log_to_driver": False, **self.init_options}
            try:
                # "local" makes a new instance even where this machine runs a cluster that ray.init() would join.
                ray.init(address=self.address or "local", **options)
            except Exception as error:  # noqa: BLE001 - every way of not connecting means the same to the bot
                raise ExecutorUnavailable(
                    f"Cannot reach the Ray cluster at {self.address or 'a new local instance'}: "
                    f"{_first_line(error)}"
                ) from error
            self._owns_ray = True
        self._health_target = _host_port(ray.get_runtime_context().gcs_address)

    def _deploy(self):
        import ray
        from ray import serve

        if not self.deploy:
            # The cluster's own Serve config (a KubeRay RayService) runs the app; the bot only sends it jobs.
            self._wait_until_running(serve)
            return serve.get_app_handle(self.app_name)
        gpus = self._gpus_per_replica(ray.cluster_resources().get("GPU", 0))
        device = self.device if self.device != "auto" or gpus > 0 else "cpu"
        deployment = painter_deployment().options(
            num_replicas=self.replicas,
            ray_actor_options={"num_cpus": self.num_cpus, "num_gpus": gpus, "resources": self.resources},
        )
        application = deployment.bind(self.weights, device, self.progress_interval_s, self.previews)
        try:
            # Handles only: the bot never needs Serve's HTTP proxy on port 8000.
            serve.start(proxy_location="Disabled")
            handle = serve.run_many(
                [serve.RunTarget(application, name=self.app_name, route_prefix=None)],
                wait_for_applications_running=False,
            )[0]
        except Exception as error:  # noqa: BLE001
            raise ExecutorUnavailable(f"Ray Serve could not deploy the painter: {_first_line(error)}") from error
        self._wait_until_running(serve)
        return handle

    def _gpus_per_replica(self, cluster_gpus: float) -> float:
        if self.device == "cpu":
            return 0.0
        if cluster_gpus == 0:
            if self.device == "auto":
                logger.warning('the Ray cluster has no GPU: replicas paint on the CPU (device = "cuda" waits for one)')
                return 0.0
            logger.warning("the Ray cluster has no GPU yet; replicas wait for one (autoscaler?)")
        return self.num_gpus

    def _wait_until_running(self, serve) -> None:
        deadline = time.monotonic() + self.start_timeout_s
        message = ""
        while time.monotonic() < deadline:
            app = serve.status().applications.get(self.app_name)
            status = str(app.status) if app is not None else "NOT_STARTED"
            if app is not None:
                # The deployments' messages hold the replicas' own errors; the app's only says that one failed.
                message = "\n".join(d.message for d in app.deployments.values() if d.message) or app.message
            if status.endswith("RUNNING"):
                return
            if status.endswith("DEPLOY_FAILED"):
                logger.error("Serve app %r failed to deploy: %s", self.app_name, message)
                raise ExecutorUnavailable(f"The painter replicas could not start: {_last_line(message)}")
            time.sleep(0.25)
        raise ExecutorUnavailable(
            f"The painter replicas were not ready within {self.start_timeout_s:g} s: {_first_line(message)}"
        )

    def _release(self) -> None:
        try:
            import ray
            from ray import serve
        except ImportError:
            return
        if self._broken is not None:
            # Both calls below wait on a cluster that no longer answers, and would hold up the bot's exit.
            logger.warning("not releasing Serve app %r: the cluster is gone", self.app_name)
            return
        if _ray_connected() and self.deploy:
            try:
                serve.delete(self.app_name)
            except Exception as error:  # noqa: BLE001 - the cluster may be gone; nothing is left to free then
                logger.warning("could not delete Serve app %r: %s", self.app_name, _first_line(error))
        if self._owns_ray:
            ray.shutdown()
            self._owns_ray = False

    # Scheduling (event loop only)

    def _dispatch_next(self) -> None:
        while len(self._running) < self.replicas and not self._closing and self._broken is None:
            entry = self._entries.pop_next()
            if entry is None:
                return
            self._running[entry.job.job_id] = entry
            entry.task = self._loop.create_task(self._drive(entry), name=f"ray-job-{entry.job.job_id}")
        self._announce_positions()

    async def _drive(self, entry: _Entry) -> None:
        """Run one job on Serve, trying again on another (or the restarted) replica if its replica dies."""
        from ray.exceptions import RayActorError, RayTaskError
        from ray.serve.exceptions import RequestCancelledError

        while not entry.handle.finished:
            entry.attempt += 1
            entry.replica = None
            if not entry.timers:
                # Serve holds a request while no replica is up (a painting node lost, none back yet) for ever.
                entry.timers.append(self._loop.call_later(self.replica_wait_s, self._stop, entry.job.job_id,
                                                          no_painter(self.replica_wait_s)))
            try:
                entry.stream = self._serve_handle.options(stream=True).paint.remote(entry.job)
                async for item in entry.stream:
                    if entry.handle.finished:
                        return
                    if isinstance(item, _ReplicaStarted):
                        self._on_started(entry, item)
                    elif isinstance(item, JobProgress):
                        entry.handle.push(item)
                    else:
                        self._finish(entry, item)
                        return
                lost = "its stream ended without a result"
            except RequestCancelledError:
                return  # whoever cancelled it has already told the user
            except RayActorError as error:
                lost = _first_line(error)
            except RayTaskError as error:
                # The replica's own code failed outside run_job (which reports its failures as events).
                logger.error("job %s failed in its replica: %s", entry.job.job_id, error)
                self._finish(entry, JobFailed("internal", INTERNAL_REASON))
                return
            except Exception as error:  # noqa: BLE001 - anything else is about the cluster, not the job
                if entry.handle.finished:
                    return
                logger.exception("job %s failed on Ray", entry.job.job_id)
                self._finish(entry, JobFailed("unavailable", f"The painting cluster failed: {_first_line(error)}"))
                return
            if entry.handle.finished:
                return
            if entry.replica is None:
                # A replica that died before it began this job says nothing about the picture: not an attempt.
                logger.warning("job %s could not reach a replica (%s); sending it again", entry.job.job_id, lost)
                entry.attempt -= 1
                await asyncio.sleep(RESEND_PAUSE_S)
                continue
            entry.cancel_timers()
            logger.error("job %s lost its replica %s (attempt %d): %s", entry.job.job_id, entry.replica,
                         entry.attempt, lost)
            if self._gave_up(entry):
                return

    def _on_started(self, entry: _Entry, started: _ReplicaStarted) -> None:
        entry.replica = started.replica
        entry.cancel_timers()  # the wait for a replica is over
        entry.start_timeout(self.job_timeout_s, partial(self._stop, entry.job.job_id))
        logger.info("job %s started on %s, node %s (attempt %d)", entry.job.job_id, started.replica,
                    started.node_id, entry.attempt)
        entry.handle.push(JobStarted(attempt=entry.attempt))

    def _cancel(self, job_id: str) -> None:
        self._stop(job_id, CANCELLED)

    def _stop(self, job_id: str, outcome: JobFailed) -> None:
        """End a job now, whether it waits or runs; a running one has its Serve request cancelled."""
        entry = self._entries.get(job_id)
        if entry is None:
            return
        if entry.stream is not None:
            entry.stream.cancel()
        self._finish(entry, outcome)

    def _finish(self, entry: _Entry, event: JobDone | JobFailed) -> None:
        entry.cancel_timers()
        self._entries.remove(entry.job.job_id)
        self._running.pop(entry.job.job_id, None)
        entry.handle.push(event)
        self._dispatch_next()

    async def _watch_health(self) -> None:
        missed = 0
        while True:
            await asyncio.sleep(self.health_interval_s)
            alive = await asyncio.to_thread(self._cluster_alive)
            missed = 0 if alive else missed + 1
            if missed >= HEALTH_FAILURES:
                self._mark_broken(
                    f"The painting cluster ({self.address or 'local Ray'}) stopped answering."
                )
            elif alive and self._broken is not None:
                logger.warning("the Ray cluster answers again; accepting jobs")
                self._broken = None

    def _cluster_alive(self) -> bool:
        """Blocking: whether Ray is connected and the cluster's entry point accepts connections."""
        if not _ray_connected():
            return False
        if self._health_target is None:
            return True
        try:
            with socket.create_connection(self._health_target, timeout=PROBE_TIMEOUT_S):
                return True
        except OSError:
            return False

    def _mark_broken(self, reason: str) -> None:
        """The cluster is gone: every job still here fails with that reason, and new ones are refused."""
        if self._broken is None:
            logger.error("Ray executor unavailable: %s", reason)
        self._broken = reason
        for entry in self._entries.items():
            self._stop(entry.job.job_id, JobFailed("unavailable", reason))


def _ray_connected() -> bool:
    import ray

    return ray.is_initialized()


def _host_port(address: str | None) -> tuple[str, int] | None:
    host, _, port = (address or "").rpartition(":")
    return (host, int(port)) if host and port.isdigit() else None


def _probe(address: str | None) -> None:
    """Fail in seconds, not after Ray's long reconnect loop, when a named cluster does not answer at all."""
    if address in LOCAL_ADDRESSES or address == "auto":
        return
    target = _host_port(address)
    if target is None:
        return  # not host:port; let ray.init judge it
    try:
        with socket.create_connection(target, timeout=PROBE_TIMEOUT_S):
            pass
    except OSError as error:
        raise ExecutorUnavailable(
            f"Cannot reach the Ray cluster at {address}: {error.strerror or error}."
        ) from error


def _first_line(error: BaseException | str) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def _last_line(text: str) -> str:
    """The last line of a traceback, without the exception's dotted class name."""
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return re.sub(r"^[A-Za-z_][\w.]*: ", "", lines[-1]) if lines else "no reason given"


__all__ = ["RayExecutor", "ReplicaRecord", "build_app"]
