"""Strength, the one knob users turn: 1 (a hint of the painting) to 10 (mostly painting).

Each step doubles or halves the style weight around the configured base, so that "More style" always looks
like a comparable change: style_weight = base_style_weight * 2 ** (strength - 5).
"""

from __future__ import annotations

MIN_STRENGTH = 1
MAX_STRENGTH = 10
NEUTRAL_STRENGTH = 5


def style_weight_for(base_style_weight: float, strength: int) -> float:
    if not MIN_STRENGTH <= strength <= MAX_STRENGTH:
        raise ValueError(f"strength must be between {MIN_STRENGTH} and {MAX_STRENGTH}, not {strength}")
    return base_style_weight * 2.0 ** (strength - NEUTRAL_STRENGTH)


def step_strength(strength: int, delta: int) -> int | None:
    """The strength one button press away, or None when it would leave the allowed range."""
    stepped = strength + delta
    return stepped if MIN_STRENGTH <= stepped <= MAX_STRENGTH else None
