"""The ``bayestune`` command line: run, resume, status, report and closure.

Exit codes: 0 success; 1 the campaign failed (for example every evaluation fails);
2 bad usage or a bad campaign file; 130 interrupted by Ctrl-C (everything finished is saved,
rerun the same command to resume). Errors are one line on stderr: ``bayestune: error: ...``.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .exceptions import BayestuneError
from .objective import Outcome, evaluate

__all__ = ["main"]

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


class _UsageError(BayestuneError):
    """Bad arguments or a bad campaign file: exit code 2."""


# ----------------------------------------------------------------------- progress
class Progress:
    """A tqdm progress bar over finished trials (nothing at all in quiet mode)."""

    def __init__(self, total: int, initial: int, quiet: bool, label: str) -> None:
        self.bar = None
        if not quiet:
            from tqdm import tqdm

            self.bar = tqdm(total=total, initial=min(initial, total), desc=label,
                            unit="eval", file=sys.stderr, dynamic_ncols=True)
        self.best = float("inf")
        self.failed = 0

    def __call__(self, trial: Any) -> None:
        if trial.value is not None:
            self.best = min(self.best, trial.value)
        else:
            self.failed += 1
        if self.bar is not None:
            self.bar.set_postfix(best=f"{self.best:.5g}", failed=self.failed, refresh=False)
            self.bar.update(1)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


# ----------------------------------------------------------------------- helpers
def _load(path: str, store: str | None = None) -> Any:
    from .campaign import CampaignFileError, load_campaign

    try:
        return load_campaign(path, store=store)
    except CampaignFileError as exc:
        raise _UsageError(str(exc)) from None


def _campaign_from_store(store: str) -> Any:
    """The campaign recorded in a store by ``bayestune run`` (None if there is none).

    Only parsed: nothing it names is imported here (see :func:`_trusted_for_resume`)."""
    from .campaign import parse_campaign
    from .store import CampaignStore

    with CampaignStore.open(store) as st:
        meta = st.metadata
    if "campaign" not in meta:
        return None
    return parse_campaign(meta["campaign"], meta.get("campaign_file", "campaign.toml"),
                          store=store)


def _stored_objective(store: str | Path) -> dict[str, Any] | None:
    """The ``[objective]`` table of the campaign a store was started with, if any."""
    import tomllib

    from .store import CampaignStore

    if not Path(store).is_file():
        return None
    with CampaignStore.open(store) as st:
        text = st.metadata.get("campaign")
    if text is None:
        return None
    return dict(tomllib.loads(text).get("objective", {}))


def _check_same_objective(campaign: Any) -> None:
    """Refuse to continue a store with another objective than the one it was started with:
    its best value would compare two different functions."""
    stored = _stored_objective(campaign.store)
    if stored is None or stored == campaign.objective_spec:
        return
    keys = sorted(k for k in set(stored) | set(campaign.objective_spec)
                  if stored.get(k) != campaign.objective_spec.get(k))
    raise _UsageError(
        f"{campaign.path.name}: [objective] differs from the one store {str(campaign.store)!r} "
        f"was started with (keys {', '.join(keys)}); a campaign compares one objective: use "
        "a new store (--store NEW.sqlite) or restore the campaign file")


def _trusted_for_resume(campaign: Any, store: str) -> None:
    """A store is data that people send each other: resuming one must not import or run
    code that it names. Objectives that import Python code need the campaign file on the
    command line (the user's own, trusted copy)."""
    for key in ("function", "simulate"):
        if key in campaign.objective_spec:
            raise _UsageError(
                f"the campaign recorded in {store} imports Python code ([objective] {key} = "
                f"{campaign.objective_spec[key]!r}); resuming a store never runs code that "
                f"the store names. Resume with the campaign file you trust: 'bayestune "
                f"resume {store} --campaign FILE' or 'bayestune run FILE --store {store}'")
    recorded = campaign.path
    if recorded.is_file():
        try:
            current = recorded.read_text()
        except OSError:
            return
        if current != campaign.text:
            raise _UsageError(
                f"{recorded} was edited since {store} was started; say which to use: "
                f"'bayestune resume {store} --campaign {recorded}' (the edited file; its "
                "[objective] must be unchanged) or restore the file")


def _tuner(campaign: Any, objective: Any = None, n_evals: int | None = None) -> Any:
    from .tuner import Tuner

    metadata: dict[str, Any] = {"campaign": campaign.text, "campaign_file": str(campaign.path)}
    if campaign.method is not None:  # the store a generator tune will recognise as its own
        metadata["generator_tuning"] = {"method": campaign.method.to_dict(),
                                        "n_evals": n_evals or campaign.n_evals}
    return Tuner(campaign.space, objective, store=campaign.store, seed=campaign.seed,
                 surrogate=campaign.surrogate, metadata=metadata, **campaign.tuner_options)


def _run_campaign(campaign: Any, args: argparse.Namespace) -> int:
    n_evals = args.evals if args.evals is not None else campaign.n_evals
    options = dict(campaign.execution_options)
    if args.workers is not None:
        options["n_workers"] = args.workers
    _check_same_objective(campaign)
    objective = campaign.build_objective()
    start = time.perf_counter()
    if campaign.method is not None:  # the method opens (and records itself in) the store
        return _run_generator_tune(campaign, objective, n_evals, args, start)
    with _tuner(campaign, objective) as tuner:
        if args.fail_pending:
            for trial in tuner.history.pending:
                tuner.tell(trial, Outcome.failed(
                    "abandoned: in flight when an earlier run stopped, and recorded as failed "
                    "by --fail-pending instead of being evaluated again"))
        history = tuner.history
        if not args.quiet and len(history):
            print(f"resuming {campaign.store}: {history.n_finished} finished, "
                  f"{len(history.pending)} in flight", file=sys.stderr)
        for point in campaign.start:
            if not any(t.params == point for t in tuner.history):
                tuner.add(point, evaluate(objective, point))
        progress = Progress(n_evals, tuner.history.n_finished, args.quiet, campaign.name)
        try:
            result = tuner.run(n_evals, callback=progress, **options)
        finally:
            progress.close()
    seconds = time.perf_counter() - start
    print(result)
    print(f"store: {campaign.store}  ({seconds:.0f} s)")
    return EXIT_OK if result.success else EXIT_FAILED


def _generator_tune(campaign: Any, objective: Any, n_evals: int, callback: Any = None) -> Any:
    """The campaign's generator tune (resumed from its store: finished runs are reused)."""
    from .hep.tuning import tune_generator

    return tune_generator(
        objective, campaign.space, n_evals, method=campaign.method, seed=campaign.seed or 0,
        store=campaign.store, callback=callback,
        tuner_options={**_surrogate_option(campaign), **campaign.tuner_options,
                       "metadata": {"campaign": campaign.text,
                                    "campaign_file": str(campaign.path)}})


def _surrogate_option(campaign: Any) -> dict[str, Any]:
    """The campaign's ``[surrogate]`` table, if it has one (else the method's default)."""
    return {} if campaign.surrogate is None else {"surrogate": campaign.surrogate}


def _run_generator_tune(campaign: Any, objective: Any, n_evals: int,
                        args: argparse.Namespace, start: float) -> int:
    from .store import CampaignStore

    done = 0
    if Path(campaign.store).exists():
        with CampaignStore.open(campaign.store) as store:
            if args.fail_pending:
                for trial in store.history().pending:
                    store.finish(trial.number, Outcome.failed(
                        "abandoned: in flight when an earlier run stopped, and recorded as "
                        "failed by --fail-pending instead of being evaluated again"))
            done = store.history().n_finished
        if not args.quiet and done:
            print(f"resuming {campaign.store}: {done} finished", file=sys.stderr)
    progress = Progress(n_evals, done, args.quiet, campaign.name)
    try:
        tune = _generator_tune(campaign, objective, n_evals, progress)
    finally:
        progress.close()
    print(tune.uncertainty)
    print(tune.stage_log())
    if not tune.settled:
        print(f"warning: the final fit has not settled: {tune.unsettled_reason}")
    print(f"store: {campaign.store}  ({time.perf_counter() - start:.0f} s)")
    return EXIT_OK


# ----------------------------------------------------------------------- commands
def cmd_run(args: argparse.Namespace) -> int:
    return _run_campaign(_load(args.campaign, args.store), args)


def cmd_resume(args: argparse.Namespace) -> int:
    if args.campaign is not None:  # the user's own file: its code is theirs to trust
        return _run_campaign(_load(args.campaign, args.store), args)
    campaign = _campaign_from_store(args.store)
    if campaign is None:
        raise _UsageError(f"{args.store} was not started by 'bayestune run' (no campaign "
                          "file recorded); resume it from Python with Tuner(..., store=...)")
    _trusted_for_resume(campaign, args.store)
    return _run_campaign(campaign, args)


def cmd_import(args: argparse.Namespace) -> int:
    from .hep.professor import checked_scan, import_runs

    campaign = _load(args.campaign, args.store)
    if campaign.objective_type == "python":
        raise _UsageError(f"{args.campaign}: importing runs needs a histograms, command or "
                          "pythia objective (the runs' histograms are compared with its "
                          "reference)")
    _check_same_objective(campaign)
    objective = campaign.build_objective()
    checked_scan(args.runs, campaign.space, args.drop or ())  # before the store is opened
    with _tuner(campaign) as tuner:
        summary = import_runs(tuner, objective, args.runs, outputs=args.outputs,
                              drop=args.drop or ())
        n = tuner.history.n_finished
    print(f"{summary}; {campaign.store} now holds {n} finished trials")
    for name in summary.failed:
        print(f"  failed: {name}", file=sys.stderr)
    return EXIT_OK


def cmd_status(args: argparse.Namespace) -> int:
    from .store import CampaignStore

    with CampaignStore.open(args.store) as store:
        history, space, meta = store.history(), store.space, store.metadata
        seed = store.seed
    done, failed, pending = history.completed, history.failed, history.pending
    print(f"store:   {args.store}")
    if "campaign_file" in meta:
        print(f"file:    {meta['campaign_file']}")
    print(f"space:   {len(space)} parameters ({', '.join(space.names)}); seed {seed}")
    print(f"trials:  {len(history)} ({len(done)} complete, {len(failed)} failed, "
          f"{len(pending)} pending)")
    best = history.best()
    if best is not None:
        print(f"best:    trial {best.number}, value {best.value:.6g}")
        for name in space.names:
            print(f"           {name} = {_fmt(best.params[name])}")
    rows = list(history) if args.all else list(history)[-args.last:]
    if rows:
        print()
        names = space.names
        header = f"{'#':>4} {'status':8} {'value':>11} {'seconds':>8}  " + "  ".join(
            f"{n[-14:]:>14}" for n in names)
        print(header)
        for t in rows:
            value = "" if t.value is None else f"{t.value:.5g}"
            params = "  ".join(f"{_fmt(t.params.get(n))[:14]:>14}" for n in names)
            print(f"{t.number:>4} {t.status.value:8} {value:>11} {t.duration:8.1f}  {params}")
            if t.error:
                print(f"{'':>4} {t.error.strip().splitlines()[0][:100]}")
        if not args.all and len(history) > len(rows):
            print(f"({len(history) - len(rows)} earlier trials not shown; --all shows them)")
    return EXIT_OK


def _fmt(value: Any) -> str:
    return f"{value:.6g}" if isinstance(value, float) else str(value)


def cmd_report(args: argparse.Namespace) -> int:
    import matplotlib

    matplotlib.use("Agg")
    from .report import write_report
    from .store import CampaignStore
    from .tuner import Tuner

    campaign = (_load(args.campaign, args.store) if args.campaign
                else _campaign_from_store(args.store))
    if campaign is not None:
        tuner = _tuner(campaign)
        title, uncertainty = campaign.name, campaign.uncertainty
    else:
        with CampaignStore.open(args.store) as st:
            space = st.space
        tuner = Tuner(space, store=args.store)
        title, uncertainty = Path(args.store).stem, False
    if args.uncertainty is not None:
        uncertainty = args.uncertainty
    with tuner:
        result = tuner.result()
    tune = _finished_generator_tune(campaign, result) if campaign is not None else None
    reference = None
    if campaign is not None and campaign.objective_type != "python":
        try:
            reference = campaign.reference()
        except Exception as exc:  # noqa: BLE001 - the report goes on without ratio plots
            print(f"bayestune: data/MC ratios skipped: {exc}", file=sys.stderr)
    out = Path(args.out) if args.out else Path(args.store).with_suffix("").with_name(
        Path(args.store).stem + "_report")
    report = write_report(result, out, title=title, uncertainty=uncertainty,
                          reference=reference, store_path=args.store, tune=tune,
                          style=args.style)
    if not args.quiet:
        for key, path in report.images.items():
            print(f"  {key:12s} {path}")
        for key, why in report.skipped.items():
            print(f"  {key:12s} not drawn: {why}")
    print(f"report: {report.html}")
    return EXIT_OK


def _finished_generator_tune(campaign: Any, result: Any) -> Any:
    """The generator tune of a finished campaign, refitted from its store (None for other
    methods; an unfinished tune is not resumed by a report: it says so)."""
    if campaign.method is None:
        return None
    history = result.history
    planned = (campaign.store and _stored_budget(campaign.store)) or campaign.n_evals
    if len(history) < planned or history.pending:
        print(f"bayestune: the generator tune is unfinished ({history.n_finished} of "
              f"{planned} runs): resume it to get its estimate", file=sys.stderr)
        return None
    return _generator_tune(campaign, campaign.build_objective(), planned)


def _stored_budget(store: str | Path) -> int | None:
    from .store import CampaignStore

    with CampaignStore.open(store) as st:
        identity = st.metadata.get("generator_tuning") or {}
    return identity.get("n_evals")


def cmd_closure(args: argparse.Namespace) -> int:
    import matplotlib

    matplotlib.use("Agg")
    from .closure import closure_test, repeated_closure
    from .strategies import SurrogateTuning

    campaign = _load(args.campaign)
    if campaign.objective_type == "python":
        raise _UsageError(f"{args.campaign}: a closure test needs a histogram or pythia "
                          "objective (it makes pseudo-data from the simulation)")
    truth = campaign.closure_truth() if "truth" in campaign.closure else None
    if truth is None:
        raise _UsageError(f"{args.campaign}: [closure] truth is required for 'closure'")
    objective = campaign.build_objective()
    simulate = objective.simulate
    n_evals = args.evals if args.evals is not None else campaign.n_evals
    options: dict[str, Any] = {
        "n_evals": n_evals, "weights": objective.weights,
        "model_uncertainty": objective.model_uncertainty,
        "tuner_options": {**_surrogate_option(campaign), **campaign.tuner_options},
        "method": campaign.method if campaign.method is not None else SurrogateTuning(
            refine_rounds=campaign.closure.get("refine_rounds", 0)),
        "measured": objective.reference
        if campaign.closure.get("pseudo_errors", "mc") == "data" else None,
    }
    pseudo_events = campaign.closure.get("pseudo_events")
    if pseudo_events and hasattr(simulate, "replicate"):
        def pseudo_data(point: dict[str, Any], seed: int) -> Any:
            return simulate.replicate(seed=seed, n_events=pseudo_events)(point)

        options["pseudo_data"] = pseudo_data
    repeats = args.repeats if args.repeats is not None else campaign.closure.get("n_repeats", 1)
    seed = campaign.seed or 1
    if repeats == 1:
        results = [closure_test(simulate, campaign.space, truth, seed=seed,
                                pseudo_seed=campaign.closure.get("pseudo_seed"), **options)]
    else:
        summary = repeated_closure(simulate, campaign.space, truth,
                                   [seed + k for k in range(repeats)], **options)
        results = list(summary.results)
    for r in results:
        print(r.table())
        if r.tune is not None:
            print(r.tune.stage_log())
    if repeats > 1:
        print(summary.table())
    if args.out:
        from .plots import plot_pulls

        fig = plot_pulls(results)
        fig.savefig(args.out, dpi=90)
        print(f"pull plot: {args.out}")
    return EXIT_OK if all(r.passed for r in results) else EXIT_FAILED


# ----------------------------------------------------------------------- parser
def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def build_parser() -> argparse.ArgumentParser:
    from . import __version__

    parser = argparse.ArgumentParser(
        prog="bayestune",
        description="Gaussian-process Bayesian optimisation campaigns from the shell.",
        epilog="Campaign file format and what a campaign file may run: see "
               "docs/cli.md, or python -c 'import bayestune.campaign as c; help(c)'.")
    parser.add_argument("--version", action="version", version=f"bayestune {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    _add_run_commands(sub)
    _add_inspect_commands(sub)
    return parser


def _common_options(p: argparse.ArgumentParser) -> None:
    """The options shared by the commands that evaluate."""
    p.add_argument("--evals", type=_positive_int, default=None,
                   help="total evaluation budget (default: [campaign] n_evals)")
    p.add_argument("--workers", type=_positive_int, default=None,
                   help="evaluations in flight (default: [execution] n_workers)")
    p.add_argument("--fail-pending", action="store_true",
                   help="record the points left in flight by an earlier run as failed "
                        "instead of evaluating them again")
    p.add_argument("-q", "--quiet", action="store_true",
                   help="no progress bar (for batch systems)")


def _add_run_commands(sub: Any) -> None:
    """run, resume, import: the commands that evaluate or record trials."""
    p = sub.add_parser("run", help="run a campaign file (rerun to resume)",
                       description="Run the campaign described by a TOML file. Running it "
                                   "again resumes it from its store.")
    p.add_argument("campaign", help="campaign file (TOML)")
    p.add_argument("--store", default=None, help="store file (default: [campaign] store)")
    _common_options(p)
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("resume", help="resume a campaign from its store",
                       description="Resume a campaign started with 'bayestune run', using "
                                   "the campaign recorded in the store. A store never makes "
                                   "bayestune import code: a campaign whose objective is "
                                   "Python code needs --campaign FILE.")
    p.add_argument("store", help="campaign store (SQLite)")
    p.add_argument("--campaign", default=None,
                   help="the campaign file to resume with (needed when its objective "
                        "imports Python code)")
    _common_options(p)
    p.set_defaults(func=cmd_resume)

    p = sub.add_parser("import", help="start a campaign from the runs of a Professor scan",
                       description="Record the runs of a Professor scan (run folders with "
                                   "params.dat and YODA files) as finished trials of a "
                                   "campaign, evaluated against its reference; 'bayestune "
                                   "run' then continues from them. Runs already imported are "
                                   "skipped.")
    p.add_argument("campaign", help="campaign file (TOML)")
    p.add_argument("runs", help="the scan folder (0000/, 0001/... each with params.dat)")
    p.add_argument("--outputs", default="*.yoda*",
                   help="glob pattern of a run's YODA files (default: *.yoda*)")
    p.add_argument("--drop", nargs="+", default=None, metavar="NAME",
                   help="params.dat parameters the campaign does not tune (held fixed)")
    p.add_argument("--store", default=None, help="store file (default: [campaign] store)")
    p.set_defaults(func=cmd_import)


def _add_inspect_commands(sub: Any) -> None:
    """status, report, closure."""
    p = sub.add_parser("status", help="table of trials, failures and the best so far",
                       description="Show the state of a campaign store.")
    p.add_argument("store", help="campaign store (SQLite)")
    p.add_argument("--last", type=_positive_int, default=20,
                   help="show the last N trials (default 20)")
    p.add_argument("--all", action="store_true", help="show every trial")
    p.set_defaults(func=cmd_status)

    p = sub.add_parser("report", help="HTML page and PNG plots of a campaign",
                       description="Write a folder with PNG plots and index.html.")
    p.add_argument("store", help="campaign store (SQLite)")
    p.add_argument("--out", default=None, help="output folder (default: STORE_report/)")
    p.add_argument("--campaign", default=None,
                   help="campaign file (default: the one recorded in the store)")
    group = p.add_mutually_exclusive_group()
    group.add_argument("--uncertainty", dest="uncertainty", action="store_true", default=None,
                       help="compute Delta-chi2 uncertainties, profiles and the corner plot")
    group.add_argument("--no-uncertainty", dest="uncertainty", action="store_false")
    p.add_argument("--style", choices=("default", "hep"), default="default",
                   help="data/MC plot style ('hep': mplhep's, needs bayestune[hep])")
    p.add_argument("-q", "--quiet", action="store_true", help="only print the HTML path")
    p.set_defaults(func=cmd_report)

    p = sub.add_parser("closure", help="closure test of a histogram/pythia campaign",
                       description="Make pseudo-data at [closure] truth, tune against it and "
                                   "print the pulls. Exit code 1 if the closure fails.")
    p.add_argument("campaign", help="campaign file (TOML) with a [closure] table")
    p.add_argument("--repeats", type=_positive_int, default=None,
                   help="independent pseudo-data sets")
    p.add_argument("--evals", type=_positive_int, default=None,
                   help="evaluations per closure tune")
    p.add_argument("--out", default=None, help="write the pull plot to this PNG")
    p.set_defaults(func=cmd_closure)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``bayestune`` command."""
    parser = build_parser()
    args = parser.parse_args(argv)
    from .campaign import CampaignFileError

    try:
        return int(args.func(args))
    except KeyboardInterrupt:
        store = getattr(args, "store", None) or "the store"
        print(f"bayestune: interrupted; finished evaluations are saved in {store}: "
              "rerun the same command to resume", file=sys.stderr)
        return EXIT_INTERRUPTED
    except (_UsageError, CampaignFileError) as exc:
        print(f"bayestune: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except Exception as exc:  # noqa: BLE001 - one line, not a traceback (BAYESTUNE_DEBUG=1)
        text = str(exc).strip()
        message = text.splitlines()[0] if text else ""
        if not isinstance(exc, BayestuneError | OSError):
            message = f"{type(exc).__name__}: {message}"
        print(f"bayestune: error: {message}", file=sys.stderr)
        if os.environ.get("BAYESTUNE_DEBUG"):
            raise
        return EXIT_FAILED


if __name__ == "__main__":
    raise SystemExit(main())
