"""Gather the Pythia runs of closure stores into one file, for studying tuning methods.

The box design (``results/box4_design.npz``) samples the four-parameter box uniformly; the
closures' stores hold Pythia runs where tunes go -- along the valleys of the chi2 -- which
the design sees only sparsely. This script reads the completed runs of every store given
(same observables, 20k events per run), drops repeated points, and writes them in the
design file's layout, with the store (``origin``) and the stage (``source``) of each run,
in their order in the store: the explore stages of real closures, for studying tuning
methods without rerunning Pythia (``bench_explore_emulator.py``).

    python benchmarks/collect_pythia_runs.py /work/stores/pythia*/seed*.sqlite \\
        --out benchmarks/results/pythia_closure_runs.npz
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "examples"))

from pythia_closure import SPACE  # noqa: E402

from bayestune.store import CampaignStore  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
DESIGN = RESULTS / "box4_design.npz"


def collect(stores: list[Path], ids: list[str]) -> tuple[np.ndarray, ...]:
    points, values, errors, origin, source, seen = [], [], [], [], [], set()
    for path in stores:
        for t in CampaignStore(path, SPACE).history():
            bins = t.info.get("bins") if t.value is not None else None
            if not bins or set(ids) - set(bins):
                continue
            x = tuple(round(float(t.params[n]), 12) for n in SPACE.names)
            if x in seen:
                continue
            seen.add(x)
            points.append(x)
            values.append(np.concatenate([bins[i][0] for i in ids]))
            errors.append(np.concatenate([bins[i][1] for i in ids]))
            origin.append(f"{path.parent.name}/{path.stem}")
            source.append(t.source)
    return (np.array(points), np.array(values), np.array(errors), np.array(origin),
            np.array(source))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("stores", nargs="+", type=Path)
    parser.add_argument("--out", type=Path, default=RESULTS / "pythia_closure_runs.npz")
    args = parser.parse_args(argv)
    with np.load(DESIGN, allow_pickle=False) as d:
        ids = [str(i) for i in d["observables"]]
        events, bins = int(d["events"]), d["bins"]
    points, values, errors, origin, source = collect(sorted(args.stores), ids)
    np.savez_compressed(args.out, points=points, values=values.astype(np.float32),
                        errors=errors.astype(np.float32), observables=np.array(ids),
                        bins=bins, events=events, origin=origin, source=source,
                        names=np.array(SPACE.names))
    print(f"{len(points)} distinct runs from {len(args.stores)} stores -> {args.out}")


if __name__ == "__main__":
    main()
