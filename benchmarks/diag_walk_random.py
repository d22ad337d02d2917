"""Replay the local rounds of stored four-parameter closures of ``bench_closure_random.py``
and print each round's decision and where its debiased fit put the minimum.

A copy of each closure's store is resumed (no new runs: the recorded pulls are checked) with
the checkout on ``PYTHONPATH``, which must plan the same runs as the series' commit:

    PYTHONPATH=<checkout of the series' commit> BAYESTUNE_LEP_DATA=../shared/data/lep \\
        OMP_NUM_THREADS=1 python benchmarks/diag_walk_random.py --seeds 460,467 \\
        --results benchmarks/results/closure_random_pythia_replicas_seeds455-477.jsonl \\
        --store-dir STORES

Printed per round after the walk's log: the fit's minimum as a fraction of its design's
largest leverage (1.00: on the wall, where the fit stops being trusted), the fit's chi2 at
the next round's centre and at the minimum, the minimum's Delta chi2 from that centre under
the fit's covariance, and the errors; then the closure's estimate and pulls.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_closure_random import resume_copy  # noqa: E402
from closure_series import parse_seeds  # noqa: E402
from walk_trace import minimum_from_centre, trace_rounds  # noqa: E402

from bayestune.hep import GeneratorTuning, lep  # noqa: E402


def print_minimum(stages: Any, walk: Any, r: int) -> None:
    """Where the round's debiased fit put the minimum (nothing for a plain fit)."""
    model, unc = walk.model, walk.unc
    if model is None or unc is None or not model.debiased:
        return
    x, cov, beyond = minimum_from_centre(stages, walk)
    at_centre, sd = model.chi2(walk.centre)
    print(f"round {r}: minimum at {model.leverage(x) / model.max_leverage:.2f} of the "
          f"largest leverage; fit chi2 at the next centre {at_centre:.1f} (sd {sd:.1f}), "
          f"at the minimum {unc.fun:.1f}; the minimum's Delta chi2 from the next centre "
          f"{beyond:.2f}; errors "
          f"{np.round(np.sqrt(np.diag(cov)), 4).tolist()}", flush=True)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", required=True)
    parser.add_argument("--results", type=Path, required=True)
    parser.add_argument("--store-dir", type=Path, required=True)
    parser.add_argument("--options", default="{}", help="the series' method options (JSON)")
    parser.add_argument("--data", default=None)
    args = parser.parse_args(argv)
    trace_rounds(print_minimum, skip="candidates plausible")
    rows = {r["seed"]: r for r in map(json.loads, args.results.read_text().splitlines())}
    obs = lep.observables("core")
    reference = lep.load_reference(obs, args.data)
    method = GeneratorTuning.from_dict(json.loads(args.options))
    for seed in parse_seeds(args.seeds):
        row = rows[seed]
        print(f"== seed {seed}: truth {row['truth']}", flush=True)
        res = resume_copy(obs, reference, row, args.store_dir / f"seed{seed}.sqlite",
                          method=method)
        final = next(s for s in res.tune.stages if s.stage == "final-fit")
        print(f"seed {seed}: {final.outcome}")
        print(f"seed {seed}: estimate {np.round(list(res.estimate.values()), 4).tolist()}, "
              f"pulls {np.round(list(res.pulls.values()), 2).tolist()}", flush=True)


if __name__ == "__main__":
    main()
