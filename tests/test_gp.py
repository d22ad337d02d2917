"""GP surrogate: kernel properties, interpolation, noise models, warping, robustness."""

from __future__ import annotations

import GPy
import numpy as np
import pytest

from bayestune import GPSurrogate, SurrogateConfig
from bayestune.exceptions import BayestuneError
from bayestune.gp import LogWarp
from bayestune.gp_kernels import stationary


def f(X):
    return np.sin(3 * X[:, 0]) + 0.5 * X[:, 1] ** 2


@pytest.mark.parametrize("kernel", ["matern52", "matern32", "rbf"])
def test_kernel_matrix_is_symmetric_psd(kernel, rng):
    X = rng.uniform(0, 1, size=(60, 3))
    gp = GPSurrogate(SurrogateConfig(kernel=kernel)).fit(X, f(X), rng=rng)
    K = gp.posteriors[0]._model.kern.K(X)
    np.testing.assert_allclose(K, K.T, atol=1e-14)
    assert np.linalg.eigvalsh(K).min() > -1e-8 * np.abs(K).max()
    # the posterior covariance at new points is PSD as well
    _, cov = gp.posteriors[0].joint(rng.uniform(0, 1, size=(30, 3)))
    np.testing.assert_allclose(cov, cov.T, atol=1e-12)
    assert np.linalg.eigvalsh(cov).min() > -1e-8


def test_kernel_classes_are_the_gpy_ones():
    gp = GPSurrogate(SurrogateConfig(kernel="matern32"))
    X = np.random.default_rng(0).uniform(size=(8, 2))
    gp.fit(X, f(X), rng=np.random.default_rng(0))
    kern = stationary(gp.posteriors[0]._model.kern)  # with or without a trend
    assert isinstance(kern, GPy.kern.Matern32)
    assert kern.ARD


def test_interpolates_a_smooth_function(rng):
    X = rng.uniform(0, 1, size=(40, 2))
    gp = GPSurrogate().fit(X, f(X), rng=rng)
    Xt = rng.uniform(0.1, 0.9, size=(100, 2))
    mean, std = gp.predict(Xt)
    err = np.abs(mean - f(Xt))
    assert np.max(err) < 0.05
    # the error is covered by the predictive standard deviation most of the time
    assert np.mean(err < 3 * std + 1e-3) > 0.9


def test_ard_learns_irrelevant_dimension(rng):
    X = rng.uniform(0, 1, size=(50, 3))
    y = np.sin(4 * X[:, 0])  # depends on column 0 only
    gp = GPSurrogate().fit(X, y, rng=rng)
    ls = gp.lengthscales
    assert ls[0] < 1.0
    assert ls[1] > 3 * ls[0] and ls[2] > 3 * ls[0]


def test_known_noise_reaches_the_gp_per_point(rng):
    X = rng.uniform(0, 1, size=(30, 2))
    var = rng.uniform(0.01, 0.2, size=30)
    y = f(X) + rng.normal(0, np.sqrt(var))
    gp = GPSurrogate(SurrogateConfig(warping=None)).fit(X, y, variance=var, rng=rng)
    assert gp.noise_mode == "known"
    post = gp.posteriors[0]
    # model-space noise is the reported variance over the squared output scale
    np.testing.assert_allclose(post.noise_train * gp._scale**2, var, rtol=1e-10)
    np.testing.assert_allclose(post._model.likelihood.variance[:, 0], post.noise_train)


def test_known_noise_with_log_warping_uses_delta_method(rng):
    X = rng.uniform(0, 1, size=(20, 2))
    y = 10 + 5 * f(X) ** 2
    var = np.full(20, 0.04)
    gp = GPSurrogate(SurrogateConfig(warping="log")).fit(X, y, variance=var, rng=rng)
    warp = LogWarp().fit(y)
    expected = var * (warp.derivative(y) / gp._scale) ** 2
    np.testing.assert_allclose(gp.posteriors[0].noise_train, expected, rtol=1e-10)


def test_noisy_posterior_mean_smooths_the_noise(rng):
    X = rng.uniform(0, 1, size=(80, 1))
    truth = np.sin(5 * X[:, 0])
    y = truth + rng.normal(0, 0.3, size=80)
    for variance in (None, np.full(80, 0.09)):
        gp = GPSurrogate().fit(X, y, variance=variance, rng=rng)
        mean, _ = gp.predict(X)
        assert np.sqrt(np.mean((mean - truth) ** 2)) < 0.6 * np.sqrt(np.mean((y - truth) ** 2))
    assert gp.noise_mode == "known"


def test_learned_noise_level(rng):
    X = rng.uniform(0, 1, size=(100, 1))
    y = np.sin(5 * X[:, 0]) + rng.normal(0, 0.2, size=100)
    gp = GPSurrogate().fit(X, y, rng=rng)
    assert gp.noise_mode == "learned"
    noise_sd = np.sqrt(gp.hyperparameters["noise_variance"]) * gp._scale
    assert 0.14 < noise_sd < 0.28


def test_auto_warping_picks_log_for_heavy_tails_and_identity_for_gaussian_data(rng):
    X = rng.uniform(0, 1, size=(40, 2))
    auto = SurrogateConfig(warping="auto")
    heavy = GPSurrogate(auto).fit(X, np.exp(6 * f(X)), rng=rng)
    plain = GPSurrogate(auto).fit(X, f(X), rng=rng)
    assert heavy.warping == "log" and plain.warping is None


def test_log_warping_round_trip():
    y = np.array([3.0, 5.0, 100.0, 1e4, 7.0])
    w = LogWarp().fit(y)
    np.testing.assert_allclose(w.inverse(w.forward(y)), y, rtol=1e-12)
    assert np.all(np.isfinite(w.forward(np.array([-1e6]))))


def test_warped_surrogate_predicts_in_user_units(rng):
    X = rng.uniform(0, 1, size=(40, 2))
    y = np.exp(4 * f(X))  # heavy-tailed
    gp = GPSurrogate(SurrogateConfig(warping="log")).fit(X, y, rng=rng)
    mean, std = gp.predict(X[:5])
    np.testing.assert_allclose(mean, y[:5], rtol=0.05)
    assert np.all(std >= 0)


def test_constant_outputs_do_not_break_the_fit(rng):
    X = rng.uniform(0, 1, size=(10, 2))
    gp = GPSurrogate().fit(X, np.full(10, 4.2), rng=rng)
    mean, std = gp.predict(rng.uniform(0, 1, size=(5, 2)))
    np.testing.assert_allclose(mean, 4.2, atol=1e-6)
    assert np.all(np.isfinite(std))


def test_duplicate_points_are_handled(rng):
    X = np.repeat(rng.uniform(0, 1, size=(6, 2)), 3, axis=0)
    y = f(X) + rng.normal(0, 1e-3, size=len(X))
    for config in (SurrogateConfig(), SurrogateConfig(noise="fixed")):
        gp = GPSurrogate(config).fit(X, y, rng=rng)
        mean, std = gp.predict(X)
        assert np.all(np.isfinite(mean)) and np.all(np.isfinite(std))
    gp = GPSurrogate().fit(X, y, variance=np.zeros(len(X)), rng=rng)  # zero known noise
    assert np.all(np.isfinite(gp.predict(X)[0]))


def test_fully_bayesian_gives_several_posteriors(rng):
    X = rng.uniform(0, 1, size=(15, 2))
    config = SurrogateConfig(fully_bayesian=True, n_samples=6, mcmc_steps=60)
    gp = GPSurrogate(config).fit(X, f(X), rng=rng)
    assert len(gp.posteriors) == 6
    ls = np.array([stationary(p._model.kern).lengthscale.values for p in gp.posteriors])
    assert np.ptp(ls, axis=0).max() > 0  # genuinely different samples
    lo, hi = config.lengthscale_bounds
    assert np.all((ls >= lo) & (ls <= hi))
    mean, std = gp.predict(X)
    np.testing.assert_allclose(mean, f(X), atol=0.1)


def test_fantasize_collapses_variance_at_the_new_point(rng):
    X = rng.uniform(0, 1, size=(12, 2))
    gp = GPSurrogate().fit(X, f(X), rng=rng)
    post = gp.posteriors[0]
    x_new = np.array([[0.5, 0.5]])
    mu0, var0 = post.predict(x_new)
    fant = post.fantasize(x_new)
    mu1, var1 = fant.predict(x_new)
    np.testing.assert_allclose(mu1, mu0, atol=1e-3)
    assert var1[0] < 0.1 * var0[0]
    assert post.X_train.shape[0] == 12  # unchanged


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [({"kernel": "cosine"}, r"got kernel='cosine'"), ({"warping": "sqrt"}, r"got warping='sqrt'"),
     ({"noise": "some"}, r"got noise='some'"), ({"n_restarts": -1}, r"got -1"),
     ({"lengthscale_bounds": (1.0, 0.5)}, r"got lengthscale_bounds=\(1.0, 0.5\)"),
     ({"max_fit_points": 5}, r"got max_fit_points=5"),
     ({"max_fit_points": 50.0}, r"got max_fit_points=50.0")],
)
def test_config_validation(kwargs, match):
    with pytest.raises(BayestuneError, match=match):
        SurrogateConfig(**kwargs)


def test_fit_input_validation(rng):
    with pytest.raises(BayestuneError, match="same number of rows"):
        GPSurrogate().fit(np.zeros((3, 2)), np.zeros(4), rng=rng)
    with pytest.raises(BayestuneError, match="finite"):
        GPSurrogate().fit(np.zeros((2, 2)), np.array([1.0, np.nan]), rng=rng)
    with pytest.raises(BayestuneError, match="not been fitted"):
        GPSurrogate().predict(np.zeros((1, 2)))
    with pytest.raises(BayestuneError, match="noise='known'"):
        GPSurrogate(SurrogateConfig(noise="known")).fit(np.eye(2), np.ones(2), rng=rng)


def test_quadratic_trend_gradients_match_finite_differences():
    from bayestune.gp_kernels import quadratic_trend_kernel

    rng = np.random.default_rng(0)
    kern = quadratic_trend_kernel(3)
    kern.constant[:] = 0.7
    kern.linear[:] = 1.3
    kern.quadratic[:] = 2.0
    X, X2 = rng.uniform(size=(4, 3)), rng.uniform(size=(5, 3))
    eps = 1e-6
    for other in (X2, None):
        K = (lambda A, other=other: kern.K(A, other)) if other is not None else kern.K
        dL = rng.normal(size=(4, 4 if other is None else 5))
        grad = kern.gradients_X(dL, X, other)
        for i in range(4):
            for j in range(3):
                Xp, Xm = X.copy(), X.copy()
                Xp[i, j] += eps
                Xm[i, j] -= eps
                fd = np.sum(dL * (K(Xp) - K(Xm))) / (2 * eps)
                assert grad[i, j] == pytest.approx(fd, rel=1e-5, abs=1e-8)
    dl_diag = rng.normal(size=4)
    gdiag = kern.gradients_X_diag(dl_diag, X)
    Xp, Xm = X.copy(), X.copy()
    Xp[1, 2] += eps
    Xm[1, 2] -= eps
    fd = np.sum(dl_diag * (kern.Kdiag(Xp) - kern.Kdiag(Xm))) / (2 * eps)
    assert gdiag[1, 2] == pytest.approx(fd, rel=1e-5)


def test_quadratic_trend_surrogate_describes_a_rotated_bowl():
    rng = np.random.default_rng(1)
    X = rng.uniform(size=(25, 2))
    d = X - np.array([0.4, 0.6])
    hess = np.array([[50.0, 45.0], [45.0, 50.0]])  # a narrow diagonal valley
    y = 0.5 * np.einsum("ni,ij,nj->n", d, hess, d)
    plain = GPSurrogate(SurrogateConfig(noise="fixed", trend=None)).fit(
        X, y, rng=np.random.default_rng(2))
    trend = GPSurrogate(SurrogateConfig(noise="fixed", trend="quadratic")).fit(
        X, y, rng=np.random.default_rng(2))
    Xt = rng.uniform(size=(200, 2))
    dt = Xt - np.array([0.4, 0.6])
    yt = 0.5 * np.einsum("ni,ij,nj->n", dt, hess, dt)
    err_plain = np.sqrt(np.mean((plain.predict(Xt)[0] - yt) ** 2))
    err_trend = np.sqrt(np.mean((trend.predict(Xt)[0] - yt) ** 2))
    assert err_trend < 0.5 * err_plain, (err_trend, err_plain)
    assert trend.lengthscales.shape == (2,)
    assert trend.hyperparameters["trend_quadratic_variance"] > 0
    with pytest.raises(BayestuneError, match="trend="):
        SurrogateConfig(trend="cubic")


def test_many_observations_fit_hyperparameters_to_a_subset_and_condition_on_all(monkeypatch):
    """Beyond ``max_fit_points`` the type-II ML fit sees a subset (the best half of it and a
    random rest); the posterior conditions on every observation, and predicts about as
    well as the fit to all of them."""
    rng = np.random.default_rng(11)
    X = rng.uniform(0, 1, size=(240, 3))
    y = f(X) + 0.3 * X[:, 2]
    sizes = []
    fit_ml = GPSurrogate._fit_ml

    def recording(self, model, rng):
        sizes.append(model.X.shape[0])
        return fit_ml(self, model, rng)

    monkeypatch.setattr(GPSurrogate, "_fit_ml", recording)
    sub = GPSurrogate(SurrogateConfig(max_fit_points=60)).fit(X, y, rng=np.random.default_rng(1))
    assert sizes == [60]
    assert sub.posteriors[0].X_train.shape[0] == 240
    full = GPSurrogate(SurrogateConfig(max_fit_points=None)).fit(
        X, y, rng=np.random.default_rng(1))
    assert sizes == [60, 240]
    test = np.random.default_rng(2).uniform(0, 1, size=(200, 3))
    truth = f(test) + 0.3 * test[:, 2]
    rms_sub = np.sqrt(np.mean((sub.predict(test)[0] - truth) ** 2))
    rms_full = np.sqrt(np.mean((full.predict(test)[0] - truth) ** 2))
    assert rms_sub < 0.02 * np.std(truth) and rms_full < 0.02 * np.std(truth)
    # the subset holds the 30 lowest observations
    order = np.argsort(y)
    picked = GPSurrogate(SurrogateConfig(max_fit_points=60))._fit_subset(
        y, np.random.default_rng(3))
    assert set(order[:30]) <= set(picked) and len(set(picked)) == 60


def test_the_lengthscale_prior_keeps_unused_dimensions_off_the_bound():
    """With eight points of a function of x0 alone, maximum likelihood sends the other two
    length scales to the upper bound (20); the prior -0.1 (l^2 + l^-2) holds them near its
    peak at 1, and the used dimension stays the shortest."""
    rng = np.random.default_rng(4)
    X = rng.uniform(size=(8, 3))
    y = np.sin(3 * X[:, 0])
    ml = GPSurrogate(SurrogateConfig(lengthscale_prior=False)).fit(
        X, y, rng=np.random.default_rng(0)).lengthscales
    map_ = GPSurrogate(SurrogateConfig()).fit(X, y, rng=np.random.default_rng(0)).lengthscales
    assert ml[1] > 15 and ml[2] > 15
    assert np.all(map_[1:] < 5) and map_[0] < 0.5 * map_[1:].min()


def test_the_noise_prior_is_a_density_of_the_variance_itself():
    """GPy adds the log Jacobian of the positive transform to every prior; the noise prior
    takes it out again, so what the fit maximises is the Gamma density of the variance."""
    from paramz.transformations import Logexp
    from scipy.stats import gamma

    from bayestune.gp_kernels import make_noise_prior

    s2 = np.array([1e-6, 1e-3, 0.05, 0.7, 3.0])
    prior = make_noise_prior(1.1, 30.0)
    seen = prior.lnpdf(s2) + Logexp().log_jacobian(s2)
    expected = gamma(1.1, scale=1 / 30.0).logpdf(s2)
    np.testing.assert_allclose(seen - seen[2], expected - expected[2], rtol=1e-9, atol=1e-9)
    # its gradient is the derivative of its log density (central differences)
    h = 1e-7 * s2
    numeric = (prior.lnpdf(s2 + h) - prior.lnpdf(s2 - h)) / (2 * h)
    np.testing.assert_allclose(prior.lnpdf_grad(s2), numeric, rtol=1e-5)


@pytest.mark.parametrize("name", ["noise_prior", "variance_prior"])
@pytest.mark.parametrize("value", [(0.5, 3.0), (2.0, 0.0), (2.0,), "wide", (np.nan, 1.0)])
def test_a_bad_gamma_prior_names_the_option_and_value(name, value):
    with pytest.raises(BayestuneError, match=name):
        SurrogateConfig(**{name: value})


@pytest.mark.parametrize("value", [0.0, -1.0, "wide", True, float("inf")])
def test_a_bad_lengthscale_prior_scale_names_the_option_and_value(value):
    with pytest.raises(BayestuneError, match=f"lengthscale_prior_scale.*{value!r}"):
        SurrogateConfig(lengthscale_prior_scale=value)


def test_the_dimension_scaled_lengthscale_prior_peaks_at_the_rms_distance_of_the_cube():
    X = np.random.default_rng(3).uniform(size=(12, 24))
    config = SurrogateConfig(lengthscale_prior_scale="dimension")
    gp = GPSurrogate(config).fit(X, f(X), rng=np.random.default_rng(0))
    prior = next(p for p, _ in gp.posteriors[0]._model.priors.items()
                 if "l/" in str(p))
    grid = np.linspace(0.5, 4.0, 3501)
    assert grid[np.argmax(prior.lnpdf(grid))] == pytest.approx(np.sqrt(24 / 6), abs=2e-3)
    eps = 1e-6
    numeric = (prior.lnpdf(1.7 + eps) - prior.lnpdf(1.7 - eps)) / (2 * eps)
    assert prior.lnpdf_grad(1.7) == pytest.approx(numeric, rel=1e-6)


def test_a_bad_prior_selection_names_the_option_and_value():
    with pytest.raises(BayestuneError, match="prior_selection.*'aic'"):
        SurrogateConfig(prior_selection="aic")
