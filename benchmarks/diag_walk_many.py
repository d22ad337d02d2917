"""Replay the local rounds of a stored ten- or twenty-parameter closure and print each
round's decision: where the next round goes, why, and its region's reach per parameter.

The closure's pseudo-data are made again as ``bench_closure_many.py`` made them (Pythia:
``4 x --events`` events at the seed's truth), a copy of the store is resumed with a generator
that stops at the first run the store does not hold, and every round's fit is redone with
the code checked out here:

    BAYESTUNE_LEP_DATA=../shared/data/lep OMP_NUM_THREADS=1 python \\
        benchmarks/diag_walk_many.py STORE.sqlite --seed 1 --params 10

``--options`` are the series' method options (JSON); options that plan no run (such as
``refine.final_noise``) may differ from the series', to see what they change. Printed per
round: the walk's log (plausible candidates, the next centre and which fit placed
it) and the next region's half-reach along each parameter (the root sum of squares of its
half-axes' components) in units of the parameter's range; at the end the final fit's
outcome, its pulls and the truth's Delta chi2 under its covariance. ``--replicas 0,40,400``
redoes the final fit's covariance with those numbers of replicas (0: the Hessian's part
alone) and prints the same for each: whether the replicas are enough in the dimension.
"""

from __future__ import annotations

import argparse
import json
import logging
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_closure_many import central_truth, parameters  # noqa: E402
from walk_trace import minimum_from_centre, trace_rounds  # noqa: E402

import bayestune as bt  # noqa: E402
from bayestune.closure import PseudoDataOptions, closure_test, default_pseudo_seed  # noqa: E402
from bayestune.hep import GeneratorTuning, lep  # noqa: E402
from bayestune.hep.tuning import refine  # noqa: E402


class StopAtNewRun:
    """A generator that ends the replay at the first run the store does not hold."""

    def __init__(self, n_events: int) -> None:
        self.n_events = n_events

    def __call__(self, params: dict[str, Any]) -> Any:
        raise KeyboardInterrupt("the store holds no more runs")

    def replicate(self, **_: Any) -> StopAtNewRun:
        return self


def print_round(stages: Any, walk: Any, r: int) -> None:
    """The next region's reach, the round's fit (its minimum's chi2, and for a debiased fit
    the minimum's leverage as a fraction of its design's largest), and for a wall step how
    far beyond it the minimum lies."""
    reach = np.sqrt(np.sum(walk.axes**2, axis=1)) / (stages.hi - stages.lo)
    model, unc = walk.model, walk.unc
    fit = f"fit chi2 {unc.fun:.1f} of {model.n_points} runs"
    if model.debiased:
        minimum = np.array([unc.x[d.name] for d in stages.dims])
        wall = model.leverage(minimum) / model.max_leverage
        fit += f", minimum at {wall:.4f} of the leverage wall"
    print(f"round {r}: {fit}; next region's half-reach / range "
          f"{np.round(reach, 4).tolist()}", flush=True)
    if model.debiased:
        print_plain_minimum(model, minimum, r)
    if walk.log[-1].endswith("step to its leverage wall)"):
        print_wall_step(stages, walk, r)


def print_plain_minimum(model: Any, minimum: np.ndarray, r: int) -> None:
    """Where the debiased fit's minimum would be without its noise subtraction, which is
    largest where the fit's variance is (its leverage, its distance in units of the fitted
    box, and the debiased chi2 there)."""
    plain = model.minimum(minimum, noise=0.0)
    lo, hi = model.box
    moved = np.linalg.norm((plain - minimum) / (hi - lo))
    coef = {n: fit.coef for n, fit in model._fits.items()}
    print(f"round {r}: without the noise subtraction the minimum lies at "
          f"{model.leverage(plain) / model.max_leverage:.4f} of the leverage wall, "
          f"{moved:.3f} of the fitted box from the debiased one; debiased chi2 there "
          f"{model._chi2_of(coef, plain):.1f}", flush=True)


def print_wall_step(stages: Any, walk: Any, r: int) -> None:
    """How far beyond the wall step the debiased fit's minimum lies: the fit's chi2 at the
    step (the next centre) and at the minimum, the gain with its standard deviation from the
    fits' errors, and the step's remaining distance to the minimum as Delta chi2 under the
    fit's covariance (with the parameters it moves most)."""
    model, unc = walk.model, walk.unc
    minimum, cov, beyond = minimum_from_centre(stages, walk)
    at_step, sd_step = model.chi2(walk.centre)
    gain = at_step - unc.fun
    pulls = (minimum - walk.centre) / np.sqrt(np.maximum(np.diag(cov), 1e-300))
    top = np.argsort(-np.abs(pulls))[:3]
    moved = ", ".join(f"{stages.dims[i].name} {pulls[i]:+.2f} sigma" for i in top)
    print(f"round {r}: wall step: fit chi2 at the step {at_step:.1f} (sd {sd_step:.1f}), at "
          f"the minimum {unc.fun:.1f}: gain {gain:.1f}; minimum beyond the step by Delta "
          f"chi2 {beyond:.1f} ({moved})", flush=True)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("store", type=Path)
    parser.add_argument("--seed", type=int, required=True)
    parser.add_argument("--params", choices=["10", "20"], default="10")
    parser.add_argument("--budget", type=int, default=400)
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--options", default='{"explore": {"initial_fraction": 1.0}}')
    parser.add_argument("--data", default=None)
    parser.add_argument("--replicas", default="",
                        help="comma-separated numbers of replicas to redo the final "
                             "covariance with (default: none)")
    args = parser.parse_args(argv)
    from bayestune.hep.pythia import PythiaSimulator

    logging.basicConfig(level=logging.WARNING)
    trace_rounds(print_round)
    names, low, high = parameters(args.params, args.data)
    space = bt.Space([bt.Real(n, float(a), float(b)) for n, a, b in zip(names, low, high)])
    truth = central_truth(names, low, high, args.seed)
    counts = [int(c) for c in args.replicas.split(",") if c.strip()]
    trace_final(np.array([truth[n] for n in names]), counts)
    print("truth", {n: truth[n] for n in names})
    obs = lep.observables("iwy20")
    reference = lep.load_reference(obs, args.data)
    with tempfile.TemporaryDirectory() as tmp:
        copy = Path(tmp) / "replay.sqlite"
        shutil.copy(args.store, copy)
        with PythiaSimulator(obs, reference, n_events=args.events, seed=0) as sim:
            p_seed = default_pseudo_seed(args.seed)
            made = sim.replicate(seed=p_seed, n_events=4 * args.events)(truth)
        pseudo = PseudoDataOptions(make=made, seed=p_seed, measured=reference)
        try:
            closure_test(StopAtNewRun(args.events), space, truth, seed=args.seed,
                         pseudo=pseudo, store=copy, n_evals=args.budget,
                         method=GeneratorTuning.from_dict(json.loads(args.options)))
        except KeyboardInterrupt as stop:  # the closure's check runs at the truth and estimate
            print(f"replay ended: {stop}")


def trace_final(truth: np.ndarray, counts: list[int]) -> None:
    """Make the final fit print its outcome, the estimate's pulls and the truth's Delta chi2
    under its covariance, and the same with the covariance redone with each of ``counts``
    replicas."""
    final = refine.LocalStages._final

    def traced(self: Any, walk: Any) -> Any:
        model, unc, why = final(self, walk)
        print(f"final fit: {self.records[-1].outcome}")
        print_closeness("final fit", unc, self.dims, truth)
        x = np.array([unc.x[d.name] for d in self.dims])
        for n in counts:
            redone = model.uncertainty(start=x, n_replicas=n, mc_part=self.refine.mc_part,
                                       replica_bounds=self.refine.replica_bounds,
                                       noise=self.refine.final_noise)
            print_closeness(f"{n} replicas", redone, self.dims, truth)
        return model, unc, why

    refine.LocalStages._final = traced  # type: ignore[method-assign]


def print_closeness(label: str, unc: Any, dims: Any, truth: np.ndarray) -> None:
    """The estimate's pulls, their width and the truth's Delta chi2 under ``unc``'s
    covariance."""
    x = np.array([unc.x[d.name] for d in dims])
    cov = np.asarray(unc.covariance, dtype=float)
    pulls = (x - truth) / np.sqrt(np.diag(cov))
    distance = float((x - truth) @ np.linalg.solve(cov, x - truth))
    print(f"{label}: pulls {np.round(pulls, 2).tolist()} (rms {np.sqrt(np.mean(pulls**2)):.2f}); "
          f"Delta chi2 of the truth {distance:.2f}", flush=True)


if __name__ == "__main__":
    main()
