"""Pythia 8 adapter: simulate LEP1 observables at a point of parameter space.

Needs the ``pythia`` extra (``pip install "bayestune[pythia]"``, i.e. ``pythia8mc==8.317.2``).

:class:`PythiaSimulator` is a callable ``params -> {observable: Histogram}`` suitable for
:class:`~bayestune.hep.chi2.HistogramObjective`. Parameters are Pythia settings by their full
names (``"TimeShower:alphaSvalue"``): any setting can be tuned. Events are generated in chunks
of ``chunk_events``; chunks run in ``n_workers`` processes. The random seed of each chunk is
derived from the simulator's ``seed``, the parameter values (to six significant digits, so
that a last-bit difference between machines does not change them) and the chunk number, so a
point always gives the same histograms, whatever ``n_workers`` is, and different points get
independent random numbers.
"""

from __future__ import annotations

import math
import multiprocessing
import weakref
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import Executor, ProcessPoolExecutor
from typing import Any

import numpy as np

from ..exceptions import BayestuneError
from ..seeding import point_seed
from .analysis import Analysis, EventRecord, Sums
from .hadrons import heavy_flavour
from .histogram import Histogram
from .lep import LEP1_SETTINGS, Observable

__all__ = ["PythiaSimulator", "PythiaError", "pythia_available"]

_SEED_MAX = 900_000_000  # Pythia's Random:seed must be below this

QUIET_SETTINGS: tuple[str, ...] = (
    "Print:quiet = on",
    "Next:numberCount = 0",
    "Next:numberShowEvent = 0",
    "Next:numberShowInfo = 0",
    "Next:numberShowProcess = 0",
)


class PythiaError(BayestuneError, RuntimeError):
    """Pythia rejected a setting or failed to initialise or to generate."""


def pythia_available() -> bool:
    """Whether ``pythia8mc`` can be imported."""
    try:
        import pythia8mc  # noqa: F401
    except ImportError:
        return False
    return True


def _import_pythia():
    try:
        import pythia8mc
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise PythiaError(
            "the Pythia adapter needs pythia8mc: pip install 'bayestune[pythia]'"
        ) from exc
    return pythia8mc


def format_setting(name: str, value: Any) -> str:
    """``"Name = value"`` as Pythia reads it (bools become on/off)."""
    if isinstance(value, bool):
        text = "on" if value else "off"
    elif isinstance(value, (int, np.integer)):
        text = str(int(value))
    elif isinstance(value, (float, np.floating)):
        text = repr(float(value))
    else:
        text = str(value)
    return f"{name} = {text}"


class _ShapeFinders:
    """Pythia's C++ event-shape and jet finders, made once per chunk."""

    def __init__(self, p8, analysis: Analysis):
        self.thrust = p8.Thrust(3)
        self.sph = p8.Sphericity(2.0, 3)
        self.lin = p8.Sphericity(1.0, 3)
        # Durham on charged final-state particles, real masses, E-scheme recombination,
        # no preclustering: the definition of analysis.durham_y23, in C++
        self.durham = p8.ClusterJet("Durham", 3, 2, False, False)
        self.need_thrust = analysis.needs_thrust
        self.need_y23 = analysis.needs_y23
        #: (charged, heavy flavour) by PDG id, filled by :meth:`species`
        self.known_species: dict[int, tuple[bool, int]] = {}

    def species(self, prt, pid: int) -> tuple[bool, int]:
        """Whether the species ``pid`` of the particle ``prt`` is charged (Pythia's particle
        data) and its heavy flavour (5, 4 or 0: :func:`~bayestune.hep.hadrons.heavy_flavour`),
        cached by id for the chunk."""
        known = self.known_species.get(pid)
        if known is None:
            known = (bool(prt.isCharged()), int(heavy_flavour(np.array([abs(pid)]))[0]))
            self.known_species[pid] = known
        return known

    def shapes(self, event, charged: np.ndarray) -> dict[str, object]:
        shapes: dict[str, object] = {}
        if self.sph.analyze(event) and self.lin.analyze(event):
            shapes["sph_eigen"] = np.array([self.sph.eigenValue(i) for i in (1, 2, 3)])
            shapes["sph_axes"] = np.array([_xyz(self.sph.eventAxis(i)) for i in (1, 2, 3)])
            shapes["lin_eigen"] = np.array([self.lin.eigenValue(i) for i in (1, 2, 3)])
        else:
            nan3 = np.full(3, np.nan)
            shapes.update(sph_eigen=nan3, sph_axes=np.full((3, 3), np.nan), lin_eigen=nan3)
        if self.need_thrust:
            shapes["thrust"] = (self.thrust.thrust() if self.thrust.analyze(event)
                                else float("nan"))
        if self.need_y23:
            shapes["y23"] = self.y23(event, charged)
        return shapes

    def y23(self, event, charged: np.ndarray) -> float:
        """Durham y23 (see :func:`~bayestune.hep.analysis.durham_y23`).

        ClusterJet keeps the distances of the last clusterings, in GeV^2; the largest of
        them, over the squared visible energy, is the largest y of the merges down to two
        jets.
        """
        if charged.shape[0] < 3 or not self.durham.analyze(event, 1.0, 0.0, 2, 2):
            return float("nan")
        n = self.durham.distanceSize()
        if n == 0:
            return float("nan")
        return max(self.durham.distance(i) for i in range(n)) / charged[:, 3].sum() ** 2


def _xyz(vec) -> tuple[float, float, float]:
    return vec.px(), vec.py(), vec.pz()


def _make_record(event, finders: _ShapeFinders) -> EventRecord:
    """What the analysis needs from one event, with one call per particle where possible: a
    species' charge and heavy flavour are looked up by PDG id once per chunk
    (:meth:`_ShapeFinders.species`), not asked of every particle."""
    particles = event.particles()
    ids = [prt.id() for prt in particles]
    known = finders.known_species
    species = [known.get(pid) or finders.species(prt, pid) for prt, pid in zip(particles, ids)]
    final = [i for i, (prt, (charged, _)) in enumerate(zip(particles, species))
             if charged and prt.isFinal()]
    mom = np.array([(p.px(), p.py(), p.pz(), p.e()) for p in (particles[i] for i in final)],
                   dtype=float).reshape(-1, 4)
    charged_ids = np.array([ids[i] for i in final], dtype=int)
    # heavy hadrons, any status; Pythia mixes B mesons by the flavour of their decay
    # products, without a second record entry, so each hadron is listed once. One decays
    # weakly when none of its decay products holds its heavy quark
    heavy = []
    for i, (_, flavour) in enumerate(species):
        if flavour:
            prt = particles[i]
            weak = all(species[d][1] != flavour for d in prt.daughterList())
            heavy.append((abs(ids[i]), prt.e(), 1.0 if weak else 0.0))
    heavy_rows = np.array(heavy, dtype=float).reshape(-1, 3)
    all_ids = np.array(ids, dtype=int)
    if mom.shape[0] < 2:  # vetoed by the caller; the shape finders would complain
        return EventRecord(mom, charged_ids, all_ids, {}, heavy_rows)
    return EventRecord(mom, charged_ids, all_ids, finders.shapes(event, mom), heavy_rows)


def run_chunk(settings: Sequence[str], n_events: int, seed: int, analysis: Analysis) -> Sums:
    """Generate ``n_events`` with ``settings`` and seed ``seed``; return the analysis sums.

    A module-level function so that it can run in a worker process.
    """
    p8 = _import_pythia()
    pythia = p8.Pythia("", False)
    for line in (*QUIET_SETTINGS, *settings, "Random:setSeed = on", f"Random:seed = {seed}"):
        if not pythia.readString(line):
            raise PythiaError(f"Pythia rejected the setting {line!r}")
    if not pythia.init():
        raise PythiaError(f"Pythia failed to initialise with settings {list(settings)!r}")
    finders = _ShapeFinders(p8, analysis)
    records: list[EventRecord] = []
    n_fail = 0
    while len(records) < n_events:
        if not pythia.next():
            n_fail += 1
            if n_fail > max(10, n_events // 10):
                raise PythiaError(f"Pythia failed to generate {n_fail} events (seed {seed})")
            continue
        rec = _make_record(pythia.event, finders)
        if rec.charged.shape[0] >= 2:  # Rivet's leptonic-event veto
            records.append(rec)
    return analysis.reduce(records)


class PythiaSimulator:
    """Simulate LEP1 observables with Pythia 8 at a parameter point.

    Parameters
    ----------
    observables : sequence of Observable
        What to compute (see :func:`bayestune.hep.lep.observables`).
    reference : mapping of str to Histogram
        Binning for each observable id (usually the reference data).
    n_events : int
        Events per evaluation.
    seed : int
        Base random seed.
    n_workers : int
        Processes to generate in (1 = in this process).
    settings : sequence of str
        Process settings (default: LEP1 Z -> hadrons, :data:`~bayestune.hep.lep.LEP1_SETTINGS`).
    fixed : mapping, optional
        Further settings applied at every point (e.g. ``{"StringZ:aExtraDiquark": 0.97}``).
    chunk_events : int
        Events per chunk (the unit of work of a process).
    """

    def __init__(
        self,
        observables: Sequence[Observable],
        reference: Mapping[str, Histogram],
        *,
        n_events: int = 10_000,
        seed: int = 1,
        n_workers: int = 1,
        settings: Sequence[str] = LEP1_SETTINGS,
        fixed: Mapping[str, Any] | None = None,
        chunk_events: int = 2_500,
    ) -> None:
        for name, value in (("n_events", n_events), ("n_workers", n_workers),
                            ("chunk_events", chunk_events)):
            if not isinstance(value, (int, np.integer)) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {name}={value!r}")
        if not isinstance(seed, (int, np.integer)) or seed < 0:
            raise ValueError(f"seed must be a non-negative integer, got seed={seed!r}")
        self.observables = list(observables)
        self.analysis = Analysis({o.id: o.quantity for o in self.observables}, reference)
        self.n_events = int(n_events)
        self.seed = int(seed)
        self.n_workers = int(n_workers)
        self.settings = tuple(settings)
        self.fixed = dict(fixed or {})
        self.chunk_events = int(chunk_events)
        self._pool: Executor | None = None
        self._parent: PythiaSimulator | None = None  # a replicate uses its parent's workers

    # --------------------------------------------------------------------- helpers
    def replicate(self, *, seed: int | None = None, n_events: int | None = None) -> PythiaSimulator:
        """A copy with another seed and/or statistics (e.g. for pseudo-data).

        It runs on this simulator's worker processes (started once, closed with it).
        """
        copy = PythiaSimulator(
            self.observables, self.analysis.binnings,
            n_events=self.n_events if n_events is None else n_events,
            seed=self.seed if seed is None else seed, n_workers=self.n_workers,
            settings=self.settings, fixed=self.fixed, chunk_events=self.chunk_events,
        )
        copy._parent = self if self._parent is None else self._parent
        return copy

    def settings_for(self, params: Mapping[str, Any]) -> list[str]:
        """All Pythia settings for a point: process, fixed, then the parameters."""
        merged = {**self.fixed, **dict(params)}
        return [*self.settings, *(format_setting(k, v) for k, v in merged.items())]

    def chunk_seeds(self, params: Mapping[str, Any]) -> list[int]:
        """Deterministic seeds, one per chunk, from ``seed`` and the parameter values (read to
        :data:`~bayestune.seeding.KEY_DIGITS` significant digits, see :mod:`bayestune.seeding`)."""
        state = np.random.SeedSequence(point_seed(self.seed, params)).generate_state(
            self.n_chunks, np.uint64)
        return [int(s % (_SEED_MAX - 1)) + 1 for s in state]

    @property
    def n_chunks(self) -> int:
        """Number of chunks the events of one call are split into."""
        return math.ceil(self.n_events / self.chunk_events)

    def _chunks(self) -> list[int]:
        n_chunks = self.n_chunks
        sizes = [self.n_events // n_chunks] * n_chunks
        for i in range(self.n_events - sum(sizes)):
            sizes[i] += 1
        return sizes

    def _executor(self) -> Executor | None:
        if self.n_workers == 1:
            return None
        if self._parent is not None:
            return self._parent._executor()
        if self._pool is None:
            ctx = multiprocessing.get_context("spawn")
            self._pool = ProcessPoolExecutor(max_workers=self.n_workers, mp_context=ctx)
            weakref.finalize(self, self._pool.shutdown, wait=False, cancel_futures=True)
        return self._pool

    # --------------------------------------------------------------------- call
    def sums(self, params: Mapping[str, Any]) -> Sums:
        """Raw analysis sums at ``params`` (before normalisation)."""
        settings = self.settings_for(params)
        jobs = list(zip(self._chunks(), self.chunk_seeds(params)))
        pool = self._executor()
        if pool is None:
            parts: Iterable[Sums] = [
                run_chunk(settings, n, s, self.analysis) for n, s in jobs
            ]
        else:
            futures = [pool.submit(run_chunk, settings, n, s, self.analysis) for n, s in jobs]
            parts = [f.result() for f in futures]
        total: Sums | None = None
        for part in parts:
            total = part if total is None else total + part
        assert total is not None  # n_events >= 1 guarantees one chunk
        return total

    def __call__(self, params: Mapping[str, Any]) -> dict[str, Histogram]:
        return self.analysis.finalize(self.sums(params))

    def close(self) -> None:
        """Shut down the worker processes (they are restarted on the next call)."""
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None

    def __enter__(self) -> PythiaSimulator:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_pool"] = None
        return state

    def __repr__(self) -> str:
        return (
            f"PythiaSimulator({len(self.observables)} observables, n_events={self.n_events}, "
            f"seed={self.seed}, n_workers={self.n_workers})"
        )
