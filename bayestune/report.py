"""Campaign reports: a folder of PNG plots and one HTML page, read from a store.

:func:`write_report` draws what the campaign has: convergence and learned length scales
always; surrogate slices through the recommended point once a surrogate exists;
Delta-chi2 profiles, a corner plot of posterior samples and the correlation matrix when
uncertainties are requested (chi2 objectives); data/MC ratio plots when the trials of a
histogram objective kept their simulated bins.
"""

from __future__ import annotations

import html
import time
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .exceptions import BayestuneError, BayestuneWarning
from .plots import _pyplot
from .result import Result
from .space import Categorical, Integer

__all__ = ["Report", "slice_data", "plot_slices", "plot_lengthscales", "write_report"]


# ----------------------------------------------------------------------- slices
def slice_data(result: Result, n_points: int = 60) -> dict[str, dict[str, np.ndarray]]:
    """Surrogate mean and standard deviation along each parameter through ``result.x``.

    Returns
    -------
    dict
        ``{name: {"x": values (n,), "mean": (n,), "std": (n,)}}``; categorical parameters
        give one value per choice (``x`` holds the choice indices).
    """
    if result.surrogate is None or not result.surrogate.is_fitted:
        raise BayestuneError("slice_data needs a result with a fitted surrogate")
    space = result.space
    out: dict[str, dict[str, np.ndarray]] = {}
    for d in space:
        if isinstance(d, Categorical):
            values: list[Any] = list(d.choices)
            axis = np.arange(len(values), dtype=float)
        elif isinstance(d, Integer):
            axis = np.unique(np.round(_grid(d, n_points)))
            values = [int(v) for v in axis]
        else:
            axis = _grid(d, n_points)
            values = [float(v) for v in axis]
        points = [{**result.x, d.name: v} for v in values]
        mean, std = result.surrogate.predict(space.to_unit(points))
        out[d.name] = {"x": axis, "mean": np.asarray(mean), "std": np.asarray(std)}
    return out


def _grid(d: Any, n: int) -> np.ndarray:
    if getattr(d, "log", False):
        return np.geomspace(d.low, d.high, n)
    return np.linspace(d.low, d.high, n)


def plot_slices(result: Result, n_points: int = 60, ncols: int = 3) -> Any:
    """One panel per parameter: surrogate mean +- 2 sd through the recommended point."""
    plt = _pyplot()
    data = slice_data(result, n_points)
    space = result.space
    n = len(data)
    ncols = min(ncols, n)
    nrows = -(-n // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(3.6 * ncols, 2.8 * nrows), squeeze=False)
    done = result.history.completed
    for ax, (name, s) in zip(axes.flat, data.items()):
        d = space[name]
        lo, hi = s["mean"] - 2 * s["std"], s["mean"] + 2 * s["std"]
        if isinstance(d, Categorical):
            ax.errorbar(s["x"], s["mean"], yerr=2 * s["std"], fmt="o", color="C0")
            ax.set_xticks(s["x"], [str(c) for c in d.choices])
        else:
            ax.fill_between(s["x"], lo, hi, color="C0", alpha=0.25, lw=0)
            ax.plot(s["x"], s["mean"], color="C0")
            xs = [t.params[name] for t in done]
            ax.plot(xs, [t.value for t in done], ".", color="0.5", ms=3,
                    label="evaluations (projected)")
            ax.axvline(result.x[name], color="C3", lw=1, ls="--")
            if getattr(d, "log", False):
                ax.set_xscale("log")
            ax.set_ylim(np.min(lo) - 0.05 * np.ptp(hi - lo + 1e-12), np.max(hi))
        ax.set_xlabel(name, fontsize="small")
        ax.set_ylabel("objective", fontsize="small")
    for ax in list(axes.flat)[n:]:
        ax.set_visible(False)
    fig.suptitle("surrogate slices through the recommended point (mean $\\pm$ 2 sd)",
                 fontsize="small")
    fig.tight_layout()
    return fig


def lengthscale_data(result: Result) -> tuple[list[str], np.ndarray]:
    """Column labels and unit-cube length scales of the fitted surrogate."""
    if result.surrogate is None or not result.surrogate.is_fitted:
        raise BayestuneError("lengthscale_data needs a result with a fitted surrogate")
    labels: list[str] = []
    for d in result.space:
        if isinstance(d, Categorical):
            labels += [f"{d.name}={c}" for c in d.choices]
        else:
            labels.append(d.name)
    return labels, np.asarray(result.surrogate.lengthscales, dtype=float)


def plot_lengthscales(result: Result) -> Any:
    """Horizontal bars of the learned ARD length scales (unit cube; short = relevant)."""
    plt = _pyplot()
    labels, scales = lengthscale_data(result)
    fig, ax = plt.subplots(figsize=(5.5, 0.45 * len(labels) + 1.2))
    ax.barh(np.arange(len(labels)), scales, color="C0")
    ax.set_yticks(np.arange(len(labels)), labels, fontsize="small")
    ax.set_xscale("log")
    ax.axvline(1.0, color="0.5", lw=1, ls=":")
    ax.set_xlabel("length scale (fraction of the parameter range)")
    ax.invert_yaxis()
    fig.tight_layout()
    return fig


# ----------------------------------------------------------------------- report
@dataclass
class Report:
    """What :func:`write_report` wrote."""

    folder: Path
    html: Path
    images: dict[str, Path] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)


def _save(fig: Any, path: Path) -> Path:
    fig.savefig(path, dpi=90)
    _pyplot().close(fig)
    return path


def write_report(
    result: Result,
    folder: str | Path,
    *,
    title: str = "bayestune campaign",
    uncertainty: bool = False,
    reference: Mapping[str, Any] | None = None,
    store_path: str | Path | None = None,
    tune: Any = None,
    style: str = "default",
) -> Report:
    """Write PNG plots and ``index.html`` for a campaign result into ``folder``.

    Parameters
    ----------
    result : Result
    folder : str or Path
        Created if needed.
    title : str
    uncertainty : bool
        Compute Hessian uncertainties, Delta-chi2 profiles and posterior samples of the
        surrogate (for chi2 objectives).
    reference : mapping of str to Histogram, optional
        Reference data of a histogram objective: draws data/MC ratios of the recommended
        trial from its stored bins (``info["bins"]``).
    store_path : path, optional
        Shown on the page.
    tune : GeneratorTuneResult, optional
        The result of the generator-tuning method that made the campaign: its estimate,
        uncertainties and stage log are shown (instead of the surrogate's uncertainties).
    style : {"default", "hep"}
        The data/MC plots' style (``"hep"``: mplhep's, extra ``hep``).
    """
    if style not in ("default", "hep"):
        raise ValueError(f"style must be 'default' or 'hep', got style={style!r}")
    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    report = Report(out, out / "index.html")
    sections: list[tuple[str, str]] = []  # (heading, html)
    summary = f"<pre>{html.escape(repr(result))}</pre>"
    sections.append(("Recommendation", summary))

    def attempt(key: str, make: Callable[[], Any]) -> None:
        try:
            fig = make()
        except Exception as exc:  # noqa: BLE001 - a missing plot must not lose the report
            report.skipped[key] = f"{type(exc).__name__}: {exc}"
            return
        report.images[key] = _save(fig, out / f"{key}.png")

    from .plots import plot_convergence

    values = [t.value for t in result.history]
    attempt("convergence", lambda: plot_convergence(values))
    if tune is not None:
        _tune_section(tune, sections, attempt)
    if result.surrogate is not None:
        attempt("lengthscales", lambda: plot_lengthscales(result))
        attempt("slices", lambda: plot_slices(result))
        if uncertainty and tune is None:
            _uncertainty_section(result, sections, attempt)
    else:
        report.skipped["surrogate"] = "no surrogate (fewer than two completed trials)"
    if reference is not None:
        attempt("ratios", lambda: _ratio_figure(result, reference, style))

    _write_html(report, title, sections, result, store_path)
    return report


def _uncertainty_section(result: Result, sections: list[tuple[str, str]],
                         attempt: Callable[[str, Callable[[], Any]], None]) -> None:
    from .uncertainty import estimate_uncertainty

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", BayestuneWarning)
            unc = estimate_uncertainty(result)
    except Exception as exc:  # noqa: BLE001 - report what went wrong, keep the rest
        sections.append(("Uncertainties", f"<p>not available: {html.escape(str(exc))}</p>"))
        return
    sections.append(("Uncertainties (Delta chi2 = 1 on the surrogate)",
                     f"<pre>{html.escape(repr(unc))}</pre>"))
    from .plots import plot_corner, plot_correlation, plot_profiles

    attempt("profiles", lambda: plot_profiles(unc.profiles(n_points=15), uncertainty=unc))
    attempt("correlation", lambda: plot_correlation(unc))
    attempt("corner", lambda: plot_corner(unc.sample_posterior(2000, n_surrogates=4), unc))


def _tune_section(tune: Any, sections: list[tuple[str, str]],
                  attempt: Callable[[str, Callable[[], Any]], None]) -> None:
    """The generator-tuning method's estimate, uncertainties and stage log."""
    from .plots import plot_correlation

    flags = "settled" if tune.settled else f"not settled: {tune.unsettled_reason}"
    sections.append(("Generator tune: estimate and uncertainties (final fit of the bins)",
                     f"<pre>{html.escape(repr(tune.uncertainty))}\n{html.escape(flags)}</pre>"))
    sections.append(("Stages", f"<pre>{html.escape(tune.stage_log())}</pre>"))
    attempt("correlation", lambda: plot_correlation(tune.uncertainty))


def _ratio_figure(result: Result, reference: Mapping[str, Any], style: str = "default") -> Any:
    from .hep.histogram import Histogram
    from .plots import plot_ratios

    best = next((t for t in result.history.completed if t.params == result.x), None)
    if best is None or "bins" not in best.info:
        raise BayestuneError("the recommended trial kept no simulated bins (info['bins'])")
    simulated = {}
    for name, (values, errors) in best.info["bins"].items():
        ref = reference[name]
        simulated[name] = Histogram(ref.name, ref.lower, ref.upper, values, errors)
    used = {name: reference[name] for name in simulated}
    return plot_ratios(used, {f"trial {best.number}": simulated}, style=style)


_CAPTIONS = {
    "convergence": "Objective of every trial and the best value so far.",
    "lengthscales": "Learned ARD length scales (fraction of each parameter's range; a short "
                    "length scale means the objective changes quickly along that parameter).",
    "slices": "Surrogate mean and 2-sigma band along each parameter through the recommended "
              "point; grey dots are all evaluations projected onto the axis.",
    "profiles": "Delta-chi2 profiles of the surrogate (other parameters minimised); the "
                "dashed line is Delta chi2 = 1.",
    "corner": "Posterior samples of exp(-chi2/2) on the surrogate with the Hessian ellipse.",
    "correlation": "Correlation matrix of the tuned parameters (Hessian).",
    "ratios": "Data and the recommended trial's simulation, with the MC/data ratio.",
}


def _write_html(report: Report, title: str, sections: list[tuple[str, str]], result: Result,
                store_path: str | Path | None) -> None:
    parts = [
        "<!DOCTYPE html>", "<html><head><meta charset='utf-8'>",
        f"<title>{html.escape(title)}</title>",
        "<style>body{font-family:sans-serif;max-width:1100px;margin:auto;padding:1em}"
        "img{max-width:100%;border:1px solid #ddd}pre{background:#f6f6f6;padding:.6em;"
        "overflow-x:auto}table{border-collapse:collapse}td,th{border:1px solid #ccc;"
        "padding:2px 6px;text-align:right}</style></head><body>",
        f"<h1>{html.escape(title)}</h1>",
        f"<p>Written {time.strftime('%Y-%m-%d %H:%M')}"
        + (f" from <code>{html.escape(str(store_path))}</code>" if store_path else "")
        + f"; {result.n_evals} finished trials, {result.n_failed} failed.</p>",
    ]
    for heading, body in sections:
        parts += [f"<h2>{html.escape(heading)}</h2>", body]
    for key, path in report.images.items():
        parts += [f"<h2>{key.capitalize()}</h2>",
                  f"<p>{html.escape(_CAPTIONS.get(key, ''))}</p>",
                  f"<img src='{path.name}' alt='{key}'>"]
    if report.skipped:
        parts.append("<h2>Not drawn</h2><ul>")
        parts += [f"<li>{html.escape(k)}: {html.escape(v)}</li>"
                  for k, v in report.skipped.items()]
        parts.append("</ul>")
    parts.append(_trial_table(result))
    parts.append("</body></html>")
    report.html.write_text("\n".join(parts))


def _trial_table(result: Result) -> str:
    names = result.space.names
    head = "".join(f"<th>{html.escape(n)}</th>" for n in names)
    rows = [f"<h2>Trials</h2><table><tr><th>#</th><th>status</th><th>value</th>{head}</tr>"]
    for t in result.history:
        value = "" if t.value is None else f"{t.value:.6g}"
        cells = "".join(f"<td>{_fmt(t.params.get(n))}</td>" for n in names)
        rows.append(f"<tr><td>{t.number}</td><td>{t.status.value}</td><td>{value}</td>"
                    f"{cells}</tr>")
    rows.append("</table>")
    return "\n".join(rows)


def _fmt(value: Any) -> str:
    return f"{value:.5g}" if isinstance(value, float) else html.escape(str(value))
