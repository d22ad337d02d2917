"""A tune as the files physicists run: Pythia settings for the tune and its eigentunes.

:func:`write_tune` writes, into one folder,

* ``tune.cmnd``: the tuned parameters (and any settings held fixed) as Pythia ``Name = value``
  lines, with the estimate's errors, chi2 and budget in ``!`` comments;
* ``eigentune_NN_plus.cmnd`` / ``eigentune_NN_minus.cmnd``: the tune moved both ways along
  each eigenvector of its covariance until the chi2 has risen by ``delta`` (Professor-style
  eigentunes; ``NN = 01`` is the weakest-constrained direction);
* ``tune.yoda``: the predicted histograms at the tune, when given;
* ``tune.json``: all of the above as numbers (estimate, errors, covariance, eigentunes).

``readFile("tune.cmnd")`` in a Pythia main program, or ``-c tune.cmnd`` in a Rivet/Pythia run
script, applies a tune; running every eigentune file gives the tune's uncertainty band.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..scans import Eigentune
from ..uncertainty import Uncertainty
from .histogram import Histogram
from .io import write_yoda

__all__ = ["TuneFiles", "read_cmnd", "write_cmnd", "write_tune"]


@dataclass
class TuneFiles:
    """The files :func:`write_tune` wrote.

    Attributes
    ----------
    folder : Path
    tune : Path
        ``tune.cmnd``.
    eigentunes : list of (Path, Path)
        ``(plus, minus)`` settings files per eigenvector, weakest-constrained first.
    summary : Path
        ``tune.json``.
    predictions : Path or None
        ``tune.yoda``.
    """

    folder: Path
    tune: Path
    eigentunes: list[tuple[Path, Path]] = field(default_factory=list)
    summary: Path | None = None
    predictions: Path | None = None


def _value(v: Any) -> str:
    if isinstance(v, bool):
        return "on" if v else "off"
    if isinstance(v, (float, np.floating)):
        return repr(float(v))
    return str(v)


def write_cmnd(settings: Mapping[str, Any], path: str | Path, *,
               comments: list[str] | tuple[str, ...] = ()) -> Path:
    """Write Pythia settings (``Name = value`` lines, booleans as ``on``/``off``) after
    ``!`` comment lines."""
    lines = [f"! {c}" if c else "!" for c in comments]
    for name, value in settings.items():
        if not name or any(c.isspace() for c in name) or "=" in name:
            raise ValueError(f"not a Pythia setting name: {name!r}")
        lines.append(f"{name} = {_value(value)}")
    out = Path(path)
    out.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return out


def read_cmnd(path: str | Path) -> dict[str, str]:
    """The ``Name = value`` settings of a Pythia settings file (lines that do not begin with a
    letter are comments, as Pythia reads them); values as text."""
    out: dict[str, str] = {}
    for raw in Path(path).read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or not line[0].isalpha():
            continue
        name, sep, value = line.partition("=")
        if sep:
            out[name.strip()] = value.split("!", 1)[0].strip()
    return out


def write_tune(unc: Uncertainty, folder: str | Path, *, delta: float | None = None,
               fixed: Mapping[str, Any] | None = None,
               predictions: Mapping[str, Histogram] | None = None,
               title: str = "bayestune tune", runs: int | None = None,
               events: int | None = None) -> TuneFiles:
    """Write a tune, its eigentunes and (optionally) its predictions into ``folder``.

    Parameters
    ----------
    unc : Uncertainty
        The tune: estimate, covariance and the chi2 surface the eigentunes are found on
        (``GeneratorTuneResult.uncertainty``, ``estimate_uncertainty(result)``...).
    folder : path
        Created if needed.
    delta : float, optional
        The chi2 rise that defines the eigentunes (default: ``unc.errordef``, 1 for a chi2).
    fixed : mapping, optional
        Settings held fixed in the tune, written into every file.
    predictions : mapping of str to Histogram, optional
        Predicted histograms at the tune, written as ``tune.yoda``.
    title : str
    runs, events : int, optional
        Generator runs and events the tune used (stated in the files).
    """
    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    fixed = dict(fixed or {})
    tunes = unc.eigentunes(delta)
    used = tunes[0].delta if tunes else (unc.errordef if delta is None else float(delta))
    budget = []
    if runs is not None:
        budget.append(f"{runs} generator runs" + (f", {events:,} events" if events else ""))
    header = [title, f"chi2 at the tune {unc.fun:.2f}" + (f"; {budget[0]}" if budget else ""),
              "tuned parameters (value +- error):"]
    header += [f"  {n} = {unc.x[n]:.6g} +- {unc.errors[n]:.3g}" for n in unc.names]
    if unc.at_limit:
        header.append(f"on a bound of the fit: {', '.join(unc.at_limit)}")
    header.append(f"eigentunes: eigentune_NN_plus/minus.cmnd, chi2 + {used:g} along each "
                  "covariance eigenvector")
    tune_path = write_cmnd({**fixed, **_tuned(unc, unc.x)}, out / "tune.cmnd", comments=header)
    files = TuneFiles(out, tune_path)
    for t in tunes:
        pair = []
        for sign, point, reached in (("plus", t.plus, t.reached[0]),
                                     ("minus", t.minus, t.reached[1])):
            note = [f"{title}: eigentune {t.index + 1} {sign}",
                    f"the tune moved along eigenvector {t.index + 1} (eigenvalue "
                    f"{t.eigenvalue:.3g}) until the chi2 rose by {t.delta:g}"
                    + ("" if reached else "; it reached a bound first")]
            path = out / f"eigentune_{t.index + 1:02d}_{sign}.cmnd"
            pair.append(write_cmnd({**fixed, **_tuned(unc, point)}, path, comments=note))
        files.eigentunes.append((pair[0], pair[1]))
    if predictions:
        files.predictions = write_yoda(predictions, out / "tune.yoda")
    files.summary = out / "tune.json"
    files.summary.write_text(json.dumps(_summary(unc, tunes, used, fixed, runs, events),
                                        indent=1), encoding="utf-8")
    return files


def _tuned(unc: Uncertainty, point: Mapping[str, Any]) -> dict[str, Any]:
    return {n: point[n] for n in unc.names}


def _summary(unc: Uncertainty, tunes: list[Eigentune], delta: float, fixed: dict[str, Any],
             runs: int | None, events: int | None) -> dict[str, Any]:
    cov = np.asarray(unc.covariance, dtype=float)
    return {
        "parameters": list(unc.names),
        "estimate": {n: float(unc.x[n]) for n in unc.names},
        "errors": {n: float(unc.errors[n]) for n in unc.names},
        "covariance": cov.tolist() if np.all(np.isfinite(cov)) else None,
        "chi2": float(unc.fun) if math.isfinite(unc.fun) else None,
        "at_limit": list(unc.at_limit),
        "fixed": {k: _value(v) for k, v in fixed.items()},
        "eigentune_delta": delta,
        "eigentunes": [{"index": t.index + 1, "eigenvalue": t.eigenvalue,
                        "direction": t.direction, "plus": _tuned(unc, t.plus),
                        "minus": _tuned(unc, t.minus), "reached": list(t.reached)}
                       for t in tunes],
        "runs": runs, "events": events,
    }
