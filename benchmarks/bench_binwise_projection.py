"""Seconds for the debiased fit's leave-one-out projections: fitted directions against the span.

The debiased fit (:func:`bayestune.hep.fit_binwise` with ``basis``) projects each fitted
run's bins onto the principal components of a quadratic fit of the other runs and the basis.
With every component kept it computes the span of the centred bins against the features
(``_projected_on_all``: a QR per run) instead of a least-squares fit and an SVD per run
(``_directions``). This times both on random smooth bins of the given sizes, one replica's
projections, and prints the largest difference.

    OMP_NUM_THREADS=1 python benchmarks/bench_binwise_projection.py --params 4 10 20
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from bayestune.hep.binfits import _directions, _projected_on_all
from bayestune.quadratic import n_quadratic_terms

#: (fitted runs, basis runs) per number of parameters, as the rounds of a closure have them
SIZES = {4: (47, 32), 10: (132, 160), 20: (300, 260)}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--params", type=int, nargs="+", default=[4, 10, 20])
    parser.add_argument("--bins", type=int, default=300)
    args = parser.parse_args(argv)
    print(f"{'k':>3} {'fitted':>6} {'basis':>6} {'bins':>5} {'fitted dirs (s)':>16} "
          f"{'span (s)':>9} {'max difference':>15}")
    for k in args.params:
        n, nb = SIZES.get(k, (2 * n_quadratic_terms(k), 2 * n_quadratic_terms(k)))
        rng = np.random.default_rng([5, k])
        weights = rng.normal(size=(k, args.bins))
        X, Xb = rng.uniform(size=(n, k)), rng.uniform(size=(nb, k))
        Z = np.sin(X @ weights) + 0.01 * rng.normal(size=(n, args.bins))
        Zb = np.sin(Xb @ weights) + 0.01 * rng.normal(size=(nb, args.bins))
        noise = rng.uniform(0.5, 1.5, size=Z.shape)
        started = time.perf_counter()
        out, var = _projected_on_all(X, Xb, Z, Zb, noise)
        span = time.perf_counter() - started
        started = time.perf_counter()
        diff = 0.0
        for i in range(n):
            others = np.arange(n) != i
            V = _directions(np.vstack([Xb, X[others]]), np.vstack([Zb, Z[others]]),
                            n_quadratic_terms(k) - 1)
            P = V.T @ V
            diff = max(diff, float(np.abs(out[i] - Z[i] @ P).max()),
                       float(np.abs(var[i] - noise[i] @ P**2).max()))
        fitted = time.perf_counter() - started
        print(f"{k:3d} {n:6d} {nb:6d} {args.bins:5d} {fitted:16.2f} {span:9.2f} {diff:15.1e}")


if __name__ == "__main__":
    main()
