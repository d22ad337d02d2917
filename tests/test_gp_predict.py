"""The NumPy predictions of gp_predict agree with GPy's own."""

import numpy as np
import pytest

from bayestune.gp import GPSurrogate
from bayestune.gp_predict import Predictor
from bayestune.surrogate_config import SurrogateConfig


@pytest.mark.parametrize("kernel", ["matern52", "matern32", "rbf"])
@pytest.mark.parametrize("trend", [None, "quadratic"])
@pytest.mark.parametrize("known_noise", [False, True])
def test_predictions_and_gradients_match_gpy(kernel, trend, known_noise):
    rng = np.random.default_rng([7, len(kernel), trend is None, known_noise])
    X = rng.uniform(size=(30, 3))
    y = np.sin(5.0 * X[:, 0]) + (X[:, 1] - 0.3) ** 2 + 0.05 * rng.normal(size=30)
    variance = np.full(30, 0.05**2) if known_noise else None
    surrogate = GPSurrogate(SurrogateConfig(kernel=kernel, trend=trend)).fit(
        X, y, variance=variance, rng=np.random.default_rng(1))
    model = surrogate.posteriors[0]._model
    Xq = np.vstack([rng.uniform(size=(6, 3)), X[:2]])  # also at training points
    mu, var, dmu, dvar = Predictor(model).predict_with_grad(Xq)
    mu_gpy, var_gpy = model.predict_noiseless(Xq)
    dmu_gpy, dvar_gpy = model.predictive_gradients(Xq)
    scale = max(1.0, float(np.max(np.abs(mu_gpy))))
    np.testing.assert_allclose(mu, mu_gpy[:, 0], rtol=1e-7, atol=1e-9 * scale)
    np.testing.assert_allclose(var, var_gpy[:, 0], rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(dmu, dmu_gpy[:, :, 0], rtol=1e-6, atol=1e-8 * scale)
    np.testing.assert_allclose(dvar, dvar_gpy, rtol=1e-6, atol=1e-8)


def test_gradients_match_finite_differences_of_the_predictions():
    rng = np.random.default_rng(3)
    X = rng.uniform(size=(25, 2))
    y = (X[:, 0] - 0.4) ** 2 + 2.0 * (X[:, 1] - 0.6) ** 2
    surrogate = GPSurrogate(SurrogateConfig(noise="fixed")).fit(
        X, y, rng=np.random.default_rng(4))
    predictor = Predictor(surrogate.posteriors[0]._model)
    x = np.array([[0.3, 0.7]])
    _, _, dmu, dvar = predictor.predict_with_grad(x)
    eps = 1e-6
    for i in range(2):
        step = np.zeros((1, 2))
        step[0, i] = eps
        (mp, vp), (mm, vm) = predictor.predict(x + step), predictor.predict(x - step)
        assert dmu[0, i] == pytest.approx((mp[0] - mm[0]) / (2 * eps), rel=1e-5, abs=1e-7)
        assert dvar[0, i] == pytest.approx((vp[0] - vm[0]) / (2 * eps), rel=1e-4, abs=1e-8)
