"""Closure test of a Pythia 8 tune, in the style of arXiv:1610.08328.

Pseudo-data are generated with Pythia 8 at the Monash 2013 values of four parameters
(TimeShower:alphaSvalue, StringZ:aLund, StringZ:bLund, StringPT:sigma), with their own seed and
statistics and binned like the ALEPH 1996 / PDG reference data (with ``--pseudo-errors data``
also smeared by, and given, the measured errors: a level-1 closure). bayestune then tunes the
four parameters over the published ranges against the pseudo-data, estimates their
uncertainties (Hessian, Delta chi2 = 1) and prints the pulls (tuned - truth) / sigma.

The default budget runs in a few minutes on two cores (GP surrogate estimate); ``--full`` runs
the acceptance configuration: the generator-tuning method
(:class:`bayestune.hep.GeneratorTuning`) inside a hard budget of 80 Pythia runs of 20k events
against level-1 pseudo-data -- 32 runs of the composite engine over the whole box, then six
local rounds of 8 fitted bin by bin (one of them may probe a flat valley), the estimate and
errors from the final debiased fit of the bins -- about 15 minutes on two cores.
``--repeats N`` repeats the closure with N seeds and prints the pull mean, width and coverage; the
series passes when the pull mean and width agree with 0 and 1 within two standard errors
(``ClosureSummary.consistent``), since single closures miss at the rate their coverage allows.

    python examples/pythia_closure.py                 # quick
    python examples/pythia_closure.py --full          # 20k events, 80 runs
    python examples/pythia_closure.py --full --repeats 5 --plot pulls.png
    python examples/pythia_closure.py --full --pseudo-errors mc   # MC-only pseudo-data
"""

from __future__ import annotations

import argparse
import logging
import time

import bayestune as bt
from bayestune.closure import (
    closure_test,
    default_pseudo_seed,
    level1_pseudo_data,
    repeated_closure,
)
from bayestune.hep import lep
from bayestune.hep.pythia import PythiaSimulator

TRUTH = {  # Monash 2013 (= Pythia 8.317 defaults)
    "TimeShower:alphaSvalue": 0.1365,
    "StringZ:aLund": 0.68,
    "StringZ:bLund": 0.98,
    "StringPT:sigma": 0.335,
}

SPACE = bt.Space([  # ranges of arXiv:1610.08328 / arXiv:2505.11675 (monash2013_parameters.csv)
    bt.Real("TimeShower:alphaSvalue", 0.06, 0.25),
    bt.Real("StringZ:aLund", 0.0, 2.0),
    bt.Real("StringZ:bLund", 0.2, 2.0),
    bt.Real("StringPT:sigma", 0.0, 1.0),
])



def full_pseudo_data(sim: PythiaSimulator, reference: dict, seed: int,
                     n_events: int = 80_000) -> dict:
    """The level-1 pseudo-data of the ``--full`` closure with ``seed``, made again exactly as
    :func:`~bayestune.closure.closure_test` made them (for benchmarks that refit a stored
    closure or compare points against its pseudo-data)."""
    p_seed = default_pseudo_seed(seed)
    return level1_pseudo_data(sim.replicate(seed=p_seed, n_events=n_events)(TRUTH), reference,
                              p_seed)

def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", default=None,
                        help=f"LEP data folder (default: ${lep.DATA_ENV} or ../shared/data/lep)")
    parser.add_argument("--events", type=int, default=5_000, help="events per tuning point")
    parser.add_argument("--pseudo-events", type=int, default=None,
                        help="events of the pseudo-data (default: 4x --events)")
    parser.add_argument("--evals", type=int, default=40, help="tuning evaluations")
    parser.add_argument("--workers", type=int, default=2, help="Pythia processes")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=1, help="closure tests with new seeds")
    parser.add_argument("--observables", default="core",
                        help="observable set: core, shapes or extended (default: core)")
    parser.add_argument("--full", action="store_true",
                        help="acceptance configuration: 20k events per point, 80 runs, "
                             "level-1 pseudo-data, the generator-tuning method")
    parser.add_argument("--store", default=None,
                        help="campaign store (SQLite) of the tune, with --repeats a directory "
                             "of one store per seed; rerun to resume")
    parser.add_argument("--warping", default="chi2", choices=["none", "log", "chi2"],
                        help="GP output warping (default chi2: ln of the chi2)")
    parser.add_argument("--trend", default="none", choices=["none", "quadratic"],
                        help="quadratic trend in the GP (default none)")
    parser.add_argument("--estimator", default=None,
                        choices=["surrogate", "quadratic", "binwise", "composite"],
                        help="estimate and errors from the GP surrogate of the chi2 (default; "
                             "binwise with --full), from a local design fitted bin by bin "
                             "(binwise: refine_binwise), from a quadratic through the chi2 "
                             "values, or run the composite bin-emulator engine (composite, "
                             "experimental)")
    parser.add_argument("--optimiser", default=None, choices=["gp", "composite"],
                        help="engine of the tune (default: composite for --estimator "
                             "composite or binwise, else gp)")
    parser.add_argument("--refine-rounds", type=int, default=None,
                        help="rounds at the end of the budget, part of --evals: refine() "
                             "(2 k + 1 evaluations each; default 0) or, for --estimator "
                             "binwise, local rounds of 8 (default: the generator-tuning "
                             "method's own split of the budget)")
    parser.add_argument("--pseudo-errors", default=None, choices=["mc", "data"],
                        help="errors of the pseudo-data: their own MC statistics (mc, default) "
                             "or the real measurement's, with the values smeared by them "
                             "(data: a level-1 closure; default with --full)")
    parser.add_argument("--plot", default=None, help="write a pull plot to this file")
    parser.add_argument("--quiet", action="store_true")
    parser.add_argument("--verbose", action="store_true",
                        help="log the local fits of the binwise estimator (minima, errors, lack "
                             "of fit)")
    args = parser.parse_args(argv)
    if args.full:
        args.events, args.evals = 20_000, 80
        args.estimator = args.estimator or "binwise"
        args.pseudo_errors = args.pseudo_errors or "data"
    args.estimator = args.estimator or "surrogate"
    args.pseudo_errors = args.pseudo_errors or "mc"
    if args.optimiser is None:
        args.optimiser = "composite" if args.estimator in ("binwise", "composite") else "gp"
    if args.refine_rounds is None and args.estimator != "binwise":
        args.refine_rounds = 0
    if args.pseudo_events is None:
        args.pseudo_events = 4 * args.events
    return args


def method_of(args: argparse.Namespace) -> object:
    """The tuning strategy the options name: ``--estimator binwise`` is the generator-tuning
    method (with ``--refine-rounds``, that many local rounds of its budget)."""
    from bayestune.hep import ExploreStage, GeneratorTuning
    from bayestune.strategies import as_strategy

    if args.estimator == "binwise" and args.refine_rounds is None:
        return GeneratorTuning(explore=ExploreStage(engine=args.optimiser))
    return as_strategy(args.estimator, args.optimiser, args.refine_rounds, n_evals=args.evals,
                       k=len(SPACE))


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.verbose:
        logging.basicConfig(format="  %(name)s: %(message)s")
        logging.getLogger("bayestune.hep").setLevel(logging.INFO)
    obs = lep.observables(args.observables)
    reference = lep.load_reference(obs, args.data)  # the binning (and --pseudo-errors data)
    start = time.perf_counter()

    def progress(trial: bt.Trial) -> None:
        if not args.quiet and trial.value is not None:
            print(f"  [{time.perf_counter() - start:6.0f} s] trial {trial.number:3d}: "
                  f"chi2 = {trial.value:10.1f}", flush=True)

    with PythiaSimulator(obs, reference, n_events=args.events, seed=args.seed,
                         n_workers=args.workers) as sim:
        def pseudo_data(truth: dict, seed: int) -> dict:
            return sim.replicate(seed=seed, n_events=args.pseudo_events)(truth)

        options = {
            "n_evals": args.evals,
            "pseudo_data": pseudo_data,
            "callback": progress,
            "store": args.store,
            "method": method_of(args),
            "measured": reference if args.pseudo_errors == "data" else None,
            "tuner_options": {"surrogate": bt.SurrogateConfig(
                warping=None if args.warping == "none" else args.warping,
                trend=None if args.trend == "none" else args.trend)},
        }
        print(f"Closure test: {len(obs)} observables "
              f"({sum(reference[o.id].n_bins for o in obs)} bins), {args.events} events per "
              f"point, pseudo-data {args.pseudo_events} events"
              f"{' with the measured errors' if args.pseudo_errors == 'data' else ''}, "
              f"a budget of {args.evals} runs, estimator {args.estimator}")
        if args.repeats == 1:
            res = closure_test(sim, SPACE, TRUTH, seed=args.seed, **options)
            print(res.table())
            if res.tune is not None:
                print(res.tune.stage_log())
            results = [res]
            ok = res.passed
        else:
            store_dir = options.pop("store")
            summary = repeated_closure(sim, SPACE, TRUTH,
                                       seeds=list(range(args.seed, args.seed + args.repeats)),
                                       on_result=lambda r: print(r.table(), flush=True),
                                       store_dir=store_dir, **options)
            print(summary.table())
            results = summary.results
            # a series passes when its pulls are calibrated: single closures may miss
            # at the rate their 2 sigma coverage allows
            ok = summary.consistent(2.0)
            print(f"pull mean and width consistent with 0 and 1 within 2 standard errors: {ok}; "
                  f"closures passed one by one: {sum(r.passed for r in results)} of "
                  f"{len(results)}")
    print(f"total time {time.perf_counter() - start:.0f} s")
    if args.plot:
        from bayestune.plots import plot_pulls

        fig = plot_pulls(results)
        fig.savefig(args.plot, dpi=120)
        print(f"pull plot written to {args.plot}")
    print("CLOSURE PASSED" if ok else "CLOSURE FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
