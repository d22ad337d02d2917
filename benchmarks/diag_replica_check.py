"""Do the final fit's replicas measure its noise? Re-simulate its runs and see.

The replicas' part of a tune's covariance (the spread of the minima of fits redone on the
fitted bins plus new MC noise) claims to be the scatter of the final fit's minimum under the
MC noise of its runs. This checks that claim directly on emulated closures of a
``bench_closure_random.py`` series: each closure is resumed from its store (no new runs; the
recorded pulls are checked), then the final fit's evaluations -- and the earlier ones its
directions come from -- are simulated again at the same points with fresh generator seeds,
``--resims`` times, and refitted exactly as the method fits them. The printed ratio is the
replicas' standard deviation over the standard deviation of those refits' minima (1 when the
replicas are right, for this design), per parameter.

The design is held fixed: what the walk would have done with other noise is not part of it
(``bench_closure_rerun.py`` reruns whole closures).

    PYTHONPATH=<checkout the series was run with> BAYESTUNE_LEP_DATA=../shared/data/lep \\
        python benchmarks/diag_replica_check.py --seeds 362-366 --store-dir STORES \\
        --results benchmarks/results/closure_random_emulated_dev_probe_sd1_361-380.jsonl \\
        --options '{"probe": {"min_gain_sd": 1.0}}'
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_closure_random import resume_closure  # noqa: E402
from closure_series import parse_seeds, resume_arguments, rows_by_seed  # noqa: E402
from emulated_box import NAMES, BoxEmulator  # noqa: E402

from bayestune.hep import GeneratorTuning, lep  # noqa: E402
from bayestune.hep.binwise import fit_binwise  # noqa: E402
from bayestune.history import History, Trial  # noqa: E402


def simulated_again(trials: tuple[Trial, ...], sim, key: int) -> list[Trial]:
    """The trials with their bins simulated again at the same points, generator key ``key``."""
    again = sim.replicate(seed=key)
    out = []
    for t in trials:
        hists = again(t.params)
        bins = {i: [hists[i].values.tolist(), hists[i].errors.tolist()] for i in t.info["bins"]}
        out.append(dataclasses.replace(t, info={**t.info, "bins": bins}))
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    resume_arguments(parser)
    parser.add_argument("--resims", type=int, default=20)
    parser.add_argument("--data", default=None)
    args = parser.parse_args(argv)
    rows = rows_by_seed(args.results)
    reference = lep.load_reference(lep.observables("core"), args.data)
    sim = BoxEmulator(data=args.data, noise="correlated").simulator(20_000)
    method = GeneratorTuning.from_dict(json.loads(args.options))
    ratios = []
    for seed in parse_seeds(args.seeds):
        res = resume_closure(sim, reference, rows[seed], args.store_dir / f"seed{seed}.sqlite",
                             method=method)
        x = np.array([res.estimate[n] for n in NAMES])
        model = res.tune.model
        if not model.debiased:
            print(f"seed {seed}: the final fit is not debiased; skipped")
            continue
        replicas = np.sqrt(np.diag(np.asarray(res.uncertainty.covariance_surrogate)))
        minima = []
        for k in range(args.resims):
            key = 7_000 + 100 * k + seed
            refit = fit_binwise(History([]), model.space, model.objective,
                                trials=simulated_again(model.trials, sim, key),
                                basis=simulated_again(model.basis, sim, key + 50),
                                replica_noise=method.refine.replica_noise)
            unc = refit.uncertainty(start=x, n_replicas=0)
            minima.append([unc.x[n] for n in NAMES])
        actual = np.std(minima, axis=0, ddof=1)
        ratios.append(replicas / actual)
        print(f"seed {seed}: {len(model.trials)} fitted + {len(model.basis)} basis runs; "
              f"replicas' sd / refits' sd {np.round(ratios[-1], 2)}", flush=True)
    r = np.array(ratios)
    print(f"\n{len(r)} closures, {args.resims} re-simulations each; replicas' sd / refits' sd "
          f"per parameter ({', '.join(NAMES)}):\n  median {np.round(np.median(r, axis=0), 2)}"
          f"\n  geometric mean {np.round(np.exp(np.log(r).mean(axis=0)), 2)}")


if __name__ == "__main__":
    main()
