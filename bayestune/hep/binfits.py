"""Per-bin polynomial fits of simulated histograms, for :mod:`bayestune.hep.binwise`.

Three ways to fit the bins of a set of evaluations with quadratics in the parameters: bin by
bin (:func:`per_bin_fits`), reduced-rank through the leading principal components of all
bins together (:func:`reduced_rank_fits`), and cross-fitted against a basis of directions
taken from the other evaluations (:func:`cross_fits`), whose noise is then known and can be
subtracted from the chi2. Each returns the fits (coefficients and their covariance, per
histogram) and, for the latter two, a function drawing replicas of them.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..exceptions import BayestuneError
from ..history import History, Trial
from ..quadratic import quadratic_features
from .chi2 import HistogramObjective


@dataclass
class _BinFit:
    coef: np.ndarray  # (n_bins, p)
    cov: np.ndarray  # (n_bins, p, p)


def _per_bin_fits(A: np.ndarray, trials: list[Trial]) -> dict[str, _BinFit]:
    """One weighted least-squares quadratic per bin (weights: the bins' MC errors)."""
    n_use, n_coef = A.shape
    fits = {}
    for name in trials[0].info["bins"]:
        vals = np.array([t.info["bins"][name][0] for t in trials], dtype=float)  # (n, bins)
        errs = np.array([t.info["bins"][name][1] for t in trials], dtype=float)
        errs = filled_errors(errs)
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


def filled_errors(E: np.ndarray) -> np.ndarray:
    """Runs' MC errors ``(n, B)`` with the zero of a bin left empty by a run replaced by the
    smallest positive error of that bin over the runs (about one event's weight: an empty
    bin is not exact), and by 1 where the bin is empty in every run (its fit is zero, whatever
    the weights). Weights ``1 / E^2`` are then finite and no empty bin dominates a fit."""
    E = np.asarray(E, dtype=float)
    smallest = np.min(np.where(E > 0, E, np.inf), axis=0)
    return np.where(E > 0, E, np.where(np.isfinite(smallest), smallest, 1.0))


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
    _, sv, vt = svd(fitted)
    if rank == "auto":
        edge = float(np.mean(noise)) * (math.sqrt(n_coef) + math.sqrt(Z.shape[1])) ** 2
        m = max(int(np.sum(sv**2 > edge)), 1)
    else:
        m = min(int(rank), len(sv))
    return _component_fits(A, trials, used, Z, unit, mean, vt[:m], noise)


def svd(M: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Thin SVD of ``M``: LAPACK's divide and conquer (numpy's), and its slower QR-iteration
    driver when that does not converge (it can fail on a nearly rank-deficient matrix, as
    the fitted bins of twenty parameters over a few hundred runs are)."""
    try:
        return np.linalg.svd(M, full_matrices=False)
    except np.linalg.LinAlgError:
        import scipy.linalg

        return scipy.linalg.svd(M, full_matrices=False, lapack_driver="gesvd")


def _directions(X: np.ndarray, Z: np.ndarray, m: int) -> np.ndarray:
    """The ``m`` leading principal components (rows, orthonormal) of a quadratic fit of the
    bins ``Z`` (n, B) to the points ``X`` (n, k)."""
    centre, scale = _unit_box(X)
    A = quadratic_features((X - centre) / scale)
    Zc = Z - Z.mean(axis=0)
    _, _, vt = svd(A @ np.linalg.lstsq(A, Zc, rcond=None)[0])
    return vt[:min(m, len(vt))]


def _projected_on_all(X: np.ndarray, Xb: np.ndarray, Z: np.ndarray, Zb: np.ndarray,
                      noise: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each row of ``Z`` projected onto *all* principal components of a quadratic fit of the
    basis ``Zb`` and the other rows (leave one out), and the projected MC variances
    ``noise`` (n, B).

    :func:`_directions` with every component kept, without fitting: the fitted values
    ``A A^+ Zc`` of centred bins span the same directions as ``Zc^T A`` (full-rank ``A``),
    and those directions do not depend on the units of the features (a quadratic of an
    affine map of ``x`` is a quadratic of ``x``). So one set of features serves every
    left-out row, and the sums ``Zc^T A`` lose one row's term each: a QR of a (B, p - 1)
    matrix per row, instead of a least-squares fit and an SVD of all the points' bins
    (twenty parameters, a few hundred runs: about 15 times faster,
    ``benchmarks/bench_binwise_projection.py``)."""
    points = np.vstack([Xb, X])
    centre, scale = _unit_box(points)
    feats = quadratic_features((points - centre) / scale)[:, 1:]  # the constant drops out
    feats -= feats.mean(axis=0)
    fb, f = feats[:len(Xb)], feats[len(Xb):]
    total = Zb.T @ fb + Z.T @ f  # (B, p - 1)
    sum_z, sum_f, count = Zb.sum(axis=0) + Z.sum(axis=0), feats.sum(axis=0), len(points) - 1
    out, var = np.empty_like(Z), np.empty_like(Z)
    for i in range(len(Z)):
        cross = (total - np.outer(Z[i], f[i])
                 - np.outer(sum_z - Z[i], sum_f - f[i]) / count)  # Zc^T A without row i
        Q = np.linalg.qr(cross)[0]
        out[i] = Q @ (Z[i] @ Q)
        P = Q @ Q.T
        var[i] = noise[i] @ P**2
    return out, var


def _cross_fits(
    A: np.ndarray, trials: list[Trial], basis: list[Trial], objective: HistogramObjective,
    rank: int | None, names: list[str], quoted_noise: bool = False,
    noise_factor: np.ndarray | None = None,
) -> tuple[dict[str, _BinFit], Callable[[np.random.Generator], dict[str, np.ndarray]], float,
           np.ndarray]:
    """Quadratics of the trials' used bins, each trial projected onto directions taken from
    the ``basis`` and the other trials (leave one out; see :func:`fit_binwise`).

    Works in units where the chi2 is a plain sum of squares. The fitted coefficients'
    covariance is that of the projected MC noise, so the model's noise form is exact; the
    replicas redo the whole fit, directions included, on the fitted bins plus new MC noise
    (so the directions' own noise is part of the replicas' spread). The new noise has the
    covariance of the fitted trials' residuals (:func:`_noise_factor`): correlated across
    bins as one run's bins are, and larger where the quadratics miss (with
    ``quoted_noise``: the residuals' correlation, each bin's quoted MC error), or the given
    ``noise_factor`` (another fit's, over a region where the quadratics miss less). Returns
    the fits, the replicas' draw, the lack of fit and the noise factor.
    """
    used = objective.used_bins()
    n_use, n_coef = A.shape
    m = n_coef - 1 if rank is None else rank
    unit = np.sqrt(_data_denominators(used, objective) / used.weights)  # sum of squares = chi2
    Y, E = _used_bins_of(trials, used)
    mean = Y.mean(axis=0)
    Z = (Y - mean) / unit
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
        if m >= n_coef - 1:
            return _projected_on_all(X, Xb, Z, Zb, noise)
        out, var = np.empty_like(Z), np.empty_like(Z)
        for i in range(n_use):
            others = np.arange(n_use) != i
            V = _directions(np.vstack([Xb, X[others]]), np.vstack([Zb, Z[others]]), m)
            P = V.T @ V
            out[i] = Z[i] @ P
            var[i] = noise[i] @ P**2
        return out, var

    projected, var = project(Z)
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
    factor = (_noise_factor(Z, A, H, noise, quoted_noise) if noise_factor is None
              else noise_factor)

    def refit(fitted: np.ndarray, basis: np.ndarray) -> tuple[dict[str, np.ndarray],
                                                              np.ndarray]:
        again, _ = project(fitted, basis)
        moved = coefficients(again)
        return ({name: _on_used(used, moved, name, fit.coef) for name, fit in fits.items()},
                A @ (H @ again))

    draw = CrossReplicas(refit, fitted, Zb, np.sqrt(noise), Eb / unit, factor)
    return fits, draw, lack_of_fit, factor


class CrossReplicas:
    """Replicas of cross fits: the whole fit, directions included, redone on fitted values
    plus new MC noise (correlated across the bins with ``factor``), and new noise in the
    basis too (the directions' scatter from its noise).

    Called with a generator it draws one replica of the fit (its coefficients, by
    histogram). :meth:`draw_about` draws about another centre -- a replica's fitted values
    and basis (:meth:`centre` is the fit's own) -- for replicas of replicas.
    """

    def __init__(self, refit: Callable[[np.ndarray, np.ndarray],
                                       tuple[dict[str, np.ndarray], np.ndarray]],
                 fitted: np.ndarray, basis: np.ndarray, sd: np.ndarray,
                 sd_basis: np.ndarray, factor: np.ndarray) -> None:
        self._refit = refit
        self._fitted, self._basis = fitted, basis
        self._sd, self._sd_basis, self._factor = sd, sd_basis, factor

    def _noise(self, rng: np.random.Generator, scale: np.ndarray) -> np.ndarray:
        return scale * (rng.normal(size=(len(scale), len(self._factor))) @ self._factor)

    def centre(self) -> tuple[np.ndarray, np.ndarray]:
        """The fit's own fitted values and basis (in the fit's units)."""
        return self._fitted, self._basis

    def draw_about(self, rng: np.random.Generator, centre: tuple[np.ndarray, np.ndarray]
                   ) -> tuple[dict[str, np.ndarray], tuple[np.ndarray, np.ndarray]]:
        """A replica about ``centre``: its coefficients and its own centre."""
        fitted, basis = centre
        moved = fitted + self._noise(rng, self._sd)
        basis = basis + self._noise(rng, self._sd_basis)
        coef, refitted = self._refit(moved, basis)
        return coef, (refitted, basis)

    def __call__(self, rng: np.random.Generator) -> dict[str, np.ndarray]:
        return self.draw_about(rng, self.centre())[0]


def _noise_factor(Z: np.ndarray, A: np.ndarray, H: np.ndarray,
                  noise: np.ndarray, quoted: bool = False) -> np.ndarray:
    """Rows ``F`` (n, B) with ``F.T @ F`` the covariance of one run's noise across the bins
    ``Z`` (n, B), in units of each bin's quoted MC error: the residuals of every bin's
    quadratic (``A @ H`` its hat matrix), each run's in units of its quoted errors.

    One run fills every histogram from the same events, so its bins do not fluctuate
    independently; the residuals carry that correlation, and where a quadratic misses, its
    lack of fit. On average over the bins the variance is at least the quoted one; with
    ``quoted`` every bin's variance is the quoted one (the correlation only).
    """
    dof = max(len(Z) - A.shape[1], 1)
    resid = (Z - A @ (H @ Z)) / np.sqrt(np.maximum(noise, 1e-300))
    if quoted:
        norm = np.sqrt(np.sum(resid**2, axis=0))
        return resid / np.where(norm > 0, norm, 1.0)
    factor = resid / math.sqrt(dof)
    ratio = float(np.median(np.sum(factor**2, axis=0)))
    return factor * math.sqrt(max(1.0, 1.0 / ratio)) if ratio > 0 else factor


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


def _carrying_bins(trials: Sequence[Trial], what: str) -> list[Trial]:
    trials = list(trials)
    if any("bins" not in t.info for t in trials):
        raise BayestuneError(f"{what} carries no bins: build the objective with keep_bins=True")
    return trials


def _fitted_trials(history: History, trials: Sequence[Trial] | None,
                   n_points: int) -> list[Trial]:
    """``trials`` (each with its bins), or the ``n_points`` completed trials of ``history``
    with the lowest chi2 among those with bins."""
    if trials is not None:
        return _carrying_bins(trials, "a fitted trial")
    with_bins = [t for t in history.completed if "bins" in t.info]
    if not with_bins:
        raise BayestuneError("no trial carries its bins: build the objective with keep_bins=True")
    return sorted(with_bins, key=lambda t: float(t.value))[:n_points]  # type: ignore[arg-type]


def _positive_part(matrix: np.ndarray) -> np.ndarray:
    """The symmetric matrix with the negative eigenvalues of ``matrix`` set to zero."""
    vals, vecs = np.linalg.eigh(0.5 * (matrix + matrix.T))
    return (vecs * np.maximum(vals, 0.0)) @ vecs.T


def bin_fits(A: np.ndarray, chosen: list[Trial], objective: HistogramObjective,
             names: list[str], rank: int | str | None, basis: list[Trial] | None,
             replica_noise: str, noise_factor: np.ndarray | None) -> tuple[Any, ...]:
    """The per-bin fits of :func:`fit_binwise` (per bin, reduced-rank or debiased) with
    their replica draw, lack of fit and noise factor (None, 1 and None where the kind of
    fit has none)."""
    if basis is not None:
        fits, draw, lack_of_fit, factor = _cross_fits(
            A, chosen, basis, objective, None if rank in (None, "auto") else int(rank),
            names, quoted_noise=replica_noise == "quoted", noise_factor=noise_factor)
        return fits, draw, lack_of_fit, factor
    if rank is None:
        return _per_bin_fits(A, chosen), None, 1.0, None
    fits, draw = _reduced_rank_fits(A, chosen, objective, rank)
    return fits, draw, 1.0, None
