"""The final fit's errors with the replicas' chi2 subtracting the quoted-size noise they carry
(as since dd895c9) against the lack-of-fit-sized subtraction before, on the same closures.

Resumes each emulated closure of a ``bench_closure_random.py`` series from its store (every
evaluation reused, no new runs; the recorded pulls are checked), then recomputes the final
fit's uncertainty with the model's ``replica_variance`` set to 1 -- the subtraction that
matches replicas drawn with the quoted MC errors -- and prints, per closure, the new errors
over the recorded ones and the pulls, then the series' pull mean and width both ways.
Run it from a checkout of the commit the series was made with (6f24f29 or bdba0c1 with the
options of the series)::

    PYTHONPATH=<checkout> BAYESTUNE_LEP_DATA=../shared/data/lep python \\
        benchmarks/diag_replica_subtraction.py --seeds 341-360 --store-dir STORES \\
        --results benchmarks/results/closure_random_emulated_quoted_seeds341-360.jsonl \\
        --options '{"refine": {"replica_noise": "quoted", "unsettled_step": false}}'
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_closure_random import resume_closure  # noqa: E402
from closure_series import (  # noqa: E402
    joint_limit,
    parse_seeds,
    pull_moments,
    resume_arguments,
    rows_by_seed,
)
from emulated_box import NAMES, BoxEmulator  # noqa: E402

from bayestune.hep import GeneratorTuning, lep  # noqa: E402


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    resume_arguments(parser)
    parser.add_argument("--data", default=None)
    args = parser.parse_args(argv)
    rows = rows_by_seed(args.results)
    reference = lep.load_reference(lep.observables("core"), args.data)
    sim = BoxEmulator(data=args.data, noise="correlated").simulator(20_000)
    method = GeneratorTuning.from_dict(json.loads(args.options))
    before, after, inside = [], [], [[], []]
    for seed in parse_seeds(args.seeds):
        res = resume_closure(sim, reference, rows[seed], args.store_dir / f"seed{seed}.sqlite",
                             method=method)
        recorded = np.array([rows[seed]["pulls"][n] for n in NAMES])
        t = np.array([res.truth[n] for n in NAMES])
        x = np.array([res.estimate[n] for n in NAMES])
        errors = np.array([res.errors[n] for n in NAMES])
        model = res.tune.model
        lack_of_fit = model.lack_of_fit
        model.replica_variance = 1.0  # the subtraction since dd895c9 ...
        model.lack_of_fit = 1.0  # ... and what sets it in the commits before
        unc = model.uncertainty(start=x)
        x2 = np.array([unc.x[n] for n in NAMES])
        e2 = np.array([unc.errors[n] for n in NAMES])
        before.append(recorded)
        after.append((x2 - t) / e2)
        for i, (d, cov) in enumerate(((x - t, res.uncertainty.covariance),
                                      (x2 - t, unc.covariance))):
            inside[i].append(float(d @ np.linalg.solve(np.asarray(cov), d)) <= joint_limit(4))
        print(f"seed {seed}: lack of fit {lack_of_fit:.2f}, errors / recorded "
              f"{np.round(e2 / errors, 3)}, pulls {np.round(after[-1], 2)}", flush=True)
    for name, pulls, ins in (("recorded", before, inside[0]), ("subtracting 1", after, inside[1])):
        p = np.array(pulls)
        print(f"{name:14s}: {pull_moments(p)}; within 2 sigma {np.mean(np.abs(p) < 2):.2f}; "
              f"truths inside the joint 2-sigma region {np.mean(ins):.2f}")


if __name__ == "__main__":
    main()
