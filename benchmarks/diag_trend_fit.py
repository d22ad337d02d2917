"""How much the quadratic trend costs the hyperparameter fit, and where its parameters end.

For each seed, n Levy values at uniform points in d dimensions (the histories of
``bench_suggest_time.py``) are fitted once with and once without the trend; printed: the
evaluations of the marginal likelihood (``gp_fit.MarginalLikelihood``) over all L-BFGS
starts, the wall time, the log likelihood, and the trend's variances of its constant,
linear and quadratic parts (kernel ``c0 + c1 x.x' + c2 (x.x')^2``, each bounded to
[1e-6, 1e2]). ``results/diag_trend_fit_tied.txt`` is the output for the earlier, tied
parameterisation ``v (s x.x' + b)^2``.

    OMP_NUM_THREADS=1 python benchmarks/diag_trend_fit.py --dim 10 --n 100 --seeds 3
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench_suggest_time import history  # noqa: E402

import bayestune as bt  # noqa: E402
from bayestune import gp_fit  # noqa: E402
from bayestune.gp import GPSurrogate  # noqa: E402


class CountedLikelihood(gp_fit.MarginalLikelihood):
    calls = 0

    def __call__(self, x: np.ndarray) -> tuple[float, np.ndarray]:
        CountedLikelihood.calls += 1
        return super().__call__(x)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dim", type=int, default=10)
    parser.add_argument("--n", type=int, default=100)
    parser.add_argument("--seeds", type=int, default=3)
    args = parser.parse_args()
    gp_fit.MarginalLikelihood = CountedLikelihood  # fit_map builds one per fit
    print(f"# d = {args.dim}, n = {args.n}; trend variances bounded to [1e-6, 1e2]")
    print(f"{'seed':>4} {'trend':>9} {'calls':>6} {'seconds':>8} {'log lik':>9}  "
          "trend c0, c1, c2")
    for seed in range(args.seeds):
        X, y = history(args.n, args.dim, seed)
        for trend in (None, "quadratic"):
            CountedLikelihood.calls = 0
            surrogate = GPSurrogate(bt.SurrogateConfig(trend=trend))
            start = time.perf_counter()
            surrogate.fit(X, y, rng=np.random.default_rng(seed))
            seconds = time.perf_counter() - start
            model = surrogate.posteriors[0]._model
            parts = ""
            if trend is not None:
                part = model.kern.parts[1]
                parts = ", ".join(f"{float(getattr(part, p)[0]):.3g}"
                                  for p in ("constant", "linear", "quadratic"))
            print(f"{seed:>4} {str(trend):>9} {CountedLikelihood.calls:>6} {seconds:>8.2f} "
                  f"{float(model.log_likelihood()):>9.2f}  {parts}", flush=True)


if __name__ == "__main__":
    main()
