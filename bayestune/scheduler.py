"""Early stopping: trial handles for intermediate reports, and asynchronous successive halving.

An objective that takes a second argument receives a :class:`TrialHandle`::

    def train(params, trial):
        model = build(params)
        for epoch in range(1, 28):
            model.fit_one_epoch()
            trial.report(epoch, 1 - validation_auc(model))   # minimised, like the result
            if trial.should_stop():
                break
        return 1 - validation_auc(model)

Every report is committed to the campaign store at once. With a scheduler
(``Tuner(..., scheduler=ASHA(...))``) ``should_stop()`` says whether the trial is still worth
its compute. :class:`ASHA` is asynchronous successive halving in its stopping form (as in
Li et al., "A System for Massively Parallel Hyperparameter Tuning", MLSys 2020, and the ASHA
schedulers of Ray Tune and Optuna): rungs at ``min_resource * eta**k`` steps; when a trial
reaches a rung, it continues only if its value is among the best ``1/eta`` of all values
recorded at that rung so far, itself included. Decisions never wait for other trials, so every
worker stays busy.

With a scheduler, the GP is fitted BOHB-style (Falkner et al., ICML 2018): to the values at the
highest rung that at least ``n_min`` trials have reached, so that it compares configurations at
equal training budget.

Reports travel from the worker to the driver directly (in-process and thread executors) or over
an authenticated local socket (process pools, :class:`~bayestune.execution.IsolatedProcessExecutor`,
Dask workers on the same network); only the driver writes the store.
"""

from __future__ import annotations

import inspect
import math
import secrets
import socket
import threading
from collections.abc import Callable
from dataclasses import replace
from multiprocessing.connection import Client, Connection, Listener
from typing import Any

from .exceptions import BayestuneError, TrialStopped
from .history import History, Trial
from .objective import Status

__all__ = ["ASHA", "TrialHandle", "TrialStopped", "wants_trial_handle"]


# ----------------------------------------------------------------------- ASHA
class ASHA:
    """Asynchronous successive halving (stopping variant).

    Parameters
    ----------
    min_resource : float
        Step (e.g. epoch) of the first rung.
    max_resource : float
        Full training length; trials that get there are never stopped.
    reduction_factor : int
        ``eta``: one in ``eta`` trials continues past each rung.

    Attributes
    ----------
    rungs : list of float
        ``min_resource * eta**k`` below ``max_resource``.
    """

    def __init__(self, min_resource: float = 1, max_resource: float = 27,
                 reduction_factor: int = 3) -> None:
        if not (isinstance(min_resource, (int, float)) and min_resource > 0):
            raise BayestuneError(f"min_resource must be > 0, got min_resource={min_resource!r}")
        if not (isinstance(max_resource, (int, float)) and max_resource >= min_resource):
            raise BayestuneError(
                f"max_resource must be >= min_resource={min_resource!r}, "
                f"got max_resource={max_resource!r}")
        if not isinstance(reduction_factor, int) or reduction_factor < 2:
            raise BayestuneError(
                f"reduction_factor must be an integer >= 2, got {reduction_factor!r}")
        self.min_resource = float(min_resource)
        self.max_resource = float(max_resource)
        self.eta = reduction_factor
        self.rungs: list[float] = []
        r = self.min_resource
        while r < self.max_resource * (1 - 1e-12):
            self.rungs.append(r)
            r *= self.eta
        self._records: list[dict[int, float]] = [{} for _ in self.rungs]
        self._passed: dict[int, int] = {}  # trial -> number of rungs already judged

    def __repr__(self) -> str:
        return (f"ASHA(min_resource={self.min_resource:g}, max_resource={self.max_resource:g}, "
                f"reduction_factor={self.eta}, rungs={[f'{r:g}' for r in self.rungs]})")

    def rung_values(self, k: int) -> dict[int, float]:
        """Values recorded at rung ``k``: ``{trial number: value}``."""
        return dict(self._records[k])

    def report(self, number: int, step: float, value: float) -> bool:
        """Record a report; returns False when the trial should stop.

        A report at or beyond a rung not yet judged for this trial records the value there
        and judges it: the trial continues if its value is at most the ``floor(n / eta)``-th
        best (at least the best) of the ``n`` values recorded at that rung.
        """
        keep = True
        judged = self._passed.get(number, 0)
        while judged < len(self.rungs) and step >= self.rungs[judged] * (1 - 1e-12):
            record = self._records[judged]
            record[number] = float(value) if math.isfinite(value) else math.inf
            keep = self._promotable(record, number)
            judged += 1
            if not keep:
                break
        self._passed[number] = judged
        return keep

    def _promotable(self, record: dict[int, float], number: int) -> bool:
        values = sorted(record.values())
        k = max(1, len(values) // self.eta)
        return record[number] <= values[k - 1]

    def replay(self, reports: dict[int, list[tuple[float, float]]]) -> None:
        """Rebuild the rung records from stored reports (a resumed campaign)."""
        self._records = [{} for _ in self.rungs]
        self._passed = {}
        events = sorted((step, number, value) for number, rows in reports.items()
                        for step, value in rows)
        for step, number, value in events:
            self.report(number, step, value)

    def value_at_rung(self, trial: Trial, rung: float) -> float | None:
        """The trial's first reported value at a step >= ``rung`` (None if it never got there)."""
        for step, value in trial.reports:
            if step >= rung * (1 - 1e-12):
                return value
        if trial.status is Status.COMPLETE and not trial.reports and trial.value is not None:
            return trial.value  # an objective that never reports ran the full length
        return None

    def value_at_level(self, trial: Trial, level: float) -> float | None:
        """:meth:`value_at_rung`, except that at ``max_resource`` a trial that ran the full
        length counts with its final value (what the objective returned)."""
        if level >= self.max_resource * (1 - 1e-12):
            ran_full = (trial.reports[-1][0] >= level * (1 - 1e-12) if trial.reports
                        else trial.info.get("stopped_at") is None)
            if ran_full:
                return trial.value
        return self.value_at_rung(trial, level)

    def model_history(self, history: History, n_min: int) -> History:
        """The history as the GP should see it: values at one common budget.

        The budget is the highest level (``max_resource`` first, then the rungs downwards)
        reached by at least ``n_min`` completed trials; trials that did not reach it are
        left out, running ones stay pending.
        """
        levels = [self.max_resource, *reversed(self.rungs)]
        for level in levels:
            rows = []
            for t in history:
                if t.status is Status.PENDING:
                    rows.append(t)
                    continue
                if t.status is not Status.COMPLETE:
                    continue
                v = self.value_at_level(t, level)
                if v is not None and math.isfinite(v):
                    rows.append(replace(t, value=float(v)))
            if sum(r.status is Status.COMPLETE for r in rows) >= n_min or level == levels[-1]:
                return History(rows)
        return history  # pragma: no cover - the loop always returns


# ----------------------------------------------------------------------- handles
class _Broker:
    """Driver side: stores reports and asks the scheduler (thread-safe)."""

    def __init__(self, store: Any, scheduler: ASHA | None) -> None:
        self.store = store
        self.scheduler = scheduler
        self._lock = threading.Lock()
        if scheduler is not None:
            scheduler.replay(store.reports())

    def report(self, number: int, step: float, value: float) -> bool:
        with self._lock:
            self.store.add_report(number, step, value)
            if self.scheduler is None:
                return True
            return self.scheduler.report(number, step, value)


class _SocketServer:
    """Serves a broker on an authenticated socket for handles in other processes."""

    def __init__(self, broker: _Broker, host: str = "127.0.0.1") -> None:
        self.broker = broker
        self.authkey = secrets.token_bytes(16)
        bind = "0.0.0.0" if host not in ("127.0.0.1", "localhost") else host  # noqa: S104
        self.listener = Listener((bind, 0), authkey=self.authkey)
        port = self.listener.address[1]
        self.address = (host, port)
        self._closed = False
        threading.Thread(target=self._accept, name="bayestune-reports", daemon=True).start()

    def _accept(self) -> None:
        while not self._closed:
            try:
                conn = self.listener.accept()
            except Exception:  # noqa: BLE001 - closed listener, or a failed handshake
                if self._closed:
                    return
                continue
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: Connection) -> None:
        with conn:
            while True:
                try:
                    number, step, value = conn.recv()
                except (EOFError, OSError):
                    return
                try:
                    conn.send(self.broker.report(number, step, value))
                except Exception as exc:  # noqa: BLE001 - tell the worker what went wrong
                    conn.send(exc)

    def close(self) -> None:
        self._closed = True
        self.listener.close()


class TrialHandle:
    """What an objective ``f(params, trial)`` uses to report progress and ask to stop.

    Attributes
    ----------
    number : int
        The trial number in the campaign.
    params : dict
    last : tuple of (step, value) or None
        The latest report.
    """

    def __init__(self, number: int, params: dict[str, Any], *, broker: _Broker | None = None,
                 address: tuple[str, int] | None = None, authkey: bytes | None = None) -> None:
        self.number = number
        self.params = dict(params)
        self.last: tuple[float, float] | None = None
        self._stop = False
        self._broker = broker
        self._address, self._authkey = address, authkey
        self._conn: Connection | None = None

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_broker"] = None  # only the socket address travels to other processes
        state["_conn"] = None
        return state

    def report(self, step: float, value: float) -> None:
        """Record the value after ``step`` units of training (epochs, events, ...).

        Values are minimised like the campaign's objective (report ``1 - AUC`` or ``-AUC``
        for a score to maximise). A NaN counts as the worst value at a rung.
        """
        step, value = float(step), float(value)
        if not math.isfinite(step) or step < 0:
            raise BayestuneError(f"report step must be a finite number >= 0, got step={step!r}")
        self.last = (step, value)
        reported = value if math.isfinite(value) else math.inf
        if self._broker is not None:
            keep = self._broker.report(self.number, step, reported)
        elif self._address is not None:
            keep = self._remote(step, reported)
        else:
            keep = True
        self._stop = self._stop or not keep

    def _remote(self, step: float, value: float) -> bool:
        if self._conn is None:
            assert self._address is not None  # _remote is only called with an address
            self._conn = Client(self._address, authkey=self._authkey)
        self._conn.send((self.number, step, value))
        answer = self._conn.recv()
        if isinstance(answer, Exception):
            raise answer
        return bool(answer)

    def should_stop(self) -> bool:
        """True once the scheduler decided this trial should end (it keeps saying so)."""
        return self._stop

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None


class HandleFactory:
    """Makes the handle of each submitted trial; owns the socket server if one is needed."""

    def __init__(self, store: Any, scheduler: ASHA | None, remote: bool,
                 host: str = "127.0.0.1") -> None:
        self.broker = _Broker(store, scheduler)
        self.server = _SocketServer(self.broker, host) if remote else None

    def __call__(self, trial: Trial) -> TrialHandle:
        if self.server is None:
            return TrialHandle(trial.number, trial.params, broker=self.broker)
        return TrialHandle(trial.number, trial.params, address=self.server.address,
                           authkey=self.server.authkey)

    def close(self) -> None:
        if self.server is not None:
            self.server.close()


def wants_trial_handle(objective: Callable[..., Any]) -> bool:
    """Whether ``objective`` takes a second positional argument (the trial handle)."""
    try:
        sig = inspect.signature(objective)
    except (TypeError, ValueError):
        return False
    positional = [p for p in sig.parameters.values()
                  if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    if any(p.kind is p.VAR_POSITIONAL for p in sig.parameters.values()):
        return False
    return len(positional) >= 2 and positional[1].default is inspect.Parameter.empty


def driver_host() -> str:
    """A host name under which workers on other machines can reach this process."""
    return socket.getfqdn()


def epochs_used(history: History) -> float:
    """Total training steps of a campaign: each trial's last reported step."""
    return float(sum(t.reports[-1][0] for t in history if t.reports))
