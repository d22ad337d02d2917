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
from .quadratic import fit_quadratic
from .scans import (
    Eigentune,
    PosteriorSamples,
    Profile,
    Profile2D,
    eigentunes,
    profile_1d,
    profile_2d,
    sample_posterior,
)
from .surface import FunctionSurface, GPSurface, RealCoordinates, Surface, minuit_fit

if TYPE_CHECKING:
    from .result import Result

__all__ = ["Uncertainty", "estimate_uncertainty", "RealCoordinates", "minuit_fit",
           "uncertainty_from_minuit", "near_limits", "Eigentune", "PosteriorSamples", "Profile",
           "Profile2D"]


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
    minos : dict
        MINOS asymmetric intervals ``{name: (lower, upper)}`` (``lower < 0``), when
        requested; ``minos_valid`` says whether each was found inside the bounds.
    rescaled : bool
        The covariance was multiplied by ``scale_factor = fun / ndf`` (> 1), PDG-style,
        because the minimum chi2 per degree of freedom is above one.
    surface : Surface
        The function that was minimised (profiles, eigentunes and posterior sampling use it).
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
    limits: list[tuple[float, float]] = field(default_factory=list, repr=False)
    minos: dict[str, tuple[float, float]] = field(default_factory=dict)
    minos_valid: dict[str, bool] = field(default_factory=dict)
    rescaled: bool = False
    scale_factor: float = 1.0
    surface: Any = field(default=None, repr=False)

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
        if self.rescaled:
            flags.append(f"rescaled by chi2/ndf={self.scale_factor:.3g}")
        lines = [f"Uncertainty(fun={self.fun:.6g}, " + ", ".join(flags) + ")"]
        for n in self.names:
            line = f"  {n:<{width}} = {self.x[n]:.6g} +- {self.errors[n]:.3g}"
            if n in self.minos:
                lo, hi = self.minos[n]
                line += f"  (MINOS {lo:+.3g} / {hi:+.3g}"
                line += ")" if self.minos_valid.get(n, True) else ", at a bound)"
            lines.append(line)
        return "\n".join(lines)

    # -------------------------------------------------------------- derived scans
    def _require_surface(self) -> Surface:
        if self.surface is None:
            raise BayestuneError("this Uncertainty has no surface to scan (built by hand?)")
        return self.surface  # type: ignore[no-any-return]

    def profile(self, name: str, n_points: int = 25, span: float = 3.0) -> Profile:
        """Delta-chi2 profile of one parameter: the others minimised at each value.

        The scan covers ``x +- span * error`` clipped to the bounds. ``delta`` is in units
        of the objective (``Delta chi2`` for ``errordef=1``).
        """
        return profile_1d(self, name, n_points=n_points, span=span)

    def profiles(self, n_points: int = 25, span: float = 3.0) -> dict[str, Profile]:
        """:meth:`profile` of every varied parameter."""
        return {n: self.profile(n, n_points, span) for n in self.names}

    def profile2d(self, x: str, y: str, n_points: int = 15, span: float = 3.0) -> Profile2D:
        """Delta-chi2 on a grid of two parameters, the others minimised at each node."""
        return profile_2d(self, x, y, n_points=n_points, span=span)

    def eigentunes(self, delta: float | None = None) -> list[Eigentune]:
        """Professor-style eigentunes: shifts along each covariance eigenvector, both ways,
        until the objective rises by ``delta`` (default ``errordef``) on the surface."""
        return eigentunes(self, delta)

    def sample_posterior(self, n_samples: int = 4000, **kwargs: Any) -> PosteriorSamples:
        """Posterior samples of ``exp(-(f - f_min) / (2 errordef))``: see
        :func:`sample_posterior`."""
        return sample_posterior(self, n_samples, **kwargs)


def estimate_uncertainty(
    result: Result,
    errordef: float = 1.0,
    *,
    start: dict[str, Any] | None = None,
    n_bootstrap: int = 0,
    seed: int | None = 0,
    minos: bool = False,
    rescale: bool = False,
    ndf: int | None = None,
    surface: str = "gp",
    n_points: int | None = None,
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
    minos : bool
        Also run MINOS for asymmetric intervals (``Uncertainty.minos``).
    rescale : bool
        Multiply the covariance by ``chi2_min / ndf`` when that exceeds one (flagged as
        ``rescaled``). Needs ``ndf`` or an objective that reports ``info["ndf"]``.
    ndf : int, optional
        Degrees of freedom of the chi2 (default: ``info["ndf"]`` of the evaluations).
    surface : {"gp", "quadratic"}
        What is minimised: the GP surrogate's posterior mean (default), or a weighted
        least-squares quadratic through the evaluations near the lowest one
        (:func:`~bayestune.quadratic.fit_quadratic`). The quadratic suits noisy chi2 values
        near a well-sampled minimum (for example after :func:`refine`); the covariance of its
        coefficients gives the location part of the covariance analytically (delta method),
        so ``n_bootstrap`` is not used, and ``fun_std`` is the fit's standard deviation of the
        rise at one sigma (its constant term does not enter the errors).
    n_points : int, optional
        Evaluations in the quadratic fit (default: those within ten noise sd of the lowest
        value, see :func:`~bayestune.quadratic.fit_quadratic`).

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
    if surface not in ("gp", "quadratic"):
        raise ValueError(f"surface must be 'gp' or 'quadratic', got surface={surface!r}")
    if rescale and ndf is None:
        ndfs = [t.info["ndf"] for t in result.history.completed if "ndf" in t.info]
        if not ndfs:
            raise ValueError("rescale=True needs ndf= (the evaluations report no info['ndf'])")
        ndf = int(ndfs[-1])
    if surface == "quadratic":
        return _quadratic_uncertainty(result, errordef, start=start, minos=minos,
                                      ndf=ndf if rescale else None, n_points=n_points)
    return _gp_uncertainty(result, errordef, start=start, n_bootstrap=n_bootstrap, seed=seed,
                           minos=minos, ndf=ndf if rescale else None)


def _gp_uncertainty(result: Result, errordef: float, *, start: dict[str, Any] | None,
                    n_bootstrap: int, seed: int | None, minos: bool,
                    ndf: int | None) -> Uncertainty:
    """Minimum and covariance of the GP surrogate's posterior mean (plus the spread of the
    minima of ``n_bootstrap`` resampled surrogates)."""
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
    return uncertainty_from_minuit(m, x0, limits, errordef, fun_std=std, covariance_extra=cov_s,
                                   surface=GPSurface(surrogate, to_unit), minos=minos, ndf=ndf)


def _quadratic_uncertainty(result: Result, errordef: float, *, start: dict[str, Any] | None,
                           minos: bool, ndf: int | None, n_points: int | None) -> Uncertainty:
    """Minimum and covariance of a quadratic fitted to the lowest evaluations."""
    space = result.space
    x0 = dict(start if start is not None else result.x)
    coords = RealCoordinates(space, x0)
    names = coords.names
    others = {n: v for n, v in x0.items() if n not in names}
    trials = [t for t in result.history.completed
              if all(t.params.get(n) == v for n, v in others.items())]
    quad = fit_quadratic(trials, names, n_points=n_points)
    if not quad.positive_definite:
        raise BayestuneError(
            f"the quadratic through the {quad.n_points} evaluations near the minimum has no "
            f"minimum (Hessian eigenvalues {np.linalg.eigvalsh(quad.hessian())}): evaluate "
            f"more points around it (refine(tuner, delta='noise', surface='quadratic')) or "
            f"use surface='gp'"
        )
    limits = [(float(d.low), float(d.high)) for d in coords.dims]
    lo, hi = np.array(limits).T
    begin = np.array([float(x0[n]) for n in names])
    # start at the quadratic's own minimum (clipped into the bounds)
    own = begin - np.linalg.solve(quad.hessian(), quad.gradient_design(begin) @ quad.coef)
    m = minuit_fit(quad, names, list(np.clip(own, lo, hi)), limits, errordef)
    values = np.array(m.values)
    cov_loc = quad.location_covariance(values)
    cov_h = np.array(m.covariance) if m.covariance is not None else None
    rise = quad.rise_std(values, cov_h) if cov_h is not None and np.all(np.isfinite(cov_h)) \
        else float("inf")
    return uncertainty_from_minuit(m, x0, limits, errordef, fun_std=rise,
                                   covariance_extra=cov_loc, surface=quad, minos=minos, ndf=ndf)


def estimate_or_gp(result: Result, errordef: float, start: dict[str, Any] | None,
                    options: dict[str, Any]) -> Uncertainty:
    """:func:`estimate_uncertainty` with the keyword arguments in ``options`` (and
    ``start``); with ``surface="quadratic"``, falls back to the GP surface (same options,
    ``n_points`` dropped) when the quadratic cannot be fitted, has no minimum, or puts it
    at (or within half a sigma of) a bound -- a local model is not trusted there. Check
    ``isinstance(unc.surface, QuadraticSurface)`` to see which was used."""
    opts = dict(options)
    if start is not None:
        opts["start"] = start
    if opts.get("surface", "gp") == "quadratic":
        try:
            unc = estimate_uncertainty(result, errordef, **opts)
        except BayestuneError:
            unc = None
        if (unc is not None and unc.hessian_positive_definite and not unc.at_limit
                and np.all(np.isfinite(unc.covariance))):
            return unc
        opts["surface"] = "gp"
        opts.pop("n_points", None)
    return estimate_uncertainty(result, errordef, **opts)


def near_limits(names: Sequence[str], x: Sequence[float],
                limits: Sequence[tuple[float, float]], errors: dict[str, float]) -> list[str]:
    """The ``names`` whose values ``x`` lie within half an error of a limit."""
    return [n for n, v, (lo, hi) in zip(names, x, limits) if min(v - lo, hi - v) < 0.5 * errors[n]]


def uncertainty_from_minuit(
    m: Any, base: dict[str, Any], limits: Sequence[tuple[float, float]], errordef: float, *,
    fun_std: float, covariance_extra: np.ndarray | None = None, surface: Surface | None = None,
    minos: bool = False, ndf: int | None = None, covariance_hessian: np.ndarray | None = None,
    minimum: tuple[Sequence[float] | np.ndarray, float] | None = None,
) -> Uncertainty:
    """An :class:`Uncertainty` from a finished :func:`minuit_fit` (plus an extra covariance).

    ``surface`` is the minimised function (default: Minuit's own); ``minos`` runs MINOS;
    ``ndf`` rescales the covariance by ``fval / ndf`` when that exceeds one;
    ``covariance_hessian`` replaces HESSE's covariance (a corrected one); ``minimum``
    (values, function value) replaces MIGRAD's (a refined one).
    """
    names = list(m.parameters)
    k = len(names)
    values, fval = (list(m.values), float(m.fval)) if minimum is None else minimum
    if surface is None:
        surface = FunctionSurface(lambda X: np.array([m.fcn(list(row)) for row in X]))
    if covariance_hessian is not None:
        cov_h = np.asarray(covariance_hessian, dtype=float)
    elif m.covariance is not None:
        cov_h = np.array(m.covariance)
    else:
        cov_h = np.full((k, k), np.nan)
    cov_s = np.zeros((k, k)) if covariance_extra is None else covariance_extra
    scale = 1.0
    if ndf is not None:
        if ndf < 1:
            raise ValueError(f"ndf must be >= 1 to rescale, got ndf={ndf!r}")
        scale = max(1.0, fval / ndf)
    cov = (cov_h + cov_s) * scale
    merrors: dict[str, tuple[float, float]] = {}
    mvalid: dict[str, bool] = {}
    if minos and m.valid:
        m.minos()
        for n in names:
            me = m.merrors[n]
            merrors[n] = (float(me.lower) * math.sqrt(scale), float(me.upper) * math.sqrt(scale))
            mvalid[n] = bool(me.is_valid and not (me.at_lower_limit or me.at_upper_limit))
    x = dict(base)
    x.update({n: float(v) for n, v in zip(names, values)})
    errors = {n: float(math.sqrt(max(cov[i, i], 0.0))) for i, n in enumerate(names)}
    at_limit = near_limits(names, [x[n] for n in names], limits, errors)
    return Uncertainty(
        x=x, errors=errors, covariance=cov, names=names, fun=float(fval), fun_std=fun_std,
        errordef=float(errordef), valid=bool(m.valid),
        hessian_positive_definite=bool(m.fmin.has_posdef_covar) if m.fmin else False,
        at_limit=at_limit, covariance_hessian=cov_h, covariance_surrogate=cov_s, minuit=m,
        limits=list(limits), minos=merrors, minos_valid=mvalid, rescaled=scale > 1.0,
        scale_factor=scale, surface=surface,
    )


def __getattr__(name: str) -> Any:
    # refine (rounds of evaluations) lives in .refinement, which imports this module
    if name == "refine":
        from .refinement import refine
        return refine
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
