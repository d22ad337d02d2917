"""Posterior mean, variance and their input gradients in NumPy, from a fitted GPy model.

The acquisition optimiser asks for these a hundred times per suggestion, each time for a
batch of points. GPy's ``predict_noiseless`` and ``predictive_gradients`` go through its
parameter framework and recompute the cross-covariances twice; :class:`Predictor` reads the
kernel's parameters and GPy's posterior (``woodbury_vector``, ``woodbury_chol``) once and
computes the same quantities directly. Supported: the kernels :class:`bayestune.gp.GPSurrogate`
builds (Matern 5/2, Matern 3/2 or RBF with ARD length scales, optionally plus the quadratic
trend of :func:`bayestune.gp_kernels.quadratic_trend_kernel`).
"""

from __future__ import annotations

import numpy as np
from scipy.linalg import solve_triangular

from .gp_kernels import kernel_classes, stationary, stationary_profile

__all__ = ["Predictor"]


class Predictor:
    """Noiseless predictions of a fitted GPy regression model and their input gradients."""

    def __init__(self, model: object) -> None:
        kern = stationary(model.kern)  # type: ignore[attr-defined]
        names = [name for name, cls in kernel_classes().items() if type(kern) is cls]
        if not names:
            raise TypeError(f"unsupported stationary kernel {type(kern).__name__}")
        self._kernel = names[0]
        self._sf2 = float(kern.variance[0])  # type: ignore[attr-defined]
        self._ls = np.array(kern.lengthscale, dtype=np.float64)  # type: ignore[attr-defined]
        parts = getattr(model.kern, "parts", None)  # type: ignore[attr-defined]
        trend = parts[1] if parts else None
        self._trend = None if trend is None else tuple(
            float(getattr(trend, name)[0]) for name in ("constant", "linear", "quadratic"))
        self._X = np.asarray(model.X, dtype=np.float64)  # type: ignore[attr-defined]
        posterior = model.posterior  # type: ignore[attr-defined]
        self._alpha = np.asarray(posterior.woodbury_vector, dtype=np.float64)[:, 0]
        # the Cholesky factor of K + noise: the variance as kxx - |L^-1 k|^2 keeps its
        # digits where kxx - k' (K + noise)^-1 k with the explicit inverse loses them
        self._L = np.asarray(posterior.woodbury_chol, dtype=np.float64)

    def _cross(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``K(X, X_train)`` and ``G`` with ``dK/dx_i = -G (x_i - x'_i) / l_i^2``."""
        A, B = X / self._ls, self._X / self._ls
        r2 = np.sum(A**2, axis=1)[:, None] + np.sum(B**2, axis=1)[None, :] - 2.0 * A @ B.T
        r = np.sqrt(np.clip(r2, 0.0, np.inf))
        return stationary_profile(self._kernel, r, self._sf2)

    def predict(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Mean and variance of ``f`` at ``X`` (shape ``(q, d)``), shapes ``(q,)``."""
        mu, var, _, _ = self._predict(np.atleast_2d(X), gradients=False)
        return mu, var

    def predict_with_grad(
        self, X: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Mean, variance and their input gradients, shapes ``(q,), (q,), (q, d), (q, d)``."""
        mu, var, dmu, dvar = self._predict(np.atleast_2d(X), gradients=True)
        return mu, var, dmu, dvar  # type: ignore[return-value]

    def _predict(self, X: np.ndarray, gradients: bool):  # noqa: ANN202
        K, G = self._cross(X)
        kxx = np.full(X.shape[0], self._sf2)
        if self._trend is not None:
            c0, c1, c2 = self._trend
            Xc, Tc = X - 0.5, self._X - 0.5
            dot = Xc @ Tc.T
            K = K + c0 + c1 * dot + c2 * dot**2
            q = np.sum(Xc**2, axis=1)
            kxx = kxx + c0 + c1 * q + c2 * q**2
        mu = K @ self._alpha
        half = solve_triangular(self._L, K.T, lower=True)  # L^-1 k, shape (n, q)
        var = kxx - np.sum(half**2, axis=0)
        if not gradients:
            return mu, var, None, None
        WK = solve_triangular(self._L, half, lower=True, trans="T").T  # (K + noise)^-1 k
        inv_l2 = 1.0 / self._ls**2

        def dk_dot(v: np.ndarray) -> np.ndarray:
            """``sum_j v_qj dK_qj/dx_q`` for weights ``v`` (q, n): shape (q, d)."""
            M = v * G
            out = -(M.sum(axis=1)[:, None] * X - M @ self._X) * inv_l2
            if self._trend is not None:
                out += (v * (c1 + 2.0 * c2 * dot)) @ Tc
            return out

        dmu = dk_dot(self._alpha[None, :])
        dvar = -2.0 * dk_dot(WK)
        if self._trend is not None:
            dvar += (2.0 * c1 + 4.0 * c2 * q)[:, None] * Xc
        return mu, var, dmu, dvar
