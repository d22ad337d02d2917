"""The examples run as documented (at a small budget)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

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


def _needs_pythia_and_data():

    pytest.importorskip("pythia8mc")
    from bayestune.hep import find_data_dir

    try:
        find_data_dir()
    except FileNotFoundError as exc:
        pytest.skip(f"LEP reference data not available: {exc}")


def test_pythia_closure_example_runs(tmp_path):
    _needs_pythia_and_data()
    plot = tmp_path / "pulls.png"
    cmd = [sys.executable, str(ROOT / "examples" / "pythia_closure.py"), "--events", "400",
           "--evals", "10", "--observables", "shapes", "--quiet", "--plot", str(plot)]
    run = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert run.returncode in (0, 1), run.stderr  # 1 = closure failed at this tiny budget
    assert "pull" in run.stdout and "chi2 at truth" in run.stdout
    assert plot.stat().st_size > 1000


def test_pythia_aleph_example_runs(tmp_path):
    _needs_pythia_and_data()
    plot, yoda = tmp_path / "ratios.png", tmp_path / "tune.yoda"
    cmd = [sys.executable, str(ROOT / "examples" / "pythia_aleph.py"), "--events", "400",
           "--evals", "8", "--quiet", "--plot", str(plot), "--yoda", str(yoda),
           "--store", str(tmp_path / "aleph.sqlite")]
    run = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr
    assert "Monash 2013" in run.stdout and "chi2/bin" in run.stdout
    assert plot.stat().st_size > 1000
    from bayestune.hep import read_yoda

    assert "/ALEPH_1996_S3486095/d03-x01-y01" in read_yoda(yoda)


def test_nn_hyperparameters_example_runs(tmp_path):
    import json

    pytest.importorskip("sklearn")
    plot, out = tmp_path / "roc.png", tmp_path / "nn.json"
    cmd = [sys.executable, str(ROOT / "examples" / "nn_hyperparameters.py"), "--epochs", "3",
           "--configs", "4", "--train", "800", "--valid", "800", "--min-epochs", "1",
           "--methods", "random", "gp+asha", "--plot", str(plot), "--json", str(out)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    assert "ROC curves written" in proc.stdout and plot.stat().st_size > 5000
    summary = json.loads(out.read_text())
    assert summary["budget"] == 12
    row = summary["rows"][0]
    assert 0.5 < row["random"] <= 1 and 0.5 < row["gp+asha"] <= 1
    assert "gp+asha_epochs_to_random_final" in row


@pytest.mark.slow
def test_pythia_lep_tune_example_writes_the_tune_and_its_eigentunes(tmp_path):
    """The ten-parameter real tune's workflow at a token budget (its minimum, 140 runs of
    300 events): the stage log, the chi2 per observable of Monash and the tune, the runs and
    events, and the tune as Pythia settings with one pair of eigentunes per parameter."""
    _needs_pythia_and_data()
    from bayestune.hep import read_cmnd

    out = tmp_path / "tune"
    cmd = [sys.executable, str(ROOT / "examples" / "pythia_lep_tune.py"), "--quick",
           "--events", "300", "--final-events", "1000", "--workers", "2",
           "--out", str(out), "--store", str(tmp_path / "tune.sqlite")]
    run = subprocess.run(cmd, capture_output=True, text=True, timeout=1800)
    assert run.returncode == 0, run.stderr
    assert "of a budget of 140" in run.stdout and "DELPHI96_xp" in run.stdout
    assert "Delta chi2 for a shift of 0.1" in run.stdout  # the sensitivity table
    assert "the tune used 140 Pythia runs and 42,000 events" in run.stdout
    tune = read_cmnd(out / "tune.cmnd")
    assert {"StringZ:aLund", "StringFlav:mesonSvector"} <= set(tune)
    assert len(list(out.glob("eigentune_*_plus.cmnd"))) == 10
    assert (out / "tune.yoda").stat().st_size > 1000
