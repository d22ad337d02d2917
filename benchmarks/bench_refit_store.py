"""Refit the final binwise fit of a stored four-parameter Pythia closure on subsets of its
evaluations: how the lack of fit and the errors depend on the region the quadratics span.

Run a closure with a store first, then point this at it:

    python examples/pythia_closure.py --full --store seed1.sqlite      # 9 minutes
    python benchmarks/bench_refit_store.py seed1.sqlite [--seed 1]

The pseudo-data are made again exactly as the closure made them (``--seed`` is the closure's
seed; 80k events, level-1 smearing with the measured errors), the stored evaluations are read
with their bins, and the cross-fitted debiased fit (``fit_binwise(..., basis=...)``) is
redone on: all the rounds' evaluations (what ``refine_binwise`` returns), the last three
rounds, and every evaluation inside the box of ``bench_valley_emulated.py``'s design (where
quadratics describe the bins within their MC noise). Each row prints the number of fitted
evaluations, the basis, the lack of fit, the estimate, its errors and the pulls. A minute
on two cores.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "examples"))

from bench_valley_emulated import HIGH, LOW  # noqa: E402
from pythia_closure import SPACE, TRUTH, full_pseudo_data  # noqa: E402

import bayestune as bt  # noqa: E402
from bayestune.hep import HistogramObjective, lep  # noqa: E402
from bayestune.hep.binwise import fit_binwise  # noqa: E402
from bayestune.hep.pythia import PythiaSimulator  # noqa: E402
from bayestune.hep.tuning.regions import inside_design  # noqa: E402
from bayestune.history import History, Trial  # noqa: E402

NAMES = list(TRUTH)


def refit(label: str, trials: list[Trial], others: list[Trial],
          objective: HistogramObjective) -> None:
    """The debiased fit of ``trials`` with the ``others`` inside their design as basis."""
    dims = list(SPACE)
    basis = inside_design(others, trials, dims)
    model = fit_binwise(History([]), SPACE, objective, trials=trials, basis=basis)
    start = np.array([np.mean([float(t.params[n]) for t in trials]) for n in NAMES])
    unc = model.uncertainty(start=start)
    x = np.array([unc.x[n] for n in NAMES])
    err = np.array([unc.errors[n] for n in NAMES])
    pulls = (x - np.array(list(TRUTH.values()))) / err
    print(f"{label:26s} {len(trials):3d} {len(basis):5d} {model.lack_of_fit:7.2f}  "
          f"{np.array2string(x, precision=4)}  {np.array2string(err, precision=4)}  "
          f"{np.array2string(pulls, precision=2)}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("store", type=Path, help="store of examples/pythia_closure.py --full")
    parser.add_argument("--seed", type=int, default=1, help="the closure's seed")
    parser.add_argument("--data", default=None)
    args = parser.parse_args(argv)
    if not args.store.exists():
        parser.error(f"no store at {args.store}")
    obs = lep.observables("core")
    reference = lep.load_reference(obs, args.data)
    with PythiaSimulator(obs, reference, n_events=20_000, seed=args.seed) as sim:
        data = full_pseudo_data(sim, reference, args.seed)

    def no_simulation(params: dict) -> dict:
        raise RuntimeError("this benchmark only reads the store")

    objective = HistogramObjective(no_simulation, data, n_params=len(SPACE),
                                   keep_pulls=False, keep_bins=True)
    tuner = bt.Tuner(SPACE, objective, seed=args.seed, store=args.store)
    done = [t for t in tuner.history.completed if t.value is not None and "bins" in t.info]
    # the local stages' labels ("refine-binwise" in stores of earlier releases)
    local = ("refine:", "probe:", "refine-binwise")
    rounds = [t for t in done if t.source.startswith(local)]
    before = [t for t in done if not t.source.startswith(local)]
    X = np.array([[float(t.params[n]) for n in NAMES] for t in rounds])
    print(f"{len(before)} evaluations before the rounds, {len(rounds)} in them; each round's "
          f"span ({', '.join(NAMES)}):")
    for r in range(0, len(rounds), 8):
        print(f"  round {r // 8 + 1}: {np.array2string(X[r:r + 8].min(axis=0), precision=4)}"
              f" .. {np.array2string(X[r:r + 8].max(axis=0), precision=4)}")
    print(f"\n{'fitted evaluations':26s}   n basis lack-of-fit  estimate  errors  pulls")
    refit("all rounds", rounds, before, objective)
    refit("rounds 2-4", rounds[8:], before + rounds[:8], objective)
    in_box = [bool(np.all((x >= LOW) & (x <= HIGH)))
              for x in np.array([[float(t.params[n]) for n in NAMES] for t in done])]
    refit("inside the emulator's box", [t for t, i in zip(done, in_box) if i],
          [t for t, i in zip(done, in_box) if not i], objective)


if __name__ == "__main__":
    main()
