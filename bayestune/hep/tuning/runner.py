"""Evaluations of a tune's stages, by identity and within the budget.

Every evaluation a stage plans is stored with a label naming the stage and round
(``source = "refine:3"``) and found again by that label and its position in the round (its
slot). A resumed tune therefore reuses exactly the evaluations it planned, even when the
recomputed plan differs in the last digits (fits end anywhere within their tolerance on
another machine); a point that was in flight when the tune stopped is evaluated again, and
nothing completed is run twice. Which options made a store is checked once, by the method
(:func:`~bayestune.hep.tuning.method.tune_generator`), not point by point here.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from typing import Any

from ...execution import driver_death_failure
from ...history import Trial
from ...objective import Status, evaluate
from .budget import Budget

__all__ = ["StageRunner"]


class StageRunner:
    """Runs planned points through ``objective`` (default: ``tuner``'s) into ``tuner``'s
    store, charging ``budget``."""

    def __init__(self, tuner: Any, budget: Budget,
                 callback: Callable[[Trial], None] | None = None,
                 max_driver_deaths: int = 2, objective: Any = None) -> None:
        self.tuner = tuner
        self.objective = tuner.objective if objective is None else objective
        self.max_driver_deaths = max_driver_deaths
        self.budget = budget
        self.callback = callback
        self._stored: dict[str, list[Trial]] = defaultdict(list)
        for trial in tuner.history:
            self._stored[trial.source].append(trial)
        self.replayed = 0

    def stored(self, label: str) -> list[Trial]:
        """The store's evaluations with ``label``, in the order they were planned."""
        return list(self._stored.get(label, []))

    def run(self, label: str, points: Sequence[dict[str, Any]]) -> list[Trial]:
        """Evaluate ``points`` as the slots of ``label`` (stored ones are reused); returns the
        finished trials, failed ones included, in slot order."""
        stored = self._stored.get(label, [])
        if len(stored) > len(points):
            raise ValueError(f"the store holds {len(stored)} evaluations labelled {label!r} "
                             f"where this tune plans {len(points)}")
        out = []
        for slot, point in enumerate(points):
            self.budget.spend(1)
            if slot < len(stored) and stored[slot].status is not Status.PENDING:
                self.replayed += 1
                out.append(stored[slot])
                continue
            if slot < len(stored):  # in flight when the tune stopped: run its point again
                trial = self._finish(stored[slot])
            else:
                pending = self.tuner.store.add_pending(self.tuner.space.validate(dict(point)),
                                                       label)
                stored.append(pending)
                self._stored[label] = stored
                trial = self._finish(pending)
            stored[slot] = trial
            if self.callback is not None:
                self.callback(trial)
            out.append(trial)
        return out

    def _finish(self, pending: Trial) -> Trial:
        """Evaluate a pending trial in this process (a point whose evaluation ended the
        process ``max_driver_deaths`` times is recorded as failed instead)."""
        store = self.tuner.store
        killed = driver_death_failure(store.driver_deaths().get(pending.number, 0),
                                      self.max_driver_deaths)
        if killed is not None:
            return self.tuner.tell(pending, killed)
        store.record_start(pending.number)
        try:
            outcome = evaluate(self.objective, pending.params)
        except KeyboardInterrupt:  # stopped on purpose, not killed by the point
            store.forget_starts()
            raise
        return self.tuner.tell(pending, outcome)
