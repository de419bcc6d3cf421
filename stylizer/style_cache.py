"""A bounded cache of a painting's style statistics (its Gram targets), for paintings used again and again.

The shipped presets are painted with over and over at the same few sizes; their Gram matrices at a size depend
only on the painting, the network, the layers and the precision, so a worker computes them once. A caller
opts in for one stylize() call with ``cached_style_targets(cache, key)``, where ``key`` identifies the style
images and the network (the worker's preset jobs: the painting's digest, the colour mode, the network); the
objective adds what varies within the call (the style's size, the blend, the layers, the precision).
Outside such a block nothing is cached: an upload painted once would only push a preset out.
"""

from __future__ import annotations

import contextlib
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterator
from contextvars import ContextVar
from dataclasses import dataclass

import torch

# One painting's targets at one size take 2.4 MB (relu1_1 … relu5_1: 64² + 128² + 256² + 2 × 512² floats);
# 256 MiB holds every preset at about five sizes each.
DEFAULT_MAX_BYTES = 256 * 1024 * 1024


class StyleTargetCache:
    """Least recently used first out, bounded by the bytes of the tensors it holds."""

    def __init__(self, max_bytes: int = DEFAULT_MAX_BYTES):
        self.max_bytes = max_bytes
        self._entries: OrderedDict[Hashable, tuple[list[torch.Tensor], int]] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def get_or_compute(self, key: Hashable, compute: Callable[[], list[torch.Tensor]]) -> list[torch.Tensor]:
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None:
                self._entries.move_to_end(key)
                self.hits += 1
                return entry[0]
        targets = compute()
        size = sum(t.numel() * t.element_size() for t in targets)
        with self._lock:
            self.misses += 1
            if size <= self.max_bytes and key not in self._entries:
                self._entries[key] = (targets, size)
                self._bytes += size
                while self._bytes > self.max_bytes:
                    _, (_, dropped) = self._entries.popitem(last=False)
                    self._bytes -= dropped
        return targets

    @property
    def stored_bytes(self) -> int:
        return self._bytes

    def __len__(self) -> int:
        return len(self._entries)


@dataclass(frozen=True)
class _Scope:
    cache: StyleTargetCache
    key: Hashable


_scope: ContextVar[_Scope | None] = ContextVar("stylizer_style_cache", default=None)


@contextlib.contextmanager
def cached_style_targets(cache: StyleTargetCache, key: Hashable) -> Iterator[None]:
    """Within the block, style targets are taken from ``cache`` under ``key`` (which must identify the style
    images and the network) plus what the objective adds."""
    token = _scope.set(_Scope(cache, key))
    try:
        yield
    finally:
        _scope.reset(token)


def style_targets(compute: Callable[[], list[torch.Tensor]], detail: Hashable) -> list[torch.Tensor]:
    """``compute()``'s targets, from the active cache where there is one. ``detail`` is what the objective
    knows varies within one call (style sizes, blend, layers, precision)."""
    scope = _scope.get()
    if scope is None:
        return compute()
    # TF32 (CUDA) changes the values a little; the exact scoring pass turns it off.
    tf32 = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    return scope.cache.get_or_compute((scope.key, detail, tf32), compute)
