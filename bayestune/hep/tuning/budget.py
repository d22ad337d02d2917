"""The budget of a generator tune and the log of its stages.

A physicist books CPU time: :class:`Budget` counts every generator run a tune makes (failed
ones too: they cost the same) against a hard total, and the events they simulated. The
stages of a tune draw their runs from it and record what they did in :class:`StageRecord`
entries: which stage ran, how many runs it used, and why the tune moved on.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from ...exceptions import BayestuneError

__all__ = ["Budget", "BudgetExhausted", "StageRecord"]


class BudgetExhausted(BayestuneError):
    """A stage asked for a run beyond the tune's budget (a bug in the stage's planning)."""


@dataclass
class Budget:
    """``total`` generator runs of ``events_per_run`` events each (None: unknown) unless a
    stage says otherwise when it spends them."""

    total: int
    events_per_run: int | None = None
    used: int = 0
    #: events of the runs counted so far (None once a run of unknown size was counted)
    _events: int | None = field(default=0, init=False, repr=False)

    def __post_init__(self) -> None:
        if isinstance(self.total, bool) or not isinstance(self.total, int) or self.total < 1:
            raise ValueError(f"the budget must be a positive number of generator runs, got "
                             f"n_evals={self.total!r}")
        if self.events_per_run is not None and (
                isinstance(self.events_per_run, bool)
                or not isinstance(self.events_per_run, int) or self.events_per_run < 1):
            raise ValueError("events_per_run must be a positive integer or None, got "
                             f"events_per_run={self.events_per_run!r}")
        self._events = (None if self.used and self.events_per_run is None
                        else self.used * (self.events_per_run or 0))

    @property
    def remaining(self) -> int:
        return self.total - self.used

    def spend(self, n: int = 1, events_per_run: int | None = None) -> None:
        """Count ``n`` runs of ``events_per_run`` events each (default: the budget's);
        raises :class:`BudgetExhausted` beyond the total."""
        if n > self.remaining:
            raise BudgetExhausted(f"{n} more run(s) would exceed the budget of {self.total} "
                                  f"generator runs ({self.used} used)")
        self.used += n
        per = self.events_per_run if events_per_run is None else events_per_run
        self._events = None if self._events is None or per is None else self._events + n * per

    @property
    def events(self) -> int | None:
        """Events simulated so far (None when the generator does not say per run)."""
        return self._events


@dataclass
class StageRecord:
    """What one stage of a tune did.

    Attributes
    ----------
    stage : str
        The stage's name (``"explore"``, ``"refine"``, ``"probe"``, ``"final-fit"``).
    runs : int
        Generator runs it used (replayed ones from a resumed store included).
    outcome : str
        Why the tune moved on (for example ``"budget share spent"``).
    details : dict
        Stage-specific numbers (centres, minima, gains), JSON-serialisable.
    """

    stage: str
    runs: int
    outcome: str
    details: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def __str__(self) -> str:
        return f"{self.stage:10s} {self.runs:4d} runs  {self.outcome}"
