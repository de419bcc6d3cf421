from __future__ import annotations

import hashlib
import http.server
import logging
import socket
import threading
from pathlib import Path

import pytest
import torch

from stylizer.weights import (
    CONTENT_LAYERS,
    LAYER_INDEX,
    STYLE_LAYERS,
    WeightsUnavailable,
    cached_path,
    load_vgg19,
    prefetch,
)
from tests.outside import gatys_reference

SEED = 3  # the served "pretrained" weights differ from load_vgg19("random")'s default seed 0


def same_weights(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


@pytest.fixture(scope="session")
def reference_net():
    return load_vgg19("random", seed=SEED)


@pytest.fixture(scope="session")
def weights_file(tmp_path_factory, reference_net) -> Path:
    """torchvision's full vgg19 layout: ``features.N.*`` plus keys the loader must ignore (classifier, conv5_2)."""
    state = {f"features.{k}": v.clone() for k, v in reference_net.state_dict().items()}
    state["features.30.weight"] = torch.zeros(512, 512, 3, 3)
    state["classifier.0.weight"] = torch.zeros(8, 8)
    path = tmp_path_factory.mktemp("weights") / "vgg19-full.pth"
    torch.save(state, path)
    return path


class WeightsServer:
    """Serves the weights file over real HTTP on 127.0.0.1 and counts what was asked for."""

    def __init__(self, payload: bytes):
        self.payload = payload
        self.requests: list[str] = []
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                server.requests.append(self.path)
                body = server.payload
                if self.path.startswith("/missing/"):
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if self.path.startswith("/truncated/"):
                    self.wfile.write(body[: len(body) // 3])
                    self.close_connection = True
                    return
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}{path}"

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server(weights_file):
    served = WeightsServer(weights_file.read_bytes())
    yield served
    served.close()


@pytest.fixture(scope="session")
def file_hash(weights_file) -> str:
    return hashlib.sha256(weights_file.read_bytes()).hexdigest()


def unreachable_url(name: str) -> str:
    with socket.socket() as sock:  # a port nobody listens on once this closes
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/{name}"


def assert_explains_how_to_recover(message: str, url: str, cache: Path):
    assert url in message
    assert str(cache) in message
    assert "--weights PATH" in message


def test_download_is_verified_cached_and_reused(server, file_hash, reference_net, tmp_path):
    url = server.url("/models/vgg19-test.pth")
    net = load_vgg19("imagenet", url=url, hash_prefix=file_hash[:8], cache_dir=tmp_path)
    assert same_weights(net, reference_net)
    assert [p.name for p in tmp_path.iterdir()] == ["vgg19-test.pth"]
    again = load_vgg19("imagenet", url=url, hash_prefix=file_hash[:8], cache_dir=tmp_path)
    assert same_weights(again, reference_net)
    assert server.requests == ["/models/vgg19-test.pth"]


def test_wrong_hash_is_rejected_and_nothing_is_cached(server, tmp_path):
    url = server.url("/models/vgg19-test.pth")
    with pytest.raises(WeightsUnavailable) as caught:
        load_vgg19("imagenet", url=url, hash_prefix="00000000", cache_dir=tmp_path)
    assert "SHA-256" in str(caught.value)
    assert_explains_how_to_recover(str(caught.value), url, tmp_path / "vgg19-test.pth")
    assert list(tmp_path.iterdir()) == []


def test_interrupted_download_leaves_nothing_behind_even_without_a_hash(server, tmp_path):
    url = server.url("/truncated/vgg19-test.pth")
    with pytest.raises(WeightsUnavailable, match="stopped after") as caught:
        prefetch(url, hash_prefix=None, cache_dir=tmp_path)
    assert_explains_how_to_recover(str(caught.value), url, tmp_path / "vgg19-test.pth")
    assert list(tmp_path.iterdir()) == []


def test_http_error_is_reported_with_the_way_out(server, tmp_path):
    url = server.url("/missing/vgg19-test.pth")
    with pytest.raises(WeightsUnavailable, match="404") as caught:
        load_vgg19("imagenet", url=url, cache_dir=tmp_path)
    assert_explains_how_to_recover(str(caught.value), url, tmp_path / "vgg19-test.pth")
    assert list(tmp_path.iterdir()) == []


def test_offline_with_nothing_cached_names_url_cache_and_local_file_option(tmp_path):
    url = unreachable_url("vgg19-dcbb9e9d.pth")
    with pytest.raises(WeightsUnavailable) as caught:
        load_vgg19("imagenet", url=url, cache_dir=tmp_path / "cache")
    assert_explains_how_to_recover(str(caught.value), url, tmp_path / "cache" / "vgg19-dcbb9e9d.pth")


def test_prefetched_weights_work_offline(server, file_hash, reference_net, tmp_path):
    path = prefetch(server.url("/vgg19-test.pth"), hash_prefix=file_hash[:8], cache_dir=tmp_path)
    assert path == tmp_path / "vgg19-test.pth" and path.is_file()
    server.close()
    net = load_vgg19("imagenet", url=unreachable_url("vgg19-test.pth"), hash_prefix=file_hash[:8],
                     cache_dir=tmp_path)
    assert same_weights(net, reference_net)


def test_default_cache_is_torch_hub_checkpoints(server, file_hash, monkeypatch, tmp_path):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    url = server.url("/vgg19-test.pth")
    expected = tmp_path / "hub" / "checkpoints" / "vgg19-test.pth"
    assert cached_path(url) == expected
    assert prefetch(url, hash_prefix=file_hash[:8]) == expected
    assert expected.is_file()


def test_a_damaged_cached_file_says_to_delete_it(tmp_path):
    (tmp_path / "vgg19-test.pth").write_bytes(b"half a file")
    with pytest.raises(WeightsUnavailable, match="Delete it"):
        load_vgg19("imagenet", url=unreachable_url("vgg19-test.pth"), cache_dir=tmp_path)


def test_local_full_vgg19_state_dict(weights_file, reference_net):
    assert same_weights(load_vgg19(weights_file), reference_net)
    assert same_weights(load_vgg19(str(weights_file)), reference_net)


def test_local_features_only_state_dict(tmp_path, reference_net):
    path = tmp_path / "features.pth"
    torch.save(reference_net.state_dict(), path)
    assert same_weights(load_vgg19(path), reference_net)


def test_state_dict_saved_by_the_referee_loads(tmp_path):
    referee_net = gatys_reference.vgg19(None, seed=SEED)
    path = tmp_path / "referee.pth"
    torch.save({f"features.{k}": v for k, v in referee_net.state_dict().items()}, path)
    assert same_weights(load_vgg19(path), referee_net)


def test_random_weights_are_the_referees_random_weights():
    assert same_weights(load_vgg19("random", seed=0), gatys_reference.vgg19(None, seed=0))


@pytest.mark.parametrize(
    ("make", "expected"),
    [
        (lambda: b"\x89PNG not torch at all", "not a PyTorch state dict"),
        (lambda: {"features.0.weight": torch.zeros(64, 3, 3, 3)}, "lacks"),
        (lambda: {k: torch.zeros(1) for k in load_vgg19("random").state_dict()}, "has shape"),
        (lambda: [torch.zeros(3)], "state dict of tensors"),
    ],
    ids=["not-torch", "missing-keys", "wrong-shapes", "not-a-dict"],
)
def test_bad_local_files_are_refused_clearly(tmp_path, make, expected):
    path = tmp_path / "weights.pth"
    content = make()
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        torch.save(content, path)
    with pytest.raises(WeightsUnavailable, match=expected) as caught:
        load_vgg19(path)
    assert str(path) in str(caught.value)


def test_missing_local_file_lists_what_source_may_be(tmp_path):
    with pytest.raises(WeightsUnavailable, match="does not exist.*'imagenet', 'random' or a path"):
        load_vgg19(tmp_path / "nowhere.pth")


def test_random_weights_are_seeded_and_announced_every_time(caplog):
    with caplog.at_level(logging.WARNING, logger="stylizer.weights"):
        first, second = load_vgg19("random"), load_vgg19("random")
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING and "random weights" in r.message]
    assert len(warnings) == 2 and "will not look painted" in warnings[0].message
    assert same_weights(first, second)
    assert not same_weights(first, load_vgg19("random", seed=1))


def test_building_a_network_leaves_the_global_rng_alone():
    torch.manual_seed(123)
    expected = torch.rand(4)
    torch.manual_seed(123)
    load_vgg19("random")
    assert torch.equal(torch.rand(4), expected)


def test_network_shape_is_features_up_to_relu5_1_frozen_and_not_in_place(random_vgg):
    assert len(random_vgg) == LAYER_INDEX["relu5_1"] + 1 == 30
    for name, index in LAYER_INDEX.items():
        assert isinstance(random_vgg[index], torch.nn.ReLU), name
        assert not random_vgg[index].inplace
    assert not random_vgg.training
    assert all(not p.requires_grad for p in random_vgg.parameters())
    assert isinstance(random_vgg[LAYER_INDEX["relu4_2"] - 1], torch.nn.Conv2d)
    features = random_vgg(torch.rand(1, 3, 32, 32))
    assert features.shape == (1, 512, 2, 2)


def test_layer_names_match_gatys():
    assert STYLE_LAYERS == {"relu1_1": 1, "relu2_1": 6, "relu3_1": 11, "relu4_1": 20, "relu5_1": 29}
    assert CONTENT_LAYERS == {"relu4_2": 22}
    assert set(STYLE_LAYERS.items()) | set(CONTENT_LAYERS.items()) <= set(LAYER_INDEX.items())
    assert list(LAYER_INDEX)[:4] == ["relu1_1", "relu1_2", "relu2_1", "relu2_2"]
