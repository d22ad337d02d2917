"""LEP1 observables computed from generated events, the way the Rivet analyses of the reference
data (ALEPH 1996 event shapes and spectra, PDG hadron multiplicities, b- and c-fragmentation)
do.

The analysis is independent of the generator: a generator adapter turns each event into an
:class:`EventRecord` (charged final-state momenta, the PDG ids of every particle in the record,
the charm and bottom hadrons, and the event-shape eigensystems), and :class:`Analysis` fills
the observables from records.

Filling is done in two additive stages so that events can be split over processes:
:meth:`Analysis.reduce` turns a list of records into :class:`Sums` (per-bin sums and sums of
squares), sums from several workers are added, and :meth:`Analysis.finalize` normalises them
into :class:`~bayestune.hep.histogram.Histogram` objects with honest MC statistical errors:

* unit-normalised event distributions: multinomial errors ``sqrt(p (1 - p) / N) / width``;
  the same over hadrons for unit-normalised per-hadron distributions (x_B of b hadrons);
* per-event particle densities: the error of a mean over events of the per-event bin count
  (particles of one event are correlated, so ``sqrt(counts)`` would be too small);
* means (``<N_ch>``, hadron rates): standard error of the mean.

Errors are floored at the error of one entry (``1 / N`` before dividing by the width), so that
an empty or fluctuation-free bin never has a zero error in a chi2.

Glossary: ``N`` events, ``n_b`` entries in bin ``b``, ``w_b`` bin width, CFS = charged final
state (all final particles with non-zero charge, no cuts).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np

from .hadrons import PDG_SPECIES, has_quark
from .histogram import Histogram, HistogramError

__all__ = [
    "EventRecord", "Sums", "Analysis", "durham_y23", "event_shapes", "QUANTITIES",
]

P_BEAM = 45.6  # GeV, sqrt(s) / 2 at the Z pole


@dataclass
class EventRecord:
    """What the analysis needs from one event.

    Attributes
    ----------
    charged : ndarray, shape (n, 4)
        ``px, py, pz, E`` of the charged final-state particles (GeV).
    charged_ids : ndarray, shape (n,)
        Their PDG ids.
    all_ids : ndarray, shape (m,)
        PDG ids of every particle in the event record, any status (hadron rates count
        decayed particles too, as Rivet's PDG_HADRON_MULTIPLICITIES does).
    shapes : dict
        Event shapes computed by the adapter (see :func:`event_shapes`): ``"thrust"``,
        ``"sph_eigen"`` (3 eigenvalues, descending), ``"sph_axes"`` (3x3, rows = axes),
        ``"lin_eigen"``, and ``"y23"``.
    heavy : ndarray, shape (k, 3)
        One row per charm or bottom hadron of the record, any status: ``|PDG id|``, energy
        (GeV), and 1.0 when it decays weakly (none of its decay products holds its heavy
        quark) else 0.0.
    """

    charged: np.ndarray
    charged_ids: np.ndarray
    all_ids: np.ndarray
    shapes: dict[str, object] = field(default_factory=dict)
    heavy: np.ndarray = field(default_factory=lambda: np.empty((0, 3)))


def durham_y23(p: np.ndarray) -> float:
    """Durham (ee_kt) y23 of a set of particles with E-scheme recombination.

    ``y_ij = 2 min(E_i^2, E_j^2) (1 - cos theta_ij) / E_vis^2``; the returned value is the
    largest ``y`` among the merges down to two jets (FastJet's ``exclusive_ymerge_max(2)``,
    which Rivet uses). NaN for fewer than three particles.

    Parameters
    ----------
    p : ndarray, shape (n, 4)
        ``px, py, pz, E``.
    """
    n = p.shape[0]
    if n < 3:
        return float("nan")
    mom = np.array(p, dtype=float)
    evis2 = mom[:, 3].sum() ** 2
    norm = np.linalg.norm(mom[:, :3], axis=1)
    unit = mom[:, :3] / np.where(norm > 0, norm, 1.0)[:, None]
    e2 = mom[:, 3] ** 2
    y = 2.0 * np.minimum.outer(e2, e2) * (1.0 - unit @ unit.T) / evis2
    np.fill_diagonal(y, np.inf)
    alive = np.ones(n, dtype=bool)
    y_max = 0.0
    for _ in range(n - 2):
        k = int(np.argmin(y))
        i, j = divmod(k, n)
        y_max = max(y_max, float(y[i, j]))
        mom[i] += mom[j]
        alive[j] = False
        y[j, :] = np.inf
        y[:, j] = np.inf
        pn = np.linalg.norm(mom[i, :3])
        unit[i] = mom[i, :3] / pn if pn > 0 else 0.0
        e2[i] = mom[i, 3] ** 2
        row = 2.0 * np.minimum(e2[i], e2) * (1.0 - unit @ unit[i]) / evis2
        row[~alive] = np.inf
        row[i] = np.inf
        y[i, :] = row
        y[:, i] = row
    return y_max


def event_shapes(p3: np.ndarray) -> dict[str, object]:
    """Sphericity-type event shapes of a set of 3-momenta (numpy reference implementation).

    Returns the eigenvalues (descending) and axes of the quadratic momentum tensor
    ``S_ab = sum p_a p_b / sum |p|^2`` and the eigenvalues of the linearised tensor
    ``Theta_ab = sum p_a p_b / |p| / sum |p|``. Thrust is not computed here (generator
    adapters use the generator's own thrust finder).
    """
    norm = np.linalg.norm(p3, axis=1)
    quad = (p3.T @ p3) / np.sum(norm**2)
    wq, vq = np.linalg.eigh(quad)
    order = np.argsort(wq)[::-1]
    safe = np.where(norm > 0, norm, 1.0)
    lin = (p3.T @ (p3 / safe[:, None])) / np.sum(norm)
    wl = np.sort(np.linalg.eigvalsh(lin))[::-1]
    return {"sph_eigen": wq[order], "sph_axes": vq[:, order].T, "lin_eigen": wl}


# --------------------------------------------------------------------------- quantities
# Each quantity is a small strategy: how to read values from a batch of records, and how to
# normalise. Values are computed for a whole batch at once (numpy over all particles of all
# events), which is what keeps the analysis cheap next to the generator.

class _Batch:
    """The records of one :meth:`Analysis.reduce` call, concatenated once and shared.

    Particle arrays hold the charged particles of all events one after the other;
    ``*_event`` arrays give the index of the event each entry belongs to.
    """

    def __init__(self, records: Sequence[EventRecord]):
        self.records = records
        self.n = len(records)
        self.charged, self.charged_event = self._stacked([r.charged for r in records], (0, 4))
        self.n_charged = np.bincount(self.charged_event, minlength=self.n).astype(float)
        self.charged_ids = np.abs(self._stacked([r.charged_ids for r in records], (0,))[0])
        self._shapes: dict[str, np.ndarray] = {}

    def _stacked(self, arrays: list[np.ndarray], empty: tuple[int, ...]
                 ) -> tuple[np.ndarray, np.ndarray]:
        """Per-event arrays one after the other, and the event of each row."""
        flat = np.concatenate(arrays).reshape(-1, *empty[1:]) if arrays else np.empty(empty)
        return flat, np.repeat(np.arange(self.n), [len(a) for a in arrays])

    @cached_property
    def heavy(self) -> tuple[np.ndarray, np.ndarray]:
        """The heavy-hadron rows of all events (see :class:`EventRecord`), and their events."""
        return self._stacked([r.heavy.reshape(-1, 3) for r in self.records], (0, 3))

    def event_index(self, over: str) -> np.ndarray:
        """The event of each entry of a per-particle quantity over ``over``."""
        return self.heavy[1] if over == "heavy" else self.charged_event

    @cached_property
    def abs_p(self) -> np.ndarray:
        """|p| of every charged particle."""
        return np.linalg.norm(self.charged[:, :3], axis=1)

    @cached_property
    def _all_ids(self) -> tuple[np.ndarray, np.ndarray]:
        """|PDG id| of every particle of every event, and the index of its event."""
        flat, event = self._stacked([r.all_ids for r in self.records], (0,))
        return np.abs(flat), event

    def shape(self, key: str) -> np.ndarray:
        """One event shape of every event, stacked along the first axis (read once)."""
        if key not in self._shapes:
            self._shapes[key] = np.array([r.shapes[key] for r in self.records], dtype=float)
        return self._shapes[key]

    def id_counts(self, wanted: np.ndarray) -> np.ndarray:
        """Per event, the number of particles (any status) whose |PDG id| is in ``wanted``."""
        ids, event = self._all_ids
        return np.bincount(event[np.isin(ids, wanted)], minlength=self.n).astype(float)


class _Quantity:
    """Base class of the per-observable fill strategies.

    ``values(batch)`` gives one value per event (event kinds), or one value per particle of
    the list ``over`` names (``"charged"`` or ``"heavy"``), NaN for a particle not counted
    (particle and entry kinds).
    """

    kind = "event"

    def __init__(self, fn, label: str, over: str = "charged"):
        self._fn = fn
        self.label = label
        self.over = over

    def values(self, batch: _Batch) -> np.ndarray:
        return np.asarray(self._fn(batch), dtype=float)


class _EventQuantity(_Quantity):
    """One value per event; histogram normalised to unit area (including out-of-range)."""

    kind = "event"


class _FractionQuantity(_Quantity):
    """One value per event; y = fraction of events in the bin (P(N_ch))."""

    kind = "fraction"


class _ParticleQuantity(_Quantity):
    """One value per particle; y = mean number per event per unit x."""

    kind = "particle"


class _EntryQuantity(_Quantity):
    """One value per particle; histogram normalised to unit area over the particles counted
    (including out-of-range), as for heavy-quark fragmentation functions."""

    kind = "entry"


class _MeanQuantity(_Quantity):
    """A per-event count; y = its mean over events (a one-bin observable)."""

    kind = "mean"


def _heavy_x(ids: Iterable[int] | None = None, *, weak_b: bool = False):
    """E / E_beam of the heavy hadrons with ``|id|`` in ``ids``, or of the weakly decaying b
    hadrons (``weak_b``); NaN for the other heavy hadrons."""
    wanted = np.asarray(sorted(set(ids or ())), dtype=int)

    def x(b: _Batch) -> np.ndarray:
        rows = b.heavy[0]
        if weak_b:
            keep = has_quark(rows[:, 0].astype(np.int64), 5) & (rows[:, 2] > 0)
        else:
            keep = np.isin(rows[:, 0].astype(np.int64), wanted)
        return np.where(keep, rows[:, 1] / P_BEAM, np.nan)

    return x


def _count_ids(ids: Iterable[int]):
    wanted = np.asarray(sorted(set(ids)), dtype=int)
    return lambda b: b.id_counts(wanted)


def _xp_of(ids: Iterable[int]):
    wanted = np.asarray(sorted(set(ids)), dtype=int)
    return lambda b: np.where(np.isin(b.charged_ids, wanted), b.abs_p / P_BEAM, np.nan)


def _axis_projection(axis: int):
    """|p . n| of each particle on its event's sphericity axis ``axis``.

    Written out component by component, so that the result does not depend on how a BLAS
    library orders a three-term dot product.
    """
    def proj(b: _Batch) -> np.ndarray:
        n = b.shape("sph_axes")[:, axis, :][b.charged_event]
        p = b.charged
        return np.abs(p[:, 0] * n[:, 0] + p[:, 1] * n[:, 1] + p[:, 2] * n[:, 2])

    return proj


def _neg_ln_y23(b: _Batch) -> np.ndarray:
    y = np.array([r.shapes.get("y23", np.nan) for r in b.records], dtype=float)
    out = np.full(y.shape, np.nan)
    positive = y > 0
    out[positive] = -np.log(y[positive])
    return out


def _c_parameter(b: _Batch) -> np.ndarray:
    lam = b.shape("lin_eigen").reshape(-1, 3)
    l1, l2, l3 = lam[:, 0], lam[:, 1], lam[:, 2]
    return 3.0 * (l1 * l2 + l2 * l3 + l3 * l1)


def _sph_eigen(b: _Batch) -> np.ndarray:
    return b.shape("sph_eigen").reshape(-1, 3)


QUANTITIES: dict[str, _Quantity] = {
    "1-T": _EventQuantity(lambda b: 1.0 - b.shape("thrust"), "1-T"),
    "C": _EventQuantity(_c_parameter, "C"),
    "-ln y23": _EventQuantity(_neg_ln_y23, "-ln y23 (Durham)"),
    "A": _EventQuantity(lambda b: 1.5 * _sph_eigen(b)[:, 2], "aplanarity"),
    "S": _EventQuantity(lambda b: 1.5 * (_sph_eigen(b)[:, 1] + _sph_eigen(b)[:, 2]),
                        "sphericity"),
    "pTin": _ParticleQuantity(_axis_projection(1), "pT_in (sphericity)"),
    "pTout": _ParticleQuantity(_axis_projection(2), "pT_out (sphericity)"),
    "xi": _ParticleQuantity(lambda b: -np.log(b.abs_p / P_BEAM), "ln(1/x_p)"),
    "xp": _ParticleQuantity(lambda b: b.abs_p / P_BEAM, "x_p"),
    "xp:K+-": _ParticleQuantity(_xp_of([321]), "x_p of K+-"),
    "xp:p": _ParticleQuantity(_xp_of([2212]), "x_p of p, pbar"),
    "Nch": _FractionQuantity(lambda b: b.n_charged, "N_ch"),
    "<Nch>": _MeanQuantity(lambda b: b.n_charged, "<N_ch>"),
    "N(K+-)": _MeanQuantity(_count_ids([321]), "<N(K+-)>"),
    "xB:weak": _EntryQuantity(_heavy_x(weak_b=True), "x_B of weakly decaying b hadrons",
                              over="heavy"),
    "xE:D*+-": _ParticleQuantity(_heavy_x([413]), "x_E of D*+-", over="heavy"),
    "xE:D0": _ParticleQuantity(_heavy_x([421]), "x_E of D0", over="heavy"),
    "xE:D+-": _ParticleQuantity(_heavy_x([411]), "x_E of D+-", over="heavy"),
    **{f"N({s.name})": _MeanQuantity(_count_ids(s.ids), f"<N({s.label})>")
       for s in PDG_SPECIES},
}
"""The quantities the LEP analysis can fill, by name."""

NEEDS_Y23 = frozenset({"-ln y23"})
NEEDS_THRUST = frozenset({"1-T"})


@dataclass
class Sums:
    """Additive per-observable sums from a set of events.

    ``sumw[b]`` entries in bin ``b``; ``sumw2[b]`` sum over events of the squared per-event
    entries (for particle densities) or entries (for event distributions); ``n_filled`` events
    with a defined value; ``n_events`` events generated.
    """

    sumw: dict[str, np.ndarray]
    sumw2: dict[str, np.ndarray]
    n_filled: dict[str, float]
    n_events: int

    def __add__(self, other: Sums) -> Sums:
        return Sums(
            {k: self.sumw[k] + other.sumw[k] for k in self.sumw},
            {k: self.sumw2[k] + other.sumw2[k] for k in self.sumw2},
            {k: self.n_filled[k] + other.n_filled[k] for k in self.n_filled},
            self.n_events + other.n_events,
        )


def _bin_counts(x: np.ndarray, lower: np.ndarray, upper: np.ndarray) -> np.ndarray:
    """Entries of sorted-or-not ``x`` in each ``[lower, upper)`` bin (gaps/overlaps allowed)."""
    xs = np.sort(x[np.isfinite(x)])
    return (np.searchsorted(xs, upper, side="left")
            - np.searchsorted(xs, lower, side="left")).astype(float)


def _particle_sums(x: np.ndarray, event: np.ndarray, n_events: int, ref: Histogram):
    """Per-bin entries, and sums over events of the squared per-event entries.

    ``x`` holds one value per particle (NaN: not counted), ``event`` the event of each.
    """
    sumw = np.empty(ref.n_bins)
    sumw2 = np.empty(ref.n_bins)
    for b, (lo, hi) in enumerate(zip(ref.lower, ref.upper)):
        per_ev = np.bincount(event[(x >= lo) & (x < hi)], minlength=n_events)
        sumw[b] = per_ev.sum()
        sumw2[b] = np.square(per_ev, dtype=float).sum()
    return sumw, sumw2


class Analysis:
    """Fill a set of observables, each with the binning of its reference histogram.

    Parameters
    ----------
    quantities : mapping of str to str
        Observable name -> quantity name (a key of :data:`QUANTITIES`).
    binnings : mapping of str to Histogram
        Observable name -> a histogram whose bins are used (usually the reference data).
    """

    def __init__(self, quantities: Mapping[str, str], binnings: Mapping[str, Histogram]):
        unknown = {k: q for k, q in quantities.items() if q not in QUANTITIES}
        if unknown:
            name, q = next(iter(unknown.items()))
            raise HistogramError(
                f"observable {name!r}: unknown quantity {q!r}; known: {sorted(QUANTITIES)}"
            )
        missing = [k for k in quantities if k not in binnings]
        if missing:
            raise HistogramError(f"no binning given for observable(s) {missing}")
        for k, q in quantities.items():
            if QUANTITIES[q].kind != "mean" and np.any(binnings[k].points):
                raise HistogramError(
                    f"observable {k!r}: its binning {binnings[k].name!r} holds points (bins of "
                    f"zero width) that no event can fall in; select the bins "
                    f"(Histogram.select) or give a binned template")
        self.quantities = dict(quantities)
        self.binnings = {k: binnings[k] for k in quantities}

    @property
    def needs_y23(self) -> bool:
        return any(q in NEEDS_Y23 for q in self.quantities.values())

    @property
    def needs_thrust(self) -> bool:
        return any(q in NEEDS_THRUST for q in self.quantities.values())

    # ------------------------------------------------------------------ reduce
    def reduce(self, records: Sequence[EventRecord]) -> Sums:
        """Per-bin sums over ``records`` (additive across event samples)."""
        batch = _Batch(records)
        sumw, sumw2, n_filled = {}, {}, {}
        for name, qname in self.quantities.items():
            q = QUANTITIES[qname]
            ref = self.binnings[name]
            vals = q.values(batch)
            if q.kind == "particle":
                sumw[name], sumw2[name] = _particle_sums(vals, batch.event_index(q.over),
                                                         batch.n, ref)
                n_filled[name] = float(batch.n)
                continue
            finite = np.isfinite(vals)
            n_filled[name] = float(finite.sum())
            if q.kind == "mean":
                sumw[name] = np.array([vals[finite].sum()])
                sumw2[name] = np.array([np.square(vals[finite]).sum()])
            else:
                counts = _bin_counts(vals, ref.lower, ref.upper)
                sumw[name], sumw2[name] = counts, counts.copy()
        return Sums(sumw, sumw2, n_filled, len(records))

    # ------------------------------------------------------------------ finalize
    def finalize(self, sums: Sums) -> dict[str, Histogram]:
        """Normalised histograms with MC statistical errors from the summed ``sums``.

        Keyed by observable name; each histogram is named like its binning template (so a
        prediction binned like Rivet reference data carries the Rivet path).
        """
        out = {}
        for name, qname in self.quantities.items():
            q = QUANTITIES[qname]
            ref = self.binnings[name]
            width = ref.widths
            sw, sw2 = sums.sumw[name], sums.sumw2[name]
            n_ev = float(sums.n_events)
            if q.kind == "mean":
                n = max(sums.n_filled[name], 1.0)
                mean = sw / n
                var = np.maximum(sw2 / n - mean**2, 0.0) / n
                values, errors = mean, np.sqrt(var)
            elif q.kind == "particle":
                n = max(n_ev, 1.0)
                mean = sw / n
                var = np.maximum(sw2 / n - mean**2, 0.0) / n
                err = np.sqrt(var)
                err = np.maximum(err, 1.0 / n)
                values, errors = mean / width, err / width
            else:
                n = max(n_ev if q.kind == "fraction" else sums.n_filled[name], 1.0)
                frac = sw / n
                err = np.sqrt(np.maximum(frac * (1.0 - frac), 0.0) / n)
                err = np.maximum(err, 1.0 / n)
                if q.kind in ("event", "entry"):
                    values, errors = frac / width, err / width
                else:  # fraction of events per bin, not a density
                    values, errors = frac, err
            out[name] = Histogram(ref.name, ref.lower, ref.upper, values, errors)
        return out
