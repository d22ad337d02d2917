"""Closure tests: tune against pseudo-data made at a known truth and check it is recovered.

:func:`closure_test` runs one closure: simulate pseudo-data at ``truth`` (with its own seed and
statistics), tune a :class:`~bayestune.hep.chi2.HistogramObjective` against it, estimate the
parameter uncertainties from the surrogate's chi2 (:func:`~bayestune.estimate_uncertainty`),
and report per-parameter pulls ``(estimate - truth) / sigma``. It also re-simulates the truth
and the tuned point and compares their chi2 against the pseudo-data: a good tune is not worse
than the truth beyond the MC noise of the chi2.

:func:`repeated_closure` repeats this over seeds and summarises the pulls: mean and width with
their statistical errors, and the fraction of parameters within 1 and 2 sigma (expected 0.683
and 0.954 for calibrated uncertainties).
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .exceptions import BayestuneError
from .hep.chi2 import HistogramObjective, Weights, match_simulated
from .hep.histogram import Histogram
from .result import Result
from .space import Dimension, Real, Space
from .strategies import as_strategy
from .uncertainty import Uncertainty

__all__ = ["ClosureResult", "ClosureSummary", "PseudoDataOptions", "closure_test",
           "level1_pseudo_data", "repeated_closure"]

PseudoData = Callable[[dict[str, Any], int], Mapping[str, Histogram]]


@dataclass
class ClosureResult:
    """One closure test.

    Attributes
    ----------
    truth, estimate : dict
        True and tuned parameters (``estimate`` is the surrogate minimum).
    errors : dict
        One-sigma uncertainties used for the pulls.
    pulls : dict
        ``(estimate - truth) / error`` per real parameter.
    chi2_truth, chi2_tuned : float
        chi2 against the pseudo-data of fresh simulations at the truth and at the estimate.
    chi2_noise : float
        MC standard deviation of ``chi2_tuned - chi2_truth``.
    ndf : int
    result : Result
        The tuning campaign.
    uncertainty : Uncertainty
    tune : GeneratorTuneResult or None
        With the generator-tuning method: its stage log, runs and events.
    """

    truth: dict[str, Any]
    estimate: dict[str, Any]
    errors: dict[str, float]
    pulls: dict[str, float]
    chi2_truth: float
    chi2_tuned: float
    chi2_noise: float
    ndf: int
    result: Result = field(repr=False)
    uncertainty: Uncertainty = field(repr=False)
    tune: Any = field(default=None, repr=False)

    def covered(self, n_sigma: float = 1.0) -> dict[str, bool]:
        """Whether each truth lies within ``n_sigma`` errors of the estimate."""
        return {k: abs(p) <= n_sigma for k, p in self.pulls.items()}

    def truth_distance(self) -> float:
        """The truth's squared distance from the estimate under the covariance,
        ``(t - x)^T C^-1 (t - x)`` over the parameters with pulls (the Delta chi2 of the
        truth in the estimate's Gaussian approximation); NaN without a finite covariance."""
        names = list(self.pulls)
        index = [self.uncertainty.names.index(n) for n in names]
        cov = np.asarray(self.uncertainty.covariance, dtype=float)[np.ix_(index, index)]
        if not np.all(np.isfinite(cov)):
            return float("nan")
        step = np.array([float(self.estimate[n]) - float(self.truth[n]) for n in names])
        return float(step @ np.linalg.pinv(cov) @ step)

    def jointly_covered(self, n_sigma: float = 2.0) -> bool:
        """Whether the truth lies inside the estimate's ``n_sigma`` confidence region: the
        ellipsoid that holds the truth with the probability of ``|z| <= n_sigma`` in one
        dimension (95.45 % for 2), for all the parameters together."""
        from scipy.stats import chi2 as chi2_dist
        from scipy.stats import norm

        level = 2.0 * norm.cdf(n_sigma) - 1.0
        return bool(self.truth_distance() <= chi2_dist.ppf(level, len(self.pulls)))

    @property
    def chi2_consistent(self) -> bool:
        """The tuned chi2 is not above the truth's by more than 2 sigma of MC noise."""
        return self.chi2_tuned <= self.chi2_truth + 2.0 * self.chi2_noise

    @property
    def passed(self) -> bool:
        """Every truth within 2 sigma and the chi2 consistent with the truth's."""
        return all(self.covered(2.0).values()) and self.chi2_consistent

    def table(self) -> str:
        """A readable summary table."""
        width = max(len(k) for k in self.pulls)
        lines = [f"{'parameter':<{width}}  {'truth':>10}  {'tuned':>10}  {'sigma':>9}  "
                 f"{'pull':>6}"]
        for k, p in self.pulls.items():
            lines.append(f"{k:<{width}}  {self.truth[k]:10.4g}  {self.estimate[k]:10.4g}  "
                         f"{self.errors[k]:9.3g}  {p:6.2f}")
        lines.append(f"chi2 at truth {self.chi2_truth:.1f}, tuned {self.chi2_tuned:.1f} "
                     f"(MC noise of the difference {self.chi2_noise:.1f}), ndf {self.ndf}")
        lines.append(f"within 2 sigma: {all(self.covered(2.0).values())}; "
                     f"chi2 consistent: {self.chi2_consistent}; uncertainty flags: "
                     f"valid={self.uncertainty.valid}, "
                     f"posdef={self.uncertainty.hessian_positive_definite}, "
                     f"surrogate_accurate={self.uncertainty.surrogate_accurate}, "
                     f"at_limit={self.uncertainty.at_limit}")
        return "\n".join(lines)


def default_pseudo_seed(seed: int) -> int:
    """The seed of a closure's pseudo-data when :func:`closure_test` is not given one."""
    return 10_000 + int(seed)


def _default_pseudo_data(simulate: Any) -> PseudoData:
    replicate = getattr(simulate, "replicate", None)
    if replicate is None:
        raise BayestuneError(
            "closure_test needs pseudo_data=callable(truth, seed) -> histograms, or a simulate "
            "object with a replicate(seed=...) method (as PythiaSimulator has)"
        )

    def make(truth: dict[str, Any], seed: int) -> Mapping[str, Histogram]:
        return replicate(seed=seed)(truth)

    return make


def level1_pseudo_data(pseudo: Mapping[str, Histogram], measured: Mapping[str, Histogram],
                       seed: int) -> dict[str, Histogram]:
    """Pseudo-data with the measurement's precision (a "level-1" closure, as NNPDF calls it).

    Each bin of ``pseudo`` (the simulation at the truth) is shifted by a Gaussian draw of the
    matching bin's error in ``measured`` (the real reference data), and its error becomes
    the quadrature sum of both. A closure against MC-only pseudo-data asks what a
    measurement with the pseudo-data's statistics would give; this one asks what the real
    measurement can give. Histograms are matched by key and must have the same binning.
    """
    rng = np.random.default_rng([int(seed), 1])
    matched = match_simulated(measured, pseudo)  # the measured histograms keyed like pseudo
    out = {}
    for name, hist in pseudo.items():
        ref = matched.get(name)
        if ref is None:
            raise BayestuneError(
                f"level-1 pseudo-data: no measured histogram {name!r} to take errors from "
                f"(measured: {sorted(measured)})"
            )
        hist.check_binning(ref)
        err = np.asarray(ref.errors, dtype=float)
        out[name] = hist.with_values(hist.values + rng.normal(0.0, 1.0, err.shape) * err,
                                     np.hypot(hist.errors, err))
    return out


@dataclass(frozen=True)
class PseudoDataOptions:
    """How a closure's pseudo-data are made.

    Attributes
    ----------
    make : callable or mapping, optional
        ``make(truth, seed)`` returning histograms, or the histograms themselves. Default:
        ``simulate.replicate(seed=seed)(truth)``.
    seed : int, optional
        Seed of the pseudo-data (default :func:`default_pseudo_seed` of the tune's seed);
        must differ from the tune's.
    measured : mapping of str to Histogram, optional
        Real data whose errors the pseudo-data take on (:func:`level1_pseudo_data`, seeded
        by the pseudo-data seed); default: the pseudo-data's own MC errors only.

    The errors of the simulated histograms (``make``'s, before level-1 smearing) are taken
    as MC errors: the tune's objective gets them as ``reference_mc_errors``, so that the
    generator-tuning method's errors count their correlation across bins.
    """

    make: PseudoData | Mapping[str, Histogram] | None = None
    seed: int | None = None
    measured: Mapping[str, Histogram] | None = None

    def histograms(self, simulate: Any, truth: dict[str, Any], tune_seed: int
                   ) -> dict[str, Histogram]:
        """The pseudo-data."""
        return self.build(simulate, truth, tune_seed)[0]

    def build(self, simulate: Any, truth: dict[str, Any], tune_seed: int
              ) -> tuple[dict[str, Histogram], dict[str, np.ndarray]]:
        """The pseudo-data and the MC errors they contain (the simulation's errors, before
        any level-1 smearing), per histogram."""
        p_seed = default_pseudo_seed(tune_seed) if self.seed is None else int(self.seed)
        if isinstance(self.make, Mapping):
            data = dict(self.make)
        else:
            maker = self.make if self.make is not None else _default_pseudo_data(simulate)
            data = dict(maker(truth, p_seed))
        mc = {name: np.asarray(h.errors, dtype=float) for name, h in data.items()}
        if self.measured is not None:
            data = level1_pseudo_data(data, self.measured, p_seed)
        return data, mc


def closure_test(
    simulate: Callable[[dict[str, Any]], Mapping[str, Histogram]],
    space: Space | Sequence[Dimension],
    truth: Mapping[str, Any],
    *,
    method: Any = None,
    n_evals: int = 60,
    seed: int = 0,
    pseudo: PseudoDataOptions | None = None,
    weights: Weights | Mapping[str, Any] | None = None,
    model_uncertainty: float = 0.0,
    store: Any = None,
    tuner_options: Mapping[str, Any] | None = None,
    callback: Callable[..., None] | None = None,
    **legacy: Any,
) -> ClosureResult:
    """Tune against pseudo-data generated at ``truth`` and compute the pulls.

    Parameters
    ----------
    simulate : callable
        ``simulate(params) -> {name: Histogram}``, used for the tune.
    space : Space
    truth : dict
        The true parameters (must be inside ``space``).
    method : strategy, optional
        How the tune runs and where the estimate comes from:
        :class:`~bayestune.hep.tuning.GeneratorTuning` (the generator-tuning method: a hard
        budget, local rounds fitted bin by bin; the choice for many bins with data much
        more precise than one evaluation), :class:`~bayestune.strategies.SurrogateTuning`
        (the default: Bayesian optimisation, the estimate from the GP of ``ln chi2``) or
        :class:`~bayestune.strategies.CompositeTuning`.
    n_evals : int
        Tuning budget: calls of ``simulate`` for the tune (the pseudo-data and the two
        checks at the truth and the estimate come on top).
    seed : int
        Seed of the tune.
    pseudo : PseudoDataOptions, optional
        How the pseudo-data are made (default: ``simulate.replicate`` at the truth, seed
        ``10_000 + seed``, their own MC errors).
    weights, model_uncertainty
        Passed to :class:`~bayestune.hep.chi2.HistogramObjective`.
    store : path or CampaignStore, optional
        Campaign store of the tune (resumable).
    tuner_options : dict, optional
        Further keyword arguments of :class:`bayestune.Tuner` (``surrogate``, ``n_initial``...).
    callback : callable, optional
        Called with each finished trial (progress printing).
    **legacy
        The keywords of earlier releases, still accepted: ``pseudo_data``, ``pseudo_seed``
        and ``measured`` (the fields of ``pseudo``), and ``estimator``, ``optimiser``,
        ``refine_rounds`` and ``n_bootstrap``, which name a method
        (:func:`~bayestune.strategies.as_strategy`; ``estimator="binwise"`` is
        ``GeneratorTuning`` with ``refine_rounds`` local rounds of its budget).
    """
    space = space if isinstance(space, Space) else Space(list(space))
    truth = space.validate(dict(truth))
    if not any(isinstance(d, Real) for d in space):
        raise BayestuneError("closure_test needs at least one Real parameter")
    method, pseudo = _from_legacy(method, pseudo, legacy, n_evals, space)
    data, mc_errors = pseudo.build(simulate, truth, seed)
    objective = HistogramObjective(
        simulate, data, weights, model_uncertainty=model_uncertainty, n_params=len(space),
        keep_pulls=False, keep_bins=bool(method.keep_bins),
        reference_mc_errors=mc_errors)
    outcome = method.tune(objective, space, n_evals, seed=seed, store=store, callback=callback,
                          tuner_options=dict(tuner_options or {}))
    unc = outcome.uncertainty
    estimate = unc.x
    at_truth = objective.chi2(simulate(truth))
    at_tuned = objective.chi2(simulate(estimate))
    pulls = {n: (estimate[n] - truth[n]) / unc.errors[n] for n in unc.names}
    return ClosureResult(
        truth=truth, estimate=estimate, errors=dict(unc.errors), pulls=pulls,
        chi2_truth=at_truth.value, chi2_tuned=at_tuned.value,
        chi2_noise=math.sqrt(at_truth.variance + at_tuned.variance), ndf=at_tuned.ndf,
        result=outcome.result, uncertainty=unc, tune=outcome.tune,
    )


_LEGACY_PSEUDO = {"pseudo_data": "make", "pseudo_seed": "seed", "measured": "measured"}
_LEGACY_METHOD = ("estimator", "optimiser", "refine_rounds", "n_bootstrap")


def _from_legacy(method: Any, pseudo: PseudoDataOptions | None, legacy: dict[str, Any],
                 n_evals: int, space: Space) -> tuple[Any, PseudoDataOptions]:
    """The method and pseudo-data options, with the keywords of earlier releases mapped."""
    unknown = set(legacy) - set(_LEGACY_PSEUDO) - set(_LEGACY_METHOD)
    if unknown:
        raise TypeError(f"closure_test() got unexpected keyword argument(s) {sorted(unknown)}")
    given = {_LEGACY_PSEUDO[k]: v for k, v in legacy.items() if k in _LEGACY_PSEUDO}
    if given and pseudo is not None:
        raise ValueError(f"give the pseudo-data options in pseudo=PseudoDataOptions(...), not "
                         f"also as {sorted(k for k in legacy if k in _LEGACY_PSEUDO)}")
    pseudo = pseudo if pseudo is not None else PseudoDataOptions(**given)
    named = {k: v for k, v in legacy.items() if k in _LEGACY_METHOD}
    if named and method is not None:
        raise ValueError(f"give either method= or the keywords {sorted(named)}, not both")
    if method is None:
        k = sum(isinstance(d, Real) for d in space)
        method = as_strategy(n_evals=n_evals, k=k, **named)
    if not callable(getattr(method, "tune", None)):
        raise ValueError(f"method must be a tuning strategy (GeneratorTuning, SurrogateTuning "
                         f"or CompositeTuning), got method={method!r}")
    return method, pseudo


@dataclass
class ClosureSummary:
    """Pulls over repeated closure tests.

    Attributes
    ----------
    results : list of ClosureResult
    names : list of str
    pulls : ndarray, shape (n_repeats, n_params)
    """

    results: list[ClosureResult]
    names: list[str]
    pulls: np.ndarray

    @property
    def n(self) -> int:
        return int(self.pulls.shape[0])

    def pull_mean(self, by: str = "pull") -> tuple[float, float]:
        """Mean of all pulls and its standard error: with ``by="pull"`` every pull counts
        as independent; with ``by="seed"`` the closures are the independent units (the pulls
        of one closure are correlated, as those of two correlated parameters are): the
        standard error of the closures' mean pulls."""
        flat = self.pulls.ravel()
        if _unit(by) == "pull":
            return float(flat.mean()), float(flat.std(ddof=1) / math.sqrt(flat.size))
        per_seed = self.pulls.mean(axis=1)
        return float(flat.mean()), float(per_seed.std(ddof=1) / math.sqrt(self.n))

    def pull_width(self, by: str = "pull") -> tuple[float, float]:
        """Standard deviation of all pulls and its standard error: Gaussian with
        ``by="pull"``, the delete-one-closure jackknife with ``by="seed"``."""
        flat = self.pulls.ravel()
        sd = float(flat.std(ddof=1))
        if _unit(by) == "pull":
            return sd, sd / math.sqrt(2.0 * (flat.size - 1))
        left_out = np.array([np.delete(self.pulls, i, axis=0).std(ddof=1)
                             for i in range(self.n)])
        return sd, float(math.sqrt((self.n - 1) / self.n
                                   * np.sum((left_out - left_out.mean()) ** 2)))

    def consistent(self, n_sigma: float = 2.0, by: str = "pull") -> bool:
        """Whether the pull mean and width agree with 0 and 1 within ``n_sigma`` of their
        standard errors (:meth:`pull_mean`, :meth:`pull_width`; ``by`` as there). Single
        closures may fail at the rate their coverage allows; this judges the series."""
        m, dm = self.pull_mean(by)
        w, dw = self.pull_width(by)
        return abs(m) <= n_sigma * dm and abs(w - 1.0) <= n_sigma * dw

    def coverage(self, n_sigma: float = 1.0) -> tuple[float, float]:
        """Fraction of |pull| <= n_sigma and its binomial standard error."""
        flat = np.abs(self.pulls.ravel())
        frac = float(np.mean(flat <= n_sigma))
        return frac, math.sqrt(max(frac * (1.0 - frac), 1e-12) / flat.size)

    def per_parameter(self) -> dict[str, tuple[float, float]]:
        """Pull mean and width of each parameter."""
        out = {}
        for i, n in enumerate(self.names):
            col = self.pulls[:, i]
            out[n] = (float(col.mean()), float(col.std(ddof=1)) if col.size > 1 else float("nan"))
        return out

    def table(self) -> str:
        m, dm = self.pull_mean()
        w, dw = self.pull_width()
        c1, dc1 = self.coverage(1.0)
        c2, dc2 = self.coverage(2.0)
        lines = [f"{self.n} closure tests, {self.pulls.size} pulls",
                 f"pull mean  {m:+.2f} +- {dm:.2f}   (expect 0)",
                 f"pull width {w:.2f} +- {dw:.2f}    (expect 1)",
                 "  errors with the closure as the unit (its pulls are correlated): mean "
                 f"+- {self.pull_mean('seed')[1]:.2f}, width +- {self.pull_width('seed')[1]:.2f}",
                 f"coverage 1 sigma {c1:.2f} +- {dc1:.2f} (expect 0.68), "
                 f"2 sigma {c2:.2f} +- {dc2:.2f} (expect 0.95)"]
        for n, (pm, pw) in self.per_parameter().items():
            lines.append(f"  {n}: mean {pm:+.2f}, width {pw:.2f}")
        return "\n".join(lines)


def _unit(by: str) -> str:
    if by not in ("pull", "seed"):
        raise ValueError(f"by must be 'pull' or 'seed', got by={by!r}")
    return by


def repeated_closure(
    simulate: Any,
    space: Space | Sequence[Dimension],
    truth: Mapping[str, Any],
    seeds: Sequence[int],
    on_result: Callable[[ClosureResult], None] | None = None,
    store_dir: str | os.PathLike[str] | None = None,
    **kwargs: Any,
) -> ClosureSummary:
    """Run :func:`closure_test` once per seed (tune seed = pseudo-data seed offset).

    With a ``simulate`` that has ``replicate(seed=...)``, each repeat also uses an independent
    simulation seed for the tune. ``on_result`` is called with each finished
    :class:`ClosureResult` (so a long series reports every seed as it ends, and an interrupted
    one keeps what it had). With ``store_dir``, each seed's campaign is stored in
    ``store_dir/closure_seed<seed>.sqlite``: a rerun resumes the series, and every tune can
    be refitted later. Other keyword arguments go to :func:`closure_test`.
    """
    if len(seeds) < 2:
        raise ValueError(f"repeated_closure needs at least 2 seeds, got seeds={list(seeds)!r}")
    if store_dir is not None and "store" in kwargs:
        raise ValueError("repeated_closure takes store_dir (one store per seed), not store")
    if store_dir is not None:
        Path(store_dir).mkdir(parents=True, exist_ok=True)
    results = []
    for s in seeds:
        sim = simulate.replicate(seed=1_000 + int(s)) if hasattr(simulate, "replicate") \
            else simulate
        options = kwargs if store_dir is None else \
            dict(kwargs, store=Path(store_dir) / f"closure_seed{int(s)}.sqlite")
        results.append(closure_test(sim, space, truth, seed=int(s), **options))
        if on_result is not None:
            on_result(results[-1])
    names = list(results[0].pulls)
    pulls = np.array([[r.pulls[n] for n in names] for r in results])
    return ClosureSummary(results, names, pulls)
