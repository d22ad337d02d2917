"""Resume stored four-parameter Pythia closures of ``bench_closure_random.py`` with the code on
``PYTHONPATH`` and write their estimates (one JSON row per seed).

Each store is copied and resumed: its evaluations are reused by their stage, round and slot
(:class:`~bayestune.hep.tuning.runner.StageRunner`), so no generator run is made even when
this code plans other points than the series' did; the fits, the walk's decisions and the
estimate are this code's. ``bench_blas_kernels.py --stored`` runs it under several OpenBLAS
kernels to see whether those decisions depend on the CPU's rounding.

    PYTHONPATH=. BAYESTUNE_LEP_DATA=../shared/data/lep python benchmarks/replay_stored.py \\
        --seeds 457,465 --store-dir STORES --out replayed.jsonl \\
        --results benchmarks/results/closure_random_pythia_replicas_seeds455-477.jsonl
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_closure_random import resume_copy  # noqa: E402
from closure_series import parse_seeds  # noqa: E402

from bayestune.hep import GeneratorTuning, lep  # noqa: E402


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", required=True)
    parser.add_argument("--results", type=Path, required=True,
                        help="the series' results (which seeds it ran)")
    parser.add_argument("--store-dir", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--data", default=None)
    args = parser.parse_args(argv)
    rows = {r["seed"]: r for r in map(json.loads, args.results.read_text().splitlines())}
    obs = lep.observables("core")
    reference = lep.load_reference(obs, args.data)
    with args.out.open("w") as out:
        for seed in parse_seeds(args.seeds):
            if seed not in rows:
                continue
            res = resume_copy(obs, reference, rows[seed], args.store_dir / f"seed{seed}.sqlite",
                              check=False, method=GeneratorTuning())
            walk = next(s for s in res.tune.stages if s.stage == "refine").details["centres"]
            out.write(json.dumps({"seed": seed, "estimate": res.estimate, "pulls": res.pulls,
                                  "runs": len(res.result.history), "walk": walk}) + "\n")
            out.flush()


if __name__ == "__main__":
    main()
