"""Reading and writing histograms: YODA text, HEPData YAML tables, CSV and JSON.

* :func:`read_yoda` parses the text format that Rivet ships its reference data in
  (``YODA_SCATTER2D`` blocks, V1/V2/V3) and that Rivet writes its MC output in
  (``YODA_HISTO1D`` V2 and V3, ``YODA_ESTIMATE1D_V3``). Bins use the explicit edges of the file,
  so gapped binnings survive; zero-width x errors make points. Asymmetric errors are
  symmetrised (mean of down and up); error breakdowns become named sources. Objects that are
  not 1-D observables, or cannot be parsed, are skipped with a :class:`YodaWarning`: one bad
  block never loses the rest of a file.
* :func:`write_yoda` writes ``YODA_SCATTER2D_V2`` blocks (with their ``ErrorBreakdown``) that
  YODA, Rivet's ``rivet-mkhtml`` and :func:`read_yoda` read back.
* :func:`read_hepdata_yaml` reads one table of a HEPData submission (``independent_variables`` /
  ``dependent_variables``), adding all listed errors in quadrature and keeping them by label.
* :func:`read_csv` and :func:`read_json` read plain tables.
* :func:`download_hepdata` fetches a record from hepdata.net (thin; not exercised in tests).
"""

from __future__ import annotations

import csv
import io
import json
import logging
import math
import re
import tarfile
import urllib.request
import warnings
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..exceptions import BayestuneWarning
from .histogram import Histogram, HistogramError, normalise_path

__all__ = [
    "YodaWarning", "read_yoda", "write_yoda", "read_hepdata_yaml", "read_csv", "read_json",
    "write_json", "read_histograms", "download_hepdata",
]

_log = logging.getLogger(__name__)
_BEGIN = re.compile(r"^BEGIN\s+YODA_(\w+?)(?:_V(\d+))?\s+(\S+)\s*$")


def _read_text(source: str | Path) -> tuple[str, str]:
    """Return (text, label) for a path, or for literal text passed as a string (multi-line,
    or a one-line JSON document)."""
    if isinstance(source, str) and ("\n" in source or source.lstrip().startswith(("{", "["))):
        return source, "<text>"
    path = Path(source)
    if not path.exists():
        raise FileNotFoundError(f"histogram file not found: {str(path)!r}")
    if path.suffix == ".gz":
        import gzip

        with gzip.open(path, "rt", encoding="utf-8") as fh:
            return fh.read(), str(path)
    return path.read_text(encoding="utf-8"), str(path)


def _floats(line: str) -> list[float]:
    return [float(tok) for tok in line.replace(",", " ").split()]


def _parse_list(text: str) -> list[float]:
    """Parse ``[a, b, c]`` as YODA V3 writes edge lists."""
    inner = text.strip().lstrip("[").rstrip("]")
    return [float(tok) for tok in inner.split(",") if tok.strip()]


class YodaWarning(BayestuneWarning):
    """Objects of a YODA file that cannot serve as 1-D observables were skipped."""


class _Unusable(Exception):
    """One YODA object that cannot be read as a 1-D observable (the reason is the message)."""


#: YODA object types read as 1-D observables
_KINDS_1D = ("SCATTER2D", "HISTO1D", "ESTIMATE1D", "BINNEDESTIMATE1D")


def _symmetric(down: np.ndarray, up: np.ndarray) -> np.ndarray:
    return 0.5 * (np.abs(down) + np.abs(up))


def _breakdown(text: str | None, errors: np.ndarray) -> tuple[dict[str, np.ndarray] | None,
                                                              str | None]:
    """The per-source errors of an ``ErrorBreakdown`` annotation (``{point: {source: {dn: ..,
    up: ..}}}``), symmetrised, one row per point of the block (whose symmetric total errors are
    ``errors``), and a note when the breakdown is dropped.

    Files converted from HEPData number the points of the original table, so the keys may
    skip the rows that were left out: with as many keys as rows they are taken in order, and
    the breakdown is kept only where its sources add up to the rows' total errors (a file
    whose values were rescaled after conversion may carry a stale breakdown: it is ignored,
    with an INFO log message, and the histogram keeps its total errors)."""
    if not text:
        return None, None
    import yaml

    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        return None, f"ErrorBreakdown unreadable ({exc.__class__.__name__})"
    if not doc:
        return None, None
    n_rows = len(errors)
    if not isinstance(doc, Mapping) or not all(isinstance(k, int) for k in doc):
        return None, "ErrorBreakdown is not a mapping of point numbers"
    keys = sorted(doc)
    if len(keys) == n_rows:
        rows = dict(zip(keys, range(n_rows)))
    elif keys and keys[0] >= 0 and keys[-1] < n_rows:
        rows = {k: k for k in keys}
    else:
        return None, f"ErrorBreakdown names {len(keys)} points for {n_rows} rows"
    out: dict[str, np.ndarray] = {}
    for key, per_source in doc.items():
        if not isinstance(per_source, Mapping):
            return None, f"ErrorBreakdown of point {key} is not a mapping of sources"
        for source, err in per_source.items():
            try:
                value = 0.5 * (abs(float(err["dn"])) + abs(float(err["up"])))
            except (KeyError, TypeError, ValueError):
                return None, f"ErrorBreakdown source {source!r} of point {key} has no dn/up"
            out.setdefault(str(source), np.zeros(n_rows))[rows[key]] = value
    total = np.sqrt(sum(v**2 for v in out.values()))
    listed = np.zeros(n_rows, dtype=bool)
    listed[list(rows.values())] = True
    if not np.allclose(total[listed], errors[listed], rtol=0.05, atol=1e-12):
        return None, "ErrorBreakdown does not add up to the points' errors"
    return out, None


def _scatter2d(name: str, rows: list[list[float]], header: Mapping[str, str],
               notes: list[str]) -> Histogram:
    """A Scatter2D: bins from the x errors (a zero x error makes a point); rows without a
    finite value are dropped."""
    widths = {len(r) for r in rows}
    if widths != {6}:
        raise _Unusable(f"its rows have {sorted(widths)} columns, a Scatter2D has 6 "
                        "(x, x-, x+, y, y-, y+)")
    arr = np.asarray(rows, dtype=float)
    x, xm, xp, y, ym, yp = arr.T
    total = np.nan_to_num(_symmetric(ym, yp))
    sources, note = _breakdown(header.get("ErrorBreakdown"), total)
    if note:
        notes.append(f"{name!r}: {note}; its total errors are used")
    keep = np.isfinite(y) & np.isfinite(x) & np.isfinite(xm) & np.isfinite(xp)
    if not np.any(keep):
        raise _Unusable("it has no point with a finite value")
    lower, upper = (x - np.abs(xm))[keep], (x + np.abs(xp))[keep]
    order = np.argsort(lower, kind="stable")
    picked = None if sources is None else {k: v[keep][order] for k, v in sources.items()}
    return Histogram(name, lower[order], upper[order], y[keep][order], total[keep][order],
                     sources=picked)


def _histo1d_v2(name: str, rows: list[list[float]]) -> Histogram:
    # rows: xlow xhigh sumw sumw2 sumwx sumwx2 numEntries (Total/Underflow/Overflow skipped)
    if any(len(r) < 4 for r in rows):
        raise _Unusable("its bin rows have fewer than 4 columns (xlow, xhigh, sumw, sumw2)")
    arr = np.asarray([r[:4] for r in rows], dtype=float)
    lo, hi, sumw, sumw2 = arr.T
    width = hi - lo
    if np.any(width <= 0):
        raise _Unusable("a bin has no width")
    return Histogram(name, lo, hi, sumw / width, np.sqrt(np.maximum(sumw2, 0.0)) / width)


def _binned_v3(name: str, kind: str, header: Mapping[str, str],
               rows: list[list[float]]) -> Histogram:
    if "Edges(A1)" not in header:
        raise _Unusable("it has no 'Edges(A1)' line")
    try:
        edges = np.asarray(_parse_list(header["Edges(A1)"]), dtype=float)
    except ValueError:
        raise _Unusable("its axis is not numeric (discrete edges)") from None
    n_bins = edges.size - 1
    if n_bins < 1 or len(rows) != n_bins + 2:
        raise _Unusable(f"it has {len(rows)} rows, expected {max(n_bins, 0) + 2} (bins plus "
                        "underflow and overflow)")
    if len({len(r) for r in rows}) != 1:
        raise _Unusable("its rows have different numbers of columns")
    inner = np.asarray(rows, dtype=float)[1:-1]
    width = np.diff(edges)
    sources = None
    if kind == "HISTO1D":
        if inner.shape[1] < 2 or np.any(width <= 0):
            raise _Unusable("its bins need sumW and sumW2 columns and a width")
        values = inner[:, 0] / width
        errors = np.sqrt(np.maximum(inner[:, 1], 0.0)) / width
    else:  # ESTIMATE1D: value, then (down, up) pairs per error source
        values = inner[:, 0]
        pairs = inner[:, 1:]
        if pairs.shape[1] % 2:
            raise _Unusable("its error columns are not (down, up) pairs")
        sym = np.nan_to_num(_symmetric(pairs[:, 0::2], pairs[:, 1::2]))
        errors = np.sqrt(np.sum(sym**2, axis=1))
        labels = [str(v) for v in _labels(header.get("ErrorLabels", ""))]
        if labels and len(labels) == sym.shape[1]:
            sources = {lab: sym[:, j] for j, lab in enumerate(labels)}
    keep = np.ones(n_bins, dtype=bool)
    if header.get("MaskedBins"):
        masked = [int(v) - 1 for v in _parse_list(header["MaskedBins"])]  # 1-based, 0 = underflow
        keep[[m for m in masked if 0 <= m < n_bins]] = False
    keep &= np.isfinite(values)
    if not np.any(keep):
        raise _Unusable("it has no bin with a finite value")
    return Histogram(name, edges[:-1][keep], edges[1:][keep], values[keep], errors[keep],
                     sources=None if sources is None else {k: v[keep] for k, v in sources.items()})


def _labels(text: str) -> list[str]:
    """``["stat", "sys,unc"]`` as YODA V3 writes error labels."""
    import yaml

    try:
        doc = yaml.safe_load(text) if text else None
    except yaml.YAMLError:
        return []
    return [str(v) for v in doc] if isinstance(doc, list) else []


def read_yoda(source: str | Path, paths: Iterable[str] | None = None) -> dict[str, Histogram]:
    """Read the 1-D objects of a YODA text file.

    Scatter2D (V1-V3), Histo1D (V2, V3) and (binned) Estimate1D (V3) objects are read; a
    Scatter2D row with zero x errors is a point (see :class:`Histogram`). An ``ErrorBreakdown``
    annotation (V2) or ``ErrorLabels`` (V3) gives the errors' sources
    (:attr:`Histogram.sources`). Objects that are not 1-D observables (2-D and 3-D objects,
    profiles, counters), empty ones and ones that cannot be parsed are skipped, with one
    :class:`YodaWarning` per file naming each and why; they never fail the file.

    Parameters
    ----------
    source : str or path
        A ``.yoda`` (or ``.yoda.gz``) file, or YODA text itself.
    paths : iterable of str, optional
        Only these objects, e.g. ``["/REF/ALEPH_1996_S3486095/d03-x01-y01"]``; the ``/REF``
        prefix is optional. A requested path that is missing raises ``KeyError`` naming it;
        a requested object that cannot be used raises :class:`HistogramError` naming it and
        why.

    Returns
    -------
    dict
        Histograms keyed by their path with any ``/REF`` prefix removed (also their ``name``).
    """
    text, label = _read_text(source)
    wanted = None if paths is None else {normalise_path(p) for p in paths}
    out: dict[str, Histogram] = {}
    skipped: list[str] = []
    notes: list[str] = []
    for block in _yoda_blocks(text):
        name = block["path"]
        if wanted is not None and name not in wanted:
            continue
        try:
            out[name] = _finish_block(block, notes)
        except _Unusable as exc:
            where = f"{name!r} ({block['kind'].lower()}, line {block['line']})"
            if wanted is not None:
                raise HistogramError(f"{label}: the requested object {where} cannot be used: "
                                     f"{exc}") from None
            skipped.append(f"{where}: {exc}")
    if skipped:
        warnings.warn(f"{label}: skipped {len(skipped)} object(s) that are not usable 1-D "
                      "observables: " + "; ".join(skipped), YodaWarning, stacklevel=2)
    for note in notes:  # the data are fine; only the correlation of sources is unavailable
        _log.info("%s: %s", label, note)
    if wanted is not None:
        missing = sorted(wanted - set(out))
        if missing:
            raise KeyError(f"{label} has no 1-D object at {', '.join(missing)}")
    return out


def _yoda_blocks(text: str) -> Iterator[dict[str, Any]]:
    """The ``BEGIN YODA_...``/``END`` blocks of ``text``: kind, version, path, header
    (``key: value`` and V1 ``key=value`` lines), numeric rows, and the first line that is
    neither (which makes the block unusable). A block cut off by the end of the text is
    yielded with that as its fault."""
    block: dict[str, Any] | None = None
    for lineno, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if block is None:
            match = _BEGIN.match(line)
            if match:
                kind, version, path = match.group(1), int(match.group(2) or 1), match.group(3)
                block = {"kind": kind, "version": version, "path": normalise_path(path),
                         "header": {}, "rows": [], "line": lineno, "fault": None}
            continue
        if line.startswith("END YODA"):
            yield block
            block = None
            continue
        if not line or line.startswith("#") or line == "---":
            continue
        if line.split(None, 1)[0] in ("Total", "Underflow", "Overflow"):
            continue
        try:
            block["rows"].append(_floats(line))
            continue
        except ValueError:
            pass
        key, sep, value = line.partition(":")
        if not sep or " " in key.strip():
            key, sep, value = line.partition("=")
        if sep and key.strip():
            block["header"][key.strip()] = value.strip()
        elif block["fault"] is None:
            block["fault"] = f"line {lineno} cannot be parsed: {line[:60]!r}"
    if block is not None:
        block["fault"] = block["fault"] or "the file ends before its END line"
        yield block


def _finish_block(block: dict[str, Any], notes: list[str]) -> Histogram:
    kind, version, name = block["kind"], block["version"], block["path"]
    rows, header = block["rows"], block["header"]
    if kind not in _KINDS_1D:
        raise _Unusable(f"a {kind.title()} is not a 1-D observable")
    if block["fault"]:
        raise _Unusable(block["fault"])
    if not rows:
        raise _Unusable("it is empty")
    if kind == "SCATTER2D":
        return _scatter2d(name, rows, header, notes)
    if kind == "HISTO1D" and version <= 2:
        return _histo1d_v2(name, rows)
    return _binned_v3(name, "ESTIMATE1D" if "ESTIMATE" in kind else kind, header, rows)


def write_yoda(
    histograms: Iterable[Histogram] | Mapping[str, Histogram], path: str | Path,
    *, ref: bool = False,
) -> Path:
    """Write histograms as ``YODA_SCATTER2D_V2`` blocks.

    Parameters
    ----------
    histograms : iterable or mapping of Histogram
    path : str or path
        Output file (``.yoda``).
    ref : bool
        Prefix the paths with ``/REF`` (reference-data convention).
    """
    from .uhi import as_histogram, is_uhi

    if isinstance(histograms, Mapping):
        items = [as_histogram(h, k) if is_uhi(h) else h for k, h in histograms.items()]
    else:
        items = [as_histogram(h) if is_uhi(h) else h for h in histograms]
    lines: list[str] = []
    for hist in items:
        name = normalise_path(hist.name)
        if not name.startswith("/"):
            name = "/" + name
        full = "/REF" + name if ref else name
        lines += [f"BEGIN YODA_SCATTER2D_V2 {full}"]
        if hist.sources:
            lines.append("ErrorBreakdown: " + _breakdown_text(hist.sources, hist.n_bins))
        lines += [
            f"Path: {full}",
            "Title: ~",
            "Type: Scatter2D",
            "---",
            "# xval\t xerr-\t xerr+\t yval\t yerr-\t yerr+",
        ]
        for lo, hi, val, err in zip(hist.lower, hist.upper, hist.values, hist.errors):
            x = 0.5 * (lo + hi)
            lines.append(
                f"{x:.9e}\t{x - lo:.9e}\t{hi - x:.9e}\t{val:.9e}\t{err:.9e}\t{err:.9e}"
            )
        lines += ["END YODA_SCATTER2D_V2", ""]
    out = Path(path)
    out.write_text("\n".join(lines), encoding="utf-8")
    return out


def _breakdown_text(sources: Mapping[str, np.ndarray], n_bins: int) -> str:
    """A YODA ``ErrorBreakdown`` annotation (flow YAML) for per-bin symmetric sources."""
    points = []
    for i in range(n_bins):
        entries = ", ".join(f"{json.dumps(k)}: {{dn: {-float(v[i]):.9e}, up: {float(v[i]):.9e}}}"
                            for k, v in sources.items())
        points.append(f"{i}: {{{entries}}}")
    return "{" + ", ".join(points) + "}"


def _hepdata_error(value: float, err: Mapping[str, Any], label: str) -> float:
    def number(v: Any) -> float:
        if isinstance(v, str) and v.strip().endswith("%"):
            return abs(float(v.strip()[:-1])) * abs(value) / 100.0
        return abs(float(v))

    if "symerror" in err:
        return number(err["symerror"])
    if "asymerror" in err:
        asym = err["asymerror"]
        return 0.5 * (number(asym.get("plus", 0.0)) + number(asym.get("minus", 0.0)))
    raise HistogramError(f"{label}: unknown HEPData error entry {dict(err)!r}")


def read_hepdata_yaml(
    source: str | Path, *, dependent: int = 0, name: str | None = None
) -> Histogram:
    """Read one dependent variable of a HEPData YAML table.

    Parameters
    ----------
    source : str or path
        The table file (or its text).
    dependent : int
        Index of the dependent variable (the ``yNN`` of a Rivet path is ``dependent + 1``).
    name : str, optional
        Histogram name; defaults to the dependent variable's header name.

    Bins without a numeric value (HEPData writes ``'-'``) are dropped. All errors of a bin
    are added in quadrature (percentages are relative to the value) and kept by their
    ``label`` as :attr:`Histogram.sources` (an unlabelled error is ``"error"``, then
    ``"error 2"``...; a label listed twice in a bin adds in quadrature).
    """
    import yaml

    text, label = _read_text(source)
    doc = yaml.safe_load(text)
    try:
        indep = doc["independent_variables"][0]["values"]
        dep_all = doc["dependent_variables"]
    except (KeyError, IndexError, TypeError):
        raise HistogramError(
            f"{label}: not a HEPData table (needs independent_variables and dependent_variables)"
        ) from None
    if not 0 <= dependent < len(dep_all):
        raise HistogramError(
            f"{label}: dependent={dependent} out of range, the table has {len(dep_all)}"
        )
    dep = dep_all[dependent]
    if len(dep["values"]) != len(indep):
        raise HistogramError(f"{label}: {len(dep['values'])} values for {len(indep)} bins")
    lower, upper, values = [], [], []
    per_bin: list[dict[str, float]] = []
    for x, y in zip(indep, dep["values"]):
        try:
            val = float(y["value"])
        except (TypeError, ValueError):
            continue
        if "low" in x and "high" in x:
            lo, hi = float(x["low"]), float(x["high"])
        else:
            centre = float(x["value"])
            lo, hi = centre - 0.5, centre + 0.5
        squares: dict[str, float] = {}
        unlabelled = 0
        for e in y.get("errors", []) or []:
            key = e.get("label")
            if key is None:
                unlabelled += 1
                key = "error" if unlabelled == 1 else f"error {unlabelled}"
            squares[str(key)] = squares.get(str(key), 0.0) + _hepdata_error(val, e, label) ** 2
        lower.append(lo)
        upper.append(hi)
        values.append(val)
        per_bin.append(squares)
    errors = [math.sqrt(sum(sq.values())) for sq in per_bin]
    keys = list(dict.fromkeys(k for sq in per_bin for k in sq))
    sources = {k: [math.sqrt(sq.get(k, 0.0)) for sq in per_bin] for k in keys} or None
    title = name or str(dep.get("header", {}).get("name", Path(label).stem))
    return Histogram(title, lower, upper, values, errors, sources=sources)


_CSV_COLUMNS = ("lower", "upper", "value", "error")


def read_csv(source: str | Path, *, name: str | None = None) -> Histogram:
    """Read a CSV table with a header naming the columns ``lower, upper, value, error``."""
    text, label = _read_text(source)
    reader = csv.DictReader(io.StringIO(text))
    fields = [f.strip() for f in (reader.fieldnames or [])]
    missing = [c for c in _CSV_COLUMNS if c not in fields]
    if missing:
        raise HistogramError(
            f"{label}: CSV needs columns {list(_CSV_COLUMNS)}, missing {missing} (got {fields})"
        )
    cols: dict[str, list[float]] = {c: [] for c in _CSV_COLUMNS}
    for lineno, row in enumerate(reader, start=2):
        row = {k.strip(): v for k, v in row.items() if k is not None}
        try:
            for c in _CSV_COLUMNS:
                cols[c].append(float(row[c]))
        except (TypeError, ValueError):
            raise HistogramError(f"{label}:{lineno}: non-numeric entry in row {row!r}") from None
    hist_name = name or (Path(label).stem if label != "<text>" else "csv")
    return Histogram(hist_name, cols["lower"], cols["upper"], cols["value"], cols["error"])


def read_json(source: str | Path) -> dict[str, Histogram]:
    """Read histograms written by :func:`write_json` (a list of, or one, histogram record)."""
    text, label = _read_text(source)
    data = json.loads(text)
    records = data if isinstance(data, list) else [data]
    out = {}
    for rec in records:
        if not isinstance(rec, dict):
            raise HistogramError(f"{label}: expected histogram objects, got {type(rec).__name__}")
        hist = Histogram.from_dict(rec)
        out[hist.name] = hist
    return out


def write_json(histograms: Iterable[Histogram] | Mapping[str, Histogram], path: str | Path) -> Path:
    """Write histograms as a JSON list of ``{name, lower, upper, values, errors}`` records."""
    items = histograms.values() if isinstance(histograms, Mapping) else histograms
    out = Path(path)
    out.write_text(json.dumps([h.to_dict() for h in items], indent=1), encoding="utf-8")
    return out


def read_histograms(source: str | Path, paths: Sequence[str] | None = None) -> dict[str, Histogram]:
    """Read any supported file, chosen by its extension."""
    suffixes = "".join(Path(source).suffixes).lower()
    if ".yoda" in suffixes:
        return read_yoda(source, paths)
    if suffixes.endswith(".json"):
        hists = read_json(source)
    elif suffixes.endswith((".yaml", ".yml")):
        hist = read_hepdata_yaml(source)
        hists = {hist.name: hist}
    elif suffixes.endswith(".csv"):
        hist = read_csv(source)
        hists = {hist.name: hist}
    else:
        raise HistogramError(
            f"cannot tell the format of {str(source)!r}: use .yoda, .json, .yaml or .csv"
        )
    if paths is not None:
        missing = [p for p in paths if p not in hists]
        if missing:
            raise KeyError(f"{source} has no histogram named {', '.join(missing)}")
        hists = {p: hists[p] for p in paths}
    return hists


HEPDATA_URL = "https://www.hepdata.net/record/ins{inspire}?format=yoda"


def download_hepdata(
    inspire: int | str, dest: str | Path, *, rivet: str | None = None, timeout: float = 60.0
) -> list[Path]:
    """Download the YODA export of a HEPData record into ``dest``.

    Parameters
    ----------
    inspire : int or str
        The record's Inspire id (ALEPH 1996: 428072, DELPHI 1996: 424112, ALEPH 1991: 319520).
    dest : path
        Directory to write into (created if needed).
    rivet : str, optional
        Rivet analysis name, so paths read ``/REF/<rivet>/dNN-xNN-yNN``.

    Returns
    -------
    list of Path
        The YODA files written.
    """
    url = HEPDATA_URL.format(inspire=str(inspire).removeprefix("ins"))
    if rivet:
        url += f"&rivet={rivet}"
    dest_dir = Path(dest)
    dest_dir.mkdir(parents=True, exist_ok=True)
    with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 (fixed host)
        payload = response.read()
    written = []
    if payload[:2] == b"\x1f\x8b":  # a .tar.gz archive of YODA files
        with tarfile.open(fileobj=io.BytesIO(payload), mode="r:gz") as tar:
            for member in tar.getmembers():
                if member.isfile() and ".yoda" in member.name:
                    extracted = tar.extractfile(member)
                    if extracted is None:
                        continue
                    target = dest_dir / Path(member.name).name
                    target.write_bytes(extracted.read())
                    written.append(target)
    else:
        target = dest_dir / f"{rivet or 'ins' + str(inspire)}.yoda"
        target.write_bytes(payload)
        written.append(target)
    return written
