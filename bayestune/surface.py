"""The function that uncertainties are read from: an objective surface over real parameters.

A :class:`Surface` maps values of the varied (real) parameters, in physical units, to the
objective (a chi2 or -ln L). :class:`GPSurface` is the surrogate's posterior mean and can
also draw bootstrap replicas of itself, which propagate the surrogate's own uncertainty
into posterior samples; :class:`FunctionSurface` wraps any vectorised function.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterator, Sequence
from typing import Any

import numpy as np

from .exceptions import BayestuneError
from .space import Real

__all__ = ["Surface", "GPSurface", "FunctionSurface", "RealCoordinates", "minuit_fit"]


class RealCoordinates:
    """Maps values of a space's real parameters to a full unit-cube row.

    The other parameters stay at their values in ``base``. ``names`` and ``dims`` list the
    real parameters in space order.
    """

    def __init__(self, space: Any, base: dict[str, Any]) -> None:
        self.dims = [d for d in space if isinstance(d, Real)]
        if not self.dims:
            raise BayestuneError("uncertainties need at least one Real parameter")
        self.names = [d.name for d in self.dims]
        self._base = space.to_unit(space.validate(base))
        self._cols = [space.columns_of(n).start for n in self.names]

    def __call__(self, values: np.ndarray) -> np.ndarray:
        u = self._base.copy()
        for c, d, v in zip(self._cols, self.dims, values):
            u[c] = d.encode(float(v))[0]
        return u

    def many(self, values: np.ndarray) -> np.ndarray:
        """Unit-cube rows for values of shape ``(n, k)``; returns ``(n, d)``."""
        return np.array([self(row) for row in np.atleast_2d(values)])


class Surface:
    """An objective surface over the real parameters (physical units)."""

    def values(self, X: np.ndarray) -> np.ndarray:
        """Objective at ``X`` of shape ``(n, k)``; returns ``(n,)``."""
        raise NotImplementedError

    def __call__(self, *values: float) -> float:
        return float(self.values(np.asarray(values, dtype=float)[None, :])[0])

    def replicas(self, n: int, rng: np.random.Generator) -> Iterator[Surface]:
        """``n`` surfaces that spread as the surface's own uncertainty (default: itself)."""
        for _ in range(n):
            yield self


class FunctionSurface(Surface):
    """A surface from a function ``f(X (n, k)) -> (n,)``."""

    def __init__(self, function: Callable[[np.ndarray], np.ndarray]) -> None:
        self.function = function

    def values(self, X: np.ndarray) -> np.ndarray:
        return np.asarray(self.function(np.atleast_2d(X)), dtype=float)


class GPSurface(Surface):
    """The posterior mean of a :class:`~bayestune.GPSurrogate` along the real parameters."""

    def __init__(self, surrogate: Any, coords: RealCoordinates) -> None:
        self.surrogate = surrogate
        self.coords = coords

    def values(self, X: np.ndarray) -> np.ndarray:
        return np.asarray(self.surrogate.predict(self.coords.many(X))[0], dtype=float)

    def std(self, X: np.ndarray) -> np.ndarray:
        """Posterior standard deviation of the objective at ``X`` (n, k)."""
        return np.asarray(self.surrogate.predict(self.coords.many(X))[1], dtype=float)

    def replicas(self, n: int, rng: np.random.Generator) -> Iterator[Surface]:
        """Parametric-bootstrap replicas of the surrogate (see ``GPSurrogate.resampled``)."""
        for _ in range(n):
            yield GPSurface(self.surrogate.resampled(rng), self.coords)


def minuit_fit(
    fcn: Callable[..., float], names: list[str], start: Sequence[float],
    limits: Sequence[tuple[float, float]], errordef: float, *, hesse: bool = True,
    fixed: Collection[str] = (),
    migrad: bool = True,
) -> Any:
    """MIGRAD (then HESSE) of ``fcn(*values)`` inside ``limits``; returns the Minuit object.

    Parameters named in ``fixed`` stay at their start values; ``migrad=False`` only runs
    HESSE at the start (the local curvature there).
    """
    from iminuit import Minuit

    m = Minuit(fcn, *start, name=names)
    m.errordef = errordef
    for n, (lo, hi) in zip(names, limits):
        m.limits[n] = (lo, hi)
        m.errors[n] = 0.05 * (hi - lo)
    for n in fixed:
        m.fixed[n] = True
    if migrad:
        m.migrad()
    if hesse:
        m.hesse()
    return m
