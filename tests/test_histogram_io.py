"""Histogram type and readers/writers, on hand-written text and on the shared LEP files."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from bayestune.hep import (
    Histogram,
    HistogramError,
    YodaWarning,
    read_csv,
    read_hepdata_yaml,
    read_histograms,
    read_json,
    read_yoda,
    write_json,
    write_yoda,
)

SCATTER = """\
BEGIN YODA_SCATTER2D_V2 /REF/TEST/d01-x01-y01
Path: /REF/TEST/d01-x01-y01
Type: Scatter2D
---
# xval xerr- xerr+ yval yerr- yerr+
0.5 0.5 0.5 10.0 1.0 3.0
1.5 0.5 0.5 20.0 2.0 2.0
4.0 1.0 1.0 5.0 0.5 0.5
END YODA_SCATTER2D_V2
"""

HISTO_V2 = """\
BEGIN YODA_HISTO1D_V2 /TEST/h1
Path: /TEST/h1
Type: Histo1D
---
# Mean: 1.0
# ID ID sumw sumw2 sumwx sumwx2 numEntries
Total Total 12 14 1 1 12
Underflow Underflow 1 1 0 0 1
Overflow Overflow 1 1 0 0 1
# xlow xhigh sumw sumw2 sumwx sumwx2 numEntries
0.0 0.5 4 4 1 1 4
0.5 1.5 6 8 1 1 6
END YODA_HISTO1D_V2
"""

HISTO_V3 = """\
BEGIN YODA_HISTO1D_V3 /TEST/h3
Path: /TEST/h3
Type: Histo1D
---
Edges(A1): [0.000000e+00, 1.000000e+00, 3.000000e+00]
# sumW sumW2 sumW(A1) sumW2(A1) numEntries
1 1 0 0 1
4 4 0 0 4
8 16 0 0 8
2 2 0 0 2
END YODA_HISTO1D_V3
"""

ESTIMATE_V3 = """\
BEGIN YODA_ESTIMATE1D_V3 /REF/TEST/e1
Path: /REF/TEST/e1
Type: Estimate1D
---
Edges(A1): [0, 1, 2, 4]
ErrorLabels: ["stat", "syst"]
# value errDn(1) errUp(1) errDn(2) errUp(2)
nan nan nan nan nan
1.0 -0.3 0.3 -0.4 0.4
2.0 -0.1 0.1 0.0 0.0
3.0 -0.6 0.6 -0.8 0.8
nan nan nan nan nan
END YODA_ESTIMATE1D_V3
"""


def test_scatter2d_edges_values_and_symmetrised_errors():
    h = read_yoda(SCATTER)["/TEST/d01-x01-y01"]
    np.testing.assert_allclose(h.lower, [0.0, 1.0, 3.0])
    np.testing.assert_allclose(h.upper, [1.0, 2.0, 5.0])
    np.testing.assert_allclose(h.values, [10.0, 20.0, 5.0])
    np.testing.assert_allclose(h.errors, [2.0, 2.0, 0.5])  # (1 + 3) / 2 for the first bin
    assert h.has_gaps and not h.is_contiguous
    with pytest.raises(HistogramError, match="gaps"):
        _ = h.edges


def test_histo1d_v2_is_density_with_sqrt_sumw2_errors():
    h = read_yoda(HISTO_V2)["/TEST/h1"]
    np.testing.assert_allclose(h.values, [4 / 0.5, 6 / 1.0])
    np.testing.assert_allclose(h.errors, [2 / 0.5, np.sqrt(8) / 1.0])


def test_histo1d_v3_skips_underflow_and_overflow():
    h = read_yoda(HISTO_V3)["/TEST/h3"]
    np.testing.assert_allclose(h.edges, [0.0, 1.0, 3.0])
    np.testing.assert_allclose(h.values, [4.0, 4.0])
    np.testing.assert_allclose(h.errors, [2.0, 2.0])


def test_estimate1d_v3_adds_error_sources_in_quadrature():
    h = read_yoda(ESTIMATE_V3)["/TEST/e1"]
    np.testing.assert_allclose(h.values, [1.0, 2.0, 3.0])
    np.testing.assert_allclose(h.errors, [0.5, 0.1, 1.0])


def test_select_by_path_with_or_without_ref_prefix():
    a = read_yoda(SCATTER, ["/REF/TEST/d01-x01-y01"])
    b = read_yoda(SCATTER, ["/TEST/d01-x01-y01"])
    assert list(a) == list(b) == ["/TEST/d01-x01-y01"]
    with pytest.raises(KeyError, match="/TEST/d99"):
        read_yoda(SCATTER, ["/TEST/d99-x01-y01"])


def test_yoda_write_read_roundtrip_keeps_gaps(tmp_path):
    h = read_yoda(SCATTER)["/TEST/d01-x01-y01"]
    out = write_yoda([h], tmp_path / "out.yoda", ref=True)
    back = read_yoda(out)["/TEST/d01-x01-y01"]
    np.testing.assert_allclose(back.lower, h.lower)
    np.testing.assert_allclose(back.upper, h.upper)
    np.testing.assert_allclose(back.values, h.values)
    np.testing.assert_allclose(back.errors, h.errors)
    assert "BEGIN YODA_SCATTER2D_V2 /REF/TEST/d01-x01-y01" in out.read_text()


def test_aleph_1996_file(lep_dir):
    hists = read_yoda(lep_dir / "ALEPH_1996_S3486095.yoda")
    assert len(hists) == 67
    thrust = hists["/ALEPH_1996_S3486095/d03-x01-y01"]
    assert thrust.n_bins == 21
    assert thrust.lower[0] == pytest.approx(0.0) and thrust.upper[-1] == pytest.approx(0.4)
    nch = hists["/ALEPH_1996_S3486095/d18-x01-y01"]
    assert nch.n_bins == 26
    assert nch.values.sum() == pytest.approx(1.0, abs=0.01)  # fractions of events
    mean = hists["/ALEPH_1996_S3486095/d19-x01-y01"]
    assert mean.values[0] == pytest.approx(20.91) and mean.errors[0] == pytest.approx(0.222, 1e-2)
    # the K+- x_p spectrum has two gaps in its binning (observables.yaml)
    kaons = hists["/ALEPH_1996_S3486095/d26-x01-y01"]
    assert kaons.n_bins == 29 and kaons.has_gaps
    gaps = np.flatnonzero(kaons.lower[1:] > kaons.upper[:-1] + 1e-12)
    assert gaps.size == 2


def test_pdg_multiplicities_91gev_column(lep_dir):
    h = read_yoda(lep_dir / "PDG_HADRON_MULTIPLICITIES.yoda",
                  ["/REF/PDG_HADRON_MULTIPLICITIES/d03-x01-y03"])
    k = h["/PDG_HADRON_MULTIPLICITIES/d03-x01-y03"]
    assert k.n_bins == 1
    assert k.lower[0] <= 91.2 <= k.upper[0]
    assert k.values[0] == pytest.approx(2.228) and k.errors[0] == pytest.approx(0.059)


def test_all_shared_files_parse(lep_dir):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", YodaWarning)  # ALEPH 2001's Scatter3D blocks
        counts = {p.name: len(read_yoda(p)) for p in sorted(lep_dir.glob("*.yoda"))}
    assert counts["DELPHI_1996_S3430090.yoda"] == 104
    assert counts["ALEPH_1991_S2435284.yoda"] == 5


HEPDATA = """\
independent_variables:
- header: {name: '1-T'}
  values:
  - {low: 0.0, high: 0.01}
  - {low: 0.01, high: 0.02}
  - {low: 0.02, high: 0.04}
dependent_variables:
- header: {name: '1/N dN/d(1-T)'}
  values:
  - value: 10.0
    errors:
    - {symerror: 0.3, label: stat}
    - {symerror: 0.4, label: sys}
  - value: 20.0
    errors:
    - {asymerror: {plus: 1.0, minus: -3.0}, label: sys}
  - value: '-'
- header: {name: other}
  values:
  - value: 1.0
    errors:
    - {symerror: 10%}
  - value: 2.0
  - value: 3.0
"""


def test_hepdata_yaml_errors_in_quadrature_and_missing_values(tmp_path):
    path = tmp_path / "table.yaml"
    path.write_text(HEPDATA)
    h = read_hepdata_yaml(path)
    assert h.n_bins == 2  # the '-' bin is dropped
    np.testing.assert_allclose(h.errors, [0.5, 2.0])
    other = read_hepdata_yaml(path, dependent=1, name="x")
    np.testing.assert_allclose(other.errors, [0.1, 0.0, 0.0])
    assert other.name == "x"
    with pytest.raises(HistogramError, match="dependent=2"):
        read_hepdata_yaml(path, dependent=2)


def test_csv_and_json(tmp_path):
    csv_path = tmp_path / "spec.csv"
    csv_path.write_text("lower,upper,value,error\n0,1,5,0.5\n1,2,3,0.3\n")
    h = read_csv(csv_path)
    assert h.name == "spec" and h.n_bins == 2
    json_path = write_json([h], tmp_path / "h.json")
    back = read_json(json_path)["spec"]
    np.testing.assert_allclose(back.values, h.values)
    assert set(read_histograms(csv_path)) == {"spec"}
    bad = tmp_path / "bad.csv"
    bad.write_text("lo,hi,value,error\n0,1,1,1\n")
    with pytest.raises(HistogramError, match="missing"):
        read_csv(bad)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"lower": [0, 1], "upper": [1, 0.5], "values": [1, 1], "errors": [1, 1]}, "bin 1"),
        ({"lower": [0, 1], "upper": [1, 2], "values": [1], "errors": [1, 1]}, "values has 1"),
        ({"lower": [0, 1], "upper": [1, 2], "values": [1, 1], "errors": [1, -1]}, "errors"),
        ({"lower": [1, 0], "upper": [2, 1], "values": [1, 1], "errors": [1, 1]}, "ordered"),
    ],
)
def test_malformed_histograms_are_rejected_with_the_bin(kwargs, message):
    with pytest.raises(HistogramError, match=message):
        Histogram("h", **kwargs)


def test_binning_check_names_the_bin():
    a = Histogram.from_edges("a", [0, 1, 2], [1, 1], [0.1, 0.1])
    b = Histogram.from_edges("b", [0, 1, 2.5], [1, 1], [0.1, 0.1])
    with pytest.raises(HistogramError, match="bin 1"):
        a.check_binning(b)


class _FakeResponse:
    def __init__(self, payload: bytes):
        self.payload = payload

    def read(self) -> bytes:
        return self.payload

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def test_download_hepdata_unpacks_a_yoda_archive(tmp_path, monkeypatch):
    import io
    import tarfile

    from bayestune.hep import io as hio

    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        data = SCATTER.encode()
        info = tarfile.TarInfo("ins1/TEST.yoda")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    urls = []

    def fake_urlopen(url, timeout):
        urls.append(url)
        return _FakeResponse(buf.getvalue())

    monkeypatch.setattr(hio.urllib.request, "urlopen", fake_urlopen)
    files = hio.download_hepdata(428072, tmp_path, rivet="ALEPH_1996_S3486095")
    assert urls == ["https://www.hepdata.net/record/ins428072?format=yoda"
                    "&rivet=ALEPH_1996_S3486095"]
    assert [f.name for f in files] == ["TEST.yoda"]
    assert "/TEST/d01-x01-y01" in read_yoda(files[0])

    monkeypatch.setattr(hio.urllib.request, "urlopen",
                        lambda url, timeout: _FakeResponse(SCATTER.encode()))
    plain = hio.download_hepdata("ins1", tmp_path / "plain", rivet="TEST")
    assert plain[0].name == "TEST.yoda" and read_yoda(plain[0])
