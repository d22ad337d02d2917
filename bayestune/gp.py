"""Gaussian-process surrogate on GPy.

Glossary of symbols (all arrays are NumPy):

=============  ==============================================================================
``X``          inputs in the encoded unit cube, shape ``(n, d)``
``y``          observed objective values in the user's units, shape ``(n,)``
``s2``         known noise variances of ``y`` (``None`` where unknown), shape ``(n,)``
``w(y)``       output warping (identity or log); ``z = (w(y) - m) / s`` is the *model space*
``mu, var``    posterior mean and variance of the latent ``f`` at new inputs, in model space,
               shapes ``(q,)``
``dmu, dvar``  their gradients with respect to the inputs, shapes ``(q, d)``
``l``          ARD length scales in unit-cube coordinates, shape ``(d,)``
``sf2``        kernel (signal) variance in model space
``sn2``        learned homoscedastic noise variance in model space
=============  ==============================================================================

The acquisition functions see only :class:`Posterior` objects, never GPy.
"""

from __future__ import annotations

import copy
import math
import warnings

import numpy as np

from .exceptions import BayestuneError, NumericalWarning
from .gp_fit import fit_map, loo_log_density, sample_hyperparameters
from .gp_kernels import (
    kernel_classes,
    make_lengthscale_prior,
    make_noise_prior,
    quadratic_trend_kernel,
    stationary,
)
from .gp_predict import Predictor
from .surrogate_config import SurrogateConfig
from .warping import IdentityWarp, LogWarp, warp_candidates

__all__ = ["SurrogateConfig", "GPSurrogate", "Posterior", "IdentityWarp", "LogWarp"]

#: model-space noise variance of kriging-believer fantasy observations
FANTASY_NOISE = 1e-6


# ------------------------------------------------------------------------- posterior
class Posterior:
    """Posterior of the latent function under one set of GP hyperparameters.

    Everything is in model space (warped, standardised outputs; unit-cube inputs).

    Attributes
    ----------
    X_train : ndarray, shape (n, d)
        Training inputs.
    z_train : ndarray, shape (n,)
        Training outputs in model space.
    noise_train : ndarray, shape (n,)
        Noise variance of each training output in model space.
    """

    def __init__(self, model: object, X: np.ndarray, z: np.ndarray, noise: np.ndarray):
        self._model = model
        self.X_train = X
        self.z_train = z
        self.noise_train = noise
        self._predictor: Predictor | None = None

    @property
    def dim(self) -> int:
        return int(self.X_train.shape[1])

    def predict(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Mean and variance of ``f``, shapes ``(q,)`` and ``(q,)``."""
        mu, var = self._numpy_predictor().predict(X)
        return mu, np.maximum(var, 1e-12)

    def predict_with_grad(
        self, X: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Mean, variance and their input gradients, shapes ``(q,), (q,), (q, d), (q, d)``."""
        mu, var, dmu, dvar = self._numpy_predictor().predict_with_grad(X)
        return mu, np.maximum(var, 1e-12), dmu, dvar

    def _numpy_predictor(self) -> Predictor:
        """Predictions in NumPy from this posterior's model (:mod:`bayestune.gp_predict`)."""
        if self._predictor is None:
            self._predictor = Predictor(self._model)
        return self._predictor

    def joint(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Joint mean ``(q,)`` and covariance ``(q, q)`` of ``f`` at ``X``."""
        X = np.atleast_2d(X)
        mu, cov = self._model.predict_noiseless(X, full_cov=True)  # type: ignore[attr-defined]
        cov = 0.5 * (cov + cov.T)
        return mu[:, 0], cov

    def fantasize(self, X_new: np.ndarray,
                  floor: np.ndarray | float | None = None) -> Posterior:
        """Condition on the posterior mean at ``X_new`` (kriging believer), or on
        ``max(mean, floor)`` when a ``floor`` (model space; one per point or one for all)
        is given.

        The hyperparameters are kept; the fantasy observations are treated as (almost) exact,
        so a batch does not propose the same point twice. Returns a new
        :class:`Posterior`; this one is unchanged.
        """
        import GPy

        X_new = np.atleast_2d(X_new)
        mu, _ = self.predict(X_new)
        if floor is not None:
            mu = np.maximum(mu, floor)
        X = np.vstack([self.X_train, X_new])
        z = np.concatenate([self.z_train, mu])
        noise = np.concatenate([self.noise_train, np.full(len(X_new), FANTASY_NOISE)])
        kern = self._model.kern.copy()  # type: ignore[attr-defined]
        model = GPy.models.GPHeteroscedasticRegression(X, z[:, None], kern)
        model.het_Gauss.variance[:] = noise[:, None]
        return Posterior(model, X, z, noise)

    def with_targets(self, z: np.ndarray) -> Posterior:
        """The same hyperparameters and inputs conditioned on other outputs ``z``, shape (n,)."""
        import GPy

        z = np.asarray(z, dtype=float)
        kern = self._model.kern.copy()  # type: ignore[attr-defined]
        model = GPy.models.GPHeteroscedasticRegression(self.X_train, z[:, None], kern)
        model.het_Gauss.variance[:] = self.noise_train[:, None]
        return Posterior(model, self.X_train, z, self.noise_train)

    def log_likelihood(self) -> float:
        """Log marginal likelihood of the training data in model space."""
        return float(self._model.log_likelihood())  # type: ignore[attr-defined]


# ------------------------------------------------------------------------- surrogate
class GPSurrogate:
    """GP regression surrogate with ARD kernels, output warping and known or learned noise.

    Parameters
    ----------
    config : SurrogateConfig, optional
        Modelling options.

    Notes
    -----
    After :meth:`fit`, :attr:`posteriors` holds one :class:`Posterior` (type-II maximum
    likelihood) or ``config.n_samples`` of them (fully Bayesian).
    """

    def __init__(self, config: SurrogateConfig | None = None) -> None:
        self.config = config or SurrogateConfig()
        self.posteriors: list[Posterior] = []
        self.noise_mode: str | None = None
        #: the output warping in use (``None`` or ``"log"``; chosen by evidence for "auto")
        self.warping: str | None = None
        self._warp: IdentityWarp | LogWarp = IdentityWarp()
        self._offset = 0.0
        self._scale = 1.0

    # ------------------------------------------------------------------ public
    @property
    def is_fitted(self) -> bool:
        return bool(self.posteriors)

    def fit(
        self,
        X: np.ndarray,
        y: np.ndarray,
        variance: np.ndarray | None = None,
        rng: np.random.Generator | None = None,
    ) -> GPSurrogate:
        """Fit the surrogate to data.

        Parameters
        ----------
        X : ndarray, shape (n, d)
            Inputs in the unit cube.
        y : ndarray, shape (n,)
            Finite objective values.
        variance : ndarray, shape (n,), optional
            Known noise variances; NaN marks unknown entries.
        rng : numpy.random.Generator
            Randomness for restarts and MCMC.
        """
        X = np.atleast_2d(np.asarray(X, dtype=float))
        y = np.asarray(y, dtype=float).ravel()
        if X.shape[0] != y.shape[0]:
            raise BayestuneError(
                f"X and y need the same number of rows, got {X.shape[0]} and {y.shape[0]}"
            )
        if X.shape[0] < 1:
            raise BayestuneError("cannot fit a surrogate to zero observations")
        if not np.all(np.isfinite(y)):
            raise BayestuneError("surrogate training values must be finite")
        rng = rng if rng is not None else np.random.default_rng()
        var = None if variance is None else np.asarray(variance, dtype=float).ravel()
        self.noise_mode = self._resolve_noise_mode(var)
        candidates = warp_candidates(self.config.warping)
        if self.config.warping == "auto" and self.noise_mode == "known":
            # a warping distorts known noise (only to first order through the delta method);
            # with noisy values near the minimum that misleads the search: stay unwarped
            candidates = candidates[:1]
        subset = self._fit_subset(y, rng)
        fits = []
        for (warp_name, warp), sub_rng in zip(candidates, rng.spawn(len(candidates))):
            z, noise = self._transform_outputs(y, var, warp)
            model = self._fit_model(X, z, noise, subset, sub_rng)
            # evidence of the data in the user's units: p(y) = p(z) |dz/dy|
            log_jac = float(np.sum(np.log(self._warp.derivative(y)))) - y.size * math.log(
                self._scale)
            evidence = float(model.log_likelihood()) + log_jac  # type: ignore[attr-defined]
            fits.append((evidence, warp_name, z, noise, model,
                         (self._warp, self._offset, self._scale)))
        evidence, self.warping, z, noise, model, state = max(fits, key=lambda f: f[0])
        self._warp, self._offset, self._scale = state
        if self.config.fully_bayesian:
            self.posteriors = self._sample_hyperparameters(model, X, z, noise, rng)
        else:
            self.posteriors = [Posterior(model, X, z, self._noise_of(model, noise))]
        return self

    def _fit_model(self, X: np.ndarray, z: np.ndarray, noise: np.ndarray | None,
                   subset: np.ndarray | None, rng: np.random.Generator) -> object:
        """The GPy model on all observations, its hyperparameters fitted to ``subset``
        (None: all); with ``prior_selection="loo"`` the fit with or without the priors
        whose leave-one-out predictive density of the fitted points is larger."""
        Xf, zf, nf = (X, z, noise) if subset is None else (
            X[subset], z[subset], None if noise is None else noise[subset])
        def fit(priors: bool, sub_rng: np.random.Generator) -> object:
            fitted = self._build_model(Xf, zf, nf, priors=priors)
            self._fit_ml(fitted, sub_rng)
            return fitted

        if self.config.prior_selection == "loo":
            with_priors, without = (fit(priors, r) for priors, r in
                                    zip((True, False), rng.spawn(2)))
            best = max((with_priors, without), key=loo_log_density)
        else:
            best = fit(True, rng)
        if subset is None:
            return best
        # the priors change the fit, not the model: the full model takes the fitted point
        return self._build_model(X, z, noise, theta=self._free_theta(best))

    def _fit_subset(self, y: np.ndarray, rng: np.random.Generator) -> np.ndarray | None:
        """Indices of the observations the hyperparameters are fitted to when there are more
        than ``max_fit_points`` (the best half by value, the rest at random); None: all."""
        m = self.config.max_fit_points
        if m is None or y.size <= m:
            return None
        order = np.argsort(y, kind="stable")
        best, rest = order[: m // 2], order[m // 2:]
        drawn = np.random.default_rng(rng.integers(2**63)).choice(rest, m - best.size,
                                                                  replace=False)
        return np.sort(np.concatenate([best, drawn]))

    def predict(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Posterior mean and standard deviation in the user's units.

        For a warped surrogate the mean is the posterior *median* ``w^-1(mu)`` and the
        standard deviation is propagated to first order. With several hyperparameter samples,
        the moments of the mixture are returned.

        Returns
        -------
        mean, std : ndarray, shape (q,)
        """
        self._check_fitted()
        mus, variances = zip(*(p.predict(X) for p in self.posteriors))
        mu_m = np.mean(mus, axis=0)
        var_m = np.mean(variances, axis=0) + np.var(mus, axis=0)
        w = mu_m * self._scale + self._offset
        mean = self._warp.inverse(w)
        dy_dw = 1.0 / self._warp.derivative(mean)
        std = np.sqrt(var_m) * self._scale * np.abs(dy_dw)
        return mean, std

    def resampled(self, rng: np.random.Generator) -> GPSurrogate:
        """A parametric-bootstrap replica: the training outputs shifted by draws of their noise.

        Hyperparameters, inputs and warping are kept; each posterior is conditioned on
        ``z + e`` with ``e ~ N(0, noise_train)``. The spread of quantities computed from many
        replicas (e.g. the location of the minimum) measures how much the finite, noisy
        evaluations limit them.
        """
        self._check_fitted()
        replica = copy.copy(self)
        replica.posteriors = [
            p.with_targets(p.z_train + rng.normal(0.0, np.sqrt(p.noise_train)))
            for p in self.posteriors
        ]
        return replica

    def to_model_space(self, y: np.ndarray) -> np.ndarray:
        """Map objective values to model space (warp and standardise)."""
        return (self._warp.forward(np.asarray(y, dtype=float)) - self._offset) / self._scale

    @property
    def lengthscales(self) -> np.ndarray:
        """ARD length scales in unit-cube coordinates, shape ``(d,)`` (median over samples)."""
        self._check_fitted()
        values = [np.asarray(stationary(p._model.kern).lengthscale).copy()  # type: ignore
                  for p in self.posteriors]
        return np.median(values, axis=0)

    @property
    def hyperparameters(self) -> dict[str, float | str | list[float]]:
        """Fitted hyperparameters of the first posterior (model space), for reports."""
        self._check_fitted()
        model = self.posteriors[0]._model
        out: dict[str, float | str | list[float]] = {
            "signal_variance": float(stationary(model.kern).variance[0]),  # type: ignore
            "lengthscales": [float(v) for v in self.lengthscales],
            "noise_mode": str(self.noise_mode),
            "warping": str(self.warping),
        }
        if self.config.trend == "quadratic":
            trend = model.kern.parts[1]  # type: ignore[attr-defined]
            for part in ("constant", "linear", "quadratic"):
                out[f"trend_{part}_variance"] = float(getattr(trend, part)[0])
        if self.noise_mode == "learned":
            out["noise_variance"] = float(model.Gaussian_noise.variance[0])  # type: ignore
        return out

    # ------------------------------------------------------------------ internals
    def _check_fitted(self) -> None:
        if not self.posteriors:
            raise BayestuneError("the surrogate has not been fitted yet; call fit() first")

    def _transform_outputs(
        self, y: np.ndarray, var: np.ndarray | None, warp: IdentityWarp | LogWarp
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """Warp and standardise ``y``; map known variances to model space (delta method)."""
        self._warp = warp.fit(y)
        w = self._warp.forward(y)
        self._offset = float(np.mean(w))
        spread = float(np.std(w))
        self._scale = spread if spread > 1e-12 * max(1.0, abs(self._offset)) else 1.0
        z = (w - self._offset) / self._scale

        if self.noise_mode != "known":
            return z, None
        assert var is not None  # noise_mode "known" is only resolved when variances exist
        filled = np.where(np.isfinite(var), var, np.nanmedian(var))
        noise = filled * (self._warp.derivative(y) / self._scale) ** 2
        return z, np.maximum(noise, 1e-8)

    def _resolve_noise_mode(self, var: np.ndarray | None) -> str:
        mode = self.config.noise
        known = var is not None and bool(np.any(np.isfinite(var)))
        if mode == "auto":
            complete = var is not None and bool(np.all(np.isfinite(var)))
            return "known" if complete else "learned"
        if mode == "known" and not known:
            raise BayestuneError(
                "noise='known' needs the objective to report Evaluation(variance=...), "
                "but no completed evaluation did"
            )
        return mode

    def _build_model(self, X: np.ndarray, z: np.ndarray, noise: np.ndarray | None,
                     theta: np.ndarray | None = None, priors: bool = True) -> object:
        """The GPy model of the surrogate, at free coordinates ``theta`` if given; without
        any hyperparameter prior if not ``priors``."""
        import GPy

        d = X.shape[1]
        kern_cls = kernel_classes()[self.config.kernel]
        kern = kern_cls(input_dim=d, ARD=True, variance=1.0, lengthscale=np.full(d, 0.3))
        lo, hi = self.config.lengthscale_bounds
        kern.lengthscale.constrain_bounded(lo, hi, warning=False)
        if self.config.lengthscale_prior and priors:
            scale = self.config.lengthscale_prior_scale
            scale = math.sqrt(d / 6.0) if scale == "dimension" else float(scale)
            kern.lengthscale.set_prior(make_lengthscale_prior(scale), warning=False)
            kern.lengthscale.constrain_bounded(lo, hi, warning=False)  # set_prior resets it
        kern.variance.constrain_bounded(1e-2, 1e2, warning=False)
        if self.config.variance_prior is not None and priors:
            # a bounded (logistic) transform adds no log Jacobian: a density of the variance
            kern.variance.set_prior(GPy.priors.Gamma(*self.config.variance_prior),
                                    warning=False)
            kern.variance.constrain_bounded(1e-2, 1e2, warning=False)  # set_prior resets it
        if self.config.trend == "quadratic":
            trend = quadratic_trend_kernel(d)
            for part in (trend.constant, trend.linear, trend.quadratic):  # type: ignore
                part.constrain_bounded(1e-6, 1e2, warning=False)
            kern = kern + trend
        Y = z[:, None]
        if noise is not None:
            model = GPy.models.GPHeteroscedasticRegression(X, Y, kern)
            model.het_Gauss.variance[:] = noise[:, None]
            model.het_Gauss.variance.fix(warning=False)
        else:
            model = GPy.models.GPRegression(X, Y, kern, noise_var=1e-3)
            if self.noise_mode == "fixed":
                model.Gaussian_noise.variance[:] = 1e-6
                model.Gaussian_noise.variance.fix(warning=False)
            elif self.config.noise_prior is not None and priors:
                model.Gaussian_noise.variance.set_prior(
                    make_noise_prior(*self.config.noise_prior), warning=False)
        if theta is not None:
            model.optimizer_array = theta
        return model

    def _free_theta(self, model: object) -> np.ndarray:
        return np.array(model.optimizer_array, copy=True)  # type: ignore[attr-defined]

    def _random_theta(self, model: object, rng: np.random.Generator) -> np.ndarray:
        """A random starting point: log-uniform length scales, variance ~ 1, noise small."""
        kern = stationary(model.kern)  # type: ignore[attr-defined]
        d = int(kern.input_dim)  # type: ignore[attr-defined]
        lo, hi = self.config.lengthscale_bounds
        kern.lengthscale[:] = np.exp(  # type: ignore[attr-defined]
            rng.uniform(math.log(max(lo, 0.03)), math.log(min(hi, 3.0)), size=d)
        )
        kern.variance[:] = np.exp(rng.uniform(math.log(0.3), math.log(3.0)))  # type: ignore
        if self.noise_mode == "learned":
            model.Gaussian_noise.variance[:] = np.exp(  # type: ignore[attr-defined]
                rng.uniform(math.log(1e-5), math.log(1e-1))
            )
        return self._free_theta(model)

    def _fit_ml(self, model: object, rng: np.random.Generator) -> None:
        """Type-II maximum likelihood from the default start and random restarts."""
        # No warm start from an earlier fit: a proposal must depend only on the data and the
        # trial's generator, so that a resumed campaign proposes what an uninterrupted would.
        starts = [self._free_theta(model)]
        for _ in range(self.config.n_restarts):
            starts.append(self._random_theta(model, rng))
        if not np.isfinite(fit_map(model, starts, self.config.kernel)):
            raise BayestuneError(
                "every GP hyperparameter fit failed (Cholesky decomposition); "
                "check for duplicated inputs with wildly different outputs"
            )

    @staticmethod
    def _noise_of(model: object, noise: np.ndarray | None) -> np.ndarray:
        n = model.X.shape[0]  # type: ignore[attr-defined]
        if noise is not None:
            return noise
        return np.full(n, float(model.Gaussian_noise.variance[0]))  # type: ignore[attr-defined]

    # ------------------------------------------------------------------ fully Bayesian
    def _sample_hyperparameters(
        self,
        model: object,
        X: np.ndarray,
        z: np.ndarray,
        noise: np.ndarray | None,
        rng: np.random.Generator,
    ) -> list[Posterior]:
        """One posterior per hyperparameter sample (emcee, see :func:`sample_hyperparameters`);
        the ML fit alone when the sampler gave no finite sample."""
        theta0 = self._free_theta(model)
        samples = sample_hyperparameters(
            model, self.config.n_samples, self.config.mcmc_steps,
            self.config.noise_prior if self.noise_mode == "learned" else None, rng)
        if samples is None:
            warnings.warn("hyperparameter MCMC produced no finite sample; using the ML fit",
                          NumericalWarning, stacklevel=3)
            return [Posterior(model, X, z, self._noise_of(model, noise))]
        posteriors = []
        for theta in samples:
            m = model.copy()  # type: ignore[attr-defined]
            m.optimizer_array = theta
            posteriors.append(Posterior(m, X, z, self._noise_of(m, noise)))
        model.optimizer_array = theta0  # type: ignore[attr-defined]
        return posteriors
