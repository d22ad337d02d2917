"""Closures of ten or twenty Pythia parameters with random truths, under a hard budget.

The parameters are those of arXiv:1610.08328 (``--params 20``: its three blocks, final-state
shower, string fragmentation, flavour composition) or the ten of its shower, string and
light-flavour parameters (``--params 10``: TimeShower:alphaSvalue, TimeShower:pTmin,
StringZ:aLund, StringZ:bLund, StringPT:sigma, StringFlav:probStoUD, probQQtoQ, probSQtoQQ,
mesonUDvector, mesonSvector), over their published ranges
(``../shared/data/lep/monash2013_parameters.csv``: the 1610.08328 range, else the 2505.11675
one). Each seed draws a truth uniformly inside the central 60 % of the ranges, makes level-1
pseudo-data there (``4 x --events`` events, smeared by and given the measured errors of the
``iwy20`` observables: ALEPH 1996 shapes and spectra, the PDG hadron rates, b- and
c-fragmentation), and tunes with :func:`bayestune.hep.tune_generator` inside ``--budget``
generator runs of ``--events`` events. One JSON line per finished closure goes to
``--results`` (a rerun skips the seeds there; ``--store-dir`` keeps each tune's store, so an
interrupted closure resumes).

``--generator synthetic`` replaces Pythia by :mod:`synthetic_bins` (the same parameters and
ranges, 300 bins whose shapes and sensitivities are made up), ``--generator standin`` (ten
parameters) by :mod:`pythia_standin` (fits of Pythia's own runs over the box, so with its
sensitivities): seconds per run instead of twenty, for choosing the method's options before
spending Pythia time.

``--blocks iwy`` tunes block by block (:class:`bayestune.hep.BlockTuning`, ``--passes``
sweeps) with the blocks of arXiv:1610.08328 (final-state shower; string fragmentation;
flavour composition; StringZ:aLund, which it held fixed, joins bLund's block), each block
with the ``--options`` method.

    BAYESTUNE_LEP_DATA=../shared/data/lep OMP_NUM_THREADS=1 python \\
        benchmarks/bench_closure_many.py --params 10 --budget 400 --seeds 1-5 \\
        --options '{"explore": {"initial_fraction": 1.0}}' \\
        --results benchmarks/results/closure_many10_pythia.jsonl --store-dir /tmp/stores

``--report`` prints the summary: pull mean and width with standard errors, the fraction of
truths inside the joint 2-sigma region of the covariance, the largest |pull|, runs and events
per closure, and the chi2 at the estimate against the truth's (both re-simulated with 5x the
events of one run) in units of its MC noise.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from closure_series import (  # noqa: E402
    append_row,
    joint_limit,
    parse_seeds,
    pull_moments,
    read_rows,
)

import bayestune as bt  # noqa: E402
from bayestune.closure import PseudoDataOptions, closure_test, default_pseudo_seed  # noqa: E402
from bayestune.hep import BlockTuning, GeneratorTuning, HistogramObjective, lep  # noqa: E402

TEN = ("TimeShower:alphaSvalue", "TimeShower:pTmin", "StringZ:aLund", "StringZ:bLund",
       "StringPT:sigma", "StringFlav:probStoUD", "StringFlav:probQQtoQ",
       "StringFlav:probSQtoQQ", "StringFlav:mesonUDvector", "StringFlav:mesonSvector")


def parameters(which: str, data: str | None) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Names and published ranges of the ten or twenty parameters."""
    names = list(TEN) if which == "10" else lep.iwy_parameters(data)
    ranges = lep.published_ranges(names, data)
    return (names, np.array([ranges[n][0] for n in names]),
            np.array([ranges[n][1] for n in names]))


def central_truth(names: list[str], low: np.ndarray, high: np.ndarray, seed: int,
                  fraction: float = 0.6) -> dict[str, float]:
    """A truth drawn uniformly (by ``seed``) inside the central ``fraction`` of the ranges."""
    u = np.random.default_rng([2027, len(names), seed]).uniform(size=len(names))
    x = low + (high - low) * (0.5 - fraction / 2 + fraction * u)
    return {n: float(round(v, 4)) for n, v in zip(names, x)}


def one_closure(sim: Any, reference: dict, names: list[str], low: np.ndarray,
                high: np.ndarray, seed: int, args: argparse.Namespace) -> dict[str, Any]:
    space = bt.Space([bt.Real(n, float(a), float(b)) for n, a, b in zip(names, low, high)])
    truth = central_truth(names, low, high, seed)
    p_seed = default_pseudo_seed(seed)
    pseudo = PseudoDataOptions(make=sim.replicate(seed=p_seed, n_events=4 * args.events)(truth),
                               seed=p_seed, measured=reference)
    data = pseudo.histograms(sim, truth, seed)
    store = None if args.store_dir is None else Path(args.store_dir) / f"seed{seed}.sqlite"
    started = time.perf_counter()
    res = closure_test(sim.replicate(seed=1_000 + seed), space, truth, seed=seed, pseudo=pseudo,
                       store=store, n_evals=args.budget, method=tuning_method(names, args))
    check = HistogramObjective(sim, data, n_params=len(names))
    at = {}
    for label, point in (("truth", truth), ("estimate", res.estimate)):
        at[label] = check.chi2(sim.replicate(seed=7_000 + seed, n_events=5 * args.events)(point))
    return {
        "seed": seed, "truth": truth, "estimate": res.estimate, "errors": res.errors,
        "pulls": res.pulls, "distance2": res.truth_distance(),
        "runs": len(res.result.history), "events": res.tune.n_events,
        "stages": [s.as_dict() for s in res.tune.stages],
        "chi2_truth": at["truth"].value, "chi2_estimate": at["estimate"].value,
        "chi2_noise": float(np.sqrt(at["truth"].variance + at["estimate"].variance)),
        "seconds": round(time.perf_counter() - started, 1),
    }


def tuning_method(names: list[str], args: argparse.Namespace) -> Any:
    """The joint method of ``--options``, or that method block by block (``--blocks``)."""
    method = GeneratorTuning.from_dict(json.loads(args.options))
    if args.blocks == "none":
        return method
    return BlockTuning(iwy_blocks(names, args.data), method=method, passes=args.passes)


def iwy_blocks(names: list[str], data: str | None) -> list[list[str]]:
    """The blocks of arXiv:1610.08328, StringZ:aLund (which it held fixed) with bLund."""
    blocks = lep.iwy_blocks([n for n in names if n != "StringZ:aLund"], data)
    if "StringZ:aLund" in names:
        next(b for b in blocks if "StringZ:bLund" in b).insert(0, "StringZ:aLund")
    return blocks


def report(path: Path) -> None:
    rows = read_rows(path)
    if not rows:
        print("no closures yet")
        return
    names = list(rows[0]["pulls"])
    P = np.array([[r["pulls"][n] for n in names] for r in rows])
    flat = P.ravel()
    n = flat.size
    limit = joint_limit(len(names))
    inside = np.mean([r["distance2"] <= limit for r in rows])
    print(f"{len(rows)} closures of {len(names)} parameters ({n} pulls): {pull_moments(P)}; "
          f"pulls within 2 sigma {np.mean(np.abs(flat) < 2):.2f}; largest |pull| "
          f"{np.abs(flat).max():.2f}")
    print(f"truths inside the joint 2-sigma region (Delta chi2 <= {limit:.2f}; 0.95 if "
          f"calibrated): {inside:.2f}")
    print(f"runs per closure: max {max(r['runs'] for r in rows)}; events per closure: max "
          f"{max(r['events'] or 0 for r in rows):,}")
    for r in rows:
        gap = r["chi2_estimate"] - r["chi2_truth"]
        print(f"  seed {r['seed']:4d} max|pull| {max(abs(v) for v in r['pulls'].values()):.2f} "
              f"Delta chi2 of the truth {r['distance2']:6.1f}  chi2 estimate - truth "
              f"{gap:+7.1f} ({gap / r['chi2_noise']:+.1f} MC sigma)  {r['seconds']:.0f} s")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--params", choices=["10", "20"], default="10")
    parser.add_argument("--generator", choices=["pythia", "synthetic", "standin"],
                        default="pythia")
    parser.add_argument("--blocks", choices=["none", "iwy"], default="none")
    parser.add_argument("--passes", type=int, default=1)
    parser.add_argument("--seeds", default="1-5")
    parser.add_argument("--budget", type=int, default=400)
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--options", default="{}",
                        help="GeneratorTuning options as JSON (a campaign's [method] table)")
    parser.add_argument("--results", type=Path, required=True)
    parser.add_argument("--store-dir", default=None)
    parser.add_argument("--data", default=None)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--report", action="store_true")
    args = parser.parse_args(argv)
    if args.report:
        report(args.results)
        return
    names, low, high = parameters(args.params, args.data)
    tuning_method(names, args)  # refuse bad options before running
    if args.store_dir:
        Path(args.store_dir).mkdir(parents=True, exist_ok=True)
    done = {row["seed"] for row in read_rows(args.results)}
    seeds = parse_seeds(args.seeds)
    if args.generator == "synthetic":
        from synthetic_bins import SyntheticBins

        sim: Any = SyntheticBins(names, low, high, n_events=args.events)
        mid = {n: float((a + b) / 2) for n, a, b in zip(names, low, high)}
        run_series(sim, sim.reference(mid), names, low, high, seeds, done, args)
    elif args.generator == "standin":
        from pythia_standin import PythiaStandin

        if args.params != "10":
            raise SystemExit("the Pythia stand-in is fitted over the ten parameters: --params 10")
        reference = lep.load_reference(lep.observables("iwy20"), args.data)
        sim = PythiaStandin(reference, args.data, n_events=args.events)
        run_series(sim, sim.reference, names, low, high, seeds, done, args)
    else:
        from bayestune.hep.pythia import PythiaSimulator

        obs = lep.observables("iwy20")
        reference = lep.load_reference(obs, args.data)
        with PythiaSimulator(obs, reference, n_events=args.events, seed=0,
                             n_workers=args.workers) as sim:
            run_series(sim, reference, names, low, high, seeds, done, args)
    report(args.results)


def run_series(sim: Any, reference: dict, names: list[str], low: np.ndarray,
               high: np.ndarray, seeds: list[int], done: set, args: argparse.Namespace) -> None:
    for seed in seeds:
        if seed in done:
            continue
        row = one_closure(sim, reference, names, low, high, seed, args)
        append_row(args.results, row)
        print(f"seed {seed}: max |pull| {max(abs(v) for v in row['pulls'].values()):.2f}, "
              f"runs {row['runs']}, {row['seconds']} s", flush=True)


if __name__ == "__main__":
    main()
