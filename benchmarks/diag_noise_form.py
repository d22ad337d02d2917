"""The final fit of recorded closures refitted with another commit's cross-fits: its lack
of fit, errors and pulls both ways, on the same runs.

Resumes each closure of a ``bench_closure_random.py`` series from a copy of its store with
the code on ``PYTHONPATH`` (the commit the series was made with; no new runs, the recorded
pulls are checked), finds its final debiased fit, and refits the same evaluations with the
``_cross_fits`` of the checkout ``--other`` (another version of ``bayestune/hep/binfits.py``,
e.g. with another model of the MC noise). For Pythia series the pseudo-data are simulated
again at the truth (80k events, about two minutes a closure).

    PYTHONPATH=<checkout of dd895c9> BAYESTUNE_LEP_DATA=../shared/data/lep \\
        python benchmarks/diag_noise_form.py --generator pythia --seeds 281 282 291 \\
        --results benchmarks/results/closure_random_pythia_seeds281-300.jsonl \\
        --store-dir COPIES --other <checkout of the other commit>
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_closure_random import final_fits  # noqa: E402
from closure_series import rows_by_seed  # noqa: E402
from emulated_box import NAMES, BoxEmulator  # noqa: E402

import bayestune.hep.binfits as binfits  # noqa: E402
import bayestune.hep.binwise as binwise  # noqa: E402
from bayestune.hep import GeneratorTuning, lep  # noqa: E402


def other_cross_fits(checkout: Path):
    """``_cross_fits`` as defined in ``checkout``'s binfits.py, with this one's helpers."""
    src = (checkout / "bayestune" / "hep" / "binfits.py").read_text()
    namespace = dict(vars(binfits))
    exec(src[src.index("def _cross_fits("):src.index("\ndef _noise_factor")], namespace)
    return namespace["_cross_fits"]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--generator", choices=["emulated", "pythia"], required=True)
    parser.add_argument("--seeds", type=int, nargs="+", required=True)
    parser.add_argument("--results", type=Path, required=True)
    parser.add_argument("--store-dir", type=Path, required=True)
    parser.add_argument("--other", type=Path, required=True)
    parser.add_argument("--options", default="{}")
    args = parser.parse_args(argv)
    rows = rows_by_seed(args.results)
    ours, theirs = binwise._cross_fits, other_cross_fits(args.other)
    obs = lep.observables("core")
    reference = lep.load_reference(obs, None)
    method = GeneratorTuning.from_dict(json.loads(args.options))
    if args.generator == "pythia":
        from bayestune.hep.pythia import PythiaSimulator
        sim = PythiaSimulator(obs, reference, n_events=20_000, seed=0, n_workers=1)
    else:
        sim = BoxEmulator(noise="correlated").simulator(20_000)
    try:
        for seed, res, model, a, k in final_fits(sim, reference, rows, args.seeds,
                                                  args.store_dir, method=method):
            t = np.array([res.truth[n] for n in NAMES])
            x = np.array([res.estimate[n] for n in NAMES])
            e = np.array([res.errors[n] for n in NAMES])
            binwise._cross_fits = theirs
            try:
                other = binwise.fit_binwise(*a, **k)
            finally:
                binwise._cross_fits = ours  # the next closure resumes with its own
            unc = other.uncertainty(start=x)
            x2 = np.array([unc.x[n] for n in NAMES])
            e2 = np.array([unc.errors[n] for n in NAMES])
            print(f"seed {seed}: lack of fit {model.lack_of_fit:.2f} -> {other.lack_of_fit:.2f}; "
                  f"pulls {np.round((x - t) / e, 2)} -> {np.round((x2 - t) / e2, 2)}; errors "
                  f"x {np.round(e2 / e, 2)}", flush=True)
    finally:
        if hasattr(sim, "close"):
            sim.close()


if __name__ == "__main__":
    main()
