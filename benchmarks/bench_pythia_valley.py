"""How sharply MC-only pseudo-data fix the four closure parameters (the aLund-bLund valley).

Makes the seed-1 pseudo-data of ``examples/pythia_closure.py --full --pseudo-errors mc``
(Monash, 80k events), simulates a few points with many events, and prints for each point the
chi2 against the pseudo-data in the data's errors with the simulation's own noise subtracted,
and for pairs of points the Fisher distance ``sum ((s1 - s2)^2 - e1^2 - e2^2) / sigma_d^2``
(the Delta chi2 between them for exact predictions), each with its MC standard deviation:

    python benchmarks/bench_pythia_valley.py [--events 100000]

About 6 minutes on two cores with the defaults.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "examples"))

from pythia_closure import TRUTH  # noqa: E402

from bayestune.hep import HistogramObjective, lep  # noqa: E402
from bayestune.hep.pythia import PythiaSimulator  # noqa: E402

POINTS = {  # alphaS, aLund, bLund, sigma
    "truth": (0.1365, 0.68, 0.98, 0.335),
    "binwise-mc": (0.137, 0.4776, 0.794, 0.3326),  # ..._seed1_binwise_mc.txt's estimate
    "V1": (0.1353, 0.44, 0.66, 0.338),  # on the valley the composite engine found
    "V2": (0.1359, 0.4374, 0.6651, 0.3386),
}
PAIRS = [("truth", "binwise-mc"), ("truth", "V1"), ("truth", "V2"), ("V1", "V2")]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--data", default=None)
    args = parser.parse_args(argv)
    obs = lep.observables("core")
    reference = lep.load_reference(obs, args.data)
    start = time.perf_counter()
    with PythiaSimulator(obs, reference, n_events=20_000, seed=1, n_workers=2) as sim:
        data = sim.replicate(seed=10_001, n_events=80_000)(TRUTH)  # closure seed 1
        used = HistogramObjective(sim, data).used_bins()
        var_d = used.errors**2
        sims = {}
        for k, (name, point) in enumerate(POINTS.items()):
            hists = sim.replicate(seed=900 + k, n_events=args.events)(dict(zip(TRUTH, point)))
            values = used.flatten({n: h.values for n, h in hists.items()})
            var = used.flatten({n: h.errors for n, h in hists.items()}) ** 2
            sims[name] = (values, var)
            r2, n2 = (values - used.data) ** 2 / var_d, var / var_d
            sd = np.sqrt(np.sum(4 * np.maximum(r2 - n2, 0) * n2 + 2 * n2**2))
            print(f"{name:11s} {point}: chi2 (data errors, MC noise subtracted) "
                  f"{np.sum(used.weights * (r2 - n2)):7.1f} +- {sd:5.1f}   "
                  f"[{time.perf_counter() - start:4.0f} s]", flush=True)
    print(f"Fisher distances ({args.events} events per point; data errors only):")
    for a, b in PAIRS:
        (s1, v1), (s2, v2) = sims[a], sims[b]
        d2 = ((s1 - s2) ** 2 - v1 - v2) / var_d
        n2 = (v1 + v2) / var_d
        sd = np.sqrt(np.sum(4 * np.maximum(d2, 0) * n2 + 2 * n2**2))
        print(f"  {a:11s} - {b:11s}: {np.sum(used.weights * d2):7.1f} +- {sd:5.1f}")


if __name__ == "__main__":
    main()
