"""How a histogram tune is run and where its estimate comes from: one object per method.

A closure test (and a campaign file) names its method with one of these objects instead of
strings; each runs the tune within ``n_evals`` objective calls and returns the campaign's
:class:`~bayestune.Result` and the :class:`~bayestune.Uncertainty` of its estimate.

- :class:`SurrogateTuning`: Bayesian optimisation of the chi2 (the GP of ``ln chi2``, or
  the composite bin-emulator engine), the estimate and errors from the GP surrogate
  (:func:`~bayestune.estimate_uncertainty`), optionally after rounds of
  :func:`~bayestune.refine`; with ``surface="quadratic"`` from a quadratic through the chi2
  values near the lowest.
- :class:`CompositeTuning`: the composite engine, the estimate from the emulated bins
  (experimental).
- :class:`~bayestune.hep.tuning.GeneratorTuning`: the generator-tuning method (explore,
  local rounds fitted bin by bin, final debiased fit) under a hard budget.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from .exceptions import BayestuneError
from .history import Trial
from .refinement import refine
from .result import Result
from .space import Real, Space
from .surrogate_config import SurrogateConfig
from .tuner import Tuner
from .uncertainty import Uncertainty, estimate_or_gp, estimate_uncertainty

__all__ = ["CompositeTuning", "SurrogateTuning", "TuneOutcome", "as_strategy"]


@dataclass
class TuneOutcome:
    """A strategy's result: the campaign, the estimate's uncertainty, and the generator
    tune's own result when the method was :class:`~bayestune.hep.tuning.GeneratorTuning`."""

    result: Result
    uncertainty: Uncertainty
    tune: Any = None


@dataclass(frozen=True)
class SurrogateTuning:
    """Bayesian optimisation of the chi2, the estimate from its surrogate.

    Attributes
    ----------
    optimiser : {"gp", "composite"}
        Engine of the tune: the GP of ``ln chi2`` or the composite bin-emulator engine.
    surface : {"gp", "quadratic"}
        The surrogate of the estimate: the GP (with ``n_bootstrap`` replicas) or a
        weighted quadratic through the chi2 values near the lowest (the GP when none fits).
    refine_rounds : int
        Rounds of :func:`~bayestune.refine` (``2 k + 1`` evaluations each) at the end of
        the budget.
    n_bootstrap : int
        Bootstrap replicas of the surrogate part of the uncertainty (0: Hessian alone).
    """

    optimiser: str = "gp"
    surface: str = "gp"
    refine_rounds: int = 0
    n_bootstrap: int = 30

    def __post_init__(self) -> None:
        if self.optimiser not in ("gp", "composite"):
            raise ValueError(f"optimiser must be 'gp' or 'composite', got "
                             f"optimiser={self.optimiser!r}")
        if self.surface not in ("gp", "quadratic"):
            raise ValueError(f"surface must be 'gp' or 'quadratic', got surface={self.surface!r}")
        for name in ("refine_rounds", "n_bootstrap"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"{name} must be an integer >= 0, got {name}={value!r}")

    @property
    def keep_bins(self) -> bool:
        """The composite engine emulates the bins: the objective must keep them."""
        return self.optimiser == "composite"

    def tune(self, objective: Any, space: Space, n_evals: int, *, seed: int, store: Any,
             callback: Callable[[Trial], None] | None,
             tuner_options: dict[str, Any] | None) -> TuneOutcome:
        k = sum(isinstance(d, Real) for d in space)
        n_refine = self.refine_rounds * (2 * k + 1)
        if n_evals - n_refine < 2 * len(space) + 2:
            raise ValueError(
                f"refine_rounds must leave the optimisation at least {2 * len(space) + 2} of "
                f"n_evals={n_evals} (each round takes {2 * k + 1}), got "
                f"refine_rounds={self.refine_rounds!r}")
        with chi2_tuner(space, objective, self.optimiser, seed, store, tuner_options) as tuner:
            result = tuner.run(n_evals - n_refine, callback=callback)
            if not result.success:
                raise BayestuneError(f"the closure tune failed: {result.message}")
            done = sum(t.source == "refine" for t in result.history.completed)
            # a resumed store has some rounds already (a round skips an evaluated centre)
            rounds = self.refine_rounds - -(-done // (2 * k + 1))
            if rounds > 0:
                refine(tuner, max_rounds=rounds, min_rounds=rounds, delta="noise", seed=seed,
                       callback=callback, surface=self.surface)
                result = tuner.result()
        if self.surface == "quadratic":  # the GP (with its bootstrap) when no quadratic fits
            unc = estimate_or_gp(result, 1.0, None, {"surface": "quadratic", "seed": seed,
                                                     "n_bootstrap": self.n_bootstrap})
        else:
            unc = estimate_uncertainty(result, n_bootstrap=self.n_bootstrap, seed=seed)
        return TuneOutcome(result, unc)


@dataclass(frozen=True)
class CompositeTuning:
    """The composite bin-emulator engine; the estimate minimises the chi2 of the emulated
    bins (experimental)."""

    keep_bins = True

    def tune(self, objective: Any, space: Space, n_evals: int, *, seed: int, store: Any,
             callback: Callable[[Trial], None] | None,
             tuner_options: dict[str, Any] | None) -> TuneOutcome:
        from .hep.composite import BinEmulator

        with chi2_tuner(space, objective, "composite", seed, store, tuner_options) as tuner:
            result = tuner.run(n_evals, callback=callback)
            if not result.success:
                raise BayestuneError(f"the closure tune failed: {result.message}")
        emulator = BinEmulator(space, objective).fit(result.history,
                                                     np.random.default_rng([seed, 7]))
        return TuneOutcome(result, emulator.uncertainty())


#: The surrogate of a chi2 objective. A chi2 spans orders of magnitude between its walls and
#: its valley floor: the GP models ln(chi2). The closure calibration (``bench_closure_toy.py``,
#: ``bench_coverage.py``) was measured with maximum-likelihood length scales and a
#: Gamma(2.1, 20) noise prior and no trend, which this keeps (pinned, whatever the default
#: surrogate becomes) rather than the default surrogate's priors.
CHI2_SURROGATE = SurrogateConfig(warping="chi2", lengthscale_prior=False, noise_prior=(2.1, 20.0),
                                 trend=None)


def chi2_tuner(space: Space, objective: Any, engine: Any, seed: int, store: Any,
               tuner_options: dict[str, Any] | None) -> Tuner:
    """A :class:`~bayestune.Tuner` of a chi2 objective: the GP models ``ln(chi2)`` unless
    ``tuner_options`` says otherwise, and ``engine="composite"`` is the composite
    bin-emulator engine with its defaults (other names, and engine objects, go to the
    tuner)."""
    from .hep.composite import CompositeChi2Engine

    options = dict(tuner_options or {})
    options.setdefault("surrogate", CHI2_SURROGATE)
    if engine == "composite":
        options.setdefault("engine", CompositeChi2Engine(space, objective))
    elif engine != "gp":
        options.setdefault("engine", engine)
    return Tuner(space, objective, seed=seed, store=store, **options)


def as_strategy(estimator: str = "surrogate", optimiser: str | None = None,
                refine_rounds: int = 0, n_bootstrap: int = 30, n_evals: int = 60,
                k: int = 1) -> Any:
    """The strategy object named by the string options of earlier releases
    (``estimator``, ``optimiser``, ``refine_rounds``): ``estimator="binwise"`` is the
    generator-tuning method with ``refine_rounds`` local rounds of its budget."""
    from .hep.tuning import ExploreStage, GeneratorTuning

    kinds = ("surrogate", "quadratic", "binwise", "composite")
    if estimator not in kinds:
        raise ValueError(f"estimator must be one of {kinds}, got estimator={estimator!r}")
    if estimator == "composite":
        return CompositeTuning()
    if estimator == "binwise":
        if isinstance(refine_rounds, bool) or not isinstance(refine_rounds, int) or \
                refine_rounds < 1:
            raise ValueError("estimator='binwise' fits a local design: it needs "
                             f"refine_rounds >= 1, got refine_rounds={refine_rounds!r}")
        n_round = max(2 * k, 8)
        explore = n_evals - refine_rounds * n_round
        if explore < 2 * k + 2:
            raise ValueError(f"refine_rounds={refine_rounds} rounds of {n_round} leave too "
                             f"few of n_evals={n_evals} to explore")
        return GeneratorTuning(explore=ExploreStage(runs=explore,
                                                    engine=optimiser or "composite"))
    return SurrogateTuning(optimiser=optimiser or "gp",
                           surface="quadratic" if estimator == "quadratic" else "gp",
                           refine_rounds=refine_rounds, n_bootstrap=n_bootstrap)
