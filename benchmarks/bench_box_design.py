"""A Pythia design over the whole four-parameter box, and how well per-bin polynomials
describe it: the ground on which tuning methods can be compared with random truths.

A closure with a truth drawn anywhere in the central 60 % of the published ranges needs the
generator's response over the whole box, not only around Monash. This script simulates a
scrambled Sobol design over the ranges of ``examples/pythia_closure.py`` (``--points``,
``--events`` each; resumable: finished points are kept in ``--design`` and a rerun adds only
the missing ones), then fits every used bin with a polynomial of each degree in
``--degrees`` and prints, by leave-one-out over the design, the residuals in units of the
bins' MC errors per observable -- over the whole box and over its central 60 %. Residuals
near 1 mean the polynomial describes the bin within the MC noise; above 1, it is the
polynomial that is wrong (the Professor/Apprentice question of which order a bin needs).

    BAYESTUNE_LEP_DATA=../shared/data/lep OMP_NUM_THREADS=1 \\
        python benchmarks/bench_box_design.py --points 256 --events 50000

The design file (default ``benchmarks/results/box4_design.npz``) holds the parameter points,
the bins' values and MC errors in the order of the observables, and the settings.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
from scipy.stats import qmc

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "examples"))

from pythia_closure import SPACE  # noqa: E402

from bayestune.hep import lep  # noqa: E402
from bayestune.hep.pythia import PythiaSimulator  # noqa: E402
from bayestune.quadratic import quadratic_features  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
NAMES = SPACE.names
LOW = np.array([d.low for d in SPACE])
HIGH = np.array([d.high for d in SPACE])


def design_points(n: int, seed: int) -> np.ndarray:
    """``n`` scrambled Sobol points over the box (physical units), the same for a seed."""
    unit = qmc.Sobol(d=len(NAMES), scramble=True, seed=seed).random(n)
    return LOW + unit * (HIGH - LOW)


def load(path: Path) -> dict[str, np.ndarray]:
    if not path.exists():
        return {}
    with np.load(path, allow_pickle=False) as data:
        return {k: data[k] for k in data.files}


def simulate(args: argparse.Namespace) -> dict[str, np.ndarray]:
    """Simulate the design points not yet in the file (saved after each point)."""
    obs = lep.observables(args.observables)
    reference = lep.load_reference(obs, args.data)
    ids = [o.id for o in obs]
    points = design_points(args.points, args.seed)
    have = load(args.design)
    done = len(have.get("points", []))
    if done and (int(have["events"]) != args.events or int(have["seed"]) != args.seed
                 or list(have["observables"]) != ids):
        raise SystemExit(f"{args.design} was made with other settings; use another --design")
    values = list(have.get("values", []))
    errors = list(have.get("errors", []))
    start = time.perf_counter()
    with PythiaSimulator(obs, reference, n_events=args.events, seed=args.seed,
                         n_workers=args.workers) as sim:
        for k in range(done, args.points):
            hists = sim(dict(zip(NAMES, map(float, points[k]))))
            values.append(np.concatenate([hists[i].values for i in ids]))
            errors.append(np.concatenate([hists[i].errors for i in ids]))
            bins = np.array([reference[i].n_bins for i in ids])
            np.savez(args.design, points=points[: k + 1], values=np.array(values),
                     errors=np.array(errors), observables=np.array(ids), bins=bins,
                     events=args.events, seed=args.seed, names=np.array(NAMES))
            print(f"  [{time.perf_counter() - start:6.0f} s] point {k + 1}/{args.points}",
                  flush=True)
    return load(args.design)


def features(u: np.ndarray, degree: int) -> np.ndarray:
    """Monomials of the unit-box coordinates ``u`` (n, k) up to ``degree``."""
    if degree == 2:
        return quadratic_features(u)
    from itertools import combinations_with_replacement

    cols = [np.ones(len(u))]
    for d in range(1, degree + 1):
        for combo in combinations_with_replacement(range(u.shape[1]), d):
            cols.append(np.prod(u[:, combo], axis=1))
    return np.column_stack(cols)


def loo_residuals(X: np.ndarray, Y: np.ndarray, E: np.ndarray, degree: int) -> np.ndarray:
    """Leave-one-out residuals of weighted polynomial fits, in units of the MC errors
    (n_points, n_bins); the hat matrix gives them without refitting."""
    out = np.empty_like(Y)
    A = features(2 * X - 1, degree)
    for b in range(Y.shape[1]):
        w = 1.0 / np.maximum(E[:, b], 1e-12)
        Aw = A * w[:, None]
        q, _ = np.linalg.qr(Aw)
        hat = np.einsum("ij,ij->i", q, q)
        coef, *_ = np.linalg.lstsq(Aw, Y[:, b] * w, rcond=None)
        resid = (Y[:, b] - A @ coef) * w
        out[:, b] = resid / np.sqrt(np.clip(1 - hat, 1e-6, None))
    return out


def report(data: dict[str, np.ndarray], degrees: list[int]) -> None:
    X = (data["points"] - LOW) / (HIGH - LOW)
    Y, E = data["values"], data["errors"]
    used = np.all(E > 0, axis=0) & np.all(np.isfinite(Y), axis=0)
    central = np.all((X > 0.2) & (X < 0.8), axis=1)
    print(f"\n{len(X)} points ({central.sum()} in the central 60 %), {int(data['events'])} "
          f"events each; {used.sum()} of {Y.shape[1]} bins with MC errors at every point")
    print("leave-one-out residuals / MC error, RMS per observable "
          "(whole box | central 60 %):")
    header = f"{'observable':24s}" + "".join(f"  degree {d} (n_coef)".rjust(24) for d in degrees)
    print(header)
    edges = np.concatenate([[0], np.cumsum(data["bins"])])
    res = {}
    for d in degrees:
        n_coef = features(np.zeros((1, X.shape[1])), d).shape[1]
        if n_coef >= len(X) - 2:
            continue
        r = np.full_like(Y, np.nan)
        r[:, used] = loo_residuals(X, Y[:, used], E[:, used], d)
        res[d] = (r, n_coef)
    for j, name in enumerate(data["observables"]):
        cols = slice(edges[j], edges[j + 1])
        row = f"{name!s:24s}"
        for d in degrees:
            if d not in res:
                row += f"{'-':>24s}"
                continue
            r = res[d][0][:, cols]
            whole = np.sqrt(np.nanmean(r**2))
            inner = np.sqrt(np.nanmean(r[central] ** 2))
            row += f"{whole:12.2f} | {inner:6.2f} ({res[d][1]})".rjust(24)
        print(row)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--points", type=int, default=256)
    parser.add_argument("--events", type=int, default=50_000)
    parser.add_argument("--seed", type=int, default=7, help="design and Pythia seed")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--observables", default="core")
    parser.add_argument("--data", default=None)
    parser.add_argument("--design", type=Path, default=RESULTS / "box4_design.npz")
    parser.add_argument("--degrees", type=int, nargs="+", default=[2, 3, 4])
    parser.add_argument("--report-only", action="store_true")
    args = parser.parse_args()
    data = load(args.design) if args.report_only else simulate(args)
    report(data, args.degrees)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
