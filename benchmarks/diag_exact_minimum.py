"""Where the error of an emulated closure comes from: the data, or the method's own emulation.

For each closure of a ``bench_closure_random.py --generator emulated`` results file, this
rebuilds the same level-1 pseudo-data and finds the *exact minimum*: the minimum of the chi2
of the noise-free emulator (the quartics of ``emulated_box.py``) against them -- what a
method with unlimited generator runs would report. It prints, per closure and summed over
the series, in units of the method's quoted errors:

- ``(min - truth) / sigma``: the part of the error the pseudo-data's noise makes (no method
  can remove it);
- ``(estimate - min) / sigma``: the part the method adds, from the MC noise of its 80 runs
  and the per-bin quadratics' approximation;

and the pulls of the exact minimum under its own exact errors (the sandwich covariance of
the weighted least squares with the pseudo-data's true noise: data errors plus the
correlated MC noise of the pseudo-data's events), which say whether the minimum-chi2
estimator itself is biased along the aLund-bLund valley.

    BAYESTUNE_LEP_DATA=../shared/data/lep python benchmarks/diag_exact_minimum.py \\
        --results benchmarks/results/closure_random_emulated_correlated_seeds301-320.jsonl \\
        --noise correlated

Pseudo-data and truths follow the results file's seeds, so the output is that of the
recorded closures; a minute for twenty closures.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
from scipy.optimize import minimize

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_closure_random import pseudo_options  # noqa: E402
from closure_series import read_rows  # noqa: E402
from emulated_box import HIGH, LOW, NAMES, BoxEmulator  # noqa: E402

from bayestune.closure import level1_pseudo_data  # noqa: E402


def exact_minimum(emu: BoxEmulator, d: np.ndarray, sd: np.ndarray,
                  start: np.ndarray) -> np.ndarray:
    """The minimum over the box of ``sum (mean(x) - d)^2 / sd^2``: from ``start`` and six
    fixed starting points, in the box's unit coordinates."""
    def f(u: np.ndarray) -> float:
        return float(np.sum((emu.mean(LOW + (HIGH - LOW) * u) - d) ** 2 / sd**2))

    starts = [(start - LOW) / (HIGH - LOW)]
    starts += [np.random.default_rng([7, k]).uniform(0.1, 0.9, len(NAMES)) for k in range(6)]
    best = min((minimize(f, s, method="L-BFGS-B", bounds=[(0, 1)] * len(NAMES))
                for s in starts), key=lambda r: r.fun)
    return LOW + (HIGH - LOW) * best.x


def sandwich_errors(emu: BoxEmulator, x: np.ndarray, sd: np.ndarray, noise: np.ndarray
                    ) -> np.ndarray:
    """Errors of the weighted least-squares minimum at ``x`` for data noise of covariance
    ``noise`` and weights ``1 / sd^2``: ``A^-1 G^T noise G A^-1`` with ``G = J / sd^2``."""
    steps = np.diag(1e-4 * (HIGH - LOW))
    jac = np.array([(emu.mean(x + h) - emu.mean(x - h)) / (2 * h[k])
                    for k, h in enumerate(steps)]).T
    g = jac / sd[:, None] ** 2
    a_inv = np.linalg.inv(jac.T @ g)
    return np.sqrt(np.diag(a_inv @ g.T @ noise @ g @ a_inv))


def one(emu: BoxEmulator, corr: np.ndarray, row: dict,
        events: int) -> tuple[np.ndarray, ...]:
    """One closure's error parts; ``corr`` is the emulator's noise correlation."""
    truth = np.array([row["truth"][n] for n in NAMES])
    estimate = np.array([row["estimate"][n] for n in NAMES])
    sigma = np.array([row["errors"][n] for n in NAMES])
    opt = pseudo_options(emu.simulator(events), emu.reference, row["truth"], row["seed"],
                         4 * events)
    data = level1_pseudo_data(opt.make, emu.reference, opt.seed)
    d = np.concatenate([data[i].values for i in emu.ids])
    sd = np.concatenate([data[i].errors for i in emu.ids])
    x_min = exact_minimum(emu, d, sd, truth)
    mc = emu.error(truth, 4 * events)
    measured = np.sqrt(np.maximum(sd**2 - mc**2, 0.0))
    noise = np.diag(measured**2) + mc[:, None] * corr * mc[None, :]
    exact = sandwich_errors(emu, x_min, sd, noise)
    return (x_min - truth) / sigma, (estimate - x_min) / sigma, (x_min - truth) / exact


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--results", type=Path, required=True)
    parser.add_argument("--noise", choices=["independent", "correlated"], required=True,
                        help="the emulated generator's noise the series was run with")
    parser.add_argument("--events", type=int, default=20_000, help="events per run")
    parser.add_argument("--data", default=None)
    args = parser.parse_args(argv)
    emu = BoxEmulator(data=args.data, noise=args.noise)
    corr = emu.noise_correlation()
    parts = []
    print(f"{'seed':>5s}  {'(min - truth) / sigma':32s}  {'(estimate - min) / sigma':32s}")
    for row in read_rows(args.results):
        parts.append(one(emu, corr, row, args.events))
        a, b, _ = parts[-1]
        print(f"{row['seed']:5d}  {np.array2string(a, precision=2):32s}  "
              f"{np.array2string(b, precision=2):32s}")
    print(f"\n{len(parts)} closures; per parameter ({', '.join(NAMES)}): mean and sd")
    labels = ("(min - truth) / sigma   ", "(estimate - min) / sigma",
              "exact minimum's pulls   ")
    for label, v in zip(labels, (np.array(p) for p in zip(*parts))):
        print(f"  {label}  mean {np.array2string(v.mean(0), precision=2)}  "
              f"sd {np.array2string(v.std(0, ddof=1), precision=2)}")


if __name__ == "__main__":
    main()
