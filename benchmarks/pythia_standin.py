"""A fast stand-in for Pythia over the ten-parameter box, with Pythia's own sensitivities.

Fitted to the 160-run space-filling design of a ten-parameter Pythia closure
(``results/stores/many10_dev/seed1.sqlite.gz``: 20k events per run over the published
ranges of ``bench_closure_many.TEN``, every bin of the ``iwy20`` observables): each bin's
value is ``exp`` of a quadratic in the box's unit coordinates (a quadratic of the value
itself where some run left the bin empty), and its MC error ``exp`` of another (fitted to
the runs' errors). A call adds independent Gaussian noise of that error for the requested
number of events, seeded from the point (:func:`bayestune.seeding.point_rng`), so runs are
the same on every machine.

Unlike :mod:`synthetic_bins`, whose observables see made-up parameters, every observable here
sees the parameters as Pythia's does (the sensitivity table of
``results/sensitivity_pythia10_iwy20.txt``): which parameters share observables, and so
whether blocks of parameters can be tuned apart, is Pythia's. It misses Pythia by what a
quadratic in ten dimensions misses over the whole box (``python benchmarks/pythia_standin.py``
prints the design's residuals in MC errors per observable) and its noise is independent
across bins, where Pythia's normalised histograms correlate theirs. Method choices are made
on it, then checked with the real generator.
"""

from __future__ import annotations

import gzip
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_closure_many import TEN, parameters  # noqa: E402

from bayestune.hep.histogram import Histogram  # noqa: E402
from bayestune.quadratic import quadratic_features  # noqa: E402
from bayestune.seeding import point_rng  # noqa: E402
from bayestune.store import CampaignStore  # noqa: E402

DESIGN = Path(__file__).resolve().parent / "results" / "stores" / "many10_dev" / "seed1.sqlite.gz"


def design_runs(path: Path = DESIGN) -> tuple[np.ndarray, dict[str, np.ndarray],
                                               dict[str, np.ndarray]]:
    """The design runs of a gzipped store: points ``(n, 10)`` in ``TEN`` order, and per
    observable the runs' values and errors ``(n, bins)``."""
    with tempfile.TemporaryDirectory() as tmp:
        plain = Path(tmp) / "design.sqlite"
        with gzip.open(path, "rb") as src, open(plain, "wb") as dst:
            shutil.copyfileobj(src, dst)
        with CampaignStore.open(plain) as store:
            runs = [t for t in store.history() if t.source.startswith("design")
                    and t.value is not None and "bins" in t.info]
    X = np.array([[float(t.params[n]) for n in TEN] for t in runs])
    names = list(runs[0].info["bins"])
    values = {n: np.array([t.info["bins"][n][0] for t in runs], dtype=float) for n in names}
    errors = {n: np.array([t.info["bins"][n][1] for t in runs], dtype=float) for n in names}
    return X, values, errors


def _weighted_fit(A: np.ndarray, y: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """Least-squares coefficients of ``y ~ A`` with errors ``scale`` (inf: no weight); a
    constant, the mean, when no run has an error."""
    if not np.isfinite(scale).any():
        return np.r_[np.mean(y), np.zeros(A.shape[1] - 1)]
    w = 1.0 / scale
    return np.linalg.lstsq(A * w[:, None], y * w, rcond=None)[0]


class PythiaStandin:
    """``params -> {observable: Histogram}`` in the reference's binning, from the fits of
    the design runs; ``seed`` and the point fix the noise."""

    def __init__(self, reference: dict[str, Histogram], data: str | None = None, *,
                 n_events: int = 20_000, seed: int = 0, design: Path = DESIGN) -> None:
        names, low, high = parameters("10", data)
        if list(names) != list(TEN):
            raise ValueError(f"the stand-in is fitted over {TEN}, got {names}")
        self.names, self.low, self.high = list(names), low, high
        self.n_events, self.seed = n_events, seed
        X, values, errors = design_runs(design)
        A = quadratic_features(self._unit(X))
        self.reference = {n: reference[n] for n in values}
        self._fits: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
        self.residuals: dict[str, float] = {}
        for name in values:
            Y, E = values[name], errors[name]
            log_value = np.all(Y > 0, axis=0)
            target = np.where(log_value, np.log(np.where(Y > 0, Y, 1.0)), Y)
            # weights: the runs' MC errors of the target (of ln y: e / y)
            scale = np.where(log_value, E / np.where(Y > 0, Y, 1.0), E)
            scale = np.where(scale > 0, scale, np.inf)
            coef = np.stack([_weighted_fit(A, target[:, b], scale[:, b])
                             for b in range(Y.shape[1])], axis=1)
            err_ok = np.all(E > 0, axis=0)
            err_coef = np.linalg.lstsq(A, np.log(np.where(E > 0, E, 1.0)), rcond=None)[0]
            err_coef[:, ~err_ok] = 0.0
            err_coef[0, ~err_ok] = np.log(np.maximum(np.median(E[:, ~err_ok], axis=0), 1e-300))
            self._fits[name] = (coef, log_value, err_coef)
            fitted = self._values(name, A)
            used = E > 0
            self.residuals[name] = float(np.sqrt(np.mean(((fitted - Y)[used] / E[used]) ** 2)))

    def _unit(self, X: np.ndarray) -> np.ndarray:
        return 2.0 * (np.atleast_2d(X) - self.low) / (self.high - self.low) - 1.0

    def _values(self, name: str, A: np.ndarray) -> np.ndarray:
        coef, log_value, _ = self._fits[name]
        raw = A @ coef
        return np.where(log_value, np.exp(np.minimum(raw, 700.0)), np.maximum(raw, 0.0))

    def replicate(self, *, seed: int | None = None,
                  n_events: int | None = None) -> PythiaStandin:
        copy = object.__new__(PythiaStandin)
        copy.__dict__.update(self.__dict__)
        copy.seed = self.seed if seed is None else seed
        copy.n_events = self.n_events if n_events is None else n_events
        return copy

    def mean(self, params: dict[str, Any]) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """Per observable: the fitted values and the MC errors of one run of ``n_events``."""
        A = quadratic_features(self._unit(np.array([float(params[n]) for n in self.names])))
        scale = np.sqrt(20_000 / self.n_events)
        return {name: (self._values(name, A)[0], np.exp(A @ fit[2])[0] * scale)
                for name, fit in self._fits.items()}

    def __call__(self, params: dict[str, Any]) -> dict[str, Histogram]:
        rng = point_rng(self.seed, params)
        out = {}
        for name, (m, e) in self.mean(params).items():
            ref = self.reference[name]
            out[name] = Histogram(ref.name, ref.lower, ref.upper, m + rng.normal(size=m.size) * e,
                                  e)
        return out


def main() -> None:
    from bayestune.hep import lep

    reference = lep.load_reference(lep.observables("iwy20"))
    sim = PythiaStandin(reference)
    print("the stand-in's fit of the 160 design runs: rms residual in MC errors per observable")
    for name, r in sorted(sim.residuals.items(), key=lambda kv: -kv[1]):
        print(f"  {name:24s} {r:6.2f}")


if __name__ == "__main__":
    main()
