"""Trials and the campaign history (a read-only view of the store's rows)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .objective import Status

__all__ = ["Trial", "History"]


@dataclass(frozen=True)
class Trial:
    """One proposed point and, once told, its outcome.

    Attributes
    ----------
    number : int
        Position in the campaign, from 0.
    params : dict
        Parameter values in physical units.
    status : Status
        ``pending`` (asked, not told), ``complete`` or ``failed``.
    value, variance : float or None
        Objective value and its known noise variance.
    error : str or None
        Why the trial failed.
    info : dict
        Free information returned by the objective.
    duration : float
        Seconds spent in the objective.
    source : str
        Who proposed the point (``"design"``, ``"gp:ei"``, ``"skopt"``, ``"user"``, ...).
    reports : tuple of (step, value)
        Intermediate values the trial reported while running (e.g. per epoch).
    """

    number: int
    params: dict[str, Any]
    status: Status = Status.PENDING
    value: float | None = None
    variance: float | None = None
    error: str | None = None
    info: dict[str, Any] = field(default_factory=dict)
    duration: float = 0.0
    source: str = ""
    created: float = 0.0
    finished: float | None = None
    reports: tuple[tuple[float, float], ...] = ()

    @property
    def ok(self) -> bool:
        """True for a completed trial with a finite value."""
        return self.status is Status.COMPLETE


class History(Sequence[Trial]):
    """An ordered, immutable list of trials with array accessors.

    Parameters
    ----------
    trials : sequence of Trial
    """

    def __init__(self, trials: Sequence[Trial]) -> None:
        self._trials = tuple(trials)

    def __len__(self) -> int:
        return len(self._trials)

    def __iter__(self) -> Iterator[Trial]:
        return iter(self._trials)

    def __getitem__(self, i):  # type: ignore[no-untyped-def]
        if isinstance(i, slice):
            return History(self._trials[i])
        return self._trials[i]

    def __repr__(self) -> str:
        return (f"History({len(self)} trials: {len(self.completed)} complete, "
                f"{len(self.failed)} failed, {len(self.pending)} pending)")

    @property
    def completed(self) -> list[Trial]:
        return [t for t in self._trials if t.status is Status.COMPLETE]

    @property
    def failed(self) -> list[Trial]:
        return [t for t in self._trials if t.status is Status.FAILED]

    @property
    def pending(self) -> list[Trial]:
        return [t for t in self._trials if t.status is Status.PENDING]

    @property
    def n_finished(self) -> int:
        """Number of complete plus failed trials."""
        return sum(t.status is not Status.PENDING for t in self._trials)

    def values(self) -> np.ndarray:
        """Values of completed trials, shape ``(n_complete,)``."""
        return np.array([t.value for t in self.completed], dtype=float)

    def variances(self) -> np.ndarray:
        """Known variances of completed trials (NaN where not reported)."""
        return np.array([np.nan if t.variance is None else t.variance for t in self.completed],
                        dtype=float)

    def best(self) -> Trial | None:
        """The completed trial with the lowest observed value."""
        done = self.completed
        return min(done, key=lambda t: t.value) if done else None  # type: ignore[arg-type,return-value]

    def best_so_far(self) -> np.ndarray:
        """Running minimum of observed values over finished trials (NaN before the first)."""
        out, best = [], np.inf
        for t in self._trials:
            if t.status is Status.COMPLETE and t.value is not None:
                best = min(best, t.value)
            if t.status is not Status.PENDING:
                out.append(best if np.isfinite(best) else np.nan)
        return np.array(out)
