"""The executor contract: plain, picklable data in and out, so that any process or cluster can run a job."""

from __future__ import annotations

import abc
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Literal

from stylizer.defaults import CPU_DEFAULTS
from stylizer.images import ImageLimits
from stylizer.options import StylizeOptions
from stylizer.strength import DEFAULT_STRENGTH

FailureKind = Literal["invalid_image", "cancelled", "timeout", "oom", "crashed", "unavailable", "internal"]


@dataclass(frozen=True)
class JobOptions:
    """Everything the painter needs besides the two images; all of it ends up in the result's params.

    The painter paints a strip of ``variants`` tiles at ``strip_size`` with ``strip_steps``, strengths spaced
    around ``strength`` (``strength.strip_strengths``), then ``strength`` continued from its tile to the result
    at ``size`` with ``steps`` (``stylizer.pipeline``); ``style_weight`` is the experts' raw weight at
    ``strength`` (None: the stylizer's balance for the pair). The defaults are a CPU's (``stylizer.defaults``).
    """

    strength: int = DEFAULT_STRENGTH
    style_weight: float | None = StylizeOptions.style_weight
    content_weight: float = StylizeOptions.content_weight
    tv_weight: float = StylizeOptions.tv_weight
    variants: int = StylizeOptions.variants
    size: int = CPU_DEFAULTS.default_size
    steps: int = CPU_DEFAULTS.steps[CPU_DEFAULTS.default_size]
    strip_size: int = CPU_DEFAULTS.strip_size
    strip_steps: int = CPU_DEFAULTS.strip_steps
    seed: int | None = None  # None: the painter chooses one and reports it
    preserve_colors: bool = StylizeOptions.preserve_colors
    # Byte budget for each encoded output image (Discord's upload limit can be as low as 10 MiB).
    output_max_bytes: int = 8 * 1024 * 1024
    # Decoding limits applied again in the worker: the bot's check is not trusted blindly.
    max_pixels: int = ImageLimits.max_pixels
    max_input_side: int = ImageLimits.max_side


@dataclass(frozen=True)
class Job:
    """One request. Images travel as the bytes the user uploaded; only the worker decodes them."""

    job_id: str
    content: bytes
    style: bytes
    options: JobOptions
    # Who asked, used only for fair scheduling between users (round-robin); 0 when nobody in particular.
    owner: int = 0
    content_name: str = "content"
    style_name: str = "style"
    # Seconds the job may run once started before it is cancelled with kind "timeout"; None = no limit.
    timeout_s: float | None = None
    # (strength, lossless PNG) of tiles already painted for the same pictures and options (a redo's source):
    # a tile at the strip's size is taken as it is, the other strengths start from their nearest painted one.
    painted: tuple[tuple[int, bytes], ...] = ()
    # The shipped preset (stylizer.presets) whose file ``style`` holds: painted over and over, so the worker
    # keeps its style statistics. None for an uploaded painting.
    preset: str | None = None


@dataclass(frozen=True)
class JobQueued:
    position: int  # 1 = next to start


@dataclass(frozen=True)
class JobStarted:
    attempt: int = 1


@dataclass(frozen=True)
class JobProgress:
    stage: str
    step: int
    total: int
    elapsed: float
    preview: bytes | None = None  # small encoded JPEG, when the worker made one


@dataclass(frozen=True)
class JobDone:
    image: bytes  # the result (the chosen strength at options.size), encoded within options.output_max_bytes
    image_ext: str  # "png" or "jpg"
    strip: bytes  # the labelled strip of every tile, encoded within the same budget
    strip_ext: str
    image_size: tuple[int, int]  # (width, height) of the result
    strip_size: tuple[int, int]
    strengths: tuple[int, ...]  # one per tile, in strip order (the tiles' labels)
    style_weights: tuple[float, ...]  # one per tile, in strip order
    chosen: int  # index into strengths / style_weights of the strength painted as ``image``
    seconds: float  # painting time, not counting the wait in the queue
    params: dict = field(default_factory=dict)  # every parameter used, enough to reproduce the result
    note: str | None = None  # something the user should know, e.g. "rendered smaller after running out of memory"
    tiles: tuple[bytes, ...] = ()  # every tile as a lossless PNG, in strip order: a later redo's Job.painted
    reused: tuple[int, ...] = ()  # the strengths taken from Job.painted as they were; the others were painted
    # An animated WebP of the chosen strength forming (its tile, when painted by this job, then the result),
    # ending on ``image`` (stylizer.timelapse), within the same byte budget; empty if none fits.
    timelapse: bytes = b""


@dataclass(frozen=True)
class JobFailed:
    kind: FailureKind
    # A detail for the log. The bot words each kind for its users (bot.messages); only invalid_image's reason,
    # written by stylizer.images about the picture ("coffee.txt is not an image …"), is shown as it is.
    reason: str


JobEvent = JobQueued | JobStarted | JobProgress | JobDone | JobFailed


class ExecutorError(Exception):
    """Base of the executor's typed errors; ``str(error)`` tells an operator what is wrong (the bot logs it and
    shows its users a sentence of its own)."""


class QueueFull(ExecutorError):
    pass


class ExecutorUnavailable(ExecutorError):
    pass


class JobHandle(abc.ABC):
    job_id: str

    @abc.abstractmethod
    def events(self) -> AsyncIterator[JobEvent]:
        """Events in order; the stream ends right after exactly one JobDone or JobFailed."""

    @abc.abstractmethod
    async def cancel(self) -> None:
        """Ask the job to stop; the stream then ends with JobFailed(kind="cancelled") unless it already ended."""


class Executor(abc.ABC):
    @abc.abstractmethod
    async def start(self) -> None:
        """Make ready to accept jobs (start workers, load weights, connect); raises ExecutorUnavailable."""

    @abc.abstractmethod
    async def submit(self, job: Job) -> JobHandle:
        """Accept a job or raise QueueFull / ExecutorUnavailable; never blocks on the painting itself."""

    @abc.abstractmethod
    async def close(self) -> None:
        """Stop accepting, cancel what is queued or running, release workers. Idempotent."""

    @property
    @abc.abstractmethod
    def queued(self) -> int:
        """Jobs accepted and not yet finished (running included)."""
