"""Calibration of closure-test pulls on the cheap Gaussian-peak simulator.

Repeats `closure_test` over seeds (two parameters: the mean and width of a Gaussian,
5k events per tuning point, 20k-event pseudo-data, 40 evaluations) and prints the pull mean,
width and coverage of each estimator:

    .venv/bin/python benchmarks/bench_closure_toy.py --seeds 10
"""

from __future__ import annotations

import argparse
import time

import bayestune as bt
from bayestune.closure import repeated_closure
from bayestune.testfunctions import GaussianPeakSimulator

SPACE = bt.Space([bt.Real("mean", -1.0, 1.0), bt.Real("width", 0.5, 2.0)])
TRUTH = {"mean": 0.3, "width": 1.1}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--evals", type=int, default=40)
    parser.add_argument("--estimators", default="surrogate,composite,binwise")
    parser.add_argument("--refine-rounds", type=int, default=0,
                        help="refine() rounds inside the budget (2 k + 1 evaluations each)")
    parser.add_argument("--binwise-rounds", type=int, default=2,
                        help="refine_binwise() rounds of the binwise estimator (8 evaluations "
                             "each, inside the budget)")
    args = parser.parse_args(argv)
    sim = GaussianPeakSimulator(n_events=5_000, seed=1)

    def pseudo(truth: dict, seed: int) -> dict:
        return sim.replicate(seed=seed, n_events=20_000)(truth)

    for estimator in args.estimators.split(","):
        start = time.perf_counter()
        summary = repeated_closure(sim, SPACE, TRUTH, seeds=list(range(args.seeds)),
                                   n_evals=args.evals, pseudo_data=pseudo, estimator=estimator,
                                   refine_rounds=args.binwise_rounds if estimator == "binwise"
                                   else args.refine_rounds)
        print(f"== estimator={estimator} ({time.perf_counter() - start:.0f} s)")
        print(summary.table())


if __name__ == "__main__":
    main()
