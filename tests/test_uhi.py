"""scikit-hep histograms (the UHI protocol) in and out of bayestune: as reference data, as a
simulator's output, in the YODA writer, and HEP-style data/MC plots."""

from __future__ import annotations

import numpy as np
import pytest

import bayestune as bt
from bayestune.hep import Histogram, HistogramError, HistogramObjective, read_yoda, write_yoda
from bayestune.hep.uhi import as_histogram, is_uhi, to_hist
from bayestune.seeding import point_rng

hist = pytest.importorskip("hist")

EDGES = np.linspace(-3.0, 3.0, 13)


def _filled(samples: np.ndarray):
    """A unit-area histogram of ``samples`` with weight storage (errors from the weights)."""
    h = hist.Hist(hist.axis.Variable(EDGES, name="x"), storage=hist.storage.Weight(),
                  name="/TOY/x")
    h.fill(samples, weight=np.full(len(samples), 1.0 / len(samples)))
    return h


def test_a_hist_becomes_a_histogram_with_its_bins_values_and_errors():
    h = hist.Hist.new.Var([0, 1, 2, 4], name="x").Weight()
    h.fill([0.5, 1.5, 1.5, 3.0], weight=[1.0, 2.0, 2.0, 1.0])
    assert is_uhi(h) and not is_uhi(as_histogram(h, "a"))
    out = as_histogram(h, "/T/a")
    np.testing.assert_allclose(out.lower, [0, 1, 2])
    np.testing.assert_allclose(out.upper, [1, 2, 4])
    np.testing.assert_allclose(out.values, [1, 4, 1])
    np.testing.assert_allclose(out.errors, np.sqrt([1, 8, 1]))
    dens = as_histogram(h, "/T/a", density=True)
    np.testing.assert_allclose(dens.values, [1 / 6, 4 / 6, 1 / 12])
    back = to_hist(out)
    np.testing.assert_allclose(back.values(), out.values)
    np.testing.assert_allclose(back.variances(), out.errors**2)
    np.testing.assert_allclose(back.axes[0].edges, [0, 1, 2, 4])


def test_what_is_not_a_1d_numeric_histogram_is_refused_by_name():
    two_d = hist.Hist.new.Reg(2, 0, 1).Reg(2, 0, 1).Weight()
    with pytest.raises(HistogramError, match="'/T/h2'.*2-D"):
        as_histogram(two_d, "/T/h2")
    cats = hist.Hist.new.StrCat(["pi", "K"]).Weight()
    with pytest.raises(HistogramError, match="discrete"):
        as_histogram(cats, "/T/c")
    with pytest.raises(HistogramError, match="list"):
        as_histogram([1, 2, 3], "/T/l")
    gapped = Histogram("/T/g", [0, 2], [1, 3], [1, 1], [1, 1])
    with pytest.raises(HistogramError, match="contiguous"):
        to_hist(gapped)


def test_a_hist_serves_as_reference_and_as_simulation_output_in_a_tune():
    truth = 0.3
    data = _filled(np.random.default_rng(1).normal(truth, 1.0, 20_000))

    def simulate(params):
        rng = point_rng(7, params)
        return {"/TOY/x": _filled(rng.normal(params["mu"], 1.0, 20_000))}

    objective = HistogramObjective(simulate, [data])  # keyed by the hist's name
    space = bt.Space([bt.Real("mu", -1.0, 1.0)])
    result = bt.minimize(objective, space, 14, seed=3)
    assert abs(result.x["mu"] - truth) < 0.15  # bins of 0.5; data and MC errors about 1 %
    assert result.fun < objective({"mu": -0.5}).value


def test_the_yoda_writer_takes_a_hist(tmp_path):
    h = _filled(np.random.default_rng(2).normal(0.0, 1.0, 1000))
    back = read_yoda(write_yoda({"/TOY/x": h}, tmp_path / "h.yoda"))["/TOY/x"]
    np.testing.assert_allclose(back.values, h.values(), rtol=1e-8)
    np.testing.assert_allclose(back.errors, np.sqrt(h.variances()), rtol=1e-8)


def test_hep_style_ratio_plots():
    pytest.importorskip("mplhep")
    import matplotlib

    matplotlib.use("Agg")
    from bayestune.plots import plot_ratios

    data = as_histogram(_filled(np.random.default_rng(1).normal(0, 1, 5000)))
    mc = as_histogram(_filled(np.random.default_rng(2).normal(0.1, 1, 5000)))
    fig = plot_ratios({"x": data}, {"MC": {"x": mc}}, style="hep")
    assert len(fig.axes) == 2
    with pytest.raises(ValueError, match="style='root'"):
        plot_ratios({"x": data}, {"MC": {"x": mc}}, style="root")


def test_a_histogram_read_from_a_root_file_with_uproot(tmp_path):
    uproot = pytest.importorskip("uproot")
    h = hist.Hist.new.Var([0, 1, 2, 4], name="x").Weight()
    h.fill([0.5, 1.5, 1.5, 3.0], weight=[1.0, 2.0, 2.0, 1.0])
    with uproot.recreate(tmp_path / "h.root") as f:
        f["thrust"] = h
    from_root = uproot.open(tmp_path / "h.root")["thrust"]
    out = as_histogram(from_root, "/T/thrust")
    np.testing.assert_allclose(out.values, [1, 4, 1])
    np.testing.assert_allclose(out.errors, np.sqrt([1, 8, 1]))
    np.testing.assert_allclose(out.upper, [1, 2, 4])
