"""Output warpings of the GP surrogate: ``w(y)``, fitted to the observed values.

The surrogate models ``z = (w(y) - m) / s``; a log warping lets one GP describe a chi2 that
spans orders of magnitude between its walls and its valley floor.
"""

from __future__ import annotations

import numpy as np

__all__ = ["IdentityWarp", "LogWarp", "PositiveLogWarp", "warp_candidates"]


class IdentityWarp:
    """``w(y) = y``."""

    def fit(self, y: np.ndarray) -> IdentityWarp:
        return self

    def forward(self, y: np.ndarray) -> np.ndarray:
        return np.asarray(y, dtype=float)

    def inverse(self, w: np.ndarray) -> np.ndarray:
        return np.asarray(w, dtype=float)

    def derivative(self, y: np.ndarray) -> np.ndarray:
        """``dw/dy`` at ``y``."""
        return np.ones_like(np.asarray(y, dtype=float))


class LogWarp:
    """``w(y) = ln(y - y_min + c)`` with ``c = fraction * (median(y) - y_min)``.

    A small ``fraction`` resolves values close to the minimum; a large one is closer to
    the identity.
    """

    def __init__(self, fraction: float = 0.1) -> None:
        self.fraction = float(fraction)
        self.shift = 0.0

    def fit(self, y: np.ndarray) -> LogWarp:
        y = np.asarray(y, dtype=float)
        lo, med = float(np.min(y)), float(np.median(y))
        c = self.fraction * (med - lo)
        if not c > 0:
            c = max(1e-3 * (float(np.max(y)) - lo), 1e-12 * max(abs(lo), 1.0), 1e-300)
        self.shift = c - lo
        return self

    def forward(self, y: np.ndarray) -> np.ndarray:
        # values below the fitted minimum (new data) are floored, never NaN
        return np.log(np.maximum(np.asarray(y, dtype=float) + self.shift, 1e-300))

    def inverse(self, w: np.ndarray) -> np.ndarray:
        return np.exp(np.asarray(w, dtype=float)) - self.shift

    def derivative(self, y: np.ndarray) -> np.ndarray:
        return 1.0 / np.maximum(np.asarray(y, dtype=float) + self.shift, 1e-300)


class PositiveLogWarp(LogWarp):
    """``w(y) = ln(y)`` for positive objectives with a natural zero, such as a chi2.

    Unlike :class:`LogWarp`, no shift relative to the observed minimum is added, so the
    valley floor of a chi2 (values of order ndf) keeps its resolution while the steep walls
    (values of order 10^4) are compressed. Falls back to :class:`LogWarp` if any value is <= 0.
    """

    def fit(self, y: np.ndarray) -> LogWarp:
        y = np.asarray(y, dtype=float)
        if float(np.min(y)) > 0:
            self.shift = 0.0
            return self
        return super().fit(y)


#: the log warping adds this fraction of (median - min) before taking the logarithm.
#: It is fixed, not fitted: the likelihood of a fitted shift is unbounded as it goes to 0.
LOG_SHIFT_FRACTION = 0.1


def warp_candidates(option: str | None) -> list[tuple[str | None, IdentityWarp | LogWarp]]:
    """The output warpings a fit tries for the ``warping`` option, with their labels."""
    if option is None:
        return [(None, IdentityWarp())]
    if option == "log":
        return [("log", LogWarp(LOG_SHIFT_FRACTION))]
    if option == "chi2":
        return [("chi2", PositiveLogWarp(LOG_SHIFT_FRACTION))]
    return [(None, IdentityWarp()), ("log", LogWarp(LOG_SHIFT_FRACTION))]
