"""Coverage of bayestune's 68 % intervals over many toy data sets (issue: uncertainties).

Each toy fits ``y = A exp(-k x)`` to its own Gaussian pseudo-data (12 points, sigma 0.08;
``bayestune.testfunctions.ExponentialFitToy``) with ``bt.minimize`` (20 evaluations of
the chi2) and ``refine`` (a local design on the Hessian ellipse until the surrogate resolves
Delta chi2 = 1; ``--no-refine`` skips it), takes the Hessian errors of the surrogate and
records whether ``|estimate - truth| < error`` for each parameter. Also reported: the same
with MINOS intervals, and the pull mean and width.

    python benchmarks/bench_coverage.py --toys 200          # about 4 min on 2 cores

Writes ``benchmarks/results/coverage.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np  # noqa: E402

RESULTS = Path(__file__).parent / "results"


def toy(seed: int, n_evals: int, refine: bool) -> dict:
    import bayestune as bt
    from bayestune.testfunctions import ExponentialFitToy

    problem = ExponentialFitToy(seed)
    tuner = bt.Tuner(problem.space, problem, seed=seed)
    tuner.run(n_evals)
    if refine:
        unc = bt.refine(tuner, max_rounds=3, minos=True)
    else:
        unc = bt.estimate_uncertainty(tuner.result(), minos=True)
    out = {"seed": seed, "valid": unc.valid, "accurate": unc.surrogate_accurate,
           "n_evals": tuner.history.n_finished}
    for n in problem.space.names:
        diff = unc.x[n] - problem.truth[n]
        lo, hi = unc.minos.get(n, (-unc.errors[n], unc.errors[n]))
        out[n] = {"pull": diff / unc.errors[n], "hesse": abs(diff) < unc.errors[n],
                  "minos": lo <= -diff <= hi}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--toys", type=int, default=200)
    parser.add_argument("--evals", type=int, default=20)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--no-refine", dest="refine", action="store_false",
                        help="skip refine() (surrogate after the campaign only)")
    args = parser.parse_args()
    start = time.perf_counter()
    with ProcessPoolExecutor(args.workers) as pool:
        rows = list(pool.map(toy, range(args.toys), [args.evals] * args.toys,
                             [args.refine] * args.toys))
    names = ["A", "k"]
    hesse = np.array([[r[n]["hesse"] for n in names] for r in rows], dtype=float)
    minos = np.array([[r[n]["minos"] for n in names] for r in rows], dtype=float)
    pulls = np.array([[r[n]["pull"] for n in names] for r in rows])
    n = len(rows)
    mean_evals = np.mean([r["n_evals"] for r in rows])
    print(f"{n} toys, {args.evals} evaluations each"
          + (f" then refine() (mean {mean_evals:.1f} evaluations)" if args.refine else "")
          + f", {time.perf_counter() - start:.0f} s")
    print(f"{'parameter':10s} {'HESSE cover':>12s} {'MINOS cover':>12s} {'pull mean':>10s} "
          f"{'pull width':>10s}")
    summary = {}
    for j, name in enumerate(names):
        ch, cm = hesse[:, j].mean(), minos[:, j].mean()
        err = np.sqrt(0.68 * 0.32 / n)
        print(f"{name:10s} {ch:8.3f}+-{err:.3f} {cm:8.3f}+-{err:.3f} {pulls[:, j].mean():10.3f} "
              f"{pulls[:, j].std(ddof=1):10.3f}")
        summary[name] = {"hesse_coverage": ch, "minos_coverage": cm, "binomial_error": err,
                         "pull_mean": pulls[:, j].mean(), "pull_width": pulls[:, j].std(ddof=1)}
    total = hesse.mean()
    print(f"all intervals (HESSE): {total:.3f}, target 0.68 +- 0.05; "
          f"valid minima {np.mean([r['valid'] for r in rows]):.2f}, "
          f"surrogate accurate {np.mean([r['accurate'] for r in rows]):.2f}")
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "coverage.json").write_text(json.dumps(
        {"date": time.strftime("%Y-%m-%d"), "args": vars(args), "summary": summary,
         "hesse_coverage_all": total, "toys": rows}, indent=1, default=float))


if __name__ == "__main__":
    main()
