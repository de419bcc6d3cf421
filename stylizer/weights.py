"""VGG-19 feature extractor: torchvision's layout, truncated after relu5_1, from pretrained or seeded weights.

Only the convolutional ``features`` part is built: the classifier's 120M parameters never matter for style
transfer. Pretrained weights are torchvision's ImageNet file, downloaded once into the torch hub cache with its
SHA-256 checked; machines without internet can point at a local copy instead.
"""

from __future__ import annotations

import hashlib
import http.client
import logging
import os
import tempfile
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import torch
import torchvision
from tqdm import tqdm

log = logging.getLogger(__name__)

VGG19_URL = "https://download.pytorch.org/models/vgg19-dcbb9e9d.pth"
# torchvision's convention: the file name carries the first hex digits of the file's SHA-256.
VGG19_HASH_PREFIX = "dcbb9e9d"
DOWNLOAD_TIMEOUT_S = 30.0
LOCAL_FILE_HINT = 'pass a local copy with --weights PATH (bot config: weights = "PATH" under [executor])'


def _relu_layer_indices() -> dict[str, int]:
    """Name every ReLU of torchvision's vgg19().features (relu1_1 … relu5_4) by its block and position."""
    names: dict[str, int] = {}
    index, block, conv = 0, 1, 0
    for entry in torchvision.models.vgg.cfgs["E"]:
        if entry == "M":
            index += 1
            block, conv = block + 1, 0
        else:
            conv += 1
            names[f"relu{block}_{conv}"] = index + 1
            index += 2
    return names


# Only the layers the truncated network has: relu1_1 … relu5_1.
_ALL_RELUS = _relu_layer_indices()
LAYER_INDEX: dict[str, int] = {name: i for name, i in _ALL_RELUS.items() if i <= _ALL_RELUS["relu5_1"]}
# The layers of Gatys et al.: style from the first ReLU of every block, content from relu4_2.
STYLE_LAYERS: dict[str, int] = {name: LAYER_INDEX[name] for name in
                                ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")}
CONTENT_LAYERS: dict[str, int] = {"relu4_2": LAYER_INDEX["relu4_2"]}
LAST_INDEX = LAYER_INDEX["relu5_1"]


class WeightsUnavailable(RuntimeError):
    """The requested VGG-19 weights cannot be had; ``str(error)`` says why and what to do about it."""


def default_cache_dir() -> Path:
    """torch's hub checkpoint folder: ``$TORCH_HOME/hub/checkpoints`` (``~/.cache/torch`` by default)."""
    return Path(torch.hub.get_dir()) / "checkpoints"


def cached_path(url: str = VGG19_URL, cache_dir: str | os.PathLike | None = None) -> Path:
    """Where the file at ``url`` is (or would be) cached."""
    name = Path(urllib.parse.urlparse(url).path).name
    return (Path(cache_dir) if cache_dir is not None else default_cache_dir()) / name


def prefetch(url: str = VGG19_URL, *, hash_prefix: str | None = VGG19_HASH_PREFIX,
             cache_dir: str | os.PathLike | None = None, progress: bool = False) -> Path:
    """Download the weights into the cache unless already there; return the cached file's path."""
    target = cached_path(url, cache_dir)
    if target.is_file():
        return target
    try:
        _download(url, target, hash_prefix, progress)
    except WeightsUnavailable:
        raise
    except (OSError, http.client.HTTPException) as error:
        if isinstance(error, urllib.error.HTTPError):
            reason = f"HTTP {error.code} {error.reason}"
        else:
            reason = getattr(error, "reason", None) or error
        raise WeightsUnavailable(
            f"Could not download the VGG-19 weights from {url} ({reason}); nothing is cached at {target}. "
            f"Copy the file there, or {LOCAL_FILE_HINT}.") from error
    return target


def _download(url: str, target: Path, hash_prefix: str | None, progress: bool) -> None:
    """Stream ``url`` into a temporary file beside ``target`` and move it into place only once verified.

    Readers therefore never see a partial or wrong file, and concurrent downloaders cannot clobber each other.
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, partial_name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".partial")
    partial = Path(partial_name)
    try:
        digest = hashlib.sha256()
        received = 0
        request = urllib.request.Request(url, headers={"User-Agent": "stylebot"})
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(request, timeout=DOWNLOAD_TIMEOUT_S) as response:
            expected = int(response.headers.get("Content-Length") or 0) or None
            with tqdm(total=expected, unit="B", unit_scale=True, desc=target.name, disable=not progress) as bar:
                while chunk := response.read(1 << 20):
                    out.write(chunk)
                    digest.update(chunk)
                    received += len(chunk)
                    bar.update(len(chunk))
        if expected is not None and received != expected:
            raise WeightsUnavailable(
                f"The download of {url} stopped after {received} of {expected} bytes; nothing was cached at "
                f"{target}. Try again, or {LOCAL_FILE_HINT}.")
        actual = digest.hexdigest()
        if hash_prefix and not actual.startswith(hash_prefix.lower()):
            raise WeightsUnavailable(
                f"The file downloaded from {url} has SHA-256 {actual[:16]}…, not the expected {hash_prefix}…; "
                f"it was discarded and nothing was cached at {target}. {LOCAL_FILE_HINT[0].upper()}"
                f"{LOCAL_FILE_HINT[1:]}.")
        os.replace(partial, target)
        log.info("downloaded %s (%d bytes) to %s", url, received, target)
    finally:
        partial.unlink(missing_ok=True)


def _features(seed: int | None) -> torch.nn.Sequential:
    """The full ``features`` stack; for a ``seed``, initialised exactly like the referee's random network.

    Matching the referee means drawing what it draws: torchvision's default init of all 16 convolutions, then
    Kaiming normal. The global RNG is forked so that building a network never changes what others draw next.
    Without a seed the layers live on the meta device: no memory, no time spent on values about to be replaced.
    """
    if seed is None:
        with torch.device("meta"):
            return torchvision.models.vgg.make_layers(torchvision.models.vgg.cfgs["E"])
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        features = torchvision.models.vgg.make_layers(torchvision.models.vgg.cfgs["E"])
        for module in features:
            if isinstance(module, torch.nn.Conv2d):
                torch.nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
                torch.nn.init.zeros_(module.bias)
    return features


def _read_state_dict(path: Path, description: str) -> dict[str, torch.Tensor]:
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError as error:
        raise WeightsUnavailable(
            f"The VGG-19 weights file {path} does not exist (weights must be 'imagenet', 'random' or a path "
            "to a torchvision vgg19 state dict).") from error
    except Exception as error:  # torch raises a zoo of types for files that are not its own
        raise WeightsUnavailable(
            f"{description} {path} is not a PyTorch state dict ({type(error).__name__}: "
            f"{str(error).splitlines()[0] if str(error) else 'unreadable'}).") from error
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise WeightsUnavailable(f"{description} {path} does not hold a state dict of tensors.")
    return state


def _load_into(net: torch.nn.Sequential, state: dict[str, torch.Tensor], path: Path, description: str) -> None:
    """Copy the convolutions up to relu5_1 from a full vgg19 (``features.N.*``) or features-only (``N.*``) dict."""
    wanted = net.state_dict()
    features = {k.removeprefix("features."): v for k, v in state.items() if k.startswith("features.")}
    if not features:
        features = state
    missing = [key for key in wanted if key not in features]
    if missing:
        raise WeightsUnavailable(
            f"{description} {path} is not a VGG-19 state dict: it lacks {len(missing)} of the "
            f"{len(wanted)} tensors needed (first missing: 'features.{missing[0]}').")
    for key, tensor in wanted.items():
        if features[key].shape != tensor.shape:
            raise WeightsUnavailable(
                f"{description} {path} is not a VGG-19 state dict: 'features.{key}' has shape "
                f"{tuple(features[key].shape)}, expected {tuple(tensor.shape)}.")
    net.load_state_dict({key: features[key].float() for key in wanted}, assign=True)


def load_vgg19(source: str | os.PathLike = "imagenet", *, device: str | torch.device = "cpu", url: str = VGG19_URL,
               hash_prefix: str | None = VGG19_HASH_PREFIX, cache_dir: str | os.PathLike | None = None,
               progress: bool = False, seed: int = 0) -> torch.nn.Sequential:
    """VGG-19 ``features[:30]`` (up to relu5_1), ReLUs not in place, in eval mode, without gradients.

    ``source``: ``"imagenet"`` (torchvision's pretrained file from ``url``, downloaded into the cache once),
    ``"random"`` (seeded torchvision initialisation, only good for tests and timings), or a path to a state dict.
    Raises ``WeightsUnavailable`` with a message fit for an operator.
    """
    random = str(source) == "random"
    features = _features(seed if random else None)
    net = torch.nn.Sequential(*[torch.nn.ReLU(inplace=False) if isinstance(m, torch.nn.ReLU) else m
                                for m in features[: LAST_INDEX + 1]])
    if random:
        log.warning("random weights (seed %d): images will not look painted; use 'imagenet' or a weights file "
                    "for real results", seed)
    elif str(source) == "imagenet":
        path = prefetch(url, hash_prefix=hash_prefix, cache_dir=cache_dir, progress=progress)
        try:
            _load_into(net, _read_state_dict(path, "The cached weights file"), path, "The cached weights file")
        except WeightsUnavailable as error:
            raise WeightsUnavailable(f"{error} Delete it to download it again.") from error
    else:
        path = Path(source).expanduser()
        _load_into(net, _read_state_dict(path, "The weights file"), path, "The weights file")
    return net.to(device).eval().requires_grad_(False)
