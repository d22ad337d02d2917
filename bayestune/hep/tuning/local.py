"""The local stages alone on an existing campaign: :func:`refine_binwise`."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ...exceptions import BayestuneError
from ...space import Real
from ...uncertainty import Uncertainty
from ..binwise import BinwiseModel
from ..chi2 import HistogramObjective
from .budget import Budget
from .method import LOCAL_LABELS
from .options import ProbeStage, RefineStage
from .refine import LocalStages
from .runner import StageRunner

__all__ = ["refine_binwise"]


def refine_binwise(
    tuner: Any,
    objective: HistogramObjective,
    *,
    rounds: int = 3,
    n_per_round: int | None = None,
    width: float = 20.0,
    max_extent: float = 0.2,
    probe_valley: bool = True,
    rank: int | str | None = "auto",
    seed: int | None = 0,
    callback: Callable[..., None] | None = None,
) -> tuple[BinwiseModel, Uncertainty]:
    """The local stages of the generator-tuning method on an existing campaign: ``rounds``
    rounds of ``n_per_round`` evaluations that walk from the campaign's lowest evaluations
    to the minimum, each fitted bin by bin, then the final debiased fit
    (:mod:`bayestune.hep.tuning.refine`). Exactly ``rounds * n_per_round`` evaluations are
    made; with ``probe_valley``, one round may go along a flat valley instead (from six
    rounds on). :func:`~bayestune.hep.tuning.tune_generator` runs the whole method (the
    explore stage included) inside one budget.

    The rounds' evaluations are stored with the labels ``"refine:<round>"`` and
    ``"probe:<round>"``: a rerun with the same arguments reuses them (no new evaluations)
    and continues, whatever round-off did to the recomputed plan.

    Parameters
    ----------
    tuner : Tuner
        A tuner whose objective is ``objective`` (its campaign is extended).
    objective : HistogramObjective
        Built with ``keep_bins=True``.
    rounds : int
        At least 1; the final debiased fit needs a quadratic's coefficients + 2 round
        evaluations (three rounds of eight for four parameters), else the last round's fit
        is returned.
    n_per_round, width, max_extent, rank
        See :class:`~bayestune.hep.tuning.RefineStage`.
    probe_valley : bool
        See :class:`~bayestune.hep.tuning.ProbeStage`.
    seed : int, optional
        Seed of the designs.
    callback : callable, optional
        Called with each finished :class:`~bayestune.Trial`.
    """
    if isinstance(rounds, bool) or not isinstance(rounds, int) or rounds < 1:
        raise ValueError(f"rounds must be a positive integer, got rounds={rounds!r}")
    if not isinstance(probe_valley, bool):
        raise ValueError(f"probe_valley must be True or False, got probe_valley={probe_valley!r}")
    refine = RefineStage(n_per_round=n_per_round, width=width, max_extent=max_extent,
                         rank=rank)
    k = sum(isinstance(d, Real) for d in tuner.space)
    runner = StageRunner(tuner, Budget(rounds * refine.round_size(k)), callback)
    before = [t for t in tuner.history.completed
              if t.value is not None and not t.source.startswith(LOCAL_LABELS)]
    if not before:
        raise BayestuneError("refine_binwise needs completed evaluations to start from")
    local = LocalStages(runner, tuner.space, objective, before, refine,
                        ProbeStage(enabled=probe_valley), 0 if seed is None else seed)
    model, unc, _ = local.run(rounds)
    return model, unc
