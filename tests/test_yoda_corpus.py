"""The YODA reader on what Rivet's reference files hold: points, empty and 2-D/3-D blocks,
V1/V2/V3 formats, error breakdowns; and the covariance chi2 the breakdowns allow."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from bayestune.hep import (
    Histogram,
    HistogramError,
    HistogramObjective,
    YodaWarning,
    chi2,
    read_hepdata_yaml,
    read_yoda,
    write_yoda,
)

# a quantity measured at several energies: zero-width x errors (as L3 2004 d53)
POINTS = """\
BEGIN YODA_SCATTER2D_V2 /REF/L3_TEST/d53-x01-y01
Path: /REF/L3_TEST/d53-x01-y01
Type: Scatter2D
---
# xval xerr- xerr+ yval yerr- yerr+
4.140000e+01 0 0 9.710000e-02 2.0e-03 2.0e-03
5.530000e+01 0 0 8.970000e-02 3.0e-03 1.0e-03
9.120000e+01 0 0 7.800000e-02 1.0e-03 1.0e-03
END YODA_SCATTER2D_V2
"""

BINNED = """\
BEGIN YODA_SCATTER2D_V2 /REF/L3_TEST/d01-x01-y01
ErrorBreakdown: {0: {stat: {dn: -0.3, up: 0.3}, sys: {dn: -0.4, up: 0.4}}, \
1: {stat: {dn: -0.6, up: 0.6}, 'sys,unfolding': {dn: -0.8, up: 0.8}}}
Path: /REF/L3_TEST/d01-x01-y01
Type: Scatter2D
---
# xval xerr- xerr+ yval yerr- yerr+
0.5 0.5 0.5 10.0 0.5 0.5
1.5 0.5 0.5 20.0 1.0 1.0
END YODA_SCATTER2D_V2
"""

EMPTY = """\
BEGIN YODA_SCATTER2D_V2 /REF/L3_TEST/d02-x01-y01
Path: /REF/L3_TEST/d02-x01-y01
Type: Scatter2D
---
# xval xerr- xerr+ yval yerr- yerr+
END YODA_SCATTER2D_V2
"""

SCATTER3D = """\
BEGIN YODA_SCATTER3D_V2 /REF/L3_TEST/d03-x01-y01
Path: /REF/L3_TEST/d03-x01-y01
Type: Scatter3D
---
# xval xerr- xerr+ yval yerr- yerr+ zval zerr- zerr+
1 0.5 0.5 1 0.5 0.5 3.0 0.1 0.1
END YODA_SCATTER3D_V2
"""

V1 = """\
BEGIN YODA_SCATTER2D /REF/OLD_TEST/d01-x01-y01
Path=/REF/OLD_TEST/d01-x01-y01
Title=an old file
Type=Scatter2D
# xval xerr- xerr+ yval yerr- yerr+
1.0 1.0 1.0 3.0 0.2 0.2
END YODA_SCATTER2D
"""

V3_ESTIMATE = """\
BEGIN YODA_ESTIMATE1D_V3 /REF/NEW_TEST/d01-x01-y01
Path: /REF/NEW_TEST/d01-x01-y01
Type: Estimate1D
---
Edges(A1): [0.0, 1.0, 2.0]
ErrorLabels: ["stat", "sys"]
# value errDn(1) errUp(1) errDn(2) errUp(2)
nan nan nan nan nan
1.0 -0.3 0.3 -0.4 0.4
2.0 -0.6 0.6 -0.8 0.8
nan nan nan nan nan
END YODA_ESTIMATE1D_V3
"""

DISCRETE = """\
BEGIN YODA_BINNEDESTIMATE1D_V3 /REF/NEW_TEST/d02-x01-y01
Path: /REF/NEW_TEST/d02-x01-y01
Type: BinnedEstimate<s>
---
Edges(A1): ["pi", "K"]
# value errDn(1) errUp(1)
nan nan nan
1.0 -0.1 0.1
2.0 -0.2 0.2
nan nan nan
END YODA_BINNEDESTIMATE1D_V3
"""

BROKEN_ROW = """\
BEGIN YODA_SCATTER2D_V2 /REF/L3_TEST/d04-x01-y01
Path: /REF/L3_TEST/d04-x01-y01
---
1.0 0.5 0.5 2.0 0.1
END YODA_SCATTER2D_V2
"""

TRUNCATED = """\
BEGIN YODA_SCATTER2D_V2 /REF/L3_TEST/d05-x01-y01
Path: /REF/L3_TEST/d05-x01-y01
---
1.0 0.5 0.5 2.0 0.1 0.1
"""

FILE = POINTS + BINNED + EMPTY + SCATTER3D + V1 + V3_ESTIMATE + DISCRETE + BROKEN_ROW + TRUNCATED


def _read_warned(text: str) -> tuple[dict[str, Histogram], str]:
    with pytest.warns(YodaWarning) as caught:
        out = read_yoda(text)
    assert len(caught) == 1, "one warning per file"
    return out, str(caught[0].message)


def test_one_bad_block_never_loses_the_file():
    hists, message = _read_warned(FILE)
    assert set(hists) == {"/L3_TEST/d53-x01-y01", "/L3_TEST/d01-x01-y01",
                          "/OLD_TEST/d01-x01-y01", "/NEW_TEST/d01-x01-y01"}
    # the warning names every skipped object and why
    for path, why in [("/L3_TEST/d02-x01-y01", "empty"),
                      ("/L3_TEST/d03-x01-y01", "Scatter3D is not a 1-D observable"),
                      ("/NEW_TEST/d02-x01-y01", "not numeric"),
                      ("/L3_TEST/d04-x01-y01", "columns"),
                      ("/L3_TEST/d05-x01-y01", "ends before its END")]:
        assert path in message and why in message, (path, why, message)


def test_points_are_kept_as_points_and_serve_as_one_value_observables():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        h = read_yoda(POINTS)["/L3_TEST/d53-x01-y01"]
    assert np.all(h.points) and h.n_bins == 3
    np.testing.assert_allclose(h.lower, [41.4, 55.3, 91.2])
    np.testing.assert_allclose(h.errors, [2e-3, 2e-3, 1e-3])
    at_z = h.point(91.2)
    assert at_z.n_bins == 1 and at_z.values[0] == pytest.approx(0.078)
    assert at_z.name == "/L3_TEST/d53-x01-y01@91.2"
    with pytest.raises(HistogramError, match="x=100.0"):
        h.point(100.0)
    # a point compares with a simulation at the same x, and with nothing else
    sim = Histogram(h.name, h.lower, h.upper, h.values + 0.001, [0.0, 0.0, 0.0])
    assert chi2({h.name: sim}, {h.name: h}).value == pytest.approx(0.25 + 0.25 + 1.0)
    shifted = Histogram(h.name, h.lower + 0.1, h.upper + 0.1, h.values, h.errors)
    with pytest.raises(HistogramError, match="differ in bin 0"):
        h.check_binning(shifted)


def test_requested_unusable_block_raises_naming_it():
    with pytest.raises(HistogramError, match="d03-x01-y01.*Scatter3D"):
        read_yoda(FILE, ["/REF/L3_TEST/d03-x01-y01"])
    with pytest.raises(HistogramError, match="d02-x01-y01.*empty"):
        read_yoda(FILE, ["/L3_TEST/d02-x01-y01"])
    # requesting good objects of the same file neither warns nor fails
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        got = read_yoda(FILE, ["/L3_TEST/d01-x01-y01"])
    assert list(got) == ["/L3_TEST/d01-x01-y01"]


def test_v1_headers_and_v3_error_labels():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        old = read_yoda(V1)["/OLD_TEST/d01-x01-y01"]
        new = read_yoda(V3_ESTIMATE)["/NEW_TEST/d01-x01-y01"]
    np.testing.assert_allclose([old.lower[0], old.upper[0], old.values[0]], [0.0, 2.0, 3.0])
    np.testing.assert_allclose(new.errors, [0.5, 1.0])
    assert new.sources is not None and list(new.sources) == ["stat", "sys"]
    np.testing.assert_allclose(new.sources["sys"], [0.4, 0.8])


def test_error_breakdown_sources_survive_select_and_a_yoda_round_trip(tmp_path):
    h = read_yoda(BINNED)["/L3_TEST/d01-x01-y01"]
    assert h.sources is not None
    np.testing.assert_allclose(h.sources["stat"], [0.3, 0.6])
    np.testing.assert_allclose(h.sources["sys"], [0.4, 0.0])  # absent in point 1
    np.testing.assert_allclose(h.sources["sys,unfolding"], [0.0, 0.8])
    np.testing.assert_allclose(h.errors, [0.5, 1.0])  # the file's totals
    assert h.select(np.array([False, True])).sources["stat"].tolist() == [0.6]
    back = read_yoda(write_yoda([h], tmp_path / "out.yoda"))[h.name]
    for key, value in h.sources.items():
        np.testing.assert_allclose(back.sources[key], value)
    assert Histogram.from_dict(h.to_dict()).sources.keys() == h.sources.keys()


def test_malformed_sources_are_rejected_naming_the_source():
    with pytest.raises(HistogramError, match="'sys'.*shape"):
        Histogram("h", [0, 1], [1, 2], [1, 1], [1, 1], sources={"sys": [0.1]})
    with pytest.raises(HistogramError, match="'sys'.*-0.1"):
        Histogram("h", [0, 1], [1, 2], [1, 1], [1, 1], sources={"sys": [0.1, -0.1]})


def _two_bins(sources: dict[str, list[float]]) -> Histogram:
    return Histogram("/T/h", [0, 1], [1, 2], [10.0, 10.0], [0.5, 0.5], sources=sources)


def test_correlated_sources_make_a_covariance_chi2():
    ref = _two_bins({"stat": [0.3, 0.3], "sys": [0.4, 0.4]})
    up = Histogram("/T/h", [0, 1], [1, 2], [11.0, 11.0], [0.0, 0.0])  # both bins up: the sys
    apart = Histogram("/T/h", [0, 1], [1, 2], [11.0, 9.0], [0.0, 0.0])  # opposite
    independent = chi2({"/T/h": up}, {"/T/h": ref}).value
    assert independent == pytest.approx(2 / 0.25)
    # C = 0.09 I + 0.16 (1 1^T): a common shift costs 2 / (0.09 + 0.32)
    shared = chi2({"/T/h": up}, {"/T/h": ref}, correlated_sources=["sys*"]).value
    assert shared == pytest.approx(2 / 0.41)
    opposite = chi2({"/T/h": apart}, {"/T/h": ref}, correlated_sources=["sys*"]).value
    assert opposite == pytest.approx(2 / 0.09)
    # matching nothing in a histogram leaves its independent terms
    other = _two_bins({"stat": [0.5, 0.5]})
    assert chi2({"/T/h": up}, {"/T/h": other}, correlated_sources=["sys*"]).value == \
        pytest.approx(independent)


def test_objective_validates_correlated_sources_and_bin_models_refuse_them():
    ref = _two_bins({"stat": [0.3, 0.3], "sys": [0.4, 0.4]})

    def simulate(params):
        return {"/T/h": Histogram("/T/h", [0, 1], [1, 2], [params["x"]] * 2, [0.1, 0.1])}

    obj = HistogramObjective(simulate, [ref], correlated_sources=["sys"])
    assert obj({"x": 11.0}).value == pytest.approx(2 / (0.09 + 0.01 + 0.32), rel=1e-9)
    with pytest.raises(ValueError, match="matches no error source.*'stat', 'sys'"):
        HistogramObjective(simulate, [ref], correlated_sources=["syst"])
    with pytest.raises(ValueError, match="correlated_sources"):
        HistogramObjective(simulate, [ref], correlated_sources=[""])
    with pytest.raises(ValueError, match="bin-by-bin models fit independent bins"):
        obj.used_bins()


HEPDATA = """\
independent_variables:
- header: {name: 'x'}
  values:
  - {low: 0.0, high: 1.0}
  - {low: 1.0, high: 2.0}
dependent_variables:
- header: {name: 'y'}
  values:
  - value: 10.0
    errors:
    - {symerror: 0.3, label: stat}
    - {symerror: 0.4, label: sys}
  - value: 20.0
    errors:
    - {symerror: 10%, label: stat}
    - {asymerror: {plus: 1.0, minus: -3.0}}
"""


def test_hepdata_error_sources_by_label():
    h = read_hepdata_yaml(HEPDATA)
    assert list(h.sources) == ["stat", "sys", "error"]
    np.testing.assert_allclose(h.sources["stat"], [0.3, 2.0])
    np.testing.assert_allclose(h.sources["sys"], [0.4, 0.0])
    np.testing.assert_allclose(h.sources["error"], [0.0, 2.0])
    np.testing.assert_allclose(h.errors, [0.5, np.sqrt(8.0)])


def test_shared_lep_files_keep_their_breakdowns(lep_dir):
    with pytest.warns(YodaWarning, match="Scatter3D"):
        aleph = read_yoda(lep_dir / "ALEPH_2001_S4656318.yoda")
    sld = read_yoda(lep_dir / "SLD_2002_S4869273.yoda")
    assert len(aleph) == 6
    for h in sld.values():
        assert h.sources is not None and {"stat", "sys"} <= set(h.sources)
        total = np.sqrt(sum(v**2 for v in h.sources.values()))
        np.testing.assert_allclose(total, h.errors, rtol=0.05)


# as converted from HEPData: the breakdown numbers the original table's rows (0 and 1 were
# left out), and a breakdown that no longer matches the errors (values rescaled afterwards)
RENUMBERED = """\
BEGIN YODA_SCATTER2D_V2 /REF/D_TEST/d06-x01-y01
Variations: [""]
ErrorBreakdown: {2: {error: {dn: -1.5, up: 1.5}}, \
3: {stat: {dn: -0.6, up: 0.6}, sys: {dn: -0.8, up: 0.8}}}
IsRef: 1
Path: /REF/D_TEST/d06-x01-y01
---
3.4e-02 3.3e-03 3.3e-03 1.0e+01 1.5e+00 1.5e+00
4.1e-02 3.7e-03 2.9e-03 8.7e+00 1.0e+00 1.0e+00
END YODA_SCATTER2D_V2
BEGIN YODA_SCATTER2D_V2 /REF/D_TEST/d01-x01-y01
ErrorBreakdown: {0: {error: {dn: -11.3, up: 11.3}}, 1: {error: {dn: -13.8, up: 13.8}}}
Path: /REF/D_TEST/d01-x01-y01
---
0.2 0.05 0.05 0.2044 0.0699 0.0699
0.3 0.05 0.05 0.4027 0.0811 0.0811
END YODA_SCATTER2D_V2
"""


def test_renumbered_and_stale_breakdowns():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        hists = read_yoda(RENUMBERED)
    renumbered = hists["/D_TEST/d06-x01-y01"]
    np.testing.assert_allclose(renumbered.sources["error"], [1.5, 0.0])
    np.testing.assert_allclose(renumbered.sources["sys"], [0.0, 0.8])
    stale = hists["/D_TEST/d01-x01-y01"]
    assert stale.sources is None  # the totals stay; the stale breakdown is not used
    np.testing.assert_allclose(stale.errors, [0.0699, 0.0811])
