"""Quickstart: a small, real tuning campaign with a crash-safe store.

The objective is a stand-in for an expensive simulation: a toy "generator" whose three
parameters shape a spectrum, compared with a reference spectrum by a chi2. Each call
simulates ``n_events`` random events, so the chi2 carries Monte Carlo noise, which the
objective reports as ``Evaluation(variance=...)`` so that the GP treats it as known noise.

Run it twice with the same ``--store``: the second run resumes and only adds what is
missing (``--evals`` is the campaign's total budget).

    python examples/quickstart.py --evals 40 --store quickstart.sqlite
"""

from __future__ import annotations

import argparse
import math

import numpy as np

import bayestune as bt

EDGES = np.linspace(0.0, 1.0, 21)
TRUTH = {"slope": 2.5, "width": 0.12, "fraction": 0.3}


def simulate(params: dict, n_events: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Normalised spectrum of an exponential plus a Gaussian peak, with MC errors."""
    rng = np.random.default_rng(seed)
    n_peak = rng.binomial(n_events, params["fraction"])
    tail = rng.exponential(1.0 / params["slope"], size=n_events - n_peak)
    peak = rng.normal(0.6, params["width"], size=n_peak)
    counts, _ = np.histogram(np.concatenate([tail, peak]), bins=EDGES)
    widths = np.diff(EDGES)
    density = counts / (n_events * widths)
    errors = np.sqrt(np.maximum(counts, 1.0)) / (n_events * widths)
    return density, errors


REFERENCE, REFERENCE_ERR = simulate(TRUTH, 200_000, seed=1)


class SpectrumChi2:
    """chi2 of a simulated spectrum against the reference, with its MC variance."""

    def __init__(self, n_events: int) -> None:
        self.n_events = n_events
        self.calls = 0

    def __call__(self, params: dict) -> bt.Evaluation:
        self.calls += 1
        sim, sim_err = simulate(params, self.n_events, seed=1000 + self.calls)
        total_var = REFERENCE_ERR**2 + sim_err**2
        pulls = (sim - REFERENCE) / np.sqrt(total_var)
        chi2 = float(np.sum(pulls**2))
        # Var(chi2) from the MC fluctuations of the simulated bins (delta method):
        # d chi2 / d s_i = 2 (s_i - d_i) / var_i, plus the irreducible 2 per bin.
        grad = 2 * (sim - REFERENCE) / total_var
        variance = float(np.sum(grad**2 * sim_err**2) + 2 * len(sim))
        return bt.Evaluation(chi2, variance=variance, info={"ndf": len(sim)})


def main(argv: list[str] | None = None) -> bt.Result:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--evals", type=int, default=40, help="total evaluation budget")
    parser.add_argument("--events", type=int, default=20_000, help="events per evaluation")
    parser.add_argument("--store", default=None, help="SQLite store (resumed if it exists)")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)

    space = bt.Space([
        bt.Real("slope", 0.5, 6.0),
        bt.Real("width", 0.02, 0.4, log=True),
        bt.Real("fraction", 0.05, 0.8),
    ])
    tuner = bt.Tuner(space, SpectrumChi2(args.events), store=args.store, seed=args.seed)
    result = tuner.run(args.evals)
    print(result)
    print("\ntrue parameters:", TRUTH)
    print("learned length scales (physical units; 'width' in ln units):")
    for name, length in result.lengthscales.items():
        print(f"  {name:<9} {length:.3g}")
    print(f"chi2 at the recommendation: {result.fun:.1f} for {len(EDGES) - 1} bins")
    print(f"optimiser time per suggestion: {np.mean(tuner.ask_seconds):.2f} s")
    ok = all(math.isfinite(v) for v in result.x.values() if isinstance(v, float))
    tuner.close()
    if not ok:
        raise SystemExit("campaign did not produce a finite recommendation")
    return result


if __name__ == "__main__":
    main()
