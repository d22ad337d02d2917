"""A trust region for the acquisition search (TuRBO-style, Eriksson et al. 2019).

In many dimensions the posterior variance far from the data stays large wherever the points
are not, and an acquisition function maximised over the whole box keeps proposing distant
corners. A trust region limits the search to a box around the incumbent whose size follows
the campaign: it doubles after ``success_tolerance`` improvements in a row, halves after
``failure_tolerance`` proposals in a row that did not improve, and starts again at
``length_init`` once it has shrunk below ``length_min``. Its side along dimension ``i`` is
``length * l_i / geomean(l)``: long along the directions in which the surrogate varies slowly.

The state is not stored: :func:`trust_region_length` replays it from the values of the
completed trials in the order they were proposed (trial number), so a resumed campaign, or
one whose parallel evaluations finished out of order, continues with the same box.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from .exceptions import BayestuneError

__all__ = ["TrustRegionConfig", "trust_region_length", "trust_region_box"]


@dataclass(frozen=True)
class TrustRegionConfig:
    """Options of the trust region (validated on construction).

    Parameters
    ----------
    length_init, length_min, length_max : float
        Initial, smallest and largest side length (before the length-scale weighting), in
        unit-cube units; below ``length_min`` the region restarts at ``length_init``.
    success_tolerance : int
        Improvements in a row that double the side.
    failure_tolerance : int or None
        Proposals in a row without improvement that halve it; ``None``: ``max(4, d)``.
    improvement : float
        Relative improvement of the best value that counts as a success.
    """

    length_init: float = 0.8
    length_min: float = 0.5**7
    length_max: float = 1.6
    success_tolerance: int = 3
    failure_tolerance: int | None = None
    improvement: float = 1e-3

    def __post_init__(self) -> None:
        lengths = (self.length_min, self.length_init, self.length_max)
        if not all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
                   for v in lengths) or not 0.0 < self.length_min < self.length_init \
                <= self.length_max:
            raise BayestuneError(
                "trust region lengths must satisfy 0 < length_min < length_init <= length_max, "
                f"got length_min={self.length_min!r}, length_init={self.length_init!r}, "
                f"length_max={self.length_max!r}")
        if not isinstance(self.success_tolerance, int) or self.success_tolerance < 1:
            raise BayestuneError("success_tolerance must be a positive integer, got "
                                 f"success_tolerance={self.success_tolerance!r}")
        if self.failure_tolerance is not None and (
                not isinstance(self.failure_tolerance, int) or self.failure_tolerance < 1):
            raise BayestuneError("failure_tolerance must be a positive integer or None, got "
                                 f"failure_tolerance={self.failure_tolerance!r}")
        if not (isinstance(self.improvement, (int, float)) and 0.0 <= self.improvement < 1.0):
            raise BayestuneError("improvement must be a number in [0, 1), got "
                                 f"improvement={self.improvement!r}")


def trust_region_length(values: Sequence[float], counted: Sequence[bool], dim: int,
                        config: TrustRegionConfig) -> float:
    """The side length after the evaluations ``values`` (in the order they were proposed).

    ``counted[i]`` says whether evaluation ``i`` was proposed inside the trust region (the
    initial design and user points only set the incumbent).
    """
    fail_tol = config.failure_tolerance or max(4, dim)
    length, successes, failures = config.length_init, 0, 0
    best = math.inf
    for value, count in zip(values, counted, strict=True):
        improved = value < best - config.improvement * abs(best) if math.isfinite(best) \
            else True
        best = min(best, value)
        if not count:
            continue
        successes, failures = (successes + 1, 0) if improved else (0, failures + 1)
        if successes >= config.success_tolerance:
            length, successes = min(2.0 * length, config.length_max), 0
        elif failures >= fail_tol:
            length, failures = length / 2.0, 0
            if length < config.length_min:
                length = config.length_init
    return length


def trust_region_box(center: np.ndarray, lengthscales: np.ndarray,
                     length: float) -> tuple[np.ndarray, np.ndarray]:
    """Lower and upper corners of the region around ``center`` in the unit cube."""
    ls = np.asarray(lengthscales, dtype=float)
    weights = ls / math.exp(float(np.mean(np.log(ls))))
    half = 0.5 * length * weights
    lo = np.clip(center - half, 0.0, 1.0)
    hi = np.clip(center + half, 0.0, 1.0)
    return lo, hi
