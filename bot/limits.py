"""Who may start another job: bot-wide queue length, jobs per user, jobs per guild.

Checking and reserving happen in one synchronous call so that two commands arriving together cannot both
take the last place.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Refusal:
    kind: str  # "queue_full", "per_user" or "per_guild"
    limit: int


class JobLimits:
    def __init__(self, *, queue_length: int, per_user_jobs: int, per_guild_jobs: int):
        self.queue_length = queue_length
        self.per_user_jobs = per_user_jobs
        self.per_guild_jobs = per_guild_jobs
        self._owners: dict[str, tuple[int, int | None]] = {}

    def __len__(self) -> int:
        return len(self._owners)

    def count_user(self, user_id: int) -> int:
        return sum(1 for user, _ in self._owners.values() if user == user_id)

    def count_guild(self, guild_id: int | None) -> int:
        if guild_id is None:
            return 0
        return sum(1 for _, guild in self._owners.values() if guild == guild_id)

    def reserve(self, job_id: str, user_id: int, guild_id: int | None, *, force: bool = False) -> Refusal | None:
        """Take a place for ``job_id`` and return None, or return why not and take nothing.

        ``force`` is for jobs accepted before a restart: they were promised, so they count but are never refused.
        """
        if force:
            self._owners[job_id] = (user_id, guild_id)
            return None
        if self.count_user(user_id) >= self.per_user_jobs:
            return Refusal("per_user", self.per_user_jobs)
        if guild_id is not None and self.count_guild(guild_id) >= self.per_guild_jobs:
            return Refusal("per_guild", self.per_guild_jobs)
        if len(self._owners) >= self.queue_length:
            return Refusal("queue_full", self.queue_length)
        self._owners[job_id] = (user_id, guild_id)
        return None

    def release(self, job_id: str) -> None:
        """Give the place back; releasing twice or a job never reserved is harmless."""
        self._owners.pop(job_id, None)
