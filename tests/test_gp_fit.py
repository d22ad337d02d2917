"""The NumPy objective of the hyperparameter fit: GPy's objective, faster, same optimum."""

from __future__ import annotations

import numpy as np
import pytest

from bayestune import GPSurrogate, SurrogateConfig
from bayestune.gp_fit import MarginalLikelihood, fit_map, loo_log_density
from bayestune.gp_kernels import stationary


def model_and_start(config: SurrogateConfig, seed: int, known_noise: bool = False):
    """A GPy model as the surrogate builds it, on 30 noisy points in 4 dimensions, and a
    random start in its free coordinates."""
    rng = np.random.default_rng([seed, 31])
    X = rng.uniform(size=(30, 4))
    y = np.sin(3.0 * X).sum(axis=1) + 0.05 * rng.standard_normal(30)
    z = (y - y.mean()) / y.std()
    surrogate = GPSurrogate(config)
    var = np.full(30, 0.01) if known_noise else None
    surrogate.noise_mode = surrogate._resolve_noise_mode(var)
    model = surrogate._build_model(X, z, None if var is None else var / y.var())
    return model, surrogate._random_theta(model, rng)


CONFIGS = [
    pytest.param(SurrogateConfig(kernel=k, trend=t, noise=n), n == "known", id=f"{k}-{t}-{n}")
    for k in ("matern52", "matern32", "rbf")
    for t in (None, "quadratic")
    for n in ("learned", "known", "fixed")
] + [pytest.param(SurrogateConfig(variance_prior=(2.0, 1.0), lengthscale_prior=False,
                                  noise_prior=None), False, id="variance-prior-only")]


@pytest.mark.parametrize(("config", "known"), CONFIGS)
def test_objective_and_gradient_are_gpys(config, known):
    model, _ = model_and_start(config, 0, known)
    objective = MarginalLikelihood(model, config.kernel)
    rng = np.random.default_rng(7)
    for _ in range(3):
        x = model.optimizer_array + 0.5 * rng.standard_normal(model.optimizer_array.size)
        value, grad = objective(x)
        model.optimizer_array = x
        expected = model.objective_function()
        expected_grad = model._transform_gradients(model.objective_function_gradients())
        assert value == pytest.approx(expected, rel=1e-9, abs=1e-9)
        np.testing.assert_allclose(grad, expected_grad, rtol=1e-7,
                                   atol=1e-9 * np.abs(expected_grad).max())


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_fit_reaches_gpys_own_optimum_from_the_same_start(seed):
    config = SurrogateConfig()
    model, start = model_and_start(config, seed)
    reference = model.copy()
    reference.optimizer_array = start
    reference.optimize(optimizer="lbfgsb", max_iters=200)
    value = fit_map(model, [start], config.kernel)
    # a smooth, well-posed fit: both optimisers end at the same optimum, not just near it
    assert value == pytest.approx(reference.objective_function(), abs=1e-4)
    assert value == pytest.approx(model.objective_function(), abs=1e-9)
    np.testing.assert_allclose(stationary(model.kern).lengthscale,
                               stationary(reference.kern).lengthscale, rtol=1e-2)


def test_every_start_failing_leaves_the_model_and_reports_inf():
    config = SurrogateConfig(noise="fixed")
    model, _ = model_and_start(config, 0)
    before = model.param_array.copy()
    nan_start = np.full(model.optimizer_array.size, np.nan)
    assert fit_map(model, [nan_start], config.kernel) == np.inf
    np.testing.assert_array_equal(model.param_array, before)


def test_an_unknown_kernel_is_named():
    model, _ = model_and_start(SurrogateConfig(), 0)
    with pytest.raises(ValueError, match="kernel must be .*got 'exp'"):
        MarginalLikelihood(model, "exp")


def test_the_leave_one_out_density_is_the_brute_force_one():
    import GPy

    rng = np.random.default_rng([5, 25])
    X = rng.uniform(size=(25, 3))
    y = np.sin(4.0 * X).sum(axis=1)
    model = GPSurrogate(SurrogateConfig()).fit(X, y, rng=rng).posteriors[0]._model
    z = np.asarray(model.Y)[:, 0]
    noise = float(model.Gaussian_noise.variance[0])
    brute = 0.0
    for i in range(25):
        keep = np.arange(25) != i
        held_out = GPy.models.GPRegression(X[keep], z[keep, None], model.kern.copy(),
                                           noise_var=noise)
        mu, var = held_out.predict(X[i:i + 1])
        brute += -0.5 * np.log(2 * np.pi * var[0, 0]) - 0.5 * (z[i] - mu[0, 0]) ** 2 / var[0, 0]
    assert loo_log_density(model) == pytest.approx(brute, abs=1e-3)


def test_prior_selection_keeps_the_fit_that_predicts_held_out_points_better():
    rng = np.random.default_rng([6, 40])
    X = rng.uniform(size=(40, 3))
    y = np.sin(4.0 * X).sum(axis=1)
    fits = {}
    for name, config in (("map", SurrogateConfig()),
                         ("ml", SurrogateConfig(lengthscale_prior=False, noise_prior=None)),
                         ("loo", SurrogateConfig(prior_selection="loo"))):
        model = GPSurrogate(config).fit(X, y, rng=np.random.default_rng(0)).posteriors[0]._model
        fits[name] = loo_log_density(model)
    assert fits["loo"] == pytest.approx(max(fits["map"], fits["ml"]), abs=0.5)
