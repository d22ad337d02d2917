"""Bin-by-bin polynomial surrogates of simulated histograms (the Professor method).

A chi2 summed over a hundred bins is a noisy function with a huge dynamic range; each bin's
prediction, by contrast, is a smooth, nearly quadratic function of the parameters near a good
tune. :func:`fit_binwise` fits every bin's simulated value with a quadratic polynomial in the
real parameters (bin by bin, or reduced-rank: all bins together through their leading
principal components), and :class:`BinwiseModel` rebuilds the chi2 from those polynomials::

    chi2(theta) = sum_o w_o sum_b w_ob (p_b(theta) - d_b)^2 / (sigma_d^2 + (f d)^2)

with the data's errors only. Its minimum and covariance (:meth:`BinwiseModel.uncertainty`:
HESSE plus the spread of the minima of replicas of the fits) average the MC noise of all
fitted evaluations, which a surrogate of the summed chi2 cannot resolve when that noise is far
above Delta chi2 = 1. :func:`refine_binwise` spends evaluations on a local design for it, round
by round. The evaluations must carry their bins: build the objective with
``HistogramObjective(..., keep_bins=True)``.

Polynomials are trusted only inside the box spanned by the fitted points: the minimum is
searched there, and one within half an error of its edge is reported in ``at_limit``.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.stats import chi2 as chi2_dist
from scipy.stats import qmc

from ..exceptions import BayestuneError
from ..history import History, Trial
from ..quadratic import feature_gradient, n_quadratic_terms, near_lowest, quadratic_features
from ..space import Real, Space
from ..uncertainty import Uncertainty, minuit_fit, uncertainty_from_minuit
from .chi2 import HistogramObjective

__all__ = ["BinwiseModel", "binwise_round_size", "fit_binwise", "refine_binwise"]

_log = logging.getLogger(__name__)


@dataclass
class _BinFit:
    coef: np.ndarray  # (n_bins, p)
    cov: np.ndarray  # (n_bins, p, p)


class BinwiseModel:
    """Quadratic per-bin models of an objective's histograms and the chi2 built from them.

    Use :func:`fit_binwise` to construct one.

    Attributes
    ----------
    box : tuple of arrays
        Lower and upper corners of the fitted points (the minimum is searched there).
    debiased : bool
        Whether the fits' own noise is subtracted from the chi2 (a fit with ``basis``).
    max_leverage : float
        The largest leverage of the fitted points (infinite unless debiased): the chi2 is
        trusted where :meth:`leverage` is below it.
    lack_of_fit : float
        For a debiased model, the residuals of the quadratics over what the MC noise leaves
        of them (about 1 when the bins are quadratic over the fitted points; 1 otherwise).
        Above 1, the replicas' noise is scaled up by it, so that a region too wide for
        quadratics widens the errors (a PDG-style scale factor).
    """

    def __init__(self, space: Space, objective: HistogramObjective, dims: list[Real],
                 centre: np.ndarray, scale: np.ndarray, fits: dict[str, _BinFit],
                 box: tuple[np.ndarray, np.ndarray], n_points: int, fixed: dict[str, Any],
                 draw: Callable[[np.random.Generator], dict[str, np.ndarray]] | None = None,
                 design: np.ndarray | None = None, lack_of_fit: float = 1.0):
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
        self._draw = draw if draw is not None else self._draw_per_bin
        # with ``design`` (the fitted trials' features) the fits' noise is subtracted from the
        # chi2, and the chi2 is trusted only where the design's leverage is no larger than at
        # its own most exposed point
        self.debiased = design is not None
        self.lack_of_fit = lack_of_fit
        self._den = _data_denominators(self._used, objective)
        self._noise_form = self._fit_noise_form()
        self._gram: np.ndarray | None = None
        self.max_leverage = math.inf
        if design is not None:
            self._gram, self.max_leverage = _design_leverage(design)

    def _fit_noise_form(self) -> np.ndarray:
        """``M`` with ``f(theta)^T M f(theta) = sum_b w_b Var(p_b(theta)) / D_b``: what the
        fits' noise adds to the chi2 of the fitted bins on average, a quadratic form in the
        features."""
        used = self._used
        cov = used.flatten({n: fit.cov for n, fit in self._fits.items() if n in used.masks})
        return np.asarray(np.einsum("b,bpq->pq", used.weights / self._den, cov))

    def leverage(self, values: Sequence[float] | np.ndarray) -> float:
        """The fitted design's leverage at ``values`` (a prediction's variance in units of
        one evaluation's noise); 0 for a model that is not debiased."""
        if self._gram is None:
            return 0.0
        feat = quadratic_features(self._u(np.asarray(values, dtype=float)))[0]
        return float(feat @ self._gram @ feat)

    def fit_noise(self, values: Sequence[float] | np.ndarray) -> float:
        """What the fits' own noise adds to the chi2 of the fitted bins at ``values`` on
        average, ``sum_b w_b Var(p_b(theta)) / D_b`` (subtracted when debiased)."""
        feat = quadratic_features(self._u(np.asarray(values, dtype=float)))[0]
        return float(feat @ self._noise_form @ feat)

    def _u(self, values: np.ndarray) -> np.ndarray:
        return (np.atleast_2d(values) - self._centre) / self._scale

    def used_jacobian(self, values: Sequence[float] | np.ndarray,
                      directions: np.ndarray) -> np.ndarray:
        """Derivatives ``(B, m)`` of the chi2's used bins (flattened as in the chi2) at
        ``values`` along the columns of ``directions`` ``(k, m)`` (real parameters' units;
        exact for the quadratics)."""
        x = np.asarray(values, dtype=float)
        cols = []
        for v in np.asarray(directions, dtype=float).T:
            up, down = self.predict(x + v), self.predict(x - v)
            cols.append(self._used.flatten({n: 0.5 * (up[n][0] - down[n][0]) for n in up}))
        return np.column_stack(cols)

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

    def _chi2_of(self, coef: dict[str, np.ndarray], values: Sequence[float] | np.ndarray,
                 wall: bool = True, noise: float = 1.0) -> float:
        """The chi2 of the bins ``coef`` predicts (less ``noise`` times the fits' noise when
        debiased, with a steep wall beyond the design's largest leverage unless ``wall`` is
        false)."""
        used = self._used
        feat = quadratic_features(self._u(np.asarray(values, dtype=float)))[0]
        pred = used.flatten({n: c @ feat for n, c in coef.items()})
        value = float(np.sum(used.weights * (pred - used.data) ** 2 / self._den))
        if self._gram is None:
            return value
        value -= noise * float(feat @ self._noise_form @ feat)
        excess = float(feat @ self._gram @ feat) / self.max_leverage - 1.0
        return value + 1e4 * excess**2 if wall and excess > 0 else value

    def chi2(self, values: Sequence[float] | np.ndarray) -> tuple[float, float]:
        """The chi2 of the fitted bins against the data (data errors and the model floor in
        the denominators) and its standard deviation from the fits' errors (bins taken as
        independent).

        For a debiased model (:func:`fit_binwise` with ``basis``) the fits' own noise,
        ``sum_b w_b Var(p_b(theta)) / D_b`` on average, is subtracted: least at the centre of
        the fitted points and growing towards their edges, it would otherwise pull the
        minimum towards the centre of the evaluations.
        """
        used = self._used
        predictions = self.predict(values)
        pred = used.flatten({n: p for n, (p, _) in predictions.items()})
        err = used.flatten({n: e for n, (_, e) in predictions.items()})
        v = self._den
        r = pred - used.data
        total = self._chi2_of({n: fit.coef for n, fit in self._fits.items()}, values,
                              wall=False)
        var = float(np.sum(used.weights**2 * 4.0 * r**2 * err**2 / v**2))
        return total, math.sqrt(var)

    def _draw_per_bin(self, rng: np.random.Generator) -> dict[str, np.ndarray]:
        out = {}
        for name, fit in self._fits.items():
            vals, vecs = np.linalg.eigh(fit.cov)  # (B, p), (B, p, p)
            root = vecs * np.sqrt(np.maximum(vals, 0.0))[:, None, :]
            out[name] = fit.coef + np.einsum("bpq,bq->bp", root, rng.normal(size=fit.coef.shape))
        return out

    def uncertainty(self, errordef: float = 1.0,
                    start: Sequence[float] | np.ndarray | None = None, *,
                    n_replicas: int = 40, seed: int | None = 0) -> Uncertainty:
        """Minimise the chi2 of the fitted bins inside the fitted box.

        The covariance is HESSE's (the data's errors) plus the spread of the minima of
        ``n_replicas`` replicas of the fits (the MC noise of the fitted evaluations; 0 leaves
        it out): drawn from the fits' covariance, or for a debiased model refitted -- the
        directions included -- to the fitted bins plus new MC noise. The replicas' spread
        of the chi2 at the minimum is ``fun_std``. HESSE's curvature is that of the debiased
        chi2 without the box's limits or the leverage wall for a debiased model (so that a
        minimum on an edge keeps the errors its surroundings give), and corrected for the
        fitted gradients' noise otherwise.
        """
        lo, hi = self.box
        x0 = np.clip(self._centre if start is None else np.asarray(start, float), lo, hi)
        coef = {n: fit.coef for n, fit in self._fits.items()}

        def fcn(*values: float) -> float:
            return self._chi2_of(coef, values)

        limits = list(zip(lo, hi))
        m = minuit_fit(fcn, self.names, list(x0), limits, errordef)
        best = np.array(m.values)
        rng = np.random.default_rng(seed)
        minima, at_best = [], []
        # a debiased replica carries the fit's noise and its own (scaled by the lack of fit):
        # both are subtracted, so that the replicas' minima scatter about this minimum
        subtract = 1.0 + max(self.lack_of_fit, 1.0) if self.debiased else 1.0
        for _ in range(n_replicas):
            replica = self._draw(rng)
            at_best.append(self._chi2_of(replica, best))
            r = minuit_fit(lambda *v, c=replica: self._chi2_of(c, v, noise=subtract), self.names,
                           list(best), limits, errordef, hesse=False)
            minima.append(np.array(r.values))
        extra = np.cov(np.array(minima).T).reshape(len(best), len(best)) \
            if n_replicas > 1 else None
        fun_std = float(np.std(at_best, ddof=1)) if n_replicas > 1 else self.chi2(best)[1]
        hessian = self._free_hessian(coef, best, errordef) if self.debiased \
            else self._debiased(m, best)
        return uncertainty_from_minuit(m, self._fixed, limits, errordef, fun_std=fun_std,
                                       covariance_extra=extra, covariance_hessian=hessian)

    def _free_hessian(self, coef: dict[str, np.ndarray], best: np.ndarray,
                      errordef: float) -> np.ndarray | None:
        """HESSE's covariance of the chi2 at ``best`` without limits or the leverage wall
        (``None`` when it is not positive definite)."""
        from iminuit import Minuit

        m = Minuit(lambda *v: self._chi2_of(coef, v, wall=False), *best, name=self.names)
        m.errordef = errordef
        for n, lo, hi in zip(self.names, *self.box):
            m.errors[n] = 0.01 * max(hi - lo, 1e-12)
        m.hesse()
        if m.covariance is None:
            return None
        cov = np.array(m.covariance)
        return cov if np.all(np.linalg.eigvalsh(cov) > 0) else None

    def _debiased(self, m: Any, best: np.ndarray) -> np.ndarray | None:
        """HESSE's covariance with the fitted gradients' noise taken out of the curvature.

        The chi2's Fisher matrix ``sum_b w_b J_b J_b^T / D_b`` built from noisy gradients
        ``J_b`` is too large on average by ``sum_b w_b Cov(J_b) / D_b`` (the gradients' noise
        adds to their squares): this subtracts that, so that a flat direction does not look
        curved. ``None`` (keep HESSE's) when the correction would leave no positive
        definite matrix.
        """
        if m.covariance is None:
            return None
        cov = np.array(m.covariance)
        used = self._used
        grad = feature_gradient(self._u(best)[0]) / self._scale[:, None]  # (k, p)
        noise = used.flatten({n: np.einsum("kp,bpq,lq->bkl", grad, fit.cov, grad)
                              for n, fit in self._fits.items()})  # (B, k, k)
        bias = np.einsum("b,bkl->kl", used.weights / self._den, noise) / m.errordef
        try:
            fisher = np.linalg.inv(cov) - bias
            if np.all(np.linalg.eigvalsh(fisher) > 0):
                return np.asarray(np.linalg.inv(fisher))
        except np.linalg.LinAlgError:
            pass
        return None


def fit_binwise(
    history: History, space: Space, objective: HistogramObjective, *,
    n_points: int | None = None,
    trials: Sequence[Trial] | None = None,
    rank: int | str | None = None,
    basis: Sequence[Trial] | None = None,
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
    trials : sequence of Trial, optional
        Fit exactly these trials instead (for example a local design, see
        :func:`refine_binwise`).
    rank : int or "auto", optional
        ``None`` (default): every bin has its own weighted fit (Professor). An integer or
        ``"auto"``: a reduced-rank fit -- the bins, in units of their chi2 denominators, are
        fitted together and only the leading principal components of the *fitted* values are
        kept (``"auto"``: those above the Marchenko-Pastur edge of the MC noise). The noise
        of a hundred bins then no longer leaks into the fitted gradients, which otherwise
        makes every flat direction of the chi2 look curved and its errors too small. Bins
        outside the chi2 are predicted by their mean. With ``basis``: the number of
        components (default ``None``/``"auto"``: one less than a quadratic's coefficients).
    basis : sequence of Trial, optional
        Other evaluations with bins (may be empty) for a *debiased* reduced-rank fit. Each
        fitted trial's bins are projected onto the leading principal components (default:
        one less than a quadratic's coefficients, or ``rank``) of a quadratic fit to the
        ``basis`` and the *other* fitted trials (leave one out), and the quadratics are
        fitted to the projected bins. A trial's noise is then independent of the directions
        it is projected onto, so the fits' own noise, ``sum_b w_b Var(p_b(theta)) / D_b`` on
        average, is known and is subtracted from the chi2 (:meth:`BinwiseModel.chi2`).
        Without that, the minimum is pulled towards the centre of the fitted evaluations --
        along a flat valley by many standard deviations. The chi2 is then trusted only where
        the fitted design's leverage is no larger than at its most exposed point. The basis
        should cover the fitted region (its quadratic must describe the bins there, see
        :func:`refine_binwise`): the leave-one-out directions come mostly from the fitted
        trials themselves, the basis adds statistics.
    """
    dims = [d for d in space if isinstance(d, Real)]
    if not dims:
        raise BayestuneError("fit_binwise needs at least one Real parameter")
    if rank is not None and rank != "auto" and not (isinstance(rank, int) and rank >= 1):
        raise ValueError(f"rank must be None, 'auto' or an integer >= 1, got rank={rank!r}")
    k = len(dims)
    n_coef = n_quadratic_terms(k)
    if trials is None:
        with_bins = [t for t in history.completed if "bins" in t.info]
        if not with_bins:
            raise BayestuneError(
                "no trial carries its bins: build the objective with keep_bins=True"
            )
        n_use = min(len(with_bins), n_points or 2 * n_coef)
        chosen = sorted(with_bins, key=lambda t: float(t.value))[:n_use]  # type: ignore[arg-type]
    else:
        chosen = list(trials)
        if any("bins" not in t.info for t in chosen):
            raise BayestuneError(
                "a fitted trial carries no bins: build the objective with keep_bins=True"
            )
    n_use = len(chosen)
    if n_use < n_coef + 2:
        raise BayestuneError(
            f"a quadratic in {k} parameters needs at least {n_coef + 2} evaluations with bins, "
            f"got {n_use}"
        )
    X = np.array([[float(t.params[d.name]) for d in dims] for t in chosen])
    centre, scale = _unit_box(X)
    A = quadratic_features((X - centre) / scale)
    draw = None
    lack_of_fit = 1.0
    if basis is not None:
        basis = list(basis)
        if any("bins" not in t.info for t in basis):
            raise BayestuneError(
                "a basis trial carries no bins: build the objective with keep_bins=True"
            )
        fits, draw, lack_of_fit = _cross_fits(A, chosen, basis, objective,
                                              None if rank in (None, "auto") else int(rank),
                                              [d.name for d in dims])
    elif rank is None:
        fits = _per_bin_fits(A, chosen)
    else:
        fits, draw = _reduced_rank_fits(A, chosen, objective, rank)
    best = min(chosen, key=lambda t: float(t.value)).params  # type: ignore[arg-type]
    fixed = {n: v for n, v in best.items() if n not in {d.name for d in dims}}
    box = (np.maximum(X.min(axis=0), [d.low for d in dims]),
           np.minimum(X.max(axis=0), [d.high for d in dims]))
    return BinwiseModel(space, objective, dims, centre, scale, fits, box, n_use, fixed, draw,
                        design=A if basis is not None else None, lack_of_fit=lack_of_fit)


def _per_bin_fits(A: np.ndarray, trials: list[Trial]) -> dict[str, _BinFit]:
    """One weighted least-squares quadratic per bin (weights: the bins' MC errors)."""
    n_use, n_coef = A.shape
    fits = {}
    for name in trials[0].info["bins"]:
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
            red = float(np.sum(w * resid**2)) / max(n_use - n_coef, 1)
            coef[b] = beta
            cov[b] = cov_b * max(red, 1.0)  # a poor fit widens its own errors
        fits[name] = _BinFit(coef, cov)
    return fits


def _unit_box(X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Centre and scale (the spread, at least 1e-12) of the points ``X`` (n, k): the
    coordinates in which their quadratic features are built."""
    return X.mean(axis=0), np.maximum(np.ptp(X, axis=0), 1e-12)


def _design_leverage(A: np.ndarray) -> tuple[np.ndarray, float]:
    """The pseudo-inverse Gram matrix of the design features ``A`` and the largest leverage
    of its points."""
    gram = np.linalg.pinv(A.T @ A)
    return gram, float(np.max(np.einsum("ip,pq,iq->i", A, gram, A)))


def _data_denominators(used: Any, objective: HistogramObjective) -> np.ndarray:
    """The chi2 denominators of the used bins without MC errors: ``sigma_d^2 + (f d)^2``."""
    return np.asarray(used.errors**2 + (objective.model_uncertainty * used.data) ** 2)


def _used_bins_of(trials: list[Trial], used: Any) -> tuple[np.ndarray, np.ndarray]:
    """The trials' simulated values and errors of the used bins, ``(n, B)`` each."""
    Y = np.array([used.flatten({n: v for n, (v, _) in t.info["bins"].items()})
                  for t in trials], dtype=float)
    E = np.array([used.flatten({n: e for n, (_, e) in t.info["bins"].items()})
                  for t in trials], dtype=float)
    return Y, E


def _reduced_rank_fits(
    A: np.ndarray, trials: list[Trial], objective: HistogramObjective, rank: int | str,
) -> tuple[dict[str, _BinFit], Callable[[np.random.Generator], dict[str, np.ndarray]]]:
    """Quadratics of the leading principal components of the fitted, whitened used bins."""
    used = objective.used_bins()
    n_coef = A.shape[1]
    Y, E = _used_bins_of(trials, used)
    mean = Y.mean(axis=0)
    # units of the chi2 denominator at a typical fitted point: the noise is then about
    # isotropic, and a component's size is its weight in the chi2
    unit = np.sqrt(used.errors**2 + np.median(E**2, axis=0))
    unit = np.maximum(unit, 1e-12 * np.maximum(np.abs(mean), 1e-300))
    Z = (Y - mean) / unit
    noise = (E / unit) ** 2  # (n, B) per-point noise variances
    gram = np.linalg.pinv(A.T @ A)
    fitted = A @ (gram @ A.T @ Z)
    _, sv, vt = np.linalg.svd(fitted, full_matrices=False)
    if rank == "auto":
        edge = float(np.mean(noise)) * (math.sqrt(n_coef) + math.sqrt(Z.shape[1])) ** 2
        m = max(int(np.sum(sv**2 > edge)), 1)
    else:
        m = min(int(rank), len(sv))
    return _component_fits(A, trials, used, Z, unit, mean, vt[:m], noise)


def _directions(X: np.ndarray, Z: np.ndarray, m: int) -> np.ndarray:
    """The ``m`` leading principal components (rows, orthonormal) of a quadratic fit of the
    bins ``Z`` (n, B) to the points ``X`` (n, k)."""
    centre, scale = _unit_box(X)
    A = quadratic_features((X - centre) / scale)
    Zc = Z - Z.mean(axis=0)
    _, _, vt = np.linalg.svd(A @ np.linalg.lstsq(A, Zc, rcond=None)[0], full_matrices=False)
    return vt[:min(m, len(vt))]


def _cross_fits(
    A: np.ndarray, trials: list[Trial], basis: list[Trial], objective: HistogramObjective,
    rank: int | None, names: list[str],
) -> tuple[dict[str, _BinFit], Callable[[np.random.Generator], dict[str, np.ndarray]], float]:
    """Quadratics of the trials' used bins, each trial projected onto directions taken from
    the ``basis`` and the other trials (leave one out; see :func:`fit_binwise`).

    Works in units where the chi2 is a plain sum of squares. The fitted coefficients'
    covariance is that of the projected MC noise, so the model's noise form is exact; the
    replicas redo the whole fit, directions included, on the fitted bins plus new MC noise
    (so the directions' own noise is part of the replicas' spread), scaled up by the lack of
    fit when the residuals exceed the noise. Returns the fits, the replicas' draw and the
    lack of fit.
    """
    used = objective.used_bins()
    n_use, n_coef = A.shape
    m = n_coef - 1 if rank is None else rank
    unit = np.sqrt(_data_denominators(used, objective) / used.weights)  # sum of squares = chi2
    Y, E = _used_bins_of(trials, used)
    mean = Y.mean(axis=0)
    noise = (E / unit) ** 2  # (n, B) MC variances
    X = np.array([[float(t.params[n]) for n in names] for t in trials])
    if basis:
        Yb, Eb = _used_bins_of(basis, used)
        Xb = np.array([[float(t.params[n]) for n in names] for t in basis])
    else:
        Yb = Eb = np.empty((0, Y.shape[1]))
        Xb = np.empty((0, X.shape[1]))
    Zb = (Yb - mean) / unit

    def project(Z: np.ndarray, Zb: np.ndarray = Zb) -> tuple[np.ndarray, np.ndarray]:
        """Each row of ``Z`` projected onto the directions of the basis ``Zb`` and the
        other rows, and the projected MC variances."""
        out, var = np.empty_like(Z), np.empty_like(Z)
        for i in range(n_use):
            others = np.arange(n_use) != i
            V = _directions(np.vstack([Xb, X[others]]), np.vstack([Zb, Z[others]]), m)
            P = V.T @ V
            out[i] = Z[i] @ P
            var[i] = noise[i] @ P**2
        return out, var

    projected, var = project((Y - mean) / unit)
    H = np.linalg.pinv(A.T @ A) @ A.T  # (p, n): least squares
    fitted = A @ (H @ projected)  # (n, B)
    # lack of fit: the residuals against what the projected MC noise leaves of them
    leverage = np.einsum("ip,pi->i", A, H)
    lack_of_fit = float(np.sum((projected - fitted) ** 2)
                        / max(np.sum((1.0 - leverage) * var.sum(axis=1)), 1e-300))

    def coefficients(Z: np.ndarray) -> np.ndarray:
        coef = (H @ Z).T * unit[:, None]  # (B, p)
        coef[:, 0] += mean
        return coef

    coef_used = coefficients(projected)
    cov_used = np.einsum("ib,pi,qi->bpq", var, H, H) * (unit**2)[:, None, None]
    fits = _per_histogram_fits(trials, used, coef_used, cov_used)
    inflate = math.sqrt(max(lack_of_fit, 1.0))
    sd, sd_basis = inflate * np.sqrt(noise), inflate * Eb / unit

    def draw(rng: np.random.Generator) -> dict[str, np.ndarray]:
        # new noise in the basis too: the directions' scatter from its noise
        again, _ = project(fitted + rng.normal(size=sd.shape) * sd,
                           Zb + rng.normal(size=sd_basis.shape) * sd_basis)
        moved = coefficients(again)
        return {name: _on_used(used, moved, name, fit.coef) for name, fit in fits.items()}

    return fits, draw, lack_of_fit


def _on_used(used: Any, coef_of_used: np.ndarray, name: str, base: np.ndarray) -> np.ndarray:
    """``base`` (one histogram's per-bin rows) with its used bins' rows taken from
    ``coef_of_used`` (rows of all used bins, histogram after histogram)."""
    out = base.copy()
    start = 0
    for n, mask in used.masks.items():
        size = int(np.sum(mask))
        if n == name:
            out[np.flatnonzero(mask)] = coef_of_used[start:start + size]
            break
        start += size
    return out


def _per_histogram_fits(trials: list[Trial], used: Any, coef_used: np.ndarray,
                        cov_used: np.ndarray) -> dict[str, _BinFit]:
    """Per-histogram fits from the used bins' coefficients and covariances; bins outside
    the chi2 are predicted by their mean over ``trials``."""
    n_use, n_coef = len(trials), coef_used.shape[1]
    fits = {}
    for name in trials[0].info["bins"]:
        vals = np.array([t.info["bins"][name][0] for t in trials], dtype=float)
        n_bins = vals.shape[1]
        coef = np.zeros((n_bins, n_coef))
        coef[:, 0] = vals.mean(axis=0)
        cov = np.zeros((n_bins, n_coef, n_coef))
        cov[:, 0, 0] = vals.var(axis=0) / n_use
        fits[name] = _BinFit(_on_used(used, coef_used, name, coef),
                             _on_used(used, cov_used, name, cov))
    return fits


def _component_fits(
    A: np.ndarray, trials: list[Trial], used: Any, Z: np.ndarray, unit: np.ndarray,
    mean: np.ndarray, comps: np.ndarray, noise: np.ndarray,
) -> tuple[dict[str, _BinFit], Callable[[np.random.Generator], dict[str, np.ndarray]]]:
    """Quadratic fits of the scores ``Z @ comps.T`` of the trials' used bins (``Z = (Y -
    mean) / unit``), mapped back to per-bin coefficients; ``noise``: the (n, B) noise
    variances in ``unit``.
    Bins outside the chi2 are predicted by their mean. Returns the fits and a function that
    draws replicas of them (all bins moved together, each component within its errors)."""
    n_use, n_coef = A.shape
    m = comps.shape[0]
    scores = Z @ comps.T  # (n, m)
    gram = np.linalg.pinv(A.T @ A)
    beta = gram @ A.T @ scores  # (p, m)
    # each component score's noise: the larger of the known MC noise and the residuals'
    resid = scores - A @ beta
    known = np.mean(noise @ (comps**2).T, axis=0)  # (m,)
    dof = n_use - n_coef
    seen = np.sum(resid**2, axis=0) / dof if dof > 0 else known
    score_var = np.maximum(known, seen)  # (m,)
    bin_var = (comps**2).T @ score_var  # (B,) variance factor of each bin's coefficients
    coef_used = (beta @ comps).T * unit[:, None]  # (B, p)
    coef_used[:, 0] += mean
    fits = _per_histogram_fits(trials, used, coef_used,
                               (unit**2 * bin_var)[:, None, None] * gram)
    vals, vecs = np.linalg.eigh(gram)
    gram_root = vecs * np.sqrt(np.maximum(vals, 0.0))
    loading = unit[:, None] * comps.T  # (B, m)

    def draw(rng: np.random.Generator) -> dict[str, np.ndarray]:
        shift = np.sqrt(score_var)[:, None] * (rng.normal(size=(m, n_coef)) @ gram_root.T)
        moved = coef_used + loading @ shift  # (B, p)
        return {name: _on_used(used, moved, name, fit.coef) for name, fit in fits.items()}

    return fits, draw


def binwise_round_size(k: int) -> int:
    """Default evaluations per round of :func:`refine_binwise` for ``k`` real parameters:
    ``2 k``, at least 8 (each fit uses at least twice a quadratic's coefficients, taking the
    nearest earlier evaluations as well)."""
    return max(2 * k, 8)


def refine_binwise(
    tuner: Any,
    objective: HistogramObjective,
    *,
    rounds: int = 2,
    n_per_round: int | None = None,
    width: float = 20.0,
    max_extent: float = 0.2,
    extra_rounds: int = 4,
    probe_valley: bool = True,
    rank: int | str | None = "auto",
    seed: int | None = 0,
    callback: Callable[..., None] | None = None,
) -> tuple[BinwiseModel, Uncertainty]:
    """A local design around the minimum, fitted bin by bin: the Professor method as a
    trust region, for a chi2 whose MC noise hides ``Delta chi2 = 1``.

    Each round evaluates ``n_per_round`` Latin-hypercube points (source
    ``"refine-binwise"``) in a region around the current estimate: a box whose half-axes are
    ``width`` errors along the eigenvectors of the current covariance, so that it follows a
    valley (each half-axis between 1 % and ``max_extent`` of the parameter range). It then fits
    :func:`fit_binwise` (``rank="auto"`` by default) to the evaluations in the region -- at
    least twice as many as a quadratic has coefficients, the nearest ones if fewer are
    inside -- and minimises the chi2 of the fitted bins (:meth:`BinwiseModel.uncertainty`);
    a minimum on the edge of the fitted points doubles the region and refits. The next
    region is centred on that minimum and built from its covariance, kept between half and
    twice the previous region in every direction (twice it when the minimum stayed on an
    edge, within ``max_extent``). The first region comes from a fit to the evaluations
    nearest the lowest one.

    These fits place the rounds. Because a fit's own noise adds least to its chi2 at the
    centre of its evaluations, their minima are pulled towards the evaluations (along a flat
    valley by several standard deviations). The returned estimate therefore comes from a
    final, debiased fit of all the rounds' evaluations (:func:`fit_binwise` with ``basis``:
    each evaluation projected onto directions taken from the others and from the earlier
    evaluations inside the rounds' design), whose noise is then known and subtracted from
    the chi2. It takes the rounds' evaluations in the last round's region (at least twice a
    quadratic's coefficients, the nearest ones), so that a long walk's first rounds do not
    bend the quadratics. That needs at least a quadratic's coefficients + 2 evaluations in
    the rounds (17 for four parameters: three rounds of eight); otherwise the last round's
    fit is returned. The rounds have not settled when that final minimum lies on the edge
    of the rounds' evaluations or on the final fit's leverage wall (which keeps the chi2
    where the design can predict it) -- they stopped short of the minimum along a valley --
    or when it moved from the last round's centre by more than the 95 % quantile of Delta
    chi2 for ``k`` parameters under its own covariance (the walk goes on); then up to
    ``extra_rounds`` more rounds are centred on it and the final fit is redone.

    A valley can mislead the rounds: a walk along it may be stopped by the box at its far
    end, or settle in a shallow local dip of its flat part, far from the data's minimum by
    many of the local fit's errors. With ``probe_valley``, ``n_per_round`` evaluations
    therefore go along a flat valley (one whose final fit rises by less than ``Delta chi2
    = 100`` within ``max_extent`` of the ranges along it) -- the final covariance's major
    axis, through the minimum from bound to bound, or from the minimum away from a
    parameter bound when it lies on or near one (within two errors, and within
    ``max_extent`` of the range; then however steep the valley). Their bins are fitted by
    cubics in the position along that line; the chi2 of those bins (data errors, the fits'
    noise subtracted) is profiled over shifts across the line with the final fit's
    derivatives, since a straight line leaves a curved valley's floor. When it is lowest
    further along the line than ``max_extent`` of the ranges (beyond the rounds' own
    reach), the rounds walk again from there, and the lower of the two final minima is
    returned: eight evaluations of a noisy simulation resolve the line's chi2 only roughly
    (its gain and noise are logged), so the walks' final fits decide. No probe is made when
    the line is shorter than ``max_extent`` on both sides of the minimum.

    The :class:`~bayestune.Uncertainty` is
    the minimum of that chi2 with HESSE's covariance of the data's errors plus the spread of
    the minima of replicas of the fits. A chi2 surrogate cannot resolve ``Delta chi2 = 1``
    below the noise of one evaluation (``~ sqrt(2 n_bins)``); the fitted bins average the
    noise of all evaluations in the region.

    ``rounds`` counts the rounds already in the tuner's store: a rerun with the same
    arguments replays them (no new evaluations) and continues, so an interrupted campaign
    resumes, also on a machine whose BLAS rounds differently (a stored point matches its
    recomputed plan within 0.1 % of the ranges). Extra rounds and a valley probe are
    replayed as well; a rerun with more ``rounds`` than a run that took extra rounds finds
    their points where its own rounds go and raises an error.

    Parameters
    ----------
    tuner : Tuner
        A tuner whose objective is ``objective`` (its campaign is extended).
    objective : HistogramObjective
        Built with ``keep_bins=True``.
    rounds : int
    n_per_round : int, optional
        Evaluations per round (default :func:`binwise_round_size`: ``2 k``, at least 8).
    width : float
        Half-axes of the next region in units of the current errors. Narrow regions make
        the fitted gradients noisy and the errors too small; wide ones make the bins less
        quadratic over them.
    max_extent : float
        Largest half-axis of a region, as a fraction of the parameter ranges. Bins of a
        generator are quadratic only over a limited range: wider regions bias the fits
        (their ``lack_of_fit`` grows) along a flat valley.
    extra_rounds : int
        Most rounds added after the budgeted ones while the rounds have not settled on the
        final minimum (see above; 0: never; each adds ``n_per_round`` evaluations).
    probe_valley : bool
        Probe along the valley through the final minimum (see above; the probe adds
        ``n_per_round`` evaluations, and a new walk its rounds).
    rank : int, "auto" or None
        See :func:`fit_binwise`.
    seed : int, optional
        Seed of the designs.
    callback : callable, optional
        Called with each finished :class:`~bayestune.Trial`.
    """
    from ..objective import evaluate

    if not isinstance(rounds, int) or rounds < 1:
        raise ValueError(f"rounds must be a positive integer, got rounds={rounds!r}")
    if not (isinstance(width, (int, float)) and math.isfinite(width) and width > 0):
        raise ValueError(f"width must be a positive number, got width={width!r}")
    if not (isinstance(max_extent, (int, float)) and 0.01 <= max_extent <= 1.0):
        raise ValueError("max_extent must be a fraction of the parameter ranges in "
                         f"[0.01, 1], got max_extent={max_extent!r}")
    if not isinstance(extra_rounds, int) or extra_rounds < 0:
        raise ValueError("extra_rounds must be a non-negative integer, got "
                         f"extra_rounds={extra_rounds!r}")
    if not isinstance(probe_valley, bool):
        raise ValueError(f"probe_valley must be True or False, got probe_valley={probe_valley!r}")
    space = tuner.space
    dims = [d for d in space if isinstance(d, Real)]
    k = len(dims)
    n_round = binwise_round_size(k) if n_per_round is None else n_per_round
    if not isinstance(n_round, int) or n_round < 1:
        raise ValueError(f"n_per_round must be a positive integer, got n_per_round={n_per_round!r}")
    lo = np.array([float(d.low) for d in dims])
    hi = np.array([float(d.high) for d in dims])
    rng = np.random.default_rng(seed)
    done = [t for t in tuner.history.completed if t.value is not None]
    earlier = [t for t in done if t.source == "refine-binwise"]  # replayed, in order
    trials = [t for t in done if t.source != "refine-binwise"]
    base = dict(min(trials, key=lambda t: float(t.value)).params)  # type: ignore[arg-type]
    span = hi - lo
    centre, axes = _start_region(trials, space, objective, rank, width, max_extent)

    def run_points(points: np.ndarray) -> list[Trial]:
        """Evaluate (or replay from the store) the real parameters ``points`` (n, k)."""
        out = []
        for row in points:
            point = dict(base)
            point.update({d.name: float(v) for d, v in zip(dims, np.clip(row, lo, hi))})
            point = space.validate(point)
            if earlier:
                trial = earlier.pop(0)
                # the plan is recomputed from fits whose minimisers end anywhere within
                # their tolerance, which moves with another machine's round-off: match
                # within _REPLAY_TOLERANCE of the ranges (another seed or option moves the
                # points by a good part of a region instead)
                if any(abs(float(trial.params[d.name]) - point[d.name])
                       > _REPLAY_TOLERANCE * (d.high - d.low) for d in dims):
                    raise BayestuneError(
                        f"the store's refine-binwise trial {trial.number} is not this "
                        f"design's point (another seed, n_per_round, width, max_extent or "
                        f"probe_valley, or more rounds after extra rounds were taken?)"
                    )
            else:
                trial = tuner.add(point, evaluate(tuner.objective, point),
                                  source="refine-binwise")
                if callback is not None:
                    callback(trial)
            if trial.value is not None:
                trials.append(trial)
                out.append(trial)
        return out

    def run_round(centre: np.ndarray, axes: np.ndarray) -> None:
        rows = qmc.LatinHypercube(d=k, seed=rng).random(n_round)
        run_points(np.array([centre + axes @ (2.0 * row - 1.0) for row in rows]))

    def next_axes(unc: Uncertainty, model: BinwiseModel, axes: np.ndarray) -> np.ndarray:
        # a minimum on the edge of the fitted points has no trustworthy covariance
        grown = _capped(2.0 * axes, span, max_extent)
        if _on_box_edge(unc, model):
            return grown
        return _region_axes(_damped(unc.covariance, axes / width), width, span,
                            fallback=grown, max_extent=max_extent)

    def walk(centre: np.ndarray,
             axes: np.ndarray) -> tuple[BinwiseModel, Uncertainty, np.ndarray]:
        """``rounds`` rounds from ``centre``, then the debiased final fit (and extra rounds
        while it has not settled); returns it and the last round's half-axes."""
        model: BinwiseModel | None = None
        unc: Uncertainty | None = None
        last_centre, last_axes = centre, axes
        for _ in range(rounds):
            last_centre, last_axes = centre, axes
            run_round(centre, axes)
            model, unc = _fit_local(trials, space, objective, rank, centre, axes)
            centre = np.array([unc.x[d.name] for d in dims])
            axes = next_axes(unc, model, axes)
        assert model is not None and unc is not None
        at_least = 2 * n_quadratic_terms(k)
        for extra in range(extra_rounds + 1):
            local = [t for t in trials if t.source == "refine-binwise" and "bins" in t.info]
            if len(local) < n_quadratic_terms(k) + 2:
                break
            # a long walk's first rounds are far from where it ended: the rounds'
            # evaluations in the last round's region, at least twice a quadratic's
            # coefficients
            local = _trials_in_region(local, dims, last_centre, last_axes, at_least)
            before = [t for t in trials if t.source != "refine-binwise" and "bins" in t.info]
            basis = _inside_design(before, local, dims)
            final = fit_binwise(History([]), space, objective, trials=local, basis=basis)
            final_unc = final.uncertainty(start=centre)
            _log.info("debiased fit of %d refine evaluations (basis: %d earlier ones, lack "
                      "of fit %.2f): minimum %s, errors %s", len(local), len(basis),
                      final.lack_of_fit,
                      [round(final_unc.x[n], 5) for n in final_unc.names],
                      [round(final_unc.errors[n], 5) for n in final_unc.names])
            model, unc = final, final_unc
            x = np.array([unc.x[d.name] for d in dims])
            why = _unsettled(unc, model, x, last_centre)
            if extra == extra_rounds or why is None:
                break
            _log.info("the debiased minimum %s: extra round %d of at most %d",
                      why, extra + 1, extra_rounds)
            centre = last_centre = x
            last_axes = axes
            run_round(centre, axes)
        return model, unc, last_axes

    model, unc, last_axes = walk(centre, axes)
    line = _valley_line(unc, dims, lo, hi, max_extent) if probe_valley else None
    if line is not None:
        # does the valley go lower beyond the rounds' reach (a walk stopped by a bound, or
        # settled in a shallow local dip of a long valley)?
        origin, direction, (first, last), across = line
        probe = run_points(origin + np.linspace(first, last, n_round)[:, None] * direction)
        found = _line_minimum(probe, dims, origin, direction,
                              model.used_jacobian(origin, across), objective)
        if found is not None:
            step, shift, gain, gain_sd = found
            restart = np.clip(origin + step * direction + across @ shift, lo, hi)
            _log.info("along the valley the chi2 is lowest %.2f of the ranges from the minimum, "
                      "lower by %.1f +- %.1f, at %s", step, gain, gain_sd, np.round(restart, 5))
            # the line's minimum beyond the rounds' own reach: walk there; the two walks'
            # final fits decide (eight evaluations resolve the line's chi2 only roughly)
            if abs(step) > max_extent and gain > 0:
                other, other_unc, _ = walk(restart, last_axes)
                _log.info("walk from the probe's minimum: chi2 %.1f (first walk %.1f)",
                          other_unc.fun, unc.fun)
                if other_unc.fun < unc.fun:
                    model, unc = other, other_unc
    return model, unc


def _valley_line(unc: Uncertainty, dims: list[Real], lo: np.ndarray, hi: np.ndarray,
                 max_extent: float
                 ) -> tuple[np.ndarray, np.ndarray, tuple[float, float], np.ndarray] | None:
    """The line along the valley through the minimum: its origin (the minimum), direction
    (the covariance's major axis, of unit length in units of the parameter ranges), the
    steps along it to the bounds, and the other axes (columns, ``(k, k - 1)``, each one
    standard deviation long). From a minimum on or near a parameter bound (within
    ``_NEAR_BOUND`` errors and ``max_extent`` of the range) the line points away from the
    bound and starts at the minimum; otherwise it runs from bound to bound. ``None`` when
    the covariance is unusable, when the line stays within ``max_extent`` of the ranges (the
    rounds' own reach) on both sides, and, off the bounds, when the valley is not flat:
    that reach spans more than ``_FLAT_VALLEY`` errors along it (its quadratic rises by
    more than ``_FLAT_VALLEY ** 2`` there, and a lower minimum beyond would have to lie
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
    near = np.minimum(_NEAR_BOUND * np.sqrt(np.diag(cov)), max_extent * span) + 1e-6 * span
    below = x - lo <= np.minimum(near, hi - x)
    above = ~below & (hi - x <= near)
    inward = np.where(below, direction, 0.0) - np.where(above, direction, 0.0)
    on_bound = bool(np.any(below | above))
    if not on_bound and _FLAT_VALLEY * np.sqrt(vals[-1]) <= max_extent:
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


_REPLAY_TOLERANCE = 1e-3  # a stored round's point matches its plan within this of the ranges
_LINE_DEGREE = 3  # polynomial degree of the bins along a valley probe
_NEAR_BOUND = 2.0  # a minimum within this many errors of a bound probes away from it
_FLAT_VALLEY = 10.0  # off the bounds, probe when the rounds' reach spans fewer errors


def _line_minimum(trials: list[Trial], dims: list[Real], origin: np.ndarray,
                  direction: np.ndarray, jacobian: np.ndarray, objective: HistogramObjective,
                  n_replicas: int = 200) -> tuple[float, np.ndarray, float, float] | None:
    """The minimum along a line of the chi2 of the bins fitted by cubics in the position on
    it (data-only denominators, the fits' noise subtracted), profiled over shifts ``delta``
    across the line with the bins' derivatives ``jacobian`` ``(B, m)`` taken as constant
    (a straight line leaves a curved valley's floor). Returns its step from ``origin``, the
    shift, how much lower it is than at ``origin`` and that gain's noise (from replicas of
    the fits). ``None`` when there are too few trials for a cubic with residuals, or their
    positions do not span the line."""
    if len(trials) < _LINE_DEGREE + 2:
        return None
    used = objective.used_bins()
    X = np.array([[float(t.params[d.name]) for d in dims] for t in trials])
    s = (X - origin) @ direction / float(direction @ direction)
    if np.ptp(s) <= 0:
        return None
    scale = float(np.max(np.abs(s)))
    powers = np.arange(_LINE_DEGREE + 1)
    A = (s / scale)[:, None] ** powers  # (n, p)
    Y, E = _used_bins_of(trials, used)
    E = np.maximum(E, 1e-12 * np.maximum(np.abs(Y).max(axis=0), 1e-300))
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


def _unsettled(unc: Uncertainty, model: BinwiseModel, x: np.ndarray,
               last_centre: np.ndarray) -> str | None:
    """Why the rounds have not settled on the debiased minimum ``x`` (None when they have):
    it lies on the edge of the rounds' evaluations or on the fit's leverage wall (the rounds
    stopped short of the minimum along a valley), or it moved from the last round's centre
    ``last_centre`` by more than the 95 % Delta chi2 of its errors (the walk goes on)."""
    if _on_box_edge(unc, model):
        return "is on the edge of the rounds' evaluations"
    wall = model.leverage(x) / model.max_leverage
    if wall > _ON_THE_WALL:
        return f"is on the fit's leverage wall ({wall:.2f} of the design's largest)"
    step = x - last_centre
    cov = np.asarray(unc.covariance, dtype=float)
    if np.all(np.isfinite(cov)):
        moved = float(step @ np.linalg.pinv(cov) @ step)
        if moved > chi2_dist.ppf(_SETTLED, len(x)):
            return (f"moved by Delta chi2 = {moved:.1f} from the last round's centre "
                    f"{np.round(last_centre, 5)}")
    return None


_SETTLED = 0.95  # quantile of Delta chi2 beyond which a debiased minimum has moved on
_ON_THE_WALL = 0.95  # a debiased minimum this close to its design's leverage wall is held there


def _damped(cov: np.ndarray, old_root: np.ndarray) -> np.ndarray:
    """``cov`` with its ellipse kept between half and twice the old one (``old_root``: the
    old covariance's square root, ``old = old_root @ old_root.T``), in every direction."""
    cov = np.asarray(cov, dtype=float)
    if not np.all(np.isfinite(cov)):
        return cov
    inv = np.linalg.inv(old_root)
    vals, vecs = np.linalg.eigh(inv @ cov @ inv.T)
    clipped = (vecs * np.clip(vals, 0.25, 4.0)) @ vecs.T
    return np.asarray(old_root @ clipped @ old_root.T)


def _region_axes(cov: np.ndarray, width: float, span: np.ndarray,
                 fallback: np.ndarray, max_extent: float) -> np.ndarray:
    """Half-axes (columns) of the design region: ``width`` sigma along each eigenvector of
    ``cov``, each between 1 % and ``max_extent`` of the parameter range (in the range's
    units); ``fallback`` for an unusable ``cov``."""
    cov = np.asarray(cov, dtype=float)
    if not np.all(np.isfinite(cov)):
        return fallback
    vals, vecs = np.linalg.eigh(cov)
    if np.any(vals <= 0):
        return fallback
    return _capped(vecs * (width * np.sqrt(vals)), span, max_extent, at_least=0.01)


def _capped(axes: np.ndarray, span: np.ndarray, max_extent: float,
            at_least: float = 0.0) -> np.ndarray:
    """Half-axes (columns) rescaled so that each one's length, in units of the parameter
    ranges ``span``, lies between ``at_least`` and ``max_extent``."""
    length = np.sqrt(np.sum((axes / span[:, None]) ** 2, axis=0))
    return axes * np.clip(length, at_least, max_extent) / np.maximum(length, 1e-300)


def _fit_local(trials: list[Trial], space: Space, objective: HistogramObjective,
               rank: int | str | None, centre: np.ndarray,
               axes: np.ndarray) -> tuple[BinwiseModel, Uncertainty]:
    """:func:`fit_binwise` to the evaluations in the region ``centre + axes @ [-1, 1]^k``
    (at least twice a quadratic's coefficients: the nearest ones), doubled (up to three
    times) while the fitted minimum sits on the edge of the fitted points."""
    dims = [d for d in space if isinstance(d, Real)]
    with_bins = [t for t in trials if "bins" in t.info]
    at_least = 2 * n_quadratic_terms(len(dims))
    for _ in range(4):
        chosen = _trials_in_region(with_bins, dims, centre, axes, at_least)
        model = fit_binwise(History([]), space, objective, rank=rank, trials=chosen)
        unc = model.uncertainty(start=centre)
        _log.info("binwise fit of %d evaluations around %s: minimum %s, errors %s",
                  len(chosen), np.round(centre, 5),
                  [round(unc.x[n], 5) for n in unc.names],
                  [round(unc.errors[n], 5) for n in unc.names])
        if not _on_box_edge(unc, model) or len(chosen) == len(with_bins):
            break
        axes = 2.0 * axes
    return model, unc


def _on_box_edge(unc: Uncertainty, model: BinwiseModel) -> bool:
    """Whether the minimum is within half an error of an edge of the box of the fitted
    points that is not a parameter bound (a minimum on a bound is reported by
    ``at_limit`` and stays there)."""
    lo, hi = model.box
    for i, d in enumerate(model.dims):
        x, err = unc.x[d.name], unc.errors[d.name]
        near = 0.5 * err if np.isfinite(err) else 0.0
        tol = max(near, 1e-6 * (hi[i] - lo[i]))
        if (lo[i] > float(d.low) and x <= lo[i] + tol) or \
                (hi[i] < float(d.high) and x >= hi[i] - tol):
            return True
    return False


def _start_region(trials: list[Trial], space: Space, objective: HistogramObjective,
                  rank: int | str | None, width: float,
                  max_extent: float) -> tuple[np.ndarray, np.ndarray]:
    """Centre and half-axes of the first design region: a fit to the evaluations nearest
    the lowest one (scaled by the reach of those within ten noise sd of it, at least 2 % of
    the range) gives the directions and sizes; its box when the fit is unusable."""
    dims = [d for d in space if isinstance(d, Real)]
    done, cloud, _ = near_lowest(trials)
    if not done:
        raise BayestuneError("refine_binwise needs completed evaluations to start from")
    X = np.array([[float(t.params[d.name]) for d in dims] for t in cloud])
    centre = X[0]
    span = np.array([float(d.high) - float(d.low) for d in dims])
    box = np.diag(np.maximum(np.abs(X - centre).max(axis=0), 0.02 * span))
    with_bins = [t for t in done if "bins" in t.info]
    at_least = 2 * n_quadratic_terms(len(dims))
    if len(with_bins) < at_least:
        return centre, box
    try:
        model = fit_binwise(History([]), space, objective, rank=rank,
                            trials=_trials_in_region(with_bins, dims, centre, box, at_least))
        unc = model.uncertainty(start=centre, n_replicas=0)
    except BayestuneError:
        return centre, box
    return centre, _region_axes(unc.covariance, width, span, fallback=box,
                                max_extent=max_extent)


def _trials_in_region(trials: list[Trial], dims: list[Real], centre: np.ndarray,
                      axes: np.ndarray, at_least: int) -> list[Trial]:
    """The trials inside ``centre + axes @ [-1, 1]^k`` (the ``at_least`` nearest, in that
    region's units, when fewer are inside)."""
    X = np.array([[float(t.params[d.name]) for d in dims] for t in trials])
    dist = np.max(np.abs(np.linalg.solve(axes, (X - centre).T)), axis=0)
    order = np.argsort(dist, kind="stable")
    n = max(int(np.sum(dist <= 1.0 + 1e-9)), at_least)
    return [trials[i] for i in order[:n]]


def _inside_design(candidates: list[Trial], design: list[Trial],
                   dims: list[Real]) -> list[Trial]:
    """The ``candidates`` where a quadratic fit to the ``design`` trials is trusted: no
    larger leverage than at the design's own most exposed point."""
    if not candidates:
        return []
    X = np.array([[float(t.params[d.name]) for d in dims] for t in design])
    centre, scale = _unit_box(X)
    gram, worst = _design_leverage(quadratic_features((X - centre) / scale))
    C = quadratic_features((np.array([[float(t.params[d.name]) for d in dims]
                                      for t in candidates]) - centre) / scale)
    inside = np.einsum("ip,pq,iq->i", C, gram, C) <= worst
    return [t for t, ok in zip(candidates, inside) if ok]
