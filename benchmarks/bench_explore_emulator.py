"""What the composite engine's bin emulators know after a closure's explore runs.

For each seed of a Pythia closure series whose runs are in ``--runs`` (written by
``collect_pythia_runs.py``), this fits :class:`bayestune.hep.composite.BinEmulator` to the
first ``--explore`` runs of its explore stage (as the composite engine did when it chose
the next run), against the closure's pseudo-data (remade with Pythia, as the series made
them), and prints over ``--points`` Sobol points of the box:

* the largest expected improvement of the chi2 draws over the emulated chi2 of the best
  evaluated run (the engine's acquisition): 0 means no draw anywhere goes below it, and
  the engine then proposes next to its best runs;
* the truth's rank among the points by the draws' 10 % quantile and by their mean (how
  well the emulators still *rank* the box), and the best evaluated run against the truth.

    BAYESTUNE_LEP_DATA=../shared/data/lep OMP_NUM_THREADS=1 python \\
        benchmarks/bench_explore_emulator.py --series pythia_241-260 --seeds 241,242,251,252
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
from scipy.stats import qmc

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "examples"))

from bench_closure_random import central_truth, pseudo_options  # noqa: E402
from pythia_closure import SPACE  # noqa: E402

from bayestune.hep import HistogramObjective, lep  # noqa: E402
from bayestune.hep.composite import BinEmulator  # noqa: E402
from bayestune.history import History, Status, Trial  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
LOCAL = ("refine:", "probe:")


def explore_trials(runs: np.lib.npyio.NpzFile, store: str, n: int, reference: dict,
                   objective: HistogramObjective) -> list[Trial]:
    """The first ``n`` explore runs of ``store`` as trials, their chi2 against
    ``objective``'s data."""
    ids = [str(i) for i in runs["observables"]]
    edges = np.cumsum([0, *runs["bins"]])
    rows = [i for i, (o, s) in enumerate(zip(runs["origin"], runs["source"]))
            if o == store and not str(s).startswith(LOCAL)][:n]
    out = []
    for k, i in enumerate(rows):
        v, e = runs["values"][i].astype(float), runs["errors"][i].astype(float)
        bins = {name: [v[a:b].tolist(), e[a:b].tolist()]
                for name, a, b in zip(ids, edges[:-1], edges[1:])}
        simulated = {name: reference[name].with_values(np.array(b[0]), np.array(b[1]))
                     for name, b in bins.items()}
        out.append(Trial(number=k, params=dict(zip(SPACE.names, map(float, runs["points"][i]))),
                         status=Status.COMPLETE,
                         value=float(objective.chi2(simulated).value), info={"bins": bins}))
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=Path, default=RESULTS / "pythia_closure_runs.npz")
    parser.add_argument("--series", default="pythia_241-260")
    parser.add_argument("--seeds", default="241,242,251,252")
    parser.add_argument("--explore", type=int, default=32)
    parser.add_argument("--points", type=int, default=8192)
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--data", default=None)
    args = parser.parse_args(argv)
    from bayestune.hep.pythia import PythiaSimulator

    runs = np.load(args.runs, allow_pickle=False)
    obs = lep.observables("core")
    reference = lep.load_reference(obs, args.data)
    U = qmc.Sobol(len(SPACE.names), seed=1).random(args.points)
    print(f"{'seed':>4s} {'max EI':>7s} {'truth rank q10':>15s} {'by mean':>8s}  "
          f"best explore run (aLund, bLund, chi2)   truth (aLund, bLund)")
    with PythiaSimulator(obs, reference, n_events=args.events, seed=0) as sim:
        for seed in map(int, args.seeds.split(",")):
            truth = central_truth(seed)
            data = pseudo_options(sim, reference, truth, seed, 4 * args.events).histograms(
                sim, truth, seed)
            objective = HistogramObjective(lambda p: None, data, keep_bins=True, n_params=4)
            trials = explore_trials(runs, f"{args.series}/seed{seed}", args.explore,
                                    reference, objective)
            emu = BinEmulator(SPACE, objective).fit(History(trials), np.random.default_rng(0))
            draws = emu.chi2(emu.sample_bins(np.vstack([SPACE.to_unit([truth]), U]), 128,
                                             np.random.default_rng(1)))
            best_emulated = float(np.min(emu.train_chi2))
            ei = np.mean(np.maximum(best_emulated - draws, 0.0), axis=0)
            q10, mean = np.quantile(draws, 0.1, axis=0), draws.mean(axis=0)
            best = min(trials, key=lambda t: float(t.value))  # type: ignore[arg-type]
            print(f"{seed:4d} {ei[1:].max():7.2f} {int(np.sum(q10[1:] < q10[0])):7d} of "
                  f"{args.points} {int(np.sum(mean[1:] < mean[0])):5d}    "
                  f"({best.params['StringZ:aLund']:.2f}, {best.params['StringZ:bLund']:.2f}, "
                  f"{best.value:6.1f})                  "
                  f"({truth['StringZ:aLund']:.2f}, {truth['StringZ:bLund']:.2f})", flush=True)


if __name__ == "__main__":
    main()
