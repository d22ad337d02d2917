"""Campaigns under hostile conditions, with real processes, signals and SQLite files: two
writers on one store, points that kill the driver, stores that name code, damaged and
foreign databases, dead drivers' workers, and bad input refused before anything runs."""

from __future__ import annotations

import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from campaigns import BRANIN as CLI_BRANIN

import bayestune as bt
from bayestune import CampaignStore, Real, Space, StoreError, Tuner
from bayestune.objective import Evaluation

SPACE = Space([Real("x", 0.0, 1.0), Real("y", 0.0, 1.0)])


def bowl(p):
    return (p["x"] - 0.3) ** 2 + (p["y"] - 0.6) ** 2


def _script(tmp_path: Path, name: str, body: str) -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(body))
    return path


def _calls(log: Path) -> list[dict]:
    return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []


def _wait_for(predicate, seconds: float = 60.0) -> None:
    deadline = time.time() + seconds
    while time.time() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError("timed out waiting")


SLOW_CAMPAIGN = """
    import json, sys, time
    from bayestune import Real, Space, Tuner

    store, log, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
    seconds = float(sys.argv[4]) if len(sys.argv) > 4 else 0.3
    space = Space([Real("x", 0.0, 1.0), Real("y", 0.0, 1.0)])

    def objective(p):
        with open(log, "a") as fh:
            fh.write(json.dumps(p) + "\\n")
        time.sleep(seconds)
        return (p["x"] - 0.3) ** 2 + (p["y"] - 0.6) ** 2

    Tuner(space, objective, store=store, seed=42).run(n)
"""


# ------------------------------------------------------------------- two writers
def test_a_second_writer_is_refused_and_the_objective_runs_exactly_n_times(tmp_path):
    store, log = tmp_path / "s.sqlite", tmp_path / "calls.jsonl"
    script = _script(tmp_path, "campaign.py", SLOW_CAMPAIGN)
    # one second per evaluation: the first campaign is still running (10 s and more) when
    # the second one, started after its second evaluation, tries to write
    first = subprocess.Popen([sys.executable, str(script), str(store), str(log), "12", "1.0"])
    _wait_for(lambda: len(_calls(log)) >= 2)
    second = subprocess.run([sys.executable, str(script), str(store), str(log), "12"],
                            capture_output=True, text=True, timeout=120)
    assert first.poll() is None, "the first campaign ended before the second one wrote"
    assert first.wait(timeout=120) == 0
    assert second.returncode != 0
    last = second.stderr.strip().splitlines()[-1]
    assert "StoreError" in last and str(store) in last and f"process {first.pid}" in last
    history = CampaignStore(store, SPACE).history()
    assert len(history.completed) == 12 and not history.pending
    assert len(_calls(log)) == 12  # nothing evaluated twice
    # the lock died with its holder: the store resumes in another process
    again = subprocess.run([sys.executable, str(script), str(store), str(log), "13"],
                           capture_output=True, text=True, timeout=120)
    assert again.returncode == 0, again.stderr
    assert len(_calls(log)) == 13


def test_one_process_may_open_its_store_twice(tmp_path):
    path = tmp_path / "s.sqlite"
    with Tuner(SPACE, bowl, store=path, seed=1) as tuner:
        tuner.run(3)
        reader = CampaignStore(path, SPACE)
        assert len(reader.history()) == 3
        reader.close()
        tuner.run(4)  # the reader's close did not take the tuner's lock away
    with Tuner(SPACE, bowl, store=path, seed=1) as tuner:
        assert tuner.run(5).history.n_finished == 5


# ------------------------------------------------------ a point that kills the driver
KILLER = """
    import json, os, sys
    from pathlib import Path
    from bayestune import Real, Space, Tuner

    store, folder = sys.argv[1], Path(sys.argv[2])
    space = Space([Real("x", 0.0, 1.0), Real("y", 0.0, 1.0)])
    marker, log = folder / "killer.json", folder / "calls.jsonl"

    def objective(p):
        calls = log.read_text().count("\\n") if log.exists() else 0
        with open(log, "a") as fh:
            fh.write(json.dumps(p) + "\\n")
        if not marker.exists() and calls == 2:
            marker.write_text(json.dumps(p))  # this point crashes the process, every time
        if marker.exists() and json.loads(marker.read_text()) == p:
            if sys.argv[3] == "interrupt":
                raise KeyboardInterrupt  # what Ctrl-C does: not a crash of the point
            os._exit(139)
        return (p["x"] - 0.3) ** 2 + (p["y"] - 0.6) ** 2

    Tuner(space, objective, store=store, seed=0).run(8)
"""


def test_a_point_that_kills_the_driver_twice_is_recorded_as_failed(tmp_path):
    store = tmp_path / "s.sqlite"
    script = _script(tmp_path, "killer.py", KILLER)
    codes = [subprocess.run([sys.executable, str(script), str(store), str(tmp_path), "crash"],
                            capture_output=True, timeout=120).returncode for _ in range(3)]
    assert codes == [139, 139, 0]  # twice on the same point, then it is skipped
    history = CampaignStore(store, SPACE).history()
    assert history.n_finished == 8 and not history.pending
    (failed,) = history.failed
    assert failed.params == json.loads((tmp_path / "killer.json").read_text())
    assert "driver process ended 2 times" in failed.error
    calls = _calls(tmp_path / "calls.jsonl")
    assert len(calls) == 7 + 2  # seven completed points once, the killer twice


def test_interrupting_the_same_point_twice_does_not_fail_it(tmp_path):
    store = tmp_path / "s.sqlite"
    script = _script(tmp_path, "killer.py", KILLER)
    for _ in range(3):
        done = subprocess.run([sys.executable, str(script), str(store), str(tmp_path),
                               "interrupt"], capture_output=True, timeout=120)
        assert done.returncode != 0  # interrupted on that point every time
    history = CampaignStore(store, SPACE).history()
    assert not history.failed and len(history.pending) == 1


# ------------------------------------------------------------- a store holds data only
BRANIN = CLI_BRANIN.replace("n_evals = 8", "n_evals = 6")


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "bayestune.cli", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=300)


def test_opening_a_store_never_runs_the_code_it_names(tmp_path):
    (tmp_path / "c.toml").write_text(BRANIN)
    assert _cli("run", "c.toml", "-q", cwd=tmp_path).returncode == 0
    evil = BRANIN.replace('function = "bayestune.testfunctions:branin"\noptions = {}',
                          'function = "os:system"\noptions = {command = "touch PWNED"}')
    with sqlite3.connect(tmp_path / "c.sqlite") as conn:
        (meta,) = conn.execute("SELECT value FROM meta WHERE key = 'metadata'").fetchone()
        conn.execute("UPDATE meta SET value = ? WHERE key = 'metadata'",
                     (json.dumps({**json.loads(meta), "campaign": evil}),))
    for command in (["resume", "c.sqlite", "--evals", "8"], ["status", "c.sqlite"],
                    ["report", "c.sqlite", "--out", "rep", "-q"]):
        done = _cli(*command, cwd=tmp_path)
        assert not (tmp_path / "PWNED").exists(), command
        if command[0] == "resume":
            assert done.returncode == 2 and "'os:system'" in done.stderr
    assert _cli("status", "c.sqlite", cwd=tmp_path).returncode == 0


def test_an_edited_objective_is_refused_on_the_same_store(tmp_path):
    (tmp_path / "c.toml").write_text(BRANIN)
    assert _cli("run", "c.toml", "-q", cwd=tmp_path).returncode == 0
    (tmp_path / "c.toml").write_text(BRANIN.replace("options = {}", "options = {a = 2.0}"))
    done = _cli("run", "c.toml", "--evals", "8", "-q", cwd=tmp_path)
    assert done.returncode == 2 and "[objective] differs" in done.stderr
    assert "options" in done.stderr
    fresh = _cli("run", "c.toml", "--store", "other.sqlite", "--evals", "2", "-q", cwd=tmp_path)
    assert "[objective] differs" not in fresh.stderr


# ---------------------------------------------------------------- the store's file
def test_after_kill_9_the_sqlite_file_alone_holds_the_finished_trials(tmp_path):
    store, log = tmp_path / "s.sqlite", tmp_path / "calls.jsonl"
    script = _script(tmp_path, "campaign.py", SLOW_CAMPAIGN)
    proc = subprocess.Popen([sys.executable, str(script), str(store), str(log), "40"])
    _wait_for(lambda: len(_calls(log)) >= 7)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    copy = tmp_path / "copy" / "s.sqlite"
    copy.parent.mkdir()
    shutil.copy(store, copy)  # without s.sqlite-wal
    assert len(CampaignStore(copy, SPACE).history().completed) >= 6


def test_another_applications_database_is_left_alone(tmp_path):
    path = tmp_path / "app.db"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE users (name TEXT)")
    with pytest.raises(StoreError, match="not a bayestune campaign store.*users"):
        Tuner(SPACE, bowl, store=path)
    with sqlite3.connect(path) as conn:
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}
    assert tables == {"users"}


def test_a_damaged_store_is_refused(tmp_path):
    path = tmp_path / "s.sqlite"
    with Tuner(SPACE, bowl, store=path, seed=3) as tuner:
        tuner.run(30)
    with sqlite3.connect(path) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        (page_size,) = conn.execute("PRAGMA page_size").fetchone()
        (root,) = conn.execute(
            "SELECT rootpage FROM sqlite_master WHERE name = 'trials'").fetchone()
    data = bytearray(path.read_bytes())
    offset = (root - 1) * page_size
    data[offset + 8: offset + page_size] = b"\xff" * (page_size - 8)  # scribble on a page
    path.write_bytes(bytes(data))
    with pytest.raises(StoreError, match="damaged"):
        Tuner(SPACE, bowl, store=path)


def test_a_store_that_cannot_be_written_names_its_file(tmp_path):
    path = tmp_path / "s.sqlite"
    with Tuner(SPACE, bowl, store=path, seed=3) as tuner:
        tuner.run(2)
        tuner.store._conn.execute("PRAGMA query_only = ON")  # as a read-only file would be
        with pytest.raises(StoreError, match=r"cannot write to campaign store .*s\.sqlite"):
            tuner.run(3)


# ------------------------------------------------------- workers of a dead driver
PARALLEL = """
    import os, sys, time
    from pathlib import Path
    from bayestune import Real, Space, Tuner

    folder = Path(sys.argv[2])

    def objective(p):
        (folder / f"worker-{os.getpid()}").touch()
        time.sleep(120)
        return p["x"]

    if __name__ == "__main__":
        space = Space([Real("x", 0.0, 1.0), Real("y", 0.0, 1.0)])
        Tuner(space, objective, store=sys.argv[1], seed=0).run(4, n_workers=2)
"""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # The process may exit between the signal and the read: a missing status file
    # means it is gone.
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return False
    return "zombie" not in status


@pytest.mark.skipif(sys.platform != "linux", reason="reads /proc")
def test_the_workers_of_a_killed_driver_stop(tmp_path):
    script = _script(tmp_path, "parallel.py", PARALLEL)
    driver = subprocess.Popen([sys.executable, str(script), str(tmp_path / "s.sqlite"),
                               str(tmp_path)])
    _wait_for(lambda: len(list(tmp_path.glob("worker-*"))) == 2)
    workers = [int(p.name.split("-")[1]) for p in tmp_path.glob("worker-*")]
    assert all(_alive(pid) for pid in workers)
    os.kill(driver.pid, signal.SIGKILL)
    driver.wait()
    _wait_for(lambda: not any(_alive(pid) for pid in workers), seconds=15)


# ------------------------------------------------- bad input, before anything runs
def test_bad_options_are_refused_before_the_first_evaluation():
    calls = []

    def objective(p):
        calls.append(p)
        return bowl(p)

    with pytest.raises(bt.BayestuneError, match="acquisition='foo'"):
        bt.minimize(objective, SPACE, 10, acquisition="foo")
    with pytest.raises(bt.EngineError, match="engine='foo'"):
        bt.minimize(objective, SPACE, 10, engine="foo")
    with pytest.raises(bt.BayestuneError, match="n_evals=True"):
        bt.minimize(objective, SPACE, True)
    with pytest.raises(bt.SpaceError, match="log='no'.*'x'"):
        Real("x", 0.1, 1.0, log="no")
    assert calls == []


def test_cli_flags_and_campaign_options_are_refused_before_anything_runs(tmp_path):
    (tmp_path / "c.toml").write_text(BRANIN)
    for flags, message in ((["--evals", "0"], "--evals: expected a positive integer, got '0'"),
                           (["--workers", "0"], "--workers: expected a positive integer"),
                           (["--evals", "-3"], "--evals: expected a positive integer")):
        done = _cli("run", "c.toml", *flags, cwd=tmp_path)
        assert done.returncode == 2 and message in done.stderr, (flags, done.stderr)
    (tmp_path / "c.toml").write_text(BRANIN + '\n[tuner]\nacquisition = "foo"\n')
    done = _cli("run", "c.toml", cwd=tmp_path)
    assert done.returncode == 2 and "[tuner] acquisition" in done.stderr and "'foo'" in done.stderr
    assert not (tmp_path / "c.sqlite").exists()


@pytest.mark.parametrize("returned, message", [
    ("1.5", "got '1.5' (a str)"),
    (None, "got None"),
    (1e308, "beyond the +-1e+150"),
])
def test_unusable_returns_are_failed_trials(returned, message):
    tuner = Tuner(SPACE, lambda p: returned, seed=0, max_consecutive_failures=2)
    with pytest.raises(bt.CampaignError, match="last 2 evaluations all failed"):
        tuner.run(3)
    assert all(message in t.error for t in tuner.history.failed)


def test_a_huge_value_does_not_break_later_fits():
    def objective(p):
        return 1e308 if p["x"] > 0.9 else bowl(p)

    with Tuner(SPACE, objective, seed=0) as tuner:
        result = tuner.run(12)
    assert result.success and result.history.n_finished == 12
    assert all("beyond the" in t.error for t in result.history.failed)


def test_an_evaluation_with_a_string_variance_is_a_failed_trial():
    tuner = Tuner(SPACE, lambda p: Evaluation(bowl(p), variance="0.1"), seed=0,
                  max_consecutive_failures=2)
    with pytest.raises(bt.CampaignError):
        tuner.run(2)
    assert "variance must be a number, got variance='0.1'" in tuner.history.failed[0].error


def test_points_left_in_flight_are_not_left_pending_when_the_budget_is_reached(tmp_path):
    path = tmp_path / "s.sqlite"
    with Tuner(SPACE, store=path, seed=4) as tuner:
        tuner.ask(4)  # four points in flight when this run stopped
    with Tuner(SPACE, bowl, store=path) as tuner:
        tuner.run(3, n_workers=2)
        history = tuner.history
    assert len(history.completed) == 3 and not history.pending
    (abandoned,) = history.failed
    assert abandoned.error.startswith("abandoned")


def test_an_executor_brings_its_own_worker_count():
    running, most = [0], [0]
    lock = threading.Lock()

    def objective(p):
        with lock:
            running[0] += 1
            most[0] = max(most[0], running[0])
        time.sleep(0.3)
        with lock:
            running[0] -= 1
        return bowl(p)

    with ThreadPoolExecutor(4) as pool, Tuner(SPACE, objective, seed=0, n_initial=8) as tuner:
        tuner.run(8, executor=pool)
    assert most[0] == 4


@pytest.mark.parametrize("engine", ["gp", "composite"])
def test_a_region_where_the_objective_fails_is_not_proposed_again_and_again(engine):
    """The search keeps away from points whose evaluation failed (a GP believes them at its
    mean; the composite engine keeps its distance), so a crashing corner of the box does
    not end the campaign through ten failures in a row."""
    from bayestune.hep import HistogramObjective
    from bayestune.hep.composite import CompositeChi2Engine
    from bayestune.testfunctions import GaussianPeakSimulator

    sim = GaussianPeakSimulator(n_events=2_000, seed=1)
    data = sim.replicate(seed=2, n_events=8_000)({"mean": 0.3, "width": 1.1})

    def simulate(params):
        if params["mean"] > 0.8:
            raise RuntimeError("the generator crashed")
        return sim(params)

    objective = HistogramObjective(simulate, data, keep_bins=True, keep_pulls=False)
    space = Space([Real("mean", -1.0, 1.0), Real("width", 0.5, 2.0)])
    options = {"engine": CompositeChi2Engine(space, objective)} if engine == "composite" \
        else {"surrogate": bt.SurrogateConfig(warping="chi2")}
    with Tuner(space, objective, seed=2, **options) as tuner:
        result = tuner.run(30)
    failed = result.history.failed
    assert len(result.history) == 30 and len(failed) <= 12, len(failed)


def test_the_composite_engine_copes_with_bins_that_never_fill():
    """At low statistics some bins stay empty at every point (value 0, error 0): they have
    no scale of their own, and the emulator must not divide by zero."""
    import warnings

    import numpy as np

    from bayestune.hep import Histogram, HistogramObjective
    from bayestune.hep.composite import CompositeChi2Engine
    from bayestune.testfunctions import GaussianPeakSimulator

    sim = GaussianPeakSimulator(n_events=500, seed=1, edges=np.linspace(-3.0, 9.0, 25))
    data = sim.replicate(seed=2, n_events=2_000)({"mean": 0.3, "width": 1.1})
    data = {n: h.with_errors(np.maximum(h.errors, 1e-3)) for n, h in data.items()}
    assert isinstance(data["shape"], Histogram) and np.all(data["shape"].values[-5:] == 0)
    objective = HistogramObjective(sim, data, keep_bins=True, keep_pulls=False)
    space = Space([Real("mean", -1.0, 1.0), Real("width", 0.5, 2.0)])
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        with Tuner(space, objective, seed=3,
                   engine=CompositeChi2Engine(space, objective)) as tuner:
            result = tuner.run(10)
    assert len(result.history.completed) == 10


def test_opening_a_store_that_a_campaign_is_still_creating_says_so(tmp_path):
    """An SQLite file without the store's tables (yet) is refused with a hint that a
    campaign may be creating it, not only 'not a store'."""
    path = tmp_path / "s.sqlite"
    sqlite3.connect(path).close()  # the file exists, its tables are not written yet
    with pytest.raises(StoreError, match="not a bayestune campaign store.*creating it"):
        CampaignStore.open(path)
