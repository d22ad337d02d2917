"""What the closure-series benchmarks share: seeds, their JSON-lines results, pull summaries.

A series writes one JSON line per finished closure; a rerun skips the seeds already there.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import numpy as np
from scipy.stats import chi2, norm


def parse_seeds(text: str) -> list[int]:
    """``"1-5,9"`` -> ``[1, 2, 3, 4, 5, 9]``."""
    out: list[int] = []
    for part in text.split(","):
        a, _, b = part.partition("-")
        out.extend(range(int(a), int(b or a) + 1))
    return out


def read_rows(path: Path) -> list[dict[str, Any]]:
    """The closures recorded in ``path`` (none when it does not exist)."""
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def resume_arguments(parser: argparse.ArgumentParser) -> None:
    """The arguments of a diagnostic that resumes a recorded series from its stores:
    ``--seeds``, ``--results`` (the series' file), ``--store-dir`` and ``--options`` (the
    method's options it was run with, as JSON)."""
    parser.add_argument("--seeds", required=True)
    parser.add_argument("--results", type=Path, required=True)
    parser.add_argument("--store-dir", type=Path, required=True)
    parser.add_argument("--options", default="{}")


def rows_by_seed(path: Path) -> dict[int, dict[str, Any]]:
    """The closures recorded in ``path``, by seed."""
    return {row["seed"]: row for row in read_rows(path)}


def append_row(path: Path, row: dict[str, Any]) -> None:
    with open(path, "a") as f:
        f.write(json.dumps(row) + "\n")


def pull_moments(pulls: np.ndarray) -> str:
    """Pull mean and width of all ``pulls`` (one row per closure), with standard errors
    that count each closure as one draw.

    A closure's pulls are correlated (along a valley, two parameters' estimates move
    together), so the errors of a pull per draw would be too small: the mean's error is the
    spread of the closures' mean pulls over the square root of their number, and the
    width's the spread of the width over 2000 resamplings of the closures (seeded, so the
    report is the same on every machine)."""
    rows = np.atleast_2d(np.asarray(pulls, dtype=float))
    flat = rows.ravel()
    sd = flat.std(ddof=1)
    n_c = len(rows)
    if n_c < 2:
        return (f"pull mean {flat.mean():+.3f}, width {sd:.3f} (one closure: no errors "
                f"counting closures as draws)")
    mean_se = rows.mean(axis=1).std(ddof=1) / np.sqrt(n_c)
    rng = np.random.default_rng(20261203)
    widths = [rows[rng.integers(0, n_c, n_c)].ravel().std(ddof=1) for _ in range(2000)]
    return (f"pull mean {flat.mean():+.3f} +- {mean_se:.3f}, width {sd:.3f} +- "
            f"{np.std(widths):.3f} (errors per closure)")


def joint_limit(k: int, n_sigma: float = 2.0) -> float:
    """The Delta chi2 of the joint ``n_sigma`` region of ``k`` parameters (9.72 for 2 sigma
    and four parameters): the truth is inside it with the probability of ``|z| <= n_sigma``."""
    return float(chi2.ppf(2.0 * norm.cdf(n_sigma) - 1.0, k))
