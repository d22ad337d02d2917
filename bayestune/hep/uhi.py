"""scikit-hep histograms in and out: the UHI plotting protocol.

``hist.Hist``, ``boost_histogram.Histogram`` and uproot's histograms read from ROOT files
all follow the UHI plotting protocol (``axes``, ``values()``, ``variances()``, ``kind``).
:func:`as_histogram` turns any such 1-D histogram into a :class:`Histogram` (the bins of its
axis, its values, the square roots of its variances as errors), and wherever bayestune takes a
``Histogram`` -- a reference, a simulator's output, the chi2, the YODA writer -- it accepts
one of these too. :func:`to_hist` converts back, to a ``hist.Hist`` with weighted storage.

Values are taken as they are stored: fill with weights that make the normalisation the
reference uses (or pass ``density=True`` for a unit-area density), so that simulation and
data compare bin by bin.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .histogram import Histogram, HistogramError

__all__ = ["as_histogram", "is_uhi", "to_hist"]


def is_uhi(obj: Any) -> bool:
    """Whether ``obj`` follows the UHI plotting protocol (and is not a bayestune
    :class:`Histogram`)."""
    return (not isinstance(obj, Histogram) and hasattr(obj, "axes")
            and callable(getattr(obj, "values", None))
            and callable(getattr(obj, "variances", None)))


def as_histogram(obj: Any, name: str | None = None, *, density: bool = False) -> Histogram:
    """A :class:`Histogram` from a :class:`Histogram` (returned as it is) or a 1-D UHI
    histogram.

    Raises :class:`HistogramError` naming the histogram for anything that is not a 1-D
    histogram with a continuous axis and known variances.

    Parameters
    ----------
    obj : Histogram or UHI histogram
    name : str, optional
        The name of the result (default: the histogram's ``name``, else ``"histogram"``).
    density : bool
        Divide the values and errors by the total and the bin widths (a unit-area density).
    """
    if isinstance(obj, Histogram):
        return obj if name is None or name == obj.name else obj.renamed(name)
    label = name or str(getattr(obj, "name", None) or "histogram")
    if not is_uhi(obj):
        raise HistogramError(f"{label!r}: expected a bayestune Histogram or a histogram of the "
                             f"UHI protocol (hist, boost-histogram, uproot), got "
                             f"{type(obj).__name__}")
    axes = list(obj.axes)
    if len(axes) != 1:
        raise HistogramError(f"{label!r}: a {len(axes)}-D histogram; bayestune compares 1-D "
                             "histograms (project it, e.g. h.project(0), or slice it)")
    axis = axes[0]
    traits = getattr(axis, "traits", None)
    discrete = getattr(traits, "discrete", not getattr(traits, "continuous", True))
    if discrete:
        raise HistogramError(f"{label!r}: its axis is discrete (categories); bayestune needs "
                             "bins with numeric edges")
    edges = np.array([axis[i] for i in range(len(axis))], dtype=float)  # (n, 2)
    values = np.asarray(obj.values(), dtype=float)
    variances = obj.variances()
    if variances is None:
        raise HistogramError(f"{label!r}: its variances are unknown (a weighted fill without "
                             "weight storage); fill it with .Weight() storage")
    errors = np.sqrt(np.maximum(np.asarray(variances, dtype=float), 0.0))
    if density:
        total = float(np.sum(values))
        if not total > 0:
            raise HistogramError(f"{label!r}: density=True needs a positive total, got {total}")
        width = edges[:, 1] - edges[:, 0]
        values, errors = values / (total * width), errors / (total * width)
    return Histogram(label, edges[:, 0], edges[:, 1], values, errors)


def to_hist(histogram: Histogram, *, label: str | None = None) -> Any:
    """A ``hist.Hist`` (variable axis, weight storage) holding ``histogram``'s values and
    the squares of its errors as variances. Needs contiguous bins (no gaps, no points)."""
    import hist

    if np.any(histogram.points) or not histogram.is_contiguous:
        raise HistogramError(f"{histogram.name!r} has gaps, overlaps or points: a hist axis "
                             "needs contiguous bins")
    out = hist.Hist(hist.axis.Variable(histogram.edges, name="x", label=label or "x"),
                    storage=hist.storage.Weight(), name=histogram.name)
    view = out.view()
    view.value = histogram.values
    view.variance = histogram.errors**2
    return out
