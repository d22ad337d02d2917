"""A generator run as a command, the way Herwig or Sherpa runs are driven: read a parameter
point from Professor's ``params.dat``, generate LEP1 events with Pythia 8, and leave the
histograms in a YODA file (here through bayestune's own ALEPH 1996 analysis and YODA writer;
a Rivet user would pipe HepMC events into ``rivet`` instead).

    python pythia_yoda.py PARAMS OUTDIR --seed N --events N [--observables ID ...]
                          [--fail-above NAME=VALUE]

``--fail-above`` makes the run crash, as a generator does at a bad point, when the parameter
NAME exceeds VALUE; tests use it to check that a failing run becomes a failed trial.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from bayestune.hep import lep, write_yoda
from bayestune.hep.command import read_params
from bayestune.hep.pythia import PythiaSimulator


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("params", help="params.dat of the point")
    parser.add_argument("outdir", help="where to write pythia.yoda")
    parser.add_argument("--seed", type=int, required=True)
    parser.add_argument("--events", type=int, default=2000)
    parser.add_argument("--observables", nargs="+", default=["ALEPH96_1mT", "ALEPH96_Nch"])
    parser.add_argument("--fail-above", default=None, metavar="NAME=VALUE")
    args = parser.parse_args(argv)

    params = read_params(args.params)
    if args.fail_above:
        name, _, limit = args.fail_above.partition("=")
        if float(params[name]) > float(limit):
            print(f"pythia_yoda: {name} = {params[name]} is above {limit}: giving up",
                  file=sys.stderr)
            return 3
    observables = lep.observables(args.observables)
    reference = lep.load_reference(observables)  # only the binning is used
    with PythiaSimulator(observables, reference, n_events=args.events, seed=args.seed,
                         n_workers=1) as simulate:
        histograms = simulate(params)
    write_yoda(histograms.values(), Path(args.outdir) / "pythia.yoda")
    return 0


if __name__ == "__main__":
    sys.exit(main())
