"""Soak: the real bot (`python -m bot`) against the fake Discord for a long while, with restarts.

A few hundred /stylize commands and button clicks (Less, More, Upscale, Retry, Cancel, Delete) from a handful of
users, the bot stopped with SIGTERM (and once killed with SIGKILL, as a crash would) and started again along the
way. Every ``--sample-s`` seconds it records the RSS and open file descriptors of the bot and of its painter
process, the journal's size on disk and the event loop's worst lag (which the bot writes into its health file).
At the end it checks:

* flat: within each run of the bot, after a warm-up, the last third of the samples is within 10 % of the first
  third, and the last run's end within 10 % of the first run's start (RSS; descriptors to within a few);
* the journal on disk (database and write-ahead log) never exceeded ``[journal] max_bytes``;
* nothing lost: every interaction ended in a delivered result, a one-line refusal or a message saying why not,
  and Discord (the fake) refused none of the bot's requests;
* the event loop never lagged past Discord's 3 s deadline for answering an interaction.

It prints a table and writes the raw samples and outcomes to ``--out`` (JSON). CPU only, random weights and 48 px
pictures (tests/e2e.config.toml), so that a job costs about a second and the bot's own behaviour dominates.

    .venv/bin/python benchmarks/soak.py --minutes 20 --jobs 300 --restarts 3
    .venv/bin/python benchmarks/soak.py --minutes 1 --jobs 30 --restarts 1     # a quick look

Needs the test extras (``make setup-dev``): it drives the bot with tests/fakediscord and tests/e2e's helpers.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import signal
import statistics
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

try:
    from tests.e2e.conftest import (
        ACK_DEADLINE_S,
        CONTENT_PHOTO,
        STYLE_PAINTING,
        has_cancel,
        is_result,
        photo_bytes,
        restart_bot,
        rss_kib,
        start_bot,
        worker_pids,
    )
    from tests.fakediscord import FakeDiscord, FakeInteraction, FakeMessage
except ImportError as missing:  # pytest, pytest-asyncio or aiohttp: the test extras
    sys.exit(f"soak.py needs the test extras ({missing.name} is missing): run `make setup-dev` first")

from bot.health import loop_lag_of  # noqa: E402
from bot.journal import Journal  # noqa: E402

USERS = [f"soak{n}" for n in range(6)]
# How many jobs may be queued or painting at once: tests/e2e.config.toml's queue holds 4; staying below keeps
# most commands accepted (refusals are counted, not hidden).
IN_FLIGHT = 3
WARMUP_S = 60.0
FLAT = 0.10
FD_SLACK = 4  # descriptors come and go with connections; a leak is many more than this
DRAIN_S = 180.0
# Which button a user presses on a result, and how often relative to a new /stylize (weight 6).
CLICKS = {"stylize": 6, "less": 1, "more": 1, "upscale": 1, "delete": 1, "cancel": 1, "retry": 1}
RESTARTING_WORDS = "The bot is restarting — your picture"


@dataclass
class Sample:
    t: float
    run: int
    bot_rss_kib: int | None
    worker_rss_kib: int | None
    bot_fds: int | None
    worker_fds: int | None
    journal_bytes: int
    stored_bytes: int | None
    loop_lag_s: float | None
    interactions: int


@dataclass
class Action:
    kind: str
    interaction: FakeInteraction
    target: FakeMessage | None = None
    issued_at: float = field(default_factory=time.monotonic)


def fd_count(pid: int) -> int | None:
    try:
        return len(list(Path(f"/proc/{pid}/fd").iterdir()))
    except OSError:
        return None


def safe_rss(pid: int) -> int | None:
    try:
        return rss_kib(pid)
    except (OSError, AssertionError):
        return None


def journal_bytes(workdir: Path) -> int:
    """The journal's files on disk: the database and its write-ahead log."""
    return sum(path.stat().st_size for path in workdir.glob("journal.sqlite3*") if path.is_file())


def stored_bytes(workdir: Path) -> int | None:
    """What the jobs' uploads, tiles and records add up to (what [journal] max_bytes bounds)."""
    path = workdir / "journal.sqlite3"
    if not path.exists():
        return None
    journal = Journal(path)
    try:
        return journal.stored_bytes()
    finally:
        journal.close()


# ---------------------------------------------------------------------------------------------- outcomes


def refusal(interaction: FakeInteraction) -> str | None:
    """The one private line a refused command or click got (callback type 4, ephemeral)."""
    ephemeral = interaction.ephemeral_messages
    return ephemeral[0].content if ephemeral and interaction.callback_type == 4 else None


def paint_outcome(interaction: FakeInteraction) -> tuple[str, str] | None:
    """("result", file) once a picture was delivered (deleted later by a Delete click or not), ("refused" or
    "ended", the line) once the user was told why there is none; None while the job is still on its way,
    including while its last word is "restarting, it will be finished when the bot is back"."""
    for message in interaction.messages:
        if is_result(message):
            return "result", message.files[0][0]
    if (line := refusal(interaction)) is not None:
        return "refused", line
    for message in interaction.messages:
        if message.deleted or message.loading or has_cancel(message) or not message.content:
            continue
        if RESTARTING_WORDS in message.content:
            return None
        return "ended", message.content.splitlines()[0]
    return None


def outcome(action: Action) -> tuple[str, str] | None:
    interaction = action.interaction
    if action.kind == "delete":
        if action.target is not None and action.target.deleted:
            return "deleted", ""
        # Refused with one private line, as a reply or (after a silent acknowledgement) as a follow-up.
        line = refusal(interaction) or next((m.content for m in interaction.ephemeral_messages if m.content), None)
        return ("refused", line) if line is not None else None
    if action.kind == "cancel":
        if interaction.acked_at is None:
            return None
        return ("refused", refusal(interaction) or "") if refusal(interaction) else ("acknowledged", "")
    return paint_outcome(interaction)


# ---------------------------------------------------------------------------------------------- driving


class Soak:
    def __init__(self, fake: FakeDiscord, workdir: Path, rng: random.Random):
        self.fake, self.workdir, self.rng = fake, workdir, rng
        self.actions: list[Action] = []
        self.samples: list[Sample] = []
        self.run = 0
        self.started = time.monotonic()
        self.content = photo_bytes(CONTENT_PHOTO)
        self.style = photo_bytes(STYLE_PAINTING)

    def open_actions(self) -> list[Action]:
        return [a for a in self.actions if outcome(a) is None]

    def paints_in_flight(self) -> int:
        return sum(1 for a in self.open_actions() if a.kind not in ("delete", "cancel"))

    def clickable(self, kind: str) -> list[tuple[FakeMessage, str]]:
        """Messages the bot left with a ``kind`` button (results; Retry on a cancelled or failed job), with
        whose job they show."""
        prefix = f"sty:{kind}:"
        found = []
        for action in self.actions:
            for message in action.interaction.messages:
                if not message.deleted and any(i["custom_id"].startswith(prefix) and not i.get("disabled")
                                               for i in message.component_items()):
                    found.append((message, action.interaction.user["username"]))
        return found

    async def act(self) -> None:
        kind = self.rng.choices(list(CLICKS), weights=list(CLICKS.values()))[0]
        busy = {a.interaction.user["username"] for a in self.open_actions()}
        if kind == "cancel":
            running = [(m, a) for a in self.open_actions() for m in a.interaction.messages
                       if has_cancel(m) and not m.deleted]
            if running:
                message, action = self.rng.choice(running)
                button = next(i["custom_id"] for i in message.component_items()
                              if i["custom_id"].startswith("sty:cancel:"))
                user = action.interaction.user["username"]
                self.actions.append(Action("cancel", await self.fake.click(message, button, user=user)))
                return
            kind = "stylize"
        if kind != "stylize":
            prefix = f"sty:{kind}:"
            clickable = [(m, u) for m, u in self.clickable(kind) if kind == "delete" or u not in busy]
            if clickable and (kind == "delete" or self.paints_in_flight() < IN_FLIGHT):
                message, user = self.rng.choice(clickable)
                button = self.rng.choice([i["custom_id"] for i in message.component_items()
                                          if i["custom_id"].startswith(prefix) and not i.get("disabled")])
                interaction = await self.fake.click(message, button, user=user)
                self.actions.append(Action(kind, interaction, target=message))
                return
            kind = "stylize"
        if self.paints_in_flight() >= IN_FLIGHT:
            return
        idle = [u for u in USERS if u not in busy] or USERS
        user = self.rng.choice(idle)
        options = {"content": self.fake.add_attachment(self.content, "chelsea.jpg"),
                   "style": self.fake.add_attachment(self.style, "wheat_field.jpg"),
                   "strength": self.rng.randint(2, 9), "seed": self.rng.randint(0, 1000)}
        dm = self.rng.random() < 0.1
        channel = self.fake.dm_channel(user)["id"] if dm else None
        interaction = await self.fake.slash_command("stylize", user=user, channel=channel, options=options)
        self.actions.append(Action("stylize", interaction))

    def sample(self) -> Sample:
        bot = self.fake.bot
        pid = bot.process.pid if bot is not None and bot.running and bot.process is not None else None
        workers = worker_pids(bot) if pid is not None else []
        worker = workers[0] if workers else None
        sample = Sample(
            t=round(time.monotonic() - self.started, 1), run=self.run,
            bot_rss_kib=safe_rss(pid) if pid else None, worker_rss_kib=safe_rss(worker) if worker else None,
            bot_fds=fd_count(pid) if pid else None, worker_fds=fd_count(worker) if worker else None,
            journal_bytes=journal_bytes(self.workdir), stored_bytes=stored_bytes(self.workdir), loop_lag_s=loop_lag_of(self.workdir / "health"),
            interactions=len(self.actions))
        self.samples.append(sample)
        return sample

    async def drive(self, seconds: float, jobs_per_s: float, sample_s: float, last_sample: list[float]) -> None:
        """Issue actions at ``jobs_per_s`` for ``seconds``, sampling every ``sample_s``."""
        end = time.monotonic() + seconds
        next_action = time.monotonic()
        while time.monotonic() < end:
            now = time.monotonic()
            if now >= next_action:
                await self.act()
                next_action = now + self.rng.expovariate(jobs_per_s)
            if now - last_sample[0] >= sample_s:
                self.sample()
                last_sample[0] = now
            await asyncio.sleep(0.05)

    async def wait_acknowledged(self, timeout: float) -> None:
        end = time.monotonic() + timeout
        while any(a.interaction.acked_at is None for a in self.actions) and time.monotonic() < end:
            await asyncio.sleep(0.05)

    async def drain(self, timeout: float, sample_s: float, last_sample: list[float]) -> None:
        end = time.monotonic() + timeout
        while self.open_actions() and time.monotonic() < end:
            if time.monotonic() - last_sample[0] >= sample_s:
                self.sample()
                last_sample[0] = time.monotonic()
            await asyncio.sleep(0.2)


async def soak(*, minutes: float, jobs: int, restarts: int, sample_s: float, max_bytes: int, workdir: Path,
               seed: int = 0, warmup_s: float = WARMUP_S, say=print) -> dict:
    """Run the soak; return its samples, outcomes and verdicts (see ``judge``)."""
    rng = random.Random(seed)
    # The config wants room for two uploads of the largest size; the soak's are ~10 KB.
    overrides = {"journal": {"max_bytes": max_bytes}, "limits": {"max_attachment_bytes": max_bytes // 4}}
    async with FakeDiscord() as fake:
        try:
            for user in USERS:
                fake.add_user(user)
            await start_bot(fake, workdir, overrides)
            run = Soak(fake, workdir, rng)
            segments = restarts + 1
            seconds = minutes * 60 / segments
            rate = jobs / (minutes * 60)
            last_sample = [0.0]
            for segment in range(segments):
                say(f"run {segment}: {seconds:.0f} s, {len(run.actions)} actions so far")
                await run.drive(seconds, rate, sample_s, last_sample)
                if segment == segments - 1:
                    break
                # A command sent just as the bot goes down gets "the application did not respond" from Discord,
                # which no bot can prevent: the soak lets the last ones be acknowledged first. Jobs stay in flight.
                await run.wait_acknowledged(ACK_DEADLINE_S * 3)
                # Restarts happen with work in flight, as they would in production; the last one is a crash.
                if segment == segments - 2 and restarts >= 2:
                    await fake.kill_bot()
                else:
                    await fake.stop_bot()
                run.sample()
                run.run += 1
                await restart_bot(fake)
            await run.drain(DRAIN_S, sample_s, last_sample)
            run.sample()
            refusals = [f"{r.method} {r.path} -> {r.status} {r.code} {r.message}" for r in fake.refusals]
            unknown = list(fake.unknown_requests)
            crashes = list(fake.server_errors)
        finally:
            await fake.stop_bot()  # also when the soak itself is stopped (SIGTERM, Ctrl-C)
    return judge(run, refusals + [f"unknown request {u}" for u in unknown] + crashes, max_bytes, warmup_s)


def _steady(samples: list[Sample], key: str, warmup_s: float) -> dict[int, list[float]]:
    """Per run of the bot, the values of ``key`` after its warm-up."""
    starts: dict[int, float] = {}
    for sample in samples:
        starts.setdefault(sample.run, sample.t)
    by_run: dict[int, list[float]] = {}
    for sample in samples:
        value = getattr(sample, key)
        if value is not None and sample.t - starts[sample.run] >= warmup_s:
            by_run.setdefault(sample.run, []).append(value)
    return by_run


def flatness(samples: list[Sample], key: str, warmup_s: float) -> dict:
    """Growth within each run (median of its last third over its first third) and from the first run's start to
    the last run's end."""
    by_run = {run: values for run, values in _steady(samples, key, warmup_s).items() if len(values) >= 3}
    if not by_run:
        return {"within": [], "across": None}

    def thirds(values):
        third = max(1, len(values) // 3)
        return statistics.median(values[:third]), statistics.median(values[-third:])

    within = [thirds(values) for values in by_run.values()]
    across = (within[0][0], within[-1][1])
    return {"within": within, "across": across}


def grew_too_much(first: float, last: float, key: str) -> bool:
    if key.endswith("fds"):
        return last - first > FD_SLACK
    return last > first * (1 + FLAT)


def judge(run: Soak, refused_traffic: list[str], max_bytes: int, warmup_s: float) -> dict:
    outcomes: dict[str, int] = {}
    lost = []
    reasons: dict[str, int] = {}
    for action in run.actions:
        ended = outcome(action)
        if ended is None:
            lost.append(f"{action.kind}: {action.interaction.describe()}")
            continue
        outcomes[f"{action.kind} {ended[0]}"] = outcomes.get(f"{action.kind} {ended[0]}", 0) + 1
        if ended[0] in ("refused", "ended"):
            reasons[ended[1]] = reasons.get(ended[1], 0) + 1
    flat = {key: flatness(run.samples, key, warmup_s)
            for key in ("bot_rss_kib", "worker_rss_kib", "bot_fds", "worker_fds")}
    not_flat = [f"{key} {first:.0f} -> {last:.0f}" for key, result in flat.items()
                for first, last in [*result["within"], *([result["across"]] if result["across"] else [])]
                if grew_too_much(first, last, key)]
    journal_max = max(s.journal_bytes for s in run.samples)
    stored_max = max((s.stored_bytes or 0) for s in run.samples)
    lags = [s.loop_lag_s for s in run.samples if s.loop_lag_s is not None]
    acks = sorted(a.interaction.ack_latency for a in run.actions if a.interaction.ack_latency is not None)
    return {
        "duration_s": run.samples[-1].t, "runs": run.run + 1, "actions": len(run.actions), "outcomes": outcomes,
        "reasons": reasons, "lost": lost, "refused_traffic": refused_traffic, "flat": flat, "not_flat": not_flat,
        "journal_max_bytes": journal_max, "stored_max_bytes": stored_max, "max_bytes": max_bytes, "loop_lag_max_s": max(lags, default=None),
        "ack_p50_s": acks[len(acks) // 2] if acks else None, "ack_max_s": acks[-1] if acks else None,
        "samples": [asdict(s) for s in run.samples],
        "passed": {
            "flat": not not_flat, "journal_within_max_bytes": journal_max <= max_bytes,
            "nothing_lost": not lost and not refused_traffic,
            "loop_lag_below_deadline": max(lags, default=0.0) < ACK_DEADLINE_S,
        },
    }


def table(report: dict) -> str:
    def mib(kib):
        return "-" if kib is None else f"{kib / 1024:.0f}"

    lines = [f"{'t s':>7} {'run':>3} {'bot MiB':>8} {'worker MiB':>10} {'bot fds':>7} {'worker fds':>10} "
             f"{'journal KiB':>11} {'stored KiB':>10} {'loop lag s':>10} {'actions':>7}"]
    for s in report["samples"]:
        lag = "-" if s["loop_lag_s"] is None else f"{s['loop_lag_s']:.3f}"
        lines.append(f"{s['t']:>7.0f} {s['run']:>3} {mib(s['bot_rss_kib']):>8} {mib(s['worker_rss_kib']):>10} "
                     f"{s['bot_fds'] if s['bot_fds'] is not None else '-':>7} "
                     f"{s['worker_fds'] if s['worker_fds'] is not None else '-':>10} "
                     f"{s['journal_bytes'] / 1024:>11.0f} {(s['stored_bytes'] or 0) / 1024:>10.0f} {lag:>10} "
                     f"{s['interactions']:>7}")
    lines.append("")
    lines.append(f"{report['actions']} actions over {report['duration_s']:.0f} s in {report['runs']} runs of the bot; "
                 f"ack p50 {report['ack_p50_s']:.3f} s, max {report['ack_max_s']:.3f} s; "
                 f"worst loop lag {report['loop_lag_max_s']} s")
    lines.append("outcomes: " + ", ".join(f"{k} {v}" for k, v in sorted(report["outcomes"].items())))
    lines.append("reasons: " + "; ".join(f"{v}x {k!r}" for k, v in sorted(report["reasons"].items())))
    for key, result in report["flat"].items():
        within = ", ".join(f"{a:.0f}->{b:.0f}" for a, b in result["within"])
        across = "" if result["across"] is None else f"{result['across'][0]:.0f}->{result['across'][1]:.0f}"
        lines.append(f"{key}: within runs {within}; first run's start -> last run's end {across}")
    lines.append(f"journal on disk at most {report['journal_max_bytes'] / 1024:.0f} KiB, jobs' stored bytes at most "
                 f"{report['stored_max_bytes'] / 1024:.0f} KiB "
                 f"(max_bytes {report['max_bytes'] / 1024:.0f} KiB)")
    lines.append("verdict: " + ", ".join(f"{k} {'yes' if v else 'NO'}" for k, v in report["passed"].items()))
    for problem in report["not_flat"] + report["lost"][:5] + report["refused_traffic"][:5]:
        lines.append(f"  problem: {problem}")
    return "\n".join(lines)


def _interrupt(signum, frame) -> None:
    raise KeyboardInterrupt  # so that asyncio.run cancels the soak and its bot is stopped, not orphaned


def main() -> int:
    signal.signal(signal.SIGTERM, _interrupt)
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=20.0)
    parser.add_argument("--jobs", type=int, default=300, help="how many commands and clicks, about")
    parser.add_argument("--restarts", type=int, default=3)
    parser.add_argument("--sample-s", type=float, default=10.0)
    parser.add_argument("--max-bytes", type=int, default=4 * 1024 * 1024, help="[journal] max_bytes")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "soak.json")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="soak-") as workdir:
        report = asyncio.run(soak(minutes=args.minutes, jobs=args.jobs, restarts=args.restarts,
                                  sample_s=args.sample_s, max_bytes=args.max_bytes, workdir=Path(workdir),
                                  seed=args.seed))
    print(table(report))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1) + "\n")
    print(f"raw samples and outcomes: {args.out}")
    return 0 if all(report["passed"].values()) else 1


if __name__ == "__main__":
    sys.exit(main())
