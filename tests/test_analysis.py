"""LEP observables from event records: Durham y23, event shapes, normalisation and errors."""

from __future__ import annotations

import numpy as np
import pytest

from bayestune.hep import Histogram
from bayestune.hep.analysis import Analysis, EventRecord, durham_y23, event_shapes


def brute_force_y23(p):
    """Durham clustering recomputing every distance at every step (slow reference)."""
    jets = [row.copy() for row in p]
    evis2 = p[:, 3].sum() ** 2
    merges = []
    while len(jets) > 2:
        best = (np.inf, 0, 0)
        for i in range(len(jets)):
            for j in range(i + 1, len(jets)):
                a, b = jets[i], jets[j]
                cos = a[:3] @ b[:3] / (np.linalg.norm(a[:3]) * np.linalg.norm(b[:3]))
                y = 2 * min(a[3] ** 2, b[3] ** 2) * (1 - cos) / evis2
                if y < best[0]:
                    best = (y, i, j)
        y, i, j = best
        merges.append(y)
        merged = jets[i] + jets[j]
        jets = [jet for k, jet in enumerate(jets) if k not in (i, j)] + [merged]
    return max(merges)


def random_event(rng, n):
    p3 = rng.normal(size=(n, 3)) * rng.uniform(0.2, 5.0, size=(n, 1))
    e = np.sqrt(np.sum(p3**2, axis=1) + 0.14**2)
    return np.column_stack([p3, e])


@pytest.mark.parametrize("n", [3, 4, 7, 15])
def test_durham_y23_matches_brute_force(n):
    rng = np.random.default_rng(n)
    for _ in range(5):
        p = random_event(rng, n)
        assert durham_y23(p) == pytest.approx(brute_force_y23(p), rel=1e-10)


def test_durham_y23_two_back_to_back_jets_is_small():
    rng = np.random.default_rng(0)
    axis = np.array([0.0, 0.0, 1.0])
    parts = []
    for sign in (1, -1):
        for _ in range(5):
            p3 = sign * 9.0 * axis + rng.normal(0, 0.05, 3)
            parts.append([*p3, np.linalg.norm(p3)])
    assert durham_y23(np.array(parts)) < 1e-4
    assert np.isnan(durham_y23(np.array(parts[:2])))


def test_event_shapes_of_a_planar_and_a_spherical_event():
    planar = np.array([[1, 0, 0], [-1, 0, 0], [0, 1, 0], [0, -1, 0]], dtype=float)
    s = event_shapes(planar)
    np.testing.assert_allclose(s["sph_eigen"], [0.5, 0.5, 0.0], atol=1e-12)
    # the minor axis is normal to the event plane
    assert abs(s["sph_axes"][2] @ [0, 0, 1]) == pytest.approx(1.0)
    sphere = np.vstack([planar, [[0, 0, 1], [0, 0, -1]]])
    np.testing.assert_allclose(event_shapes(sphere)["lin_eigen"], [1 / 3] * 3, atol=1e-12)


def record(charged_p3, all_ids=(), thrust=0.9, y23=0.01):
    p3 = np.asarray(charged_p3, dtype=float)
    e = np.linalg.norm(p3, axis=1)
    shapes = event_shapes(p3)
    shapes["thrust"] = thrust
    shapes["y23"] = y23
    ids = np.full(len(p3), 211)
    return EventRecord(np.column_stack([p3, e]), ids, np.asarray(all_ids, dtype=int), shapes)


def test_unit_normalisation_counts_out_of_range_events():
    ref = Histogram.from_edges("t", [0.0, 0.1, 0.2], [1, 1], [0.1, 0.1])
    ana = Analysis({"t": "1-T"}, {"t": ref})
    recs = [record([[1, 0, 0], [-1, 0, 0]], thrust=t) for t in (0.95, 0.95, 0.85, 0.5)]
    h = ana.finalize(ana.reduce(recs))["t"]
    # 2 events in bin 0, 1 in bin 1, 1 outside: densities count / (4 * 0.1)
    np.testing.assert_allclose(h.values, [2 / 0.4, 1 / 0.4])
    binomial = np.sqrt([0.5 * 0.5 / 4, 0.25 * 0.75 / 4])
    np.testing.assert_allclose(h.errors, np.maximum(binomial, 1 / 4) / 0.1)  # one-entry floor


def test_particle_density_error_uses_per_event_counts():
    ref = Histogram.from_edges("x", [0.0, 0.05, 1.0], [1, 1], [0.1, 0.1])
    ana = Analysis({"x": "xp"}, {"x": ref})
    # x_p = |p| / 45.6: event A has 3 particles in bin 0, event B has 1
    slow = [[0.5, 0, 0]]
    recs = [record(slow * 3 + [[30, 0, 0]]), record(slow + [[30, 0, 0]])]
    sums = ana.reduce(recs)
    np.testing.assert_allclose(sums.sumw["x"], [4, 2])
    np.testing.assert_allclose(sums.sumw2["x"], [9 + 1, 2])
    h = ana.finalize(sums)["x"]
    np.testing.assert_allclose(h.values, [2 / 0.05, 1 / 0.95])
    # per-event counts (3, 1): mean 2, variance 1, error of the mean sqrt(1/2)
    assert h.errors[0] == pytest.approx(np.sqrt(0.5) / 0.05)
    assert h.errors[1] == pytest.approx(1 / 2 / 0.95)  # zero-variance bin gets one entry


def test_sums_add_like_one_sample():
    ref = {"n": Histogram.from_edges("n", [1, 3, 5], [1, 1], [1, 1]),
           "m": Histogram.scalar("m", 3.0, 0.1, low=90.5, high=91.5)}
    ana = Analysis({"n": "Nch", "m": "<Nch>"}, ref)
    rng = np.random.default_rng(1)
    recs = [record(rng.normal(size=(int(k), 3))) for k in rng.choice([2, 4], size=10)]
    whole = ana.finalize(ana.reduce(recs))
    split = ana.finalize(ana.reduce(recs[:3]) + ana.reduce(recs[3:]))
    for key in whole:
        np.testing.assert_allclose(whole[key].values, split[key].values)
        np.testing.assert_allclose(whole[key].errors, split[key].errors)
    assert whole["n"].values.sum() == pytest.approx(1.0)
    n_ch = np.array([r.charged.shape[0] for r in recs])
    assert whole["m"].values[0] == pytest.approx(n_ch.mean())
    assert whole["m"].errors[0] == pytest.approx(n_ch.std() / np.sqrt(len(n_ch)))


def test_hadron_rates_count_every_occurrence():
    ref = {"k0": Histogram.scalar("k0", 2.0, 0.1)}
    ana = Analysis({"k0": "N(K0)"}, ref)
    recs = [record([[1, 0, 0], [-1, 0, 0]], all_ids=[311, 310, 211, -211, 130, -311])]
    assert ana.finalize(ana.reduce(recs))["k0"].values[0] == pytest.approx(2.0)


def test_heavy_flavour_from_pdg_digits():
    from bayestune.hep.hadrons import has_quark, heavy_flavour, is_hadron

    ids = np.array([511, 5122, 421, 4122, 443, 10433, 2212, 321, 5203, 21, 11, 553])
    np.testing.assert_array_equal(heavy_flavour(ids), [5, 5, 4, 4, 4, 4, 0, 0, 0, 0, 0, 5])
    np.testing.assert_array_equal(is_hadron(ids)[-4:], [False, False, False, True])
    assert has_quark(np.array([531]), 3)[0] and not has_quark(np.array([521]), 3)[0]


def heavy_record(rows, all_ids=()):
    rec = record([[1, 0, 0], [-1, 0, 0]], all_ids=all_ids)
    rec.heavy = np.asarray(rows, dtype=float).reshape(-1, 3)
    return rec


def test_b_fragmentation_is_unit_area_over_weakly_decaying_b_hadrons():
    ref = Histogram.from_edges("xb", [0.0, 0.5, 1.0], [1, 1], [0.1, 0.1])
    ana = Analysis({"xb": "xB:weak"}, {"xb": ref})
    beam = 45.6
    recs = [
        # a B* (not weak) decaying to a B0 (weak), and a weak B- at x = 0.3
        heavy_record([[513, 0.9 * beam, 0.0], [511, 0.8 * beam, 1.0], [521, 0.3 * beam, 1.0]]),
        # a weak Lambda_b at x = 0.9 and a weak D0 (charm: not counted)
        heavy_record([[5122, 0.9 * beam, 1.0], [421, 0.2 * beam, 1.0]]),
        heavy_record([]),  # a light-quark event
    ]
    sums = ana.reduce(recs)
    assert sums.n_filled["xb"] == 3  # three weakly decaying b hadrons
    h = ana.finalize(sums)["xb"]
    np.testing.assert_allclose(h.values, [1 / 3 / 0.5, 2 / 3 / 0.5])
    binomial = np.sqrt(2 / 9 / 3)  # over the 3 hadrons, floored at one entry (1 / 3)
    np.testing.assert_allclose(h.errors, [max(binomial, 1 / 3) / 0.5] * 2)


def test_charm_spectrum_is_per_event_and_rates_count_species():
    ref = {"d": Histogram.from_edges("d", [0.0, 0.5, 1.0], [1, 1], [0.1, 0.1]),
           "n": Histogram.scalar("n", 0.5, 0.1)}
    ana = Analysis({"d": "xE:D0", "n": "N(D0)"}, ref)
    beam = 45.6
    recs = [heavy_record([[421, 0.3 * beam, 1.0], [421, 0.7 * beam, 1.0]], all_ids=[421, -421]),
            heavy_record([[411, 0.3 * beam, 1.0]], all_ids=[411]),
            heavy_record([]), heavy_record([])]
    out = ana.finalize(ana.reduce(recs))
    np.testing.assert_allclose(out["d"].values, [1 / 4 / 0.5, 1 / 4 / 0.5])
    assert out["n"].values[0] == pytest.approx(0.5)


def test_every_observable_of_the_twenty_parameter_set_has_a_quantity(lep_dir):
    from bayestune.hep import lep

    obs = lep.observables("iwy20")
    reference = lep.load_reference(obs, lep_dir)
    ana = Analysis({o.id: o.quantity for o in obs}, reference)
    assert len(ana.quantities) == len(obs) >= 45
    assert reference["PDG_Omega"].values[0] == pytest.approx(0.0016)  # the 91 GeV column


def test_the_delphi_observables_load_with_their_normalisation(lep_dir):
    """DELPHI 1996's charged-particle histograms: event shapes of unit area, spectra per event
    (integrating to its mean charged multiplicity), as the analysis fills ALEPH's."""
    from bayestune.hep import lep

    obs = lep.observables("delphi96")
    reference = lep.load_reference(obs, lep_dir)
    ana = Analysis({o.id: o.quantity for o in obs}, reference)
    assert len(ana.quantities) == len(obs)
    area = {k: float(np.sum(h.values * (h.upper - h.lower))) for k, h in reference.items()}
    for shape in ("DELPHI96_1mT", "DELPHI96_S", "DELPHI96_A", "DELPHI96_C"):
        assert area[shape] == pytest.approx(1.0, abs=0.02)
    for spectrum in ("DELPHI96_pTinS", "DELPHI96_pToutS", "DELPHI96_xp"):
        assert area[spectrum] == pytest.approx(reference["DELPHI96_meanNch"].values[0], rel=0.02)
    assert set(lep.observables("iwy20")) < set(lep.observables("lep_tune"))
