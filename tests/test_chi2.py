"""chi2 objective: hand-computed values, weights, MC-noise variance, errors."""

from __future__ import annotations

import numpy as np
import pytest

from bayestune import Evaluation
from bayestune.hep import Histogram, HistogramError, HistogramObjective, Weights, chi2


def hist(name, values, errors, edges=None):
    edges = np.arange(len(values) + 1.0) if edges is None else edges
    return Histogram.from_edges(name, edges, values, errors)


REF = {
    "a": hist("/X/d01-x01-y01", [10.0, 20.0, 30.0], [1.0, 2.0, 3.0]),
    "n": Histogram.scalar("/X/d02-x01-y01", 5.0, 0.5),
}
SIM = {
    "a": hist("/X/d01-x01-y01", [11.0, 18.0, 30.0], [1.0, 1.0, 0.0]),
    "n": Histogram.scalar("/X/d02-x01-y01", 6.0, 0.0),
}


def test_chi2_by_hand():
    c = chi2(SIM, REF)
    expected_a = 1 / (1 + 1) + 4 / (4 + 1) + 0.0
    expected_n = 1 / 0.25
    assert c.per_observable["a"] == pytest.approx(expected_a, rel=1e-12)
    assert c.per_observable["n"] == pytest.approx(expected_n, rel=1e-12)
    assert c.value == pytest.approx(expected_a + expected_n, rel=1e-12)
    assert c.n_bins == {"a": 3, "n": 1} and c.ndf == 4
    np.testing.assert_allclose(c.pulls["a"], [1 / np.sqrt(2), -2 / np.sqrt(5), 0.0])


def test_model_uncertainty_floor():
    c = chi2(SIM, REF, model_uncertainty=0.1)
    expected = 1 / (1 + 1 + 1.0) + 4 / (4 + 1 + 4.0) + 0.0 + 1 / (0.25 + 0.25)
    assert c.value == pytest.approx(expected, rel=1e-12)


def test_observable_and_range_weights():
    w = Weights({"a": {"weight": 2.0, "ranges": [(1.0, 2.0, 0.0)]}, "n": 0.5})
    c = chi2(SIM, REF, w)
    # bin 1 (centre 1.5) is dropped; bins 0 and 2 carry weight 2
    assert c.per_observable["a"] == pytest.approx(2 * 0.5, rel=1e-12)
    assert c.per_observable["n"] == pytest.approx(0.5 * 4.0, rel=1e-12)
    assert c.n_bins == {"a": 2, "n": 1}


def test_zero_weight_drops_an_observable_entirely():
    c = chi2(SIM, REF, Weights({"n": 0.0}))
    assert "n" not in c.per_observable and c.n_bins == {"a": 3}


def test_professor_weight_text_by_path():
    text = """
    # comment
    /X/d01-x01-y01@0:1.9   1   # only the first two bins
    /X/d02-x01-y01 3
    """
    w = Weights.from_text(text)
    c = chi2(SIM, REF, w)
    assert c.n_bins == {"a": 2, "n": 1}
    assert c.per_observable["a"] == pytest.approx(0.5 + 0.8, rel=1e-12)
    assert c.per_observable["n"] == pytest.approx(12.0, rel=1e-12)
    # unlisted observables get weight 0 in a Professor file
    only_a = Weights.from_text("/X/d01-x01-y01 1")
    assert set(chi2(SIM, REF, only_a).per_observable) == {"a"}


def test_variance_matches_monte_carlo_spread_of_chi2():
    rng = np.random.default_rng(3)
    n_bins = 40
    d = rng.uniform(50, 100, n_bins)
    sd = 0.03 * d
    mu = d * (1 + rng.normal(0, 0.05, n_bins))  # model near but not at the data
    ss = 0.02 * mu
    ref = {"h": hist("h", d, sd)}
    draws, predicted = [], []
    for _ in range(4000):
        s = mu + rng.normal(0, ss)
        c = chi2({"h": hist("h", s, ss)}, ref)
        draws.append(c.value)
        predicted.append(c.variance)
    empirical = np.var(draws)
    assert np.mean(predicted) == pytest.approx(empirical, rel=0.12)


def test_objective_returns_evaluation_with_info():
    calls = []

    def simulate(params):
        calls.append(params)
        return SIM

    obj = HistogramObjective(simulate, REF, n_params=2)
    ev = obj({"p": 1.0})
    assert isinstance(ev, Evaluation)
    assert ev.value == pytest.approx(chi2(SIM, REF).value)
    assert ev.variance is not None and ev.variance > 0
    assert ev.info["ndf"] == 2 and ev.info["n_bins"] == {"a": 3, "n": 1}
    assert set(ev.info["chi2_per_observable"]) == {"a", "n"}
    assert calls == [{"p": 1.0}]


def test_reference_as_a_list_is_keyed_by_path():
    obj = HistogramObjective(lambda p: {"/X/d01-x01-y01": SIM["a"]}, [REF["a"]])
    assert obj({}).value == pytest.approx(chi2(SIM, REF, Weights({"n": 0})).value)


def test_clear_errors():
    with pytest.raises(ValueError, match="model_uncertainty=-0.1"):
        HistogramObjective(lambda p: SIM, REF, model_uncertainty=-0.1)
    with pytest.raises(KeyError, match="nope"):
        HistogramObjective(lambda p: SIM, REF, {"nope": 1.0})
    with pytest.raises(ValueError, match="'a'"):
        Weights({"a": -1.0})
    obj = HistogramObjective(lambda p: {"a": SIM["a"]}, REF)
    with pytest.raises(HistogramError, match="'n'"):
        obj({})
    shifted = {"a": hist("a", [1, 2, 3], [1, 1, 1], edges=[0, 1, 2, 4]), "n": SIM["n"]}
    with pytest.raises(HistogramError, match="bin 2"):
        HistogramObjective(lambda p: shifted, REF)({})


def test_reference_mc_errors_are_checked_and_flattened_like_the_used_bins():
    obj = HistogramObjective(lambda p: SIM, REF, reference_mc_errors={"a": [0.5, 0.0, 3.0]})
    used = obj.used_bins()
    np.testing.assert_array_equal(used.mc_errors, [0.5, 0.0, 3.0, 0.0])  # "n" given none
    assert HistogramObjective(lambda p: SIM, REF).used_bins().mc_errors is None
    with pytest.raises(KeyError, match="'b'"):
        HistogramObjective(lambda p: SIM, REF, reference_mc_errors={"b": [1.0]})
    with pytest.raises(ValueError, match=r"reference_mc_errors\['a'\] has shape \(2,\)"):
        HistogramObjective(lambda p: SIM, REF, reference_mc_errors={"a": [1.0, 1.0]})
    with pytest.raises(ValueError, match=r"finite and >= 0.*-1\.0"):
        HistogramObjective(lambda p: SIM, REF, reference_mc_errors={"a": [-1.0, 1.0, 1.0]})
    with pytest.raises(ValueError, match="exceeds the reference's errors"):
        HistogramObjective(lambda p: SIM, REF, reference_mc_errors={"a": [1.5, 1.0, 1.0]})
