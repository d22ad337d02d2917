"""Uncertainties of tuned parameters from the surrogate of a chi2 (or -ln L) surface.

:func:`estimate_uncertainty` minimises the GP posterior mean of the objective with iminuit's
MIGRAD inside the bounds of the space and takes HESSE's covariance at that minimum: the usual
``Delta chi2 = 1`` (``errordef=1``) or ``Delta(-ln L) = 0.5`` (``errordef=0.5``) errors. Only
real parameters are varied; integer and categorical parameters stay at the recommended point.
All numbers are in physical units (a log-scale parameter is varied in its own units, so its
error is an error on the value, not on its logarithm).

The Hessian covers the statistical uncertainty of the data. A surrogate fitted to a finite
number of noisy evaluations also locates its minimum only approximately; with
``n_bootstrap > 0`` that spread is measured by a parametric bootstrap (the surrogate is refitted,
hyperparameters fixed, to the evaluations shifted by draws of their noise, and its minimum
found again) and added to the Hessian covariance. For noisy objectives such as a chi2 from
finite Monte Carlo statistics this term often dominates, and leaving it out makes pulls too
wide.

The flags say whether the numbers can be trusted: the minimum is valid, the Hessian is positive
definite, no parameter sits at a bound, and the surrogate resolves ``Delta chi2 = errordef`` at
the minimum (its posterior standard deviation of the objective there is below ``errordef``).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from .exceptions import BayestuneError
from .space import Real

if TYPE_CHECKING:
    from .result import Result

__all__ = ["Uncertainty", "estimate_uncertainty", "RealCoordinates", "minuit_fit",
           "uncertainty_from_minuit"]


@dataclass
class Uncertainty:
    """Parameter estimates and their covariance from the surrogate's minimum.

    Attributes
    ----------
    x : dict
        Minimum of the surrogate mean (all parameters; non-real ones as recommended).
    errors : dict
        One-sigma HESSE errors of the real parameters.
    covariance : ndarray, shape (k, k)
        Covariance of the real parameters, in the order of ``names``: ``covariance_hessian``
        plus ``covariance_surrogate``.
    covariance_hessian : ndarray, shape (k, k)
        HESSE covariance of the surrogate mean at its minimum.
    covariance_surrogate : ndarray, shape (k, k)
        Spread of the minimum over bootstrap replicas of the surrogate (zeros without).
    names : list of str
        The real (varied) parameters.
    fun : float
        Surrogate mean at the minimum.
    fun_std : float
        Surrogate posterior standard deviation of the objective at the minimum.
    errordef : float
    valid : bool
        MIGRAD converged to a valid minimum.
    hessian_positive_definite : bool
    at_limit : list of str
        Parameters whose minimum is at (or within 0.5 sigma of) a bound.
    """

    x: dict[str, Any]
    errors: dict[str, float]
    covariance: np.ndarray
    names: list[str]
    fun: float
    fun_std: float
    errordef: float
    valid: bool
    hessian_positive_definite: bool
    at_limit: list[str] = field(default_factory=list)
    covariance_hessian: np.ndarray | None = field(default=None, repr=False)
    covariance_surrogate: np.ndarray | None = field(default=None, repr=False)
    minuit: Any = field(default=None, repr=False)

    @property
    def correlation(self) -> np.ndarray:
        """Correlation matrix, shape (k, k)."""
        sd = np.sqrt(np.diag(self.covariance))
        with np.errstate(invalid="ignore", divide="ignore"):
            return self.covariance / np.outer(sd, sd)

    @property
    def surrogate_accurate(self) -> bool:
        """The surrogate's own uncertainty at the minimum is below ``errordef``."""
        return bool(self.fun_std < self.errordef)

    @property
    def trustworthy(self) -> bool:
        """All flags good."""
        return (self.valid and self.hessian_positive_definite and not self.at_limit
                and self.surrogate_accurate)

    def __repr__(self) -> str:
        width = max([len(n) for n in self.names] + [4])
        flags = [
            f"valid={self.valid}",
            f"hessian_positive_definite={self.hessian_positive_definite}",
            f"surrogate_accurate={self.surrogate_accurate} (std {self.fun_std:.3g} vs "
            f"errordef {self.errordef:g})",
        ]
        if self.at_limit:
            flags.append(f"at_limit={self.at_limit}")
        lines = [f"Uncertainty(fun={self.fun:.6g}, " + ", ".join(flags) + ")"]
        for n in self.names:
            lines.append(f"  {n:<{width}} = {self.x[n]:.6g} +- {self.errors[n]:.3g}")
        return "\n".join(lines)


def estimate_uncertainty(
    result: Result,
    errordef: float = 1.0,
    *,
    start: dict[str, Any] | None = None,
    n_bootstrap: int = 0,
    seed: int | None = 0,
) -> Uncertainty:
    """Hessian uncertainties of a finished tune from its surrogate.

    Parameters
    ----------
    result : Result
        A finished tune with a fitted surrogate (``result.surrogate``).
    errordef : float
        1 for a chi2, 0.5 for a negative log-likelihood.
    start : dict, optional
        Starting point for MIGRAD (default: ``result.x``).
    n_bootstrap : int
        Bootstrap replicas of the surrogate used to add the uncertainty of locating the
        minimum from noisy evaluations (0: Hessian only; 20-50 is typical).
    seed : int, optional
        Seed of the bootstrap draws.

    Returns
    -------
    Uncertainty
    """
    if not (isinstance(errordef, (int, float)) and math.isfinite(errordef) and errordef > 0):
        raise ValueError(f"errordef must be > 0, got errordef={errordef!r}")
    if not isinstance(n_bootstrap, int) or n_bootstrap < 0 or n_bootstrap == 1:
        raise ValueError(
            f"n_bootstrap must be 0 or an integer >= 2, got n_bootstrap={n_bootstrap!r}"
        )
    surrogate = result.surrogate
    if surrogate is None or not surrogate.is_fitted:
        raise BayestuneError(
            "estimate_uncertainty needs a result with a fitted surrogate "
            "(at least two completed evaluations with the GP engine)"
        )
    space = result.space
    x0 = dict(start if start is not None else result.x)
    to_unit = RealCoordinates(space, x0)
    names = to_unit.names

    def surrogate_mean(model: Any) -> Callable[..., float]:
        def mean(*values: float) -> float:
            return float(model.predict(to_unit(np.asarray(values))[None, :])[0][0])

        return mean

    limits = [(d.low, d.high) for d in to_unit.dims]
    m = minuit_fit(surrogate_mean(surrogate), names, [float(x0[n]) for n in names], limits,
                   errordef)
    values = np.array(m.values)
    k = len(names)
    cov_s = np.zeros((k, k))
    if n_bootstrap:
        rng = np.random.default_rng(seed)
        minima = [
            np.array(minuit_fit(surrogate_mean(surrogate.resampled(rng)), names, list(values),
                                limits, errordef, hesse=False).values)
            for _ in range(n_bootstrap)
        ]
        cov_s = np.atleast_2d(np.cov(np.array(minima), rowvar=False))
    std = float(surrogate.predict(to_unit(values)[None, :])[1][0])
    return uncertainty_from_minuit(m, x0, limits, errordef, fun_std=std, covariance_extra=cov_s)


class RealCoordinates:
    """Maps values of a space's real parameters to a full unit-cube row.

    The other parameters stay at their values in ``base``. ``names`` and ``dims`` list the
    real parameters in space order.
    """

    def __init__(self, space: Any, base: dict[str, Any]) -> None:
        self.dims = [d for d in space if isinstance(d, Real)]
        if not self.dims:
            raise BayestuneError("uncertainties need at least one Real parameter")
        self.names = [d.name for d in self.dims]
        self._base = space.to_unit(space.validate(base))
        self._cols = [space.columns_of(n).start for n in self.names]

    def __call__(self, values: np.ndarray) -> np.ndarray:
        u = self._base.copy()
        for c, d, v in zip(self._cols, self.dims, values):
            u[c] = d.encode(float(v))[0]
        return u


def minuit_fit(
    fcn: Callable[..., float], names: list[str], start: Sequence[float],
    limits: Sequence[tuple[float, float]], errordef: float, *, hesse: bool = True,
) -> Any:
    """MIGRAD (then HESSE) of ``fcn(*values)`` inside ``limits``; returns the Minuit object."""
    from iminuit import Minuit

    m = Minuit(fcn, *start, name=names)
    m.errordef = errordef
    for n, (lo, hi) in zip(names, limits):
        m.limits[n] = (lo, hi)
        m.errors[n] = 0.05 * (hi - lo)
    m.migrad()
    if hesse:
        m.hesse()
    return m


def uncertainty_from_minuit(
    m: Any, base: dict[str, Any], limits: Sequence[tuple[float, float]], errordef: float, *,
    fun_std: float, covariance_extra: np.ndarray | None = None,
) -> Uncertainty:
    """An :class:`Uncertainty` from a finished :func:`minuit_fit` (plus an extra covariance)."""
    names = list(m.parameters)
    k = len(names)
    cov_h = np.array(m.covariance) if m.covariance is not None else np.full((k, k), np.nan)
    cov_s = np.zeros((k, k)) if covariance_extra is None else covariance_extra
    cov = cov_h + cov_s
    x = dict(base)
    x.update({n: float(v) for n, v in zip(names, m.values)})
    errors = {n: float(math.sqrt(max(cov[i, i], 0.0))) for i, n in enumerate(names)}
    at_limit = [n for n, (lo, hi) in zip(names, limits)
                if min(x[n] - lo, hi - x[n]) < 0.5 * errors[n]]
    return Uncertainty(
        x=x, errors=errors, covariance=cov, names=names, fun=float(m.fval), fun_std=fun_std,
        errordef=float(errordef), valid=bool(m.valid),
        hessian_positive_definite=bool(m.fmin.has_posdef_covar) if m.fmin else False,
        at_limit=at_limit, covariance_hessian=cov_h, covariance_surrogate=cov_s, minuit=m,
    )
