"""Every LEP observable of a set, simulated with Pythia 8 at the Monash tune, against the data.

Prints, per observable, the number of bins, chi2/bin (data and MC errors, no weights, no model
uncertainty) and, for one-bin rates, the data and Monash values. This is the check that an
observable is computed like the measurement before it is used in a tune: a chi2/bin far above
what Monash is known to reach (arXiv:1404.5630, figures 4-12) points at a definition or
normalisation error, not at the tune.

    BAYESTUNE_LEP_DATA=../shared/data/lep OMP_NUM_THREADS=1 python \\
        benchmarks/bench_lep_observables.py --set iwy20 --events 200000 --workers 2
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from bayestune.hep import chi2, lep
from bayestune.hep.pythia import PythiaSimulator


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--set", default="iwy20", help="observable set (bayestune.hep.lep)")
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--data", default=None, help="LEP data folder")
    args = parser.parse_args()

    obs = lep.observables(args.set)
    reference = lep.load_reference(obs, args.data)
    start = time.time()
    with PythiaSimulator(obs, reference, n_events=args.events, seed=args.seed,
                         n_workers=args.workers) as sim:
        hists = sim({})
    seconds = time.time() - start
    result = chi2(hists, reference)
    per_bin = result.per_bin()
    print(f"# Pythia 8 at Monash (8.317 defaults), {args.events} events, set {args.set!r}, "
          f"{seconds:.0f} s with {args.workers} worker(s)")
    print(f"{'observable':<20} {'bins':>4} {'chi2/bin':>9}   {'data':>16} {'Monash':>16}")
    for o in obs:
        ref, sim_h = reference[o.id], hists[o.id]
        rate = ""
        if ref.n_bins == 1:
            rate = (f"{ref.values[0]:9.4g} +-{ref.errors[0]:<6.2g}"
                    f"{sim_h.values[0]:9.4g} +-{sim_h.errors[0]:<6.2g}")
        print(f"{o.id:<20} {ref.n_bins:4d} {per_bin[o.id]:9.2f}   {rate}")
    total_bins = result.n_bins_total
    print(f"{'total':<20} {total_bins:4d} {result.value / total_bins:9.2f}   "
          f"chi2 {result.value:.1f} +- {np.sqrt(result.variance):.1f} (MC)")


if __name__ == "__main__":
    main()
