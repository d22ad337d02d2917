"""Which peak ``s`` of the length-scale prior would the data choose?

Runs ``bayestune.minimize`` with the default options on a benchmark problem, then fits the
surrogate to the run's points with the prior ``-0.1 ((l/s)^2 + (s/l)^2)`` at several fixed
``s`` and prints, for each, the joint log posterior of a hierarchical prior with a
log-uniform density on ``s``: ``-objective(s) - d log s`` (the prior density of ``l`` given
``s`` carries the normalisation ``1/s`` per dimension), beside the log likelihood and the
fitted length scales. The largest joint value is the ``s`` a learned prior scale would take.

    python benchmarks/diag_prior_scale.py levy20 0 200
"""

from __future__ import annotations

import argparse

import numpy as np

import bayestune as bt
from bayestune.gp import GPSurrogate, SurrogateConfig
from bayestune.testfunctions import PROBLEMS

SCALES = (0.5, 1.0, 2.0, 4.0, 8.0, 16.0)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("problem", choices=sorted(PROBLEMS))
    parser.add_argument("seed", type=int)
    parser.add_argument("n_evals", type=int)
    args = parser.parse_args(argv)

    problem = PROBLEMS[args.problem]()
    points: list[dict] = []
    values: list[float] = []

    def recorded(params: dict) -> float:
        points.append(dict(params))
        values.append(problem(params))
        return values[-1]

    result = bt.minimize(recorded, problem.space, args.n_evals, seed=args.seed)
    X = problem.space.to_unit(points)
    y = np.array(values)
    d = X.shape[1]
    print(f"{args.problem} seed {args.seed}: {args.n_evals} points, best value {result.fun:.4g}")
    print(f"{'s':>5} {'joint':>9} {'loglik':>9} {'median l':>9} {'l range':>13}")
    for s in SCALES:
        surrogate = GPSurrogate(SurrogateConfig(lengthscale_prior_scale=s))
        surrogate.fit(X, y, rng=np.random.default_rng(0))
        model = surrogate.posteriors[0]._model
        ls = np.sort(surrogate.lengthscales)
        joint = -float(model.objective_function()) - d * np.log(s)
        print(f"{s:5.1f} {joint:9.2f} {float(model.log_likelihood()):9.2f} "
              f"{np.median(ls):9.2f} {ls[0]:6.2f}-{ls[-1]:<6.2f}")


if __name__ == "__main__":
    main()
