"""The objective interface: any callable ``f(params: dict) -> float | Evaluation``.

An objective may return a plain number or an :class:`Evaluation` carrying the known noise
variance of the value (for example the Monte Carlo statistical variance of a chi2) and free
``info``. :func:`evaluate` calls an objective and turns *anything* it does -- a number, an
exception, NaN, inf, a wrong type -- into an :class:`Outcome`, so that a campaign never dies
because one evaluation misbehaved.
"""

from __future__ import annotations

import math
import numbers
import time
import traceback
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any

import numpy as np

from .exceptions import ObjectiveError, TrialStopped

__all__ = ["Evaluation", "Outcome", "Status", "evaluate", "Objective"]


@dataclass(frozen=True)
class Evaluation:
    """The result of one objective evaluation.

    Parameters
    ----------
    value : float
        The objective value (to be minimised).
    variance : float or None
        Known noise variance of ``value`` (e.g. from Monte Carlo statistics). ``None`` means
        unknown: the surrogate then learns a noise level.
    info : dict
        Anything JSON-serialisable to keep with the trial (per-observable chi2, ...).
    """

    value: float
    variance: float | None = None
    info: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not _is_number(self.value):
            raise ObjectiveError(f"Evaluation value must be a number, got value={self.value!r}")
        if self.variance is not None:
            if not _is_number(self.variance):
                raise ObjectiveError(
                    f"Evaluation variance must be a number, got variance={self.variance!r}")
            var = float(self.variance)
            if not (math.isfinite(var) and var >= 0):
                raise ObjectiveError(
                    f"Evaluation variance must be finite and >= 0, got variance={self.variance!r}"
                )
        if not isinstance(self.info, Mapping):
            raise ObjectiveError(f"Evaluation info must be a dict, got info={self.info!r}")


Objective = Callable[[dict[str, Any]], "float | Evaluation"]

#: Largest magnitude of a value the surrogate can model: standardising squares values, and
#: beyond this their squares overflow. An objective this large should return a transformed
#: score (for example its logarithm).
MAX_VALUE = 1e150


def _is_number(x: Any) -> bool:
    """A real number (Python or numpy, or a 0-d numeric array), not a bool or a string
    that looks like one."""
    if isinstance(x, np.ndarray):
        return x.ndim == 0 and x.dtype.kind in "fiu"
    return isinstance(x, numbers.Real) and not isinstance(x, (bool, np.bool_))


class Status(StrEnum):
    """State of a trial in the campaign store."""

    PENDING = "pending"
    COMPLETE = "complete"
    FAILED = "failed"


@dataclass(frozen=True)
class Outcome:
    """What happened when an objective was called: a value or a failure reason."""

    status: Status
    value: float | None = None
    variance: float | None = None
    info: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    duration: float = 0.0

    @classmethod
    def failed(cls, reason: str, duration: float = 0.0) -> Outcome:
        """A failed outcome with a one-paragraph reason."""
        return cls(Status.FAILED, error=reason, duration=duration)


def as_outcome(result: Any, duration: float = 0.0) -> Outcome:
    """Interpret what an objective returned (number or :class:`Evaluation`).

    Non-finite values and unusable return types become failed outcomes with a reason.
    """
    if isinstance(result, Evaluation):
        value, variance, info = result.value, result.variance, dict(result.info)
    elif _is_number(result):
        value, variance, info = result, None, {}
    else:
        return Outcome.failed(
            f"objective must return a float or an Evaluation, got {result!r}"[:400]
            + f" (a {type(result).__name__})", duration)
    value = float(value)
    if not math.isfinite(value):
        return Outcome.failed(f"objective returned a non-finite value: {value!r}", duration)
    if abs(value) > MAX_VALUE:
        return Outcome.failed(
            f"objective returned {value!r}, beyond the +-{MAX_VALUE:g} a surrogate can model; "
            "return a transformed score (for example its logarithm)", duration)
    if variance is not None:
        variance = float(variance)
    return Outcome(Status.COMPLETE, value=value, variance=variance, info=info, duration=duration)


def evaluate(
    objective: Callable[..., Any], params: dict[str, Any], trial: Any = None
) -> Outcome:
    """Call ``objective(params)`` (or ``objective(params, trial)``) and capture the outcome.

    Exceptions (but not ``KeyboardInterrupt``/``SystemExit``) are recorded with their type,
    message and the innermost frames of the traceback. With a trial handle, an objective
    that raises :class:`~bayestune.exceptions.TrialStopped` completes with its last
    reported value, and a trial the scheduler stopped has ``info["stopped_at"]``.
    """
    start = time.perf_counter()
    try:
        if trial is None:
            result = objective(dict(params))
        else:
            try:
                result = objective(dict(params), trial)
            except TrialStopped:
                if trial.last is None:
                    return Outcome.failed("TrialStopped raised before any report",
                                          time.perf_counter() - start)
                result = trial.last[1]
    except Exception as exc:  # noqa: BLE001 - any error of user code becomes a failed trial
        tb = traceback.format_exception(type(exc), exc, exc.__traceback__, limit=-3)
        reason = f"{type(exc).__name__}: {exc}\n" + "".join(tb)
        return Outcome.failed(reason, time.perf_counter() - start)
    finally:
        if trial is not None:
            trial.close()
    outcome = as_outcome(result, time.perf_counter() - start)
    if trial is not None and trial.should_stop() and trial.last is not None:
        outcome = replace(outcome, info={**outcome.info, "stopped_at": trial.last[0]})
    return outcome
