"""How report sections print their numbers."""

from __future__ import annotations

import math


def percent(value: float | None) -> str:
    """A share in percent with two decimals, 'n/a' where there is none (None or NaN)."""
    return "n/a" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{100 * value:.2f}"
