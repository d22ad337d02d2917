"""A new closure store holding only the explore stage of a finished one.

The explore stage of a generator tune does not depend on the refine and probe options: a
closure of the same seed, budget and explore options run with other local options makes the
same explore runs. This copies ``SOURCE`` to ``TARGET`` without its local rounds (trials whose
source is ``refine:...`` or ``probe:...``) and records ``--options`` as the store's method,
so that ``bench_closure_random.py`` resumed on ``TARGET`` with those options spends only the
local rounds' runs -- a comparison of local stages at 60 % of a closure's cost.

    python benchmarks/store_from_explore.py STORES/seed435.sqlite NEW/seed435.sqlite \\
        --options '{"refine": {"design": "plausible"}}'
"""

from __future__ import annotations

import argparse
import json
import shutil
import sqlite3
from pathlib import Path

from bayestune.hep import GeneratorTuning
from bayestune.hep.tuning.method import LOCAL_LABELS


def strip_local(source: Path, target: Path, options: dict) -> int:
    """Copy ``source`` to ``target`` without its local rounds, with ``options`` as its
    method; returns the number of explore trials kept."""
    if target.exists():
        raise FileExistsError(f"{target} exists: remove it or choose another target")
    target.parent.mkdir(parents=True, exist_ok=True)
    with sqlite3.connect(source) as src, sqlite3.connect(target) as dst:
        src.backup(dst)
    shutil.copystat(source, target)
    with sqlite3.connect(target) as db:
        local = [n for n, s in db.execute("SELECT number, source FROM trials")
                 if s.startswith(LOCAL_LABELS)]
        for table in ("trials", "reports", "starts"):
            db.executemany(f"DELETE FROM {table} WHERE number = ?", [(n,) for n in local])
        meta = json.loads(db.execute("SELECT value FROM meta WHERE key = 'metadata'")
                          .fetchone()[0])
        meta["generator_tuning"]["method"] = GeneratorTuning.from_dict(options).to_dict()
        db.execute("UPDATE meta SET value = ? WHERE key = 'metadata'", (json.dumps(meta),))
        return db.execute("SELECT COUNT(*) FROM trials").fetchone()[0]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("source", type=Path)
    parser.add_argument("target", type=Path)
    parser.add_argument("--options", default="{}", help="the new method's options (JSON)")
    args = parser.parse_args(argv)
    kept = strip_local(args.source, args.target, json.loads(args.options))
    print(f"{args.target}: {kept} explore trials kept")


if __name__ == "__main__":
    main()
