"""Standard optimisation test problems with known minima (for tests, tutorials, benchmarks).

Each problem is a :class:`TestProblem`: a :class:`~bayestune.space.Space`, a callable taking a
``dict`` and the known minimum value ``f_min`` (and a minimiser where it is unique), so that
the *regret* ``f(x) - f_min`` of a result can be computed.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .seeding import point_rng
from .space import Real, Space

__all__ = ["TestProblem", "branin", "hartmann6", "rosenbrock", "levy", "PROBLEMS",
           "GaussianPeakSimulator", "ExponentialFitToy"]


@dataclass(frozen=True)
class TestProblem:
    """A test function on a box with a known minimum."""

    name: str
    space: Space
    function: Callable[[np.ndarray], float]
    f_min: float
    minimizers: list[list[float]] = field(default_factory=list)

    __test__ = False  # not a pytest test class

    def __call__(self, params: dict[str, Any]) -> float:
        return float(self.function(np.array([params[n] for n in self.space.names], float)))

    def regret(self, value: float) -> float:
        """``value - f_min``."""
        return float(value) - self.f_min


def _branin(x: np.ndarray) -> float:
    x1, x2 = x
    b, c = 5.1 / (4 * math.pi**2), 5 / math.pi
    r, s, t = 6.0, 10.0, 1 / (8 * math.pi)
    return (x2 - b * x1**2 + c * x1 - r) ** 2 + s * (1 - t) * math.cos(x1) + s


_H6_A = np.array([[10, 3, 17, 3.5, 1.7, 8], [0.05, 10, 17, 0.1, 8, 14],
                  [3, 3.5, 1.7, 10, 17, 8], [17, 8, 0.05, 10, 0.1, 14]])
_H6_P = 1e-4 * np.array([[1312, 1696, 5569, 124, 8283, 5886], [2329, 4135, 8307, 3736, 1004, 9991],
                         [2348, 1451, 3522, 2883, 3047, 6650], [4047, 8828, 8732, 5743, 1091, 381]])
_H6_ALPHA = np.array([1.0, 1.2, 3.0, 3.2])


def _hartmann6(x: np.ndarray) -> float:
    inner = np.sum(_H6_A * (x[None, :] - _H6_P) ** 2, axis=1)
    return float(-np.sum(_H6_ALPHA * np.exp(-inner)))


def _rosenbrock(x: np.ndarray) -> float:
    return float(np.sum(100.0 * (x[1:] - x[:-1] ** 2) ** 2 + (1 - x[:-1]) ** 2))


def _levy(x: np.ndarray) -> float:
    w = 1 + (x - 1) / 4
    term1 = math.sin(math.pi * w[0]) ** 2
    wi = w[:-1]
    middle = np.sum((wi - 1) ** 2 * (1 + 10 * np.sin(math.pi * wi + 1) ** 2))
    last = (w[-1] - 1) ** 2 * (1 + math.sin(2 * math.pi * w[-1]) ** 2)
    return float(term1 + middle + last)


def branin() -> TestProblem:
    """Branin on [-5, 10] x [0, 15]; three global minima with f = 0.397887."""
    space = Space([Real("x1", -5, 10), Real("x2", 0, 15)])
    return TestProblem("branin", space, _branin, 0.39788735772973816,
                       [[-math.pi, 12.275], [math.pi, 2.275], [9.42478, 2.475]])


def hartmann6() -> TestProblem:
    """Hartmann-6 on [0, 1]^6; f_min = -3.32237."""
    space = Space([Real(f"x{i + 1}", 0, 1) for i in range(6)])
    return TestProblem("hartmann6", space, _hartmann6, -3.3223680114155147,
                       [[0.20169, 0.150011, 0.476874, 0.275332, 0.311652, 0.6573]])


def rosenbrock(dim: int = 4) -> TestProblem:
    """Rosenbrock on [-2, 2]^dim; f_min = 0 at (1, ..., 1)."""
    space = Space([Real(f"x{i + 1}", -2, 2) for i in range(dim)])
    return TestProblem(f"rosenbrock{dim}", space, _rosenbrock, 0.0, [[1.0] * dim])


def levy(dim: int = 10) -> TestProblem:
    """Levy on [-10, 10]^dim; f_min = 0 at (1, ..., 1)."""
    space = Space([Real(f"x{i + 1}", -10, 10) for i in range(dim)])
    return TestProblem(f"levy{dim}", space, _levy, 0.0, [[1.0] * dim])


PROBLEMS: dict[str, Callable[[], TestProblem]] = {
    "branin": branin, "hartmann6": hartmann6, "rosenbrock4": rosenbrock, "levy10": levy,
    "levy20": lambda: levy(20),
}


class GaussianPeakSimulator:
    """A cheap stand-in for an event generator: a histogram of ``n_events`` draws.

    Each event gives a value ``x ~ Normal(mean, width)``; the simulator returns the unit-
    normalised histogram of ``x`` and the mean of ``x**2`` (a one-bin observable) with MC
    statistical errors, as :class:`~bayestune.hep.histogram.Histogram` objects. The random
    seed is derived from ``seed`` and the parameters (:func:`~bayestune.seeding.point_rng`), like
    :class:`~bayestune.hep.pythia.PythiaSimulator`, and :meth:`replicate` makes copies with
    other seeds or statistics (for pseudo-data).

    Parameters are ``{"mean": ..., "width": ...}``.
    """

    __test__ = False

    def __init__(self, n_events: int = 20_000, seed: int = 0,
                 edges: np.ndarray | None = None) -> None:
        if n_events < 1:
            raise ValueError(f"n_events must be >= 1, got n_events={n_events!r}")
        self.n_events = int(n_events)
        self.seed = int(seed)
        self.edges = np.linspace(-3.0, 3.0, 25) if edges is None else np.asarray(edges, float)

    def replicate(self, *, seed: int | None = None,
                  n_events: int | None = None) -> GaussianPeakSimulator:
        return GaussianPeakSimulator(self.n_events if n_events is None else n_events,
                                     self.seed if seed is None else seed, self.edges)

    def __call__(self, params: dict[str, Any]) -> dict[str, Any]:
        from .hep.histogram import Histogram

        rng = point_rng(self.seed, {"mean": params["mean"], "width": params["width"]})
        x = rng.normal(float(params["mean"]), float(params["width"]), self.n_events)
        counts, _ = np.histogram(x, bins=self.edges)
        width = np.diff(self.edges)
        frac = counts / self.n_events
        err = np.maximum(np.sqrt(frac * (1 - frac) / self.n_events), 1.0 / self.n_events)
        x2 = x**2
        return {
            "shape": Histogram.from_edges("/TOY/shape", self.edges, frac / width, err / width),
            "x2": Histogram.scalar("/TOY/x2", float(x2.mean()),
                                   float(x2.std() / math.sqrt(self.n_events))),
        }


class ExponentialFitToy:
    """chi2 of a fit of ``y = A exp(-k x)`` to Gaussian pseudo-data made with a given seed.

    A cheap objective with a slightly non-parabolic chi2 and a known truth
    (``A = 2, k = 0.8``), for coverage tests of the uncertainties: over many seeds the
    one-sigma intervals of a correct method cover the truth 68 % of the time.
    """

    __test__ = False

    truth = {"A": 2.0, "k": 0.8}
    x = np.linspace(0.0, 4.0, 12)
    sigma = 0.08

    def __init__(self, seed: int) -> None:
        rng = np.random.default_rng([seed, 0xC0FE])
        self.seed = seed
        self.space = Space([Real("A", 1.0, 3.0), Real("k", 0.3, 1.5)])
        self.data = self.model(self.truth) + rng.normal(0.0, self.sigma, self.x.size)

    def model(self, params: dict[str, Any]) -> np.ndarray:
        return params["A"] * np.exp(-params["k"] * self.x)

    def __call__(self, params: dict[str, Any]) -> float:
        return float(np.sum(((self.data - self.model(params)) / self.sigma) ** 2))
