"""GPy building blocks of the surrogate: the kernel classes, the hyperparameter priors, the
quadratic trend kernel, and two helpers on GPy models.

:mod:`bayestune.gp` assembles these into a model; nothing here knows about campaigns.
"""

from __future__ import annotations

import logging
import math

import numpy as np

__all__ = ["kernel_classes", "make_lengthscale_prior", "make_noise_prior", "quadratic_trend_kernel",
           "stationary", "stationary_profile", "log_jacobian"]


def kernel_classes() -> dict[str, type]:
    import GPy

    return {"matern52": GPy.kern.Matern52, "matern32": GPy.kern.Matern32, "rbf": GPy.kern.RBF}


_TREND_CLASS: type | None = None
_PRIOR_CLASSES: dict[str, type] = {}


def _prior_classes() -> dict[str, type]:
    """GPy prior classes of the surrogate, built once (GPy is imported lazily)."""
    if not _PRIOR_CLASSES:
        import GPy

        class OwnPrior(GPy.priors.Prior):  # type: ignore[misc]
            domain = GPy.priors._POSITIVE

            def __new__(cls, *args: object, **kwargs: object) -> OwnPrior:
                return object.__new__(cls)  # GPy caches priors by argument; keep ours apart

        class LengthscalePrior(OwnPrior):
            def __init__(self, scale: float) -> None:
                self.scale = scale

            def lnpdf(self, x: np.ndarray) -> np.ndarray:
                u = x / self.scale
                return -0.1 * (u**2 + u**-2.0)

            def lnpdf_grad(self, x: np.ndarray) -> np.ndarray:
                u = x / self.scale
                return -0.1 * (2.0 * u - 2.0 * u**-3.0) / self.scale

            def __str__(self) -> str:
                return f"-0.1 ((l/{self.scale:.3g})^2 + (l/{self.scale:.3g})^-2)"

        class NoiseGammaPrior(OwnPrior):
            def __init__(self, shape: float, rate: float) -> None:
                self.shape, self.rate = shape, rate

            def lnpdf(self, x: np.ndarray) -> np.ndarray:
                return ((self.shape - 1.0) * np.log(x) - self.rate * x
                        - np.log(-np.expm1(-x)))

            def lnpdf_grad(self, x: np.ndarray) -> np.ndarray:
                return (self.shape - 1.0) / x - self.rate - 1.0 / np.expm1(x)

            def __str__(self) -> str:
                return f"Gamma({self.shape}, {self.rate})"

        _PRIOR_CLASSES.update(lengthscale=LengthscalePrior, noise=NoiseGammaPrior)
        # the length-scale prior is a density of the length scale itself: paramz's note that
        # its bounded (logistic) transform adds no log Jacobian is expected, not a problem
        logging.getLogger("paramz.transformations").addFilter(
            lambda record: "approximating by 0" not in record.getMessage())
    return _PRIOR_CLASSES


def make_lengthscale_prior(scale: float = 1.0) -> object:
    """The prior ``log p(l) = -0.1 ((l/s)^2 + (l/s)^-2)`` of a length scale (mode at the
    scale ``s``), as a GPy prior."""
    return _prior_classes()["lengthscale"](float(scale))


def make_noise_prior(shape: float, rate: float) -> object:
    """The Gamma(shape, rate) density of a noise variance ``s``, as a GPy prior.

    GPy adds the log Jacobian of the parameter's positive transform (``ln(1 - exp(-s))``,
    about ``ln s`` for a small variance) to every prior; this prior subtracts it again, so
    that the fit maximises the posterior density of ``s`` itself, as documented.
    """
    return _prior_classes()["noise"](shape, rate)


def quadratic_trend_kernel(input_dim: int) -> object:
    """``c0 + c1 (x - c).(x' - c) + c2 ((x - c).(x' - c))^2`` with ``c`` the cube centre.

    Added to the stationary kernel it is a Bayesian quadratic trend: a constant, linear
    terms and all square and cross terms, each degree with its own prior variance
    (``constant``, ``linear``, ``quadratic``). It describes the rotated, elongated bowl of a
    chi2 near its minimum far better than axis-aligned length scales alone. Three variances,
    one per degree, make the fit well posed: the tied form ``v (s x.x' + b)^2`` has a
    direction along which the likelihood does not change, and its fit crawled to the bounds
    (``benchmarks/diag_trend_fit.py``). Input gradients are provided for the acquisition
    optimiser.
    """
    global _TREND_CLASS
    if _TREND_CLASS is None:
        import GPy
        from GPy.core.parameterization import Param
        from paramz.transformations import Logexp

        class QuadraticTrend(GPy.kern.Kern):  # type: ignore[misc,name-defined]
            def __init__(self, input_dim: int, name: str = "trend") -> None:
                super().__init__(input_dim, None, name)
                self.constant = Param("constant", 1.0, Logexp())
                self.linear = Param("linear", 1.0, Logexp())
                self.quadratic = Param("quadratic", 1.0, Logexp())
                self.link_parameters(self.constant, self.linear, self.quadratic)

            @staticmethod
            def _dot(X, X2=None):  # noqa: N803 - GPy's names
                Xc = X - 0.5
                return Xc @ Xc.T if X2 is None else Xc @ (X2 - 0.5).T

            def K(self, X, X2=None):  # noqa: N802,N803
                d = self._dot(X, X2)
                return self.constant + self.linear * d + self.quadratic * d**2

            def Kdiag(self, X):  # noqa: N802,N803
                q = np.sum((X - 0.5) ** 2, axis=1)
                return self.constant + self.linear * q + self.quadratic * q**2

            def update_gradients_full(self, dL_dK, X, X2=None):  # noqa: N802,N803
                d = self._dot(X, X2)
                self.constant.gradient = float(np.sum(dL_dK))
                self.linear.gradient = float(np.sum(dL_dK * d))
                self.quadratic.gradient = float(np.sum(dL_dK * d**2))

            def update_gradients_diag(self, dL_dKdiag, X):  # noqa: N802,N803
                q = np.sum((X - 0.5) ** 2, axis=1)
                self.constant.gradient = float(np.sum(dL_dKdiag))
                self.linear.gradient = float(np.sum(dL_dKdiag * q))
                self.quadratic.gradient = float(np.sum(dL_dKdiag * q**2))

            def gradients_X(self, dL_dK, X, X2=None):  # noqa: N802,N803
                d = self._dot(X, X2)
                G = dL_dK * (self.linear + 2.0 * self.quadratic * d)
                if X2 is None:
                    return (G + G.T) @ (X - 0.5)
                return G @ (X2 - 0.5)

            def gradients_X_diag(self, dL_dKdiag, X):  # noqa: N802,N803
                Xc = X - 0.5
                q = np.sum(Xc**2, axis=1)
                factor = 2.0 * self.linear + 4.0 * self.quadratic * q
                return (dL_dKdiag * factor)[:, None] * Xc

        _TREND_CLASS = QuadraticTrend
    return _TREND_CLASS(input_dim)


def stationary_profile(kernel: str, r: np.ndarray,
                       sf2: float) -> tuple[np.ndarray, np.ndarray]:
    """The stationary kernel ``kernel`` ("matern52", "matern32" or "rbf") at scaled distances
    ``r``, and ``G`` with ``dK/dx_i = -G (x_i - x'_i) / l_i^2`` (so ``dK/dl_i = G D_i^2 /
    l_i^3``): what the likelihood's gradient and the predictions' input gradients need."""
    if kernel == "matern52":
        e = np.exp(-math.sqrt(5.0) * r)
        K = sf2 * (1.0 + math.sqrt(5.0) * r + 5.0 / 3.0 * r**2) * e
        G = sf2 * 5.0 / 3.0 * (1.0 + math.sqrt(5.0) * r) * e
    elif kernel == "matern32":
        e = np.exp(-math.sqrt(3.0) * r)
        K = sf2 * (1.0 + math.sqrt(3.0) * r) * e
        G = 3.0 * sf2 * e
    else:
        K = sf2 * np.exp(-0.5 * r**2)
        G = K
    return K, G


def stationary(kern: object) -> object:
    """The stationary (ARD) part of a kernel that may carry a trend term."""
    parts = getattr(kern, "parts", None)
    return parts[0] if parts else kern


def log_jacobian(model: object) -> float:
    """``log |d theta / d x|`` of GPy's transforms from free coordinates ``x`` to
    parameters ``theta`` (fixed parameters excluded)."""
    total = 0.0
    params = model.param_array  # type: ignore[attr-defined]
    for transform, index in model.constraints.items():  # type: ignore[attr-defined]
        if transform == "fixed" or len(index) == 0:
            continue
        factor = transform.gradfactor(params[index], np.ones(len(index)))
        total += float(np.sum(np.log(np.abs(factor))))
    return total
