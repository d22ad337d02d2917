"""Any generator through a command that writes YODA: CommandSimulator on a small real script,
and a campaign file tuning Pythia through pythia_yoda.py with two workers, a failing point and
a resume after kill -9."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

import bayestune as bt
from bayestune.exceptions import StoreError
from bayestune.hep import Histogram, HistogramObjective
from bayestune.hep.command import CommandError, CommandSimulator, read_params, write_params
from bayestune.objective import evaluate
from bayestune.store import CampaignStore

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "command_generator"

# a generator in miniature: a quadratic response with noise from the run's seed, written as
# YODA with bayestune's writer; it crashes, hangs or writes nothing on request
RESPONSE = """
import numpy as np
from bayestune.hep import Histogram, write_yoda


def respond(p, seed, outdir):
    noise = np.random.default_rng(seed).normal(0.0, 0.01, 3)
    values = 1.0 + (p["x"] - 0.3) ** 2 + np.array([0.0, 0.5, 1.0]) * p["x"] + noise
    write_yoda([Histogram.from_edges("/TOY/d01-x01-y01", [0, 1, 2, 3], values, [0.01] * 3)],
               outdir / "toy.yoda")
"""
TOY = RESPONSE + textwrap.dedent("""
    import json, sys, time
    from pathlib import Path
    from bayestune.hep.command import read_params

    params_path, outdir, seed = sys.argv[1], Path(sys.argv[2]), int(sys.argv[3])
    p = read_params(params_path)
    with open(Path(__file__).with_name("calls.jsonl"), "a") as log:
        log.write(json.dumps({"params": p, "seed": seed}) + "\\n")
    if p["x"] > 0.9:
        print("toy: x is above 0.9, the generator crashes", file=sys.stderr)
        sys.exit(4)
    if p.get("mode") == "hang":
        time.sleep(60)
    if p.get("mode") == "silent":
        sys.exit(0)
    respond(p, seed, outdir)
""")


@pytest.fixture
def toy(tmp_path: Path) -> Path:
    path = tmp_path / "toy.py"
    path.write_text(TOY)
    return path


def _simulator(toy: Path, **kw) -> CommandSimulator:
    return CommandSimulator(f"{{python}} {toy} {{params}} {{outdir}} {{seed}}",
                            rundir=toy.parent / "runs", **kw)


def _calls(toy: Path) -> list[dict]:
    log = toy.with_name("calls.jsonl")
    return [json.loads(s) for s in log.read_text().splitlines()] if log.exists() else []


def test_params_dat_round_trip(tmp_path):
    path = write_params({"StringZ:aLund": 0.68, "n": 3, "tune": "monash"}, tmp_path / "p.dat")
    assert path.read_text() == "StringZ:aLund 0.68\nn 3\ntune monash\n"
    assert read_params(path) == {"StringZ:aLund": 0.68, "n": 3.0, "tune": "monash"}
    with pytest.raises(ValueError, match="white space"):
        write_params({"a b": 1.0}, tmp_path / "q.dat")


def test_a_run_writes_the_point_reads_the_yoda_and_cleans_up(toy):
    sim = _simulator(toy, fixed={"mode": "ok"})
    out = sim({"x": 0.5})
    h = out["/TOY/d01-x01-y01"]
    assert h.n_bins == 3 and np.all(np.abs(h.values - [1.04, 1.29, 1.54]) < 0.05)
    call = _calls(toy)[0]
    assert call["params"] == {"mode": "ok", "x": 0.5}
    assert call["seed"] == sim.point_seed({"x": 0.5})  # the same point, the same seed
    assert 1 <= call["seed"] <= 900_000_000
    assert list((toy.parent / "runs").iterdir()) == []  # a successful run's folder is removed
    again = sim({"x": 0.5})["/TOY/d01-x01-y01"]
    np.testing.assert_array_equal(again.values, h.values)
    other = sim.replicate(seed=7)({"x": 0.5})["/TOY/d01-x01-y01"]
    assert not np.array_equal(other.values, h.values)


@pytest.mark.parametrize(("point", "timeout", "message"), [
    ({"x": 0.95}, None, r"(?s)exited with status 4 .*x is above 0.9, the generator crashes"),
    ({"x": 0.5, "mode": "hang"}, 1.0, r"timed out after 1 s"),
    ({"x": 0.5, "mode": "silent"}, None, r"left no file matching \['\*\.yoda\*'\]"),
])
def test_failures_raise_with_the_commands_last_lines_and_keep_the_run(toy, point, timeout,
                                                                      message):
    sim = _simulator(toy, timeout=timeout)
    started = time.perf_counter()
    with pytest.raises(CommandError, match=message):
        sim(point)
    assert time.perf_counter() - started < 30
    kept = list((toy.parent / "runs").iterdir())
    assert len(kept) == 1 and (kept[0] / "params.dat").exists()  # kept for inspection


def test_bad_options_name_the_option():
    with pytest.raises(ValueError, match=r"\{nevents\}.*known: \{params\}"):
        CommandSimulator("gen {nevents}")
    with pytest.raises(ValueError, match="keep must be one of"):
        CommandSimulator("gen", keep="sometimes")
    with pytest.raises(ValueError, match="timeout=-1"):
        CommandSimulator("gen", timeout=-1)
    with pytest.raises(ValueError, match="command must name a program"):
        CommandSimulator("")


def test_a_tune_records_a_crashing_point_as_failed_and_goes_on(toy):
    reference = Histogram.from_edges("/TOY/d01-x01-y01", [0, 1, 2, 3],
                                     [1.0, 1.15, 1.3], [0.02] * 3)
    objective = HistogramObjective(_simulator(toy), [reference])
    space = bt.Space([bt.Real("x", 0.0, 1.0)])
    with bt.Tuner(space, objective, seed=1, n_initial=4) as tuner:
        tuner.add({"x": 0.95}, evaluate(objective, {"x": 0.95}))
        result = tuner.run(5, n_workers=2)
    failed = [t for t in result.history if t.value is None]
    assert len(failed) == 1 and "generator crashes" in failed[0].error
    assert len(result.history.completed) == 4


def _campaign(tmp_path: Path, n_evals: int) -> Path:
    from bayestune.hep import find_data_dir

    try:
        data = find_data_dir()
    except FileNotFoundError as exc:
        pytest.skip(f"LEP reference data not available: {exc}")
    for name in ("pythia_yoda.py", "weights.txt", "campaign.toml"):
        shutil.copy(EXAMPLE / name, tmp_path / name)
    text = (tmp_path / "campaign.toml").read_text()
    text = text.replace("n_evals = 12", f"n_evals = {n_evals}")
    text = text.replace("--events {n_events}",
                        "--events {n_events} --fail-above StringZ:bLund=1.4")
    text = text.replace('seed = 1\n', 'seed = 1\nstart = [{"TimeShower:alphaSvalue" = 0.13, '
                        '"StringZ:bLund" = 1.45}]\n', 1)
    (tmp_path / "campaign.toml").write_text(text)
    os.environ.setdefault("BAYESTUNE_LEP_DATA", str(data))
    return tmp_path / "campaign.toml"


@pytest.mark.slow
def test_campaign_tunes_pythia_through_a_command_and_resumes_after_kill_9(tmp_path):
    pytest.importorskip("pythia8mc")
    campaign = _campaign(tmp_path, 10)
    store = tmp_path / "campaign.sqlite"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cli = [sys.executable, "-m", "bayestune.cli"]
    proc = subprocess.Popen([*cli, "run", str(campaign), "-q"], cwd=tmp_path, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)

    def finished() -> int:
        try:  # the campaign may be creating the store (the file exists, its tables not yet)
            with CampaignStore.open(store) as st:
                return st.history().n_finished
        except StoreError:
            return 0

    deadline = time.time() + 300
    while finished() < 4 and time.time() < deadline and proc.poll() is None:
        time.sleep(0.5)
    assert proc.poll() is None, proc.communicate()
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    with CampaignStore.open(store) as st:
        before = {t.number: t.value for t in st.history() if t.status.name != "PENDING"}
    assert len(before) >= 4
    done = subprocess.run([*cli, "run", str(campaign), "-q"], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    with CampaignStore.open(store) as st:
        history = st.history()
    assert len(history) == 10 and history.n_finished == 10
    for t in history:  # the runs finished before the kill are kept, not redone
        if t.number in before:
            assert t.value == before[t.number]
    failed = [t for t in history if t.value is None]
    assert history[0].value is None and history[0].params["StringZ:bLund"] == 1.45
    for t in failed:  # the start point, and any other the tuner tried above the limit
        assert "is above 1.4: giving up" in t.error and t.params["StringZ:bLund"] > 1.4
    assert len(history.completed) >= 6
    best = min(t.value for t in history if t.value is not None)
    assert best < 200  # 1-T and N_ch: 42 bins; far points give several hundred


def test_a_dask_cluster_runs_the_command_objective(toy):
    distributed = pytest.importorskip("distributed")
    reference = Histogram.from_edges("/TOY/d01-x01-y01", [0, 1, 2, 3],
                                     [1.0, 1.15, 1.3], [0.02] * 3)
    objective = HistogramObjective(_simulator(toy), [reference])
    space = bt.Space([bt.Real("x", 0.0, 0.8)])
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster, \
            distributed.Client(cluster) as client:
        result = bt.Tuner(space, objective, seed=2, n_initial=3).run(4, executor=client)
    assert len(result.history.completed) == 4
    assert len({c["seed"] for c in _calls(toy)}) == 4  # four points, each its own seed


# ------------------------------------------------------------------ a Professor scan
TOY_CAMPAIGN = """
[campaign]
n_evals = {n_evals}
seed = 3

[[parameters]]
name = "x"
type = "real"
low = 0.0
high = 0.8

[objective]
type = "command"
command = "{{python}} toy.py {{params}} {{outdir}} {{seed}}"
reference = "ref.yoda"
"""


def _toy_campaign(tmp_path: Path, toy: Path, n_evals: int) -> Path:
    from bayestune.hep import write_yoda

    write_yoda([Histogram.from_edges("/TOY/d01-x01-y01", [0, 1, 2, 3], [1.0, 1.15, 1.3],
                                     [0.02] * 3)], tmp_path / "ref.yoda", ref=True)
    path = tmp_path / "c.toml"
    path.write_text(TOY_CAMPAIGN.format(n_evals=n_evals))
    return path


def _scan(tmp_path: Path, toy: Path, n: int) -> Path:
    """A Professor-style scan of ``n`` runs made with the toy generator."""
    scan = tmp_path / "scan"
    generator: dict = {}
    exec(RESPONSE, generator)  # the toy's response, run here instead of in 30 processes
    for i, x in enumerate(np.linspace(0.02, 0.78, n)):
        run = scan / f"{i:04d}"
        run.mkdir(parents=True)
        write_params({"x": float(x), "mode": "scan"}, run / "params.dat")
        generator["respond"]({"x": float(x)}, 100 + i, run)
    (scan / "0007" / "toy.yoda").unlink()  # a run whose output was lost
    return scan


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "bayestune.cli", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=600)


def test_a_professor_scan_of_30_runs_imports_and_the_campaign_continues_from_it(tmp_path,
                                                                                   toy):
    campaign = _toy_campaign(tmp_path, toy, 34)
    scan = _scan(tmp_path, toy, 30)
    refused = _cli("import", str(campaign), str(scan), cwd=tmp_path)
    assert refused.returncode != 0 and "sets ['mode']" in refused.stderr  # not tuned
    assert not (tmp_path / "c.sqlite").exists()  # a bad scan records nothing
    done = _cli("import", str(campaign), str(scan), "--drop", "mode", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "29 runs imported, 1 recorded as failed" in done.stdout
    again = _cli("import", str(campaign), str(scan), "--drop", "mode", cwd=tmp_path)
    assert "30 already in the store" in again.stdout
    n_scan_calls = len(_calls(toy))
    run = _cli("run", str(campaign), "-q", cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    assert len(_calls(toy)) - n_scan_calls == 4  # only the new trials ran the generator
    with CampaignStore.open(tmp_path / "c.sqlite") as st:
        history = st.history()
    assert len(history) == 34
    assert [t.source for t in history[:30]] == [f"import:{i:04d}" for i in range(30)]
    assert history[7].value is None and "no file matching" in history[7].error
    assert all(t.number >= 30 and not t.source.startswith("import:") for t in history[30:])
    # the imported chi2 is the objective's: a run of the scan re-evaluated agrees exactly
    objective = HistogramObjective(_simulator(toy), [Histogram.from_edges(
        "/TOY/d01-x01-y01", [0, 1, 2, 3], [1.0, 1.15, 1.3], [0.02] * 3)])
    hist = bt.hep.read_yoda(tmp_path / "scan" / "0003" / "toy.yoda")
    assert history[3].value == pytest.approx(objective.evaluation(hist).value, rel=1e-12)


def test_a_generator_tune_counts_imported_runs_as_its_explore_stage(tmp_path, toy):
    campaign = _toy_campaign(tmp_path, toy, 60)
    method = '\n[method]\ntype = "generator"\nexplore = { runs = 20, engine = "gp" }\n'
    campaign.write_text(campaign.read_text() + method)
    scan = _scan(tmp_path, toy, 30)
    assert _cli("import", str(campaign), str(scan), "--drop", "mode", cwd=tmp_path).returncode == 0
    small = tmp_path / "small.toml"  # 30 imported runs leave no room for the local rounds
    small.write_text(campaign.read_text().replace("n_evals = 60", "n_evals = 35"))
    imported = _cli("import", str(small), str(scan), "--drop", "mode", "--store", "s.sqlite",
                    cwd=tmp_path)
    assert imported.returncode == 0
    done = _cli("run", str(small), "--store", "s.sqlite", "-q", cwd=tmp_path)
    assert done.returncode != 0 and "raise n_evals to at least 38" in done.stderr
    run = _cli("run", str(campaign), "-q", cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    assert "explore      30" in run.stdout  # the scan is the explore stage
    with CampaignStore.open(tmp_path / "c.sqlite") as st:
        history = st.history()
    assert len(history) <= 60 and history.n_finished == len(history)
    assert all(t.source.startswith("refine:") or t.source.startswith("probe:")
               for t in history[30:])
