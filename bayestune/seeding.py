"""Random seeds of simulations derived from the parameter point, stable across machines.

A simulator that seeds its random numbers from the point it is run at gives the same
histograms whenever the same point comes back (a resumed campaign, a replayed design). Seeding
from the exact bits of the floating-point values would make the noise a chaotic function of
the point: two machines whose BLAS libraries round differently propose points that agree to
nine or ten significant digits, not to the last bit, and with exact-bit seeds every one of
those evaluations would draw entirely different noise, so the whole campaign would diverge.
:func:`point_seed` reads each value only to ``digits`` significant digits (default 6), far
below any physical resolution of a tuned parameter and far above the round-off of a
proposal, so the noise depends smoothly on where the optimiser went, not on how it rounded.

Two points closer than that share their noise; a seed flip remains possible when a value
lies within round-off of a rounding boundary (a chance of about the relative round-off over
1e-6 per coordinate), which is why tests judge behaviour with margins, not exact numbers.
"""

from __future__ import annotations

import hashlib
import json
import numbers
from collections.abc import Mapping
from typing import Any

import numpy as np

__all__ = ["KEY_DIGITS", "point_key", "point_rng", "point_seed"]

KEY_DIGITS = 6  # significant digits of a parameter value that enter its seed


def _key_value(name: str, value: Any, digits: int) -> str:
    if isinstance(value, (bool, np.bool_, str)):
        return repr(value)
    if isinstance(value, numbers.Integral):
        return repr(int(value))
    if isinstance(value, numbers.Real):
        x = float(value)
        if x == 0.0:  # -0.0 and 0.0 are the same point
            return "0"
        return f"{x:.{digits - 1}e}"
    raise TypeError(f"cannot derive a seed from parameter {name!r} = {value!r} "
                    f"of type {type(value).__name__}")


def point_key(params: Mapping[str, Any], digits: int = KEY_DIGITS) -> str:
    """Canonical text of a parameter point: names sorted, reals to ``digits`` significant
    digits, integers and categories exactly."""
    if not isinstance(digits, (int, np.integer)) or isinstance(digits, bool) or not (
            1 <= digits <= 17):
        raise ValueError(f"digits must be an integer in [1, 17], got digits={digits!r}")
    return json.dumps({str(k): _key_value(str(k), v, int(digits))
                       for k, v in sorted(dict(params).items())})


def point_seed(seed: int, params: Mapping[str, Any], digits: int = KEY_DIGITS) -> int:
    """A 64-bit seed from a base ``seed`` and the point's :func:`point_key`."""
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got seed={seed!r}")
    text = f"{int(seed)}|{point_key(params, digits)}"
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "little")


def point_rng(seed: int, params: Mapping[str, Any],
              digits: int = KEY_DIGITS) -> np.random.Generator:
    """A generator seeded by :func:`point_seed`."""
    return np.random.default_rng(point_seed(seed, params, digits))
