"""Tune a generator to histograms inside a hard budget of generator runs.

:func:`tune_generator` is the one entry point: it runs the stages of a
:class:`~bayestune.hep.tuning.options.GeneratorTuning` -- explore the whole box, walk local
rounds to the minimum (with a probe along a flat valley), fit the rounds bin by bin -- and
returns a :class:`GeneratorTuneResult` with the estimate, its covariance, flags, and the log
of what each stage did. ``n_evals`` counts every generator run of every stage.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ...exceptions import BayestuneError, StoreError
from ...history import Trial
from ...objective import Status
from ...quadratic import n_quadratic_terms
from ...result import Result
from ...space import Real, Space
from ...tuner import Tuner
from ...uncertainty import Uncertainty
from ..binwise import BinwiseModel
from ..chi2 import HistogramObjective
from ..composite import CompositeChi2Engine
from ..histogram import Histogram
from ..tunefiles import TuneFiles, write_tune
from .budget import Budget, StageRecord
from .options import GeneratorTuning, RefineStage
from .refine import LocalStages, min_rounds
from .runner import StageRunner

__all__ = ["GeneratorTuneResult", "plan_budget", "tune_generator"]

#: the label prefixes of the local stages' evaluations in a store
LOCAL_LABELS = ("refine:", "probe:")


class TunedEstimate:
    """What the results of a tune share: the estimate read from their ``uncertainty``, and
    the table of their ``stages`` against their ``budget`` (``n_runs``, ``n_events``)."""

    uncertainty: Uncertainty
    stages: list[StageRecord]
    budget: int
    n_runs: int
    n_events: int | None

    @property
    def estimate(self) -> dict[str, Any]:
        return dict(self.uncertainty.x)

    @property
    def errors(self) -> dict[str, float]:
        return dict(self.uncertainty.errors)

    @property
    def covariance(self) -> np.ndarray:
        return np.asarray(self.uncertainty.covariance)

    @property
    def at_limit(self) -> list[str]:
        return list(self.uncertainty.at_limit)

    def stage_log(self) -> str:
        """The stages as a table: name, runs, outcome."""
        stages = self.stages
        width = max([10] + [len(s.stage) for s in stages])
        events = "" if self.n_events is None else f", {self.n_events:,} events"
        lines = [f"{'stage':{width}s} {'runs':>4s}  outcome"]
        lines += [f"{s.stage:{width}s} {s.runs:4d} runs  {s.outcome}" for s in stages]
        lines.append(f"{'total':{width}s} {self.n_runs:4d}  of a budget of {self.budget}"
                     f"{events}")
        return "\n".join(lines)


@dataclass
class GeneratorTuneResult(TunedEstimate):
    """What :func:`tune_generator` did and found.

    Attributes
    ----------
    uncertainty : Uncertainty
        The estimate (``x``), its errors and covariance (the data's errors plus the spread
        of the minima of replicas of the fits), ``fun`` (the chi2 of the fitted bins).
    model : BinwiseModel
        The final fit of the bins.
    stages : list of StageRecord
        One entry per stage, in order: which stage ran, its generator runs, why it ended.
    budget : int
        The runs allowed (``n_evals``).
    n_runs : int
        Generator runs made (never above ``budget``), failed ones included.
    n_events : int or None
        Events simulated by those runs (None when the simulator does not say per run).
    settled : bool
        Whether the final minimum lies inside the rounds' evaluations and where the last
        round was centred (see :func:`~bayestune.hep.tuning.refine.unsettled`).
    unsettled_reason : str or None
    result : Result
        The campaign (every trial, with the stage that made it as ``source``).
    """

    uncertainty: Uncertainty
    model: BinwiseModel
    stages: list[StageRecord]
    budget: int
    n_runs: int
    n_events: int | None
    settled: bool
    unsettled_reason: str | None
    result: Result
    method: GeneratorTuning = field(default_factory=GeneratorTuning)

    def predictions(self) -> dict[str, Histogram]:
        """The final fit's predicted histograms at the estimate, in the reference's binning
        (bins outside the chi2 are the mean over the fitted runs)."""
        ref = self.model.objective.reference
        at = [self.uncertainty.x[n] for n in self.model.names]
        return {name: Histogram(ref[name].name, ref[name].lower, ref[name].upper, mean, err)
                for name, (mean, err) in self.model.predict(at).items()}

    def write_tune(self, folder: str | Path, *, delta: float | None = None,
                   fixed: dict[str, Any] | None = None) -> TuneFiles:
        """Write the tune as Pythia settings, with its eigentunes (the chi2 risen by
        ``delta``, default 1) and the final fit's predictions as YODA: see
        :func:`~bayestune.hep.tunefiles.write_tune`."""
        return write_tune(self.uncertainty, folder, delta=delta, fixed=fixed,
                          predictions=self.predictions(), runs=self.n_runs,
                          events=self.n_events, title="bayestune generator tune")


def plan_budget(n_evals: int, k: int, method: GeneratorTuning) -> tuple[int, int]:
    """Split ``n_evals`` runs into the explore stage's runs and whole local rounds."""
    plan = _split(n_evals, k, method)
    if plan is None:
        n_round = method.refine.round_size(k)
        least = next((n for n in range(n_evals + 1, n_evals + 100 * n_round)
                      if _split(n, k, method) is not None), None)
        raise ValueError(
            f"n_evals={n_evals} is too small for the generator-tuning method with "
            f"{k} parameters: it needs at least {min_rounds(k, n_round)} local rounds of "
            f"{n_round} runs (refine.n_per_round) and {least_explore(k, n_round)} runs to "
            f"explore; with "
            f"explore.fraction={method.explore.fraction} (explore.runs="
            f"{method.explore.runs}) that takes "
            + (f"n_evals >= {least}" if least is not None else "more explore.runs"))
    return plan


def _split(n_evals: int, k: int, method: GeneratorTuning) -> tuple[int, int] | None:
    n_round = method.refine.round_size(k)
    local = n_evals * (1.0 - method.explore.fraction) if method.explore.runs is None \
        else n_evals - method.explore.runs
    rounds = int(math.floor(local / n_round))
    explore = n_evals - rounds * n_round
    if rounds < min_rounds(k, n_round) or explore < least_explore(k, n_round):
        return None
    return explore, rounds


def least_explore(k: int, n_round: int) -> int:
    """Runs the explore stage needs: a quadratic's coefficients + 2 together with the first
    round (the first round's plain fit is a quadratic over the nearest evaluations), and
    ``2 k + 2`` at least."""
    return max(2 * k + 2, n_quadratic_terms(k) + 2 - n_round)


def tune_generator(
    objective: HistogramObjective,
    space: Space,
    n_evals: int,
    *,
    method: GeneratorTuning | None = None,
    seed: int = 0,
    store: Any = None,
    callback: Callable[[Trial], None] | None = None,
    tuner_options: dict[str, Any] | None = None,
) -> GeneratorTuneResult:
    """Tune the real parameters of ``space`` to ``objective``'s reference histograms with at
    most ``n_evals`` generator runs.

    Parameters
    ----------
    objective : HistogramObjective
        Built with ``keep_bins=True`` (the local stages fit the bins).
    space : Space
        Real parameters are tuned; others stay at the best explored point's values.
    n_evals : int
        The budget: every generator run of every stage, failed runs included.
    method : GeneratorTuning, optional
        The stages' options (default ``GeneratorTuning()``).
    seed : int
    store : path or None
        Campaign store: a rerun with the same arguments resumes, reusing every completed
        evaluation; a store made with other options or another budget is refused.
    callback : callable, optional
        Called with each finished trial.
    tuner_options : dict, optional
        Further options of the explore stage's :class:`~bayestune.Tuner` (``surrogate``...).
    """
    method = GeneratorTuning() if method is None else method
    if not isinstance(method, GeneratorTuning):
        raise ValueError(f"method must be a GeneratorTuning, got method={method!r}")
    if not getattr(objective, "keep_bins", False):
        raise ValueError("tune_generator fits the bins: build the objective with "
                         "HistogramObjective(..., keep_bins=True)")
    k = sum(isinstance(d, Real) for d in space)
    if k == 0:
        raise ValueError("tune_generator needs at least one Real parameter in the space")
    budget = Budget(n_evals, events_per_run=_events_per_run(objective))
    n_explore, rounds = plan_budget(n_evals, k, method)
    identity = {"method": method.to_dict(), "n_evals": n_evals}
    explore_objective = _explore_objective(objective, method.explore.events)
    with _explore_tuner(space, explore_objective, method, seed, store, identity,
                        tuner_options, method.explore.design_size(n_explore, len(space))
                        ) as tuner:
        _check_identity(tuner, identity)
        runner = StageRunner(tuner, budget, callback, objective=objective)
        explored = _explore(tuner, runner, n_explore, callback, method.explore.events)
        rounds = _rounds_left(runner.budget, rounds, len(explored), n_explore, k, method)
        local = LocalStages(runner, space, objective, explored, method.refine, method.probe,
                            seed)
        model, unc, why = local.run(rounds)
        result = tuner.result()
    stages = [explore_record(explored, n_explore)] + local.records
    return GeneratorTuneResult(
        uncertainty=unc, model=model, stages=stages, budget=n_evals, n_runs=budget.used,
        n_events=budget.events, settled=why is None, unsettled_reason=why, result=result,
        method=method)


def _rounds_left(budget: Budget, rounds: int, n_explored: int, n_explore: int, k: int,
                 method: GeneratorTuning) -> int:
    """The planned local rounds, fewer when the explore stage holds more runs than planned
    (runs imported into the store, such as a Professor scan's, count as explore runs);
    refused when fewer than the method needs remain."""
    n_round = method.refine.round_size(k)
    fit = budget.remaining // n_round
    if fit >= rounds:
        return rounds
    least = min_rounds(k, n_round)
    if fit < least:
        raise ValueError(
            f"the store holds {n_explored} runs before the local rounds (imported or "
            f"explored; {n_explore} were planned): the {budget.remaining} runs left of "
            f"n_evals={budget.total} fit {fit} local rounds of {n_round} runs, and the method "
            f"needs {least}; raise n_evals to at least {n_explored + least * n_round}")
    return fit


def _explore_objective(objective: HistogramObjective,
                       events: int | None) -> HistogramObjective:
    """The explore stage's objective: ``objective`` with ``events`` events per run (None:
    ``objective`` itself)."""
    if events is None:
        return objective
    replicate = getattr(objective.simulate, "replicate", None)
    if not callable(replicate):
        raise ValueError(f"explore.events={events} needs a simulator that makes runs of "
                         f"another size with replicate(n_events=...); "
                         f"{type(objective.simulate).__name__} has no replicate")
    explore = copy.copy(objective)
    explore.simulate = replicate(n_events=events)
    return explore


def _events_per_run(objective: HistogramObjective) -> int | None:
    n = getattr(objective.simulate, "n_events", None)
    return int(n) if isinstance(n, (int, np.integer)) and n > 0 else None


def _explore_tuner(space: Space, objective: HistogramObjective, method: GeneratorTuning,
                   seed: int, store: Any, identity: dict[str, Any],
                   tuner_options: dict[str, Any] | None, n_initial: int) -> Tuner:
    from ...strategies import chi2_tuner

    options = dict(tuner_options or {})
    options.setdefault("n_initial", n_initial)
    options["metadata"] = dict(options.get("metadata") or {}, generator_tuning=identity)
    if "engine" in options:
        raise ValueError("the generator-tuning method names its explore engine "
                         "(ExploreStage.engine); do not pass tuner_options['engine']")
    engine: Any = method.explore.engine
    if engine == "composite":
        engine = CompositeChi2Engine(space, objective, acquisition=method.explore.acquisition)
    return chi2_tuner(space, objective, engine, seed, store, options)


def _check_identity(tuner: Tuner, identity: dict[str, Any]) -> None:
    """Refuse to resume a store made by another method, options or budget (the options
    that only change the final covariance, :data:`RefineStage.REPORT_ONLY`, may differ:
    they plan no evaluation)."""
    stored = tuner.store.metadata.get("generator_tuning")
    if len(tuner.history) and _planning(stored) != _planning(identity):
        raise StoreError(
            "this store was made with other generator-tuning options or budget:\n"
            f"  stored: {stored}\n  given:  {identity}\n"
            "resume it with the same method and n_evals, or start a new store")


#: what a stored method without an option (made before the option existed) planned: the
#: behaviour of that time
_BEFORE_OPTION: dict[str, dict[str, Any]] = {
    "explore": {"events": None},
    "refine": {"design": "region", "plausible_sd": 3.0, "walk_noise": 1.0},
}


def _planning(identity: Any) -> Any:
    """``identity`` without the refine stage's report-only options, options added after it
    was stored filled in with what it planned then (:data:`_BEFORE_OPTION`)."""
    if not isinstance(identity, dict) or not isinstance(identity.get("method"), dict):
        return identity
    method = {stage: dict(options) if isinstance(options, dict) else options
              for stage, options in identity["method"].items()}
    for stage, before in _BEFORE_OPTION.items():
        if isinstance(method.get(stage), dict):
            method[stage] = {**before, **method[stage]}
    if isinstance(method.get("refine"), dict):
        method["refine"] = {k: v for k, v in method["refine"].items()
                            if k not in RefineStage.REPORT_ONLY}
    return {**identity, "method": method}


def _explore(tuner: Tuner, runner: StageRunner, n_explore: int,
             callback: Callable[[Trial], None] | None,
             events_per_run: int | None) -> list[Trial]:
    """The explore stage: the tuner's engine for ``n_explore`` runs of ``events_per_run``
    events (None: the budget's) (a resumed store's finished ones count); returns its
    trials."""
    def explored() -> list[Trial]:
        return [t for t in tuner.history if not t.source.startswith(LOCAL_LABELS)]

    done = [t for t in explored() if t.status is not Status.PENDING]
    if len(done) < n_explore:
        if any(t.source.startswith(LOCAL_LABELS) for t in tuner.history):
            raise BayestuneError("the store's explore stage is incomplete but its local "
                                 "rounds have begun: it was not made by this method")
        result = tuner.run(n_explore, callback=callback)
        if not result.success:
            raise BayestuneError(f"the explore stage failed: {result.message}")
    # points an interrupted run left in flight and the finished stage did not need are
    # recorded as abandoned: never run, so not charged
    trials = [t for t in explored() if t.status is not Status.PENDING
              and not (t.error or "").startswith("abandoned")]
    if len(trials) > runner.budget.total:
        raise ValueError(f"the store holds {len(trials)} runs before the local rounds (imported "
                         f"or explored), more than n_evals={runner.budget.total}: raise n_evals")
    runner.budget.spend(len(trials), events_per_run)
    if not any(t.value is not None for t in trials):
        raise BayestuneError("no evaluation of the explore stage completed")
    return trials


def explore_record(trials: list[Trial], n_explore: int) -> StageRecord:
    ok = [(float(t.value), t) for t in trials if t.value is not None]
    best_chi2, best = min(ok, key=lambda pair: pair[0])
    return StageRecord("explore", len(trials), "its share of the budget spent",
                       {"failed": len(trials) - len(ok), "best_chi2": best_chi2,
                        "best": {n: float(v) for n, v in best.params.items()
                                 if isinstance(v, (int, float))}})
