"""Fitting the surrogate's GPy hyperparameters: maximum a posteriori with the objective in
NumPy (:func:`fit_map`), or samples from their posterior (:func:`sample_hyperparameters`).

GPy evaluates the marginal likelihood through its parameter framework (paramz), whose
bookkeeping costs milliseconds per evaluation whatever the size of the data: fitting a
100-point surrogate spent most of its time there. :class:`MarginalLikelihood` computes the
same objective as GPy's ``model.objective_function()`` (the negative log marginal likelihood
minus the log priors, with GPy's log Jacobians) and its gradient directly, in the same free
coordinates as ``model.optimizer_array``. :func:`fit_map` runs the same L-BFGS-B as
``model.optimize(optimizer="lbfgsb")`` from each start, so a fit ends where GPy's own would,
up to rounding, and writes the optimum back into the GPy model, which makes every prediction.

Supported models are the ones :class:`bayestune.gp.GPSurrogate` builds: a Matern 5/2,
Matern 3/2 or RBF ARD kernel, optionally plus the quadratic trend of
:func:`bayestune.gp_kernels.quadratic_trend_kernel`, with a Gaussian likelihood (learned or fixed
variance) or fixed per-point (heteroscedastic) variances.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
from scipy.linalg import cho_solve, lapack
from scipy.optimize import fmin_l_bfgs_b

from .exceptions import NumericalWarning
from .gp_kernels import log_jacobian, stationary, stationary_profile
from .surrogate_config import _KERNELS

__all__ = ["MarginalLikelihood", "fit_map", "loo_log_density", "sample_hyperparameters"]

_LOG_2PI = math.log(2.0 * math.pi)
_JITTER = 1e-8  # GPy's exact inference adds it to every noise variance
_MAX_ITERS = 200
_ALLOWED_FAILURES = 10  # consecutive failed evaluations before a start is given up (as paramz)
#: log-normal prior on length scales used by the fully Bayesian sampler (unit-cube units)
LENGTHSCALE_PRIOR_MEDIAN, LENGTHSCALE_PRIOR_WIDTH = 0.5, 1.5


class MarginalLikelihood:
    """``f(x) = -log p(z | theta(x)) - log p(theta(x))`` and its gradient in GPy's free
    coordinates ``x`` of ``model`` (see the module docstring).

    Parameters
    ----------
    model : GPy.models.GPRegression or GPy.models.GPHeteroscedasticRegression
        The surrogate's model, with its constraints, fixes and priors set.
    kernel : {"matern52", "matern32", "rbf"}
        The class of its stationary kernel.
    """

    def __init__(self, model: object, kernel: str) -> None:
        if kernel not in _KERNELS:
            raise ValueError(f"kernel must be one of {list(_KERNELS)}, got {kernel!r}")
        self.kernel = kernel
        m = model  # GPy's attributes are untyped
        self._X = np.asarray(m.X, dtype=np.float64)  # type: ignore[attr-defined]
        self._z = np.asarray(m.Y, dtype=np.float64)[:, 0]  # type: ignore[attr-defined]
        self._p0 = np.array(m.param_array, dtype=np.float64)  # type: ignore[attr-defined]
        fixes = m._fixes_ if m._has_fixes() else None  # type: ignore[attr-defined]
        self._free = np.ones(self._p0.size, bool) if fixes is None else np.asarray(fixes, bool)
        self._transforms = [(c, np.asarray(i, dtype=int))
                            for c, i in m.constraints.items()  # type: ignore[attr-defined]
                            if c != "fixed" and len(i)]
        self._priors = [(p, np.asarray(i, dtype=int))
                        for p, i in m.priors.items()]  # type: ignore[attr-defined]
        priored = (np.concatenate([i for _, i in self._priors]) if self._priors
                   else np.zeros(0, int))
        self._jacobians = [(c, np.intersect1d(i, priored)) for c, i in self._transforms]
        self._jacobians = [(c, i) for c, i in self._jacobians if i.size]
        index = m._raveled_index_for  # type: ignore[attr-defined]
        kern = stationary(m.kern)  # type: ignore[attr-defined]
        self._ls = index(kern.lengthscale)  # type: ignore[attr-defined]
        self._sf2 = index(kern.variance)  # type: ignore[attr-defined]
        parts = getattr(m.kern, "parts", None)  # type: ignore[attr-defined]
        trend = parts[1] if parts else None
        self._trend = None if trend is None else (
            index(trend.constant), index(trend.linear), index(trend.quadratic))
        if trend is not None:  # the trend's inner products do not depend on the parameters
            centred = self._X - 0.5
            self._trend_dot = centred @ centred.T
        self._noise = index(m.likelihood.variance)  # type: ignore[attr-defined]
        self._fail_count = 0

    # ------------------------------------------------------------------ coordinates
    def theta(self, x: np.ndarray) -> np.ndarray:
        """All of the model's parameters (``param_array``) at free coordinates ``x``."""
        p = self._p0.copy()
        p[self._free] = x
        for c, idx in self._transforms:
            sel = idx[self._free[idx]]
            p[sel] = c.f(p[sel])
        return p

    def __call__(self, x: np.ndarray) -> tuple[float, np.ndarray]:
        """The objective and its gradient at free coordinates ``x``; ``inf`` (as GPy) where
        the kernel matrix is not positive definite even with jitter."""
        p = self.theta(np.asarray(x, dtype=float))
        try:
            value, grad = self._objective(p)
        except (np.linalg.LinAlgError, ValueError, ZeroDivisionError):  # as paramz
            self._fail_count += 1
            if self._fail_count > _ALLOWED_FAILURES:
                raise
            return np.inf, np.zeros(int(self._free.sum()))
        self._fail_count = 0
        for c, idx in self._transforms:
            grad[idx] = c.gradfactor(p[idx], grad[idx])
        return value, grad[self._free]

    # ------------------------------------------------------------------ the objective
    def _objective(self, p: np.ndarray) -> tuple[float, np.ndarray]:
        from GPy.util.linalg import symmetrify

        z = self._z
        n = z.size
        K, kernel_grad = self._kernel(p)
        noise = p[self._noise]
        Ky = K.copy()
        Ky[np.diag_indices(n)] += noise + _JITTER
        L = _jitchol(Ky)
        alpha = cho_solve((L, True), z)
        log_det = 2.0 * float(np.sum(np.log(np.diag(L))))
        log_lik = 0.5 * (-n * _LOG_2PI - log_det - float(z @ alpha))
        Ki, info = lapack.dpotri(L, lower=1)
        if info != 0:
            raise np.linalg.LinAlgError("inverse of the kernel matrix failed")
        symmetrify(Ki)  # dpotri fills the lower triangle
        W = np.outer(alpha, alpha) - Ki  # dlog_lik/dK = W / 2
        grad = np.zeros(p.size)
        kernel_grad(W, grad)
        dW = 0.5 * np.diag(W)
        grad[self._noise] = dW.sum() if self._noise.size == 1 else dW
        log_prior = 0.0
        for prior, idx in self._priors:
            log_prior += float(np.sum(prior.lnpdf(p[idx])))
            grad[idx] += prior.lnpdf_grad(p[idx])
        for c, idx in self._jacobians:
            log_prior += float(np.sum(c.log_jacobian(p[idx])))
            grad[idx] += c.log_jacobian_grad(p[idx])
        return -(log_lik + log_prior), -grad

    def _kernel(self, p: np.ndarray):
        """The kernel matrix at parameters ``p`` and a function adding ``0.5 tr(W dK/dt)``
        for every kernel parameter ``t`` to a gradient array."""
        X = self._X
        ls = p[self._ls]
        sf2 = float(p[self._sf2][0])
        Xs = X / ls
        sq = np.sum(Xs**2, axis=1)
        r2 = -2.0 * (Xs @ Xs.T) + (sq[:, None] + sq[None, :])
        np.fill_diagonal(r2, 0.0)
        r = np.sqrt(np.clip(r2, 0.0, np.inf))
        K, G = stationary_profile(self.kernel, r, sf2)  # dK/dl_i = G D_i^2 / l_i^3
        if self._trend is not None:
            c0, c1, c2 = (float(p[i][0]) for i in self._trend)
            dot = self._trend_dot
            K_total = K + c0 + c1 * dot + c2 * dot**2
        else:
            K_total = K

        def add_gradient(W: np.ndarray, grad: np.ndarray) -> None:
            grad[self._sf2] = 0.5 * float(np.sum(W * K)) / sf2
            M = W * G
            rows = M.sum(axis=1)
            # sum_jk M_jk (X_ji - X_ki)^2 for each dimension i (M is symmetric)
            spread = 2.0 * (rows @ X**2) - 2.0 * np.sum(X * (M @ X), axis=0)
            grad[self._ls] = 0.5 * spread / ls**3
            if self._trend is not None:
                i0, i1, i2 = self._trend
                Wd = W * self._trend_dot
                grad[i0] = 0.5 * float(np.sum(W))
                grad[i1] = 0.5 * float(np.sum(Wd))
                grad[i2] = 0.5 * float(np.sum(Wd * self._trend_dot))

        return K_total, add_gradient


def _jitchol(A: np.ndarray) -> np.ndarray:
    """Cholesky factor of ``A``; adds GPy's growing jitter where it is not positive
    definite (the same sequence as ``GPy.util.linalg.jitchol``)."""
    from GPy.util.linalg import jitchol

    L, info = lapack.dpotrf(A, lower=1, clean=1)
    if info == 0:
        return L
    return np.asarray(jitchol(A))


def fit_map(model: object, starts: list[np.ndarray], kernel: str) -> float:
    """Fit ``model``'s hyperparameters from each start in free coordinates; keep the best.

    Each start runs L-BFGS-B as ``model.optimize(optimizer="lbfgsb", max_iters=200)`` would.
    A start whose kernel matrix breaks down (more than ten evaluations in a row) is skipped
    with a :class:`NumericalWarning`.
    The best point is written into ``model``; returns its objective value (``inf`` when
    every start failed, and the model is then left as it was).
    """
    objective = MarginalLikelihood(model, kernel)
    best_x, best_value = None, np.inf
    with warnings.catch_warnings():
        # overflowing transforms and ill-conditioned steps give RuntimeWarnings; the
        # objective reports them as inf and the line search steps back
        warnings.filterwarnings("ignore", category=RuntimeWarning)
        for start in starts:
            try:
                x, _, _ = fmin_l_bfgs_b(objective, np.asarray(start, dtype=float),
                                        maxfun=_MAX_ITERS, maxiter=_MAX_ITERS)
                value = objective(x)[0]
            except (np.linalg.LinAlgError, ValueError, ZeroDivisionError):
                warnings.warn(
                    "a GP hyperparameter fit hit a non-positive-definite kernel matrix; "
                    "that start is skipped",
                    NumericalWarning,
                    stacklevel=2,
                )
                continue
            if np.isfinite(value) and value < best_value:
                best_x, best_value = x, value
    if best_x is not None:
        model.optimizer_array = best_x  # type: ignore[attr-defined]
    return float(best_value)


def loo_log_density(model: object) -> float:
    """Leave-one-out predictive log density ``sum_i log p(z_i | z_-i)`` of a fitted GPy
    regression model's outputs, in closed form from ``Ky^-1`` (Rasmussen & Williams 5.4.2):
    ``mu_-i = z_i - a_i / Kinv_ii`` and ``var_-i = 1 / Kinv_ii`` with ``a = Ky^-1 z``."""
    post = model.posterior  # type: ignore[attr-defined]
    Kinv = np.asarray(post.woodbury_inv, dtype=float)
    if Kinv.ndim == 3:
        Kinv = Kinv[:, :, 0]
    alpha = np.asarray(post.woodbury_vector, dtype=float)[:, 0]
    d = np.diag(Kinv)
    return float(np.sum(0.5 * np.log(d) - 0.5 * alpha**2 / d) - 0.5 * d.size * _LOG_2PI)


# ---------------------------------------------------------------------- fully Bayesian
def log_hyperprior(model: object, noise_prior: tuple[float, float] | None) -> float:
    """Log density of the sampler's hyperprior: log-normal length scales, log-uniform
    signal variance, and the Gamma ``noise_prior`` of a learned noise variance (None: the
    noise is known or fixed)."""
    kern = stationary(model.kern)  # type: ignore[attr-defined]
    ls = np.array(kern.lengthscale, dtype=np.float64)  # type: ignore[attr-defined]
    z = (np.log(ls) - math.log(LENGTHSCALE_PRIOR_MEDIAN)) / LENGTHSCALE_PRIOR_WIDTH
    value = float(np.sum(-0.5 * z**2 - np.log(ls)))
    value -= math.log(float(kern.variance[0]))  # type: ignore[attr-defined]
    if noise_prior is not None:
        shape, rate = noise_prior
        sn2 = float(model.Gaussian_noise.variance[0])  # type: ignore[attr-defined]
        value += (shape - 1.0) * math.log(sn2) - rate * sn2
    return value


def sample_hyperparameters(
    model: object,
    n_samples: int,
    mcmc_steps: int,
    noise_prior: tuple[float, float] | None,
    rng: np.random.Generator,
) -> np.ndarray | None:
    """Up to ``n_samples`` hyperparameter draws in free coordinates, by emcee from around
    the model's current (fitted) point; None when no finite sample was drawn.

    The target is the marginal likelihood times :func:`log_hyperprior`, truncated to the
    bounds, with the Jacobian of GPy's transforms; the first half of the chain is burn-in.
    The model is left at its starting point.
    """
    import emcee

    theta0 = np.array(model.optimizer_array, copy=True)  # type: ignore[attr-defined]
    ndim = theta0.size
    n_walkers = max(2 * ndim + 2, 16)

    def log_prob(theta: np.ndarray) -> float:
        if np.any(np.abs(theta) > 30):
            return -np.inf
        try:
            model.optimizer_array = theta  # type: ignore[attr-defined]
            ll = float(model.log_likelihood())  # type: ignore[attr-defined]
        except np.linalg.LinAlgError:
            return -np.inf
        value = ll + log_hyperprior(model, noise_prior) + log_jacobian(model)
        return value if np.isfinite(value) else -np.inf

    start = theta0 + 1e-2 * rng.standard_normal((n_walkers, ndim))
    seed = int(rng.integers(2**31))
    sampler = emcee.EnsembleSampler(n_walkers, ndim, log_prob)
    sampler.random_state = np.random.RandomState(seed).get_state()
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=RuntimeWarning, module=r"GPy|paramz")
        sampler.run_mcmc(start, mcmc_steps, progress=False)
    chain = sampler.get_chain(discard=mcmc_steps // 2, flat=True)
    logp = sampler.get_log_prob(discard=mcmc_steps // 2, flat=True)
    chain = chain[np.isfinite(logp)]
    model.optimizer_array = theta0  # type: ignore[attr-defined]
    if chain.shape[0] == 0:
        return None
    idx = rng.choice(chain.shape[0], size=min(n_samples, chain.shape[0]), replace=False)
    return chain[idx]
