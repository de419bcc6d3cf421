"""The bot on a real two-node Ray cluster started on this machine, and what it does when the painting node dies.

The head node offers no `painter` resource and the second node offers one, so the bot's replica
(`ray_resources = {painter = 1}`) can only be placed on the second node. Both nodes are `ray start --block`
processes with their own temp dirs and ports (tests/ray_cluster.py); the bot is a driver connected to the
head's GCS address, as on a real cluster. Losing the node is SIGKILL to all its processes at once.
"""

from __future__ import annotations

import re
import time
from collections.abc import AsyncIterator, Iterator

import pytest
import pytest_asyncio

from tests.e2e.conftest import (
    BOT_START_TIMEOUT_S,
    decode,
    in_progress,
    is_result,
    stylize,
    wait_result,
    write_config,
)
from tests.fakediscord import FakeDiscord
from tests.fakediscord.bot_process import BotProcess
from tests.ray_cluster import LocalCluster, Node

pytestmark = [pytest.mark.e2e, pytest.mark.ray, pytest.mark.asyncio(loop_scope="module")]

PAINTER = {"painter": 1.0}
# 48 px paints in about a second; 64 px runs long enough (about 10 s on one CPU) to lose its node mid-way.
STEPS = {48: 6, 64: 40}
# Ray's and Serve's start-up, a replica's (worker, torch, weights) and a node's come before some jobs.
CLUSTER_JOB_TIMEOUT_S = 240.0
REPLICA_WAIT_S = 150.0
STARTED_ON = re.compile(r"job (\S+) started on (SERVE_REPLICA::\S+), node ([0-9a-f]+) \(attempt (\d+)\)")


@pytest.fixture(scope="module")
def cluster() -> Iterator[LocalCluster]:
    cluster = LocalCluster()
    try:
        cluster.start_head(num_cpus=1)
        cluster.add_node("painter", num_cpus=1, resources=PAINTER)
        yield cluster
    finally:
        cluster.stop()
    assert cluster.leftovers() == [], "Ray processes of the test cluster outlived it"


def painter_node(cluster: LocalCluster) -> Node:
    return next(node for node in cluster.nodes if "painter" in node.resources)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def bot(fake: FakeDiscord, cluster: LocalCluster,
              tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[BotProcess]:
    workdir = tmp_path_factory.mktemp("cluster-bot")
    config = write_config(workdir, {
        "style": {"steps": {str(size): steps for size, steps in STEPS.items()}},
        "executor": {"kind": "ray", "address": cluster.address, "device": "cpu", "num_gpus": 0.0,
                     "num_cpus": 1.0, "replicas": 1, "ray_resources": PAINTER, "replica_wait_s": REPLICA_WAIT_S},
    })
    process = await fake.start_bot(config, env=cluster.env, log_path=workdir / "bot.log")
    try:
        await fake.wait_for_bot_ready(timeout=BOT_START_TIMEOUT_S + CLUSTER_JOB_TIMEOUT_S, commands=("stylize",))
        yield process
    finally:
        await fake.stop_bot()


def starts(bot: BotProcess) -> dict[str, list[tuple[str, str, int]]]:
    """job id -> (replica, node id, attempt) of every time the bot logged it starting on a replica."""
    found: dict[str, list[tuple[str, str, int]]] = {}
    for job_id, replica, node_id, attempt in STARTED_ON.findall(bot.log()):
        found.setdefault(job_id, []).append((replica, node_id, int(attempt)))
    return found


def job_of(bot: BotProcess, before: dict) -> str:
    (job_id,) = set(starts(bot)) - set(before)
    return job_id


async def test_the_replica_is_placed_on_the_painter_node_and_paints_there(fake, bot, cluster):
    before = starts(bot)
    interaction = await stylize(fake, "bob", size=48, seed=3)
    result = await wait_result(interaction, timeout=CLUSTER_JOB_TIMEOUT_S)

    progress = [edit["content"] for edit in interaction.edits if " step " in edit["content"]]
    assert progress, f"no progress came back across the cluster: {[e['content'] for e in interaction.edits]}"
    (_, image), _ = result.files
    assert max(decode(image).size) == 48
    [(replica, node_id, attempt)] = starts(bot)[job_of(bot, before)]
    head = next(node for node in cluster.nodes if node.name == "head")
    assert node_id == painter_node(cluster).node_id != head.node_id
    assert replica.startswith("SERVE_REPLICA::") and attempt == 1


async def test_losing_the_painter_node_mid_job_retries_it_once_a_node_is_back(fake, bot, cluster):
    before = starts(bot)
    alice = await stylize(fake, "alice", size=64, seed=4)
    await alice.wait_until(lambda: any(" step " in e["content"] for e in alice.edits), CLUSTER_JOB_TIMEOUT_S,
                           alice.describe)
    lost = painter_node(cluster)
    killed_at = time.monotonic()
    lost.kill()
    lost_job = job_of(bot, before)

    # The bot keeps serving while no node can paint: a job sent now is accepted and waits its turn.
    carol = await stylize(fake, "carol", size=48, seed=5)
    await carol.wait_until(lambda: in_progress(carol), 30.0, carol.describe)
    assert not is_result(alice.original), "the lost job cannot have finished on a node that was killed mid-way"

    back = cluster.restart(lost)
    first = await wait_result(alice, timeout=CLUSTER_JOB_TIMEOUT_S)
    recovered_s = time.monotonic() - killed_at
    second = await wait_result(carol, timeout=CLUSTER_JOB_TIMEOUT_S)

    assert any("second try" in edit["content"] for edit in alice.edits), [e["content"] for e in alice.edits]
    attempts = starts(bot)[lost_job]
    assert [(node, attempt) for _, node, attempt in attempts] == [(lost.node_id, 1), (back.node_id, 2)], attempts
    assert attempts[0][0] != attempts[1][0], "Serve should have started a new replica on the new node"
    assert [node for _, node, _ in starts(bot)[job_of(bot, {**before, lost_job: []})]] == [back.node_id]
    assert max(decode(first.files[0][1]).size) == 64 and max(decode(second.files[0][1]).size) == 48
    assert recovered_s < CLUSTER_JOB_TIMEOUT_S
