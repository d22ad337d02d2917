"""How Pythia's MC noise is correlated across the bins of the LEP observables, and what that
does to a chi2 that treats the bins as independent.

Every histogram of one run is filled from the same events: a run with a few more particles
than average raises the charged multiplicity, the whole xi spectrum and the mean multiplicity
together, and thrust and the C-parameter move together. A chi2 with independent bins then
counts one fluctuation several times. This script simulates ``--replicas`` runs of
``--events`` events (different seeds) at each of ``--points`` random points of the
four-parameter box (``emulated_box.central_truth``), and prints:

- per observable, the median ratio of the replicas' variance to the quoted MC variance
  (about 1 when the per-bin errors are right);
- the same ratio for the noise projected on each parameter's sensitivity direction (the
  gradient of the emulated bins, in units of the chi2 denominators): above 1, the correlated
  noise moves the chi2's minimum more than independent bins with the quoted errors would.

The standardised deviations (each replica's bins minus the point's mean, over the quoted MC
error) are saved to ``--out``; ``emulated_box.BoxEmulator(noise="correlated")`` draws its noise
from them, so that the emulated generator's noise has Pythia's correlations.

    BAYESTUNE_LEP_DATA=../shared/data/lep OMP_NUM_THREADS=1 \\
        python benchmarks/bench_mc_noise.py --points 3 --replicas 40 --events 5000
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from emulated_box import HIGH, LOW, NAMES, NOISE, BoxEmulator, central_truth  # noqa: E402

from bayestune.hep import HistogramObjective, lep  # noqa: E402
from bayestune.hep.binfits import _data_denominators  # noqa: E402


def replicas(sim, obs: list, point: dict, n: int, events: int,
             seed0: int) -> tuple[np.ndarray, np.ndarray]:
    """Values and errors (the bins of the observables ``obs`` in order) of ``n`` runs at
    ``point``."""
    vals, errs = [], []
    for r in range(n):
        out = sim.replicate(seed=seed0 + r, n_events=events)(point)
        vals.append(np.concatenate([out[o.id].values for o in obs]))
        errs.append(np.concatenate([out[o.id].errors for o in obs]))
    return np.array(vals), np.array(errs)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--points", type=int, default=3)
    parser.add_argument("--replicas", type=int, default=40)
    parser.add_argument("--events", type=int, default=5_000)
    parser.add_argument("--data", default=None)
    parser.add_argument("--out", type=Path, default=NOISE)
    args = parser.parse_args(argv)
    from bayestune.hep.pythia import PythiaSimulator

    obs = lep.observables("core")
    reference = lep.load_reference(obs, args.data)
    emulator = BoxEmulator(data=args.data)
    objective = HistogramObjective(lambda p: {}, reference, n_params=len(NAMES))
    used = objective.used_bins()
    mask = np.concatenate([used.masks[o.id] for o in obs])  # used bins, in observable order
    assert list(used.masks) == [o.id for o in obs] == emulator.ids
    unit = np.sqrt(_data_denominators(used, objective) / used.weights)  # chi2 = sum of squares
    deviations, points = [], []
    with PythiaSimulator(obs, reference, n_events=args.events, seed=0, n_workers=1) as sim:
        for p in range(args.points):
            truth = central_truth(10_000 + p)
            x = np.array([truth[n] for n in NAMES])
            Y, E = replicas(sim, obs, truth, args.replicas, args.events, 60_000 + 1_000 * p)
            dev = (Y - Y.mean(axis=0)) / np.maximum(E.mean(axis=0), 1e-300)
            deviations.append(dev * np.sqrt(args.replicas / (args.replicas - 1.0)))
            points.append(x)
            _print_point(p, x, Y, E, emulator, mask, unit, obs)
    np.savez_compressed(args.out, deviations=np.array(deviations), points=np.array(points),
                        events=args.events, observables=[o.id for o in obs])
    print(f"standardised deviations saved to {args.out}")


def _print_point(p: int, x: np.ndarray, Y: np.ndarray, E: np.ndarray, emulator: BoxEmulator,
                 mask: np.ndarray, unit: np.ndarray, obs: list) -> None:
    print(f"point {p}: " + ", ".join(f"{n}={v:.4g}" for n, v in zip(NAMES, x)))
    step = 1e-3 * (HIGH - LOW)
    J = np.column_stack([(emulator.mean(x + s) - emulator.mean(x - s)) / (2 * s[j])
                         for j, s in enumerate(np.diag(step))])[mask] / unit[:, None]
    Z = Y[:, mask] / unit
    noise = np.mean((E[:, mask] / unit) ** 2, axis=0)
    g = (Z - Z.mean(axis=0)) @ J
    quoted = J.T @ (noise[:, None] * J)
    ratio = np.var(g, axis=0, ddof=1) / np.diag(quoted)
    print("  projected noise variance / independent bins' (alphaS, aLund, bLund, sigma): "
          + ", ".join(f"{r:.2f}" for r in ratio))
    for o, a, b in zip(obs, emulator.edges[:-1], emulator.edges[1:]):
        sl = slice(a, b)
        var = np.var(Y[:, sl], axis=0, ddof=1) / np.maximum(np.mean(E[:, sl] ** 2, axis=0),
                                                             1e-300)
        print(f"  {o.id:18s} {b - a:3d} bins: replica / quoted variance, "
              f"median {np.median(var):.2f}")


if __name__ == "__main__":
    main()
