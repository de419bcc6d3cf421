"""Famous public-domain paintings shipped with the library, to paint with by name instead of by file.

The files and their credits live in ``stylizer/paintings/`` (``presets.toml``: name, title, artist, year;
``SOURCES.md``: where each file came from and why it is free to ship). No torch here: the bot reads the list
for its autocomplete.
"""

from __future__ import annotations

import functools
import tomllib
import unicodedata
from dataclasses import dataclass
from pathlib import Path

PAINTINGS_DIR = Path(__file__).resolve().parent / "paintings"
# Discord offers at most 25 choices per autocomplete answer; the CLI and library take the same bound.
MAX_MATCHES = 25


class UnknownPreset(ValueError):
    """``str(error)`` is one sentence a user can read, naming what was asked for."""


@dataclass(frozen=True)
class Preset:
    name: str  # the stable identifier: a file name's stem, lower case, no spaces
    title: str
    artist: str
    year: str

    @property
    def path(self) -> Path:
        return PAINTINGS_DIR / f"{self.name}.jpg"

    @property
    def credit(self) -> str:
        """How a result credits the painting: "The Kiss, Gustav Klimt, 1907–1908"."""
        return f"{self.title}, {self.artist}, {self.year}"

    def read_bytes(self) -> bytes:
        return self.path.read_bytes()


@functools.cache
def all_presets() -> tuple[Preset, ...]:
    """Every shipped painting, in the order of presets.toml (by name: the painter first)."""
    with (PAINTINGS_DIR / "presets.toml").open("rb") as file:
        table = tomllib.load(file)
    return tuple(Preset(**entry) for entry in table["preset"])


def get_preset(name: str) -> Preset:
    """The preset called ``name`` (its identifier, or its title in any case); ``UnknownPreset`` otherwise."""
    wanted = _folded(name)
    for preset in all_presets():
        if wanted in (preset.name, _folded(preset.title)):
            return preset
    raise UnknownPreset(f"There is no preset painting called {name!r}; list them with --list-presets.")


def search_presets(query: str, limit: int = MAX_MATCHES) -> list[Preset]:
    """The presets whose title, artist or name contain every word of ``query`` (case and accents ignored),
    those whose title or artist starts with the query first; all of them (up to ``limit``) for an empty one."""
    words = _folded(query).split()
    found = [p for p in all_presets() if all(word in _haystack(p) for word in words)]
    text = " ".join(words)
    found.sort(key=lambda p: not (_folded(p.title).startswith(text) or _folded(p.artist).startswith(text)))
    return found[:limit]


def _haystack(preset: Preset) -> str:
    return " ".join((_folded(preset.title), _folded(preset.artist), preset.name.replace("_", " ")))


def _folded(text: str) -> str:
    """Lower case without accents, so that "cezanne" finds Cézanne and "rhone" the Rhône."""
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    return "".join(c for c in decomposed if not unicodedata.combining(c)).strip()
