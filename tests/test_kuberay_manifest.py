"""docs/kuberay/rayservice.yaml carries the names and options the code uses: it is parsed, never applied here."""

from __future__ import annotations

import importlib
import inspect
import json
import tomllib
from pathlib import Path

import pytest
import yaml

from bot.config import parse_config
from stylizer.executor import ray_replica, ray_serve

MANIFEST = Path(__file__).resolve().parents[1] / "docs" / "kuberay" / "rayservice.yaml"


@pytest.fixture(scope="module")
def documents() -> dict[str, dict]:
    return {doc["kind"]: doc for doc in yaml.safe_load_all(MANIFEST.read_text())}


@pytest.fixture(scope="module")
def serve_app(documents) -> dict:
    (app,) = yaml.safe_load(documents["RayService"]["spec"]["serveConfigV2"])["applications"]
    return app


@pytest.fixture(scope="module")
def painter(serve_app) -> dict:
    (deployment,) = serve_app["deployments"]
    return deployment


def test_the_serve_config_builds_the_code_s_app_under_its_names(serve_app, painter):
    from ray.serve import Application

    module, _, name = serve_app["import_path"].partition(":")
    builder = getattr(importlib.import_module(module), name)
    assert builder is ray_serve.build_app
    assert serve_app["name"] == inspect.signature(ray_serve.RayExecutor).parameters["app_name"].default
    replica_args = list(inspect.signature(ray_replica._Painter).parameters)
    assert list(serve_app["args"]) == replica_args
    assert isinstance(builder(serve_app["args"]), Application)
    assert painter["name"] == ray_serve.DEPLOYMENT_NAME
    assert painter["max_ongoing_requests"] == ray_serve.MAX_ONGOING_REQUESTS


def test_replicas_ask_only_for_what_the_gpu_workers_offer(documents, painter):
    options = painter["ray_actor_options"]
    # What RayExecutor itself sets per replica, and nothing it would not.
    assert set(options) == {"num_cpus", "num_gpus", "resources"}
    cluster = documents["RayService"]["spec"]["rayClusterConfig"]
    (workers,) = cluster["workerGroupSpecs"]
    offered = json.loads(json.loads(workers["rayStartParams"]["resources"]))
    assert set(options["resources"]) <= set(offered) and "painter" in offered
    (container,) = workers["template"]["spec"]["containers"]
    gpus = int(container["resources"]["limits"]["nvidia.com/gpu"])
    assert int(workers["rayStartParams"]["num-gpus"]) == gpus >= options["num_gpus"] > 0
    assert cluster["headGroupSpec"]["rayStartParams"]["num-cpus"] == "0", "no painter may land on the head"
    assert "painter" not in json.dumps(cluster["headGroupSpec"]["rayStartParams"])


def test_the_bot_config_uses_that_app_as_it_is_deployed(documents, painter):
    text = documents["ConfigMap"]["data"]["config.toml"]
    executor = parse_config(tomllib.loads(text), env={}).executor
    assert executor.kind == "ray" and executor.address == "auto" and executor.deploy_app is False
    assert executor.replicas == painter["num_replicas"]
    assert dict(executor.ray_resources) == {k: float(v) for k, v in painter["ray_actor_options"]["resources"].items()}
    assert executor.num_gpus == painter["ray_actor_options"]["num_gpus"]
    (container,) = documents["Deployment"]["spec"]["template"]["spec"]["containers"]
    service = f"{documents['RayService']['metadata']['name']}-head-svc"
    assert f"ray start --address={service}:6379 --num-cpus=0 --num-gpus=0" in " ".join(container["args"])
    assert documents["Deployment"]["spec"]["replicas"] == 1
