"""Refinement rounds: evaluations around the minimum until its uncertainty can be trusted.

:func:`refine` evaluates each round a design around the current minimum -- the centre and two
points along each axis of the covariance ellipse -- records it in the tuner's store, refits
the surrogate and estimates the uncertainty again (:func:`~bayestune.estimate_uncertainty`),
until the estimate is valid and stable.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np

from .exceptions import BayestuneError
from .quadratic import near_lowest
from .scans import max_step_in_box, shift_until_rise
from .surface import GPSurface, RealCoordinates, Surface, minuit_fit
from .uncertainty import Uncertainty, estimate_or_gp, estimate_uncertainty, uncertainty_from_minuit

if TYPE_CHECKING:
    from .result import Result

__all__ = ["refine"]


def _check_rounds(max_rounds: Any, min_rounds: Any, delta: Any) -> None:
    if not isinstance(max_rounds, int) or max_rounds < 1:
        raise ValueError(f"max_rounds must be a positive integer, got max_rounds={max_rounds!r}")
    if not isinstance(min_rounds, int) or not 0 <= min_rounds <= max_rounds:
        raise ValueError(f"min_rounds must be an integer in [0, max_rounds], "
                         f"got min_rounds={min_rounds!r}")
    if delta is not None and delta != "noise" and not (
            isinstance(delta, (int, float)) and math.isfinite(delta) and delta > 0):
        raise ValueError(f"delta must be > 0, 'noise' or None, got delta={delta!r}")


def refine(
    tuner: Any,
    errordef: float = 1.0,
    *,
    max_rounds: int = 3,
    min_rounds: int = 1,
    scale: float = 1.0,
    tolerance: float = 0.2,
    delta: float | str | None = None,
    seed: int | None = 0,
    callback: Callable[..., None] | None = None,
    **options: Any,
) -> Uncertainty:
    """Spend evaluations around the minimum until its uncertainty can be trusted.

    Each round evaluates the centre (unless it was evaluated before) and ``2 k`` points
    along the axes of the current covariance ellipse (its eigenvectors in the first round, a
    random rotation of them in later rounds, so that a quadratic's cross terms become
    determined), records them in the tuner's store (source ``"refine"``), refits and
    re-estimates. The points sit at
    ``+- scale`` sigma, or, with ``delta``, where the current surface has risen by ``delta``.
    After at least ``min_rounds`` rounds it stops once the minimum is valid, the Hessian
    positive definite, the surface accurate enough to resolve ``Delta = errordef``, and the
    minimum moved by less than ``tolerance`` sigma in the last round -- or after
    ``max_rounds`` rounds. The flags of the returned object say which held.

    Parameters
    ----------
    tuner : Tuner
        A tuner with an objective (its campaign is extended).
    errordef : float
    max_rounds, min_rounds : int
    scale : float
        Distance of the design points from the minimum, in sigma (without ``delta``).
    tolerance : float
        Largest accepted shift of the minimum in one round, in sigma.
    delta : float or "noise", optional
        A number: the rise of the objective at the design points on the current surface
        (the GP's in the first round). ``"noise"``, for an objective much noisier than
        ``errordef``, whose rise at one sigma would be hidden in the noise: a rise of three
        times the median noise sd of the ten lowest evaluations. A surrogate is trusted
        only where it has data or is sure of itself -- far from both it can promise a rise
        that is not there -- so each point goes no further, in its direction, than the
        cloud of evaluations within ten noise sd of the lowest one or, if further, than
        the surrogate's sd stays within a third of that rise; and at least half the
        cloud's reach. (A search that packs its evaluations at the minimum leaves a cloud
        too tight to show the rise; a surrogate with a quadratic trend is sure of the bowl
        beyond it.)
    seed : int, optional
        Seed of the rotations.
    callback : callable, optional
        Called with each finished :class:`~bayestune.Trial`.
    **options
        Passed to :func:`estimate_uncertainty` (``surface``, ``n_bootstrap``, ``minos``...).
    """
    from .objective import evaluate

    if tuner.objective is None:
        raise BayestuneError("refine() needs a tuner with an objective")
    _check_rounds(max_rounds, min_rounds, delta)
    rng = np.random.default_rng(seed)
    result = tuner.result()  # refits the surrogate: once per round
    unc = estimate_or_gp(result, errordef, None, options)
    shift = math.inf
    for round_ in range(max_rounds):
        good = unc.valid and unc.hessian_positive_definite and unc.surrogate_accurate
        if round_ >= min_rounds and good and (round_ == 0 or shift < tolerance):
            break
        design = unc if round_ > 0 else _gp_design(result, errordef)
        rise = None if delta is None or delta == "noise" else float(delta)
        cloud = None
        if delta == "noise":
            rise, cloud = _noise_cloud(result, design.names, errordef)
        rotation = np.eye(len(design.names)) if round_ == 0 \
            else _random_rotation(len(design.names), rng)
        done = [t.params for t in tuner.history.completed]
        for point in _ellipse_design(design, scale, rise, rotation, cloud):
            if point in done:  # e.g. the centre is an evaluated point: a repeat adds nothing
                continue  # for a simulator seeded per point, and double-counts its noise
            trial = tuner.add(point, evaluate(tuner.objective, point), source="refine")
            if callback is not None:
                callback(trial)
        result = tuner.result()
        new = estimate_or_gp(result, errordef, unc.x, options)
        shift = max(abs(new.x[n] - unc.x[n]) / new.errors[n] if new.errors[n] > 0 else math.inf
                    for n in new.names)
        unc = new
    return unc


def _gp_design(result: Result, errordef: float) -> Uncertainty:
    """The GP's minimum and covariance for a first design; when that minimum ran off to a
    bound (a GP far from its data can dip), the recommended point and the GP's curvature
    there instead."""
    unc = estimate_uncertainty(result, errordef)
    if unc.valid and unc.hessian_positive_definite and not unc.at_limit:
        return unc
    coords = RealCoordinates(result.space, result.x)
    surface = GPSurface(result.surrogate, coords)
    limits = [(float(d.low), float(d.high)) for d in coords.dims]
    m = minuit_fit(surface, coords.names, [float(result.x[n]) for n in coords.names], limits,
                   errordef, migrad=False)
    return uncertainty_from_minuit(m, dict(result.x), limits, errordef, fun_std=unc.fun_std,
                                   surface=surface)


def _noise_cloud(result: Result, names: list[str],
                 errordef: float) -> tuple[float, np.ndarray]:
    """For ``delta="noise"``: the rise (three times the median noise sd of the ten lowest
    evaluations, at least ``9 errordef``) and the cloud of evaluations within ten noise sd
    of the lowest (at least ``2 k + 2`` of them), shape (n, k)."""
    done, cloud, sd = near_lowest(result.history.completed)
    cloud = cloud if len(cloud) >= 2 * len(names) + 2 else done[:2 * len(names) + 2]
    X = np.array([[float(t.params[n]) for n in names] for t in cloud])
    return max(3.0 * sd, 9.0 * errordef), X


#: the farthest a design point of ``refine`` goes from the centre, in steps of its ellipse axis
_MAX_REACH = 30.0


def _random_rotation(k: int, rng: np.random.Generator) -> np.ndarray:
    q, r = np.linalg.qr(rng.normal(size=(k, k)))
    return np.asarray(q * np.sign(np.diag(r)))


def _ellipse_design(unc: Uncertainty, scale: float, rise: float | None = None,
                    rotation: np.ndarray | None = None,
                    cloud: np.ndarray | None = None) -> list[dict[str, Any]]:
    """The minimum and two points along each (rotated) axis of the covariance ellipse, at
    ``scale`` sigma or where the surface has risen by ``rise``; inside the bounds. With a
    ``cloud`` of points (n, k), a point found by its rise goes no further than the surface
    can be trusted in that direction -- the cloud's reach (where the surface was fitted to
    data) or, if further, as far as the surface's sd stays within a third of the rise
    (:func:`_confident_reach`) -- and at least half the cloud's reach."""
    names = unc.names
    k = len(names)
    centre = np.array([unc.x[n] for n in names])
    lo = np.array([lim[0] for lim in unc.limits])
    hi = np.array([lim[1] for lim in unc.limits])
    cov = np.asarray(unc.covariance, dtype=float)
    if np.all(np.isfinite(cov)) and np.all(np.linalg.eigvalsh(cov) > 0):
        vals, vecs = np.linalg.eigh(cov)
        root = vecs * np.sqrt(vals)  # columns: one-sigma steps along the eigenvectors
        steps = list((root @ (np.eye(k) if rotation is None else rotation)).T)
    else:  # no usable Hessian: a small axis-aligned star
        steps = [0.05 * (hi - lo) * np.eye(k)[j] for j in range(k)]
        rise = None
    rows = [centre]
    surface = unc._require_surface() if rise is not None else None
    for step in steps:
        for sign in (1.0, -1.0):
            if rise is None:
                rows.append(centre + sign * scale * step)
            else:
                assert surface is not None  # the surface is required whenever rise is set
                move = sign * step
                reach = cloud_reach = _MAX_REACH
                if cloud is not None:
                    cloud_reach = max(float(np.max((cloud - centre) @ move))
                                      / float(move @ move), 1e-12)
                    reach = max(cloud_reach, _confident_reach(surface, centre, move,
                                                              rise / 3.0, lo, hi))
                row, _ = shift_until_rise(surface, centre, move, unc.fun + rise, lo, hi,
                                          t_cap=reach)
                if cloud is not None:
                    t = float((row - centre) @ move) / float(move @ move)
                    row = centre + max(t, 0.5 * cloud_reach) * move
                rows.append(row)
    points = []
    for row in rows:
        point = dict(unc.x)
        point.update({n: float(v) for n, v in zip(names, np.clip(row, lo, hi))})
        points.append(point)
    return points


def _confident_reach(surface: Surface, centre: np.ndarray, move: np.ndarray,
                     max_std: float, lo: np.ndarray, hi: np.ndarray,
                     n_grid: int = 64) -> float:
    """The largest step ``t`` (in units of ``move``, up to 30 and inside the box) before the
    surface's sd along ``centre + t move`` first exceeds ``max_std``; 0 for a surface
    without an sd. Where its sd is that small, the surface knows the rise as well as one
    evaluation would, data or not (a quadratic trend carries the bowl beyond a cloud of
    points packed at its minimum)."""
    std = getattr(surface, "std", None)
    if std is None:
        return 0.0
    t_max = max_step_in_box(centre, move, lo, hi, _MAX_REACH)
    ts = np.linspace(0.0, t_max, n_grid + 1)[1:]
    over = np.asarray(std(centre + ts[:, None] * move)) > max_std
    if not over.any():
        return float(t_max)
    first = int(np.argmax(over))
    return float(ts[first - 1]) if first > 0 else 0.0
