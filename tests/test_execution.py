"""Parallel campaigns: executors, batch/async proposals, timeouts, dead workers, Ctrl-C."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from bayestune import BayestuneError, CampaignError, Real, Space, Status, Tuner
from bayestune.execution import (
    ExecutionConfig,
    IsolatedProcessExecutor,
    WorkerDiedError,
)

SPACE = Space([Real("x", 0.0, 1.0), Real("y", 0.0, 1.0)])


# Objectives live at module level so that worker processes can import them.
def bowl(p):
    return (p["x"] - 0.3) ** 2 + (p["y"] - 0.6) ** 2


def crash_on_the_right(p):
    """Kills its own process for x > 0.75 (a segfault would look the same to the driver)."""
    if p["x"] > 0.75:
        os._exit(7)
    return bowl(p)


def hang_on_the_right(p):
    if p["x"] > 0.75:
        time.sleep(120)
    return bowl(p)


def always_fails(p):
    raise RuntimeError(f"simulation diverged at x={p['x']:.3f}")


class FailsOnce:
    """Fails on the first attempt at each point (remembered in files: works across processes)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def __call__(self, p):
        marker = self.folder / f"{p['x']:.12f}-{p['y']:.12f}"
        if not marker.exists():
            marker.touch()
            raise OSError("transient failure: scratch disk full")
        return bowl(p)


def _square(v):
    return v * v


def _raise(v):
    raise ValueError(f"bad value {v}")


def _sleep(seconds):
    time.sleep(seconds)
    return seconds


# ------------------------------------------------------------------------- executor
def test_isolated_executor_results_errors_and_dead_workers():
    ex = IsolatedProcessExecutor(2)
    try:
        futures = [ex.submit(_square, v) for v in range(5)]
        assert [f.result(timeout=60) for f in futures] == [0, 1, 4, 9, 16]
        with pytest.raises(ValueError, match="bad value 3"):
            ex.submit(_raise, 3).result(timeout=60)
        with pytest.raises(WorkerDiedError, match="exited with code 5"):
            ex.submit(os._exit, 5).result(timeout=60)
        # the executor is not broken by a dead worker
        assert ex.submit(_square, 7).result(timeout=60) == 49
    finally:
        ex.shutdown()


def test_isolated_executor_kills_one_running_task():
    ex = IsolatedProcessExecutor(2)
    try:
        slow, quick = ex.submit(_sleep, 120), ex.submit(_sleep, 0.1)
        deadline = time.monotonic() + 60
        while not slow.running() and time.monotonic() < deadline:
            time.sleep(0.01)
        assert ex.kill(slow)
        with pytest.raises(BayestuneError, match="stopped"):
            slow.result(timeout=30)
        assert quick.result(timeout=60) == 0.1
        assert not ex.kill(quick)  # already finished
    finally:
        ex.shutdown()


def test_isolated_executor_refuses_unpicklable_tasks():
    ex = IsolatedProcessExecutor(1)
    try:
        with pytest.raises(Exception, match="pickle|lambda"):
            ex.submit(lambda: 1)
    finally:
        ex.shutdown()


# ------------------------------------------------------------------------- campaign
def test_parallel_run_completes_and_records_dead_workers():
    tuner = Tuner(SPACE, crash_on_the_right, seed=2, n_initial=6)
    res = tuner.run(10, n_workers=2)
    hist = tuner.history
    assert hist.n_finished == 10 and not hist.pending
    assert hist.failed, "the Sobol design puts points at x > 0.75"
    for t in hist.failed:
        assert t.params["x"] > 0.75
        assert "worker died" in t.error and "exited with code 7" in t.error
    assert all(t.params["x"] <= 0.75 for t in hist.completed)
    assert res.success


def unpicklable_info(p):
    """Completes in the worker, but its result cannot travel back to the driver."""
    from bayestune import Evaluation

    return Evaluation(bowl(p), info={"callback": lambda: 0})


def test_a_result_that_cannot_come_back_from_a_worker_is_a_failed_trial(tmp_path):
    store = tmp_path / "s.sqlite"
    with Tuner(SPACE, unpicklable_info, store=store, seed=0) as tuner:
        tuner.run(4, n_workers=2)  # no AttributeError from the failure's classification
        assert tuner.history.n_finished == 4 and not tuner.history.pending
        assert len(tuner.history.failed) == 4
        assert all("pickl" in t.error.lower() for t in tuner.history.failed), \
            [t.error for t in tuner.history.failed]


def test_timeout_stops_a_hanging_evaluation():
    tuner = Tuner(SPACE, hang_on_the_right, seed=2, n_initial=6)
    start = time.monotonic()
    tuner.run(8, n_workers=2, timeout=3.0)
    elapsed = time.monotonic() - start
    hist = tuner.history
    assert hist.n_finished == 8 and hist.failed
    assert all(t.error == "timed out after 3 s" for t in hist.failed)
    assert elapsed < 100, "a hanging evaluation (120 s) must have been killed"


def test_retries_turn_transient_failures_into_completed_trials(tmp_path):
    tuner = Tuner(SPACE, FailsOnce(tmp_path), seed=3)
    tuner.run(6, n_workers=2, retries=1)
    assert len(tuner.history.completed) == 6 and not tuner.history.failed

    no_retry = Tuner(SPACE, FailsOnce(tmp_path / "again"), seed=3)
    (tmp_path / "again").mkdir()
    no_retry.run(3, executor=ThreadPoolExecutor(2))
    assert len(no_retry.history.failed) == 3
    assert all("transient failure" in t.error for t in no_retry.history.failed)


def test_retries_are_reported_in_the_failure(tmp_path):
    tuner = Tuner(SPACE, always_fails, seed=3, max_consecutive_failures=2)
    with pytest.raises(CampaignError, match="simulation diverged"):
        tuner.run(5, retries=2)
    first = tuner.history.failed[0]
    assert "after 3 attempts" in first.error


def test_a_campaign_that_always_fails_stops_in_parallel_too():
    tuner = Tuner(SPACE, always_fails, seed=1, max_consecutive_failures=4)
    with pytest.raises(CampaignError, match="last 4 evaluations all failed"):
        tuner.run(50, n_workers=2)
    assert 4 <= tuner.history.n_finished <= 6


def interrupted_at_call(n, calls):
    """The bowl, but Ctrl-C at the n-th call; ``calls`` collects the points asked for."""
    def objective(p):
        calls.append(p)
        if len(calls) == n:
            raise KeyboardInterrupt
        return bowl(p)
    return objective


def test_thread_pool_executor_accepts_closures():
    offset = 0.25
    tuner = Tuner(SPACE, lambda p: bowl(p) + offset, seed=4)
    with ThreadPoolExecutor(max_workers=3) as pool:
        res = tuner.run(9, n_workers=3, executor=pool)
    assert len(tuner.history.completed) == 9
    assert res.fun >= offset


def test_a_keyboard_interrupt_reaching_the_driver_from_a_worker_stops_the_campaign(tmp_path):
    # Ctrl-C can land while the driver reads a finished evaluation's result, where a
    # worker's failure is caught; it must stop the campaign there too, not be recorded as a
    # failed point (the campaign would then go on to its end and exit normally)
    store = tmp_path / "c.sqlite"
    with ThreadPoolExecutor(max_workers=2) as pool, pytest.raises(KeyboardInterrupt):
        tuner = Tuner(SPACE, interrupted_at_call(4, []), seed=4, store=store)
        tuner.run(9, n_workers=2, executor=pool)
    history = Tuner(SPACE, bowl, seed=4, store=store).history
    assert not history.failed, "an interrupt is not a failure of the point"
    # the three calls before the interrupted fourth have started, but the other worker's
    # may still run when the interrupt arrives (a loaded machine schedules it late): at least
    # 4 - 2 points are complete, and the campaign stopped before its end
    assert 2 <= len(history.completed) < 9


def test_unpicklable_objective_is_refused_with_a_clear_error():
    tuner = Tuner(SPACE, lambda p: 1.0, seed=4)
    with pytest.raises(BayestuneError, match="cannot be pickled.*module level"):
        tuner.run(4, n_workers=2)
    assert len(tuner.history) == 0


def test_batch_mode_proposes_whole_batches():
    tuner = Tuner(SPACE, bowl, seed=5, n_initial=4)
    tuner.run(12, n_workers=4, batch=True, executor=ThreadPoolExecutor(4))
    hist = tuner.history
    assert hist.n_finished == 12
    for start in range(0, 12, 4):
        batch = hist[start:start + 4]
        # every point of a batch was proposed before any of them finished
        assert max(t.created for t in batch) <= min(t.finished for t in batch)
    sources = [t.source for t in hist]
    assert sources[:4] == ["design:sobol"] * 4 and all(s.startswith("gp:") for s in sources[4:])


def test_async_mode_accounts_for_running_points():
    tuner = Tuner(SPACE, bowl, seed=6, n_initial=4)
    with ThreadPoolExecutor(3) as pool:
        tuner.run(10, n_workers=3, executor=pool)
    xs = [(round(t.params["x"], 6), round(t.params["y"], 6)) for t in tuner.history]
    assert len(set(xs)) == len(xs), "a pending point must not be proposed again"


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"n_workers": 0}, "n_workers must be a positive integer, got n_workers=0"),
        ({"timeout": -1}, "timeout must be a positive number of seconds, got timeout=-1"),
        ({"retries": 1.5}, "retries must be a non-negative integer, got retries=1.5"),
        ({"executor": "cluster"}, "executor must be a concurrent.futures.Executor"),
    ],
)
def test_execution_options_are_validated(options, message):
    with pytest.raises(BayestuneError, match=message):
        ExecutionConfig(**options)
    with pytest.raises(BayestuneError, match=message):
        Tuner(SPACE, bowl).run(3, **options)


@pytest.fixture(scope="module")
def dask_client():
    distributed = pytest.importorskip("distributed")
    import dask

    # a task that kills its worker fails at once instead of being retried on the others
    with dask.config.set({"distributed.scheduler.allowed-failures": 0}), \
            distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                     dashboard_address=None) as cluster, \
            distributed.Client(cluster) as client:
        yield client


def test_dask_local_cluster_runs_a_campaign(dask_client):
    offset = 0.5  # a closure: dask ships it with cloudpickle
    tuner = Tuner(SPACE, lambda p: bowl(p) + offset, seed=7, n_initial=4)
    res = tuner.run(8, n_workers=2, executor=dask_client)
    pids = dask_client.run(os.getpid)
    assert len(tuner.history.completed) == 8
    assert res.fun >= offset
    assert len(pids) == 2 and os.getpid() not in pids.values()


def test_dask_worker_that_dies_and_a_timeout_are_recorded(dask_client):
    tuner = Tuner(SPACE, crash_on_the_right, seed=2, n_initial=6)
    tuner.run(8, n_workers=2, executor=dask_client)
    assert tuner.history.n_finished == 8 and tuner.history.failed
    for t in tuner.history.failed:
        assert t.params["x"] > 0.75 and t.error.startswith("worker died")
    dask_client.wait_for_workers(2, timeout=60)  # the nanny restarts the dead worker

    hanging = Tuner(SPACE, hang_on_the_right, seed=2, n_initial=6)
    hanging.run(6, n_workers=2, executor=dask_client, timeout=3.0)
    assert hanging.history.n_finished == 6
    assert [t.error for t in hanging.history.failed] == ["timed out after 3 s"] * len(
        hanging.history.failed) and hanging.history.failed


# ------------------------------------------------------------------------- Ctrl-C
SCRIPT = textwrap.dedent(
    """
    import signal, sys, time
    from bayestune import Real, Space, Tuner

    # A shell that starts a job in the background makes it ignore SIGINT, and children
    # inherit that; restore the interactive behaviour (Ctrl-C -> KeyboardInterrupt).
    signal.signal(signal.SIGINT, signal.default_int_handler)

    def slow_bowl(p):
        time.sleep(0.4)
        return (p["x"] - 0.3) ** 2 + (p["y"] - 0.6) ** 2

    if __name__ == "__main__":
        space = Space([Real("x", 0.0, 1.0), Real("y", 0.0, 1.0)])
        with Tuner(space, slow_bowl, seed=11, store=sys.argv[1]) as tuner:
            tuner.run(int(sys.argv[2]), n_workers=2)
        print("finished")
    """
)


def _count(store: Path, status: str) -> int:
    if not store.exists():
        return 0
    conn = sqlite3.connect(store)
    try:
        return conn.execute("SELECT COUNT(*) FROM trials WHERE status = ?",
                            (status,)).fetchone()[0]
    except sqlite3.OperationalError:  # the campaign has not created its tables yet
        return 0
    finally:
        conn.close()


def test_sigint_stops_cleanly_and_resume_finishes_without_duplicates(tmp_path):
    script, store = tmp_path / "campaign.py", tmp_path / "campaign.sqlite"
    script.write_text(SCRIPT)
    n_evals = 40  # long enough that the interrupt lands mid-campaign on a loaded machine
    proc = subprocess.Popen([sys.executable, str(script), str(store), str(n_evals)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if _count(store, "complete") >= 5:
            break
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode != 0 and "KeyboardInterrupt" in err
    completed_before = _count(store, "complete")
    assert 5 <= completed_before < n_evals
    with sqlite3.connect(store) as conn:
        before = conn.execute("SELECT number, params, value FROM trials "
                              "WHERE status = 'complete'").fetchall()
        in_flight = conn.execute("SELECT number, params FROM trials "
                                 "WHERE status = 'pending'").fetchall()

    done = subprocess.run([sys.executable, str(script), str(store), str(n_evals)],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    with sqlite3.connect(store) as conn:
        rows = conn.execute("SELECT number, params, value, status FROM trials").fetchall()
    assert len(rows) == n_evals and all(r[3] == "complete" for r in rows)
    assert len({r[1] for r in rows}) == n_evals, "no point evaluated twice"
    after = {r[0]: r[1:3] for r in rows}
    assert all(after[n] == (p, v) for n, p, v in before), "finished work is untouched"
    # the points in flight at the interrupt were evaluated on resume, under their numbers
    assert all(after[n][0] == p for n, p in in_flight)


def test_interrupted_trials_stay_pending_in_process(tmp_path):
    calls = []
    store = tmp_path / "c.sqlite"
    with Tuner(SPACE, interrupted_at_call(4, calls), seed=8, store=store) as tuner, \
            pytest.raises(KeyboardInterrupt):
        tuner.run(8)
    with Tuner(SPACE, bowl, seed=8, store=store) as tuner:
        hist = tuner.history
        assert len(hist.completed) == 3 and len(hist.pending) == 1
        tuner.run(8)
        assert len(tuner.history) == 8 and tuner.history.n_finished == 8
        assert tuner.history[3].params == calls[3]
        assert tuner.history[3].status is Status.COMPLETE
