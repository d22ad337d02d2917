"""Maximise an acquisition function over the encoded unit box.

The optimiser sees only the acquisition function and a :class:`UnitBox` (which columns are
discrete and how to project onto valid points); it knows nothing about GPs or parameters.

Procedure
---------
1. Draw a scrambled Sobol candidate set, project it onto valid points, evaluate.
2. Take the best candidates (plus small perturbations of the given anchor points, normally
   the best evaluated points) as starts, and run one L-BFGS-B over all starts at once (the
   summed objective is separable, so this is ``n_starts`` independent local searches with a
   single Python loop), moving only the continuous columns.
3. Project the results, and improve discrete columns by a greedy neighbour search.

Given a ``region`` (a trust region, :mod:`bayestune.trust_region`), the candidates, the
perturbed anchors and the gradient steps all stay inside it.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy.optimize import minimize
from scipy.stats import qmc

from .acquisition import AcquisitionFunction
from .exceptions import BayestuneError
from .trust_region import TrustRegionConfig

__all__ = ["UnitBox", "AcqOptimizerConfig", "maximize_acquisition"]


@dataclass(frozen=True)
class UnitBox:
    """The domain of the acquisition optimiser.

    Attributes
    ----------
    dim : int
        Number of encoded columns.
    discrete : ndarray of bool, shape (dim,)
        Columns that only take isolated values (held fixed during gradient steps).
    snap : callable
        ``snap(U) -> U'`` projects rows of shape ``(q, dim)`` onto valid encodings.
    neighbours : callable or None
        ``neighbours(u) -> (m, dim)`` valid points that differ from ``u`` in one discrete
        parameter by one step.
    """

    dim: int
    discrete: np.ndarray
    snap: Callable[[np.ndarray], np.ndarray]
    neighbours: Callable[[np.ndarray], np.ndarray] | None = None


@dataclass(frozen=True)
class AcqOptimizerConfig:
    """Options of :func:`maximize_acquisition`.

    Parameters
    ----------
    n_candidates : int
        Size of the Sobol candidate set (rounded up to a power of two).
    n_starts : int
        Number of L-BFGS-B starts taken from the best candidates.
    n_anchor_starts : int
        Number of extra starts near each anchor point (the three best evaluated points,
        jittered by 0.02 in the unit cube): they let the optimiser find the acquisition
        maximum next to the incumbent, where local convergence happens.
    maxiter : int
        L-BFGS-B iteration limit.
    trust_region : TrustRegionConfig or None
        Search only a box around the incumbent that grows after improvements and shrinks
        after proposals that did not improve (:mod:`bayestune.trust_region`); ``None``
        searches the whole box.
    """

    n_candidates: int = 2048
    n_starts: int = 8
    n_anchor_starts: int = 6
    maxiter: int = 200
    trust_region: TrustRegionConfig | None = None

    def __post_init__(self) -> None:
        for name in ("n_candidates", "n_starts", "maxiter"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise BayestuneError(f"{name} must be a positive integer, got {value!r}")
        if not isinstance(self.n_anchor_starts, int) or self.n_anchor_starts < 0:
            raise BayestuneError(
                f"n_anchor_starts must be an integer >= 0, got {self.n_anchor_starts!r}"
            )
        if self.trust_region is not None and not isinstance(self.trust_region,
                                                              TrustRegionConfig):
            raise BayestuneError("trust_region must be a TrustRegionConfig or None, got "
                                 f"trust_region={self.trust_region!r}")


def maximize_acquisition(
    acq: AcquisitionFunction,
    box: UnitBox,
    rng: np.random.Generator,
    config: AcqOptimizerConfig | None = None,
    anchors: np.ndarray | None = None,
    region: tuple[np.ndarray, np.ndarray] | None = None,
) -> tuple[np.ndarray, float]:
    """Find the point of the unit box where ``acq`` is largest.

    Parameters
    ----------
    acq : AcquisitionFunction
        A prepared acquisition function.
    box : UnitBox
        The domain.
    rng : numpy.random.Generator
        Randomness for the candidate set and the perturbations.
    config : AcqOptimizerConfig, optional
    anchors : ndarray, shape (m, dim), optional
        Points around which extra starts are placed (e.g. the best evaluated points).
    region : (ndarray, ndarray), optional
        Lower and upper corners of the part of the unit box to search (a trust region);
        the candidates and the gradient steps stay inside it.

    Returns
    -------
    x : ndarray, shape (dim,)
        A valid (projected) point.
    value : float
        The acquisition value there.
    """
    cfg = config or AcqOptimizerConfig()
    m = max(int(math.ceil(math.log2(cfg.n_candidates))), 1)
    lo, hi = (np.zeros(box.dim), np.ones(box.dim)) if region is None else region
    sobol = qmc.Sobol(box.dim, scramble=True, seed=rng).random_base2(m)
    cand = box.snap(lo + (hi - lo) * sobol)
    values = acq(cand)
    if not acq.has_gradient:
        best = int(np.nanargmax(values))
        return cand[best], float(values[best])

    order = np.argsort(-np.nan_to_num(values, nan=-np.inf))
    starts = [cand[order[: cfg.n_starts]]]
    if anchors is not None and len(anchors) and cfg.n_anchor_starts:
        anchors = np.atleast_2d(anchors)
        jitter = 0.02 * rng.standard_normal((len(anchors) * cfg.n_anchor_starts, box.dim))
        jittered = np.repeat(anchors, cfg.n_anchor_starts, axis=0) + jitter
        starts.append(box.snap(np.clip(jittered, lo, hi)))
    X0 = np.vstack(starts)
    X_opt = _lbfgsb_batch(acq, X0, box, cfg.maxiter, lo, hi)
    X_opt = box.snap(X_opt)
    opt_values = acq(X_opt)

    all_X = np.vstack([X_opt, cand[order[:1]]])
    all_v = np.concatenate([opt_values, values[order[:1]]])
    best = int(np.nanargmax(all_v))
    x, v = all_X[best], float(all_v[best])
    if box.neighbours is not None and box.discrete.any():
        x, v = _neighbour_search(acq, box, x, v)
    return x, v


def _lbfgsb_batch(
    acq: AcquisitionFunction, X0: np.ndarray, box: UnitBox, maxiter: int,
    lo: np.ndarray, hi: np.ndarray,
) -> np.ndarray:
    """Jointly run L-BFGS-B from every row of ``X0`` over the continuous columns, within
    ``lo <= x <= hi``."""
    free = ~box.discrete
    if not free.any():
        return X0
    n_starts = X0.shape[0]
    fixed = X0.copy()

    def unpack(flat: np.ndarray) -> np.ndarray:
        X = fixed.copy()
        X[:, free] = flat.reshape(n_starts, int(free.sum()))
        return X

    def fun(flat: np.ndarray) -> tuple[float, np.ndarray]:
        X = unpack(flat)
        value, grad = acq.value_and_grad(X)
        value = np.nan_to_num(value, nan=-1e10, neginf=-1e10)
        grad = np.nan_to_num(grad[:, free], nan=0.0, posinf=0.0, neginf=0.0)
        return -float(np.sum(value)), -grad.ravel()

    lower = np.tile(lo[free], n_starts)
    upper = np.tile(hi[free], n_starts)
    x0 = np.clip(X0[:, free].ravel(), lower, upper)
    res = minimize(fun, x0, jac=True, method="L-BFGS-B", bounds=list(zip(lower, upper)),
                   options={"maxiter": maxiter})
    return unpack(res.x)


def _neighbour_search(
    acq: AcquisitionFunction, box: UnitBox, x: np.ndarray, value: float, max_rounds: int = 10
) -> tuple[np.ndarray, float]:
    """Greedy improvement over one-step changes of discrete parameters."""
    assert box.neighbours is not None
    for _ in range(max_rounds):
        nb = box.neighbours(x)
        if nb.size == 0:
            break
        nb_values = acq(nb)
        k = int(np.nanargmax(nb_values))
        if not nb_values[k] > value:
            break
        x, value = nb[k], float(nb_values[k])
    return x, value
