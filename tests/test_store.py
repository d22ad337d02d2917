"""Campaign store: durability, resume after kill -9, refusal of mismatched campaigns."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from bayestune import CampaignStore, Real, Space, Status, StoreError, Tuner
from bayestune.objective import Outcome

SPACE = Space([Real("a", -2, 2), Real("b", -2, 2)])


def quadratic(p):
    return (p["a"] - 0.3) ** 2 + (p["b"] + 1.0) ** 2


def test_every_tell_is_committed_and_visible_to_a_new_connection(tmp_path):
    path = tmp_path / "c.sqlite"
    tuner = Tuner(SPACE, quadratic, store=path, seed=1)
    trial = tuner.ask()
    other = CampaignStore(path, SPACE)
    assert other.history()[0].status is Status.PENDING
    tuner.tell(trial, 1.5)
    again = other.history()[0]
    assert again.status is Status.COMPLETE and again.value == 1.5


def test_history_parses_a_row_once_and_sees_every_change(tmp_path):
    store = CampaignStore(tmp_path / "c.sqlite", SPACE)
    done = store.add_pending({"a": 0.1, "b": 0.2}, "design", None)
    store.finish(done.number, Outcome(Status.COMPLETE, value=1.0, info={"bins": [1, 2]}))
    running = store.add_pending({"a": 0.3, "b": 0.4}, "design", None)
    first = store.history()
    store.add_report(running.number, 1.0, 0.5)
    second = store.history()
    assert second[0] is first[0]  # unchanged: not parsed again
    assert first[1].reports == () and second[1].reports == ((1.0, 0.5),)
    store.finish(running.number, Outcome(Status.COMPLETE, value=2.0))
    third = store.history()
    assert third[1].status is Status.COMPLETE and third[1].value == 2.0
    assert third[1].reports == ((1.0, 0.5),)


def test_store_records_everything_about_a_trial(tmp_path):
    path = tmp_path / "c.sqlite"
    tuner = Tuner(SPACE, store=path, seed=3)
    t0 = tuner.ask()
    tuner.tell(t0, Outcome(Status.COMPLETE, value=2.0, variance=0.1, info={"chi2": [1, 2]},
                           duration=1.25))
    t1 = tuner.ask()
    tuner.tell(t1, Outcome.failed("RuntimeError: boom", duration=0.5))
    tuner.close()
    store = CampaignStore(path, SPACE)
    h = store.history()
    assert h[0].params == t0.params and h[0].value == 2.0 and h[0].variance == 0.1
    assert h[0].info == {"chi2": [1, 2]} and h[0].duration == 1.25 and h[0].finished
    assert h[1].status is Status.FAILED and h[1].error == "RuntimeError: boom"
    state = store.rng_state(1)
    assert state["bit_generator"] == "PCG64"
    assert store.seed == 3
    assert store.metadata["n_initial"] == 5


def test_resume_continues_the_same_sequence(tmp_path):
    path = tmp_path / "c.sqlite"
    first = Tuner(SPACE, quadratic, store=path, seed=7)
    first.run(8)
    first.close()
    resumed = Tuner(SPACE, quadratic, store=path)  # seed taken from the store
    resumed.run(12)
    straight = Tuner(SPACE, quadratic, seed=7)
    straight.run(12)
    assert [t.params for t in resumed.history] == [t.params for t in straight.history]


def test_pending_points_are_reissued_after_resume(tmp_path):
    path = tmp_path / "c.sqlite"
    tuner = Tuner(SPACE, store=path, seed=2)
    lost = tuner.ask(2)
    tuner.close()
    resumed = Tuner(SPACE, store=path)
    again = resumed.ask(3)
    assert [t.number for t in again[:2]] == [t.number for t in lost]
    assert again[2].number == 2


def test_store_for_a_different_space_is_refused(tmp_path):
    path = tmp_path / "c.sqlite"
    Tuner(SPACE, store=path, seed=0).close()
    other = Space([Real("a", -2, 2), Real("b", -2, 3)])
    with pytest.raises(StoreError, match=r"different space"):
        Tuner(other, store=path)
    with pytest.raises(StoreError, match=r"created with seed=0, got seed=5"):
        Tuner(SPACE, store=path, seed=5)


def test_store_path_errors(tmp_path):
    with pytest.raises(StoreError, match="must be a file"):
        Tuner(SPACE, store=tmp_path)
    bad = tmp_path / "notsqlite.sqlite"
    bad.write_text("this is not a database" * 100)
    with pytest.raises(StoreError, match="cannot open campaign store"):
        Tuner(SPACE, store=bad)


CHILD = textwrap.dedent(
    """
    import json, sys, time
    from bayestune import Real, Space, Tuner

    store, log = sys.argv[1], sys.argv[2]
    space = Space([Real("a", -2, 2), Real("b", -2, 2)])

    def objective(p):
        with open(log, "a") as fh:
            fh.write(json.dumps(p) + "\\n")
        time.sleep(0.2)
        return (p["a"] - 0.3) ** 2 + (p["b"] + 1.0) ** 2

    Tuner(space, objective, store=store, seed=42).run(int(sys.argv[3]))
    """
)


def test_kill_minus_9_then_resume_loses_and_repeats_nothing(tmp_path):
    store, log, script = tmp_path / "c.sqlite", tmp_path / "calls.jsonl", tmp_path / "child.py"
    script.write_text(CHILD)
    proc = subprocess.Popen([sys.executable, str(script), str(store), str(log), "40"])
    deadline = time.time() + 120
    while time.time() < deadline:
        if log.exists() and len(log.read_text().splitlines()) >= 9:
            break
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL

    before = CampaignStore(store, SPACE).history()
    completed_before = {t.number: t for t in before.completed}
    assert len(completed_before) >= 8
    calls_before = len(log.read_text().splitlines())

    def objective(p):
        with log.open("a") as fh:
            fh.write(json.dumps(p) + "\n")
        return quadratic(p)

    resumed = Tuner(SPACE, objective, store=store, seed=42)
    res = resumed.run(14)
    after = res.history
    assert len(after.completed) == 14 and len(after.pending) == 0
    # nothing completed before the kill was lost or changed
    for number, trial in completed_before.items():
        assert after[number].params == trial.params and after[number].value == trial.value
    # no completed evaluation was repeated: each objective call after the resume is for a
    # point that had not been completed, and all completed points are distinct
    calls = [json.loads(line) for line in log.read_text().splitlines()]
    done_params = [t.params for t in completed_before.values()]
    assert all(c not in done_params for c in calls[calls_before:])
    assert len(calls) - calls_before == 14 - len(completed_before)
    keys = {json.dumps(t.params, sort_keys=True) for t in after.completed}
    assert len(keys) == 14
