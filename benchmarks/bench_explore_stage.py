"""The generator-tuning method's explore stage alone, with each composite acquisition.

For each seed of the random-truth closures (``bench_closure_random.py``: the same truth and
level-1 pseudo-data), runs the explore stage of an 80-run tune -- 32 Pythia runs of
``--events`` events, a 16-point Sobol design, then the composite engine with
``--acquisition`` -- and prints the lowest chi2 among its runs with their (aLund, bLund),
next to the truth's. The stage should end near the truth along the aLund-bLund valley, not
at one end of it. ``--store-dir`` keeps each stage's campaign store; a rerun resumes it.

    BAYESTUNE_LEP_DATA=../shared/data/lep OMP_NUM_THREADS=1 python \\
        benchmarks/bench_explore_stage.py --seeds 242,251,252 --acquisition plausible \\
        --store-dir /tmp/explore
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "examples"))

from bench_closure_random import pseudo_options  # noqa: E402
from closure_series import parse_seeds  # noqa: E402
from emulated_box import NAMES, central_truth  # noqa: E402
from pythia_closure import SPACE  # noqa: E402

from bayestune import Tuner  # noqa: E402
from bayestune.hep import HistogramObjective, lep  # noqa: E402
from bayestune.hep.composite import COMPOSITE_ACQUISITIONS, CompositeChi2Engine  # noqa: E402

RUNS, DESIGN = 32, 16  # the explore stage of an 80-run tune of four parameters


def explore(seed: int, acquisition: str, events: int, store: Path | None) -> list[str]:
    from bayestune.hep.pythia import PythiaSimulator

    observables = lep.observables("core")
    reference = lep.load_reference(observables)
    truth = central_truth(seed)
    with PythiaSimulator(observables, reference, n_events=events, seed=0) as sim:
        pseudo = pseudo_options(sim, reference, truth, seed, 4 * events)
        data = pseudo.histograms(sim, truth, seed)
        objective = HistogramObjective(sim.replicate(seed=1_000 + seed), data, keep_bins=True,
                                       n_params=len(NAMES))
        engine = CompositeChi2Engine(SPACE, objective, acquisition=acquisition)
        with Tuner(SPACE, objective, seed=seed, engine=engine, n_initial=DESIGN,
                   store=store) as tuner:
            tuner.run(RUNS)
            done = sorted(tuner.history.completed, key=lambda t: t.value)
    lines = [f"seed {seed} ({acquisition}): truth (aLund, bLund) = "
             f"({truth['StringZ:aLund']:.2f}, {truth['StringZ:bLund']:.2f})"]
    for t in done[:3]:
        lines.append(f"  chi2 {t.value:7.1f} at ({t.params['StringZ:aLund']:.2f}, "
                     f"{t.params['StringZ:bLund']:.2f})  [{t.source}]")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", default="242,251,252")
    parser.add_argument("--acquisition", choices=COMPOSITE_ACQUISITIONS, default="plausible")
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--store-dir", type=Path, default=None)
    args = parser.parse_args(argv)
    for seed in parse_seeds(args.seeds):
        store = None if args.store_dir is None else \
            args.store_dir / f"seed{seed}_{args.acquisition}.sqlite"
        print("\n".join(explore(seed, args.acquisition, args.events, store)), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
