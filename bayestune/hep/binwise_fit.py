"""Building a :class:`~bayestune.hep.binwise.BinwiseModel`: per-bin quadratic fits to the
evaluations with the lowest chi2, or to a chosen local design (optionally debiased against
a basis of other evaluations)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..exceptions import BayestuneError
from ..history import History, Trial
from ..quadratic import n_quadratic_terms, quadratic_features
from ..space import Real, Space
from .binfits import _carrying_bins, _fitted_trials, _unit_box, bin_fits
from .binwise import REPLICA_NOISE, BinwiseModel
from .chi2 import HistogramObjective

__all__ = ["fit_binwise"]


def fit_binwise(
    history: History, space: Space, objective: HistogramObjective, *,
    n_points: int | None = None,
    trials: Sequence[Trial] | None = None,
    rank: int | str | None = None,
    basis: Sequence[Trial] | None = None,
    replica_noise: str = "residuals",
    noise_factor: np.ndarray | None = None,
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
    replica_noise : {"residuals", "quoted"}
        With ``basis``: the new MC noise of the replicas, with the covariance of the fitted
        runs' residuals (lack of fit included) or with their correlation and each bin's
        quoted MC error (see :class:`~bayestune.hep.tuning.RefineStage`).
    noise_factor : array, optional
        With ``basis``: one run's MC noise across the used bins as rows ``F``
        (``F.T @ F`` its covariance in units of the quoted errors), for example
        :attr:`BinwiseModel.noise_factor` of a fit over a smaller region. Default: from
        the fitted trials' residuals, which over a wide region also carry the quadratics'
        misfit -- a pattern shared by the bins, along their response to the parameters.
    """
    dims = [d for d in space if isinstance(d, Real)]
    if not dims:
        raise BayestuneError("fit_binwise needs at least one Real parameter")
    _check_fit_options(rank, replica_noise)
    k = len(dims)
    n_coef = n_quadratic_terms(k)
    chosen = _fitted_trials(history, trials, n_points or 2 * n_coef)
    n_use = len(chosen)
    if n_use < n_coef + 2:
        raise BayestuneError(
            f"a quadratic in {k} parameters needs at least {n_coef + 2} evaluations with bins, "
            f"got {n_use}"
        )
    X = np.array([[float(t.params[d.name]) for d in dims] for t in chosen])
    centre, scale = _unit_box(X)
    A = quadratic_features((X - centre) / scale)
    if basis is not None:
        basis = _carrying_bins(basis, "a basis trial")
    fits, draw, lack_of_fit, factor = bin_fits(A, chosen, objective, [d.name for d in dims],
                                               rank, basis, replica_noise, noise_factor)
    best = min(chosen, key=lambda t: float(t.value)).params  # type: ignore[arg-type]
    fixed = {n: v for n, v in best.items() if n not in {d.name for d in dims}}
    box = (np.maximum(X.min(axis=0), [d.low for d in dims]),
           np.minimum(X.max(axis=0), [d.high for d in dims]))
    return BinwiseModel(space, objective, dims, centre, scale, fits, box, n_use, fixed, draw,
                        design=A if basis is not None else None, lack_of_fit=lack_of_fit,
                        noise_factor=factor,
                        replica_variance=(1.0 if replica_noise == "quoted"
                                          else max(lack_of_fit, 1.0)),
                        trials=chosen, basis=basis or ())


def _check_fit_options(rank: int | str | None, replica_noise: str) -> None:
    if rank is not None and rank != "auto" and not (isinstance(rank, int) and rank >= 1):
        raise ValueError(f"rank must be None, 'auto' or an integer >= 1, got rank={rank!r}")
    if replica_noise not in REPLICA_NOISE:
        raise ValueError(f"replica_noise must be one of {REPLICA_NOISE}, got "
                         f"replica_noise={replica_noise!r}")
