"""Start a campaign from a Professor scan: runs already paid for become its first trials.

A Professor scan is a folder of run folders (``0000/``, ``0001/``...), each holding the
point in ``params.dat`` (``name value`` per line) and the generator's YODA output.
:func:`import_runs` evaluates each run's histograms with the campaign's
:class:`~bayestune.hep.chi2.HistogramObjective` (no generator is run) and records them in the
campaign's store as finished trials, in the order of the folder names, with the source
``import:<folder>``. The tune then continues from them. Importing again skips the runs already
in the store; a run whose output is missing or does not hold the reference's observables is
recorded as a failed trial (it was run, and the budget of the scan counted it).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..exceptions import BayestuneError
from ..objective import Outcome, as_outcome
from ..space import Space
from .chi2 import HistogramObjective
from .command import read_params, read_run, run_files
from .histogram import Histogram

__all__ = ["ImportSummary", "checked_scan", "import_runs", "run_point", "scan_runs"]

#: the prefix of the source label of imported trials
SOURCE = "import:"


@dataclass
class ImportSummary:
    """What :func:`import_runs` did.

    Attributes
    ----------
    imported : list of str
        Run folders recorded as completed trials.
    failed : list of str
        Run folders recorded as failed trials (their error says why).
    already : list of str
        Run folders the store already held (skipped).
    """

    imported: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    already: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        return (f"{len(self.imported)} runs imported, {len(self.failed)} recorded as failed, "
                f"{len(self.already)} already in the store")


def scan_runs(directory: str | Path) -> list[Path]:
    """The run folders of a scan: its sub-folders holding a ``params.dat``, by name."""
    root = Path(directory)
    if not root.is_dir():
        raise FileNotFoundError(f"Professor scan folder not found: {str(root)!r}")
    runs = sorted(p for p in root.iterdir() if (p / "params.dat").is_file())
    if not runs:
        raise BayestuneError(f"{root} holds no run folder with a params.dat (a Professor "
                             "scan is a folder of run folders 0000/, 0001/...)")
    return runs


def run_point(run: Path, space: Space, drop: Iterable[str] = ()) -> dict[str, Any]:
    """The point of one run, checked against ``space``: every parameter given, none other
    than those in ``drop``, each inside its range."""
    params = read_params(run / "params.dat")
    dropped = set(drop)
    missing = [n for n in space.names if n not in params]
    if missing:
        raise BayestuneError(f"{run / 'params.dat'} does not set {missing} of the campaign's "
                             "parameters")
    extra = sorted(set(params) - set(space.names) - dropped)
    if extra:
        raise BayestuneError(
            f"{run / 'params.dat'} sets {extra}, which the campaign does not tune: the scan "
            "varied them, so its runs are not points of this campaign. Tune them too, or "
            "import anyway with drop=" + repr(extra) + " if they were held at one value")
    point = {n: params[n] for n in space.names}
    try:
        return space.validate(point)
    except BayestuneError as exc:
        raise BayestuneError(f"{run.name}: {exc}") from None


def checked_scan(directory: str | Path, space: Space,
                 drop: Iterable[str] = ()) -> list[tuple[Path, dict[str, Any]]]:
    """The run folders of a scan with their points, every one checked (:func:`run_point`)."""
    drop = list(drop)
    return [(run, run_point(run, space, drop)) for run in scan_runs(directory)]


def _histograms(run: Path, outputs: str) -> dict[str, Histogram]:
    files = run_files(run, outputs)
    if not files:
        raise BayestuneError(f"no file matching {outputs!r} in {run}")
    return read_run(files)


def import_runs(tuner: Any, objective: HistogramObjective, directory: str | Path, *,
                outputs: str = "*.yoda*", drop: Iterable[str] = ()) -> ImportSummary:
    """Record the runs of a Professor scan as finished trials of ``tuner``'s campaign.

    Every run's point is checked before any is recorded, so a bad scan records nothing.

    Parameters
    ----------
    tuner : Tuner
        The campaign (its store receives the trials).
    objective : HistogramObjective
        Evaluates each run's histograms (its simulator is not called).
    directory : path
        The scan: run folders, each with ``params.dat`` and YODA files.
    outputs : str
        Glob pattern of a run's YODA files.
    drop : iterable of str
        Parameters of the ``params.dat`` files that the campaign does not tune (held at one
        value in the scan); any other unknown parameter is refused.
    """
    if not isinstance(objective, HistogramObjective):
        raise TypeError(f"import_runs evaluates histograms with a HistogramObjective, got "
                        f"{type(objective).__name__}")
    runs = checked_scan(directory, tuner.space, drop)
    known = {t.source for t in tuner.history}
    summary = ImportSummary()
    for run, point in runs:
        source = SOURCE + run.name
        if source in known:
            summary.already.append(run.name)
            continue
        outcome = _outcome(objective, run, outputs)
        tuner.add(point, outcome, source=source)
        (summary.imported if outcome.value is not None else summary.failed).append(run.name)
    return summary


def _outcome(objective: HistogramObjective, run: Path, outputs: str) -> Outcome:
    try:
        return as_outcome(objective.evaluation(_histograms(run, outputs)))
    except Exception as exc:  # noqa: BLE001 - a bad run is a failed trial, not a failed import
        return Outcome.failed(f"imported run {run}: {type(exc).__name__}: {exc}")
