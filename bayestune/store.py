"""The campaign store: an append-only SQLite file that is the single source of truth.

Every trial is a row. ``ask`` inserts it as ``pending`` together with the state of the
random generator that produced it; ``tell`` fills in the outcome and commits at once. The
database runs in write-ahead-log mode with ``synchronous=FULL``, so a committed trial
survives ``kill -9`` and power loss, and every commit is checkpointed into the main file at
once, so that the ``.sqlite`` file alone holds every finished trial even while the campaign
runs or after it was killed. Resuming a campaign is reopening its file.

One process writes a store at a time (:class:`~bayestune.storelock.StoreLock`: a second
writer is refused with the first one's pid). An evaluation that the driver runs itself is
recorded in a ``starts`` table before it begins, so that a point which kills the driver
process can be recognised when the campaign is resumed (see
:meth:`CampaignStore.driver_deaths`). A store holds data, never code.

Intermediate values that a running trial reports (for example a validation score per
epoch, see :class:`~bayestune.scheduler.TrialHandle`) go to a ``reports`` table as they
arrive. Only the driver process writes the store; its methods may be called from the
driver's threads (one lock serialises them).
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import json
import math
import os
import socket
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

from .exceptions import StoreError
from .history import History, Trial
from .objective import Outcome, Status
from .space import Space
from .storelock import StoreLock

__all__ = ["CampaignStore"]

FORMAT_VERSION = 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS trials (
    number    INTEGER PRIMARY KEY,
    params    TEXT NOT NULL,
    status    TEXT NOT NULL,
    value     REAL,
    variance  REAL,
    error     TEXT,
    info      TEXT NOT NULL DEFAULT '{}',
    source    TEXT NOT NULL DEFAULT '',
    rng_state TEXT,
    created   REAL NOT NULL,
    finished  REAL,
    duration  REAL NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS starts (
    number  INTEGER NOT NULL,
    pid     INTEGER NOT NULL,
    host    TEXT NOT NULL,
    created REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS reports (
    number  INTEGER NOT NULL,
    step    REAL NOT NULL,
    value   REAL NOT NULL,
    created REAL NOT NULL,
    PRIMARY KEY (number, step)
);
"""


def _locked(method: Callable[..., Any]) -> Callable[..., Any]:
    """Serialise a store method with the store's lock (driver threads share the store);
    SQLite errors become :class:`StoreError` naming the file."""

    @functools.wraps(method)
    def wrapper(self: CampaignStore, *args: Any, **kwargs: Any) -> Any:
        with self._lock:
            try:
                return method(self, *args, **kwargs)
            except sqlite3.Error as exc:  # name the file: a bare sqlite3 error does not
                raise StoreError(f"campaign store {self._where!r}: {exc}") from None

    return wrapper


def _json_default(obj: Any) -> Any:
    """Serialise numpy scalars/arrays that objectives like to put into ``info``."""
    if hasattr(obj, "tolist"):
        return obj.tolist()
    if hasattr(obj, "item"):
        return obj.item()
    return str(obj)


def _dumps(obj: Any) -> str:
    # insertion order is kept: parameters stay in the order of the space
    return json.dumps(obj, default=_json_default)


_MAYBE_CREATING = " (or a campaign is creating it right now: try again in a moment)"


class CampaignStore:
    """SQLite-backed, append-only record of a campaign.

    Parameters
    ----------
    path : str or Path or None
        File to create or reopen. ``None`` keeps the store in memory (nothing survives the
        process; useful for quick interactive runs).
    space : Space
        The campaign's space. Reopening a file written for a different space raises
        :class:`StoreError`.
    seed : int or None
        Campaign seed. ``None`` on a new store draws fresh entropy; on an existing store
        uses the recorded seed. A different explicit seed than the recorded one is refused.
    metadata : dict, optional
        Extra campaign settings recorded at creation (engine, acquisition, ...).
    """

    def __init__(
        self,
        path: str | Path | None,
        space: Space,
        seed: int | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> None:
        self.path = None if path is None else Path(path)
        if self.path is not None and self.path.is_dir():
            raise StoreError(f"store path must be a file, got a directory: {str(self.path)!r}")
        self._where = "<memory>" if self.path is None else str(self.path)
        self._lock = threading.RLock()
        #: trials parsed from their rows, by number: a row read again unchanged is not parsed
        #: again (JSON decoding is what reading a long campaign costs)
        self._parsed: dict[int, tuple[tuple[Any, ...], Trial]] = {}
        self._writer = None if self.path is None else StoreLock(self.path)
        self._conn = self._connect()
        self.space = space
        self.seed = self._init_meta(space, seed, metadata or {})

    def _connect(self) -> sqlite3.Connection:
        """Open the database; refuse another application's database and a damaged file."""
        target = ":memory:" if self.path is None else str(self.path)
        try:
            conn = sqlite3.connect(target, isolation_level=None, check_same_thread=False)
            tables = {r[0] for r in conn.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table'")}
            if tables and "meta" not in tables:
                conn.close()
                raise StoreError(
                    f"{target!r} is an SQLite database but not a bayestune campaign store "
                    f"(it holds the tables {', '.join(sorted(tables))}); bayestune does not "
                    "write into other databases: choose another store file")
            if tables:
                check = [r[0] for r in conn.execute("PRAGMA quick_check")]
                if check != ["ok"]:
                    conn.close()
                    raise StoreError(
                        f"campaign store {target!r} is damaged (SQLite integrity check: "
                        f"{'; '.join(check[:3])}); restore it from a copy")
            if self.path is not None and tables and not os.access(self.path, os.W_OK):
                return conn  # read-only: history and status only; writes are refused
            if self.path is not None:
                conn.execute("PRAGMA journal_mode=WAL")
                conn.execute("PRAGMA wal_autocheckpoint=1")  # every commit into the file
            conn.execute("PRAGMA synchronous=FULL")
            if not tables:
                self._lock_for_writing()
            conn.executescript(_SCHEMA)
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"cannot open campaign store {target!r}: {exc}") from None
        return conn

    def _lock_for_writing(self) -> None:
        if self._writer is not None and not self._writer.held:
            self._writer.acquire()

    @contextlib.contextmanager
    def _writing(self) -> Iterator[None]:
        """A write transaction by the store's single writer, with errors naming the file."""
        self._lock_for_writing()
        try:
            with self._conn:
                self._conn.execute("BEGIN IMMEDIATE")
                yield
        except sqlite3.OperationalError as exc:
            raise StoreError(f"cannot write to campaign store {self._where!r}: {exc}") from None

    @classmethod
    def open(cls, path: str | Path) -> CampaignStore:
        """Open an existing store with the space recorded in it (never creates a file)."""
        path = Path(path)
        if not path.is_file():
            raise StoreError(f"no campaign store at {str(path)!r}")
        try:
            with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as conn:
                row = conn.execute("SELECT value FROM meta WHERE key = 'space'").fetchone()
        except sqlite3.DatabaseError as exc:
            # an SQLite file without the tables yet may be a store a campaign is creating
            creating = "no such table" in str(exc)
            raise StoreError(f"{str(path)!r} is not a bayestune campaign store: {exc}"
                             + (_MAYBE_CREATING if creating else "")) from None
        if row is None:
            raise StoreError(f"{str(path)!r} is not a bayestune campaign store (no space)"
                             + _MAYBE_CREATING)
        return cls(path, Space.from_json(row[0]))

    # ------------------------------------------------------------------ metadata
    def _meta(self) -> dict[str, str]:
        return dict(self._conn.execute("SELECT key, value FROM meta").fetchall())

    def _init_meta(self, space: Space, seed: int | None, metadata: dict[str, Any]) -> int:
        meta = self._meta()
        where = self._where
        if not meta:
            if seed is None:
                import numpy as np

                entropy = np.random.SeedSequence().entropy
                assert isinstance(entropy, int)  # always an int when drawn fresh
                seed = entropy % (2**63)
            with self._writing():
                rows = {"format_version": str(FORMAT_VERSION), "space": space.to_json(),
                        "seed": str(int(seed)), "created": repr(time.time()),
                        "metadata": _dumps(metadata)}
                self._conn.executemany("INSERT INTO meta VALUES (?, ?)", rows.items())
            return int(seed)
        if int(meta.get("format_version", -1)) != FORMAT_VERSION:
            raise StoreError(
                f"store {where!r} has format version {meta.get('format_version')!r}, "
                f"this bayestune writes version {FORMAT_VERSION}"
            )
        stored_space = Space.from_json(meta["space"])
        if stored_space != space:
            raise StoreError(
                f"store {where!r} was written for a different space:\n"
                f"  stored: {stored_space.to_json()}\n  given:  {space.to_json()}"
            )
        stored_seed = int(meta["seed"])
        if seed is not None and int(seed) != stored_seed:
            raise StoreError(
                f"store {where!r} was created with seed={stored_seed}, got seed={seed}; "
                "pass the same seed (or None) to resume it"
            )
        return stored_seed

    @property
    def metadata(self) -> dict[str, Any]:
        """Settings recorded when the campaign was created."""
        return json.loads(self._meta().get("metadata", "{}"))

    # ------------------------------------------------------------------ trials
    @_locked
    def add_pending(
        self, params: dict[str, Any], source: str, rng_state: Mapping[str, Any] | None = None
    ) -> Trial:
        """Record a proposed point; returns the pending :class:`Trial`."""
        now = time.time()
        with self._writing():
            (number,) = self._conn.execute(
                "SELECT COALESCE(MAX(number) + 1, 0) FROM trials").fetchone()
            self._conn.execute(
                "INSERT INTO trials (number, params, status, source, rng_state, created) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (number, _dumps(params), Status.PENDING.value, source,
                 None if rng_state is None else _dumps(rng_state), now),
            )
        return Trial(number=number, params=dict(params), source=source, created=now)

    @_locked
    def finish(self, number: int, outcome: Outcome) -> Trial:
        """Record the outcome of a pending trial and commit it immediately."""
        row = self._conn.execute("SELECT status FROM trials WHERE number = ?",
                                 (number,)).fetchone()
        if row is None:
            raise StoreError(f"no trial number {number} in this campaign")
        if row[0] != Status.PENDING.value:
            raise StoreError(f"trial {number} is already {row[0]}; a trial is told only once")
        value = outcome.value if outcome.value is None or math.isfinite(outcome.value) else None
        with self._writing():
            self._conn.execute(
                "UPDATE trials SET status = ?, value = ?, variance = ?, error = ?, info = ?, "
                "finished = ?, duration = ? WHERE number = ?",
                (outcome.status.value, value, outcome.variance, outcome.error,
                 _dumps(outcome.info), time.time(), outcome.duration, number),
            )
        return self.trial(number)

    @_locked
    def trial(self, number: int) -> Trial:
        """One trial by number."""
        row = self._conn.execute(f"SELECT {_COLUMNS} FROM trials WHERE number = ?",
                                 (number,)).fetchone()
        if row is None:
            raise StoreError(f"no trial number {number} in this campaign")
        return _row_to_trial(row)

    @_locked
    def history(self) -> History:
        """All trials in order, with their intermediate reports."""
        rows = self._conn.execute(f"SELECT {_COLUMNS} FROM trials ORDER BY number").fetchall()
        reports = self.reports()
        return History([self._parse(r, tuple(reports.get(r[0], ()))) for r in rows])

    def _parse(self, row: tuple[Any, ...], reports: tuple[tuple[float, float], ...]) -> Trial:
        cached = self._parsed.get(row[0])
        if cached is None or cached[0] != row:
            cached = (row, _row_to_trial(row))
            self._parsed[row[0]] = cached
        trial = cached[1]
        return trial if trial.reports == reports else dataclasses.replace(trial, reports=reports)

    @_locked
    def add_report(self, number: int, step: float, value: float) -> None:
        """Record an intermediate value of a running trial (committed at once).

        A second report of the same step replaces the first (a retried evaluation).
        """
        with self._writing():
            self._conn.execute("INSERT OR REPLACE INTO reports VALUES (?, ?, ?, ?)",
                               (int(number), float(step), float(value), time.time()))

    @_locked
    def reports(self) -> dict[int, list[tuple[float, float]]]:
        """Intermediate reports ``{trial number: [(step, value), ...]}`` in step order."""
        out: dict[int, list[tuple[float, float]]] = {}
        for number, step, value in self._conn.execute(
                "SELECT number, step, value FROM reports ORDER BY number, step"):
            out.setdefault(number, []).append((step, value))
        return out

    @_locked
    def rng_state(self, number: int) -> dict[str, Any] | None:
        """The generator state recorded with trial ``number`` (for audits)."""
        row = self._conn.execute("SELECT rng_state FROM trials WHERE number = ?",
                                 (number,)).fetchone()
        return None if row is None or row[0] is None else json.loads(row[0])

    @_locked
    def record_start(self, number: int) -> None:
        """Record that this process starts evaluating trial ``number`` itself (committed
        before the evaluation begins)."""
        with self._writing():
            self._conn.execute("INSERT INTO starts VALUES (?, ?, ?, ?)",
                               (int(number), os.getpid(), socket.gethostname(), time.time()))

    @_locked
    def forget_starts(self) -> None:
        """Drop this process's start records of pending trials: their evaluations were
        stopped on purpose (Ctrl-C), which says nothing about the points."""
        with self._writing():
            self._conn.execute(
                "DELETE FROM starts WHERE pid = ? AND host = ? AND number IN "
                "(SELECT number FROM trials WHERE status = ?)",
                (os.getpid(), socket.gethostname(), Status.PENDING.value))

    @_locked
    def driver_deaths(self) -> dict[int, int]:
        """``{trial number: starts}`` of pending trials whose evaluation was started by the
        driver process itself and never finished: each start is a driver that died (or was
        killed) while evaluating the point."""
        rows = self._conn.execute(
            "SELECT s.number, COUNT(*) FROM starts s JOIN trials t ON t.number = s.number "
            "WHERE t.status = ? AND NOT (s.pid = ? AND s.host = ?) GROUP BY s.number",
            (Status.PENDING.value, os.getpid(), socket.gethostname())).fetchall()
        return {int(n): int(c) for n, c in rows}

    @_locked
    def close(self) -> None:
        """Close the database connection and give up the writer's lock."""
        self._conn.close()
        if self._writer is not None:
            self._writer.release()

    def __enter__(self) -> CampaignStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


_COLUMNS = (
    "number, params, status, value, variance, error, info, duration, source, created, finished"
)


def _row_to_trial(row: tuple[Any, ...],
                  reports: tuple[tuple[float, float], ...] = ()) -> Trial:
    number, params, status, value, variance, error, info, duration, source, created, fin = row
    return Trial(number=number, params=json.loads(params), status=Status(status), value=value,
                 variance=variance, error=error, info=json.loads(info), duration=duration,
                 source=source, created=created, finished=fin, reports=reports)
