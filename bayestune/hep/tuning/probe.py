"""The valley probe: evaluations along the flattest direction of the chi2 through an estimate.

Local rounds walk along a valley a region at a time. A flat valley can stop them in a
shallow dip far from the data's minimum, and a bound can stop them at its far end. A probe
spends one round along the covariance's major axis -- from bound to bound through the
estimate, or away from a bound the estimate sits on or near -- fits each bin along that line
with a polynomial in the position, and profiles the chi2 of those bins over shifts across
the line (a straight line leaves a curved valley's floor). When that chi2 is lower somewhere
along the line than at the estimate, the walk moves there.
"""

from __future__ import annotations

import numpy as np

from ...history import Trial
from ...space import Real
from ...uncertainty import Uncertainty
from ..binfits import _data_denominators, _used_bins_of, filled_errors
from ..chi2 import HistogramObjective
from .options import ProbeStage
from .regions import coordinates

__all__ = ["line_minimum", "valley_line"]


def valley_line(unc: Uncertainty, dims: list[Real], lo: np.ndarray, hi: np.ndarray,
                max_extent: float, options: ProbeStage
                ) -> tuple[np.ndarray, np.ndarray, tuple[float, float], np.ndarray] | None:
    """The line along the valley through the minimum: its origin (the minimum), direction
    (the covariance's major axis, of unit length in units of the parameter ranges), the
    steps along it to the bounds, and the other axes (columns, ``(k, k - 1)``, each one
    standard deviation long). From a minimum on or near a parameter bound (within
    ``options.near_bound`` errors and ``max_extent`` of the range) the line points away from the
    bound and starts at the minimum; otherwise it runs from bound to bound. ``None`` when
    the covariance is unusable, when the line stays within ``max_extent`` of the ranges (the
    rounds' own reach) on both sides, and, off the bounds, when the valley is not flat:
    that reach spans more than ``options.flat_valley`` errors along it (its quadratic rises by
    more than ``options.flat_valley ** 2`` there, and a lower minimum beyond would have to lie
    behind a high ridge, which the global search sees)."""
    x = np.array([unc.x[d.name] for d in dims])
    span = hi - lo
    cov = np.asarray(unc.covariance, dtype=float)
    if not np.all(np.isfinite(cov)):
        return None
    vals, vecs = np.linalg.eigh(cov / np.outer(span, span))
    if np.any(vals <= 0):
        return None
    direction = vecs[:, -1] * span
    across = vecs[:, :-1] * np.sqrt(vals[:-1]) * span[:, None]
    near = np.minimum(options.near_bound * np.sqrt(np.diag(cov)),
                      max_extent * span) + 1e-6 * span
    below = x - lo <= np.minimum(near, hi - x)
    above = ~below & (hi - x <= near)
    inward = np.where(below, direction, 0.0) - np.where(above, direction, 0.0)
    on_bound = bool(np.any(below | above))
    if not on_bound and options.flat_valley * np.sqrt(vals[-1]) <= max_extent:
        return None  # the chi2 rises steeply within the rounds' reach
    if (inward.sum() if on_bound else direction[np.argmax(np.abs(vecs[:, -1]))]) < 0:
        direction = -direction

    def room(d: np.ndarray) -> float:
        with np.errstate(divide="ignore", invalid="ignore"):
            steps = np.where(d > 0, (hi - x) / d, np.where(d < 0, (lo - x) / d, np.inf))
        return max(float(np.min(steps)), 0.0)

    ahead = room(direction)
    behind = 0.0 if on_bound else room(-direction)
    if not np.isfinite(ahead + behind) or max(ahead, behind) <= max_extent:
        return None
    return x, direction, (-behind, ahead), across


def line_minimum(trials: list[Trial], dims: list[Real], origin: np.ndarray,
                 direction: np.ndarray, jacobian: np.ndarray, objective: HistogramObjective,
                 degree: int = 3, n_replicas: int = 200
                 ) -> tuple[float, np.ndarray, float, float] | None:
    """The minimum along a line of the chi2 of the bins fitted by cubics in the position on
    it (data-only denominators, the fits' noise subtracted), profiled over shifts ``delta``
    across the line with the bins' derivatives ``jacobian`` ``(B, m)`` taken as constant
    (a straight line leaves a curved valley's floor). Returns its step from ``origin``, the
    shift, how much lower it is than at ``origin`` and that gain's noise (from replicas of
    the fits). ``None`` when there are too few trials for a cubic with residuals, or their
    positions do not span the line."""
    if len(trials) < degree + 2:
        return None
    used = objective.used_bins()
    X = coordinates(trials, dims)
    s = (X - origin) @ direction / float(direction @ direction)
    if np.ptp(s) <= 0:
        return None
    scale = float(np.max(np.abs(s)))
    powers = np.arange(degree + 1)
    A = (s / scale)[:, None] ** powers  # (n, p)
    Y, E = _used_bins_of(trials, used)
    E = filled_errors(E)
    W = 1.0 / E**2  # (n, B)
    cov = np.linalg.pinv(np.einsum("np,nb,nq->bpq", A, W, A))  # (B, p, p)
    coef = np.einsum("bpq,nq,nb->bp", cov, A, W * Y)  # (B, p)
    vals, vecs = np.linalg.eigh(cov)
    roots = vecs * np.sqrt(np.maximum(vals, 0.0))[:, None, :]
    grid = np.linspace(min(0.0, s.min()), max(0.0, s.max()), 201)
    G = (grid / scale)[:, None] ** powers  # (g, p)
    noise = np.einsum("gp,bpq,gq->gb", G, cov, G)  # the fits' variance along the line
    w = used.weights / _data_denominators(used, objective)  # (B,)
    J = np.asarray(jacobian, dtype=float)
    solve = np.linalg.pinv((J.T * w) @ J) @ (J.T * w)  # (m, B)

    def chi2_along(c: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        r = G @ c.T - used.data  # (g, B)
        shift = -r @ solve.T  # (g, m): the best shift across the line at each step
        return np.sum(w * ((r + shift @ J.T) ** 2 - noise), axis=1), shift

    values, shifts = chi2_along(coef)
    i0, best = int(np.argmin(np.abs(grid))), int(np.argmin(values))
    rng = np.random.default_rng(0)
    gains = []
    for _ in range(n_replicas):
        along, _ = chi2_along(coef + np.einsum("bpq,bq->bp", roots, rng.normal(size=coef.shape)))
        gains.append(along[i0] - along[best])
    return (float(grid[best]), shifts[best], float(values[i0] - values[best]),
            float(np.std(gains, ddof=1)))
