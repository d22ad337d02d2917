"""The sensitivity table of a tune's explore design: which observables see which parameters.

Reads the first ``--runs`` complete runs of a store made by ``bench_closure_many.py`` (its
explore stage: a space-filling design of the whole box) and prints
:func:`bayestune.hep.sensitivity` for the ``iwy20`` observables against the real data's
errors: the Delta chi2 each observable gets when one parameter moves by ``--step`` of its
range, averaged over the box.

    BAYESTUNE_LEP_DATA=../shared/data/lep python benchmarks/sensitivity_table.py \\
        STORE.sqlite --params 10 --runs 160
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_closure_many import parameters  # noqa: E402

import bayestune as bt  # noqa: E402
from bayestune.hep import HistogramObjective, lep, sensitivity  # noqa: E402
from bayestune.store import CampaignStore  # noqa: E402


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("store", type=Path)
    parser.add_argument("--params", choices=["10", "20"], default="10")
    parser.add_argument("--runs", type=int, default=160)
    parser.add_argument("--step", type=float, default=0.1)
    parser.add_argument("--set", default="iwy20", help="observable set of the runs")
    parser.add_argument("--data", default=None)
    args = parser.parse_args(argv)
    names, low, high = parameters(args.params, args.data)
    space = bt.Space([bt.Real(n, float(a), float(b)) for n, a, b in zip(names, low, high)])
    reference = lep.load_reference(lep.observables(args.set), args.data)
    objective = HistogramObjective(lambda params: {}, reference, n_params=len(names),
                                   keep_bins=True)
    with CampaignStore.open(args.store) as store:
        runs = [t for t in store.history() if t.value is not None and "bins" in t.info]
    print(sensitivity(runs[:args.runs], space, objective, step=args.step).table(width=8))


if __name__ == "__main__":
    main()
