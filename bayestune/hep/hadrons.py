"""Hadron species by PDG id: quark content, heavy flavour, and the species the PDG counts.

The Monte Carlo particle numbering scheme encodes a hadron's quarks in its digits:
``|id| = ... n_q1 n_q2 n_q3 n_J`` with ``n_J`` = 2J + 1 (never 0 for a hadron). Mesons have
``n_q1 = 0`` and quarks ``n_q2 n_q3``; baryons have three quarks ``n_q1 n_q2 n_q3``. Diquarks
(``n_q3 = 0``), quarks, leptons and bosons (``|id| < 100``) are not hadrons.

:data:`PDG_SPECIES` lists, for the hadrons whose mean multiplicity at the Z pole the PDG
review averages (table 40.1, as Rivet's ``PDG_HADRON_MULTIPLICITIES`` holds it), the histogram
at 91.2 GeV in that file and the PDG ids counted (particles and antiparticles).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["has_quark", "heavy_flavour", "is_hadron", "HadronSpecies", "PDG_SPECIES"]


def _quarks(abs_ids: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Whether each ``|PDG id|`` is a hadron, and its quark digits ``n_q1, n_q2, n_q3``."""
    ids = np.asarray(abs_ids, dtype=np.int64)
    digits = ids % 10_000
    nq1, nq2, nq3, n_j = digits // 1000, (digits // 100) % 10, (digits // 10) % 10, digits % 10
    return (ids >= 100) & (nq2 > 0) & (nq3 > 0) & (n_j > 0), nq1, nq2, nq3


def is_hadron(abs_ids: np.ndarray) -> np.ndarray:
    """Whether each ``|PDG id|`` is a meson or a baryon."""
    return _quarks(abs_ids)[0]


def has_quark(abs_ids: np.ndarray, flavour: int) -> np.ndarray:
    """Whether each ``|PDG id|`` is a hadron holding a quark of ``flavour`` (4 = c, 5 = b).

    Quarkonia (c cbar, b bbar) count as holding the flavour.
    """
    hadron, nq1, nq2, nq3 = _quarks(abs_ids)
    return hadron & ((nq1 == flavour) | (nq2 == flavour) | (nq3 == flavour))


def heavy_flavour(abs_ids: np.ndarray) -> np.ndarray:
    """The heaviest quark of each ``|PDG id|`` that is a charm or bottom hadron: 5 (b), 4 (c),
    or 0 (a light hadron or not a hadron)."""
    hadron, nq1, nq2, nq3 = _quarks(abs_ids)
    heaviest = np.maximum(np.maximum(nq1, nq2), nq3)
    return np.where(hadron & (heaviest >= 4) & (heaviest <= 5), heaviest, 0)


@dataclass(frozen=True)
class HadronSpecies:
    """A hadron species of the PDG multiplicity table.

    Attributes
    ----------
    name : str
        Short name, used in observable ids (``"PDG_" + name``) and quantity names
        (``"N(" + name + ")"``).
    histogram : str
        Its histogram at 91.2 GeV in ``PDG_HADRON_MULTIPLICITIES.yoda``
        (``"dNN-x01-yMM"``, the y index whose x range holds 91.2).
    ids : tuple of int
        The ``|PDG id|`` values counted.
    label : str
        For plots and tables.
    """

    name: str
    histogram: str
    ids: tuple[int, ...]
    label: str


PDG_SPECIES: tuple[HadronSpecies, ...] = (
    HadronSpecies("pi", "d01-x01-y03", (211,), "pi+-"),
    HadronSpecies("pi0", "d02-x01-y03", (111,), "pi0"),
    HadronSpecies("Kpm", "d03-x01-y03", (321,), "K+-"),
    HadronSpecies("K0", "d04-x01-y03", (130, 310), "K0_S + K0_L"),
    HadronSpecies("eta", "d05-x01-y03", (221,), "eta"),
    HadronSpecies("etaprime", "d06-x01-y03", (331,), "eta'(958)"),
    HadronSpecies("Dpm", "d07-x01-y03", (411,), "D+-"),
    HadronSpecies("D0", "d08-x01-y03", (421,), "D0"),
    HadronSpecies("Ds", "d09-x01-y03", (431,), "D_s+-"),
    HadronSpecies("Bu_Bd", "d10-x01-y01", (511, 521), "B+- + B0"),
    HadronSpecies("Bs", "d12-x01-y01", (531,), "B_s0"),
    HadronSpecies("rho0", "d15-x01-y03", (113,), "rho0(770)"),
    HadronSpecies("rhopm", "d16-x01-y01", (213,), "rho+-(770)"),
    HadronSpecies("omega", "d17-x01-y02", (223,), "omega(782)"),
    HadronSpecies("Kstarpm", "d18-x01-y03", (323,), "K*+-(892)"),
    HadronSpecies("Kstar0", "d19-x01-y03", (313,), "K*0(892)"),
    HadronSpecies("phi", "d20-x01-y03", (333,), "phi(1020)"),
    HadronSpecies("Dstarpm", "d21-x01-y03", (413,), "D*+-(2010)"),
    HadronSpecies("Dsstar", "d23-x01-y02", (433,), "D_s*+-"),
    HadronSpecies("Bstar", "d24-x01-y01", (513, 523, 533), "B*"),
    HadronSpecies("p", "d38-x01-y03", (2212,), "p"),
    HadronSpecies("Lambda", "d39-x01-y03", (3122,), "Lambda"),
    HadronSpecies("Sigma0", "d40-x01-y02", (3212,), "Sigma0"),
    HadronSpecies("Sigmapm", "d43-x01-y01", (3112, 3222), "Sigma+-"),
    HadronSpecies("Xi", "d44-x01-y03", (3312,), "Xi-"),
    HadronSpecies("Deltapp", "d45-x01-y02", (2224,), "Delta++(1232)"),
    HadronSpecies("Sigmastarpm", "d48-x01-y03", (3114, 3224), "Sigma+-(1385)"),
    HadronSpecies("Xistar0", "d49-x01-y02", (3324,), "Xi0(1530)"),
    HadronSpecies("Omega", "d50-x01-y03", (3334,), "Omega-"),
    HadronSpecies("Lambdac", "d51-x01-y03", (4122,), "Lambda_c+"),
)
"""Species of the PDG table that string fragmentation produces (scalar, axial and tensor
mesons, excited baryons outside the lowest multiplets and quarkonia are left out: Pythia's
default fragmentation does not make them, or not through the parameters tuned here)."""
