"""The Pythia 8 adapter at small statistics (needs pythia8mc and the LEP reference data)."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("pythia8mc")

from bayestune.hep import HistogramObjective, find_data_dir, lep  # noqa: E402
from bayestune.hep.pythia import PythiaError, PythiaSimulator, format_setting  # noqa: E402


@pytest.fixture(scope="module")
def setup():
    try:
        find_data_dir()
    except FileNotFoundError as exc:
        pytest.skip(f"LEP reference data not available: {exc}")
    obs = lep.observables("core")
    return obs, lep.load_reference(obs)


@pytest.fixture(scope="module")
def monash(setup):
    obs, ref = setup
    sim = PythiaSimulator(obs, ref, n_events=1500, seed=7)
    return sim, sim({})


def test_all_observables_with_reference_binning(setup, monash):
    obs, ref = setup
    _, hists = monash
    assert set(hists) == {o.id for o in obs}
    for o in obs:
        ref[o.id].check_binning(hists[o.id])
        assert hists[o.id].name == ref[o.id].name  # Rivet path, for YODA output
        assert np.all(hists[o.id].errors > 0)


def test_monash_is_close_to_the_data(setup, monash):
    _, ref = setup
    _, h = monash
    # charged multiplicity: Monash gives ~20.5-20.6 (observables.yaml notes)
    assert h["ALEPH96_meanNch"].values[0] == pytest.approx(20.55, abs=0.5)
    assert h["ALEPH96_Nch"].values.sum() == pytest.approx(1.0, abs=0.02)
    # unit-normalised event shapes integrate to ~1 over the data range
    for name in ("ALEPH96_1mT", "ALEPH96_C", "ALEPH96_Y23"):
        integral = float(np.sum(h[name].values * h[name].widths))
        assert 0.9 < integral <= 1.0 + 1e-9, name
    obj = HistogramObjective(lambda p: h, ref,
                             {"ALEPH96_pToutS": 0.0, "PDG_K0": 0.0, "PDG_Lambda": 0.0})
    c = obj.chi2(h)
    per_bin = c.per_bin()
    for name in ("ALEPH96_1mT", "ALEPH96_C", "ALEPH96_Y23", "ALEPH96_A", "ALEPH96_xi"):
        assert per_bin[name] < 6.0, (name, c.table())


def test_same_point_same_histograms_and_seed_dependence(setup):
    obs, ref = setup
    sim = PythiaSimulator(obs[:2], ref, n_events=200, seed=3)
    params = {"TimeShower:alphaSvalue": 0.13}
    a, b = sim(params), sim(params)
    np.testing.assert_array_equal(a["ALEPH96_1mT"].values, b["ALEPH96_1mT"].values)
    c = sim.replicate(seed=4)(params)
    assert not np.array_equal(a["ALEPH96_1mT"].values, c["ALEPH96_1mT"].values)
    assert sim.chunk_seeds(params) != sim.chunk_seeds({"TimeShower:alphaSvalue": 0.14})


def test_results_do_not_depend_on_the_number_of_workers(setup):
    obs, ref = setup
    params = {"StringZ:bLund": 1.1}
    one = PythiaSimulator(obs[:1], ref, n_events=300, seed=5, chunk_events=100)(params)
    with PythiaSimulator(obs[:1], ref, n_events=300, seed=5, chunk_events=100,
                         n_workers=2) as sim:
        two = sim(params)
        # a replicate (pseudo-data, repeated closures) runs on the same worker processes
        copy = sim.replicate(seed=5, n_events=300)
        assert copy._executor() is sim._executor() is copy.replicate()._executor()
        again = copy(params)
    np.testing.assert_allclose(one["ALEPH96_1mT"].values, two["ALEPH96_1mT"].values)
    np.testing.assert_allclose(again["ALEPH96_1mT"].values, two["ALEPH96_1mT"].values)


def test_alpha_s_widens_the_thrust_distribution(setup):
    obs, ref = setup
    sim = PythiaSimulator([o for o in obs if o.id == "ALEPH96_1mT"], ref, n_events=600, seed=2)

    def mean_1mt(alpha):
        h = sim({"TimeShower:alphaSvalue": alpha})["ALEPH96_1mT"]
        return float(np.sum(h.centres * h.values * h.widths))

    assert mean_1mt(0.16) > mean_1mt(0.11) + 0.01


def test_bad_settings_are_named(setup):
    obs, ref = setup
    sim = PythiaSimulator(obs[:1], ref, n_events=10)
    with pytest.raises(PythiaError, match="NoSuch:setting"):
        sim({"NoSuch:setting": 1.0})
    with pytest.raises(ValueError, match="n_events=0"):
        PythiaSimulator(obs[:1], ref, n_events=0)
    assert format_setting("A:b", True) == "A:b = on"
    assert format_setting("A:b", 3) == "A:b = 3"


def test_event_records_match_the_numpy_reference_analysis():
    """The adapter's C++ finders give what the numpy reference implementations give."""
    import pythia8mc

    from bayestune.hep.analysis import durham_y23, event_shapes
    from bayestune.hep.lep import LEP1_SETTINGS
    from bayestune.hep.pythia import QUIET_SETTINGS, _make_record, _ShapeFinders

    class Needs:
        needs_thrust = needs_y23 = True

    pythia = pythia8mc.Pythia("", False)
    for line in (*QUIET_SETTINGS, *LEP1_SETTINGS, "StringZ:aLund = 1.2",
                 "Random:setSeed = on", "Random:seed = 12345"):
        assert pythia.readString(line)
    assert pythia.init()
    finders = _ShapeFinders(pythia8mc, Needs())
    n_checked = 0
    while n_checked < 300:
        assert pythia.next()
        rec = _make_record(pythia.event, finders)
        if rec.charged.shape[0] < 3:
            continue
        n_checked += 1
        assert rec.shapes["y23"] == pytest.approx(durham_y23(rec.charged), rel=1e-9)
        ref = event_shapes(rec.charged[:, :3])
        np.testing.assert_allclose(rec.shapes["sph_eigen"], ref["sph_eigen"], atol=1e-9)
        np.testing.assert_allclose(rec.shapes["lin_eigen"], ref["lin_eigen"], atol=1e-9)
        assert 0.5 <= rec.shapes["thrust"] <= 1.0


def test_each_b_quark_ends_in_one_weakly_decaying_b_hadron():
    """Z -> b bbar: two weakly decaying b hadrons per event, after B* and B** decays."""
    import pythia8mc

    from bayestune.hep.hadrons import heavy_flavour
    from bayestune.hep.lep import LEP1_SETTINGS
    from bayestune.hep.pythia import QUIET_SETTINGS, _make_record, _ShapeFinders

    class Needs:
        needs_thrust = needs_y23 = False

    pythia = pythia8mc.Pythia("", False)
    b_only = [s for s in LEP1_SETTINGS if not s.startswith("23:onIfAny")] + ["23:onIfAny = 5"]
    for line in (*QUIET_SETTINGS, *b_only, "Random:setSeed = on", "Random:seed = 4321"):
        assert pythia.readString(line)
    assert pythia.init()
    finders = _ShapeFinders(pythia8mc, Needs())
    n_weak, n_excited = [], 0
    for _ in range(300):
        assert pythia.next()
        rec = _make_record(pythia.event, finders)
        b_rows = rec.heavy[heavy_flavour(rec.heavy[:, 0].astype(int)) == 5]
        n_weak.append(int(b_rows[:, 2].sum()))
        n_excited += int(np.sum(b_rows[:, 2] == 0))
        assert np.all(b_rows[:, 1] > 5.0)  # every b hadron carries a few GeV at least
    n_weak = np.array(n_weak)
    assert np.all(n_weak >= 2) and np.all(n_weak % 2 == 0)
    assert np.mean(n_weak == 2) > 0.95  # more only after a g -> b bbar splitting
    assert n_excited > 100  # B* -> B gamma and the like: b hadrons that do not decay weakly
