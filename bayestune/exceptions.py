"""Exception and warning classes raised by bayestune.

Every error message states the rule that was broken and the value that broke it, e.g.
``lower bound must be < upper bound, got low=3.0, high=1.0 for 'StringZ:aLund'``.
"""

from __future__ import annotations


class BayestuneError(Exception):
    """Base class of all bayestune errors."""


class SpaceError(BayestuneError, ValueError):
    """A parameter definition or a point does not fit the search space."""


class StoreError(BayestuneError):
    """The campaign store cannot be opened or does not match the campaign."""


class ObjectiveError(BayestuneError):
    """The objective returned something that is not a usable value."""


class EngineError(BayestuneError):
    """An optional optimisation engine is unavailable or failed."""


class CampaignError(BayestuneError):
    """The campaign cannot continue (for example every evaluation fails)."""


class TrialStopped(BayestuneError):
    """Raise inside an objective to end a trial that the scheduler stopped.

    The trial is recorded as complete with its last reported value.
    """


class BayestuneWarning(UserWarning):
    """Base class of all bayestune warnings."""


class NumericalWarning(BayestuneWarning):
    """A numerical fallback was needed (jitter, a failed hyperparameter fit, ...)."""
