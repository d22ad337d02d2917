"""Seconds per suggestion after n told points: bayestune beside Optuna's GPSampler and BoTorch.

For each dimension d and history size n, n points drawn uniformly in the unit cube with the
values of the Levy function are told to a fresh optimiser, and the time of its next
suggestion is measured (cold: the first suggestion of that optimiser, its surrogate fitted
from scratch; one thread, ``OMP_NUM_THREADS=1``; after one untimed warm-up of each, so that
imports and first-call set-up are not counted). Each figure is the median over
``--repeats`` histories (seeds). BoTorch is timed as ``bench_core.py`` runs it
(``bench_core.botorch_suggest``). The peers (torch, the ``bench``
extra) are skipped when they are not installed.

    OMP_NUM_THREADS=1 python benchmarks/bench_suggest_time.py --dims 10 20 --sizes 100 300 1000
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import bayestune as bt  # noqa: E402
from bayestune.testfunctions import levy  # noqa: E402


def history(n: int, d: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    X = np.random.default_rng([seed, n, d]).uniform(size=(n, d))
    function = levy(d).function  # on [-10, 10]^d
    return X, np.array([function(x * 20.0 - 10.0) for x in X])


def time_bayestune(X: np.ndarray, y: np.ndarray, seed: int,
                   max_fit_points: int | None = 300) -> float:
    d = X.shape[1]
    space = bt.Space([bt.Real(f"x{i}", 0.0, 1.0) for i in range(d)])
    tuner = bt.Tuner(space, lambda p: 0.0, seed=seed,
                     surrogate=bt.SurrogateConfig(max_fit_points=max_fit_points))
    for x, v in zip(X, y):
        tuner.add({f"x{i}": float(x[i]) for i in range(d)}, float(v))
    start = time.perf_counter()
    tuner.ask()
    return time.perf_counter() - start


def time_optuna(X: np.ndarray, y: np.ndarray, seed: int) -> float | None:
    try:
        import optuna
        import torch
    except ImportError:
        return None
    torch.set_num_threads(1)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    d = X.shape[1]
    dists = {f"x{i}": optuna.distributions.FloatDistribution(0.0, 1.0) for i in range(d)}
    study = optuna.create_study(sampler=optuna.samplers.GPSampler(seed=seed))
    for x, v in zip(X, y):
        study.add_trial(optuna.trial.create_trial(
            params={f"x{i}": float(x[i]) for i in range(d)}, distributions=dists,
            value=float(v)))
    start = time.perf_counter()
    study.ask(dists)
    return time.perf_counter() - start


def time_botorch(X: np.ndarray, y: np.ndarray, seed: int) -> float | None:
    try:
        import torch
        from bench_core import botorch_suggest
    except ImportError:
        return None
    torch.set_num_threads(1)
    torch.manual_seed(seed)
    U = torch.tensor(X, dtype=torch.double)
    Y = -torch.tensor(y, dtype=torch.double)[:, None]
    start = time.perf_counter()
    botorch_suggest(U, Y)
    return time.perf_counter() - start


def median_time(timer, n: int, d: int, seeds: list[int], **options) -> float | None:
    times = [timer(*history(n, d, seed), seed, **options) for seed in seeds]
    return None if None in times else float(np.median(times))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dims", type=int, nargs="+", default=[10, 20])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100, 300, 1000])
    parser.add_argument("--seed", type=int, default=0, help="first seed")
    parser.add_argument("--repeats", type=int, default=3,
                        help="histories (seeds) per cell; the table shows the median")
    parser.add_argument("--max-fit-points", type=int, default=300,
                        help="SurrogateConfig.max_fit_points; 0: fit to all observations")
    parser.add_argument("--peers", nargs="*", default=["optuna", "botorch"],
                        choices=["optuna", "botorch"])
    args = parser.parse_args(argv)
    limit = args.max_fit_points or None
    seeds = list(range(args.seed, args.seed + args.repeats))
    peers = {"optuna": ("optuna GPSampler s", time_optuna),
             "botorch": ("botorch LogEI s", time_botorch)}
    peers = {name: peers[name] for name in args.peers}
    X, y = history(20, 2, args.seed)  # warm up: imports and first-call set-up not timed
    time_bayestune(X, y, args.seed)
    for _, timer in peers.values():
        timer(X, y, args.seed)
    header = f"{'d':>3s} {'n':>5s} {'bayestune s':>12s}"
    header += "".join(f" {title:>19s}" for title, _ in peers.values())
    print(f"# median over seeds {seeds[0]}-{seeds[-1]}")
    print(header)
    for d in args.dims:
        for n in args.sizes:
            ours = median_time(time_bayestune, n, d, seeds, max_fit_points=limit)
            row = f"{d:3d} {n:5d} {ours:12.2f}"
            for _, timer in peers.values():
                theirs = median_time(timer, n, d, seeds)
                row += f" {'not installed' if theirs is None else f'{theirs:.2f}':>19s}"
            print(row, flush=True)


if __name__ == "__main__":
    main()
