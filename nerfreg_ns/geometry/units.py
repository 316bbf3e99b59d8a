"""Length units: which exist, their size in millimetres (BOP's unit), and transforms rescaled.

Nothing is rescaled silently: a length whose unit is unknown stays in its own unit, and writers
that need millimetres (BOP) ask for the unit and refuse without it.
"""

from __future__ import annotations

from typing import Literal, Optional, get_args

import numpy as np

from nerfreg_ns.errors import NerfregError

Unit = Literal["mm", "cm", "m", "in"]
UNITS: tuple[str, ...] = get_args(Unit)
UNIT_TO_MM: dict[str, float] = dict(zip(UNITS, (1.0, 10.0, 1000.0, 25.4)))


def mm_per_unit(unit: Optional[str]) -> float:
    """Millimetres in one `unit`; a clear error for an unknown or missing unit."""
    if unit not in UNIT_TO_MM:
        said = "no unit" if unit is None else f"unknown unit '{unit}'"
        raise NerfregError(f"{said} (known: {', '.join(UNITS)})")
    return UNIT_TO_MM[unit]


def check_unit(unit: Optional[str]) -> Optional[str]:
    """`unit` itself if it is known or None, else a clear error."""
    if unit is not None:
        mm_per_unit(unit)
    return unit


def scale_T(T_a_b: np.ndarray, factor: float) -> np.ndarray:
    """A rigid transform (4, 4) with lengths multiplied by `factor` (its translation), i.e. the
    same motion written in another unit: S T S^-1 with S = diag(factor, factor, factor, 1)."""
    T = np.array(T_a_b, dtype=float)
    T[:3, 3] *= factor
    return T
