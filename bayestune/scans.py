"""Scans of an objective surface around its minimum: profiles, eigentunes, posterior samples.

Every function takes an :class:`~bayestune.Uncertainty` (the minimum, its covariance and the
:class:`~bayestune.surface.Surface` that was minimised) and returns plain result objects in
physical units. The ``delta`` of a profile is in the objective's own units: ``Delta chi2``
for a chi2 (``errordef = 1``), ``Delta(-ln L)`` for a negative log-likelihood
(``errordef = 0.5``); the one-sigma interval is where it crosses ``errordef``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
from scipy.optimize import brentq

from .exceptions import BayestuneError
from .surface import Surface, minuit_fit

if TYPE_CHECKING:
    from .uncertainty import Uncertainty

__all__ = ["Profile", "Profile2D", "Eigentune", "PosteriorSamples", "profile_1d",
           "profile_2d", "eigentunes", "sample_posterior"]


# ----------------------------------------------------------------------- profiles
@dataclass
class Profile:
    """A one-parameter profile: ``delta[i]`` = min over the others of f at ``values[i]``,
    minus the global minimum.

    Attributes
    ----------
    name : str
    values, delta : ndarray, shape (n,)
    errordef : float
    best : float
        Parameter value at the minimum of the profile.
    """

    name: str
    values: np.ndarray
    delta: np.ndarray
    errordef: float
    best: float

    def interval(self, level: float | None = None) -> tuple[float, float]:
        """Where ``delta`` crosses ``level`` (default ``errordef``) left and right of the
        minimum, by linear interpolation; ``nan`` where the scan never reaches it."""
        level = self.errordef if level is None else float(level)
        i0 = int(np.argmin(self.delta))
        lo = _crossing(self.values[: i0 + 1][::-1], self.delta[: i0 + 1][::-1], level)
        hi = _crossing(self.values[i0:], self.delta[i0:], level)
        return lo, hi

    def errors(self, level: float | None = None) -> tuple[float, float]:
        """Asymmetric errors ``(lower - best, upper - best)`` (lower is negative)."""
        lo, hi = self.interval(level)
        return lo - self.best, hi - self.best


def _crossing(x: np.ndarray, y: np.ndarray, level: float) -> float:
    """First point where ``y`` (starting below ``level``) rises through ``level``."""
    above = np.nonzero(y >= level)[0]
    if len(above) == 0 or above[0] == 0:
        return math.nan
    j = int(above[0])
    x0, x1, y0, y1 = x[j - 1], x[j], y[j - 1], y[j]
    return float(x0 + (level - y0) * (x1 - x0) / (y1 - y0))


@dataclass
class Profile2D:
    """Delta of the objective on a grid of two parameters (others minimised).

    ``delta`` has shape ``(len(x_values), len(y_values))``.
    """

    x_name: str
    y_name: str
    x_values: np.ndarray
    y_values: np.ndarray
    delta: np.ndarray
    errordef: float


class _Profiler:
    """Minimises the surface with some parameters fixed, warm-starting from the last point."""

    def __init__(self, unc: Uncertainty) -> None:
        self.unc = unc
        self.surface = unc._require_surface()
        self.names = list(unc.names)
        self.start = np.array([unc.x[n] for n in self.names], dtype=float)

    def scan_range(self, name: str, n_points: int, span: float) -> np.ndarray:
        i = self.names.index(name)
        lo, hi = self.unc.limits[i]
        err = self.unc.errors[name]
        if not (math.isfinite(err) and err > 0):
            err = 0.1 * (hi - lo)
        centre = self.unc.x[name]
        return np.linspace(max(lo, centre - span * err), min(hi, centre + span * err), n_points)

    def minimum_with(self, fixed: dict[str, float], start: np.ndarray) -> tuple[float, np.ndarray]:
        free = [n for n in self.names if n not in fixed]
        point = start.copy()
        for n, v in fixed.items():
            point[self.names.index(n)] = v
        if not free:
            return float(self.surface.values(point[None, :])[0]), point
        m = minuit_fit(self.surface, self.names, list(point), self.unc.limits,
                       self.unc.errordef, hesse=False, fixed=list(fixed))
        return float(m.fval), np.array(m.values)

    def sweep(self, grid: list[dict[str, float]]) -> np.ndarray:
        """Profile values along an ordered list of fixed-parameter settings."""
        out = np.empty(len(grid))
        current = self.start
        for j, fixed in enumerate(grid):
            out[j], current = self.minimum_with(fixed, current)
        return out


def profile_1d(unc: Uncertainty, name: str, *, n_points: int = 25,
               span: float = 3.0) -> Profile:
    """Profile of ``name`` over ``x +- span * error`` (clipped to its bounds)."""
    if name not in unc.names:
        raise BayestuneError(f"cannot profile {name!r}: varied parameters are {unc.names}")
    if n_points < 3:
        raise ValueError(f"n_points must be >= 3, got n_points={n_points!r}")
    prof = _Profiler(unc)
    values = prof.scan_range(name, n_points, span)
    centre = int(np.argmin(np.abs(values - unc.x[name])))
    # sweep outwards from the minimum both ways, so each fit starts next to its answer
    right = prof.sweep([{name: float(v)} for v in values[centre:]])
    left = prof.sweep([{name: float(v)} for v in values[:centre][::-1]])[::-1]
    fvals = np.concatenate([left, right])
    fmin = min(unc.fun, float(np.min(fvals)))
    return Profile(name, values, fvals - fmin, unc.errordef, float(values[np.argmin(fvals)]))


def profile_2d(unc: Uncertainty, x: str, y: str, *, n_points: int = 15,
               span: float = 3.0) -> Profile2D:
    """Profile on an ``n_points x n_points`` grid of ``x`` and ``y``."""
    for name in (x, y):
        if name not in unc.names:
            raise BayestuneError(f"cannot profile {name!r}: varied parameters are {unc.names}")
    if x == y:
        raise ValueError(f"profile_2d needs two different parameters, got x=y={x!r}")
    prof = _Profiler(unc)
    xs, ys = prof.scan_range(x, n_points, span), prof.scan_range(y, n_points, span)
    delta = np.empty((len(xs), len(ys)))
    for i, xv in enumerate(xs):
        order = range(len(ys)) if i % 2 == 0 else range(len(ys) - 1, -1, -1)  # snake
        cells = [{x: float(xv), y: float(ys[j])} for j in order]
        delta[i, list(order)] = prof.sweep(cells)
    fmin = min(unc.fun, float(np.min(delta)))
    return Profile2D(x, y, xs, ys, delta - fmin, unc.errordef)


# ----------------------------------------------------------------------- eigentunes
@dataclass
class Eigentune:
    """The pair of tunes along one eigenvector of the covariance.

    Attributes
    ----------
    index : int
        Eigenvector number (0 = largest eigenvalue, the weakest-constrained direction).
    eigenvalue : float
    direction : dict
        Unit eigenvector, per parameter.
    plus, minus : dict
        Full parameter points where the objective has risen by ``delta``.
    reached : tuple of bool
        Whether ``delta`` was reached inside the bounds (else the point is on a bound).
    """

    index: int
    eigenvalue: float
    direction: dict[str, float]
    plus: dict[str, Any]
    minus: dict[str, Any]
    delta: float
    reached: tuple[bool, bool] = (True, True)


def eigentunes(unc: Uncertainty, delta: float | None = None) -> list[Eigentune]:
    """Shift along each covariance eigenvector until the surface rises by ``delta``."""
    delta = unc.errordef if delta is None else float(delta)
    if not (math.isfinite(delta) and delta > 0):
        raise ValueError(f"delta must be > 0, got delta={delta!r}")
    cov = np.asarray(unc.covariance, dtype=float)
    if not np.all(np.isfinite(cov)):
        raise BayestuneError("eigentunes need a finite covariance (the Hessian failed)")
    surface = unc._require_surface()
    centre = np.array([unc.x[n] for n in unc.names])
    lo = np.array([lim[0] for lim in unc.limits])
    hi = np.array([lim[1] for lim in unc.limits])
    evals, evecs = np.linalg.eigh(cov)
    out = []
    for rank, j in enumerate(np.argsort(evals)[::-1]):
        step = math.sqrt(max(evals[j], 1e-300)) * evecs[:, j]
        points, reached = [], []
        for sign in (1.0, -1.0):
            row, ok = shift_until_rise(surface, centre, sign * step, unc.fun + delta, lo, hi)
            point = dict(unc.x)
            point.update({n: float(v) for n, v in zip(unc.names, row)})
            points.append(point)
            reached.append(ok)
        out.append(Eigentune(rank, float(evals[j]),
                             {n: float(v) for n, v in zip(unc.names, evecs[:, j])},
                             points[0], points[1], delta, (reached[0], reached[1])))
    return out


def shift_until_rise(
    surface: Surface, centre: np.ndarray, step: np.ndarray, level: float, lo: np.ndarray,
    hi: np.ndarray, t_cap: float = 10.0,
) -> tuple[np.ndarray, bool]:
    """The point ``centre + t step`` (``0 < t <= t_cap``, inside the box) where the surface
    reaches ``level``; returns it and whether ``level`` was reached (else the last point)."""
    t_max = max_step_in_box(centre, step, lo, hi, t_cap)

    def rise(t: float) -> float:
        return surface(*(centre + t * step)) - level

    if rise(t_max) < 0:
        return centre + t_max * step, False
    t = brentq(rise, 0.0, t_max, xtol=1e-6 * max(t_max, 1e-12)) if rise(0.0) < 0 else 0.0
    return centre + t * step, True


def max_step_in_box(centre: np.ndarray, step: np.ndarray, lo: np.ndarray, hi: np.ndarray,
                    t_cap: float = 10.0) -> float:
    """Largest ``t <= t_cap`` with ``centre + t * step`` inside the box."""
    t = t_cap
    for c, s, a, b in zip(centre, step, lo, hi):
        if s > 0:
            t = min(t, (b - c) / s)
        elif s < 0:
            t = min(t, (a - c) / s)
    return max(t, 0.0)


# ----------------------------------------------------------------------- posterior
@dataclass
class PosteriorSamples:
    """Samples of ``exp(-(f - f_min) / (2 errordef)) x prior`` over the real parameters.

    Attributes
    ----------
    names : list of str
    samples : ndarray, shape (n, k)
    n_surrogates : int
        Surrogate replicas the samples are pooled from (their spread is the surrogate's
        own uncertainty).
    acceptance_fraction : float
        Mean acceptance fraction of the emcee walkers.
    """

    names: list[str]
    samples: np.ndarray
    n_surrogates: int = 1
    acceptance_fraction: float = math.nan
    errordef: float = 1.0
    extra: dict[str, Any] = field(default_factory=dict, repr=False)

    @property
    def mean(self) -> dict[str, float]:
        return {n: float(v) for n, v in zip(self.names, self.samples.mean(axis=0))}

    @property
    def covariance(self) -> np.ndarray:
        return np.atleast_2d(np.cov(self.samples, rowvar=False))

    def interval(self, name: str, level: float = 0.6827) -> tuple[float, float]:
        """Equal-tailed credible interval of one parameter."""
        if not 0 < level < 1:
            raise ValueError(f"level must be in (0, 1), got level={level!r}")
        col = self.samples[:, self.names.index(name)]
        q = np.quantile(col, [(1 - level) / 2, (1 + level) / 2])
        return float(q[0]), float(q[1])

    def credible_intervals(self, level: float = 0.6827) -> dict[str, tuple[float, float]]:
        return {n: self.interval(n, level) for n in self.names}

    def __repr__(self) -> str:
        lines = [f"PosteriorSamples({len(self.samples)} samples from {self.n_surrogates} "
                 f"surrogate replica(s), acceptance {self.acceptance_fraction:.2f})"]
        width = max(len(n) for n in self.names)
        for n in self.names:
            lo, hi = self.interval(n)
            lines.append(f"  {n:<{width}} mean {self.mean[n]:.6g}, 68% [{lo:.6g}, {hi:.6g}]")
        return "\n".join(lines)


def sample_posterior(
    unc: Uncertainty,
    n_samples: int = 4000,
    *,
    n_surrogates: int = 8,
    n_walkers: int | None = None,
    burn: int = 300,
    log_prior: Callable[[dict[str, float]], float] | None = None,
    seed: int | None = 0,
) -> PosteriorSamples:
    """Sample the posterior of the real parameters with emcee on the surface.

    The likelihood is ``exp(-(f - f_min) / (2 errordef))`` (``exp(-chi2/2)`` for a chi2),
    the prior uniform inside the bounds times ``exp(log_prior(point))``. With
    ``n_surrogates > 1`` and a GP surface the chains run on that many bootstrap replicas
    of the surrogate and are pooled, so the samples also carry the surrogate's own
    uncertainty about where the minimum is.

    Parameters
    ----------
    unc : Uncertainty
    n_samples : int
        Samples returned (pooled over replicas).
    n_surrogates : int
    n_walkers : int, optional
        Default ``max(16, 4 k)``.
    burn : int
        Steps discarded per chain.
    log_prior : callable, optional
        ``log_prior({name: value}) -> float`` (``-inf`` to exclude).
    seed : int, optional
    """
    import emcee

    if not isinstance(n_samples, int) or n_samples < 10:
        raise ValueError(f"n_samples must be an integer >= 10, got n_samples={n_samples!r}")
    if not isinstance(n_surrogates, int) or n_surrogates < 1:
        raise ValueError(f"n_surrogates must be >= 1, got n_surrogates={n_surrogates!r}")
    surface = unc._require_surface()
    names, k = list(unc.names), len(unc.names)
    lo = np.array([lim[0] for lim in unc.limits])
    hi = np.array([lim[1] for lim in unc.limits])
    walkers = n_walkers or max(16, 4 * k)
    walkers += walkers % 2
    rng = np.random.default_rng(seed)
    centre = np.array([unc.x[n] for n in names])
    cov = np.asarray(unc.covariance, dtype=float)
    spread = np.sqrt(np.clip(np.diag(cov), 0, None)) if np.all(np.isfinite(cov)) else \
        np.zeros(k)
    spread = np.where(spread > 0, spread, 0.01 * (hi - lo))
    per_replica = math.ceil(n_samples / n_surrogates)
    steps = burn + math.ceil(per_replica / walkers)
    pooled, acceptance = [], []
    replicas = surface.replicas(n_surrogates, rng) if n_surrogates > 1 else iter([surface])
    for replica in replicas:
        def log_prob(X: np.ndarray, replica: Any = replica) -> np.ndarray:
            X = np.atleast_2d(X)
            out = np.full(len(X), -np.inf)
            inside = np.all((X >= lo) & (X <= hi), axis=1)
            if np.any(inside):
                f = replica.values(X[inside])
                lp = -(f - unc.fun) / (2.0 * unc.errordef)
                if log_prior is not None:
                    lp = lp + np.array([log_prior(dict(zip(names, row))) for row in X[inside]])
                out[inside] = lp
            return out

        start = np.clip(centre + 0.5 * spread * rng.standard_normal((walkers, k)),
                        lo + 1e-9 * (hi - lo), hi - 1e-9 * (hi - lo))
        sampler = emcee.EnsembleSampler(walkers, k, log_prob, vectorize=True)
        sampler.random_state = np.random.RandomState(int(rng.integers(2**31))).get_state()
        sampler.run_mcmc(start, steps, progress=False)
        chain = sampler.get_chain(discard=burn, flat=True)
        pooled.append(chain[-per_replica:])
        acceptance.append(float(np.mean(sampler.acceptance_fraction)))
    samples = np.concatenate(pooled)[:n_samples]
    return PosteriorSamples(names, samples, n_surrogates, float(np.mean(acceptance)),
                            unc.errordef)
