"""The local quadratic fit: exact recovery, calibrated location errors, use in uncertainties."""

from __future__ import annotations

import numpy as np
import pytest

import bayestune as bt
from bayestune.exceptions import BayestuneError
from bayestune.history import Status, Trial
from bayestune.quadratic import fit_quadratic, n_quadratic_terms, quadratic_features
from bayestune.seeding import point_rng

# chi2 = (x - m)^T C^-1 (x - m) + 40: Delta chi2 = 1 errors are sqrt(diag C)
MEAN = np.array([0.3, -0.2])
COV = np.array([[0.0025, 0.0018], [0.0018, 0.0036]])  # sigma 0.05 and 0.06, correlation 0.6
CINV = np.linalg.inv(COV)


def chi2(X: np.ndarray) -> np.ndarray:
    d = np.atleast_2d(X) - MEAN
    return np.einsum("ni,ij,nj->n", d, CINV, d) + 40.0


def trials_at(X: np.ndarray, y: np.ndarray, variance: float | None) -> list[Trial]:
    return [Trial(number=i, params={"a": float(x[0]), "b": float(x[1])}, status=Status.COMPLETE,
                  value=float(v), variance=variance) for i, (x, v) in enumerate(zip(X, y))]


def test_features_and_term_count():
    u = np.array([[2.0, 3.0]])
    np.testing.assert_allclose(quadratic_features(u), [[1, 2, 3, 4, 6, 9]])
    assert [n_quadratic_terms(k) for k in (1, 2, 4, 6)] == [3, 6, 15, 28]


def test_an_exact_quadratic_is_recovered():
    rng = np.random.default_rng(0)
    X = MEAN + 0.2 * rng.normal(size=(20, 2))
    quad = fit_quadratic(trials_at(X, chi2(X), None), ["a", "b"])
    np.testing.assert_allclose(quad.hessian(), 2.0 * CINV, rtol=1e-8)
    Xt = MEAN + 0.1 * rng.normal(size=(5, 2))
    np.testing.assert_allclose(quad.values(Xt), chi2(Xt), rtol=1e-10)
    assert quad.positive_definite
    # no noise, no location uncertainty
    assert np.all(np.abs(quad.location_covariance(MEAN)) < 1e-12)


def test_location_errors_are_calibrated_on_noisy_quadratics():
    """The delta-method covariance of the minimum matches its scatter over 300 noisy
    designs (noise small enough for the linear regime)."""
    rng = np.random.default_rng(1)
    sd = 2.0
    pulls = []
    for _ in range(300):
        X = MEAN + 3.0 * rng.normal(size=(24, 2)) * np.sqrt(np.diag(COV))
        y = chi2(X) + sd * rng.normal(size=len(X))
        quad = fit_quadratic(trials_at(X, y, sd**2), ["a", "b"], n_points=24)
        x_min = quad.centre - np.linalg.solve(quad.hessian(),
                                              quad.gradient_design(quad.centre) @ quad.coef)
        pulls.append((x_min - MEAN) / np.sqrt(np.diag(quad.location_covariance(x_min))))
    pulls = np.array(pulls)
    np.testing.assert_allclose(pulls.mean(axis=0), 0.0, atol=0.2)
    np.testing.assert_allclose(pulls.std(axis=0), 1.0, atol=0.12)


def test_the_fit_chooses_points_by_the_fitted_surface():
    """The default window (ten noise sd above the lowest value) takes the points inside it
    and leaves the farther ring out; the fit through them is exact."""
    root = np.linalg.cholesky(COV)
    angles = np.linspace(0.0, 2.0 * np.pi, 8, endpoint=False)
    ring = np.column_stack([np.cos(angles), np.sin(angles)])
    X = np.vstack([MEAN] + [MEAN + r * ring @ root.T for r in (1.0, 1.5, 2.0, 3.5)])
    y = chi2(X)  # rises 0, 1, 2.25, 4 (inside the window of 10) and 12.25 (outside)
    quad = fit_quadratic(trials_at(X, y, 1.0), ["a", "b"])  # window: 10 sd
    assert quad.n_points == 25
    assert fit_quadratic(trials_at(X, y, 1.0), ["a", "b"], window=20.0).n_points == 33
    np.testing.assert_allclose(quad.hessian(), 2.0 * CINV, rtol=1e-6)


def test_bad_input_is_refused_with_the_value():
    X = MEAN + np.zeros((5, 2))
    with pytest.raises(BayestuneError, match="needs at least 8 completed evaluations, got 5"):
        fit_quadratic(trials_at(X, chi2(X), None), ["a", "b"])
    with pytest.raises(ValueError, match="n_points=3"):
        fit_quadratic(trials_at(X, chi2(X), None), ["a", "b"], n_points=3)


SPACE = bt.Space([bt.Real("a", -0.5, 1.0), bt.Real("b", -1.0, 0.5)])
NOISE_SEED = 0


def noisy_chi2(params: dict) -> bt.Evaluation:
    """The chi2 plus noise of sd 3, seeded by the point (a deterministic simulator)."""
    value = float(chi2(np.array([params["a"], params["b"]]))[0])
    noise = point_rng(NOISE_SEED, {"a": params["a"], "b": params["b"]}).normal()
    return bt.Evaluation(value + 3.0 * noise, variance=9.0)


def refine_noisy_chi2(surrogate: bt.SurrogateConfig) -> tuple[bt.Uncertainty, np.ndarray]:
    """Tune the noisy chi2 with 20 evaluations, refine(delta="noise") for two rounds; the
    uncertainty and the true chi2 rise over its minimum at each refined point."""
    with bt.Tuner(SPACE, noisy_chi2, seed=4, surrogate=surrogate) as tuner:
        tuner.run(20)
        unc = bt.refine(tuner, max_rounds=2, min_rounds=2, delta="noise", n_bootstrap=20)
        refined = [t for t in tuner.history.completed if t.source == "refine"]
    rises = np.array([chi2(np.array([t.params["a"], t.params["b"]]))[0] - 40.0
                      for t in refined])
    return unc, rises


def test_refine_with_a_noise_design():
    """A noisy chi2 (sd 3, so Delta chi2 = 1 is hidden in the noise): refine(delta="noise")
    places its points where the chi2 rises well above its noise, within the reach of the
    evaluations near the lowest or of a confident surrogate, and the errors come out right.
    The tuner's GP has no quadratic trend, so that its evaluations spread around the minimum
    as a chi2 tuner's do (``strategies.CHI2_SURROGATE``); a cloud packed at the minimum
    (what the trend's search leaves) is the next test."""
    unc, rises = refine_noisy_chi2(bt.SurrogateConfig(trend=None))
    assert 2 * 4 <= len(rises) <= 2 * 5  # rounds of (centre +) 2k points
    assert unc.valid and unc.hessian_positive_definite
    # over 15 other seeds (30-44) the errors came out at 0.76-1.38 of the exact ones
    np.testing.assert_allclose([unc.errors["a"], unc.errors["b"]], np.sqrt(np.diag(COV)),
                               rtol=0.45)
    for i, name in enumerate(unc.names):  # the truth within 3 sigma
        assert abs(unc.x[name] - MEAN[i]) < 3.0 * unc.errors[name]
    # the points around each round's centre reach beyond the Delta chi2 = 1 of points at one
    # sigma (over 15 other seeds at least 4 of the 10 refined points rose by more than 2;
    # how many depends on where the noisy surrogate puts its ellipse)
    assert np.sum(rises > 2.0) >= 3, np.round(np.sort(rises), 1)


def test_refine_with_a_noise_design_reaches_beyond_a_cloud_packed_at_the_minimum():
    """With the quadratic trend the tuner finds the minimum of this noisy chi2 after its
    design points and then samples it again and again: every evaluation within ten noise
    sd of the lowest lies within 0.8 sigma of the minimum (true rise at most 0.6), where
    the chi2 rises by less than its noise sd. The surrogate's sd stays small beyond that
    cloud (the trend carries the bowl), so refine(delta="noise") steps out to where the
    chi2 rises above its noise (over 15 other seeds 8 of the 10 refined points rose by
    more than 2 with the default and with the Haswell OpenBLAS kernels; the cloud's reach
    alone left 0-5). The errors came out at 0.91-1.11 of the exact ones on those seeds, and
    at up to 1.33 on this one with Haswell's rounding: the same tolerance as above."""
    unc, rises = refine_noisy_chi2(bt.SurrogateConfig(trend="quadratic"))
    assert np.sum(rises > 2.0) >= 5, np.round(np.sort(rises), 1)
    np.testing.assert_allclose([unc.errors["a"], unc.errors["b"]], np.sqrt(np.diag(COV)),
                               rtol=0.45)


def test_quadratic_uncertainty_of_a_campaign():
    """estimate_uncertainty(surface="quadratic") on noisy evaluations around the minimum:
    Hessian errors near the exact ones, a positive location part, the truth inside; and a
    clear refusal when the points cannot hold a minimum."""
    rng = np.random.default_rng(7)
    root = np.linalg.cholesky(COV)
    with bt.Tuner(SPACE, noisy_chi2, seed=6) as tuner:
        for z in rng.normal(size=(30, 2)) * 3.0:
            point = dict(zip(("a", "b"), MEAN + root @ z))
            tuner.add(point, noisy_chi2(point))
        result = tuner.result()
    unc = bt.estimate_uncertainty(result, surface="quadratic")
    assert isinstance(unc.surface, bt.QuadraticSurface) and unc.valid
    np.testing.assert_allclose(np.sqrt(np.diag(unc.covariance_hessian)),
                               np.sqrt(np.diag(COV)), rtol=0.25)
    assert np.all(np.diag(unc.covariance_surrogate) > 0)
    for i, name in enumerate(unc.names):
        assert abs(unc.x[name] - MEAN[i]) < 3.0 * unc.errors[name]
    with bt.Tuner(SPACE, noisy_chi2, seed=8) as flat:
        for x in np.linspace(-0.4, 0.9, 10):  # all on one line: no curvature across it
            point = {"a": float(x), "b": float(-0.2 + 0.5 * (x - 0.3))}
            flat.add(point, noisy_chi2(point))
        with pytest.raises(bt.BayestuneError, match="has no minimum|do not determine a quadratic"):
            bt.estimate_uncertainty(flat.result(), surface="quadratic")


def test_unknown_surface_is_refused():
    with bt.Tuner(SPACE, noisy_chi2, seed=5) as tuner:
        result = tuner.run(6)
    with pytest.raises(ValueError, match="surface='spline'"):
        bt.estimate_uncertainty(result, surface="spline")
    with pytest.raises(ValueError, match="delta=-1"):
        bt.refine(tuner, delta=-1)


def test_estimate_or_gp_falls_back_to_the_gp_when_no_quadratic_fits():
    from bayestune.uncertainty import estimate_or_gp

    with bt.Tuner(SPACE, noisy_chi2, seed=9) as tuner:
        tuner.run(5)  # a spread-out start, then most points on one line through the minimum:
        for x in np.linspace(-0.4, 0.9, 14):  # the lowest ones cannot hold a 2D quadratic
            point = {"a": float(x), "b": float(-0.2 + 0.5 * (x - 0.3))}
            tuner.add(point, noisy_chi2(point))
        result = tuner.result()
    with pytest.raises(BayestuneError):
        fit_quadratic(result.history.completed, ["a", "b"], n_points=8)
    unc = estimate_or_gp(result, 1.0, None, {"surface": "quadratic", "n_points": 8})
    assert isinstance(unc.surface, bt.surface.GPSurface) and unc.valid
