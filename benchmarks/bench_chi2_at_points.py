"""The chi2 of points against a four-parameter closure's pseudo-data, at high statistics.

One evaluation of ``examples/pythia_closure.py --full`` has 20k events, and the MC noise of
the difference of two such chi2 values is about 25: too much to tell whether a closure's
estimate or its truth fits the pseudo-data better. This remakes the pseudo-data of the
closure with seed ``--seed`` exactly as the closure made them (80k events at the truth,
level-1 smearing with the measured errors) and simulates the truth and each given point
with ``--events`` events (default 200k, about three minutes per point on two cores):

    python benchmarks/bench_chi2_at_points.py --seed 6 0.13761,1.50439,2.0,0.33342

Points are comma-separated values of alphaSvalue, aLund, bLund and StringPT:sigma.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "examples"))

from pythia_closure import TRUTH, full_pseudo_data  # noqa: E402

from bayestune.hep import HistogramObjective, lep  # noqa: E402
from bayestune.hep.pythia import PythiaSimulator  # noqa: E402


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("points", nargs="*", help="alphaS,aLund,bLund,sigma")
    parser.add_argument("--seed", type=int, default=1, help="the closure's seed")
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--data", default=None)
    args = parser.parse_args(argv)
    points = {"truth": dict(TRUTH)}
    for i, text in enumerate(args.points):
        values = text.split(",")
        if len(values) != len(TRUTH):
            parser.error(f"a point needs {len(TRUTH)} values, got point={text!r}")
        points[f"point {i + 1}"] = dict(zip(TRUTH, map(float, values)))
    obs = lep.observables("core")
    reference = lep.load_reference(obs, args.data)
    with PythiaSimulator(obs, reference, n_events=args.events, seed=777) as sim:
        objective = HistogramObjective(sim, full_pseudo_data(sim, reference, args.seed),
                                       n_params=len(TRUTH), keep_pulls=False)
        print(f"closure seed {args.seed}: chi2 with {args.events} events per point "
              f"(+- its MC noise)")
        for label, point in points.items():
            chi2 = objective.chi2(sim(point))
            print(f"  {label:8s} {np.round(list(point.values()), 5)}: "
                  f"{chi2.value:7.1f} +- {np.sqrt(chi2.variance):4.1f}", flush=True)


if __name__ == "__main__":
    main()
