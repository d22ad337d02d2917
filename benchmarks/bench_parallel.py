"""Parallel campaigns: wall-clock speed-up with workers, and the sample cost of batches.

1. Speed-up. An objective that sleeps ``--sleep`` seconds (2 s by default, so it is not
   CPU-bound on a 2-core machine) and returns the Branin value; the same campaign of
   ``--evals`` evaluations runs with 1 worker (in-process) and with 4 workers (asynchronous,
   one local process per evaluation; and in batch mode). Wall-clock times include every
   GP fit and acquisition optimisation of the driver.
2. Batch efficiency. Hartmann-6 with sequential proposals (``ask()``) and with batches of 4
   (``ask(4)``, kriging believer): the number of evaluations each needs until the best
   value found has regret below ``--regret``, over ``--seeds`` seeds (a run that does not
   get there within ``--max-evals`` counts as ``--max-evals``, a lower bound).

Usage::

    python benchmarks/bench_parallel.py                 # both parts
    python benchmarks/bench_parallel.py --part speedup --evals 24

The table is printed and written to ``benchmarks/results/parallel.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np  # noqa: E402

import bayestune as bt  # noqa: E402
from bayestune.testfunctions import branin, hartmann6  # noqa: E402

RESULTS = Path(__file__).parent / "results"


class SleepyBranin:
    """Branin that takes ``seconds`` of wall clock (and no CPU) per call."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.problem = branin()

    def __call__(self, params: dict) -> float:
        time.sleep(self.seconds)
        return self.problem(params)


def speedup(evals: int, sleep: float, seed: int) -> dict:
    objective = SleepyBranin(sleep)
    rows = {}
    for label, options in (("1 worker", {"n_workers": 1}),
                           ("4 workers async", {"n_workers": 4}),
                           ("4 workers batch", {"n_workers": 4, "batch": True})):
        tuner = bt.Tuner(objective.problem.space, objective, seed=seed)
        start = time.perf_counter()
        res = tuner.run(evals, **options)
        wall = time.perf_counter() - start
        rows[label] = {"seconds": wall, "regret": objective.problem.regret(res.fun),
                       "n_completed": len(tuner.history.completed)}
        print(f"  {label:16s} {wall:7.1f} s  regret {rows[label]['regret']:.4f}", flush=True)
    base = rows["1 worker"]["seconds"]
    for row in rows.values():
        row["speedup"] = base / row["seconds"]
    return rows


def evals_to_regret(batch: int, seed: int, threshold: float, max_evals: int) -> int:
    """Evaluations until the best value's regret is below ``threshold`` (ask/tell loop)."""
    problem = hartmann6()
    tuner = bt.Tuner(problem.space, seed=seed)
    n = 0
    while n < max_evals:
        trials = tuner.ask(batch)
        for trial in trials:
            n += 1
            value = problem(trial.params)
            tuner.tell(trial, value)
            if problem.regret(value) < threshold:
                return n
    return max_evals


def batch_efficiency(seeds: int, threshold: float, max_evals: int) -> dict:
    out: dict = {"threshold": threshold, "max_evals": max_evals, "runs": {}}
    for label, size in (("sequential", 1), ("batch of 4", 4)):
        counts = []
        for seed in range(seeds):
            start = time.perf_counter()
            counts.append(evals_to_regret(size, seed, threshold, max_evals))
            print(f"  {label:11s} seed {seed}: {counts[-1]:4d} evaluations "
                  f"({time.perf_counter() - start:.0f} s)", flush=True)
        out["runs"][label] = counts
    seq = float(np.median(out["runs"]["sequential"]))
    bat = float(np.median(out["runs"]["batch of 4"]))
    out["median"] = {"sequential": seq, "batch of 4": bat}
    out["ratio"] = bat / seq
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--part", choices=("speedup", "batch", "all"), default="all")
    parser.add_argument("--evals", type=int, default=32, help="speed-up campaign length")
    parser.add_argument("--sleep", type=float, default=2.0, help="seconds per evaluation")
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--regret", type=float, default=0.05, help="Hartmann-6 target regret")
    parser.add_argument("--max-evals", type=int, default=120)
    args = parser.parse_args()

    report: dict = {"date": time.strftime("%Y-%m-%d"), "args": vars(args)}
    if args.part in ("speedup", "all"):
        print(f"Speed-up: {args.evals} evaluations of Branin sleeping {args.sleep:g} s")
        report["speedup"] = speedup(args.evals, args.sleep, seed=0)
    if args.part in ("batch", "all"):
        print(f"Hartmann-6: evaluations to regret < {args.regret:g} (cap {args.max_evals})")
        report["batch"] = batch_efficiency(args.seeds, args.regret, args.max_evals)

    print()
    if "speedup" in report:
        print(f"{'mode':18s} {'wall s':>8s} {'speed-up':>9s}")
        for label, row in report["speedup"].items():
            print(f"{label:18s} {row['seconds']:8.1f} {row['speedup']:9.2f}")
    if "batch" in report:
        b = report["batch"]
        print(f"\n{'proposals':12s} {'median evals':>13s}  per seed")
        for label, counts in b["runs"].items():
            print(f"{label:12s} {b['median'][label]:13.1f}  {counts}")
        print(f"ratio batch/sequential = {b['ratio']:.2f}")
    RESULTS.mkdir(exist_ok=True)
    name = "parallel.json" if args.part == "all" else f"parallel_{args.part}.json"
    (RESULTS / name).write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
