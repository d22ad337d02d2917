"""The examples run as documented (at a small budget)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_quickstart_runs_and_resumes(tmp_path):
    store = tmp_path / "qs.sqlite"
    cmd = [sys.executable, str(ROOT / "examples" / "quickstart.py"), "--store", str(store)]
    first = subprocess.run([*cmd, "--evals", "8"], capture_output=True, text=True, timeout=300)
    assert first.returncode == 0, first.stderr
    assert "n_evals  = 8 (0 failed)" in first.stdout
    second = subprocess.run([*cmd, "--evals", "12"], capture_output=True, text=True,
                            timeout=300)
    assert second.returncode == 0, second.stderr
    assert "n_evals  = 12 (0 failed)" in second.stdout
    assert "learned length scales" in second.stdout
