"""Plots people expect from a tune. Each plot has a ``*_data`` function that computes the
numbers and a ``plot_*`` function that draws them (so the numbers can be tested and reused).

Matplotlib is imported lazily and the active backend is left alone (Jupyter, Qt, Agg ...).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from .closure import ClosureResult
    from .hep.histogram import Histogram
    from .scans import PosteriorSamples, Profile, Profile2D
    from .uncertainty import Uncertainty

__all__ = ["pull_data", "plot_pulls", "ratio_data", "plot_ratios", "convergence_data",
           "plot_convergence", "plot_profiles", "plot_profile2d", "ellipse_data", "plot_corner",
           "plot_correlation"]


def _pyplot():
    import matplotlib.pyplot as plt  # the caller's backend (Agg when there is no display)

    return plt


def pull_data(results: Sequence[ClosureResult]) -> tuple[list[str], np.ndarray]:
    """Parameter names and pulls, shape (n_results, n_params)."""
    if not results:
        raise ValueError("pull_data needs at least one closure result")
    names = list(results[0].pulls)
    return names, np.array([[r.pulls[n] for n in names] for r in results], dtype=float)


def plot_pulls(results: Sequence[ClosureResult], ax: Any = None):
    """Pulls per parameter (one marker per closure test) with 1 and 2 sigma bands."""
    plt = _pyplot()
    names, pulls = pull_data(results)
    fig = None
    if ax is None:
        fig, ax = plt.subplots(figsize=(6.5, 0.6 * len(names) + 1.6))
    else:
        fig = ax.figure
    y = np.arange(len(names))
    ax.axvspan(-2, 2, color="#f3e6a8", zorder=0, label=r"$\pm 2\sigma$")
    ax.axvspan(-1, 1, color="#a8d5a2", zorder=0, label=r"$\pm 1\sigma$")
    ax.axvline(0.0, color="k", lw=0.8)
    jitter = np.linspace(-0.15, 0.15, pulls.shape[0]) if pulls.shape[0] > 1 else np.zeros(1)
    for k in range(pulls.shape[0]):
        ax.plot(pulls[k], y + jitter[k], "o", color="C0", ms=5)
    ax.set_yticks(y, names)
    lim = max(3.0, float(np.nanmax(np.abs(pulls))) + 0.5)
    ax.set_xlim(-lim, lim)
    ax.set_xlabel("pull = (tuned - truth) / sigma")
    ax.set_title(f"closure pulls ({pulls.shape[0]} test{'s' if pulls.shape[0] > 1 else ''})")
    ax.legend(loc="lower right", fontsize="small")
    fig.tight_layout()
    return fig


def ratio_data(
    reference: Histogram, predictions: Mapping[str, Histogram]
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """MC/data ratio and its error for each labelled prediction.

    Returns
    -------
    dict
        label -> (ratio, ratio_error), each shape (n_bins,); the data's own relative error
        is under the label ``"data"``.
    """
    d = reference.values
    safe = np.where(d != 0, d, np.nan)
    out = {"data": (np.ones_like(d), reference.errors / np.abs(safe))}
    for label, h in predictions.items():
        reference.check_binning(h)
        out[label] = (h.values / safe, h.errors / np.abs(safe))
    return out


def plot_ratios(
    reference: Mapping[str, Histogram],
    predictions: Mapping[str, Mapping[str, Histogram]],
    *,
    ncols: int = 3,
    titles: Mapping[str, str] | None = None,
    style: str = "default",
):
    """Data and predictions (top) with MC/data ratios (bottom) for each observable.

    Parameters
    ----------
    reference : mapping of observable -> Histogram
    predictions : mapping of label -> (mapping of observable -> Histogram)
    style : {"default", "hep"}
        ``"hep"``: the ROOT-like style of ``mplhep`` (extra ``hep``), predictions drawn
        with ``mplhep.histplot``.
    """
    if style not in ("default", "hep"):
        raise ValueError(f"style must be 'default' or 'hep', got style={style!r}")
    plt = _pyplot()
    if style == "hep":
        try:
            import mplhep
        except ImportError:
            raise ImportError("style='hep' needs mplhep: pip install 'bayestune[hep]'") from None
        with plt.style.context(mplhep.style.ROOT):
            return _ratio_grid(plt, reference, predictions, ncols, titles, mplhep.histplot)
    return _ratio_grid(plt, reference, predictions, ncols, titles, None)


def _ratio_grid(plt: Any, reference: Mapping[str, Histogram],
                predictions: Mapping[str, Mapping[str, Histogram]], ncols: int,
                titles: Mapping[str, str] | None, histplot: Any):
    names = [n for n in reference if reference[n].n_bins > 1]
    nrows = -(-len(names) // ncols)
    fig = plt.figure(figsize=(4.2 * ncols, 4.0 * nrows))
    outer = fig.add_gridspec(nrows, ncols, hspace=0.35, wspace=0.3)
    for i, name in enumerate(names):
        r, c = divmod(i, ncols)
        cell = outer[r, c].subgridspec(2, 1, height_ratios=[2, 1], hspace=0.05)
        top = fig.add_subplot(cell[0])
        bottom = fig.add_subplot(cell[1], sharex=top)
        ref = reference[name]
        x = ref.centres
        top.errorbar(x, ref.values, yerr=ref.errors, xerr=0.5 * ref.widths, fmt="o", ms=3,
                     color="k", label="data")
        ratios = ratio_data(ref, {lab: p[name] for lab, p in predictions.items()})
        bottom.fill_between(x, 1 - ratios["data"][1], 1 + ratios["data"][1], step="mid",
                            color="0.85")
        for j, (label, pred) in enumerate(predictions.items()):
            h = pred[name]
            ratio, err = ratios[label]
            if h.is_contiguous and histplot is not None:
                histplot(h.values, h.edges, ax=top, color=f"C{j}", label=label)
                histplot(ratio, h.edges, ax=bottom, color=f"C{j}")
            elif h.is_contiguous:
                top.stairs(h.values, h.edges, color=f"C{j}", label=label)
                bottom.stairs(ratio, h.edges, color=f"C{j}")
            else:  # gapped binning: markers per bin
                top.plot(x, h.values, "s", color=f"C{j}", ms=3, label=label)
                bottom.plot(x, ratio, "s", color=f"C{j}", ms=3)
            bottom.errorbar(x, ratio, yerr=err, fmt="none", color=f"C{j}")
        top.set_title((titles or {}).get(name, name), fontsize="small")
        if np.all(ref.values > 0) and ref.values.max() / ref.values.min() > 50:
            top.set_yscale("log")
        top.tick_params(labelbottom=False)
        bottom.axhline(1.0, color="k", lw=0.8)
        bottom.set_ylim(0.7, 1.3)
        bottom.set_ylabel("MC/data", fontsize="small")
        if i == 0:
            top.legend(fontsize="x-small")
    return fig


def convergence_data(values: Sequence[float | None]) -> tuple[np.ndarray, np.ndarray]:
    """Trial numbers and best-so-far objective (failed trials carry the previous best)."""
    best = np.inf
    out = []
    for v in values:
        if v is not None and np.isfinite(v):
            best = min(best, float(v))
        out.append(best)
    arr = np.array(out, dtype=float)
    arr[~np.isfinite(arr)] = np.nan
    return np.arange(len(arr)), arr


def plot_convergence(values: Sequence[float | None], ax: Any = None, *, log: bool = True):
    """Best objective value so far against the trial number."""
    plt = _pyplot()
    x, best = convergence_data(values)
    if ax is None:
        fig, ax = plt.subplots(figsize=(5, 3.5))
    else:
        fig = ax.figure
    raw = np.array([np.nan if v is None else v for v in values], dtype=float)
    ax.plot(x, raw, ".", color="0.6", label="evaluations")
    ax.plot(x, best, "-", color="C0", label="best so far")
    if log and np.nanmin(raw) > 0:
        ax.set_yscale("log")
    ax.set_xlabel("trial")
    ax.set_ylabel("objective")
    ax.legend(fontsize="small")
    fig.tight_layout()
    return fig


# ----------------------------------------------------------------------- uncertainties
def plot_profiles(profiles: Mapping[str, Profile], ncols: int = 3,
                  uncertainty: Uncertainty | None = None):
    """Delta-chi2 profiles with the ``Delta = errordef`` line (and the Hessian parabola)."""
    plt = _pyplot()
    n = len(profiles)
    ncols = min(ncols, n)
    nrows = -(-n // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(3.6 * ncols, 2.9 * nrows), squeeze=False)
    for ax, (name, prof) in zip(axes.flat, profiles.items()):
        ax.plot(prof.values, prof.delta, "-", color="C0", label="profile")
        if uncertainty is not None and name in uncertainty.errors:
            err = uncertainty.errors[name]
            if np.isfinite(err) and err > 0:
                x0 = uncertainty.x[name]
                parab = prof.errordef * ((prof.values - x0) / err) ** 2
                ax.plot(prof.values, parab, ":", color="C1", label="Hessian")
        ax.axhline(prof.errordef, color="C3", ls="--", lw=1)
        lo, hi = prof.interval()
        for edge in (lo, hi):
            if np.isfinite(edge):
                ax.axvline(edge, color="0.5", lw=0.8)
        ax.set_ylim(0, max(4 * prof.errordef, 1.1 * min(np.max(prof.delta), 9 * prof.errordef)))
        ax.set_xlabel(name, fontsize="small")
        ax.set_ylabel("$\\Delta\\chi^2$" if prof.errordef == 1 else "$\\Delta(-\\ln L)$")
    axes.flat[0].legend(fontsize="x-small")
    for ax in list(axes.flat)[n:]:
        ax.set_visible(False)
    fig.tight_layout()
    return fig


def plot_profile2d(profile: Profile2D, ax: Any = None):
    """Contours of a two-parameter profile at the 1 and 2 sigma levels (2 d.o.f.)."""
    plt = _pyplot()
    if ax is None:
        fig, ax = plt.subplots(figsize=(4.5, 4))
    else:
        fig = ax.figure
    scale = 2.0 * profile.errordef  # levels 2.30 and 6.18 are for Delta chi2
    mesh = ax.pcolormesh(profile.x_values, profile.y_values, profile.delta.T, shading="auto",
                         cmap="viridis_r", vmax=10 * profile.errordef)
    ax.contour(profile.x_values, profile.y_values, profile.delta.T,
               levels=[2.30 * scale / 2, 6.18 * scale / 2], colors=["w", "0.8"])
    fig.colorbar(mesh, ax=ax, label="$\\Delta$")
    ax.set_xlabel(profile.x_name)
    ax.set_ylabel(profile.y_name)
    fig.tight_layout()
    return fig


def ellipse_data(mean: Sequence[float], cov: np.ndarray, n_sigma: float = 1.0,
                 n_points: int = 100) -> np.ndarray:
    """Points ``(n_points, 2)`` of the ``n_sigma`` ellipse of a 2x2 covariance."""
    cov = np.asarray(cov, dtype=float)
    vals, vecs = np.linalg.eigh(cov)
    t = np.linspace(0, 2 * np.pi, n_points)
    circle = np.stack([np.cos(t), np.sin(t)])
    return (np.asarray(mean)[:, None] + n_sigma * vecs @ (np.sqrt(np.clip(vals, 0, None))[:, None]
                                                          * circle)).T


def plot_corner(samples: PosteriorSamples, uncertainty: Uncertainty | None = None,
                bins: int = 30):
    """Corner plot of posterior samples; the Hessian 1-sigma ellipse and error bars on top."""
    plt = _pyplot()
    k = len(samples.names)
    fig, axes = plt.subplots(k, k, figsize=(2.3 * k + 0.8, 2.3 * k + 0.8), squeeze=False)
    data = samples.samples
    for i in range(k):
        for j in range(k):
            ax = axes[i, j]
            if j > i:
                ax.set_visible(False)
                continue
            if i == j:
                ax.hist(data[:, i], bins=bins, histtype="step", color="C0", density=True)
                lo, hi = samples.interval(samples.names[i])
                ax.axvspan(lo, hi, color="C0", alpha=0.15)
                if uncertainty is not None:
                    x0, err = uncertainty.x[samples.names[i]], uncertainty.errors[samples.names[i]]
                    ax.axvline(x0, color="C3", lw=1)
                    ax.axvspan(x0 - err, x0 + err, color="C3", alpha=0.1)
                ax.set_yticks([])
            else:
                ax.hist2d(data[:, j], data[:, i], bins=bins, cmap="Blues")
                if uncertainty is not None:
                    names = uncertainty.names
                    a, b = names.index(samples.names[j]), names.index(samples.names[i])
                    cov = uncertainty.covariance[np.ix_([a, b], [a, b])]
                    if np.all(np.isfinite(cov)):
                        mean = [uncertainty.x[samples.names[j]], uncertainty.x[samples.names[i]]]
                        ell = ellipse_data(mean, cov)
                        ax.plot(ell[:, 0], ell[:, 1], color="C3", lw=1.2)
            if i == k - 1:
                ax.set_xlabel(samples.names[j], fontsize="small")
            else:
                ax.set_xticklabels([])
            if j == 0 and i > 0:
                ax.set_ylabel(samples.names[i], fontsize="small")
            elif j > 0:
                ax.set_yticklabels([])
            ax.tick_params(labelsize="x-small")
    fig.suptitle("posterior samples (blue), Hessian 1$\\sigma$ (red)", fontsize="small")
    fig.tight_layout()
    return fig


def plot_correlation(uncertainty: Uncertainty, ax: Any = None):
    """The correlation matrix of the tuned parameters, with the numbers written in."""
    plt = _pyplot()
    corr = uncertainty.correlation
    k = len(uncertainty.names)
    if ax is None:
        fig, ax = plt.subplots(figsize=(1.0 * k + 2.5, 0.9 * k + 2))
    else:
        fig = ax.figure
    im = ax.imshow(corr, vmin=-1, vmax=1, cmap="RdBu_r")
    for i in range(k):
        for j in range(k):
            ax.text(j, i, f"{corr[i, j]:.2f}", ha="center", va="center", fontsize="x-small")
    ax.set_xticks(range(k), uncertainty.names, rotation=45, ha="right", fontsize="small")
    ax.set_yticks(range(k), uncertainty.names, fontsize="small")
    fig.colorbar(im, ax=ax)
    fig.tight_layout()
    return fig
