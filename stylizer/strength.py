"""Strength, the one knob users turn: 1 (a hint of the painting) to 10 (mostly painting).

Strengths are whole steps on one lattice: each step doubles the style weight, and a strip of N variants is N
steps spaced evenly (``strip_spacing``). So "Less style" / "More style" on a result lands on a strength its
strip already painted,
and a tile's label, a button's label and a request's strength are the same number. No torch here: the bot
imports this module.
"""

from __future__ import annotations

MIN_STRENGTH = 1
MAX_STRENGTH = 10
DEFAULT_STRENGTH = 5
# A strip shows at most every strength once.
MAX_VARIANTS = MAX_STRENGTH - MIN_STRENGTH + 1


def check_strength(strength: int) -> int:
    if not MIN_STRENGTH <= strength <= MAX_STRENGTH:
        raise ValueError(f"strength must be between {MIN_STRENGTH} and {MAX_STRENGTH}, not {strength}")
    return strength


def style_factor(strength: int, relative_to: int = DEFAULT_STRENGTH) -> float:
    """How many times the style weight of ``relative_to`` the strength ``strength`` carries."""
    return 2.0 ** (strength - relative_to)


def strip_spacing(variants: int) -> int:
    """How many strengths apart a strip's neighbouring tiles are: 2 when the strip still fits in 1..10 (five
    tiles show 1, 3, 5, 7, 9: neighbours one doubling apart looked nearly alike), else 1."""
    if variants <= 1:
        return 1
    return min(2, (MAX_STRENGTH - MIN_STRENGTH) // (variants - 1))


def strip_strengths(strength: int, variants: int) -> tuple[int, ...]:
    """``variants`` strengths ``strip_spacing(variants)`` apart around ``strength``, shifted by whole spacings
    to stay within 1..10 (five tiles for 5 or 8: 1, 3, 5, 7, 9 and 2, 4, 6, 8, 10), so every tile is a strength a
    user can ask for and "Less" / "More" (one spacing) land on a tile the strip already painted."""
    check_strength(strength)
    if not 1 <= variants <= MAX_VARIANTS:
        raise ValueError(f"variants must be between 1 and {MAX_VARIANTS}, not {variants}")
    spacing = strip_spacing(variants)
    first = strength - spacing * ((variants - 1) // 2)
    while first + spacing * (variants - 1) > MAX_STRENGTH:
        first -= spacing
    while first < MIN_STRENGTH:
        first += spacing
    return tuple(range(first, first + spacing * variants, spacing))


def step_strength(strength: int, delta: int) -> int | None:
    """The strength one button press away, or None when it would leave the allowed range."""
    stepped = strength + delta
    return stepped if MIN_STRENGTH <= stepped <= MAX_STRENGTH else None


def strength_label(strength: int) -> str:
    """A tile's label in the strip; the bot's buttons name the same number."""
    return f"Strength {strength}"
