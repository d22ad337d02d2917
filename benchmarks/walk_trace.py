"""Trace the local rounds of a generator tune for the replay scripts (``diag_walk_*.py``).

Imports only what every commit of the method has, so that a replay runs with the checkout
of the series it replays on ``PYTHONPATH``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from bayestune.hep.tuning import refine


def trace_rounds(after: Callable[[Any, Any, int], None], skip: str | None = None) -> None:
    """Make every local round print its new walk log lines (those containing ``skip``
    left out), then call ``after(stages, walk, round)``."""
    plain = refine.LocalStages._round

    def traced(self: Any, walk: Any, r: int) -> None:
        n = len(walk.log)
        plain(self, walk, r)
        for line in walk.log[n:]:
            if skip is None or skip not in line:
                print(line, flush=True)
        after(self, walk, r)

    refine.LocalStages._round = traced  # type: ignore[method-assign]


def minimum_from_centre(stages: Any, walk: Any) -> tuple[np.ndarray, np.ndarray, float]:
    """The round's fit's minimum, its covariance, and the minimum's Delta chi2 from the next
    round's centre under that covariance (nan when the covariance is not finite)."""
    unc = walk.unc
    minimum = np.array([unc.x[d.name] for d in stages.dims])
    cov = np.asarray(unc.covariance, dtype=float)
    rest = minimum - walk.centre
    beyond = float(rest @ np.linalg.pinv(cov) @ rest) if np.all(np.isfinite(cov)) else np.nan
    return minimum, cov, beyond
