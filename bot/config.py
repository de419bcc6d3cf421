"""The bot's configuration: a TOML file read with tomllib into frozen dataclasses, checked once at start.

Every problem is reported at once, one line per bad key, so that a mistyped file is fixed in one go.
Environment variables override the file for what differs between deployments: DISCORD_TOKEN,
DISCORD_API_BASE, DISCORD_GATEWAY_URL and STYLEBOT_JOURNAL.
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, get_type_hints

from stylizer.defaults import CPU_DEFAULTS, RequestDefaults, defaults_for
from stylizer.executor.ray_serve import custom_resources
from stylizer.images import MIN_PAINTABLE_SIDE, ImageLimits
from stylizer.options import StylizeOptions
from stylizer.strength import DEFAULT_STRENGTH, MAX_STRENGTH, MAX_VARIANTS, MIN_STRENGTH

MIB = 1024 * 1024
# Discord lets a command option offer at most 25 choices; more would make the command sync fail at start.
MAX_CHOICES = 25
# No output larger than the side the pictures are decoded at.
MAX_OUTPUT_SIDE = ImageLimits.max_side

# Keys that older versions read: a config that still has one gets one line saying why it went and what to do.
RETIRED_KEYS = {
    ("style", "base_style_weight"): "the stylizer now balances style against content for each pair of pictures, "
    f"and strength ({MIN_STRENGTH}-{MAX_STRENGTH}) alone says how much style: delete the line",
    ("discord", "gallery_channel"): "Share now posts within the server it was clicked in: use "
    "gallery_channels = { SERVER_ID = CHANNEL_ID } instead",
}


class ConfigError(Exception):
    """Raised with every problem found; ``problems`` holds one readable line per bad key."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__("\n".join(problems))


@dataclass(frozen=True)
class DiscordConfig:
    token: str = ""
    api_base: str = "https://discord.com/api/v10"
    gateway_url: str = "wss://gateway.discord.gg/"
    sync_guilds: tuple[int, ...] = ()
    allowed_guilds: tuple[int, ...] = ()
    allowed_channels: tuple[int, ...] = ()
    # Server id -> the channel of that server where Share posts; a server not listed has no Share button.
    gallery_channels: Mapping[int, int] = field(default_factory=dict)
    # 0: as many shards as Discord recommends (GET /gateway/bot), all run by this process.
    shard_count: int = 0
    # Empty: every shard of shard_count; else only these, for a bot split over several processes.
    shard_ids: tuple[int, ...] = ()

    def shard_options(self) -> dict[str, Any]:
        """discord.AutoShardedClient's keyword arguments for these settings."""
        if not self.shard_count:
            return {}
        return {"shard_count": self.shard_count, **({"shard_ids": list(self.shard_ids)} if self.shard_ids else {})}


@dataclass(frozen=True)
class LimitsConfig:
    max_attachment_bytes: int = 10 * MIB
    max_pixels: int = ImageLimits.max_pixels
    max_input_side: int = ImageLimits.max_side
    queue_length: int = 20
    per_user_jobs: int = 2
    per_guild_jobs: int = 6
    job_timeout_s: float = 900.0
    style_memory_s: float = 600.0


@dataclass(frozen=True)
class StyleConfig:
    # The sizes and steps default by the painting device (stylizer.defaults, filled in by parse_config); the
    # field defaults are a CPU's.
    sizes: tuple[int, ...] = CPU_DEFAULTS.sizes
    default_size: int = CPU_DEFAULTS.default_size
    steps: Mapping[int, int] = field(default_factory=lambda: dict(CPU_DEFAULTS.steps))
    strip_size: int = CPU_DEFAULTS.strip_size
    strip_steps: int = CPU_DEFAULTS.strip_steps
    variants: int = StylizeOptions.variants
    default_strength: int = DEFAULT_STRENGTH
    content_weight: float = StylizeOptions.content_weight
    tv_weight: float = StylizeOptions.tv_weight


@dataclass(frozen=True)
class ExecutorConfig:
    kind: str = "local"
    device: str = "auto"
    weights: str = "imagenet"
    progress_interval_s: float = 1.0
    max_attempts: int = 2
    address: str = "auto"
    replicas: int = 1
    num_gpus: float = 1.0
    num_cpus: float = 1.0
    ray_resources: Mapping[str, float] = field(default_factory=dict)
    max_queued_per_replica: int = 8
    replica_wait_s: float = 300.0
    deploy_app: bool = True


@dataclass(frozen=True)
class JournalConfig:
    path: str = "stylebot.sqlite3"
    keep_finished_hours: float = 48.0
    # The journal's files on disk (every job's uploads, painted tiles and record, SQLite's pages and log); past it
    # the oldest finished jobs go first.
    max_bytes: int = 2 * 1024 * MIB


@dataclass(frozen=True)
class BotConfig:
    health_file: str = "/tmp/stylebot.health"
    log_level: str = "INFO"
    progress_edit_interval_s: float = 2.0


@dataclass(frozen=True)
class Config:
    discord: DiscordConfig = field(default_factory=DiscordConfig)
    limits: LimitsConfig = field(default_factory=LimitsConfig)
    style: StyleConfig = field(default_factory=StyleConfig)
    executor: ExecutorConfig = field(default_factory=ExecutorConfig)
    journal: JournalConfig = field(default_factory=JournalConfig)
    bot: BotConfig = field(default_factory=BotConfig)

    def steps_for(self, size: int) -> int:
        # A job journaled before the sizes were reconfigured may ask for a size no longer listed.
        return self.style.steps.get(size, max(self.style.steps.values()))


SECTIONS: dict[str, type] = {f.name: get_type_hints(Config)[f.name] for f in dataclasses.fields(Config)}

ENV_OVERRIDES = {
    "DISCORD_TOKEN": ("discord", "token"),
    "DISCORD_API_BASE": ("discord", "api_base"),
    "DISCORD_GATEWAY_URL": ("discord", "gateway_url"),
    "STYLEBOT_JOURNAL": ("journal", "path"),
}

_CHOICES = {
    ("executor", "kind"): ("local", "ray"),
    ("executor", "device"): ("auto", "cpu", "cuda"),
    ("bot", "log_level"): ("DEBUG", "INFO", "WARNING", "ERROR"),
}


_TABLES = {
    "[style] steps": ("{256 = 150, 512 = 300}", "sizes to whole numbers of steps"),
    "[discord] gallery_channels": ("{123456789012345678 = 234567890123456789}", "server ids to channel ids"),
}


def _convert(where: str, value: Any, hint: Any) -> Any:
    """Return ``value`` as the field's type or raise ValueError with a message that names ``where``."""
    if hint is bool:
        if not isinstance(value, bool):
            raise ValueError(f"{where} must be true or false, not {value!r}")
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f"{where} must be a whole number, not {value!r}")
        return value
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValueError(f"{where} must be a number, not {value!r}")
        return float(value)
    if hint is str:
        if not isinstance(value, str):
            raise ValueError(f"{where} must be a string, not {value!r}")
        return value
    if hint == tuple[int, ...]:
        if not isinstance(value, list) or any(isinstance(v, bool) or not isinstance(v, int) for v in value):
            raise ValueError(f"{where} must be a list of whole numbers, not {value!r}")
        return tuple(value)
    if hint == Mapping[int, int]:
        # TOML keys are always strings; both tables (steps per size, gallery per server) map numbers to numbers.
        example, meaning = _TABLES.get(where, ("{1 = 2}", "whole numbers to whole numbers"))
        if not isinstance(value, dict):
            raise ValueError(f"{where} must be a table like {example}, not {value!r}")
        converted = {}
        for key, number in value.items():
            if not str(key).isdigit() or isinstance(number, bool) or not isinstance(number, int):
                raise ValueError(f"{where} must map {meaning}, not {key!r} = {number!r}")
            converted[int(key)] = number
        return converted
    if hint == Mapping[str, float]:
        # Custom Ray resources per replica, checked as the RayExecutor checks them.
        try:
            return custom_resources(value)
        except ValueError:
            raise ValueError(f"{where} must be a table of custom resources with positive amounts like "
                             f"{{painter = 1}} (CPUs and GPUs: num_cpus, num_gpus), not {value!r}") from None
    raise TypeError(f"no converter for {hint!r}")


def _check(config: Config) -> list[str]:
    """Rules that involve values, not just types."""
    problems = []
    for (section, key), allowed in _CHOICES.items():
        value = getattr(getattr(config, section), key)
        if value not in allowed:
            problems.append(f"[{section}] {key} must be one of {', '.join(map(repr, allowed))}, not {value!r}")
    style, limits = config.style, config.limits
    if not style.sizes:
        problems.append("[style] sizes must list at least one output size")
    if len(style.sizes) > MAX_CHOICES:
        problems.append(f"[style] sizes lists {len(style.sizes)} sizes; Discord offers at most {MAX_CHOICES} choices")
    if any(size < MIN_PAINTABLE_SIDE or size > MAX_OUTPUT_SIDE for size in style.sizes):
        problems.append(f"[style] sizes must be between {MIN_PAINTABLE_SIDE} and {MAX_OUTPUT_SIDE} pixels, "
                        f"not {list(style.sizes)}")
    if style.sizes and style.default_size not in style.sizes:
        problems.append(f"[style] default_size {style.default_size} must be one of sizes {list(style.sizes)}")
    missing = [size for size in style.sizes if size not in style.steps]
    if missing:
        problems.append(f"[style] steps has no entry for size(s) {missing}: add e.g. {missing[0]} = 300")
    if any(steps < 1 for steps in style.steps.values()) or style.strip_steps < 1:
        problems.append("[style] steps and strip_steps must all be at least 1")
    if style.sizes and not MIN_PAINTABLE_SIDE <= style.strip_size <= min(style.sizes):
        problems.append(f"[style] strip_size must be between {MIN_PAINTABLE_SIDE} and the smallest of sizes "
                        f"({min(style.sizes)}), not {style.strip_size}")
    if not 1 <= style.variants <= MAX_VARIANTS:
        problems.append(f"[style] variants must be between 1 and {MAX_VARIANTS}, not {style.variants}")
    if not MIN_STRENGTH <= style.default_strength <= MAX_STRENGTH:
        problems.append(f"[style] default_strength must be between {MIN_STRENGTH} and {MAX_STRENGTH}, "
                        f"not {style.default_strength}")
    if style.content_weight <= 0:
        problems.append("[style] content_weight must be greater than 0")
    if style.tv_weight < 0:
        problems.append("[style] tv_weight must not be negative")
    for key in ("max_attachment_bytes", "max_pixels", "max_input_side", "queue_length", "per_user_jobs",
                "per_guild_jobs", "job_timeout_s", "style_memory_s"):
        if getattr(limits, key) <= 0:
            problems.append(f"[limits] {key} must be greater than 0")
    if config.executor.replicas < 1:
        problems.append("[executor] replicas must be at least 1")
    if config.executor.max_attempts < 1:
        problems.append("[executor] max_attempts must be at least 1")
    if config.executor.progress_interval_s <= 0:
        problems.append("[executor] progress_interval_s must be greater than 0")
    if config.executor.replica_wait_s <= 0:
        problems.append("[executor] replica_wait_s must be greater than 0")
    if config.bot.progress_edit_interval_s < 0:
        problems.append("[bot] progress_edit_interval_s must not be negative")
    for key in ("api_base", "gateway_url"):
        value = getattr(config.discord, key)
        schemes = ("http://", "https://") if key == "api_base" else ("ws://", "wss://")
        if not value.startswith(schemes):
            problems.append(f"[discord] {key} must start with {' or '.join(schemes)}, not {value!r}")
    problems.extend(_check_shards(config.discord))
    if config.journal.keep_finished_hours < 0:
        problems.append("[journal] keep_finished_hours must not be negative")
    # One job's two uploads must fit, or the job just accepted would be pruned at once.
    if config.journal.max_bytes < 2 * limits.max_attachment_bytes:
        problems.append(f"[journal] max_bytes must be at least twice [limits] max_attachment_bytes "
                        f"({2 * limits.max_attachment_bytes}), not {config.journal.max_bytes}")
    return problems


def _check_shards(discord: DiscordConfig) -> list[str]:
    if discord.shard_count < 0:
        return [f"[discord] shard_count must be 0 (as Discord recommends) or more, not {discord.shard_count}"]
    if discord.shard_ids and not discord.shard_count:
        return ["[discord] shard_ids needs shard_count: the ids are out of how many shards?"]
    wrong = [i for i in discord.shard_ids if not 0 <= i < discord.shard_count]
    if wrong or len(set(discord.shard_ids)) != len(discord.shard_ids):
        return [f"[discord] shard_ids must be different numbers from 0 to {discord.shard_count - 1} "
                f"(shard_count - 1), not {list(discord.shard_ids)}"]
    return []


def parse_config(data: Mapping[str, Any], env: Mapping[str, str] | None = None) -> Config:
    """Build a Config from parsed TOML plus environment overrides; raise ConfigError listing every problem."""
    env = os.environ if env is None else env
    problems: list[str] = []
    sections: dict[str, Any] = {}
    for name, value in data.items():
        if name not in SECTIONS:
            problems.append(f"unknown section [{name}] (known: {', '.join(SECTIONS)})")
        elif not isinstance(value, dict):
            problems.append(f"[{name}] must be a table")
    for name, section_type in SECTIONS.items():
        raw = dict(data.get(name, {})) if isinstance(data.get(name, {}), dict) else {}
        for variable, (section, key) in ENV_OVERRIDES.items():
            if section == name and env.get(variable):
                raw[key] = env[variable]
        hints = get_type_hints(section_type)
        values = _device_defaults(data) if name == "style" else {}
        for key, value in raw.items():
            if (name, key) in RETIRED_KEYS:
                problems.append(f"[{name}] {key} is gone: {RETIRED_KEYS[name, key]}")
                continue
            if key not in hints:
                problems.append(f"[{name}] unknown key {key!r} (known: {', '.join(hints)})")
                continue
            try:
                values[key] = _convert(f"[{name}] {key}", value, hints[key])
            except ValueError as error:
                problems.append(str(error))
        sections[name] = section_type(**values)
    config = Config(**sections)
    problems.extend(_check(config))
    if problems:
        raise ConfigError(problems)
    return config


def painting_device(executor: Mapping[str, Any]) -> str:
    """The device the painter will use, from the raw [executor] table, without loading torch into the bot:
    "auto" is CUDA where a Ray replica asks for GPUs, or where this machine shows an NVIDIA driver."""
    device = executor.get("device", ExecutorConfig.device)
    if device != "auto" or not isinstance(device, str):
        return device if isinstance(device, str) else "cpu"
    if executor.get("kind", ExecutorConfig.kind) == "ray":
        gpus = executor.get("num_gpus", ExecutorConfig.num_gpus)
        return "cuda" if isinstance(gpus, int | float) and gpus > 0 else "cpu"
    hidden = os.environ.get("CUDA_VISIBLE_DEVICES") in ("", "-1")
    return "cuda" if Path("/proc/driver/nvidia/version").exists() and not hidden else "cpu"


def _device_defaults(data: Mapping[str, Any]) -> dict[str, Any]:
    """[style]'s sizes and steps for the painting device; the file's own values replace them."""
    executor = data.get("executor", {})
    defaults: RequestDefaults = defaults_for(painting_device(executor if isinstance(executor, dict) else {}))
    style = data.get("style", {}) if isinstance(data.get("style", {}), dict) else {}
    sizes = style.get("sizes", defaults.sizes)
    given = [size for size in sizes if isinstance(size, int)] if isinstance(sizes, list | tuple) else []
    default_size = defaults.default_size
    if given and default_size not in given:
        default_size = max(given)
    # Tiles no larger than the smallest result offered: a strip is the chooser, never larger than a result.
    strip_size = min(defaults.strip_size, *given) if given else defaults.strip_size
    return {"sizes": tuple(defaults.sizes), "default_size": default_size, "steps": dict(defaults.steps),
            "strip_size": strip_size, "strip_steps": defaults.strip_steps}


def load_config(path: str | Path, env: Mapping[str, str] | None = None) -> Config:
    """Read ``path``; a missing file means all defaults (plus the environment), so a token alone can start."""
    path = Path(path)
    try:
        with path.open("rb") as file:
            data = tomllib.load(file)
    except FileNotFoundError:
        data = {}
    except tomllib.TOMLDecodeError as error:
        raise ConfigError([f"{path} is not valid TOML: {error}"]) from error
    return parse_config(data, env)
