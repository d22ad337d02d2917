"""A small 1-D histogram type with explicit per-bin edges.

Reference data and simulated predictions are both :class:`Histogram` objects: each bin has
its own lower and upper edge (so binnings with gaps, as in several identified-particle spectra,
are represented exactly), a value (a density, a fraction or a mean, already normalised) and an
error (one standard deviation).  A scalar such as <N_ch> is a one-bin histogram.

A bin whose lower and upper edges coincide is a *point*: a value measured at one ``x``, as
reference files give a quantity measured at several centre-of-mass energies. A point compares
with the simulation's value at the same ``x``; one point of such a series is a one-value
observable (:meth:`Histogram.point`).

Errors may carry their breakdown into named sources (``stat``, ``sys``, ``sys,unfolding``...)
as read from a YODA ``ErrorBreakdown`` or a HEPData table: ``errors`` is always the total
(the sources added in quadrature), and the chi2 can treat chosen sources as correlated
across the bins of a histogram (``correlated_sources`` of
:class:`~bayestune.hep.chi2.HistogramObjective`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

from ..exceptions import BayestuneError

__all__ = ["Histogram", "HistogramError", "normalise_path"]


class HistogramError(BayestuneError, ValueError):
    """A histogram is malformed, or two histograms that must match do not."""


def normalise_path(path: str) -> str:
    """Strip the ``/REF`` prefix and surrounding blanks so data and MC paths compare equal.

    ``"/REF/ALEPH_1996_S3486095/d03-x01-y01"`` -> ``"/ALEPH_1996_S3486095/d03-x01-y01"``.
    """
    path = path.strip()
    if path.startswith("/REF/"):
        path = path[4:]
    return path


@dataclass(frozen=True, eq=False, init=False)
class Histogram:
    """Binned values with errors.

    Bins are ordered by their lower edge. Gaps are allowed; so are (small) overlaps, because
    some published tables have them (DELPHI 1996 d49 has bins [2.15, 2.35] and [2.34, 2.45]).
    Predictions are filled bin by bin from the explicit edges, so both cases are handled.

    Parameters
    ----------
    name : str
        Identifier, usually the analysis path (``/ALEPH_1996_S3486095/d03-x01-y01``).
    lower, upper : array_like, shape (n_bins,)
        Bin edges, ``lower <= upper`` in every bin (equal for a point), ordered by ``lower``.
    values : array_like, shape (n_bins,)
    errors : array_like, shape (n_bins,)
        One-sigma uncertainties, >= 0: the total.
    sources : mapping of str to array_like, optional
        The breakdown of the errors into named sources (symmetric, one-sigma, per bin).
        Sources added in quadrature should give ``errors``; the chi2 uses them only to
        correlate chosen sources across bins.
    """

    name: str
    lower: np.ndarray
    upper: np.ndarray
    values: np.ndarray
    errors: np.ndarray
    sources: Mapping[str, np.ndarray] | None

    def __init__(
        self, name: str, lower: ArrayLike, upper: ArrayLike, values: ArrayLike, errors: ArrayLike,
        *, sources: Mapping[str, ArrayLike] | None = None,
    ) -> None:
        object.__setattr__(self, "name", str(name))
        given = {"lower": lower, "upper": upper, "values": values, "errors": errors}
        arrays = {}
        for field_name, raw in given.items():
            arr = np.atleast_1d(np.asarray(raw, dtype=float)).copy()
            if arr.ndim != 1:
                raise HistogramError(
                    f"histogram {self.name!r}: {field_name} must be 1-D, got shape {arr.shape}"
                )
            arr.setflags(write=False)
            arrays[field_name] = arr
            object.__setattr__(self, field_name, arr)
        n = arrays["lower"].size
        for field_name, arr in arrays.items():
            if arr.size != n:
                raise HistogramError(
                    f"histogram {self.name!r}: {field_name} has {arr.size} entries, "
                    f"lower has {n}"
                )
        if n == 0:
            raise HistogramError(f"histogram {self.name!r} has no bins")
        lo, hi = arrays["lower"], arrays["upper"]
        if not (np.all(np.isfinite(lo)) and np.all(np.isfinite(hi))):
            raise HistogramError(f"histogram {self.name!r}: bin edges must be finite")
        bad = np.flatnonzero(hi < lo)
        if bad.size:
            i = int(bad[0])
            raise HistogramError(
                f"histogram {self.name!r}: bin {i} has lower edge {lo[i]!r} > upper edge {hi[i]!r}"
            )
        unordered = np.flatnonzero(lo[1:] < lo[:-1])
        if unordered.size:
            i = int(unordered[0])
            raise HistogramError(
                f"histogram {self.name!r}: bins must be ordered by lower edge, but bin {i + 1} "
                f"starts at {lo[i + 1]!r} before bin {i} at {lo[i]!r}"
            )
        err = arrays["errors"]
        if np.any(~np.isfinite(err)) or np.any(err < 0):
            i = int(np.flatnonzero(~np.isfinite(err) | (err < 0))[0])
            raise HistogramError(
                f"histogram {self.name!r}: errors must be finite and >= 0, "
                f"got {err[i]!r} in bin {i}"
            )
        object.__setattr__(self, "sources", None if sources is None
                           else self._checked_sources(sources, n))

    def _checked_sources(self, sources: Mapping[str, ArrayLike], n: int
                         ) -> dict[str, np.ndarray]:
        if not isinstance(sources, Mapping):
            raise HistogramError(f"histogram {self.name!r}: sources must be a mapping of "
                                 f"source name to per-bin errors, got {type(sources).__name__}")
        out = {}
        for key, raw in sources.items():
            arr = np.atleast_1d(np.asarray(raw, dtype=float)).copy()
            if arr.shape != (n,):
                raise HistogramError(f"histogram {self.name!r}: error source {key!r} has shape "
                                     f"{arr.shape}, expected ({n},)")
            if np.any(~np.isfinite(arr)) or np.any(arr < 0):
                i = int(np.flatnonzero(~np.isfinite(arr) | (arr < 0))[0])
                raise HistogramError(f"histogram {self.name!r}: error source {key!r} must be "
                                     f"finite and >= 0, got {arr[i]!r} in bin {i}")
            arr.setflags(write=False)
            out[str(key)] = arr
        return out

    # ----------------------------------------------------------------------------- factories
    @classmethod
    def from_edges(
        cls, name: str, edges: ArrayLike, values: ArrayLike, errors: ArrayLike
    ) -> Histogram:
        """A gap-free histogram from ``n_bins + 1`` contiguous edges."""
        edges_arr = np.asarray(edges, dtype=float)
        return cls(name, edges_arr[:-1], edges_arr[1:], values, errors)

    @classmethod
    def scalar(cls, name: str, value: float, error: float, *, low: float = 0.0,
               high: float = 1.0) -> Histogram:
        """A one-bin observable, e.g. a mean multiplicity."""
        return cls(name, [low], [high], [value], [error])

    # ----------------------------------------------------------------------------- views
    @property
    def n_bins(self) -> int:
        return int(self.lower.size)

    @property
    def centres(self) -> np.ndarray:
        return 0.5 * (self.lower + self.upper)

    @property
    def widths(self) -> np.ndarray:
        return self.upper - self.lower

    @property
    def points(self) -> np.ndarray:
        """Bool mask of the bins that are points (zero width)."""
        return self.upper == self.lower

    @property
    def has_gaps(self) -> bool:
        return bool(np.any(self.lower[1:] > self.upper[:-1] + 1e-12))

    @property
    def is_contiguous(self) -> bool:
        """True when each bin starts where the previous one ends (no gaps, no overlaps)."""
        return bool(np.allclose(self.lower[1:], self.upper[:-1], rtol=1e-9, atol=1e-12))

    @property
    def edges(self) -> np.ndarray:
        """The ``n_bins + 1`` edges of a contiguous histogram."""
        if not self.is_contiguous:
            raise HistogramError(
                f"histogram {self.name!r} has gaps or overlaps in its binning: "
                "use lower/upper, not edges"
            )
        return np.append(self.lower, self.upper[-1])

    def same_binning(self, other: Histogram, *, rtol: float = 1e-6) -> bool:
        """Whether ``other`` has the same bins (edges equal to a relative tolerance)."""
        if other.n_bins != self.n_bins:
            return False
        # a point has no width: compare its x to the relative tolerance of its size
        scale = np.where(self.upper > self.lower, self.upper - self.lower,
                         np.maximum(np.abs(self.lower), 1.0))
        return bool(
            np.all(np.abs(self.lower - other.lower) <= rtol * scale)
            and np.all(np.abs(self.upper - other.upper) <= rtol * scale)
        )

    def check_binning(self, other: Histogram) -> None:
        """Raise :class:`HistogramError` naming the first differing bin if binnings differ."""
        if other.n_bins != self.n_bins:
            raise HistogramError(
                f"histogram {self.name!r} has {self.n_bins} bins but {other.name!r} has "
                f"{other.n_bins}"
            )
        if not self.same_binning(other):
            diff = np.flatnonzero(
                ~np.isclose(self.lower, other.lower) | ~np.isclose(self.upper, other.upper)
            )
            i = int(diff[0]) if diff.size else 0
            raise HistogramError(
                f"histograms {self.name!r} and {other.name!r} differ in bin {i}: "
                f"[{self.lower[i]}, {self.upper[i]}] vs [{other.lower[i]}, {other.upper[i]}]"
            )

    def renamed(self, name: str) -> Histogram:
        return Histogram(name, self.lower, self.upper, self.values, self.errors,
                         sources=self.sources)

    def with_errors(self, errors: np.ndarray) -> Histogram:
        """New total errors (their breakdown into sources, no longer valid, is dropped)."""
        return Histogram(self.name, self.lower, self.upper, self.values, errors)

    def with_values(self, values: np.ndarray, errors: np.ndarray | None = None) -> Histogram:
        return Histogram(
            self.name, self.lower, self.upper, values, self.errors if errors is None else errors,
            sources=self.sources if errors is None else None,
        )

    def select(self, mask: np.ndarray) -> Histogram:
        """The bins where ``mask`` (bool, shape (n_bins,)) is true."""
        mask = np.asarray(mask, dtype=bool)
        sources = None if self.sources is None else {
            k: v[mask] for k, v in self.sources.items()}
        return Histogram(
            self.name, self.lower[mask], self.upper[mask], self.values[mask], self.errors[mask],
            sources=sources,
        )

    def point(self, x: float, *, rtol: float = 1e-6) -> Histogram:
        """The one-value observable at ``x``: the point at ``x``, or else the bin holding it
        (a one-bin histogram named ``"<name>@<x>"``). Raises naming ``x`` and the histogram
        when neither exists."""
        x = float(x)
        at = np.flatnonzero(self.points & (np.abs(self.lower - x)
                                           <= rtol * max(abs(x), 1.0)))
        if not at.size:
            at = np.flatnonzero(~self.points & (self.lower <= x) & (x < self.upper))
        if not at.size:
            raise HistogramError(f"histogram {self.name!r} has no point or bin at x={x!r} "
                                 f"(its bins span [{self.lower[0]:g}, {self.upper[-1]:g}])")
        mask = np.zeros(self.n_bins, dtype=bool)
        mask[at[0]] = True
        return self.select(mask).renamed(f"{self.name}@{x:g}")

    def to_dict(self) -> dict[str, object]:
        """Plain lists, for JSON."""
        out: dict[str, object] = {
            "name": self.name,
            "lower": self.lower.tolist(),
            "upper": self.upper.tolist(),
            "values": self.values.tolist(),
            "errors": self.errors.tolist(),
        }
        if self.sources is not None:
            out["sources"] = {k: v.tolist() for k, v in self.sources.items()}
        return out

    @classmethod
    def from_dict(cls, data: dict[str, object]) -> Histogram:
        try:
            return cls(
                str(data["name"]), data["lower"], data["upper"],  # type: ignore[arg-type]
                data["values"], data["errors"],  # type: ignore[arg-type]
                sources=data.get("sources"),  # type: ignore[arg-type]
            )
        except KeyError as exc:
            raise HistogramError(f"histogram record is missing the key {exc.args[0]!r}") from None

    def __repr__(self) -> str:
        gaps = ", gapped" if self.has_gaps else ""
        if np.all(self.points):
            return f"Histogram({self.name!r}, {self.n_bins} points in [{self.lower[0]:g}, " \
                   f"{self.upper[-1]:g}])"
        return (
            f"Histogram({self.name!r}, {self.n_bins} bins in "
            f"[{self.lower[0]:g}, {self.upper[-1]:g}]{gaps})"
        )
