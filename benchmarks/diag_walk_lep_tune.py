"""Replay the local rounds of a stored real LEP tune (``examples/pythia_lep_tune.py``) and
print each round's decision, as ``diag_walk_many.py`` does for the closures.

The tune's parameters are read from the store (so a store of an earlier parameter set
replays too), the objective is the example's, and a copy of the store is resumed with a
generator that stops at the first run the store does not hold:

    BAYESTUNE_LEP_DATA=../shared/data/lep OMP_NUM_THREADS=1 python \\
        benchmarks/diag_walk_lep_tune.py STORE.sqlite

Printed per round: the walk's log (plausible candidates, the next centre and which fit placed
it), the round's fit (its minimum's chi2 and, for a debiased fit, where the minimum lies
against the leverage wall: above 1 the wall holds it) and the next region's half-reach along
each parameter in units of its range; then the stage log and the estimate. With
``--check-events N`` Monash, the estimate and the final fit's minimum without its noise
subtraction are simulated with N events (the example's final comparison: seed + 500) and
their chi2 printed with its MC sd.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sqlite3
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "examples"))

import pythia_lep_tune as example  # noqa: E402
from diag_walk_many import StopAtNewRun, print_round  # noqa: E402
from walk_trace import trace_rounds  # noqa: E402

from bayestune.hep import HistogramObjective, lep, tune_generator  # noqa: E402


def stored_parameters(store: Path) -> list[str]:
    """The tuned parameters of a store: the keys of its first trial's point."""
    with sqlite3.connect(store) as con:
        row = con.execute("SELECT params FROM trials ORDER BY number LIMIT 1").fetchone()
    if row is None:
        raise SystemExit(f"{store} holds no runs")
    return list(json.loads(row[0]))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("store", type=Path)
    parser.add_argument("--budget", type=int, default=400)
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--model-uncertainty", type=float, default=0.03)
    parser.add_argument("--data", default=None)
    parser.add_argument("--check-events", type=int, default=0)
    args = parser.parse_args(argv)
    trace_rounds(print_round)
    names = stored_parameters(args.store)
    obs = lep.observables("lep_tune")
    reference = lep.load_reference(obs, args.data)
    space = example.tune_space(names, args.data)
    with tempfile.TemporaryDirectory() as tmp:
        copy = Path(tmp) / "replay.sqlite"
        shutil.copy(args.store, copy)
        objective = HistogramObjective(StopAtNewRun(args.events), reference,
                                       example.tune_weights(obs),
                                       model_uncertainty=args.model_uncertainty,
                                       n_params=len(space), keep_bins=True)
        try:
            tune = tune_generator(objective, space, args.budget, method=example.METHOD,
                                  seed=args.seed, store=str(copy))
        except KeyboardInterrupt as stop:
            print(f"replay ended: {stop}")
            return
    print(tune.stage_log())
    print(tune.uncertainty)
    estimate = np.array([tune.estimate[n] for n in names])
    plain = dict(zip(names, tune.model.minimum(estimate, noise=0.0).tolist()))
    print("the final fit's minimum without its noise subtraction:",
          {n: round(v, 5) for n, v in plain.items()})
    if args.check_events:
        check(obs, reference, objective, args, {
            "Monash 2013": lep.monash_values(names, args.data), "estimate": tune.estimate,
            "final fit, no noise subtraction": plain})


def check(obs: list, reference: dict, objective: HistogramObjective,
          args: argparse.Namespace, points: dict[str, dict[str, float]]) -> None:
    """The chi2 of ``points`` simulated with ``--check-events`` events."""
    from bayestune.hep.pythia import PythiaSimulator

    with PythiaSimulator(obs, reference, n_events=args.check_events,
                         seed=args.seed + 500) as sim:
        for label, point in points.items():
            c = objective.chi2(sim(point))
            print(f"{label}: chi2 {c.value:.1f} +- {c.variance ** 0.5:.1f} "
                  f"({args.check_events:,} events)", flush=True)


if __name__ == "__main__":
    main()
