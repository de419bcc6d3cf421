"""Stable custom_ids for the persistent buttons: ``sty:<action>:<job_id>[:<argument>]``.

They survive a restart because everything else a button needs is looked up in the journal by job id.
"""

from __future__ import annotations

from dataclasses import dataclass

PREFIX = "sty"
ACTIONS = ("cancel", "less", "more", "upscale", "retry", "delete", "share", "timelapse")
# Actions whose argument is a strength (the tile to upscale).
WITH_ARGUMENT = ("upscale",)
# Job ids are uuid4().hex: 32 lowercase hex digits.
JOB_ID = r"[0-9a-f]{32}"


@dataclass(frozen=True)
class CustomId:
    action: str
    job_id: str
    argument: int | None = None

    def __str__(self) -> str:
        tail = "" if self.argument is None else f":{self.argument}"
        return f"{PREFIX}:{self.action}:{self.job_id}{tail}"


def template(action: str) -> str:
    """The DynamicItem template for one action (argument-taking actions need the argument)."""
    argument = r":(?P<argument>\d{1,2})" if action in WITH_ARGUMENT else ""
    return rf"{PREFIX}:{action}:(?P<job_id>{JOB_ID}){argument}"
