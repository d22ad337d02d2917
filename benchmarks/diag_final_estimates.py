"""Compare ways of taking the estimate from the final fit of stored four-parameter closures
of ``bench_closure_random.py`` (replays: no new runs).

Each closure's store is resumed with the checkout on ``PYTHONPATH`` (which must plan the same
runs as the series' commit); at its final fit the script prints, for each way, the estimate's
pulls against the truth and its Delta chi2 under the way's covariance:

- ``final``: the method's estimate (the minimum of the debiased chi2 of the rounds'
  evaluations in ``final_scale`` times the last region) with its covariance;
- ``last``: the last round's own debiased fit (its region only) with its covariance;
- ``bootstrap``: the final minimum less the bias its replicas show (``2 x - mean of the
  replicas' minima``), with the final covariance;
- ``upper``: the minimum of the debiased chi2 plus its standard deviation from the fits'
  noise (a point that does not win on noise), with the final covariance;
- ``plain`` and ``half``: the minimum of the chi2 with none or half of the fits' noise
  subtracted, with the final covariance.

    PYTHONPATH=<checkout of the series' commit> BAYESTUNE_LEP_DATA=../shared/data/lep \\
        OMP_NUM_THREADS=1 python benchmarks/diag_final_estimates.py --seeds 455-475 \\
        --results benchmarks/results/closure_random_pythia_replicas_seeds455-477.jsonl \\
        --store-dir STORES
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
from scipy.optimize import minimize

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_closure_random import resume_copy  # noqa: E402
from closure_series import parse_seeds  # noqa: E402

from bayestune.hep import GeneratorTuning, lep  # noqa: E402
from bayestune.hep.tuning import refine  # noqa: E402

WAYS = ("final", "last", "bootstrap", "upper", "plain", "half")
_found: dict[str, tuple[np.ndarray, np.ndarray]] = {}


def _vector(unc: Any, names: list[str]) -> np.ndarray:
    return np.array([unc.x[n] for n in names])


def _upper_minimum(model: Any, start: np.ndarray) -> np.ndarray:
    """The minimum of the debiased chi2 plus its standard deviation inside the fitted box
    (walled beyond the design's largest leverage, as the chi2 the method minimises)."""
    lo, hi = model.box
    coef = {n: fit.coef for n, fit in model._fits.items()}

    def upper(x: np.ndarray) -> float:
        return model._chi2_of(coef, x) + float(model.chi2_many(x[None, :])[1][0])

    best = minimize(upper, np.clip(start, lo, hi), method="Powell",
                    bounds=list(zip(lo, hi)), options={"xtol": 1e-6, "ftol": 1e-9})
    return np.asarray(best.x)


def _traced_final(plain: Any) -> Any:
    def final(self: Any, walk: Any) -> Any:
        model, unc, why = plain(self, walk)
        names = [d.name for d in self.dims]
        x = _vector(unc, names)
        cov = np.asarray(unc.covariance, dtype=float)
        _found["final"] = (x, cov)
        if walk.model is not None and walk.model.debiased:
            _found["last"] = (_vector(walk.unc, names), np.asarray(walk.unc.covariance))
        lo, hi = model.box
        minima, _ = model._replica_minima(x, list(zip(lo, hi)), 1.0,
                                          np.random.default_rng(0), 40)
        _found["bootstrap"] = (np.clip(2 * x - np.mean(minima, axis=0), self.lo, self.hi), cov)
        _found["upper"] = (_upper_minimum(model, x), cov)
        coef = {n: fit.coef for n, fit in model._fits.items()}
        for way, noise in (("plain", 0.0), ("half", 0.5)):
            _found[way] = (model._polished(coef, x, list(zip(lo, hi)), noise), cov)
        _found["why"] = why  # type: ignore[assignment]
        return model, unc, why
    return final


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", required=True)
    parser.add_argument("--results", type=Path, required=True)
    parser.add_argument("--store-dir", type=Path, required=True)
    parser.add_argument("--data", default=None)
    args = parser.parse_args(argv)
    refine.LocalStages._final = _traced_final(refine.LocalStages._final)
    rows = {r["seed"]: r for r in map(json.loads, args.results.read_text().splitlines())}
    obs = lep.observables("core")
    reference = lep.load_reference(obs, args.data)
    pulls: dict[str, list[np.ndarray]] = {w: [] for w in WAYS}
    inside: dict[str, list[bool]] = {w: [] for w in WAYS}
    for seed in parse_seeds(args.seeds):
        if seed not in rows:
            continue
        row = rows[seed]
        _found.clear()
        try:
            resume_copy(obs, reference, row, args.store_dir / f"seed{seed}.sqlite",
                        method=GeneratorTuning())
        except SystemExit as stop:  # another machine's round-off changed the tune
            print(f"seed {seed}: not replayed: {stop}", flush=True)
            continue
        truth = np.array(list(row["truth"].values()))
        print(f"seed {seed} ({'settled' if _found.get('why') is None else 'not settled'}):")
        for way in WAYS:
            if way not in _found:
                continue
            x, cov = _found[way]
            d = x - truth
            pull = d / np.sqrt(np.diag(cov))
            dchi2 = float(d @ np.linalg.pinv(cov) @ d)
            pulls[way].append(pull)
            inside[way].append(dchi2 <= 9.72)
            print(f"  {way:9s} pulls {np.round(pull, 2).tolist()}  Delta chi2 {dchi2:6.2f}",
                  flush=True)
    print("\nover the closures:")
    for way in WAYS:
        p = np.concatenate(pulls[way]) if pulls[way] else np.zeros(0)
        if p.size:
            print(f"  {way:9s} {len(pulls[way])} closures: pull mean {p.mean():+.2f}, width "
                  f"{p.std(ddof=1):.2f}, truths inside {np.mean(inside[way]):.2f}")


if __name__ == "__main__":
    main()
