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
from .gp import SurrogateConfig
from .hep.binwise import binwise_round_size, refine_binwise
from .hep.chi2 import HistogramObjective, Weights, match_simulated
from .hep.composite import BinEmulator, CompositeChi2Engine
from .hep.histogram import Histogram
from .result import Result
from .space import Dimension, Real, Space
from .tuner import Tuner
from .uncertainty import Uncertainty, estimate_or_gp, estimate_uncertainty, refine

__all__ = ["ClosureResult", "ClosureSummary", "closure_test", "level1_pseudo_data",
           "repeated_closure"]

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

    def covered(self, n_sigma: float = 1.0) -> dict[str, bool]:
        """Whether each truth lies within ``n_sigma`` errors of the estimate."""
        return {k: abs(p) <= n_sigma for k, p in self.pulls.items()}

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


def closure_test(
    simulate: Callable[[dict[str, Any]], Mapping[str, Histogram]],
    space: Space | Sequence[Dimension],
    truth: Mapping[str, Any],
    *,
    n_evals: int = 60,
    seed: int = 0,
    pseudo_data: PseudoData | Mapping[str, Histogram] | None = None,
    pseudo_seed: int | None = None,
    weights: Weights | Mapping[str, Any] | None = None,
    model_uncertainty: float = 0.0,
    store: Any = None,
    tuner_options: Mapping[str, Any] | None = None,
    callback: Callable[..., None] | None = None,
    n_bootstrap: int = 30,
    estimator: str = "surrogate",
    refine_rounds: int = 0,
    optimiser: str | None = None,
    measured: Mapping[str, Histogram] | None = None,
) -> ClosureResult:
    """Tune against pseudo-data generated at ``truth`` and compute the pulls.

    Parameters
    ----------
    simulate : callable
        ``simulate(params) -> {name: Histogram}``, used for the tune.
    space : Space
    truth : dict
        The true parameters (must be inside ``space``).
    n_evals : int
        Tuning budget.
    seed : int
        Seed of the tune.
    pseudo_data : callable or mapping, optional
        ``pseudo_data(truth, seed)`` returning histograms, or the histograms themselves.
        Default: ``simulate.replicate(seed=pseudo_seed)(truth)``.
    pseudo_seed : int, optional
        Seed of the pseudo-data (default ``10_000 + seed``); must differ from the tune's.
    weights, model_uncertainty
        Passed to :class:`~bayestune.hep.chi2.HistogramObjective`.
    store : path or CampaignStore, optional
        Campaign store of the tune (resumable).
    tuner_options : dict, optional
        Further keyword arguments of :class:`bayestune.Tuner` (``surrogate``, ``n_initial``...).
        The default surrogate models ``ln(chi2)`` (``SurrogateConfig(warping="chi2")``): an
        unwarped GP of a chi2 that spans 10^1-10^5 learns length scales of half the box and
        cannot see the valley.
    callback : callable, optional
        Called with each finished trial (progress printing).
    n_bootstrap : int
        Bootstrap replicas for the surrogate part of the uncertainty (see
        :func:`~bayestune.estimate_uncertainty`); 0 uses the Hessian alone.
    estimator : {"surrogate", "quadratic", "binwise", "composite"}
        Where the estimate and its covariance come from: the GP surrogate of the chi2
        (:func:`~bayestune.estimate_uncertainty`, default), or
        ``"binwise"``: the last ``refine_rounds`` rounds of the budget are a local design
        fitted bin by bin (:func:`~bayestune.hep.binwise.refine_binwise`, the Professor
        method as a trust region), whose chi2 has the data's errors only -- the choice for
        many bins with much more precise data than one evaluation, where a surrogate of the
        summed chi2 drowns in its ``sqrt(2 n_bins)`` noise; or
        ``"composite"``: the campaign itself runs :class:`~bayestune.hep.composite.
        CompositeChi2Engine` (GP emulators of the bins, EI of the chi2 computed from them)
        and the estimate minimises the chi2 of the emulated bins (experimental), or
        ``"quadratic"``: a weighted least-squares quadratic through the chi2 values near the
        lowest (``estimate_uncertainty(..., surface="quadratic")``, the GP when no quadratic
        with a minimum inside the bounds fits), best after ``refine_rounds``.
    refine_rounds : int
        Rounds of :func:`~bayestune.refine` at the end of the tune, each ``2 k + 1``
        evaluations placed where the chi2 rises by three times its MC noise, or with
        ``estimator="binwise"`` (which needs at least one) rounds of
        :func:`~bayestune.hep.binwise.refine_binwise` of
        :func:`~bayestune.hep.binwise.binwise_round_size` evaluations each; they are part
        of ``n_evals`` (the Bayesian optimisation gets the rest). ``refine_binwise`` adds up
        to two rounds beyond ``n_evals`` when its final minimum sits on the edge of its
        rounds' evaluations.
    optimiser : {"gp", "composite"}, optional
        Engine of the tune: the GP of the chi2 (the tuner's default) or
        :class:`~bayestune.hep.composite.CompositeChi2Engine`, which emulates the bins and
        converges much closer to the minimum of a many-bin chi2 (default: ``"composite"``
        for ``estimator="composite"``, else ``"gp"``).
    measured : mapping of str to Histogram, optional
        Real data whose errors the pseudo-data take on (:func:`level1_pseudo_data`, seeded
        by the pseudo-data seed); default: the pseudo-data's own MC errors only.
    """
    space = space if isinstance(space, Space) else Space(list(space))
    truth = space.validate(dict(truth))
    if not any(isinstance(d, Real) for d in space):
        raise BayestuneError("closure_test needs at least one Real parameter")
    p_seed = default_pseudo_seed(seed) if pseudo_seed is None else int(pseudo_seed)
    if isinstance(pseudo_data, Mapping):
        data = dict(pseudo_data)
    else:
        maker = pseudo_data if pseudo_data is not None else _default_pseudo_data(simulate)
        data = dict(maker(truth, p_seed))
    if measured is not None:
        data = level1_pseudo_data(data, measured, p_seed)
    if estimator not in ("surrogate", "quadratic", "binwise", "composite"):
        raise ValueError(
            "estimator must be 'surrogate', 'quadratic', 'binwise' or 'composite', "
            f"got estimator={estimator!r}"
        )
    n_real = sum(isinstance(d, Real) for d in space)
    per_round = binwise_round_size(n_real) if estimator == "binwise" else 2 * n_real + 1
    n_refine = refine_rounds * per_round if isinstance(refine_rounds, int) else -1
    if n_refine < 0 or n_evals - n_refine < 2 * len(space) + 2:
        raise ValueError(
            f"refine_rounds must be an integer >= 0 that leaves the optimisation at least "
            f"{2 * len(space) + 2} of n_evals={n_evals} (each round takes {per_round}), "
            f"got refine_rounds={refine_rounds!r}"
        )
    if estimator == "binwise" and refine_rounds < 1:
        raise ValueError(
            f"estimator='binwise' fits a local design: it needs refine_rounds >= 1, "
            f"got refine_rounds={refine_rounds!r}"
        )
    optimiser = optimiser or ("composite" if estimator == "composite" else "gp")
    if optimiser not in ("gp", "composite"):
        raise ValueError(f"optimiser must be 'gp' or 'composite', got optimiser={optimiser!r}")
    objective = HistogramObjective(
        simulate, data, weights, model_uncertainty=model_uncertainty, n_params=len(space),
        keep_pulls=False, keep_bins=estimator in ("binwise", "composite") or optimiser != "gp")
    options = dict(tuner_options or {})
    # a chi2 spans orders of magnitude between its walls and its valley floor: model ln(chi2)
    options.setdefault("surrogate", SurrogateConfig(warping="chi2"))
    if optimiser == "composite":
        options.setdefault("engine", CompositeChi2Engine(space, objective))
    surface = "quadratic" if estimator == "quadratic" else "gp"
    with Tuner(space, objective, seed=seed, store=store, **options) as tuner:
        result = tuner.run(n_evals - n_refine, callback=callback)
        if not result.success:
            raise BayestuneError(f"the closure tune failed: {result.message}")
        if estimator == "binwise":  # a resumed store's rounds are replayed
            _, unc = refine_binwise(tuner, objective, rounds=refine_rounds,
                                    seed=seed, callback=callback)
            result = tuner.result()
        else:
            done = sum(t.source == "refine" for t in result.history.completed)
            # a resumed store has some rounds already (a round skips an evaluated centre)
            rounds = refine_rounds - -(-done // per_round)
            if rounds > 0:
                refine(tuner, max_rounds=rounds, min_rounds=rounds, delta="noise", seed=seed,
                       callback=callback, surface=surface)
                result = tuner.result()
    if estimator == "composite":
        emulator = BinEmulator(space, objective).fit(result.history,
                                                     np.random.default_rng([seed, 7]))
        unc = emulator.uncertainty()
    elif estimator == "quadratic":  # the GP (with its bootstrap) when no quadratic fits
        unc = estimate_or_gp(result, 1.0, None, {"surface": "quadratic", "seed": seed,
                                                 "n_bootstrap": n_bootstrap})
    elif estimator == "surrogate":
        unc = estimate_uncertainty(result, n_bootstrap=n_bootstrap, seed=seed)
    estimate = unc.x
    at_truth = objective.chi2(simulate(truth))
    at_tuned = objective.chi2(simulate(estimate))
    pulls = {n: (estimate[n] - truth[n]) / unc.errors[n] for n in unc.names}
    return ClosureResult(
        truth=truth, estimate=estimate, errors=dict(unc.errors), pulls=pulls,
        chi2_truth=at_truth.value, chi2_tuned=at_tuned.value,
        chi2_noise=math.sqrt(at_truth.variance + at_tuned.variance), ndf=at_tuned.ndf,
        result=result, uncertainty=unc,
    )


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
