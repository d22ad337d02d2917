"""The chi2 of simulated histograms against reference data, as a bayestune objective.

For observables ``o`` with weights ``w_o`` and bins ``b`` with weights ``w_ob``::

    chi2 = sum_o w_o sum_b w_ob (s_b - d_b)^2 / V_b,   V_b = sigma_d^2 + sigma_s^2 + (f d_b)^2

with ``d`` the data and ``sigma_d`` its error, ``s`` the simulation and ``sigma_s`` its Monte
Carlo statistical error, and ``f`` an optional relative model-uncertainty floor.

The chi2 of a finite simulation is itself noisy. With ``s = mu + e``, ``e ~ N(0, sigma_s^2)``
and ``r = mu - d``, each term ``(r + e)^2 / V`` has variance ``(4 r^2 sigma_s^2 + 2 sigma_s^4)
/ V^2``. :class:`HistogramObjective` reports this variance (with ``r^2`` estimated without bias
by ``max((s - d)^2 - sigma_s^2, 0)``) as the :class:`~bayestune.Evaluation` variance, so the GP
surrogate sees the real noise of each evaluation.

With ``correlated_sources`` (patterns of error-source names, such as ``["sys*"]``), the data
errors a reference histogram breaks down into sources (:attr:`Histogram.sources`, read from a
YODA ``ErrorBreakdown`` or a HEPData table) are split: the matching sources are taken as fully
correlated across the bins of the histogram, the rest stay independent, and each histogram's
terms become a covariance chi2 ``r^T C^-1 r`` with ``C = diag(V_b - sum_s e_sb^2) + sum_s e_s
e_s^T`` over its used bins (``r`` scaled by the square roots of the bin weights). Histograms
without a breakdown keep the independent terms.
"""

from __future__ import annotations

import fnmatch
import math
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..objective import Evaluation
from .histogram import Histogram, HistogramError, normalise_path
from .uhi import as_histogram, is_uhi

__all__ = ["Weights", "HistogramObjective", "Chi2", "UsedBins", "chi2"]


@dataclass(frozen=True)
class _Range:
    low: float
    high: float
    weight: float


class Weights:
    """Professor-style chi2 weights: per observable, optionally per range of x.

    Parameters
    ----------
    weights : mapping, optional
        ``name -> weight`` or ``name -> [(low, high, weight), ...]`` or both forms through
        ``{"weight": w, "ranges": [(low, high, w_range), ...]}``. A bin takes the weight of the
        last range containing its centre, else the observable's weight. Weight 0 drops bins.
    default : float
        Weight of observables not listed (1: use everything; 0: use only what is listed).

    Examples
    --------
    >>> w = Weights({"ALEPH96_pToutS": {"weight": 1.0, "ranges": [(2.0, 5.0, 0.0)]}})
    >>> w = Weights.from_text('''
    ... /ALEPH_1996_S3486095/d03-x01-y01   1
    ... /ALEPH_1996_S3486095/d12-x01-y01@0:2   1   # drop the pT_out tail
    ... ''')
    """

    def __init__(self, weights: Mapping[str, Any] | None = None, *, default: float = 1.0):
        self.default = self._check(float(default), "default")
        self._base: dict[str, float] = {}
        self._ranges: dict[str, list[_Range]] = {}
        for name, spec in (weights or {}).items():
            key = normalise_path(name)
            if isinstance(spec, Mapping):
                if "weight" in spec:
                    self._base[key] = self._check(float(spec["weight"]), name)
                for lo, hi, w in spec.get("ranges", []):
                    self._add_range(key, lo, hi, w, name)
            elif isinstance(spec, (int, float, np.integer, np.floating)):
                self._base[key] = self._check(float(spec), name)
            else:
                for lo, hi, w in spec:
                    self._add_range(key, lo, hi, w, name)

    @staticmethod
    def _check(w: float, name: str) -> float:
        if not (math.isfinite(w) and w >= 0):
            raise ValueError(f"chi2 weight must be finite and >= 0, got {w!r} for {name!r}")
        return w

    def _add_range(self, key: str, lo: float, hi: float, w: float, name: str) -> None:
        lo, hi = float(lo), float(hi)
        if not lo < hi:
            raise ValueError(
                f"weight range must have low < high, got low={lo}, high={hi} for {name!r}"
            )
        self._ranges.setdefault(key, []).append(_Range(lo, hi, self._check(float(w), name)))

    @classmethod
    def from_text(cls, text: str, *, default: float = 0.0) -> Weights:
        """Parse a Professor weight file: ``path[@low:high] weight`` per line, ``#`` comments.

        Observables not listed get ``default`` (0, as in Professor: only listed ones count).
        """
        spec: dict[str, dict[str, Any]] = {}
        for lineno, raw in enumerate(text.splitlines(), start=1):
            line = raw.split("#", 1)[0].strip()
            if not line:
                continue
            parts = line.split()
            if len(parts) == 1:
                path, weight = parts[0], 1.0
            else:
                try:
                    path, weight = parts[0], float(parts[1])
                except ValueError:
                    raise ValueError(
                        f"weight file line {lineno}: cannot read a weight in {raw.strip()!r}"
                    ) from None
            match = re.fullmatch(r"(.+?)@(.*):(.*)", path)
            if match:
                name, lo, hi = match.groups()
                spec.setdefault(name, {"weight": 0.0, "ranges": []})["ranges"].append(
                    (float(lo) if lo else -np.inf, float(hi) if hi else np.inf, weight)
                )
            else:  # a whole-observable line sets the weight outside any listed range
                spec.setdefault(path, {"weight": 0.0, "ranges": []})["weight"] = weight
        return cls(spec, default=default)

    @classmethod
    def from_file(cls, path: str, *, default: float = 0.0) -> Weights:
        with open(path, encoding="utf-8") as fh:
            return cls.from_text(fh.read(), default=default)

    def _key(self, name: str, hist: Histogram | None) -> str:
        """The key weights are listed under: the observable name, else the histogram path."""
        key = normalise_path(name)
        if key in self._base or key in self._ranges or hist is None:
            return key
        return normalise_path(hist.name)

    def names(self) -> set[str]:
        """Observable names or paths that have explicit weights."""
        return set(self._base) | set(self._ranges)

    def observable_weight(self, name: str, hist: Histogram | None = None) -> float:
        return self._base.get(self._key(name, hist), self.default)

    def bin_weights(self, name: str, hist: Histogram) -> np.ndarray:
        """Per-bin weights of observable ``name`` (looked up by name, then by histogram path).

        Returns
        -------
        ndarray, shape (n_bins,)
        """
        key = self._key(name, hist)
        w = np.full(hist.n_bins, self._base.get(key, self.default))
        centres = hist.centres
        for r in self._ranges.get(key, []):
            inside = (centres >= r.low) & (centres <= r.high)
            w[inside] = r.weight
        return w

    def __repr__(self) -> str:
        return f"Weights({len(self._base)} observables, {len(self._ranges)} with ranges, " \
               f"default={self.default})"


@dataclass(frozen=True)
class Chi2:
    """A chi2 with its breakdown.

    Attributes
    ----------
    value : float
        Total weighted chi2.
    variance : float
        Estimated variance of ``value`` from the simulation's MC statistics.
    per_observable : dict
        Weighted chi2 of each observable.
    n_bins : dict
        Bins with non-zero weight per observable.
    ndf : int
        Bins with non-zero weight minus the number of tuned parameters (if known).
    pulls : dict
        Per-bin ``(s - d) / sqrt(V)`` for each observable (unweighted).
    """

    value: float
    variance: float
    per_observable: dict[str, float]
    n_bins: dict[str, int]
    ndf: int
    pulls: dict[str, np.ndarray] = field(repr=False)

    @property
    def n_bins_total(self) -> int:
        return int(sum(self.n_bins.values()))

    def per_bin(self) -> dict[str, float]:
        """chi2 per used bin of each observable (weights divided out)."""
        return {k: float(np.sum(self.pulls[k] ** 2) / max(n, 1))
                for k, n in self.n_bins.items()}

    def table(self) -> str:
        """A readable per-observable table."""
        width = max([len(k) for k in self.per_observable] + [10])
        lines = [f"{'observable':<{width}}  bins   chi2/bin   weighted chi2"]
        per_bin = self.per_bin()
        for k, v in self.per_observable.items():
            lines.append(f"{k:<{width}}  {self.n_bins[k]:4d}  {per_bin[k]:9.2f}   {v:12.2f}")
        lines.append(f"{'total':<{width}}  {self.n_bins_total:4d}  "
                     f"{'':9}   {self.value:12.2f} +- {math.sqrt(self.variance):.2f} (MC)")
        return "\n".join(lines)


def chi2(
    simulated: Mapping[str, Histogram],
    reference: Mapping[str, Histogram],
    weights: Weights | None = None,
    *,
    model_uncertainty: float = 0.0,
    n_params: int = 0,
    correlated_sources: Sequence[str] | None = None,
) -> Chi2:
    """The weighted chi2 of ``simulated`` against ``reference`` (see the module docstring)."""
    weights = weights or Weights()
    patterns = _checked_patterns(correlated_sources)
    reference = _as_mapping(reference)
    total = 0.0
    variance = 0.0
    per_obs: dict[str, float] = {}
    n_bins: dict[str, int] = {}
    pulls: dict[str, np.ndarray] = {}
    simulated = match_simulated(simulated, reference)
    for name, ref in reference.items():
        w_bins = weights.bin_weights(name, ref)
        if not np.any(w_bins > 0):
            continue
        if name not in simulated:
            raise HistogramError(
                f"the simulation returned no histogram for observable {name!r} "
                f"(it returned {sorted(simulated)})"
            )
        sim = simulated[name]
        ref.check_binning(sim)
        d, sd = ref.values, ref.errors
        s, ss = sim.values, sim.errors
        if not np.all(np.isfinite(s)):
            raise HistogramError(f"simulated observable {name!r} has non-finite values")
        v = sd**2 + ss**2 + (model_uncertainty * d) ** 2
        if np.any(v[w_bins > 0] <= 0):
            i = int(np.flatnonzero((v <= 0) & (w_bins > 0))[0])
            raise HistogramError(
                f"observable {name!r} bin {i} has zero total uncertainty: give the data an "
                "error or set a model_uncertainty"
            )
        used = w_bins > 0
        r = s - d
        safe_v = np.where(used, v, 1.0)
        shared = _correlated_columns(ref, patterns)
        if shared is None:
            terms = w_bins * r**2 / safe_v
            r2 = np.maximum(r**2 - ss**2, 0.0)
            var_terms = w_bins**2 * (4.0 * r2 * ss**2 + 2.0 * ss**4) / safe_v**2
            per_obs[name], var_h = float(terms[used].sum()), float(var_terms[used].sum())
        else:
            per_obs[name], var_h = _covariance_terms(r[used], ss[used], v[used],
                                                     shared[used], w_bins[used])
        n_bins[name] = int(used.sum())
        pulls[name] = (r / np.sqrt(safe_v))[used]
        total += per_obs[name]
        variance += var_h
    if not per_obs:
        raise HistogramError("no observable has a non-zero weight: the chi2 would be empty")
    ndf = int(sum(n_bins.values())) - int(n_params)
    return Chi2(total, variance, per_obs, n_bins, ndf, pulls)


def _checked_patterns(patterns: Sequence[str] | str | None) -> list[str]:
    if patterns is None:
        return []
    if isinstance(patterns, str):
        patterns = [patterns]
    out = list(patterns)
    if not all(isinstance(p, str) and p for p in out):
        raise ValueError("correlated_sources must be a list of error-source names or patterns "
                         f"(such as ['sys*']), got correlated_sources={patterns!r}")
    return out


def _correlated_columns(ref: Histogram, patterns: list[str]) -> np.ndarray | None:
    """The reference's error sources that match ``patterns``, as columns ``(n_bins, m)``;
    None when none match (or it has no breakdown)."""
    if not patterns or ref.sources is None:
        return None
    cols = [v for k, v in ref.sources.items()
            if any(fnmatch.fnmatchcase(k, p) for p in patterns)]
    return np.column_stack(cols) if cols else None


def _covariance_terms(r: np.ndarray, ss: np.ndarray, v: np.ndarray, shared: np.ndarray,
                      w: np.ndarray) -> tuple[float, float]:
    """One histogram's covariance chi2 and its MC-noise variance: ``v`` the independent
    variances (data, simulation, model floor), of which the ``shared`` columns' squares are
    moved into fully correlated terms; ``w`` the bin weights (scaling the residuals)."""
    independent = np.maximum(v - np.sum(shared**2, axis=1), 0.0) + 1e-300
    cov = np.diag(independent) + shared @ shared.T
    root_w = np.sqrt(w)
    rw = root_w * r
    a = np.linalg.solve(cov, rw)
    value = float(rw @ a)
    noise = w * ss**2  # the weighted residuals' MC variance
    cinv_noise = np.linalg.solve(cov, np.diag(noise))
    variance = 4.0 * float(a @ (noise * a)) + 2.0 * float(np.sum(cinv_noise * cinv_noise.T))
    return value, variance


def match_simulated(
    simulated: Mapping[str, Histogram], reference: Mapping[str, Histogram]
) -> dict[str, Histogram]:
    """Simulated histograms keyed like the reference.

    A simulated histogram matches a reference one by key, or else by its histogram path
    (``/REF`` stripped), so a simulator may key its output by short names.
    """
    simulated = {k: as_histogram(h, k) if is_uhi(h) else h for k, h in simulated.items()}
    by_path = {normalise_path(h.name): h for h in simulated.values()}
    out = {}
    for name, ref in reference.items():
        sim = simulated.get(name)
        if sim is None:
            sim = by_path.get(normalise_path(ref.name), by_path.get(normalise_path(name)))
        if sim is not None:
            out[name] = sim
    return out


def _as_mapping(reference: Mapping[str, Histogram] | Iterable[Histogram]) -> dict[str, Histogram]:
    if isinstance(reference, Mapping):
        out = {k: as_histogram(h, k) if is_uhi(h) else h for k, h in reference.items()}
    else:
        out = {}
        for h in reference:
            if is_uhi(h):
                h = as_histogram(h)
            if not isinstance(h, Histogram):
                raise TypeError(f"reference must hold Histogram objects (or UHI histograms: "
                                f"hist, boost-histogram, uproot), got {type(h).__name__}")
            out[normalise_path(h.name)] = h
    if not out:
        raise ValueError("reference is empty: give at least one histogram")
    return out


@dataclass(frozen=True)
class UsedBins:
    """The bins with non-zero weight of a reference, flattened in observable order.

    Attributes
    ----------
    masks : dict
        Observable name -> bool mask of its used bins.
    data, errors, weights : ndarray, shape (B,)
        Reference values, their errors and the chi2 weights of the ``B`` used bins.
    mc_errors : ndarray, shape (B,), optional
        The MC statistical part of ``errors`` when the reference is a simulation (see
        ``reference_mc_errors`` of :class:`HistogramObjective`); ``None`` for measured data.
    """

    masks: dict[str, np.ndarray]
    data: np.ndarray
    errors: np.ndarray
    weights: np.ndarray
    mc_errors: np.ndarray | None = None

    def flatten(self, per_observable: Mapping[str, Any]) -> np.ndarray:
        """Concatenate ``per_observable[name]`` (full-length arrays) over the used bins."""
        return _flatten(self.masks, per_observable)


def _flatten(masks: Mapping[str, np.ndarray], per_observable: Mapping[str, Any]) -> np.ndarray:
    return np.concatenate([np.asarray(per_observable[n])[m] for n, m in masks.items()])


class HistogramObjective:
    """An objective comparing simulated histograms with reference data through a chi2.

    Parameters
    ----------
    simulate : callable
        ``simulate(params) -> {name: Histogram}`` with the MC statistical errors.
    reference : mapping of str to Histogram, or sequence of Histogram
        The data; a sequence is keyed by histogram name (``/REF`` stripped). 1-D histograms
        of the UHI protocol (``hist.Hist``, boost-histogram, uproot) are accepted here and in
        the simulator's output (:func:`~bayestune.hep.uhi.as_histogram`).
    weights : Weights or mapping, optional
        Observable and bin weights (see :class:`Weights`).
    model_uncertainty : float
        Relative model-uncertainty floor ``f`` added in quadrature (e.g. 0.05 for 5 %).
    n_params : int
        Number of tuned parameters, subtracted from the bin count for ``ndf``.
    keep_pulls : bool
        Store per-bin pulls in the evaluation ``info`` (for data/MC plots later).
    keep_bins : bool
        Store the simulated bin values and errors in ``info["bins"]``
        (``{name: [values, errors]}``), which bin-by-bin surrogates
        (:mod:`bayestune.hep.binwise`) are fitted to.
    reference_mc_errors : mapping of str to array_like, optional
        For a reference that is itself a simulation, such as a closure's pseudo-data: the
        MC statistical errors contained in its errors, per histogram (at most the errors).
        One simulation fills all histograms from the same events, so this noise is
        correlated across bins (a few more particles raise the multiplicity, the whole
        xi spectrum and the mean multiplicity together); the chi2 treats bins as
        independent, and the bin-by-bin fits' uncertainty
        (:meth:`~bayestune.hep.binwise.BinwiseModel.uncertainty`) adds what the
        correlation changes, with the correlation measured on the runs themselves.
    correlated_sources : list of str, optional
        Error sources of the reference (:attr:`Histogram.sources`; shell-style patterns such
        as ``"sys*"``) to treat as fully correlated across the bins of each histogram (a
        covariance chi2; see the module docstring). Default: every bin independent. The
        bin-by-bin models (generator tuning, ``binwise``) fit independent bins and refuse
        such an objective.

    Notes
    -----
    Calling the objective returns an :class:`~bayestune.Evaluation` with ``value`` = chi2,
    ``variance`` = its MC-noise variance, and ``info`` holding ``chi2_per_observable``,
    ``n_bins``, ``ndf`` and (optionally) ``pulls``.
    """

    def __init__(
        self,
        simulate: Callable[[dict[str, Any]], Mapping[str, Histogram]],
        reference: Mapping[str, Histogram] | Sequence[Histogram],
        weights: Weights | Mapping[str, Any] | None = None,
        *,
        model_uncertainty: float = 0.0,
        n_params: int = 0,
        keep_pulls: bool = True,
        keep_bins: bool = False,
        reference_mc_errors: Mapping[str, Any] | None = None,
        correlated_sources: Sequence[str] | None = None,
    ) -> None:
        if not callable(simulate):
            raise TypeError(f"simulate must be callable, got {type(simulate).__name__}")
        f = float(model_uncertainty)
        if not (math.isfinite(f) and f >= 0):
            raise ValueError(f"model_uncertainty must be >= 0, got model_uncertainty={f!r}")
        if not isinstance(n_params, (int, np.integer)) or n_params < 0:
            raise ValueError(f"n_params must be a non-negative integer, got n_params={n_params!r}")
        self.simulate = simulate
        self.reference = _as_mapping(reference)
        self.weights = weights if isinstance(weights, Weights) else Weights(weights)
        self.model_uncertainty = f
        self.n_params = int(n_params)
        self.keep_pulls = keep_pulls
        self.keep_bins = keep_bins
        known = set(self.reference) | {normalise_path(h.name) for h in self.reference.values()}
        unknown = sorted(self.weights.names() - known)
        if unknown:
            raise KeyError(
                f"weights name observable(s) {unknown} that are not in the reference "
                f"({sorted(self.reference)})"
            )
        self.reference_mc_errors = _checked_mc_errors(reference_mc_errors, self.reference)
        self.correlated_sources = _checked_patterns(correlated_sources)
        if self.correlated_sources and not any(
                _correlated_columns(h, self.correlated_sources) is not None
                for h in self.reference.values()):
            sources = sorted({k for h in self.reference.values() for k in h.sources or {}})
            raise ValueError(f"correlated_sources={self.correlated_sources!r} matches no error "
                             f"source of the reference histograms (their sources: {sources})")

    def used_bins(self) -> UsedBins:
        """The reference bins that enter the chi2 (non-zero weight), flattened.

        Bin-by-bin models fit these bins as independent: an objective with
        ``correlated_sources`` raises here."""
        if self.correlated_sources:
            raise ValueError(
                "the bin-by-bin models fit independent bins, and this objective correlates "
                f"error sources across bins (correlated_sources={self.correlated_sources!r}): "
                "tune it with a chi2 surrogate (bayestune.Tuner), or leave correlated_sources "
                "unset")
        masks, weights = {}, {}
        for name, ref in self.reference.items():
            w = self.weights.bin_weights(name, ref)
            if np.any(w > 0):
                masks[name], weights[name] = w > 0, w
        refs = {n: self.reference[n] for n in masks}
        mc = self.reference_mc_errors
        return UsedBins(masks, _flatten(masks, {n: h.values for n, h in refs.items()}),
                        _flatten(masks, {n: h.errors for n, h in refs.items()}),
                        _flatten(masks, weights),
                        None if mc is None else _flatten(masks, mc))

    def chi2(self, simulated: Mapping[str, Histogram]) -> Chi2:
        """The chi2 breakdown of already simulated histograms."""
        return chi2(simulated, self.reference, self.weights,
                    model_uncertainty=self.model_uncertainty, n_params=self.n_params,
                    correlated_sources=self.correlated_sources)

    def __call__(self, params: dict[str, Any]) -> Evaluation:
        return self.evaluation(self.simulate(params))

    def evaluation(self, simulated: Mapping[str, Histogram]) -> Evaluation:
        """The :class:`~bayestune.Evaluation` of histograms simulated elsewhere (a run made
        before, such as one of a Professor scan): what calling the objective returns."""
        simulated = match_simulated(simulated, self.reference)
        result = self.chi2(simulated)
        info: dict[str, Any] = {
            "chi2_per_observable": result.per_observable,
            "n_bins": result.n_bins,
            "ndf": result.ndf,
        }
        if self.keep_pulls:
            info["pulls"] = {k: v.tolist() for k, v in result.pulls.items()}
        if self.keep_bins:
            info["bins"] = {k: [simulated[k].values.tolist(), simulated[k].errors.tolist()]
                            for k in result.per_observable}
        return Evaluation(result.value, result.variance, info)

    def __repr__(self) -> str:
        return (f"HistogramObjective({len(self.reference)} observables, "
                f"model_uncertainty={self.model_uncertainty}, {self.weights!r})")


def _checked_mc_errors(mc: Mapping[str, Any] | None,
                       reference: Mapping[str, Histogram]) -> dict[str, np.ndarray] | None:
    """``reference_mc_errors`` as arrays for every reference histogram (zeros where not
    given), checked against the reference's errors."""
    if mc is None:
        return None
    unknown = sorted(set(mc) - set(reference))
    if unknown:
        raise KeyError(f"reference_mc_errors names histogram(s) {unknown} that are not in the "
                       f"reference ({sorted(reference)})")
    out = {}
    for name, ref in reference.items():
        err = np.asarray(mc.get(name, np.zeros(ref.n_bins)), dtype=float)
        if err.shape != (ref.n_bins,):
            raise ValueError(f"reference_mc_errors[{name!r}] has shape {err.shape}, the "
                             f"reference histogram has {ref.n_bins} bins")
        if not np.all(np.isfinite(err) & (err >= 0)):
            raise ValueError(f"reference_mc_errors[{name!r}] must be finite and >= 0, got "
                             f"{err.tolist()}")
        if np.any(err > ref.errors * (1 + 1e-9) + 1e-300):
            raise ValueError(f"reference_mc_errors[{name!r}] exceeds the reference's errors "
                             f"({err.tolist()} > {ref.errors.tolist()})")
        out[name] = err
    return out
