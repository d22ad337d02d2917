"""Closures with random truths under a hard budget, against scikit-optimize at equal runs.

Each seed draws a truth uniformly inside the central 60 % of the published ranges of the
four parameters (TimeShower:alphaSvalue, StringZ:aLund, StringZ:bLund, StringPT:sigma), makes
level-1 pseudo-data there (``4 x --events`` events, smeared by and given the measured ALEPH /
PDG errors), and tunes against them with :func:`bayestune.hep.tune_generator` inside a
budget of ``--budget`` generator runs of ``--events`` events. With ``--skopt`` it also runs
scikit-optimize's ``gp_minimize`` (noise "gaussian") for the same number of runs against the
same pseudo-data; both estimates (skopt's: its best observed point, ``result.x``) are then
re-simulated with 5x the events of one run and their chi2 against the pseudo-data compared.

``--generator emulated`` uses the quartic stand-in of ``emulated_box.py`` (seconds per
closure: for choosing a method); ``--generator pythia`` the real Pythia 8 (minutes). One
JSON line per finished closure goes to ``--results``; a rerun skips the seeds already there,
and ``--store-dir`` keeps each tune's campaign store and the chi2 values of its skopt run
(``seed<N>_skopt.jsonl``), so that an interrupted closure resumes in either stage.

    BAYESTUNE_LEP_DATA=../shared/data/lep OMP_NUM_THREADS=1 python \\
        benchmarks/bench_closure_random.py --generator pythia --seeds 101-120 --skopt \\
        --results benchmarks/results/closure_random_pythia.jsonl --store-dir /tmp/stores

``--refit`` adds the truth's distance under the covariance to closures recorded without it,
from their stores (no new runs).

``--report`` prints the summary of a results file: pull mean and width (with standard errors),
the fraction of pulls within 1 and 2 sigma, the fraction of truths whose every pull is within
2 sigma (for calibrated errors 0.954^4 = 0.83 of them: a per-parameter criterion, stricter
than a joint one), the fraction of truths inside the joint 2-sigma region of the estimate's
covariance (``Delta chi2 <= 9.72`` for four parameters; 0.95 if calibrated), runs and events
per closure, and the median chi2 at the estimates of bayestune and skopt.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "examples"))

from closure_series import (  # noqa: E402
    append_row,
    joint_limit,
    parse_seeds,
    pull_moments,
    read_rows,
)
from emulated_box import HIGH, LOW, NAMES, BoxEmulator, central_truth  # noqa: E402
from pythia_closure import SPACE  # noqa: E402

from bayestune.closure import PseudoDataOptions, closure_test, default_pseudo_seed  # noqa: E402
from bayestune.hep import HistogramObjective, lep  # noqa: E402
from bayestune.seeding import point_key  # noqa: E402


def pseudo_options(sim: Any, reference: dict, truth: dict, seed: int,
                   events: int) -> PseudoDataOptions:
    """Level-1 pseudo-data: a simulation at the truth smeared by the measured errors."""
    p_seed = default_pseudo_seed(seed)
    return PseudoDataOptions(make=sim.replicate(seed=p_seed, n_events=events)(truth),
                             seed=p_seed, measured=reference)


def chi2_at(sim: Any, data: dict, point: dict, seed: int, events: int) -> float:
    """chi2 against ``data`` of a fresh simulation at ``point`` with ``events`` events."""
    objective = HistogramObjective(sim, data, n_params=len(NAMES))
    return float(objective.chi2(sim.replicate(seed=seed, n_events=events)(point)).value)


def skopt_tune(sim: Any, data: dict, n_calls: int, seed: int,
               memo: Path | None = None) -> dict[str, float]:
    """scikit-optimize's ``gp_minimize`` on the same chi2; its recommendation (``res.x``).

    With ``memo`` (a JSON-lines file) every chi2 is written there as it is computed and
    read back by the point's :func:`~bayestune.seeding.point_key` -- the key the simulator
    seeds its runs from, so a memoised value is exactly what the run would give again: an
    interrupted skopt stage restarts, replays the same points from the memo and goes on.
    """
    from skopt import gp_minimize

    objective = HistogramObjective(sim, data, n_params=len(NAMES))
    known: dict[str, float] = {}
    if memo is not None and memo.exists():
        for line in memo.read_text().splitlines():
            if line.strip():
                entry = json.loads(line)
                known[entry["key"]] = float(entry["chi2"])

    def f(x: list[float]) -> float:
        point = dict(zip(NAMES, map(float, x)))
        key = point_key(point)
        if key not in known:
            known[key] = float(objective(point).value)
            if memo is not None:
                with memo.open("a") as out:
                    out.write(json.dumps({"key": key, "chi2": known[key]}) + "\n")
                    out.flush()
                    os.fsync(out.fileno())
        return known[key]

    res = gp_minimize(f, list(zip(LOW.tolist(), HIGH.tolist())), n_calls=n_calls,
                      noise="gaussian", random_state=seed)
    return dict(zip(NAMES, map(float, res.x)))


def one_closure(sim: Any, reference: dict, seed: int, args: argparse.Namespace) -> dict:
    truth = central_truth(seed)
    pseudo = pseudo_options(sim, reference, truth, seed, 4 * args.events)
    data = pseudo.histograms(sim, truth, seed)
    tune_sim = sim.replicate(seed=1_000 + seed)
    store = None if args.store_dir is None else Path(args.store_dir) / f"seed{seed}.sqlite"
    started = time.perf_counter()
    res = closure_test(tune_sim, SPACE, truth, seed=seed, pseudo=pseudo, store=store,
                       n_evals=args.budget, **method_options(args))
    row: dict[str, Any] = {
        "seed": seed, "truth": truth, "estimate": res.estimate, "errors": res.errors,
        "pulls": res.pulls, "runs": len(res.result.history),
        "distance2": res.truth_distance(),
        "at_limit": list(res.uncertainty.at_limit),
        "seconds": round(time.perf_counter() - started, 1),
    }
    tune = getattr(res, "tune", None)
    if tune is not None:
        row["events"] = tune.n_events
        row["stages"] = [s.as_dict() for s in tune.stages]
    check_events = 5 * args.events
    row["chi2_truth"] = chi2_at(sim, data, truth, 7_000 + seed, check_events)
    row["chi2_estimate"] = chi2_at(sim, data, res.estimate, 7_000 + seed, check_events)
    if args.skopt:
        started = time.perf_counter()
        memo = None if args.store_dir is None else \
            Path(args.store_dir) / f"seed{seed}_skopt.jsonl"
        point = skopt_tune(sim.replicate(seed=3_000 + seed), data, row["runs"], seed, memo)
        row["skopt_estimate"] = point
        row["skopt_seconds"] = round(time.perf_counter() - started, 1)
        row["chi2_skopt"] = chi2_at(sim, data, point, 7_000 + seed, check_events)
    return row


def resume_closure(sim: Any, reference: dict, row: dict[str, Any], store: Path,
                   events: int = 20_000, budget: int = 80, check: bool = True,
                   **method: Any) -> Any:
    """The recorded closure ``row`` resumed from its ``store``: every stored evaluation is
    reused (no new runs), so it ends with the recorded estimate -- checked against the
    recorded runs and pulls (``SystemExit`` when it does not; not checked when ``check`` is
    false: another method or CPU may decide otherwise on the same runs). ``method``: the
    keywords of :func:`closure_test` the series was run with."""
    seed = row["seed"]
    truth = central_truth(seed)
    res = closure_test(sim.replicate(seed=1_000 + seed), SPACE, truth, seed=seed,
                       pseudo=pseudo_options(sim, reference, truth, seed, 4 * events),
                       store=store, n_evals=budget, **method)
    same = not check or len(res.result.history) == row["runs"] and all(
        abs(res.pulls[n] - row["pulls"][n]) < 1e-6 for n in NAMES)
    if not same:
        raise SystemExit(f"seed {seed}: the resumed closure is not the recorded one "
                         f"(pulls {res.pulls}, recorded {row['pulls']})")
    return res


def resume_copy(obs: Any, reference: dict, row: dict[str, Any], store: Path,
                check: bool = True, **method: Any) -> Any:
    """:func:`resume_closure` of a Pythia closure on a copy of its ``store`` (which stays as
    it is), with a simulator of the series' 20k events."""
    from bayestune.hep.pythia import PythiaSimulator

    with tempfile.TemporaryDirectory() as tmp, \
            PythiaSimulator(obs, reference, n_events=20_000, seed=0) as sim:
        copy = Path(tmp) / "replay.sqlite"
        shutil.copy(store, copy)
        return resume_closure(sim, reference, row, copy, check=check, **method)


def resume_final_fit(sim: Any, reference: dict, row: dict[str, Any], store: Path,
                     **method: Any) -> tuple[Any, Any, tuple, dict] | None:
    """The recorded closure ``row`` resumed (:func:`resume_closure`) with its final fit:
    ``(closure result, final model, fit_binwise's args, its keywords)``, the last
    ``fit_binwise`` call of the resumed tune with the final model's evaluations (to refit
    them another way); None when the final fit is not debiased."""
    import bayestune.hep.tuning.refine as refine

    calls: list[tuple[tuple, dict]] = []
    fit = refine.fit_binwise
    refine.fit_binwise = lambda *a, **k: (calls.append((a, k)), fit(*a, **k))[1]
    try:
        res = resume_closure(sim, reference, row, store, **method)
    finally:
        refine.fit_binwise = fit
    model = res.tune.model
    if not model.debiased:
        return None
    for a, k in reversed(calls):
        if tuple(k.get("trials") or ()) == model.trials and \
                tuple(k.get("basis") or ()) == model.basis:
            return res, model, a, k
    raise SystemExit(f"seed {row['seed']}: no fit_binwise call made the final fit")


def final_fits(sim: Any, reference: dict, rows: dict[int, dict], seeds: list[int],
               store_dir: Path, **method: Any) -> Any:
    """:func:`resume_final_fit` for each of ``seeds`` in turn, as ``(seed, result, model,
    args, kwargs)``; a closure whose final fit is not debiased is reported and skipped."""
    for seed in seeds:
        found = resume_final_fit(sim, reference, rows[seed],
                                 store_dir / f"seed{seed}.sqlite", **method)
        if found is None:
            print(f"seed {seed}: the final fit is not debiased; skipped")
            continue
        yield (seed, *found)


def refit(sim: Any, reference: dict, args: argparse.Namespace) -> None:
    """Add the truth's distance to finished closures recorded without it, from their stores
    (:func:`resume_closure`)."""
    rows = read_rows(args.results)
    for row in rows:
        if "distance2" in row:
            continue
        res = resume_closure(sim, reference, row,
                             Path(args.store_dir) / f"seed{row['seed']}.sqlite", args.events,
                             args.budget, **method_options(args))
        row["distance2"] = res.truth_distance()
        print(f"seed {row['seed']}: distance2 {row['distance2']:.2f}", flush=True)
    args.results.write_text("".join(json.dumps(r) + "\n" for r in rows))


def method_options(args: argparse.Namespace) -> dict[str, Any]:
    if args.method == "legacy":  # the composite engine + refine_binwise of --full
        return {"estimator": "binwise", "optimiser": "composite", "refine_rounds": 4}
    from bayestune.hep import GeneratorTuning

    return {"method": GeneratorTuning.from_dict(json.loads(args.options or "{}"))}


def report(path: Path) -> None:
    rows = read_rows(path)
    if not rows:
        print("no closures yet")
        return
    P = np.array([[r["pulls"][n] for n in NAMES] for r in rows])
    flat = P.ravel()
    n = flat.size
    within2 = np.mean(np.all(np.abs(P) < 2, axis=1))
    print(f"{len(rows)} closures ({n} pulls): {pull_moments(P)}; pulls within 1 sigma "
          f"{np.mean(np.abs(flat) < 1):.2f}, within 2 sigma {np.mean(np.abs(flat) < 2):.2f}; "
          f"truths with every pull within 2 sigma {within2:.2f}")
    if all("distance2" in r for r in rows):
        limit = joint_limit(len(NAMES))
        inside = np.mean([r["distance2"] <= limit for r in rows])
        print(f"truths inside the joint 2-sigma region of the covariance (Delta chi2 <= "
              f"{limit:.2f} for {len(NAMES)} parameters; 0.95 if calibrated): {inside:.2f}")
    for j, name in enumerate(NAMES):
        print(f"  {name:24s} mean {P[:, j].mean():+.2f}  sd {P[:, j].std(ddof=1):.2f}")
    settled = [_settled(r) for r in rows]
    if all(x is not None for x in settled):
        for flag, label in ((True, "settled"), (False, "not settled")):
            sub = np.array([[r["pulls"][n] for n in NAMES] for r, x in zip(rows, settled)
                            if x is flag])
            if len(sub):
                print(f"  {label:11s}: {len(sub):2d} closures, pull width "
                      f"{sub.std(ddof=1) if sub.size > 1 else float('nan'):.2f}, truths with "
                      f"every pull within 2 sigma {np.mean(np.all(np.abs(sub) < 2, axis=1)):.2f}")
    runs = [r["runs"] for r in rows]
    print(f"runs per closure: min {min(runs)}, max {max(runs)}"
          + (f"; events per closure: max {max(r['events'] for r in rows):,}"
             if all("events" in r for r in rows) else ""))
    gap = np.array([r["chi2_estimate"] - r["chi2_truth"] for r in rows])
    print(f"chi2 at the estimate minus at the truth (5x events): median {np.median(gap):+.1f}")
    if all("chi2_skopt" in r for r in rows):
        ours = np.array([r["chi2_estimate"] for r in rows])
        theirs = np.array([r["chi2_skopt"] for r in rows])
        print(f"median chi2 at the estimate: bayestune {np.median(ours):.1f}, skopt "
              f"{np.median(theirs):.1f}; bayestune lower in {np.mean(ours < theirs):.2f}")
    for r in rows:
        line = (f"  seed {r['seed']:4d} pulls {np.round([r['pulls'][n] for n in NAMES], 2)} "
                f"runs {r['runs']} chi2 est-truth {r['chi2_estimate'] - r['chi2_truth']:+7.1f}")
        if "chi2_skopt" in r:
            line += f" skopt-truth {r['chi2_skopt'] - r['chi2_truth']:+7.1f}"
        if r.get("at_limit"):
            line += f" on a limit of the final fit: {', '.join(r['at_limit'])}"
        print(line)


def _settled(row: dict) -> bool | None:
    """Whether the closure's final fit settled (None without a stage log)."""
    final = [s for s in row.get("stages", []) if s["stage"] == "final-fit"]
    return None if not final else ": settled" in final[0]["outcome"]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--generator", choices=["emulated", "pythia"], default="emulated")
    parser.add_argument("--seeds", default="1-5")
    parser.add_argument("--noise", choices=["independent", "correlated"],
                        default="independent",
                        help="the emulated generator's MC noise: independent bins, or "
                        "correlated as Pythia's (bench_mc_noise.py)")
    parser.add_argument("--budget", type=int, default=80, help="generator runs per closure")
    parser.add_argument("--events", type=int, default=20_000, help="events per run")
    parser.add_argument("--method", choices=["staged", "legacy"], default="staged")
    parser.add_argument("--options", default=None,
                        help="the method's options as JSON, e.g. "
                        "'{\"probe\": {\"enabled\": false}}'")
    parser.add_argument("--skopt", action="store_true")
    parser.add_argument("--results", type=Path, required=True)
    parser.add_argument("--store-dir", default=None)
    parser.add_argument("--data", default=None)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--report", action="store_true")
    parser.add_argument("--refit", action="store_true",
                        help="add the truth's distance to closures recorded without it, "
                             "refitted from the stores of --store-dir (no new runs)")
    args = parser.parse_args(argv)
    if args.report:
        report(args.results)
        return
    if args.store_dir:
        Path(args.store_dir).mkdir(parents=True, exist_ok=True)
    done = {row["seed"] for row in read_rows(args.results)}
    obs = lep.observables("core")
    reference = lep.load_reference(obs, args.data)
    if args.refit and not args.store_dir:
        parser.error("--refit needs the closures' stores: --store-dir")
    if args.generator == "emulated":
        sim: Any = BoxEmulator(data=args.data, noise=args.noise).simulator(args.events)
        run(sim, reference, args, done)
    else:
        from bayestune.hep.pythia import PythiaSimulator

        with PythiaSimulator(obs, reference, n_events=args.events, seed=0,
                             n_workers=args.workers) as sim:
            run(sim, reference, args, done)
    report(args.results)


def run(sim: Any, reference: dict, args: argparse.Namespace, done: set) -> None:
    if args.refit:
        refit(sim, reference, args)
    else:
        run_series(sim, reference, args, done)


def run_series(sim: Any, reference: dict, args: argparse.Namespace, done: set) -> None:
    for seed in parse_seeds(args.seeds):
        if seed in done:
            continue
        row = one_closure(sim, reference, seed, args)
        append_row(args.results, row)
        print(f"seed {seed}: pulls {np.round([row['pulls'][n] for n in NAMES], 2)}, runs "
              f"{row['runs']}, {row['seconds']} s", flush=True)


if __name__ == "__main__":
    main()
