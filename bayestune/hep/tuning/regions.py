"""Where the local rounds of a generator tune go: regions around an estimate and local fits.

A region is a box ``centre + axes @ [-1, 1]^k`` whose half-axes (columns of ``axes``) follow
the eigenvectors of the current covariance, ``width`` standard deviations long, so that the
rounds follow a valley; each half-axis stays between 1 % of the parameter range and
``max_extent`` of it, since a generator's bins are quadratic only over a limited range.
"""

from __future__ import annotations

import logging

import numpy as np
from scipy.stats import qmc

from ...exceptions import BayestuneError
from ...history import History, Trial
from ...quadratic import n_quadratic_terms, near_lowest, quadratic_features
from ...space import Real, Space
from ...uncertainty import Uncertainty
from ..binfits import _design_leverage, _unit_box
from ..binwise import BinwiseModel
from ..binwise_fit import fit_binwise
from ..chi2 import HistogramObjective

_log = logging.getLogger(__name__)


def real_dims(space: Space) -> list[Real]:
    return [d for d in space if isinstance(d, Real)]


def coordinates(trials: list[Trial], dims: list[Real]) -> np.ndarray:
    """The trials' real parameters as an array ``(n, k)``."""
    return np.array([[float(t.params[d.name]) for d in dims] for t in trials])


def region_axes(cov: np.ndarray, width: float, span: np.ndarray,
                 fallback: np.ndarray, max_extent: float) -> np.ndarray:
    """Half-axes (columns) of the design region: ``width`` sigma along each eigenvector of
    ``cov``, each between 1 % and ``max_extent`` of the parameter range (in the range's
    units); ``fallback`` for an unusable ``cov``."""
    cov = np.asarray(cov, dtype=float)
    if not np.all(np.isfinite(cov)):
        return fallback
    # in units of the ranges: alpha_s's error is a thousandth of aLund's, and eigenvectors of
    # a matrix that ill-conditioned carry round-off that moves the design on another CPU
    vals, vecs = np.linalg.eigh(cov / np.outer(span, span))
    if np.any(vals <= 0):
        return fallback
    return capped(span[:, None] * signed(vecs) * (width * np.sqrt(vals)), span, max_extent,
                  at_least=0.01)


def signed(vecs: np.ndarray) -> np.ndarray:
    """Eigenvectors (columns) with their largest component positive: LAPACK's signs differ
    between BLAS builds, and a design drawn along a flipped axis is another design."""
    rows = np.argmax(np.abs(vecs), axis=0)
    return vecs * np.where(vecs[rows, np.arange(vecs.shape[1])] < 0, -1.0, 1.0)


def capped(axes: np.ndarray, span: np.ndarray, max_extent: float,
            at_least: float = 0.0) -> np.ndarray:
    """Half-axes (columns) rescaled so that each one's length, in units of the parameter
    ranges ``span``, lies between ``at_least`` and ``max_extent``."""
    length = np.sqrt(np.sum((axes / span[:, None]) ** 2, axis=0))
    return axes * np.clip(length, at_least, max_extent) / np.maximum(length, 1e-300)


def stretched(axes: np.ndarray, direction: np.ndarray, span: np.ndarray, max_extent: float,
              factor: float = 2.0) -> np.ndarray:
    """Half-axes (columns) of a region grown by ``factor`` along ``direction`` only (both in
    parameter units; measured in units of the ranges ``span``), then :func:`capped`.

    A walk whose minimum lies beyond its region grows the region towards the minimum. Across
    that direction the fit constrains the parameters: in ten dimensions, doubling the region
    there too put a round's points tens of errors up the walls of the well-measured
    parameters, whose fit then sent the walk away from the minimum. Without a direction
    (zero or not finite) the region grows by ``factor`` in every direction."""
    d = np.asarray(direction, dtype=float) / span
    norm = float(np.linalg.norm(d))
    if not np.isfinite(norm) or norm == 0.0:
        return capped(factor * axes, span, max_extent)
    u = d / norm
    unit_axes = axes / span[:, None]
    grown = unit_axes + (factor - 1.0) * np.outer(u, u @ unit_axes)
    return capped(span[:, None] * grown, span, max_extent)


def damped(cov: np.ndarray, old_root: np.ndarray) -> np.ndarray:
    """``cov`` with its ellipse kept between half and twice the old one (``old_root``: the
    old covariance's square root, ``old = old_root @ old_root.T``), in every direction."""
    cov = np.asarray(cov, dtype=float)
    if not np.all(np.isfinite(cov)):
        return cov
    inv = np.linalg.inv(old_root)
    vals, vecs = np.linalg.eigh(inv @ cov @ inv.T)
    clipped = (vecs * np.clip(vals, 0.25, 4.0)) @ vecs.T
    return np.asarray(old_root @ clipped @ old_root.T)


def trials_in_region(trials: list[Trial], dims: list[Real], centre: np.ndarray,
                      axes: np.ndarray, at_least: int) -> list[Trial]:
    """The trials inside ``centre + axes @ [-1, 1]^k`` (the ``at_least`` nearest, in that
    region's units, when fewer are inside)."""
    X = coordinates(trials, dims)
    dist = np.max(np.abs(np.linalg.solve(axes, (X - centre).T)), axis=0)
    order = np.argsort(dist, kind="stable")
    n = max(int(np.sum(dist <= 1.0 + 1e-9)), at_least)
    return [trials[i] for i in order[:n]]


def inside_design(candidates: list[Trial], design: list[Trial],
                   dims: list[Real]) -> list[Trial]:
    """The ``candidates`` where a quadratic fit to the ``design`` trials is trusted: no
    larger leverage than at the design's own most exposed point."""
    if not candidates:
        return []
    X = coordinates(design, dims)
    centre, scale = _unit_box(X)
    gram, worst = _design_leverage(quadratic_features((X - centre) / scale))
    C = quadratic_features((coordinates(candidates, dims) - centre) / scale)
    inside = np.einsum("ip,pq,iq->i", C, gram, C) <= worst
    return [t for t, ok in zip(candidates, inside) if ok]


def on_box_edge(unc: Uncertainty, model: BinwiseModel) -> bool:
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


def inside_box(centre: np.ndarray, axes: np.ndarray, lo: np.ndarray,
               hi: np.ndarray) -> np.ndarray:
    """The centre of the region ``centre + axes @ [-1, 1]^k`` moved, the least, so that the
    region lies inside the box ``[lo, hi]`` (along a parameter where the region is wider than
    the box: the box's middle). A region that crosses a bound is shifted, not cut: clipped
    points pile up on the bound's face and tell the fit nothing along it, while the shifted
    design keeps its shape and still reaches the bound."""
    reach = np.sum(np.abs(axes), axis=1)  # the region's half-extent along each parameter
    low, high = lo + reach, hi - reach
    return np.where(low <= high, np.clip(centre, low, high), 0.5 * (lo + hi))


def trusted_step(model: BinwiseModel, start: np.ndarray, target: np.ndarray) -> np.ndarray:
    """The point on the segment from ``start`` to ``target`` nearest ``target`` where the
    debiased ``model`` is still trusted (its leverage no larger than at its design's most
    exposed point): a trust-region step towards a minimum the design cannot predict.
    ``start`` must be trusted (the centre of the design)."""
    if model.leverage(target) <= model.max_leverage:
        return np.asarray(target, dtype=float)
    lo, hi = 0.0, 1.0  # fractions of the step: trusted, not trusted
    for _ in range(30):
        mid = 0.5 * (lo + hi)
        if model.leverage(start + mid * (target - start)) <= model.max_leverage:
            lo = mid
        else:
            hi = mid
    return np.asarray(start + lo * (target - start), dtype=float)


def fit_local(trials: list[Trial], space: Space, objective: HistogramObjective,
               rank: int | str | None, centre: np.ndarray,
               axes: np.ndarray) -> tuple[BinwiseModel, Uncertainty]:
    """:func:`fit_binwise` to the evaluations in the region ``centre + axes @ [-1, 1]^k``
    (at least twice a quadratic's coefficients: the nearest ones), doubled (up to three
    times) while the fitted minimum sits on the edge of the fitted points."""
    dims = real_dims(space)
    with_bins = [t for t in trials if "bins" in t.info]
    at_least = 2 * n_quadratic_terms(len(dims))
    for _ in range(4):
        chosen = trials_in_region(with_bins, dims, centre, axes, at_least)
        model = fit_binwise(History([]), space, objective, rank=rank, trials=chosen)
        unc = model.uncertainty(start=centre)
        _log.info("binwise fit of %d evaluations around %s: minimum %s, errors %s",
                  len(chosen), np.round(centre, 5),
                  [round(unc.x[n], 5) for n in unc.names],
                  [round(unc.errors[n], 5) for n in unc.names])
        if not on_box_edge(unc, model) or len(chosen) == len(with_bins):
            break
        axes = 2.0 * axes
    return model, unc


def start_region(trials: list[Trial], space: Space, objective: HistogramObjective,
                  rank: int | str | None, width: float,
                  max_extent: float
                  ) -> tuple[np.ndarray, np.ndarray, BinwiseModel | None]:
    """Centre and half-axes of the first design region, and the fit that placed it: a fit
    to the evaluations nearest the lowest one (scaled by the reach of those within ten noise
    sd of it, at least 2 % of the range) gives the directions and sizes; its box (and no
    fit) when the fit is unusable."""
    dims = real_dims(space)
    done, cloud, _ = near_lowest(trials)
    if not done:
        raise BayestuneError("refine_binwise needs completed evaluations to start from")
    X = coordinates(cloud, dims)
    centre = X[0]
    span = np.array([float(d.high) - float(d.low) for d in dims])
    box = np.diag(np.maximum(np.abs(X - centre).max(axis=0), 0.02 * span))
    with_bins = [t for t in done if "bins" in t.info]
    at_least = 2 * n_quadratic_terms(len(dims))
    if len(with_bins) < at_least:
        return centre, box, None
    try:
        model = fit_binwise(History([]), space, objective, rank=rank,
                            trials=trials_in_region(with_bins, dims, centre, box, at_least))
        unc = model.uncertainty(start=centre, n_replicas=0)
    except BayestuneError:
        return centre, box, None
    return centre, region_axes(unc.covariance, width, span, fallback=box,
                                max_extent=max_extent), model


#: candidates of a plausible design (a power of two: a Sobol sample's balanced size)
PLAUSIBLE_CANDIDATES = 4096


def plausible_design(model: BinwiseModel, centre: np.ndarray, axes: np.ndarray, n: int,
                     earlier: np.ndarray, noise_sd: float, n_sd: float, lo: np.ndarray,
                     hi: np.ndarray, rng: np.random.Generator,
                     n_candidates: int = PLAUSIBLE_CANDIDATES) -> tuple[np.ndarray, int]:
    """``n`` points spread over the plausible part of the region ``centre + axes @
    [-1, 1]^k``: where ``model``'s chi2 lies within ``n_sd`` standard deviations of its
    lowest value over the region, the deviation combining one run's chi2 noise
    (``noise_sd``) with the model's own error there (as history matching's implausibility
    does: where the model is unsure, a point stays plausible).

    Candidates are a scrambled Sobol sample of the region (inside the box ``[lo, hi]``);
    when fewer than ``4 n`` are plausible, the ``4 n`` most plausible. The points are chosen
    greedily, each the plausible candidate farthest from the ``earlier`` evaluations (n, k)
    and the points chosen before it, distances measured in the region's own units (its
    half-axes are one) -- so that a round fills the part of the valley the earlier rounds
    left empty. Returns the points (n, k) and how many candidates were plausible."""
    k = len(centre)
    unit = qmc.Sobol(d=k, scramble=True, seed=rng).random_base2(
        int(np.ceil(np.log2(n_candidates))))
    cand = np.clip(centre + (2.0 * unit - 1.0) @ axes.T, lo, hi)
    value, sd = model.chi2_many(cand)
    z = (value - np.min(value)) / np.sqrt(noise_sd**2 + sd**2 + 1e-300)
    keep = z <= n_sd
    n_plausible = int(np.sum(keep))
    if n_plausible < 4 * n:
        keep = np.zeros(len(z), dtype=bool)
        keep[np.argsort(z, kind="stable")[:4 * n]] = True
    pool = cand[keep]
    inv = np.linalg.inv(axes)
    pool_u = (pool - centre) @ inv.T
    earlier = np.asarray(earlier, dtype=float).reshape(-1, k)
    near = np.full(len(pool), np.inf)
    if len(earlier):
        dist = np.linalg.norm(pool_u[:, None, :] - ((earlier - centre) @ inv.T)[None], axis=2)
        near = dist.min(axis=1)
    chosen: list[int] = []
    first = int(np.argmin(z[keep])) if not len(earlier) else int(np.argmax(near))
    for _ in range(n):
        i = first if not chosen else int(np.argmax(near))
        chosen.append(i)
        near = np.minimum(near, np.linalg.norm(pool_u - pool_u[i], axis=1))
    return pool[chosen], n_plausible
