"""A fast stand-in for Pythia over the four-parameter box, for studying tuning methods.

Fitted to the 256-point Pythia design of ``bench_box_design.py`` (``results/box4_design.npz``,
20k events per point over the published ranges of TimeShower:alphaSvalue, StringZ:aLund,
StringZ:bLund, StringPT:sigma): every bin's value is a weighted quartic in the box's unit
coordinates and its MC error a quadratic in them (clipped at a fifth of the smallest error
the design saw). A call adds Gaussian noise of that error for the requested number of
events, seeded from the point (:func:`bayestune.seeding.point_rng`), so runs are the same on
every machine. The quartics miss Pythia by 1.2-3.9 MC errors over the box (its
leave-one-out table), so the emulated generator is a smooth generator of realistic shape,
not Pythia: method choices are made on it and then checked with the real generator.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "examples"))

from pythia_closure import SPACE  # noqa: E402

from bayestune.hep import lep  # noqa: E402
from bayestune.hep.histogram import Histogram  # noqa: E402
from bayestune.seeding import point_rng  # noqa: E402

DESIGN = Path(__file__).resolve().parent / "results" / "box4_design.npz"
NOISE = Path(__file__).resolve().parent / "results" / "mc_noise_replicas.npz"
NAMES = SPACE.names
#: the emulated generator's MC noise: independent bins, bins moving together as in one Pythia
#: run, or none (the quartics' values with their errors, for diagnostics)
NOISE_KINDS = ("independent", "correlated", "none")
LOW = np.array([d.low for d in SPACE])
HIGH = np.array([d.high for d in SPACE])


def monomials(u: np.ndarray, degree: int) -> np.ndarray:
    """All monomials of the columns of ``u`` (n, k) up to ``degree`` (with the constant)."""
    from itertools import combinations_with_replacement

    cols = [np.ones(len(u))]
    for d in range(1, degree + 1):
        for combo in combinations_with_replacement(range(u.shape[1]), d):
            cols.append(np.prod(u[:, combo], axis=1))
    return np.column_stack(cols)


class BoxEmulator:
    """Per-bin quartics of the box design; :meth:`simulator` gives a noisy generator."""

    def __init__(self, design: Path = DESIGN, data: str | None = None,
                 noise: str = "independent") -> None:
        if noise not in NOISE_KINDS:
            raise ValueError(f"noise must be one of {NOISE_KINDS}, got noise={noise!r}")
        with np.load(design, allow_pickle=False) as d:
            X, Y, E = d["points"], d["values"], d["errors"]
            self.ids = [str(i) for i in d["observables"]]
            self.design_events = int(d["events"])
        self.reference = lep.load_reference(lep.observables("core"), data)
        u = 2 * (X - LOW) / (HIGH - LOW) - 1
        A4, A2 = monomials(u, 4), monomials(u, 2)
        W = 1.0 / np.maximum(E, 1e-12)
        self.value_coef = np.array([np.linalg.lstsq(A4 * W[:, [b]], Y[:, b] * W[:, b],
                                                    rcond=None)[0] for b in range(Y.shape[1])])
        self.error_coef = np.linalg.lstsq(A2, E, rcond=None)[0].T  # (B, p2)
        self.error_floor = 0.2 * E.min(axis=0)
        self.edges = np.cumsum([0] + [self.reference[i].n_bins for i in self.ids])
        # correlated noise: combinations of Pythia's standardised replica deviations
        # (bench_mc_noise.py), so that the bins move together as in one Pythia run
        self.deviations = None
        self.noiseless = noise == "none"
        if noise == "correlated":
            with np.load(NOISE, allow_pickle=False) as d:
                dev = d["deviations"]
            self.deviations = dev.reshape(-1, dev.shape[-1])

    def standard_noise(self, rng: np.random.Generator) -> np.ndarray:
        """Noise of unit variance per bin: independent, or correlated as Pythia's (zero
        without noise)."""
        if self.noiseless:
            return np.zeros(self.value_coef.shape[0])
        if self.deviations is None:
            return rng.normal(size=self.value_coef.shape[0])
        z = rng.normal(size=len(self.deviations))
        return z @ self.deviations / np.sqrt(len(self.deviations))

    def noise_correlation(self) -> np.ndarray:
        """The correlation matrix of :meth:`standard_noise` (bins x bins)."""
        if self.deviations is None:
            return np.eye(self.value_coef.shape[0])
        return self.deviations.T @ self.deviations / len(self.deviations)

    def _unit(self, x: np.ndarray) -> np.ndarray:
        return 2 * (np.atleast_2d(x) - LOW) / (HIGH - LOW) - 1

    def mean(self, x: np.ndarray) -> np.ndarray:
        """The emulated bins (all observables, in order) at the point ``x`` (physical units)."""
        return self.value_coef @ monomials(self._unit(x), 4)[0]

    def error(self, x: np.ndarray, n_events: int) -> np.ndarray:
        """The MC errors of ``n_events`` at ``x``."""
        e = np.maximum(self.error_coef @ monomials(self._unit(x), 2)[0], self.error_floor)
        return e * np.sqrt(self.design_events / n_events)

    def histograms(self, values: np.ndarray, errors: np.ndarray) -> dict[str, Histogram]:
        return {i: self.reference[i].with_values(values[a:b], errors[a:b])
                for i, a, b in zip(self.ids, self.edges[:-1], self.edges[1:])}

    def simulator(self, n_events: int = 20_000, key: int = 0) -> EmulatedGenerator:
        return EmulatedGenerator(self, n_events, key)


class EmulatedGenerator:
    """``simulate(params) -> {id: Histogram}`` with the MC noise of ``n_events``; the noise
    is seeded from the point and ``key`` (another key: another generator seed)."""

    def __init__(self, emulator: BoxEmulator, n_events: int, key: int) -> None:
        self.emulator, self.n_events, self.key = emulator, int(n_events), int(key)
        self.calls = 0

    def replicate(self, *, seed: int | None = None,
                  n_events: int | None = None) -> EmulatedGenerator:
        return EmulatedGenerator(self.emulator, n_events or self.n_events,
                                 self.key if seed is None else seed)

    def __call__(self, params: dict[str, Any]) -> dict[str, Histogram]:
        self.calls += 1
        x = np.array([float(params[n]) for n in NAMES])
        err = self.emulator.error(x, self.n_events)
        rng = point_rng(self.key * 1_000_003 + self.n_events, params)
        values = self.emulator.mean(x) + self.emulator.standard_noise(rng) * err
        return self.emulator.histograms(values, err)


def central_truth(seed: int, fraction: float = 0.6) -> dict[str, float]:
    """A truth drawn uniformly (by ``seed``) inside the central ``fraction`` of the ranges."""
    u = np.random.default_rng([2026, seed]).uniform(size=len(NAMES))
    x = LOW + (HIGH - LOW) * (0.5 - fraction / 2 + fraction * u)
    return {n: float(round(v, 4)) for n, v in zip(NAMES, x)}
