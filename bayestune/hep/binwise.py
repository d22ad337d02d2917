"""Bin-by-bin polynomial surrogates of simulated histograms (the Professor method).

A chi2 summed over a hundred bins is a noisy function with a huge dynamic range; each bin's
prediction, by contrast, is a smooth, nearly quadratic function of the parameters near a good
tune. :func:`fit_binwise` fits every bin's simulated value with a quadratic polynomial in the
real parameters (weighted least squares with the bins' MC errors, over the ``n_points``
evaluations with the lowest chi2), and :class:`BinwiseModel` rebuilds the chi2 from those
polynomials::

    chi2(theta) = sum_o w_o sum_b w_ob (p_b(theta) - d_b)^2 / (sigma_d^2 + sigma_p^2 + (f d)^2)

where ``sigma_p`` is the polynomial's own prediction error (scaled up when the fit is poor).
Its minimum and HESSE covariance (:meth:`BinwiseModel.uncertainty`) average the MC noise of
all fitted evaluations, which a surrogate of the summed chi2 cannot resolve when that noise is
far above Delta chi2 = 1. The evaluations must carry their bins: build the objective with
``HistogramObjective(..., keep_bins=True)``.

Polynomials are trusted only inside the box spanned by the fitted points; a minimum on that
box's edge is reported in ``at_limit``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..exceptions import BayestuneError
from ..history import History
from ..quadratic import quadratic_features
from ..space import Real, Space
from ..uncertainty import Uncertainty, minuit_fit, uncertainty_from_minuit
from .chi2 import HistogramObjective

__all__ = ["BinwiseModel", "fit_binwise"]


@dataclass
class _BinFit:
    coef: np.ndarray  # (n_bins, p)
    cov: np.ndarray  # (n_bins, p, p)


class BinwiseModel:
    """Quadratic per-bin models of an objective's histograms and the chi2 built from them.

    Use :func:`fit_binwise` to construct one.
    """

    def __init__(self, space: Space, objective: HistogramObjective, dims: list[Real],
                 centre: np.ndarray, scale: np.ndarray, fits: dict[str, _BinFit],
                 box: tuple[np.ndarray, np.ndarray], n_points: int, fixed: dict[str, Any]):
        self.space = space
        self.objective = objective
        self._used = objective.used_bins()
        self.dims = dims
        self.names = [d.name for d in dims]
        self._centre = centre
        self._scale = scale
        self._fits = fits
        self.box = box
        self.n_points = n_points
        self._fixed = fixed

    def _u(self, values: np.ndarray) -> np.ndarray:
        return (np.atleast_2d(values) - self._centre) / self._scale

    def predict(
        self, values: Sequence[float] | np.ndarray
    ) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """Predicted bin values and their errors at the real parameters ``values``."""
        f = quadratic_features(self._u(np.asarray(values, dtype=float)))[0]
        out = {}
        for name, fit in self._fits.items():
            mean = fit.coef @ f
            var = np.einsum("p,bpq,q->b", f, fit.cov, f)
            out[name] = (mean, np.sqrt(np.maximum(var, 0.0)))
        return out

    def chi2(self, values: Sequence[float] | np.ndarray) -> tuple[float, float]:
        """The rebuilt chi2 and its standard deviation from the polynomials' errors."""
        used, f = self._used, self.objective.model_uncertainty
        predictions = self.predict(values)
        pred = used.flatten({n: p for n, (p, _) in predictions.items()})
        err = used.flatten({n: e for n, (_, e) in predictions.items()})
        v = used.errors**2 + err**2 + (f * used.data) ** 2
        r = pred - used.data
        total = float(np.sum(used.weights * r**2 / v))
        var = float(np.sum(used.weights**2 * 4.0 * r**2 * err**2 / v**2))
        return total, math.sqrt(var)

    def uncertainty(self, errordef: float = 1.0,
                    start: Sequence[float] | None = None) -> Uncertainty:
        """Minimise the rebuilt chi2 inside the fitted box; HESSE covariance."""
        lo, hi = self.box
        x0 = np.clip(self._centre if start is None else np.asarray(start, float), lo, hi)

        def fcn(*values: float) -> float:
            return self.chi2(values)[0]

        limits = list(zip(lo, hi))
        m = minuit_fit(fcn, self.names, list(x0), limits, errordef)
        return uncertainty_from_minuit(m, self._fixed, limits, errordef,
                                       fun_std=self.chi2(np.array(m.values))[1])


def fit_binwise(
    history: History, space: Space, objective: HistogramObjective, *,
    n_points: int | None = None,
) -> BinwiseModel:
    """Fit quadratic per-bin models to the evaluations with the lowest chi2.

    Parameters
    ----------
    history : History
        Completed trials whose ``info["bins"]`` holds the simulated bins.
    space : Space
        Only its real parameters are modelled; others are held at the best trial's values.
    objective : HistogramObjective
        Reference data, weights and model uncertainty of the chi2.
    n_points : int, optional
        Number of lowest-chi2 trials to fit (default: twice the number of coefficients,
        at most all trials with bins).
    """
    dims = [d for d in space if isinstance(d, Real)]
    if not dims:
        raise BayestuneError("fit_binwise needs at least one Real parameter")
    trials = [t for t in history.completed if "bins" in t.info]
    if not trials:
        raise BayestuneError(
            "no trial carries its bins: build the objective with keep_bins=True"
        )
    k = len(dims)
    n_coef = 1 + k + k * (k + 1) // 2
    n_use = min(len(trials), n_points or 2 * n_coef)
    if n_use < n_coef + 2:
        raise BayestuneError(
            f"a quadratic in {k} parameters needs at least {n_coef + 2} evaluations with bins, "
            f"got {n_use}"
        )
    trials = sorted(trials, key=lambda t: float(t.value))[:n_use]  # type: ignore[arg-type]
    X = np.array([[float(t.params[d.name]) for d in dims] for t in trials])
    centre = X.mean(axis=0)
    scale = np.maximum(X.max(axis=0) - X.min(axis=0), 1e-12)
    A = quadratic_features((X - centre) / scale)
    names = list(trials[0].info["bins"])
    fits = {}
    for name in names:
        vals = np.array([t.info["bins"][name][0] for t in trials], dtype=float)  # (n, bins)
        errs = np.array([t.info["bins"][name][1] for t in trials], dtype=float)
        errs = np.maximum(errs, 1e-12 * np.maximum(np.abs(vals).max(), 1.0))
        n_bins = vals.shape[1]
        coef = np.empty((n_bins, n_coef))
        cov = np.empty((n_bins, n_coef, n_coef))
        for b in range(n_bins):
            w = 1.0 / errs[:, b] ** 2
            AtW = A.T * w
            normal = AtW @ A
            cov_b = np.linalg.pinv(normal)
            beta = cov_b @ (AtW @ vals[:, b])
            resid = vals[:, b] - A @ beta
            red = float(np.sum(w * resid**2)) / (n_use - n_coef)
            coef[b] = beta
            cov[b] = cov_b * max(red, 1.0)  # a poor fit widens its own errors
        fits[name] = _BinFit(coef, cov)
    best = trials[0].params
    fixed = {n: v for n, v in best.items() if n not in {d.name for d in dims}}
    box = (np.maximum(X.min(axis=0), [d.low for d in dims]),
           np.minimum(X.max(axis=0), [d.high for d in dims]))
    return BinwiseModel(space, objective, dims, centre, scale, fits, box, n_use, fixed)
