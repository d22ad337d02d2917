"""Sample efficiency and speed: bayestune against Optuna, BoTorch, scikit-optimize, GPyOpt.

Every method gets the same problem, budget and seed list, and runs in the same process
layout (one BLAS thread per process). For each run we record the final regret
``min f - f_min`` and the optimiser's own seconds per suggestion (the wall-clock gap between
the end of one objective call and the start of the next; the test functions themselves take
microseconds).

Usage::

    python benchmarks/bench_core.py                       # all problems, 5 seeds
    python benchmarks/bench_core.py --problems branin --seeds 3 --methods bayestune skopt
    python benchmarks/bench_core.py --seeds 40 --seeds-for levy20=20   # 20 seeds on Levy-20
    python benchmarks/bench_core.py --pool results/core_fresh200 results/core_fresh220 \
        --markdown                                        # the README's table

``--surrogate '{"lengthscale_prior": true}'`` runs a variant of bayestune (its
``SurrogateConfig`` options; ``trust_region`` and ``n_initial`` go to the acquisition search
and the tuner), recorded as the method ``bayestune:<options>``.

``optuna`` (its ``GPSampler``) and ``botorch`` (a single-task GP with log expected
improvement, the loop of BoTorch's tutorials) need the ``bench`` extra and torch.

Results are appended to ``benchmarks/results/core_runs.jsonl`` (finished runs are skipped on
a rerun, so an interrupted benchmark resumes) and summarised in ``core_summary.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
import warnings
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")

import numpy as np  # noqa: E402

BUDGETS = {"branin": 30, "hartmann6": 60, "rosenbrock4": 60, "levy10": 100, "levy20": 200}
METHODS = ("bayestune", "optuna", "botorch", "skopt", "gpyopt", "random")
RESULTS = Path(__file__).parent / "results"
LABELS = {"branin": "Branin", "hartmann6": "Hartmann-6", "rosenbrock4": "Rosenbrock-4",
          "levy10": "Levy-10", "levy20": "Levy-20", "optuna": "Optuna GPSampler",
          "botorch": "BoTorch LogEI", "skopt": "scikit-optimize", "gpyopt": "GPyOpt"}


class Recorder:
    """Wraps a test problem; records values and the time between calls."""

    def __init__(self, problem):
        self.problem = problem
        self.values: list[float] = []
        self.gaps: list[float] = []
        self._last_end: float | None = None

    def __call__(self, params: dict) -> float:
        start = time.perf_counter()
        if self._last_end is not None:
            self.gaps.append(start - self._last_end)
        value = self.problem(params)
        self.values.append(value)
        self._last_end = time.perf_counter()
        return value

    def vector(self, x) -> float:
        return self(dict(zip(self.problem.space.names, (float(v) for v in x))))


def run_bayestune(rec: Recorder, n: int, seed: int, surrogate: dict | None = None) -> None:
    import bayestune as bt

    surrogate = dict(surrogate or {})
    options = {}
    if "trust_region" in surrogate:  # an option of the acquisition search, not of the GP
        region = bt.TrustRegionConfig(**surrogate.pop("trust_region"))
        options["optimizer"] = bt.AcqOptimizerConfig(trust_region=region)
    if "n_initial" in surrogate:  # an option of the tuner: its space-filling design's size
        options["n_initial"] = int(surrogate.pop("n_initial"))
    if surrogate:
        options["surrogate"] = bt.SurrogateConfig(**surrogate)
    bt.minimize(rec, rec.problem.space, n, seed=seed, **options)


def run_skopt(rec: Recorder, n: int, seed: int) -> None:
    from skopt import gp_minimize

    bounds = [(d.low, d.high) for d in rec.problem.space]
    gp_minimize(rec.vector, bounds, n_calls=n, random_state=seed)


def run_gpyopt(rec: Recorder, n: int, seed: int) -> None:
    import GPyOpt

    domain = [{"name": d.name, "type": "continuous", "domain": (d.low, d.high)}
              for d in rec.problem.space]
    np.random.seed(seed)  # GPyOpt draws from NumPy's global generator  # noqa: NPY002
    n_init = 5
    bo = GPyOpt.methods.BayesianOptimization(
        f=lambda X: np.array([[rec.vector(row)] for row in X]), domain=domain,
        initial_design_numdata=n_init, exact_feval=True)
    bo.run_optimization(max_iter=n - n_init, eps=-1)  # eps<0: never stop early


def run_optuna(rec: Recorder, n: int, seed: int) -> None:
    import optuna
    import torch

    torch.set_num_threads(1)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    space = rec.problem.space

    def objective(trial: optuna.Trial) -> float:
        return rec({d.name: trial.suggest_float(d.name, d.low, d.high) for d in space})

    study = optuna.create_study(sampler=optuna.samplers.GPSampler(seed=seed))
    study.optimize(objective, n_trials=n)


def botorch_suggest(U, Y):
    """BoTorch's next point in the unit cube from inputs ``U`` (n, d) and values ``Y``
    (n, 1) to maximise (torch doubles): a SingleTaskGP (outputs standardised) and
    LogExpectedImprovement, maximised by ``optimize_acqf`` (10 restarts from 512 raw
    samples)."""
    import torch
    from botorch.acquisition import LogExpectedImprovement
    from botorch.fit import fit_gpytorch_mll
    from botorch.models import SingleTaskGP
    from botorch.models.transforms import Standardize
    from botorch.optim import optimize_acqf
    from gpytorch.mlls import ExactMarginalLogLikelihood

    d = U.shape[1]
    unit = torch.stack([torch.zeros(d), torch.ones(d)]).double()
    model = SingleTaskGP(U, Y, outcome_transform=Standardize(m=1))
    fit_gpytorch_mll(ExactMarginalLogLikelihood(model.likelihood, model))
    acq = LogExpectedImprovement(model, best_f=Y.max())
    x, _ = optimize_acqf(acq, bounds=unit, q=1, num_restarts=10, raw_samples=512)
    return x.detach()


def run_botorch(rec: Recorder, n: int, seed: int) -> None:
    """Sobol points (2 (d + 1), as BoTorch's tutorials), then :func:`botorch_suggest`."""
    import torch

    torch.set_num_threads(1)
    torch.manual_seed(seed)
    space = rec.problem.space
    d = len(space.names)
    lo = np.array([dim.low for dim in space], dtype=float)
    hi = np.array([dim.high for dim in space], dtype=float)

    def evaluate(u: np.ndarray) -> float:
        return rec.vector(lo + u * (hi - lo))

    n_init = min(2 * (d + 1), n)
    U = torch.quasirandom.SobolEngine(d, scramble=True, seed=seed).draw(n_init).double()
    Y = torch.tensor([[-evaluate(u.numpy())] for u in U], dtype=torch.double)
    for _ in range(n - n_init):
        x = botorch_suggest(U, Y)
        U = torch.cat([U, x])
        Y = torch.cat([Y, torch.tensor([[-evaluate(x[0].numpy())]], dtype=torch.double)])


def run_random(rec: Recorder, n: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    for point in rec.problem.space.sample(n, rng, "random"):
        rec(point)


RUNNERS = {"bayestune": run_bayestune, "optuna": run_optuna, "botorch": run_botorch,
           "skopt": run_skopt, "gpyopt": run_gpyopt, "random": run_random}


def one_run(problem_name: str, method: str, seed: int, surrogate: dict | None = None) -> dict:
    """One run of ``method`` (with ``surrogate``: the bayestune variant so named)."""
    from bayestune.testfunctions import PROBLEMS

    warnings.simplefilter("ignore")  # peer libraries are chatty; this is a benchmark script
    problem = PROBLEMS[problem_name]()
    n = BUDGETS[problem_name]
    rec = Recorder(problem)
    start = time.perf_counter()
    if surrogate:
        run_bayestune(rec, n, seed, surrogate)
    else:
        RUNNERS[method](rec, n, seed)
    wall = time.perf_counter() - start
    values = np.array(rec.values[:n])
    gaps = np.array(rec.gaps)
    return {
        "problem": problem_name, "method": method, "seed": seed, "n_evals": int(values.size),
        "final_regret": float(values.min() - problem.f_min),
        "regret_curve": (np.minimum.accumulate(values) - problem.f_min).tolist(),
        "sec_per_suggestion": float(gaps.mean()) if gaps.size else 0.0,
        "sec_per_suggestion_last10": float(gaps[-10:].mean()) if gaps.size else 0.0,
        "wall_seconds": wall,
    }


def library_versions() -> dict[str, str]:
    """The version of each method's library (bayestune's with its git commit)."""
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for method, dist in (("bayestune", "bayestune"), ("optuna", "optuna"),
                         ("botorch", "botorch"), ("skopt", "scikit-optimize"),
                         ("gpyopt", "GPyOpt")):
        try:
            out[method] = version(dist)
        except PackageNotFoundError:
            continue
    try:
        commit = subprocess.run(["git", "describe", "--always", "--dirty"], capture_output=True,
                                text=True, cwd=Path(__file__).parent, check=True).stdout
        out["bayestune"] += f" ({commit.strip()})"
    except (OSError, subprocess.CalledProcessError, KeyError):
        pass
    return out


def summarise(runs: list[dict], problems, methods) -> dict:
    table = {}
    for p in problems:
        for m in methods:
            sel = [r for r in runs if r["problem"] == p and r["method"] == m]
            if not sel:
                continue
            reg = np.array([r["final_regret"] for r in sel])
            sps = np.array([r["sec_per_suggestion"] for r in sel])
            last = np.array([r["sec_per_suggestion_last10"] for r in sel])
            table[f"{p}/{m}"] = {
                "problem": p, "method": m, "n_seeds": len(sel), "budget": BUDGETS[p],
                "regret_median": float(np.median(reg)),
                "regret_q25": float(np.quantile(reg, 0.25)),
                "regret_q75": float(np.quantile(reg, 0.75)),
                "regret_worst": float(np.max(reg)),
                "sec_per_suggestion_median": float(np.median(sps)),
                "sec_per_suggestion_last10_median": float(np.median(last)),
            }
    return table


def print_table(table: dict) -> None:
    header = (f"{'problem':<12} {'method':<10} {'seeds':>5} {'regret median':>14} "
              f"{'[q25, q75]':>24} {'worst':>10} {'s/sugg':>8} {'s/sugg@end':>10}")
    print(header)
    print("-" * len(header))
    for row in table.values():
        spread = f"[{row['regret_q25']:.3g}, {row['regret_q75']:.3g}]"
        print(f"{row['problem']:<12} {row['method']:<10} {row['n_seeds']:>5} "
              f"{row['regret_median']:>14.4g} {spread:>24} "
              f"{row.get('regret_worst', float('nan')):>10.4g} "
              f"{row['sec_per_suggestion_median']:>8.3f} "
              f"{row['sec_per_suggestion_last10_median']:>10.3f}")


def recorded_runs(runs_file: Path) -> list[dict]:
    """The runs recorded in ``runs_file`` (none when it does not exist)."""
    if not runs_file.exists():
        return []
    return [json.loads(line) for line in runs_file.read_text().splitlines()]


def pooled_runs(folders: list[Path]) -> list[dict]:
    """The runs recorded in several result folders; a run recorded twice (the same problem,
    method and seed) is an error, since its two records would count as two seeds."""
    runs, seen = [], {}
    for folder in folders:
        for run in recorded_runs(folder / "core_runs.jsonl"):
            key = (run["problem"], run["method"], run["seed"])
            if key in seen:
                raise SystemExit(f"--pool: {key} is recorded in {seen[key]} and in {folder}")
            seen[key] = folder
            runs.append(run)
    return runs


def markdown_table(table: dict) -> str:
    """A row per problem, a column per method: median [upper quartile] worst, the seed count
    where it is below the row's largest, the best median (random search aside) in bold."""
    problems = list(dict.fromkeys(row["problem"] for row in table.values()))
    methods = list(dict.fromkeys(row["method"] for row in table.values()))
    lines = ["| problem (budget) | " + " | ".join(LABELS.get(m, m) for m in methods) + " |",
             "|---" * (len(methods) + 1) + "|"]
    for p in problems:
        rows = {m: table[f"{p}/{m}"] for m in methods if f"{p}/{m}" in table}
        most = max(r["n_seeds"] for r in rows.values())
        best = min((r["regret_median"] for m, r in rows.items() if m != "random"), default=None)
        cells = []
        for m in methods:
            r = rows.get(m)
            if r is None:
                cells.append("-")
                continue
            median = f"{r['regret_median']:.3g}"
            cell = (f"**{median}**" if r["regret_median"] == best else median) \
                + f" [{r['regret_q75']:.3g}] {r['regret_worst']:.3g}"
            cells.append(cell + (f" ({r['n_seeds']} seeds)" if r["n_seeds"] < most else ""))
        lines.append(f"| {LABELS[p]} ({BUDGETS[p]}) | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def seed_counts(problems: list[str], default: int, overrides: list[str]) -> dict[str, int]:
    """The number of seeds per problem: ``default``, or ``N`` where ``PROBLEM=N`` says so."""
    counts = dict.fromkeys(problems, default)
    for item in overrides:
        name, _, number = item.partition("=")
        if name not in BUDGETS or not number.isdigit() or int(number) < 1:
            raise SystemExit(f"--seeds-for takes PROBLEM=N with a known problem and N >= 1, "
                             f"got {item!r}")
        if name in counts:
            counts[name] = int(number)
    return counts


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--problems", nargs="+", default=list(BUDGETS), choices=list(BUDGETS))
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=METHODS)
    parser.add_argument("--seeds", type=int, default=5, help="number of seeds")
    parser.add_argument("--first-seed", type=int, default=0,
                        help="seeds first .. first + N - 1 (a fresh range validates a change "
                             "chosen on another)")
    parser.add_argument("--seeds-for", nargs="+", default=[], metavar="PROBLEM=N",
                        help="another number of seeds for some problems, e.g. levy20=20")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--fresh", action="store_true", help="ignore earlier runs")
    parser.add_argument("--surrogate", default=None,
                        help="a variant of bayestune: SurrogateConfig options as JSON (a key "
                             "trust_region holds TrustRegionConfig options, a key n_initial "
                             "the size of the tuner's space-filling design), "
                             "recorded as method 'bayestune:<JSON>'")
    parser.add_argument("--pool", nargs="+", type=Path, default=None, metavar="DIR",
                        help="run nothing: summarise the runs recorded in these folders "
                             "together (of --problems and --methods, any seeds)")
    parser.add_argument("--markdown", action="store_true",
                        help="print the table as Markdown, a row per problem")
    args = parser.parse_args(argv)
    if args.pool:
        table = summarise(pooled_runs(args.pool), args.problems, args.methods)
        if args.markdown:
            print(markdown_table(table), end="")
        else:
            print_table(table)
        return 0
    surrogate = json.loads(args.surrogate) if args.surrogate else None
    if surrogate:
        args.methods = [f"bayestune:{json.dumps(surrogate, sort_keys=True)}"]

    args.out.mkdir(parents=True, exist_ok=True)
    runs_file = args.out / "core_runs.jsonl"
    if args.fresh and runs_file.exists():
        runs_file.unlink()
    runs = recorded_runs(runs_file)
    done = {(r["problem"], r["method"], r["seed"]) for r in runs}
    seeds = {p: range(args.first_seed, args.first_seed + n)
             for p, n in seed_counts(args.problems, args.seeds, args.seeds_for).items()}
    todo = [(p, m, s) for p in args.problems for m in args.methods for s in seeds[p]
            if (p, m, s) not in done]
    versions = library_versions()
    print(f"{len(todo)} runs to do, {len(done)} already recorded", file=sys.stderr)
    with ProcessPoolExecutor(args.workers) as pool:
        futures = {pool.submit(one_run, *task, surrogate): task for task in todo}
        for fut in as_completed(futures):
            record = fut.result()
            record["version"] = versions.get(record["method"].split(":")[0], "")
            runs.append(record)
            with runs_file.open("a") as fh:
                fh.write(json.dumps(record) + "\n")
            print(f"  {record['problem']:<12} {record['method']:<10} seed {record['seed']}: "
                  f"regret {record['final_regret']:.4g}, "
                  f"{record['sec_per_suggestion']:.3f} s/suggestion", file=sys.stderr)
    runs = [r for r in runs if r["problem"] in args.problems and r["method"] in args.methods
            and r["seed"] in seeds[r["problem"]]]
    table = summarise(runs, args.problems, args.methods)
    print_table(table)
    (args.out / "core_summary.json").write_text(json.dumps(table, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
