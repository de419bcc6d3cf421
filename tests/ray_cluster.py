"""A real multi-node Ray cluster on this machine, for tests: every node is a `ray start --block` of its own.

Each node runs in a session of its own (``start_new_session``) with its own ``--temp-dir`` and free ports, so
that killing a node kills exactly its processes (SIGKILL to the session's process group, as a machine that loses
power) and nothing of any other Ray on the machine: ``ray stop`` is never used, it stops every Ray here.
``stop()`` also sweeps up any process whose command line names one of the cluster's temp dirs, for processes
that left the node's process group.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

RAY = str(Path(sys.executable).with_name("ray"))
OBJECT_STORE_BYTES = 80 * 1024 * 1024
NODE_START_TIMEOUT_S = 120.0
KILL_WAIT_S = 10.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def _pids() -> list[int]:
    return [int(entry.name) for entry in Path("/proc").iterdir() if entry.name.isdigit()]


def _process_group(pid: int) -> int | None:
    """The process group of a live process; None for one gone or a zombie (dead, waiting to be reaped)."""
    try:
        # The fields after the command name, which is in parentheses and may hold spaces.
        state, _, group = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[:3]
    except (OSError, ValueError):
        return None
    return None if state == "Z" else int(group)


@dataclass
class Node:
    name: str
    temp_dir: Path
    process: subprocess.Popen
    log_path: Path
    resources: dict[str, float] = field(default_factory=dict)
    node_id: str = ""  # Ray's id (hex) for the node, once it has joined; it stays known after a kill

    @property
    def pids(self) -> list[int]:
        """Every live process of this node: its process group, plus any process naming its temp dir."""
        group = self.process.pid
        marker = str(self.temp_dir)
        return [pid for pid in _pids()
                if (found := _process_group(pid)) == group or (found is not None and marker in _cmdline(pid))]

    def raylet_node_id(self) -> str | None:
        """The node id on its running raylet's command line: no driver needed to learn it."""
        for pid in self.pids:
            line = _cmdline(pid)
            if "raylet" in line.split(" ", 1)[0]:
                found = re.search(r"--node_id=([0-9a-f]+)", line)
                if found:
                    return found.group(1)
        return None

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def kill(self) -> None:
        """SIGKILL every process of the node at once, and wait until they are gone."""
        deadline = time.monotonic() + KILL_WAIT_S
        while (pids := [pid for pid in self.pids if pid != os.getpid()]) and time.monotonic() < deadline:
            try:
                os.killpg(self.process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            for pid in pids:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            time.sleep(0.1)
        self.process.wait(timeout=KILL_WAIT_S)


class LocalCluster:
    """``start_head()``, then ``add_node()`` as often as wanted; ``stop()`` ends every process it started."""

    def __init__(self, root: Path | None = None) -> None:
        # Short: Ray puts unix sockets under the temp dir, and their paths may not exceed 107 bytes.
        self.root = Path(tempfile.mkdtemp(prefix="rc-", dir="/tmp")) if root is None else root
        self.nodes: list[Node] = []
        self._started = 0
        self.gcs_port: int | None = None
        # Ray 2.60's head asks every node and driver for a token; this cluster's own, not ~/.ray/auth_token.
        token_path = self.root / "auth_token"
        token_path.write_text(secrets.token_hex(32))
        token_path.chmod(0o600)
        self.env = {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN_PATH": str(token_path)}

    @property
    def address(self) -> str:
        assert self.gcs_port is not None, "start_head() first"
        return f"127.0.0.1:{self.gcs_port}"

    def start_head(self, *, num_cpus: int = 1, resources: dict[str, float] | None = None) -> Node:
        self.gcs_port = free_port()
        return self._start("head", ["--head", f"--port={self.gcs_port}", "--include-dashboard=false",
                                    f"--dashboard-port={free_port()}", f"--ray-client-server-port={free_port()}"], num_cpus, resources)

    def add_node(self, name: str, *, num_cpus: int = 1, resources: dict[str, float] | None = None) -> Node:
        return self._start(name, [f"--address={self.address}"], num_cpus, resources)

    def restart(self, node: Node) -> Node:
        """Start a node again like the one given (after ``kill``): same name and resources, fresh temp dir."""
        self.nodes.remove(node)
        return self.add_node(node.name, num_cpus=int(node.resources.get("CPU", 1)),
                             resources={k: v for k, v in node.resources.items() if k != "CPU"})

    def _start(self, name: str, role: list[str], num_cpus: int, resources: dict[str, float] | None) -> Node:
        self._started += 1
        temp_dir = self.root / f"{name}{self._started}"
        temp_dir.mkdir()
        log_path = self.root / f"{temp_dir.name}.log"
        command = [
            RAY, "start", "--block", *role, f"--temp-dir={temp_dir}", "--node-ip-address=127.0.0.1",
            f"--num-cpus={num_cpus}", "--num-gpus=0", f"--resources={json.dumps(resources or {})}",
            f"--object-store-memory={OBJECT_STORE_BYTES}", "--disable-usage-stats",
            f"--node-manager-port={free_port()}", f"--object-manager-port={free_port()}",
            f"--dashboard-agent-listen-port={free_port()}", f"--dashboard-agent-grpc-port={free_port()}",
            f"--runtime-env-agent-port={free_port()}", f"--metrics-export-port={free_port()}",
        ]
        with log_path.open("ab") as log:
            process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
                                       stdin=subprocess.DEVNULL, env={**os.environ, **self.env})
        node = Node(name, temp_dir, process, log_path, {"CPU": num_cpus, **(resources or {})})
        self.nodes.append(node)
        self._wait_joined(node)
        return node

    def _wait_joined(self, node: Node) -> None:
        """Until the node's raylet runs and `ray start` says the node is up (it keeps blocking after)."""
        deadline = time.monotonic() + NODE_START_TIMEOUT_S
        while time.monotonic() < deadline:
            if node.process.poll() is not None:
                raise RuntimeError(f"ray start for {node.name} exited {node.process.returncode}:\n{node.log()}")
            if "Ray runtime started" in node.log() and (node_id := node.raylet_node_id()):
                node.node_id = node_id
                return
            time.sleep(0.2)
        raise RuntimeError(f"node {node.name} did not start within {NODE_START_TIMEOUT_S:g} s:\n{node.log()}")

    def stop(self) -> None:
        """Kill every node, newest first (the head last), and whatever else names one of their temp dirs."""
        for node in reversed(self.nodes):
            node.kill()
        marker = str(self.root)
        for pid in _pids():
            if marker in _cmdline(pid) and pid != os.getpid():
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        self.nodes.clear()

    def leftovers(self) -> list[str]:
        """Command lines of live processes that still belong to this cluster (for a test's own check)."""
        marker = str(self.root)
        return [_cmdline(pid) for pid in _pids()
                if marker in _cmdline(pid) and pid != os.getpid() and _process_group(pid) is not None]
