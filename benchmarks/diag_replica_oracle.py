"""The final fit's replicas drawn with the emulator's true MC-noise correlation (an oracle).

The replicas' part of a tune's covariance draws new MC noise with a model of one run's
noise across the bins (``BinwiseModel.noise_factor``: the correlation of the last round's
residuals, each bin's quoted error). The emulated generator knows the true one: it draws
its correlated noise from Pythia's replica deviations (``emulated_box.BoxEmulator``). This
resumes each closure of an emulated ``bench_closure_random.py`` series from its store (no
new runs; the recorded pulls are checked), refits its final fit with the true noise model,
and prints the replicas' spread with it over their spread with the method's model, per
parameter. Near 1: the noise model is not what makes the replicas too wide or narrow
(``diag_replica_check.py`` compares them with refits of re-simulated runs).

    PYTHONPATH=<checkout the series was run with> BAYESTUNE_LEP_DATA=../shared/data/lep \\
        python benchmarks/diag_replica_oracle.py --seeds 361-380 --store-dir STORES \\
        --results SERIES.jsonl --options '{"refine": {"final_scale": 3.0}}'
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_closure_random import final_fits  # noqa: E402
from closure_series import parse_seeds, resume_arguments, rows_by_seed  # noqa: E402
from emulated_box import NAMES, BoxEmulator  # noqa: E402

from bayestune.hep import GeneratorTuning, fit_binwise, lep  # noqa: E402


def true_noise_factor(emulator: BoxEmulator, used) -> np.ndarray:
    """Rows ``F`` with ``F.T @ F`` the emulator's noise covariance over the used bins, in
    units of the quoted errors."""
    cuts = list(zip(emulator.ids, emulator.edges[:-1], emulator.edges[1:]))
    rows = [used.flatten({i: row[a:b] for i, a, b in cuts}) for row in emulator.deviations]
    return np.array(rows) / np.sqrt(len(emulator.deviations))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    resume_arguments(parser)
    args = parser.parse_args(argv)
    emulator = BoxEmulator(noise="correlated")
    ratios = []
    for seed, res, model, a, k in final_fits(
            emulator.simulator(20_000), lep.load_reference(lep.observables("core"), None),
            rows_by_seed(args.results), parse_seeds(args.seeds), args.store_dir,
            method=GeneratorTuning.from_dict(json.loads(args.options))):
        x = np.array([res.estimate[n] for n in NAMES])
        own = res.uncertainty  # the final fit's, from the method's noise model
        factor = true_noise_factor(emulator, model.objective.used_bins())
        true = fit_binwise(*a, **dict(k, noise_factor=factor)).uncertainty(start=x)
        ratio = (np.sqrt(np.diag(true.covariance_surrogate))
                 / np.sqrt(np.diag(own.covariance_surrogate)))
        ratios.append(ratio)
        print(f"seed {seed}: replicas' sd with the true noise / with the method's "
              f"{np.round(ratio, 2)}", flush=True)
    print(f"\n{len(ratios)} closures; per parameter ({', '.join(NAMES)}):")
    print(f"  median {np.round(np.median(ratios, axis=0), 2)}")
    print(f"  geometric mean {np.round(np.exp(np.mean(np.log(ratios), axis=0)), 2)}")


if __name__ == "__main__":
    main()
