"""A synthetic k-parameter generator of histograms, for choosing many-parameter methods.

Every bin is ``exp(a + g . u + u^T H u / 2)`` in the unit coordinates ``u`` of the box
(``[-1, 1]^k``): smooth, positive, not quadratic, with correlated curvature (``H`` built from
the bin's own gradient). Each observable (``bins`` bins) is sensitive to two to four of the
parameters, as real observables are to a few parameters each (shower, string, flavour). A call
adds Gaussian noise of ``rel_err`` of the value at 20k events (scaled by ``sqrt(20k /
n_events)``), seeded from the point (:func:`bayestune.seeding.point_rng`), so runs are the
same on every machine. It is a stand-in for shape and dimension, not a physics model: method
choices made on it are then checked with Pythia.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from bayestune.hep.histogram import Histogram
from bayestune.seeding import point_rng


class SyntheticBins:
    """``params -> {observable: Histogram}`` over parameters ``names`` with ranges ``low``,
    ``high``; the structure (which observable sees which parameters, the coefficients) is
    fixed by ``structure_seed``, the noise by ``seed`` and the point."""

    def __init__(self, names: list[str], low: np.ndarray, high: np.ndarray, *,
                 n_obs: int = 30, bins: int = 10, rel_err: float = 0.03,
                 n_events: int = 20_000, seed: int = 0, structure_seed: int = 123) -> None:
        rng = np.random.default_rng(structure_seed)
        k = len(names)
        self.names, self.low, self.high = list(names), np.asarray(low), np.asarray(high)
        self.n_obs, self.bins, self.rel_err = n_obs, bins, rel_err
        self.n_events, self.seed = n_events, seed
        n_bins = n_obs * bins
        self.a = rng.normal(0.0, 0.5, n_bins)
        self.g = np.zeros((n_bins, k))
        for o in range(n_obs):
            sensitive = rng.choice(k, size=int(rng.integers(2, 5)), replace=False)
            rows = slice(o * bins, (o + 1) * bins)
            self.g[rows, sensitive] = rng.normal(0.0, 0.4, (bins, len(sensitive)))
        self.h = np.einsum("bi,bj->bij", self.g, self.g) * rng.normal(0.0, 0.3, (n_bins, 1, 1))

    def replicate(self, *, seed: int | None = None,
                  n_events: int | None = None) -> SyntheticBins:
        copy = object.__new__(SyntheticBins)
        copy.__dict__.update(self.__dict__)
        copy.seed = self.seed if seed is None else seed
        copy.n_events = self.n_events if n_events is None else n_events
        return copy

    def unit(self, params: dict[str, Any]) -> np.ndarray:
        x = np.array([float(params[n]) for n in self.names])
        return 2.0 * (x - self.low) / (self.high - self.low) - 1.0

    def mean(self, params: dict[str, Any]) -> np.ndarray:
        u = self.unit(params)
        return np.exp(self.a + self.g @ u + 0.5 * np.einsum("bij,i,j->b", self.h, u, u))

    def __call__(self, params: dict[str, Any]) -> dict[str, Histogram]:
        m = self.mean(params)
        err = self.rel_err * m * np.sqrt(20_000 / self.n_events)
        y = m + point_rng(self.seed, params).normal(size=m.size) * err
        edges = np.arange(self.bins + 1.0)
        return {f"obs{o}": Histogram.from_edges(
                    f"/SYNTHETIC/obs{o}", edges, y[o * self.bins:(o + 1) * self.bins],
                    err[o * self.bins:(o + 1) * self.bins])
                for o in range(self.n_obs)}

    def reference(self, params: dict[str, Any], rel_err: float = 0.02) -> dict[str, Histogram]:
        """Stand-in measured data: the mean at ``params`` with relative errors ``rel_err``."""
        m = self.mean(params)
        edges = np.arange(self.bins + 1.0)
        return {f"obs{o}": Histogram.from_edges(
                    f"/SYNTHETIC/obs{o}", edges, m[o * self.bins:(o + 1) * self.bins],
                    rel_err * m[o * self.bins:(o + 1) * self.bins])
                for o in range(self.n_obs)}
