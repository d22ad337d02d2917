"""Each part of an emulated closure's error against the part of the error it claims.

A tune's covariance is the Hessian's (the pseudo-data's noise) plus the replicas' (the MC
noise of the method's runs). With the emulated generator the two errors can be separated:
the exact minimum of the noise-free emulator's chi2 against the pseudo-data
(``diag_exact_minimum.py``) is what unlimited runs would give, so

- ``(exact minimum - truth) / Hessian error`` should scatter with width ~1 (a little more
  along a curved valley, where the minimum-chi2 estimator itself is not Gaussian), and
- ``(estimate - exact minimum) / replicas' error`` with width ~1, about 0,

if each part is right. Each closure of a ``bench_closure_random.py`` series is resumed from
its store (no new runs; the recorded pulls are checked). Run it from the commit the series
was made with::

    PYTHONPATH=<checkout> BAYESTUNE_LEP_DATA=../shared/data/lep \\
        python benchmarks/diag_error_parts.py --seeds 361-380 --store-dir STORES \\
        --results benchmarks/results/closure_random_emulated_dev_probe_sd1_361-380.jsonl \\
        --options '{"probe": {"min_gain_sd": 1.0}}'
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_closure_random import pseudo_options, resume_closure  # noqa: E402
from closure_series import parse_seeds, resume_arguments, rows_by_seed  # noqa: E402
from diag_exact_minimum import exact_minimum  # noqa: E402
from emulated_box import NAMES, BoxEmulator  # noqa: E402

from bayestune.closure import level1_pseudo_data  # noqa: E402
from bayestune.hep import GeneratorTuning, lep  # noqa: E402


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    resume_arguments(parser)
    parser.add_argument("--data", default=None)
    args = parser.parse_args(argv)
    rows = rows_by_seed(args.results)
    reference = lep.load_reference(lep.observables("core"), args.data)
    emu = BoxEmulator(data=args.data, noise="correlated")
    sim = emu.simulator(20_000)
    method = GeneratorTuning.from_dict(json.loads(args.options))
    hessian_pulls, replica_pulls, ratios = [], [], []
    for seed in parse_seeds(args.seeds):
        res = resume_closure(sim, reference, rows[seed], args.store_dir / f"seed{seed}.sqlite",
                             method=method)
        t = np.array([res.truth[n] for n in NAMES])
        x = np.array([res.estimate[n] for n in NAMES])
        pseudo = pseudo_options(sim, reference, res.truth, seed, 80_000)
        unc = res.uncertainty
        s_h = np.sqrt(np.diag(np.asarray(unc.covariance_hessian)))
        s_r = np.sqrt(np.diag(np.asarray(unc.covariance_surrogate)))
        data = level1_pseudo_data(pseudo.make, emu.reference, pseudo.seed)
        d = np.concatenate([data[i].values for i in emu.ids])
        sd = np.concatenate([data[i].errors for i in emu.ids])
        x_min = exact_minimum(emu, d, sd, t)
        hessian_pulls.append((x_min - t) / s_h)
        replica_pulls.append((x - x_min) / s_r)
        ratios.append(s_r / s_h)
        print(f"seed {seed}: (min - truth) / Hessian's {np.round(hessian_pulls[-1], 2)}; "
              f"(estimate - min) / replicas' {np.round(replica_pulls[-1], 2)}; replicas' / "
              f"Hessian's {np.round(ratios[-1], 2)}", flush=True)
    print(f"\n{len(ratios)} closures; per parameter ({', '.join(NAMES)}):")
    for label, v in (("(exact minimum - truth) / Hessian's error", hessian_pulls),
                     ("(estimate - exact minimum) / replicas' error", replica_pulls)):
        v = np.array(v)
        print(f"  {label:46s} mean {np.round(v.mean(axis=0), 2)}  "
              f"sd {np.round(v.std(axis=0, ddof=1), 2)}")
    print(f"  {'replicas error / Hessian error, median':46s} "
          f"{np.round(np.median(ratios, axis=0), 2)}")


if __name__ == "__main__":
    main()
