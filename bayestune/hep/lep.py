"""The LEP1 (Z pole) observable catalogue and where its reference data lives.

The catalogue names, for each observable, the Rivet path of its reference histogram, the file
it is in, the quantity the analysis fills (see :data:`bayestune.hep.analysis.QUANTITIES`) and a
default weight. It follows ``observables.yaml`` of the shared LEP data folder: the ``core`` set
is its recommended 6-parameter tuning set, ``extended`` adds spectra; ``flavour`` holds the
PDG hadron rates, ``heavy`` the b- and c-fragmentation spectra, and ``iwy20`` all of them, for
the twenty parameters of arXiv:1610.08328.

Reference files are third-party data and are not shipped with bayestune. They are looked up in
this order: an explicit ``data_dir`` argument (``--data`` in the examples), the environment
variable ``BAYESTUNE_LEP_DATA``, then ``../shared/data/lep`` next to the repository or the
current directory. Elsewhere, fetch the YODA files from HEPData with
``python -m bayestune.hep.fetch --dest DIR`` and point ``BAYESTUNE_LEP_DATA`` at ``DIR``.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from .hadrons import PDG_SPECIES
from .histogram import Histogram
from .io import read_yoda

__all__ = [
    "Observable", "LEP_OBSERVABLES", "OBSERVABLE_SETS", "DATA_ENV", "find_data_dir",
    "load_reference", "monash_parameters", "LEP1_SETTINGS", "observables",
    "published_ranges", "monash_values", "iwy_parameters", "iwy_blocks",
]

DATA_ENV = "BAYESTUNE_LEP_DATA"

LEP1_SETTINGS: tuple[str, ...] = (
    "Beams:idA = 11",
    "Beams:idB = -11",
    "Beams:eCM = 91.2",
    "WeakSingleBoson:ffbar2gmZ = on",
    "23:onMode = off",
    "23:onIfAny = 1 2 3 4 5",
    "PDF:lepton = off",
)
"""e+e- -> gamma*/Z -> q qbar (5 flavours) at 91.2 GeV without ISR (``observables.yaml``)."""


@dataclass(frozen=True)
class Observable:
    """One tuning observable.

    Attributes
    ----------
    id : str
        Short name, e.g. ``"ALEPH96_1mT"``.
    path : str
        Analysis path without ``/REF``, e.g. ``"/ALEPH_1996_S3486095/d03-x01-y01"``.
    file : str
        Reference file name in the data folder.
    quantity : str
        What the analysis fills (a key of ``QUANTITIES``).
    weight : float
        Default chi2 weight.
    """

    id: str
    path: str
    file: str
    quantity: str
    weight: float = 1.0


_A = "ALEPH_1996_S3486095"
_P = "PDG_HADRON_MULTIPLICITIES"
_D = "DELPHI_1996_S3430090"
_AB = "ALEPH_2001_S4656318"
_DB = "DELPHI_2011_I890503"
_SB = "SLD_2002_S4869273"
_DC = "DELPHI_1993_I356732"

LEP_OBSERVABLES: dict[str, Observable] = {
    o.id: o
    for o in [
        Observable("ALEPH96_1mT", f"/{_A}/d03-x01-y01", f"{_A}.yoda", "1-T"),
        Observable("ALEPH96_C", f"/{_A}/d07-x01-y01", f"{_A}.yoda", "C"),
        Observable("ALEPH96_Y23", f"/{_A}/d05-x01-y01", f"{_A}.yoda", "-ln y23"),
        Observable("ALEPH96_A", f"/{_A}/d02-x01-y01", f"{_A}.yoda", "A"),
        Observable("ALEPH96_pToutS", f"/{_A}/d12-x01-y01", f"{_A}.yoda", "pTout"),
        Observable("ALEPH96_Nch", f"/{_A}/d18-x01-y01", f"{_A}.yoda", "Nch"),
        Observable("ALEPH96_xi", f"/{_A}/d17-x01-y01", f"{_A}.yoda", "xi"),
        Observable("ALEPH96_meanNch", f"/{_A}/d19-x01-y01", f"{_A}.yoda", "<Nch>", 10.0),
        Observable("PDG_Kpm", f"/{_P}/d03-x01-y03", f"{_P}.yoda", "N(K+-)", 10.0),
        Observable("PDG_K0", f"/{_P}/d04-x01-y03", f"{_P}.yoda", "N(K0)", 10.0),
        Observable("PDG_p", f"/{_P}/d38-x01-y03", f"{_P}.yoda", "N(p)", 5.0),
        Observable("PDG_Lambda", f"/{_P}/d39-x01-y03", f"{_P}.yoda", "N(Lambda)", 5.0),
        # extended
        Observable("ALEPH96_xp", f"/{_A}/d09-x01-y01", f"{_A}.yoda", "xp"),
        Observable("ALEPH96_S", f"/{_A}/d01-x01-y01", f"{_A}.yoda", "S"),
        Observable("ALEPH96_pTinS", f"/{_A}/d11-x01-y01", f"{_A}.yoda", "pTin"),
        Observable("ALEPH96_Kpm_xp", f"/{_A}/d26-x01-y01", f"{_A}.yoda", "xp:K+-"),
        Observable("ALEPH96_p_xp", f"/{_A}/d27-x01-y01", f"{_A}.yoda", "xp:p"),
        # DELPHI 1996, charged particles (the y01 histograms; y02 are charged + neutral):
        # event shapes normalised to unit area, spectra per event, as ALEPH's
        Observable("DELPHI96_1mT", f"/{_D}/d11-x01-y01", f"{_D}.yoda", "1-T"),
        Observable("DELPHI96_S", f"/{_D}/d15-x01-y01", f"{_D}.yoda", "S"),
        Observable("DELPHI96_A", f"/{_D}/d16-x01-y01", f"{_D}.yoda", "A"),
        Observable("DELPHI96_C", f"/{_D}/d18-x01-y01", f"{_D}.yoda", "C"),
        Observable("DELPHI96_pTinS", f"/{_D}/d03-x01-y01", f"{_D}.yoda", "pTin"),
        Observable("DELPHI96_pToutS", f"/{_D}/d04-x01-y01", f"{_D}.yoda", "pTout"),
        Observable("DELPHI96_xp", f"/{_D}/d07-x01-y01", f"{_D}.yoda", "xp"),
        Observable("DELPHI96_xi", f"/{_D}/d08-x01-y01", f"{_D}.yoda", "xi"),
        Observable("DELPHI96_meanNch", f"/{_D}/d35-x01-y01", f"{_D}.yoda", "<Nch>", 10.0),
        # b-quark fragmentation: x_B of weakly decaying b hadrons, unit area
        Observable("ALEPH01_xB", f"/{_AB}/d01-x01-y01", f"{_AB}.yoda", "xB:weak"),
        Observable("DELPHI11_xB", f"/{_DB}/d01-x01-y01", f"{_DB}.yoda", "xB:weak"),
        Observable("SLD02_xB", f"/{_SB}/d01-x01-y01", f"{_SB}.yoda", "xB:weak"),
        # charmed mesons: x_E spectra per hadronic event
        Observable("DELPHI93_Dstar_xE", f"/{_DC}/d01-x01-y01", f"{_DC}.yoda", "xE:D*+-"),
        Observable("DELPHI93_D0_xE", f"/{_DC}/d03-x01-y01", f"{_DC}.yoda", "xE:D0"),
        Observable("DELPHI93_Dpm_xE", f"/{_DC}/d05-x01-y01", f"{_DC}.yoda", "xE:D+-"),
    ]
}
# the other hadron rates of the PDG table (K+-, K0, p and Lambda are above, with weights)
LEP_OBSERVABLES.update({
    f"PDG_{s.name}": Observable(f"PDG_{s.name}", f"/{_P}/{s.histogram}", f"{_P}.yoda",
                                f"N({s.name})")
    for s in PDG_SPECIES if f"PDG_{s.name}" not in LEP_OBSERVABLES
})
"""Every observable the LEP analysis knows, by id."""

OBSERVABLE_SETS: dict[str, tuple[str, ...]] = {
    "core": (
        "ALEPH96_1mT", "ALEPH96_C", "ALEPH96_Y23", "ALEPH96_A", "ALEPH96_pToutS",
        "ALEPH96_Nch", "ALEPH96_xi", "ALEPH96_meanNch", "PDG_Kpm", "PDG_K0", "PDG_p",
        "PDG_Lambda",
    ),
    "shapes": ("ALEPH96_1mT", "ALEPH96_C", "ALEPH96_Y23", "ALEPH96_A", "ALEPH96_pToutS",
               "ALEPH96_Nch", "ALEPH96_xi", "ALEPH96_meanNch"),
}
OBSERVABLE_SETS["extended"] = OBSERVABLE_SETS["core"] + (
    "ALEPH96_xp", "ALEPH96_S", "ALEPH96_Kpm_xp", "ALEPH96_p_xp",
)
OBSERVABLE_SETS["flavour"] = tuple(f"PDG_{s.name}" for s in PDG_SPECIES)
OBSERVABLE_SETS["heavy"] = ("ALEPH01_xB", "DELPHI11_xB", "SLD02_xB", "DELPHI93_Dstar_xE",
                            "DELPHI93_D0_xE", "DELPHI93_Dpm_xE")
OBSERVABLE_SETS["iwy20"] = (
    OBSERVABLE_SETS["extended"]
    + tuple(o for o in OBSERVABLE_SETS["flavour"] if o not in OBSERVABLE_SETS["core"])
    + OBSERVABLE_SETS["heavy"]
)
"""Observables for the twenty parameters of arXiv:1610.08328: event shapes and spectra for the
shower and the string, the PDG hadron rates for the flavour parameters, x_B for
``StringZ:rFactB`` and the charmed-meson spectra for ``StringZ:rFactC``."""
OBSERVABLE_SETS["delphi96"] = (
    "DELPHI96_1mT", "DELPHI96_S", "DELPHI96_A", "DELPHI96_C", "DELPHI96_pTinS",
    "DELPHI96_pToutS", "DELPHI96_xp", "DELPHI96_xi", "DELPHI96_meanNch",
)
OBSERVABLE_SETS["lep_tune"] = OBSERVABLE_SETS["iwy20"] + OBSERVABLE_SETS["delphi96"]
"""A real tune's data: the ``iwy20`` set and DELPHI 1996's charged-particle event shapes and
spectra beside ALEPH's (two measurements of much the same quantities, both counted, as in
the Professor tunes)."""


def observables(names: str | Iterable[str] = "core") -> list[Observable]:
    """Resolve a set name (a key of :data:`OBSERVABLE_SETS`: ``"core"``, ``"iwy20"``,
    ``"lep_tune"``...) or a list of ids."""
    if isinstance(names, str):
        if names not in OBSERVABLE_SETS:
            raise KeyError(
                f"unknown observable set {names!r}; known sets: {sorted(OBSERVABLE_SETS)}"
            )
        names = OBSERVABLE_SETS[names]
    out = []
    for name in names:
        if name not in LEP_OBSERVABLES:
            raise KeyError(f"unknown observable {name!r}; known: {sorted(LEP_OBSERVABLES)}")
        out.append(LEP_OBSERVABLES[name])
    return out


def _candidates() -> list[Path]:
    repo = Path(__file__).resolve().parents[2]
    return [repo.parent / "shared" / "data" / "lep", Path.cwd().parent / "shared" / "data" / "lep"]


def find_data_dir(data_dir: str | Path | None = None) -> Path:
    """The folder holding the LEP reference files.

    Raises
    ------
    FileNotFoundError
        With the places searched and how to fetch the data, when none holds the files.
    """
    if data_dir is not None:
        path = Path(data_dir).expanduser()
        if not path.is_dir():
            raise FileNotFoundError(f"LEP data folder not found: data_dir={str(path)!r}")
        return path
    env = os.environ.get(DATA_ENV)
    if env:
        path = Path(env).expanduser()
        if not path.is_dir():
            raise FileNotFoundError(f"{DATA_ENV}={env!r} is not a folder")
        return path
    for path in _candidates():
        if (path / f"{_A}.yoda").is_file():
            return path
    tried = ", ".join(str(p) for p in _candidates())
    raise FileNotFoundError(
        f"LEP reference data not found (tried {DATA_ENV} and {tried}). Fetch it with "
        f"`python -m bayestune.hep.fetch --dest DIR` and set {DATA_ENV}=DIR, or pass --data DIR."
    )


def load_reference(
    obs: Iterable[Observable], data_dir: str | Path | None = None
) -> dict[str, Histogram]:
    """Reference histograms for ``obs``, keyed by observable id and named by Rivet path."""
    folder = find_data_dir(data_dir)
    by_file: dict[str, list[Observable]] = {}
    for o in obs:
        by_file.setdefault(o.file, []).append(o)
    out = {}
    for fname, group in by_file.items():
        hists = read_yoda(folder / fname, [o.path for o in group])
        for o in group:
            out[o.id] = hists[o.path]
    return out


def monash_parameters(data_dir: str | Path | None = None) -> dict[str, dict[str, str]]:
    """Rows of ``monash2013_parameters.csv`` keyed by Pythia setting name."""
    folder = find_data_dir(data_dir)
    with open(folder / "monash2013_parameters.csv", newline="", encoding="utf-8") as fh:
        return {row["parameter"]: row for row in csv.DictReader(fh)}


#: the columns of ``monash2013_parameters.csv`` with published tuning ranges, in the order
#: they are preferred: arXiv:1610.08328's, then arXiv:2505.11675's
RANGE_COLUMNS = ("IWY1610.08328_range", "AKPM2505.11675_range")
#: the twenty parameters of arXiv:1610.08328 (its blocks 1-3 in ``monash2013_parameters.csv``)
IWY_BLOCKS = ("1", "2", "3")


def published_ranges(names: Iterable[str], data_dir: str | Path | None = None
                     ) -> dict[str, tuple[float, float]]:
    """The published tuning range of each parameter (:data:`RANGE_COLUMNS`).

    Raises
    ------
    KeyError
        Naming a parameter that the table lacks or for which it gives no range.
    """
    rows = monash_parameters(data_dir)
    out = {}
    for name in names:
        if name not in rows:
            raise KeyError(f"parameter {name!r} is not in monash2013_parameters.csv; known: "
                           f"{sorted(rows)}")
        text = next((rows[name][c] for c in RANGE_COLUMNS
                     if rows[name][c] not in ("", "-")), None)
        if text is None:
            raise KeyError(f"monash2013_parameters.csv gives no published range for {name!r}")
        low, high = (float(v) for v in text.split("-"))
        out[name] = (low, high)
    return out


def monash_values(names: Iterable[str], data_dir: str | Path | None = None
                  ) -> dict[str, float]:
    """The Monash 2013 values of ``names`` (``monash2013_value``)."""
    rows = monash_parameters(data_dir)
    missing = [n for n in names if n not in rows]
    if missing:
        raise KeyError(f"no Monash value for {missing} in monash2013_parameters.csv")
    return {n: float(rows[n]["monash2013_value"]) for n in names}


def iwy_blocks(names: Iterable[str], data_dir: str | Path | None = None
               ) -> list[list[str]]:
    """``names`` grouped by their block of arXiv:1610.08328 (final-state shower, string
    fragmentation, flavour composition), in the blocks' order; names outside its twenty
    parameters raise KeyError."""
    rows = monash_parameters(data_dir)
    names = list(names)
    outside = [n for n in names if n not in rows or rows[n]["IWY1610.08328_block"]
               not in IWY_BLOCKS]
    if outside:
        raise KeyError(f"{outside} are not among the twenty parameters of arXiv:1610.08328")
    blocks = [[n for n in names if rows[n]["IWY1610.08328_block"] == b] for b in IWY_BLOCKS]
    return [b for b in blocks if b]


def iwy_parameters(data_dir: str | Path | None = None) -> list[str]:
    """The twenty parameters of arXiv:1610.08328, in the table's order."""
    return [n for n, r in monash_parameters(data_dir).items()
            if r["IWY1610.08328_block"] in IWY_BLOCKS]
