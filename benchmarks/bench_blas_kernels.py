"""Closures under every OpenBLAS kernel family this CPU runs: are they the same closures?

Each kernel family rounds differently. The generator's noise is seeded from the points it
is run at (to six significant digits), so a tune whose designs move by round-off draws
other noise and becomes another closure. This runs the emulated closures of
``bench_closure_random.py`` (``--generator emulated --noise correlated``) once per kernel
(``OPENBLAS_CORETYPE``; the kernels from ``.ci/blas_coretypes.py`` besides OpenBLAS's own
choice), in parallel processes, and prints each seed's estimate under every kernel and the
largest relative difference from the first kernel's.

    BAYESTUNE_LEP_DATA=../shared/data/lep python benchmarks/bench_blas_kernels.py \\
        --seeds 301-306 --out benchmarks/results/blas_kernels_emulated_301-306.txt

With ``--stored RESULTS --store-dir STORES`` it resumes stored Pythia closures of that series
instead (``replay_stored.py``: their runs are reused, so no generator runs), with this
checkout's method, under each kernel of ``--kernels`` (default: as above).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def kernels() -> list[str]:
    """OpenBLAS's own kernel (empty name) and the others this CPU runs."""
    out = subprocess.run([sys.executable, str(ROOT / ".ci" / "blas_coretypes.py")],
                         capture_output=True, text=True, check=True)
    return [""] + out.stdout.split()


def run_all(seeds: str, names: list[str], folder: Path,
            stored: tuple[Path, Path] | None = None) -> dict[str, dict[int, dict]]:
    """Each kernel's closures (``stored``: the series' results and stores to resume)."""
    procs = {}
    for name in names:
        env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1",
                   PYTHONPATH=str(ROOT))
        if name:
            env["OPENBLAS_CORETYPE"] = name
        results = folder / f"{name or 'default'}.jsonl"
        if stored is None:
            command = [str(ROOT / "benchmarks" / "bench_closure_random.py"), "--generator",
                       "emulated", "--noise", "correlated", "--seeds", seeds, "--workers", "1",
                       "--results", str(results)]
        else:
            command = [str(ROOT / "benchmarks" / "replay_stored.py"), "--seeds", seeds,
                       "--results", str(stored[0]), "--store-dir", str(stored[1]),
                       "--out", str(results)]
        procs[name] = (subprocess.Popen(
            [sys.executable, *command],
            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True), results)
    rows: dict[str, dict[int, dict]] = {}
    for name, (proc, results) in procs.items():
        _, err = proc.communicate()
        if proc.returncode != 0:
            raise SystemExit(f"kernel {name or 'default'} failed:\n{err}")
        rows[name] = {r["seed"]: r for r in map(json.loads, results.read_text().splitlines())}
    return rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", default="301-303")
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--kernels", default=None,
                        help="comma-separated OPENBLAS_CORETYPE names (default: all this CPU "
                             "runs; 'default' is OpenBLAS's own choice)")
    parser.add_argument("--stored", type=Path, default=None,
                        help="results of a stored Pythia series to resume instead")
    parser.add_argument("--store-dir", type=Path, default=None)
    args = parser.parse_args(argv)
    if (args.stored is None) != (args.store_dir is None):
        parser.error("--stored and --store-dir go together")
    names = kernels() if args.kernels is None else [
        "" if n == "default" else n for n in args.kernels.split(",")]
    stored = None if args.stored is None else (args.stored.resolve(), args.store_dir.resolve())
    with tempfile.TemporaryDirectory() as tmp:
        rows = run_all(args.seeds, names, Path(tmp), stored)
    first = names[0]
    lines = [f"kernels: {', '.join(n or 'OpenBLAS default' for n in names)}"]
    same = 0
    for seed in sorted(rows[first]):
        ref, ref_pulls = rows[first][seed]["estimate"], rows[first][seed]["pulls"]
        worst = max(abs(rows[n][seed]["estimate"][p] - v) / abs(v)
                    for n in names for p, v in ref.items())
        # the pulls carry the errors: (estimate - truth) / error
        worst_pull = max(abs(rows[n][seed]["pulls"][p] - v)
                         for n in names for p, v in ref_pulls.items())
        same += worst < 1e-8 and worst_pull < 1e-6
        pulls = "; ".join(f"{n or 'default'} {np.round(list(rows[n][seed]['pulls'].values()), 2)}"
                          for n in names)
        lines.append(f"seed {seed}: largest relative difference of the estimates "
                     f"{worst:.1e}, of the pulls {worst_pull:.1e}; pulls {pulls}")
    lines.append(f"{same} of {len(rows[first])} closures the same under every kernel "
                 "(estimates within 1e-8 relative, pulls within 1e-6)")
    text = "\n".join(lines)
    print(text)
    if args.out:
        args.out.write_text(f"# {' '.join(sys.argv)}\n{text}\n")


if __name__ == "__main__":
    main()
