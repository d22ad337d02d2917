"""Pull summary of closure series logged by ``examples/pythia_closure.py``, pooled.

A four-parameter Pythia closure takes ten minutes, so series of seeds are run in parts (for
example ``--seed 1 --repeats 5`` and ``--seed 6 --repeats 5``). This reads the per-closure
tables of one or more such logs and prints the pull mean, width and coverage of all their
closures together (:class:`bayestune.closure.ClosureSummary`), with the errors counting every
pull as independent and with the closure as the unit, and whether the series is consistent
with mean 0 and width 1 within two standard errors.

    python benchmarks/pull_summary.py results/pythia_closure_full_capped_seeds1-5.txt \\
        results/pythia_closure_full_capped_seeds6-10.txt
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from bayestune.closure import ClosureSummary


def read_pulls(path: Path) -> tuple[list[str], list[list[float]]]:
    """Parameter names and one row of pulls per closure table in the log ``path``."""
    names: list[str] = []
    rows: list[list[float]] = []
    current: list[tuple[str, float]] | None = None
    for line in path.read_text().splitlines():
        fields = line.split()
        if fields[:5] == ["parameter", "truth", "tuned", "sigma", "pull"]:
            current = []
        elif current is not None and line.startswith("chi2 at truth"):
            labels = [n for n, _ in current]
            if names and labels != names:
                raise ValueError(f"{path}: parameters {labels} differ from {names}")
            names = labels
            rows.append([p for _, p in current])
            current = None
        elif current is not None and len(fields) == 5:
            current.append((fields[0], float(fields[4])))
    return names, rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("logs", nargs="+", type=Path)
    args = parser.parse_args(argv)
    names: list[str] = []
    pulls: list[list[float]] = []
    for path in args.logs:
        these, rows = read_pulls(path)
        if names and these and these != names:
            parser.error(f"{path}: parameters {these} differ from {names}")
        names = names or these
        pulls += rows
        print(f"{path}: {len(rows)} closures")
    if len(pulls) < 2:
        parser.error(f"need at least two closures, found {len(pulls)}")
    summary = ClosureSummary(results=[], names=names, pulls=np.array(pulls))
    print(summary.table())
    print(f"consistent with mean 0 and width 1 within 2 standard errors: "
          f"{summary.consistent(2.0)} (every pull independent), "
          f"{summary.consistent(2.0, by='seed')} (the closure as the unit)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
