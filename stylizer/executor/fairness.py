"""The queue both executors keep: jobs accepted and not yet finished, the waiting ones in fair order.

Fair means round-robin between owners: the next job to start is always the oldest waiting job of the owner
served least recently, so one owner's long queue delays anybody else's job by at most one of its own.
"""

from __future__ import annotations

import itertools
from collections import deque
from dataclasses import dataclass
from typing import Generic, TypeVar

from stylizer.executor.base import QueueFull

Item = TypeVar("Item")


@dataclass(eq=False)
class _Slot(Generic[Item]):
    item: Item
    job_id: str
    owner: int
    submitted: int  # submission order, breaks ties between owners nobody has served yet
    waiting: bool = True
    last_position: int | None = None  # the position last reported by ``moved``


class FairQueue(Generic[Item]):
    """Up to ``capacity`` jobs, each held as the caller's ``Item`` under its job id, waiting or started.

    A job counts against the capacity from ``push`` until ``remove``, started or not; an owner is
    remembered as recently served only while one of its jobs is still here.
    """

    def __init__(self, capacity: int) -> None:
        if capacity < 1:
            raise ValueError("capacity must be at least 1")
        self.capacity = capacity
        self._slots: dict[str, _Slot[Item]] = {}
        self._waiting: dict[int, deque[_Slot[Item]]] = {}  # owner -> waiting jobs in submission order
        self._last_served: dict[int, int] = {}  # owner -> serve count when one of its jobs last started
        self._serves = 0
        self._submissions = itertools.count()

    def __len__(self) -> int:
        return len(self._slots)

    def __contains__(self, job_id: str) -> bool:
        return job_id in self._slots

    def get(self, job_id: str) -> Item | None:
        slot = self._slots.get(job_id)
        return slot.item if slot is not None else None

    def items(self) -> list[Item]:
        """Every job here, waiting or started, in submission order."""
        return [slot.item for slot in self._slots.values()]

    def push(self, job_id: str, owner: int, item: Item) -> None:
        """Accept a waiting job; raises ValueError for a job id already here and QueueFull at capacity."""
        if job_id in self._slots:
            raise ValueError(f"job id {job_id!r} is already queued")
        if len(self._slots) >= self.capacity:
            raise QueueFull(f"The queue is full ({self.capacity} jobs).")
        slot = _Slot(item, job_id, owner, next(self._submissions))
        self._slots[job_id] = slot
        self._waiting.setdefault(owner, deque()).append(slot)

    def pop_next(self) -> Item | None:
        """The waiting job to start now, which from here on counts as started; None when nothing waits."""
        order = self._order()
        if not order:
            return None
        slot = order[0]
        self._take_waiting(slot)
        self._serves += 1
        self._last_served[slot.owner] = self._serves
        return slot.item

    def remove(self, job_id: str) -> Item | None:
        """Forget a finished job, waiting or started; None if it is not here."""
        slot = self._slots.pop(job_id, None)
        if slot is None:
            return None
        if slot.waiting:
            self._take_waiting(slot)
        if not any(other.owner == slot.owner for other in self._slots.values()):
            self._last_served.pop(slot.owner, None)
        return slot.item

    def order(self) -> list[Item]:
        """The waiting jobs in the order they will start."""
        return [slot.item for slot in self._order()]

    def moved(self) -> list[tuple[Item, int]]:
        """``(job, position)`` for each waiting job whose position (1 = next to start) is new since the last
        call, so that a job is told of each change exactly once."""
        changes = []
        for position, slot in enumerate(self._order(), start=1):
            if slot.last_position != position:
                slot.last_position = position
                changes.append((slot.item, position))
        return changes

    def _order(self) -> list[_Slot[Item]]:
        # Plays pop_next forward on copies; serve counts only compare, so the played ones just go on counting.
        queues = {owner: deque(slots) for owner, slots in self._waiting.items()}
        last_served = dict(self._last_served)
        serves = self._serves
        order = []
        while queues:
            owner = min(queues, key=lambda o: (last_served.get(o, -1), queues[o][0].submitted))
            order.append(queues[owner].popleft())
            if not queues[owner]:
                del queues[owner]
            serves += 1
            last_served[owner] = serves
        return order

    def _take_waiting(self, slot: _Slot[Item]) -> None:
        slot.waiting = False
        queue = self._waiting[slot.owner]
        queue.remove(slot)
        if not queue:
            del self._waiting[slot.owner]
