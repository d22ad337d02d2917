"""Resume stored four-parameter Pythia closures of ``bench_closure_random.py`` with the code on
``PYTHONPATH`` and write their estimates (one JSON row per seed).

Each store is copied and resumed: its evaluations are reused by their stage, round and slot
(:class:`~bayestune.hep.tuning.runner.StageRunner`), so no generator run is made even when
this code plans other points than the series' did; the fits, the walk's decisions and the
estimate are this code's. ``bench_blas_kernels.py --stored`` runs it under several OpenBLAS
kernels to see whether those decisions depend on the CPU's rounding; with ``--options`` it
replays them with other method options, and ``--compare`` (no replays) sets the replayed
closures of ``--out`` beside their records: pull mean and width, truths inside the joint
2-sigma region.

    PYTHONPATH=. BAYESTUNE_LEP_DATA=../shared/data/lep python benchmarks/replay_stored.py \\
        --seeds 457,465 --store-dir STORES --out replayed.jsonl \\
        --results benchmarks/results/closure_random_pythia_replicas_seeds455-477.jsonl
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_closure_random import resume_copy  # noqa: E402
from closure_series import joint_limit, parse_seeds, pull_moments  # noqa: E402

from bayestune.hep import GeneratorTuning, lep  # noqa: E402


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", required=True)
    parser.add_argument("--results", type=Path, required=True,
                        help="the series' results (which seeds it ran)")
    parser.add_argument("--store-dir", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--data", default=None)
    parser.add_argument("--options", default="{}",
                        help="the method's options (JSON; the series' defaults if none)")
    parser.add_argument("--compare", action="store_true",
                        help="no replays: summarise --out against the recorded closures")
    args = parser.parse_args(argv)
    method = GeneratorTuning.from_dict(json.loads(args.options))
    rows = {r["seed"]: r for r in map(json.loads, args.results.read_text().splitlines())}
    if args.compare:
        compare(rows, [json.loads(line) for line in args.out.read_text().splitlines()])
        return
    obs = lep.observables("core")
    reference = lep.load_reference(obs, args.data)
    with args.out.open("w") as out:
        for seed in parse_seeds(args.seeds):
            if seed not in rows:
                continue
            res = resume_copy(obs, reference, rows[seed], args.store_dir / f"seed{seed}.sqlite",
                              check=False, method=method)
            walk = next(s for s in res.tune.stages if s.stage == "refine").details["centres"]
            out.write(json.dumps({"seed": seed, "estimate": res.estimate, "pulls": res.pulls,
                                  "distance2": res.truth_distance(),
                                  "runs": len(res.result.history), "walk": walk}) + "\n")
            out.flush()


def compare(recorded: dict[int, dict], replayed: list[dict]) -> None:
    """Pull mean and width and the share of truths inside the joint 2-sigma region of the
    replayed closures and of the same closures as recorded, and each closure's pulls."""
    names = list(replayed[0]["pulls"])
    limit = joint_limit(len(names))
    for label, rows in (("replayed", replayed), ("recorded", [recorded[r["seed"]]
                                                              for r in replayed])):
        pulls = np.array([[r["pulls"][n] for n in names] for r in rows])
        inside = np.mean([r["distance2"] <= limit for r in rows])
        print(f"{label}: {len(rows)} closures, {pull_moments(pulls)}; truths inside the joint "
              f"2-sigma region {inside:.2f}")
    for r in replayed:
        old = recorded[r["seed"]]
        print(f"  seed {r['seed']}: pulls {np.round([r['pulls'][n] for n in names], 2)} "
              f"Delta chi2 {r['distance2']:5.2f} (recorded "
              f"{np.round([old['pulls'][n] for n in names], 2)} {old['distance2']:5.2f})")


if __name__ == "__main__":
    main()
