"""The same emulated closure run again and again: one truth, one pseudo-data set, the
generator's seed changed. How far do the estimates scatter, against the errors they quote?

A closure series draws a new truth and new pseudo-data per closure, so the method's own
scatter (the MC noise of its runs, the path its walk takes) is seen once per truth. Here it
is seen many times: ``--reruns`` closures of the emulated generator at one truth, each with
other generator seeds (the pseudo-data do not change). Printed per rerun: the estimate, its
pulls against the truth and the stage log's one-line outcome of the probe and the final
fit; then per parameter the reruns' standard deviation over the median quoted error (total,
and the replicas' part alone: the part that claims to be this scatter), and the reruns'
mean against the exact minimum of the noise-free emulator for these pseudo-data (what a
method with unlimited runs would report; ``diag_exact_minimum.py``) in the same units.

    BAYESTUNE_LEP_DATA=../shared/data/lep python benchmarks/bench_closure_rerun.py \\
        --seed 362 --reruns 10 --options '{"probe": {"min_gain_sd": 1.0}}' \\
        --results RERUNS.jsonl --store-dir STORES

Rows already in ``--results`` are skipped; about a minute per rerun.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_closure_random import SPACE, pseudo_options  # noqa: E402
from closure_series import read_rows  # noqa: E402
from diag_exact_minimum import exact_minimum  # noqa: E402
from emulated_box import NAMES, BoxEmulator, central_truth  # noqa: E402

from bayestune.closure import closure_test, level1_pseudo_data  # noqa: E402
from bayestune.hep import GeneratorTuning, lep  # noqa: E402


def rerun(sim, reference, truth: dict, seed: int, k: int, method: GeneratorTuning,
          store: Path) -> dict:
    """Closure ``k`` at ``truth`` with the pseudo-data of ``seed``, generator key by ``k``."""
    res = closure_test(sim.replicate(seed=50_000 + 100 * seed + k), SPACE, truth, seed=seed,
                       pseudo=pseudo_options(sim, reference, truth, seed, 80_000),
                       store=store, n_evals=80, method=method)
    unc = res.uncertainty
    outcome = {r.stage: r.outcome for r in res.tune.stages if r.stage in ("probe", "final-fit")}
    return {"seed": seed, "rerun": k, "estimate": [res.estimate[n] for n in NAMES],
            "errors": [res.errors[n] for n in NAMES],
            "replicas": np.sqrt(np.diag(np.asarray(unc.covariance_surrogate))).tolist(),
            "runs": res.tune.n_runs, "outcome": outcome}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seed", type=int, required=True, help="truth and pseudo-data")
    parser.add_argument("--reruns", type=int, default=10)
    parser.add_argument("--options", default="{}")
    parser.add_argument("--results", type=Path, required=True)
    parser.add_argument("--store-dir", type=Path, required=True)
    parser.add_argument("--data", default=None)
    args = parser.parse_args(argv)
    emu = BoxEmulator(data=args.data, noise="correlated")
    sim = emu.simulator(20_000)
    reference = lep.load_reference(lep.observables("core"), args.data)
    method = GeneratorTuning.from_dict(json.loads(args.options))
    truth = central_truth(args.seed)
    t = np.array([truth[n] for n in NAMES])
    done = {r["rerun"]: r for r in read_rows(args.results) if r["seed"] == args.seed} \
        if args.results.exists() else {}
    args.store_dir.mkdir(parents=True, exist_ok=True)
    rows = []
    for k in range(args.reruns):
        row = done.get(k)
        if row is None:
            row = rerun(sim, reference, truth, args.seed, k, method,
                        args.store_dir / f"seed{args.seed}_rerun{k}.sqlite")
            with args.results.open("a") as f:
                f.write(json.dumps(row) + "\n")
        rows.append(row)
        pulls = (np.array(row["estimate"]) - t) / np.array(row["errors"])
        print(f"rerun {k:2d}: pulls {np.round(pulls, 2)}; {row['outcome'].get('probe', '-')}; "
              f"{row['outcome'].get('final-fit', '-')}", flush=True)
    x = np.array([r["estimate"] for r in rows])
    pulls = (x - t) / np.array([r["errors"] for r in rows])
    opt = pseudo_options(sim, reference, truth, args.seed, 80_000)
    data = level1_pseudo_data(opt.make, emu.reference, opt.seed)
    d = np.concatenate([data[i].values for i in emu.ids])
    sd = np.concatenate([data[i].errors for i in emu.ids])
    x_min = exact_minimum(emu, d, sd, t)
    errors = np.median([r["errors"] for r in rows], axis=0)
    replicas = np.median([r["replicas"] for r in rows], axis=0)
    spread = x.std(axis=0, ddof=1)
    print(f"\nseed {args.seed}, {len(rows)} reruns; per parameter ({', '.join(NAMES)}):\n"
          f"  reruns' sd / median error          {np.round(spread / errors, 2)}\n"
          f"  reruns' sd / median replicas' part {np.round(spread / replicas, 2)}\n"
          f"  (reruns' mean - exact minimum) / median replicas' part "
          f"{np.round((x.mean(axis=0) - x_min) / replicas, 2)}\n"
          f"  pulls within 2 sigma {np.mean(np.abs(pulls) < 2):.2f}; reruns with every pull "
          f"within 2 sigma {np.mean(np.all(np.abs(pulls) < 2, axis=1)):.2f}")


if __name__ == "__main__":
    main()
