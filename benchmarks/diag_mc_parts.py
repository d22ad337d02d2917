"""The final fit's covariance with each MC part (``RefineStage.mc_part``) on recorded closures.

A tune's covariance is the Hessian's part (the pseudo-data's noise) plus an MC part (the
noise of the method's own runs). The MC part does not change which runs a tune makes, so a
recorded closure can be resumed from its store (no new runs; the recorded pulls are checked)
and its final fit's covariance recomputed with each choice of
:meth:`~bayestune.hep.BinwiseModel.uncertainty`'s ``mc_part`` -- ``"replicas"``,
``"extrapolated"``, ``"corrected"``, ``"scaled"``, ``"geometric"`` -- and with the Hessian's
part alone, each for the final estimate's chi2 (``RefineStage.final_noise``).
Prints each closure's error ratios and, over the series, each choice's pull mean and width
and the share of truths with every pull within 2 sigma and inside the joint 2-sigma region.
With the emulated generator it also prints ``(estimate - exact minimum) / MC part``: the
exact minimum of the noise-free emulator's chi2 against the same pseudo-data
(``diag_exact_minimum.py``) is what unlimited runs would give, so each MC part's width
should be about 1.

    PYTHONPATH=<checkout the series was made with> BAYESTUNE_LEP_DATA=../shared/data/lep \\
        python benchmarks/diag_mc_parts.py --generator emulated --seeds 381-400 \\
        --results benchmarks/results/closure_random_emulated_seeds381-400.jsonl \\
        --store-dir STORES --out benchmarks/results/diag_mc_parts_emulated_381-400.jsonl

(the checkout must have ``mc_part``, i.e. a commit from 0af6579 on, and plan the same runs
as the series' commit).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_closure_random import pseudo_options, resume_closure  # noqa: E402
from closure_series import (  # noqa: E402
    append_row,
    joint_limit,
    parse_seeds,
    pull_moments,
    read_rows,
    resume_arguments,
    rows_by_seed,
)
from emulated_box import NAMES, BoxEmulator  # noqa: E402

from bayestune.hep import GeneratorTuning, lep  # noqa: E402
from bayestune.hep.binwise import MC_PARTS  # noqa: E402

CHOICES = (*MC_PARTS, "hessian only")


def closure_parts(sim, reference, row, store, method, emulator=None,
                  replica_bounds: str = "box") -> dict:
    """One recorded closure's final covariance with every MC part (as lists), the replicas'
    minima bounded by ``replica_bounds``."""
    res = resume_closure(sim, reference, row, store, method=method)
    model = res.tune.model
    x = np.array([res.estimate[n] for n in NAMES])
    out = {"seed": row["seed"], "truth": [res.truth[n] for n in NAMES], "estimate": x.tolist(),
           "recorded_pulls": [row["pulls"][n] for n in NAMES]}
    for part in MC_PARTS:
        unc = model.uncertainty(start=x, mc_part=part, replica_bounds=replica_bounds,
                                noise=method.refine.final_noise)
        out[part] = np.asarray(unc.covariance_surrogate).tolist()
        out["hessian"] = np.asarray(unc.covariance_hessian).tolist()
        out[f"estimate_{part}"] = [unc.x[n] for n in NAMES]
    if emulator is not None:
        from diag_exact_minimum import exact_minimum

        from bayestune.closure import level1_pseudo_data

        pseudo = pseudo_options(sim, reference, res.truth, row["seed"], 80_000)
        data = level1_pseudo_data(pseudo.make, emulator.reference, pseudo.seed)
        values = np.concatenate([data[i].values for i in emulator.ids])
        errors = np.concatenate([data[i].errors for i in emulator.ids])
        out["exact_minimum"] = exact_minimum(emulator, values, errors,
                                             np.array(out["truth"])).tolist()
    return out


def covariance(row: dict, choice: str) -> np.ndarray:
    hessian = np.array(row["hessian"])
    return hessian if choice == "hessian only" else hessian + np.array(row[choice])


def distance2(row: dict, choice: str) -> float:
    """The truth's Delta chi2 under the estimate's covariance with MC part ``choice``."""
    d = np.array(row["estimate"]) - np.array(row["truth"])
    return float(d @ np.linalg.solve(covariance(row, choice), d))


def report(rows: list[dict]) -> None:
    print(f"{len(rows)} closures; per closure the MC part's errors over the replicas' "
          f"({', '.join(NAMES)}):")
    for row in rows:
        rep = np.sqrt(np.diag(row["replicas"]))
        ratios = "  ".join(f"{p} {np.round(np.sqrt(np.diag(row[p])) / rep, 2)}"
                           for p in MC_PARTS[1:])
        print(f"  seed {row['seed']}: {ratios}; replicas / Hessian "
              f"{np.round(rep / np.sqrt(np.diag(row['hessian'])), 2)}")
    print("\npulls (estimate - truth) / error:")
    for choice in CHOICES:
        pulls = np.array([(np.array(r["estimate"]) - np.array(r["truth"]))
                          / np.sqrt(np.diag(covariance(r, choice))) for r in rows])
        inside = np.mean(np.all(np.abs(pulls) < 2.0, axis=1))
        joint = np.mean([distance2(r, choice) <= joint_limit(len(NAMES)) for r in rows])
        print(f"  {choice:13s} {pull_moments(pulls)}; per parameter sd "
              f"{np.round(np.sqrt(np.mean(pulls**2, axis=0)), 2)}; truths with every pull "
              f"within 2 sigma {inside:.2f}, inside the joint 2-sigma region {joint:.2f}")
    exact = [r for r in rows if "exact_minimum" in r]
    if exact:
        print("\n(estimate - exact minimum) / MC part's error per parameter: root mean "
              "square; median |.| / 0.674 (robust)")
        for choice in MC_PARTS:
            v = np.array([(np.array(r["estimate"]) - np.array(r["exact_minimum"]))
                          / np.sqrt(np.maximum(np.diag(np.array(r[choice])), 1e-300))
                          for r in exact])
            print(f"  {choice:13s} {np.round(np.sqrt(np.mean(v**2, axis=0)), 2)}; "
                  f"{np.round(np.median(np.abs(v), axis=0) / 0.6745, 2)}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--generator", choices=["emulated", "pythia"], required=True)
    resume_arguments(parser)
    parser.add_argument("--out", type=Path, required=True,
                        help="JSON lines, one per closure (a rerun skips the seeds there)")
    parser.add_argument("--data", default=None)
    parser.add_argument("--report", action="store_true", help="only summarise --out")
    parser.add_argument("--replica-bounds", default="box", choices=["box", "wall"],
                        help="what bounds the replicas' minima (RefineStage.replica_bounds)")
    parser.add_argument("--no-exact", action="store_true",
                        help="emulated: skip the noise-free emulator's exact minimum (slow)")
    args = parser.parse_args(argv)
    if not args.report:
        rows = rows_by_seed(args.results)
        done = {r["seed"] for r in read_rows(args.out)}
        reference = lep.load_reference(lep.observables("core"), args.data)
        method = GeneratorTuning.from_dict(json.loads(args.options))
        emulator = None
        if args.generator == "pythia":
            from bayestune.hep.pythia import PythiaSimulator

            sim = PythiaSimulator(lep.observables("core"), reference, n_events=20_000, seed=0,
                                  n_workers=1)
        else:
            emulator = BoxEmulator(data=args.data, noise="correlated")
            sim = emulator.simulator(20_000)
        for seed in parse_seeds(args.seeds):
            if seed in done or seed not in rows:
                continue
            row = closure_parts(sim, reference, rows[seed],
                                args.store_dir / f"seed{seed}.sqlite", method,
                                None if args.no_exact else emulator, args.replica_bounds)
            append_row(args.out, row)
            print(f"seed {seed} done", flush=True)
        if hasattr(sim, "close"):
            sim.close()
    report(read_rows(args.out))


if __name__ == "__main__":
    main()
